//! `gamedeploy cluster` as a process, driven by the real `kubectl`: the tests that use a
//! command line the way a user does. Skipped, loudly, when no kubectl is on PATH.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `gamedeploy cluster`, killed when the test ends, passing or not.
pub struct Cluster {
    child: Child,
    pub kubeconfig: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the test must be skipped for want of kubectl (said on stderr, so a skip is seen).
pub fn skipped(what: &str) -> bool {
    let missing = !kubectl_available();
    if missing {
        eprintln!("SKIPPED: no kubectl on PATH; {what} did not run");
    }
    missing
}

/// Starts `gamedeploy cluster` on a free loopback port with `extra` flags (`--operator`,
/// `--kubelet`); ready once it has written its kubeconfig. `tag` keeps the kubeconfigs of
/// tests running in parallel apart.
pub fn start(tag: &str, extra: &[&str]) -> Cluster {
    let dir = std::env::temp_dir().join(format!("gamedeploy-cluster-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(["cluster", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gamedeploy cluster");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(
            Instant::now() < deadline,
            "gamedeploy cluster did not write its kubeconfig"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Cluster { child, kubeconfig }
}

/// Runs kubectl against `kubeconfig`; its stdout, or a failed test saying why.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, text, stderr) = run_kubectl(kubeconfig, args);
    assert!(ok, "kubectl {args:?} failed: {stderr}{text}");
    text
}

/// Runs kubectl and returns (success, stdout and stderr), for commands expected to fail.
pub fn kubectl_result(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let (ok, stdout, stderr) = run_kubectl(kubeconfig, args);
    (ok, format!("{stdout}{stderr}"))
}

fn run_kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
