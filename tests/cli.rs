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

/// A node size that is not a quantity stops `cluster` before anything is served.
#[test]
fn cluster_with_a_bad_node_size_says_which_flag() {
    let (ok, _, stderr) = run(&["cluster", "--kubelet", "--node-cpu", "lots"]);
    assert!(!ok);
    assert!(
        stderr.contains("--node-cpu: \"lots\" is not a Kubernetes quantity"),
        "{stderr}"
    );
    assert_no_debug_dump(&stderr);
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

/// `simulate` on scenario files written to a scratch directory: exit status, stdout, stderr.
fn simulate(tag: &str, files: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("gamedeploy-cli-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .arg("simulate")
        .arg(dir.join("s.yaml"))
        .args(args)
        .output()
        .expect("run gamedeploy simulate");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_debug_dump(stderr: &str) {
    for dump in ["Status {", "ApiError", "Some(", "details:"] {
        assert!(!stderr.contains(dump), "Debug output ({dump:?}):\n{stderr}");
    }
}

#[test]
fn simulate_a_step_on_a_missing_object_says_which_step_and_why() {
    let scenario = "name: x\nsteps:\n  - at: 10s\n    patch: {kind: Pod, name: foo, type: merge, patch: {metadata: {labels: {a: b}}}}\n";
    let (code, _, stderr) = simulate("missing", &[("s.yaml", scenario)], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(r#"s.yaml: steps[0] (t=10s): patch pods/foo: pods "foo" not found"#),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_no_debug_dump(&stderr);
}

#[test]
fn simulate_never_prints_the_content_of_an_applied_file() {
    let secret = "root:x:0:0:hunter2:/root:/bin/bash\n";
    let broken = "password: hunter2\nkey: [hunter2\n";
    for (tag, file) in [("passwd", secret), ("broken", broken)] {
        let (code, _, stderr) = simulate(
            tag,
            &[("s.yaml", "name: x\napply: [secret]\n"), ("secret", file)],
            &[],
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("apply[0]") && stderr.contains("secret"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn simulate_warns_of_steps_after_the_timeout_and_still_runs() {
    let scenario = "name: x\nsteps:\n  - at: 10s\n    restartOperator: true\n  - at: 200s\n    restartOperator: true\nuntil: {timeout: 2m}\n";
    let (code, stdout, stderr) = simulate("late", &[("s.yaml", scenario)], &["-o", "json"]);
    assert_eq!(
        code,
        Some(1),
        "the late step keeps it from settling: {stderr}"
    );
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("steps[1] at 3m20s comes after until.timeout 2m and will never run"),
        "{stderr}"
    );
    // The report is the design's, unchanged: the warning is for the person running it.
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["operatorRestarts"], 1);
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// The table output ends with the state the run settled in (issue 11 item 5): the scenario's
/// step is at 20 s, the rollout settles later, and that final snapshot is printed once, at the
/// time the summary line gives.
#[test]
fn simulate_table_ends_with_the_settled_state_once() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/not-in-place-change.yaml"
    );
    let (ok, stdout, stderr) = run(&["simulate", scenario]);
    assert!(ok, "{stderr}");
    let headers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("[t=") && l.ends_with("$ kubectl get pods"))
        .collect();
    let summary = stdout.lines().last().unwrap();
    let seconds: u64 = summary
        .strip_prefix("settled after ")
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    let settled_at = if seconds < 60 {
        format!("[t={seconds}s]")
    } else {
        format!("[t={}m{}s]", seconds / 60, seconds % 60)
    };
    assert!(
        headers.last().unwrap().starts_with(&settled_at),
        "last snapshot {headers:?}, settled {summary}"
    );
    assert_eq!(
        headers
            .iter()
            .filter(|h| h.starts_with(&settled_at))
            .count(),
        1,
        "{headers:?}"
    );
    // A progress snapshot when the first recreated pods are ready: 26 s, seen at the runner's
    // next half-second tick (the operator reconciles at most every 10 ms).
    assert!(
        headers.iter().any(|h| h.starts_with("[t=26s")),
        "{headers:?}"
    );
}
