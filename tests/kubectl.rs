//! The real `kubectl` against `gamedeploy cluster --operator`, through the seed's commands.
//! Skipped, loudly, when no kubectl is on PATH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Cluster {
    child: Child,
    kubeconfig: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn start() -> Cluster {
    let dir = std::env::temp_dir().join(format!("gamedeploy-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args([
            "cluster",
            "--listen",
            "127.0.0.1:0",
            "--operator",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
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

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Runs kubectl and returns (success, stdout and stderr), for commands expected to fail.
fn kubectl_result(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Polls a kubectl command until `done` holds (bounded; never asserts a duration).
fn eventually(kubeconfig: &Path, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl(kubeconfig, args);
        if done(&out) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_seed_commands_work_with_a_real_kubectl() {
    if !kubectl_available() {
        eprintln!("SKIPPED: no kubectl on PATH; the kubectl end-to-end test did not run");
        return;
    }
    let cluster = start();
    let kc = cluster.kubeconfig.as_path();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/inplace-update.yaml"
    );
    let applied = kubectl(kc, &["apply", "-f", example]);
    assert!(
        applied.contains("gamedeployment.tkex.tencent.com/test-gamedeployment created"),
        "{applied}"
    );
    let manifest = std::fs::read_to_string(example).unwrap();
    let dir = cluster.kubeconfig.parent().unwrap();
    // An unknown field: kubectl finds `fieldValidation` in the OpenAPI v3 document, skips
    // client-side validation and the server rejects the object as a real cluster does.
    let typo = dir.join("typo.yaml");
    std::fs::write(
        &typo,
        manifest
            .replace("name: test-gamedeployment", "name: typo-gamedeployment")
            .replace("replicas:", "replicaz:"),
    )
    .unwrap();
    let (ok, out) = kubectl_result(kc, &["apply", "-f", typo.to_str().unwrap()]);
    assert!(!ok, "an unknown field must be rejected: {out}");
    assert!(
        out.contains("Error from server (BadRequest)")
            && out.contains("strict decoding error: unknown field \"spec.replicaz\""),
        "{out}"
    );
    // Applying a changed manifest again computes a patch (JSON merge patch for a custom resource).
    let changed = dir.join("changed.yaml");
    assert!(manifest.contains("image: python:3.9"), "example changed?");
    std::fs::write(
        &changed,
        manifest.replace("image: python:3.9", "image: python:3.10"),
    )
    .unwrap();
    let reapplied = kubectl(kc, &["apply", "-f", changed.to_str().unwrap()]);
    assert!(
        reapplied.contains("gamedeployment.tkex.tencent.com/test-gamedeployment configured"),
        "{reapplied}"
    );
    let yaml = kubectl(
        kc,
        &["get", "gamedeployment", "test-gamedeployment", "-o", "yaml"],
    );
    assert!(yaml.contains("image: python:3.10"), "{yaml}");
    let pods = eventually(kc, &["get", "pods"], |o| {
        o.matches("test-gamedeployment-").count() == 8
    });
    assert_eq!(pods.matches("test-gamedeployment-").count(), 8, "{pods}");
    assert!(pods.starts_with("NAME"), "table output: {pods}");
    let gd = eventually(kc, &["get", "gamedeployment"], |o| o.contains(" 8 "));
    for column in [
        "NAME",
        "DESIRED",
        "UPDATED",
        "UPDATED_READY",
        "READY",
        "TOTAL",
        "AGE",
    ] {
        assert!(gd.contains(column), "{column} missing: {gd}");
    }
    let patched = kubectl(
        kc,
        &[
            "patch",
            "gamedeployment",
            "test-gamedeployment",
            "--type=json",
            "-p=[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\":\"python:latest\"}]",
        ],
    );
    assert!(patched.contains("patched"), "{patched}");
    let yaml = kubectl(
        kc,
        &["get", "gamedeployment", "test-gamedeployment", "-o", "yaml"],
    );
    assert!(yaml.contains("image: python:latest"), "{yaml}");
    let scaled = kubectl(kc, &["scale", "gd", "test-gamedeployment", "--replicas=9"]);
    assert!(scaled.contains("scaled"), "{scaled}");
    let pods = eventually(kc, &["get", "pods"], |o| {
        o.matches("test-gamedeployment-").count() == 9
    });
    assert_eq!(pods.matches("test-gamedeployment-").count(), 9, "{pods}");
}
