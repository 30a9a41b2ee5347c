//! The official client libraries against `gamedeploy cluster`, each reading the kubeconfig
//! exactly as the cluster writes it (HTTPS, its CA; no insecure flag): the Python client
//! `kubernetes` (scripts in `tests/clients/python/`, run with the virtual environment
//! `.ci/run` makes in `target/clients/py`) and the JavaScript `@kubernetes/client-node`
//! (`tests/clients/js/`, installed there by `npm ci`). Each script exits non-zero saying which
//! step failed. Without the clients installed a test is skipped, loudly; with `CI=true` it
//! fails instead, so CI can never skip them silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cluster.rs"]
mod cluster;

/// Bound on one script's run; never a measured duration.
const SCRIPT_BOUND: Duration = Duration::from_secs(180);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A test that cannot run because `what` is missing: skipped, said on stderr; a failure
/// instead under `CI=true`.
fn missing(test: &str, what: &str) -> Option<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {what}; CI must run it (.ci/run installs the clients)");
    }
    eprintln!("SKIPPED: {test} did not run: {what} (run .ci/run's client install steps)");
    None
}

/// The virtual environment's Python, when the pinned client is installed in it.
fn python(test: &str) -> Option<PathBuf> {
    let py = root().join("target/clients/py/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let what = format!("no Python client `kubernetes` in {}", py.display());
        return missing(test, &what);
    }
    Some(py)
}

/// `node`, when `@kubernetes/client-node` is installed in `tests/clients/js`.
fn node(test: &str) -> Option<PathBuf> {
    let installed = root()
        .join("tests/clients/js/node_modules/@kubernetes/client-node/package.json")
        .exists();
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(installed && node_ok) {
        let what =
            "no node, or no @kubernetes/client-node in tests/clients/js/node_modules (npm ci)";
        return missing(test, what);
    }
    Some(PathBuf::from("node"))
}

/// Runs `interpreter script` against a fresh `gamedeploy cluster`; fails the test with the
/// script's output unless it exits 0. Returns its stdout.
fn run_script(tag: &str, cluster_args: &[&str], interpreter: &Path, script: &Path) -> String {
    let cluster = cluster::start(tag, cluster_args);
    let mut child = Command::new(interpreter)
        .arg(script)
        .current_dir(script.parent().unwrap())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", interpreter.display()));
    let deadline = Instant::now() + SCRIPT_BOUND;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}\n{stderr}");
    // What a script could only note (a gap it works around): shown with --nocapture.
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("NOTE") || l.starts_with("KNOWN GAP"))
    {
        eprintln!("{}: {line}", script.display());
    }
    stdout
}

/// Runs `tests/clients/python/{name}.py` against `gamedeploy cluster {cluster_args}`.
fn python_script(name: &str, cluster_args: &[&str]) {
    let test = format!("the Python client's {name}");
    if let Some(py) = python(&test) {
        run_script(
            &format!("py-{name}"),
            cluster_args,
            &py,
            &root().join(format!("tests/clients/python/{name}.py")),
        );
    }
}

/// Runs `tests/clients/js/{name}.mjs` against `gamedeploy cluster {cluster_args}`.
fn js_script(name: &str, cluster_args: &[&str]) {
    let test = format!("the JavaScript client's {name}");
    if let Some(node) = node(&test) {
        run_script(
            &format!("js-{name}"),
            cluster_args,
            &node,
            &root().join(format!("tests/clients/js/{name}.mjs")),
        );
    }
}

/// ConfigMaps and Pods (CoreV1Api), GameDeployments (CustomObjectsApi, status and scale),
/// the dynamic client; create and replace bodies go without a Content-Type.
#[test]
fn python_client_crud_custom_objects_and_dynamic() {
    python_script("crud", &[]);
}

/// A watch from a resourceVersion, and the client's SharedInformer.
#[test]
fn python_client_watch_and_informer() {
    python_script("watch_informer", &[]);
}

/// `kubernetes.leaderelection` on a Lease.
#[test]
fn python_client_leader_election() {
    python_script("leader", &[]);
}

/// CRUD, label selectors, pagination, the three patch types, server-side apply with a
/// conflict, dry-run, CustomObjectsApi with status and scale, a Lease, events.
#[test]
fn javascript_client_crud_patches_apply_custom_objects_lease_events() {
    js_script("crud", &[]);
}

/// A watch with bookmarks allowed from a resourceVersion, and the informer.
#[test]
fn javascript_client_watch_and_informer() {
    js_script("watch", &[]);
}

/// `pods/resize` through CoreV1Api (patch, read, replace) with the simulated kubelet applying
/// it, and a QoS change refused with kube-apiserver's message.
#[test]
fn python_client_resizes_a_pod_in_place() {
    python_script("resize", &["--kubelet"]);
}

/// `pods/resize` through CoreV1Api (strategic merge and JSON patch, read, replace) with the
/// simulated kubelet applying it, and a QoS change refused.
#[test]
fn javascript_client_resizes_a_pod_in_place() {
    js_script("resize", &["--kubelet"]);
}
