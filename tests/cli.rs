//! The `gamedeploy` binary's subcommands, run as a user runs them.

use std::process::Command;

use gamedeploy_core::inplace::State;
use strum::IntoEnumIterator;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(args)
        .output()
        .expect("run gamedeploy");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn crds_prints_every_crd_as_one_yaml_stream() {
    let (ok, stdout, stderr) = run(&["crds"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, gamedeploy_core::api::crds_yaml().unwrap());
    for name in [
        "gamedeployments.tkex.tencent.com",
        "hooktemplates.tkex.tencent.com",
        "hookruns.tkex.tencent.com",
    ] {
        assert!(stdout.contains(&format!("name: {name}")), "{name} missing");
    }
}

#[test]
fn states_prints_every_state_and_the_forcible_edges() {
    let (ok, stdout, stderr) = run(&["states"]);
    assert!(ok, "{stderr}");
    for s in State::iter() {
        assert!(
            stdout.contains(&format!("| {s} |")),
            "state {s} missing from:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("| GracefulWait | ImagePatched | Forced |"),
        "{stdout}"
    );
    let (ok, mermaid, _) = run(&["states", "--format", "mermaid"]);
    assert!(ok && mermaid.starts_with("stateDiagram-v2"));
    let (ok, yaml, _) = run(&["states", "--format", "yaml"]);
    assert!(ok && yaml.contains("transitions:"));
}

#[test]
fn bad_usage_is_a_clear_error() {
    let (ok, _, stderr) = run(&["states", "--format", "png"]);
    assert!(!ok);
    assert!(stderr.contains("invalid value 'png'"), "{stderr}");
}

#[test]
fn run_with_an_unreadable_kubeconfig_says_which_file() {
    let (ok, _, stderr) = run(&["run", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read kubeconfig /nonexistent/kubeconfig"),
        "{stderr}"
    );
}
