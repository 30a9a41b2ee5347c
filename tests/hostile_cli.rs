//! Issue 22 at the command line: names and flags that cannot work are refused before any
//! request, with what to fix, and the process exits non-zero instead of standing by for ever.

use std::process::Command;

/// `gamedeploy ARGS` with no cluster reachable: exit success, stderr.
fn gamedeploy(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kc")
        .env_remove("POD_NAMESPACE")
        .output()
        .expect("run gamedeploy");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn names_pasted_into_a_url_are_refused_before_any_request() {
    let (ok, stderr) = gamedeploy(&["status", "ins?watch=true"]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "gamedeploy: 'ins?watch=true' is not a valid GameDeployment name: use only lower-case letters, digits, '-' and '.'; nothing was sent"
    );
    let (ok, stderr) = gamedeploy(&["force", "POD?dryRun=All", "ImagePatched"]);
    assert!(!ok);
    assert!(
        stderr.contains("'POD?dryRun=All' is not a valid pod name"),
        "{stderr}"
    );
    let (ok, stderr) = gamedeploy(&["force", "pod-1", "Ready", "-n", "../kube-system"]);
    assert!(!ok);
    assert!(
        stderr.contains("'../kube-system' is not a valid namespace name"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_lease_that_cannot_exist() {
    let (ok, stderr) = gamedeploy(&["run", "--lease-name", "Gamedeploy_Operator"]);
    assert!(!ok);
    assert!(
        stderr.contains("the lease name 'Gamedeploy_Operator' is not a valid object name")
            && stderr.contains("--lease-name"),
        "{stderr}"
    );
    let (ok, stderr) = gamedeploy(&["run", "--lease-namespace", ""]);
    assert!(!ok);
    assert!(
        stderr.contains("the lease namespace is empty: pass --lease-namespace NAMESPACE"),
        "{stderr}"
    );
    let (ok, stderr) = gamedeploy(&["run", "--lease-namespace", "Games"]);
    assert!(!ok);
    assert!(
        stderr.contains("the lease namespace 'Games' is not a valid namespace"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_kubeconfig_is_named_once_in_plain_words() {
    let (ok, stderr) = gamedeploy(&[
        "run",
        "--no-leader-election",
        "--metrics-addr",
        "127.0.0.1:0",
        "--kubeconfig",
        "/nonexistent/kc",
    ]);
    assert!(!ok);
    assert!(
        stderr
            .contains("gamedeploy: cannot read kubeconfig /nonexistent/kc: there is no such file"),
        "{stderr}"
    );
    assert!(!stderr.contains('"') && !stderr.contains("'/"), "{stderr}");
    let (ok, stderr) = gamedeploy(&["status", "web"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read kubeconfig /nonexistent/kc: there is no such file"),
        "{stderr}"
    );
}
