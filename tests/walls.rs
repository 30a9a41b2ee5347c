//! The workspace's walls, checked: each crate's resolved dependency tree (what `cargo tree`
//! prints) must not contain what its layer may not use. A dependency list is only a wall if
//! something fails when it is breached.

use std::collections::BTreeMap;
use std::process::Command;

/// Every package in `package`'s normal (non-dev) dependency tree, for the given feature flags,
/// with the features it is built with.
fn tree(package: &str, extra: &[&str]) -> BTreeMap<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}|{f}", "-p", package])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (package, features) = l.split_once('|')?;
            let name = package.split_whitespace().next()?;
            Some((name.to_string(), features.to_string()))
        })
        .collect()
}

fn assert_none_of(package: &str, extra: &[&str], forbidden: &[&str]) {
    let deps = tree(package, extra);
    assert!(
        deps.contains_key(package),
        "cargo tree did not list {package} itself: {deps:?}"
    );
    let breached: Vec<_> = forbidden
        .iter()
        .filter(|f| deps.contains_key(**f))
        .collect();
    assert!(
        breached.is_empty(),
        "{package} {extra:?} depends on {breached:?}, which its layer may not use"
    );
}

/// What a pure crate must not depend on: a client, a runtime, an HTTP stack.
const IO: [&str; 7] = [
    "kube-client",
    "kube-runtime",
    "tokio",
    "hyper",
    "hyper-util",
    "tower",
    "reqwest",
];

#[test]
fn the_core_is_pure() {
    assert_none_of("gamedeploy-core", &[], &IO);
}

/// `gamedeploy status` renders in a pure function; fetching and watching stay in the binary.
#[test]
fn the_inspect_screens_are_pure() {
    assert_none_of(
        "gamedeploy-inspect",
        &[],
        &[&IO[..], &["gamedeploy-operator"]].concat(),
    );
}

#[test]
fn the_embedded_cluster_knows_nothing_of_game_deployments() {
    let ours = [
        "gamedeploy-core",
        "gamedeploy-inspect",
        "gamedeploy-operator",
        "gamedeploy-simulator",
    ];
    assert_none_of("embedded-apiserver", &[], &ours);
    assert_none_of(
        "simulated-kubelet",
        &[],
        &[&ours[..], &["embedded-apiserver"]].concat(),
    );
}

#[test]
fn the_operator_carries_no_test_infrastructure() {
    let test_only = [
        "embedded-apiserver",
        "simulated-kubelet",
        "gamedeploy-simulator",
        "kube-cel",
    ];
    assert_none_of("gamedeploy-operator", &[], &test_only);
    assert_none_of("gamedeploy", &["--no-default-features"], &test_only);
    // Paused time is for simulations: the product must not be able to stop its own clock.
    let deps = tree("gamedeploy", &["--no-default-features"]);
    let tokio = deps.get("tokio").map(String::as_str).unwrap_or_default();
    assert!(
        !tokio.split(',').any(|f| f == "test-util"),
        "the operator-only build enables tokio's test-util ({tokio})"
    );
}
