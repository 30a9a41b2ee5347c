//! The real `kubectl` against `gamedeploy cluster --operator`, through the seed's commands.
//! Skipped, loudly, when no kubectl is on PATH.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cluster.rs"]
mod cluster;
use cluster::{kubectl, kubectl_result, skipped, start};

/// The seed's GameDeployment, as its session applies it.
const SEED_EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/examples/inplace-update.yaml"
);

/// A child process killed when the test ends, even when it fails half-way.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls a kubectl command until `done` holds (bounded; never asserts a duration).
fn eventually(kubeconfig: &Path, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    eventually_within(kubeconfig, args, Duration::from_secs(60), done)
}

fn eventually_within(
    kubeconfig: &Path,
    args: &[&str],
    bound: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    poll(bound, || kubectl(kubeconfig, args), |out| done(out))
}

/// Calls `observe` until `done` holds or `bound` has passed; returns the last observation.
fn poll<T>(bound: Duration, mut observe: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + bound;
    loop {
        let seen = observe();
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_seed_commands_work_with_a_real_kubectl() {
    if skipped("the kubectl end-to-end test") {
        return;
    }
    let cluster = start("seed", &["--operator"]);
    let kc = cluster.kubeconfig.as_path();
    let applied = kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    assert!(
        applied.contains("gamedeployment.tkex.tencent.com/test-gamedeployment created"),
        "{applied}"
    );
    let manifest = std::fs::read_to_string(SEED_EXAMPLE).unwrap();
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

/// `kubectl apply` of the seed example, then `kubectl get pods` once all eight run and serve.
fn apply_seed_until_running(kc: &Path) -> String {
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let running = |o: &str| o.matches("1/1     Running   0").count() == 8;
    let pods = eventually(kc, &["get", "pods"], running);
    assert!(running(&pods), "{pods}");
    pods
}

/// The seed's session exactly as its text gives it, in real time against `gamedeploy cluster
/// --operator --kubelet`: apply, get, the JSON patch, then five of the eight pods restarted once
/// in place (same names), three untouched, and `8 5 5 8 8`. Takes the rollout's real ~100 s.
#[test]
fn the_seed_session_as_written_restarts_five_pods_in_place() {
    if skipped("the kubectl seed session") {
        return;
    }
    let cluster = start("session", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    let before = apply_seed_until_running(kc);
    let names = |table: &str| -> Vec<String> {
        table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    let gd = eventually(kc, &["get", "gamedeployment"], |o| {
        o.contains("8         8         8               8       8")
    });
    assert!(
        gd.contains("test-gamedeployment   8         8         8               8       8"),
        "{gd}"
    );
    kubectl(
        kc,
        &[
            "patch",
            "gamedeployment",
            "test-gamedeployment",
            "--type=json",
            "-p=[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\":\"python:latest\"}]",
        ],
    );
    let done =
        |o: &str| o.contains("test-gamedeployment   8         5         5               8       8");
    let gd = eventually_within(
        kc,
        &["get", "gamedeployment"],
        Duration::from_secs(300),
        done,
    );
    assert!(done(&gd), "{gd}");
    let after = kubectl(kc, &["get", "pods"]);
    assert_eq!(
        names(&after),
        names(&before),
        "same pods, in place: {after}"
    );
    assert_eq!(after.matches("1/1     Running   1").count(), 5, "{after}");
    assert_eq!(after.matches("1/1     Running   0").count(), 3, "{after}");
}

/// Asserts that `kubectl get KIND NAME` fails with NotFound, exit code 1, as on a real cluster.
fn assert_not_found(kubeconfig: &Path, kind: &str, name: &str) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(["get", kind, name])
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kubectl get {kind} {name}: {stderr}"
    );
    assert!(
        stderr.contains("Error from server (NotFound)")
            && stderr.contains(&format!("\"{name}\" not found")),
        "{stderr}"
    );
}

/// Names of the GameDeployment's pods (none is an empty list: kubectl says so on stderr).
fn pod_names(kubeconfig: &Path) -> Vec<String> {
    let (ok, out) = kubectl_result(kubeconfig, &["get", "pods", "-o", "name"]);
    assert!(ok, "{out}");
    out.lines()
        .filter_map(|l| l.strip_prefix("pod/"))
        .filter(|n| n.starts_with("test-gamedeployment-"))
        .map(str::to_string)
        .collect()
}

/// Polls `pod_names` until `done` holds (bounded).
fn pods_until(kubeconfig: &Path, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    poll(
        Duration::from_secs(60),
        || pod_names(kubeconfig),
        |names| done(names),
    )
}

/// `kubectl delete` (which waits for the object to be gone) by name and by file, for a pod and
/// a GameDeployment, with the simulated kubelet running pods so their deletion is graceful; the
/// GameDeployment's pods and revisions are garbage-collected.
#[test]
fn kubectl_delete_removes_objects_and_their_dependents() {
    if skipped("the kubectl delete test") {
        return;
    }
    let cluster = start("delete", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    // The simulated kubelet's containers ignore SIGTERM and use the whole grace period, so
    // the pods get a short one: deletion stays graceful without a 30 s wait.
    let manifest = std::fs::read_to_string(SEED_EXAMPLE).unwrap();
    let indent = manifest
        .lines()
        .find_map(|l| l.strip_suffix("containers:"))
        .expect("example has containers")
        .to_string();
    let path = cluster
        .kubeconfig
        .parent()
        .unwrap()
        .join("short-grace.yaml");
    std::fs::write(
        &path,
        manifest.replacen(
            &format!("{indent}containers:"),
            &format!("{indent}terminationGracePeriodSeconds: 1\n{indent}containers:"),
            1,
        ),
    )
    .unwrap();
    let example = path.to_str().unwrap();
    kubectl(kc, &["apply", "-f", example]);
    let pods = pods_until(kc, |p| p.len() == 8);
    assert_eq!(pods.len(), 8, "{pods:?}");

    let doomed = pods[0].clone();
    let out = kubectl(kc, &["annotate", "pod", &doomed, "example.com/note=doomed"]);
    assert_eq!(out.trim(), format!("pod/{doomed} annotated"));
    let yaml = kubectl(kc, &["get", "pod", &doomed, "-o", "yaml"]);
    assert!(yaml.contains("example.com/note: doomed"), "{yaml}");
    let described = kubectl(kc, &["describe", "gd", "test-gamedeployment"]);
    assert!(
        described.contains("Name:") && described.contains("test-gamedeployment"),
        "{described}"
    );

    // A pod by name: kubectl waits until it is gone, and the operator replaces it.
    let out = kubectl(kc, &["delete", "pod", &doomed]);
    assert_eq!(out.trim(), format!("pod \"{doomed}\" deleted"));
    assert_not_found(kc, "pod", &doomed);
    let replaced = pods_until(kc, |p| p.len() == 8 && !p.contains(&doomed));
    assert!(
        replaced.len() == 8 && !replaced.contains(&doomed),
        "{replaced:?}"
    );

    let yaml = kubectl(kc, &["get", "pod", &replaced[0], "-o", "yaml"]);
    assert!(yaml.contains("terminationGracePeriodSeconds: 1"), "{yaml}");

    // The GameDeployment by name: gone, and its pods and revisions with it.
    let out = kubectl(kc, &["delete", "gamedeployment", "test-gamedeployment"]);
    assert_eq!(
        out.trim(),
        "gamedeployment.tkex.tencent.com \"test-gamedeployment\" deleted"
    );
    assert_not_found(kc, "gamedeployment", "test-gamedeployment");
    let left = pods_until(kc, |p| p.is_empty());
    assert!(left.is_empty(), "owned pods not collected: {left:?}");
    let revisions = kubectl(kc, &["get", "controllerrevisions", "-o", "name"]);
    assert!(revisions.trim().is_empty(), "{revisions}");

    // Again from the file.
    kubectl(kc, &["apply", "-f", example]);
    let pods = pods_until(kc, |p| p.len() == 8);
    assert_eq!(pods.len(), 8, "{pods:?}");
    let out = kubectl(kc, &["delete", "-f", example]);
    assert_eq!(
        out.trim(),
        "gamedeployment.tkex.tencent.com \"test-gamedeployment\" deleted"
    );
    assert_not_found(kc, "gd", "test-gamedeployment");
    let left = pods_until(kc, |p| p.is_empty());
    assert!(left.is_empty(), "owned pods not collected: {left:?}");
}

/// `gamedeploy run` as its own process against `gamedeploy cluster` (as against any cluster,
/// through a kubeconfig): it creates the pods, and SIGTERM stops it cleanly (exit status 0).
#[test]
fn gamedeploy_run_drives_a_cluster_through_its_kubeconfig_and_stops_on_sigterm() {
    if skipped("the gamedeploy run test") {
        return;
    }
    let cluster = start("run", &["--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    // Its own metrics port: the default 8080 may be taken on a shared machine.
    let mut operator = Killed(
        Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
            .args(["run", "--metrics-addr", "127.0.0.1:0", "--kubeconfig"])
            .arg(kc)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gamedeploy run"),
    );
    let operator = &mut operator.0;
    apply_seed_until_running(kc);
    // The shell's builtin kill: no extra package needed.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", operator.id())])
        .status()
        .expect("run sh");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = operator.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "gamedeploy run ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "gamedeploy run exited with {status}");
}

/// `kubectl apply -k deploy/` against `gamedeploy cluster` creates every object of the install,
/// and the deletion-protection policy it installs refuses what the Go original's webhook
/// refused: a GameDeployment without `io.tencent.bcs.dev/deletion-allow`, one labelled
/// `Cascading` while it has replicas, and the CRD; it lets `Cascading` at 0 replicas through.
#[test]
fn kubectl_apply_k_installs_everything_and_deletion_protection_holds() {
    if skipped("kubectl apply -k deploy/") {
        return;
    }
    let c = start("install", &[]);
    let kc = c.kubeconfig.as_path();
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    kubectl(kc, &["apply", "-k", deploy]);
    for (kind, name, ns) in [
        ("namespace", "gamedeploy", None),
        ("serviceaccount", "gamedeploy", Some("gamedeploy")),
        ("clusterrole", "gamedeploy", None),
        ("clusterrolebinding", "gamedeploy", None),
        ("role", "gamedeploy-leader-election", Some("gamedeploy")),
        (
            "rolebinding",
            "gamedeploy-leader-election",
            Some("gamedeploy"),
        ),
        ("deployment", "gamedeploy", Some("gamedeploy")),
        ("service", "gamedeploy-metrics", Some("gamedeploy")),
        ("crd", "gamedeployments.tkex.tencent.com", None),
        (
            "validatingadmissionpolicy",
            "gamedeploy-deletion-protection",
            None,
        ),
        (
            "validatingadmissionpolicybinding",
            "gamedeploy-deletion-protection",
            None,
        ),
        (
            "validatingadmissionpolicy",
            "gamedeploy-crd-deletion-protection",
            None,
        ),
        (
            "validatingadmissionpolicybinding",
            "gamedeploy-crd-deletion-protection",
            None,
        ),
    ] {
        let mut args = vec!["get", kind, name, "-o", "name"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        assert!(!kubectl(kc, &args).is_empty(), "{kind}/{name}");
    }
    // Applying again changes nothing and fails nothing.
    kubectl(kc, &["apply", "-k", deploy]);

    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let gd = "gamedeployment/test-gamedeployment";
    let refused = |what: &str| {
        let (ok, out) = kubectl_result(kc, &["delete", gd, "--wait=false"]);
        assert!(!ok, "{what}: the delete went through: {out}");
        assert!(out.contains("is protected from deletion"), "{what}: {out}");
    };
    refused("no label");
    kubectl(
        kc,
        &["label", gd, "io.tencent.bcs.dev/deletion-allow=Cascading"],
    );
    refused("Cascading with 8 replicas");
    let (ok, out) = kubectl_result(
        kc,
        &[
            "delete",
            "crd",
            "gamedeployments.tkex.tencent.com",
            "--wait=false",
        ],
    );
    assert!(!ok && out.contains("is protected from deletion"), "{out}");
    kubectl(kc, &["scale", gd, "--replicas=0"]);
    kubectl(kc, &["delete", gd, "--wait=false"]);
    assert_not_found(kc, "gamedeployment", "test-gamedeployment");
}

/// Writes `text` beside the cluster's kubeconfig as `name`; its path.
fn manifest(cluster: &cluster::Cluster, name: &str, text: &str) -> String {
    let path = cluster.kubeconfig.parent().unwrap().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `kubectl apply --server-side`: the first manager owns the field, a second one conflicts
/// with kubectl's own message, `--force-conflicts` takes it over; the managers show.
#[test]
fn kubectl_apply_server_side_conflicts_and_forces() {
    if skipped("kubectl apply --server-side") {
        return;
    }
    let cluster = start("ssa", &[]);
    let kc = cluster.kubeconfig.as_path();
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"{value}\"\n"
        )
    };
    let first = manifest(&cluster, "ssa-1.yaml", &cm("1"));
    let out = kubectl(kc, &["apply", "--server-side", "-f", &first]);
    assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
    let second = manifest(&cluster, "ssa-2.yaml", &cm("2"));
    let apply_other = [
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        &second,
    ];
    let (ok, out) = kubectl_result(kc, &apply_other);
    assert!(!ok, "a conflicting apply succeeded: {out}");
    assert!(
        out.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.a")
            && out.contains("--force-conflicts"),
        "{out}"
    );
    let forced = [&apply_other[..], &["--force-conflicts"]].concat();
    let out = kubectl(kc, &forced);
    assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
    let value = kubectl(kc, &["get", "configmap", "ssa", "-o", "jsonpath={.data.a}"]);
    assert_eq!(value, "2");
    let managers = kubectl(
        kc,
        &[
            "get",
            "configmap",
            "ssa",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert_eq!(managers, "other", "the forced apply took the only field");
}

/// `kubectl wait`: for a condition (pods made ready by the simulated kubelet), for a JSONPath
/// value, and for deletion.
#[test]
fn kubectl_wait_for_condition_jsonpath_and_delete() {
    if skipped("kubectl wait") {
        return;
    }
    let cluster = start("wait", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let gd = "gamedeployment/test-gamedeployment";
    let out = kubectl(
        kc,
        &[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=8",
            gd,
            "--timeout=60s",
        ],
    );
    assert!(out.contains("test-gamedeployment condition met"), "{out}");
    let out = kubectl(
        kc,
        &[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-l",
            "app=test-gamedeployment",
            "--timeout=60s",
        ],
    );
    assert_eq!(out.matches("condition met").count(), 8, "{out}");
    let cm = manifest(
        &cluster,
        "gone.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gone\n",
    );
    kubectl(kc, &["apply", "-f", &cm]);
    kubectl(kc, &["delete", "configmap", "gone", "--wait=false"]);
    kubectl(
        kc,
        &["wait", "--for=delete", "configmap/gone", "--timeout=30s"],
    );
}

/// `kubectl get events` and `kubectl events` list what the operator recorded, and a field
/// selector on the involved object narrows them.
#[test]
fn kubectl_get_events_lists_the_operators_events() {
    if skipped("kubectl get events") {
        return;
    }
    let cluster = start("events", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let names = eventually(
        kc,
        &[
            "get",
            "events",
            "-o",
            "name",
            "--field-selector",
            "involvedObject.kind=GameDeployment",
        ],
        |out| out.lines().count() >= 8,
    );
    assert!(
        names
            .lines()
            .all(|l| l.starts_with("event/test-gamedeployment.")),
        "{names}"
    );
    let out = kubectl(
        kc,
        &["events", "--for", "gamedeployment/test-gamedeployment"],
    );
    assert!(
        out.contains("SuccessfulCreate") && out.contains("GameDeployment/test-gamedeployment"),
        "{out}"
    );
    let reasons = kubectl(
        kc,
        &[
            "get",
            "events",
            "--field-selector",
            "reason=SuccessfulCreate",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
    );
    assert!(
        reasons.split(' ').all(|r| r == "SuccessfulCreate") && !reasons.is_empty(),
        "{reasons}"
    );
}

/// kube-apiserver prints events as `LAST SEEN TYPE REASON OBJECT MESSAGE` (its `printEvent`),
/// OBJECT as `kind/name` with the kind lower-cased, and `-o wide` adds SUBOBJECT, SOURCE,
/// FIRST SEEN, COUNT and NAME.
#[test]
fn kubectl_get_events_prints_kube_apiservers_columns() {
    if skipped("kubectl get events columns") {
        return;
    }
    let cluster = start("event-columns", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let out = eventually(kc, &["get", "events"], |out| {
        out.contains("SuccessfulCreate")
    });
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("SuccessfulCreate")
                && l.contains("gamedeployment/test-gamedeployment")),
        "{out}"
    );
    let wide = kubectl(kc, &["get", "events", "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "LAST",
            "SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST",
            "SEEN",
            "COUNT",
            "NAME"
        ],
        "{wide}"
    );
}

/// `kubectl create <kind>` sends protobuf for built-in kinds (its typed clients prefer it): each
/// generator for a kind the embedded server serves works, and what it stored reads back.
#[test]
fn kubectl_create_generators_send_protobuf_and_work() {
    if skipped("kubectl create generators") {
        return;
    }
    let cluster = start("create", &[]);
    let kc = cluster.kubeconfig.as_path();
    let creates: [&[&str]; 10] = [
        &["create", "namespace", "games"],
        &["create", "configmap", "made", "--from-literal=a=b"],
        &[
            "create",
            "secret",
            "generic",
            "made",
            "--from-literal=password=hunter2",
        ],
        &[
            "create",
            "deployment",
            "made",
            "--image=busybox",
            "--replicas=2",
            "--port=8080",
        ],
        &["create", "serviceaccount", "made"],
        &["create", "service", "clusterip", "made", "--tcp=80:http"],
        &["create", "role", "made", "--verb=get", "--resource=pods"],
        &[
            "create",
            "rolebinding",
            "made",
            "--role=made",
            "--serviceaccount=default:made",
        ],
        &[
            "create",
            "clusterrole",
            "made",
            "--verb=list",
            "--resource=nodes",
        ],
        &[
            "create",
            "clusterrolebinding",
            "made",
            "--clusterrole=made",
            "--user=alice",
        ],
    ];
    let mut failed = Vec::new();
    for args in creates {
        let (ok, out) = kubectl_result(kc, args);
        if !ok {
            failed.push(format!("kubectl {}: {out}", args.join(" ")));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let get = |args: &[&str]| kubectl(kc, args);
    assert_eq!(
        get(&[
            "get",
            "namespace",
            "games",
            "-o",
            "jsonpath={.metadata.name}"
        ]),
        "games"
    );
    assert_eq!(
        get(&["get", "configmap", "made", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    assert_eq!(
        get(&["get", "secret", "made", "-o", "jsonpath={.data.password}"]),
        "aHVudGVyMg=="
    );
    assert_eq!(
        get(&[
            "get",
            "deployment",
            "made",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"
        ]),
        "2 busybox 8080"
    );
    assert_eq!(
        get(&[
            "get",
            "service",
            "made",
            "-o",
            "jsonpath={.spec.ports[0].port} {.spec.ports[0].targetPort}"
        ]),
        "80 http"
    );
    assert_eq!(
        get(&[
            "get",
            "rolebinding",
            "made",
            "-o",
            "jsonpath={.roleRef.name} {.subjects[0].kind}"
        ]),
        "made ServiceAccount"
    );
}

/// `kubectl patch --subresource resize` (strategic merge, kubectl's default): cpu changes and
/// the generation moves; a QoS-changing resize and a resource change through the pod itself
/// are refused with kube-apiserver's messages.
#[test]
fn kubectl_patch_subresource_resize() {
    if skipped("kubectl patch --subresource resize") {
        return;
    }
    let cluster = start("resize", &[]);
    let kc = cluster.kubeconfig.as_path();
    let pod = manifest(
        &cluster,
        "resize.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx:1\n    resources:\n      requests: {cpu: \"1\", memory: 64Mi}\n      limits: {cpu: \"3\", memory: 128Mi}\n",
    );
    kubectl(kc, &["apply", "-f", &pod]);
    let resize = |cpu: &str, memory: &str| {
        let patch = format!(
            r#"{{"spec":{{"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"{memory}"}}}}}}]}}}}"#
        );
        kubectl_result(
            kc,
            &["patch", "pod", "p", "--subresource", "resize", "-p", &patch],
        )
    };
    let (ok, out) = resize("2", "64Mi");
    assert!(ok && out.contains("pod/p patched"), "{out}");
    let seen = kubectl(
        kc,
        &[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.metadata.generation} {.spec.containers[0].resources.requests.cpu}",
        ],
    );
    assert_eq!(seen, "2 2");
    let (ok, out) = resize("3", "128Mi");
    assert!(!ok, "a Burstable pod made Guaranteed: {out}");
    assert!(
        out.contains("spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"),
        "{out}"
    );
    let main = r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"1"}}}]}}"#;
    let (ok, out) = kubectl_result(kc, &["patch", "pod", "p", "-p", main]);
    assert!(!ok, "resources changed through the pod itself: {out}");
    assert!(
        out.contains("spec: Forbidden: pod updates may not change fields other than"),
        "{out}"
    );
}

/// `gamedeploy cluster --kubelet --nodes 3 --node-cpu 4 --node-memory 8Gi`: three nodes with
/// that allocatable, as `kubectl get nodes` shows them, and a pod bound to one of them.
#[test]
fn nodes_flag_runs_that_many_nodes_with_capacity() {
    if skipped("nodes_flag_runs_that_many_nodes_with_capacity") {
        return;
    }
    let cluster = start(
        "nodes",
        &[
            "--kubelet",
            "--nodes",
            "3",
            "--node-cpu",
            "4",
            "--node-memory",
            "8Gi",
        ],
    );
    let kc = &cluster.kubeconfig;
    let names = eventually(
        kc,
        &["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"],
        |out| out.split_whitespace().count() == 3,
    );
    assert_eq!(names.trim(), "sim-node sim-node-2 sim-node-3");
    let pods = kubectl(
        kc,
        &[
            "get",
            "node",
            "sim-node-3",
            "-o",
            "jsonpath={.status.allocatable.pods} {.status.allocatable.cpu} {.status.allocatable.memory}",
        ],
    );
    assert_eq!(pods.trim(), "65534 4 8Gi");
    kubectl(kc, &["run", "one", "--image", "game:1"]);
    eventually(
        kc,
        &["get", "pod", "one", "-o", "jsonpath={.spec.nodeName}"],
        |out| out.trim() == "sim-node",
    );
}
