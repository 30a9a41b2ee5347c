//! Two `gamedeploy run` processes against `gamedeploy cluster --kubelet`, in real time: the
//! leader is killed (SIGKILL) in the middle of the seed's rollout, the standby takes the Lease
//! and the seed's session completes as written (five pods restarted once in place, `8 5 5 8 8`),
//! and the standby wrote nothing while it was standby. Skipped, loudly, without kubectl.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/process.rs"]
mod process;
use cluster::{kubectl, skipped};
use process::{Reaped, free_port, get, poll};

/// `/metrics` of the operator on `port`, or `None` if it does not answer.
fn metrics(port: u16) -> Option<String> {
    get(port, "/metrics").map(|(_, body)| body)
}

fn leads(port: u16) -> bool {
    metrics(port).is_some_and(|m| m.lines().any(|l| l == "bkbcs_gamedeployment_leader 1"))
}

/// API writes the operator on `port` reports having sent.
fn writes(port: u16) -> f64 {
    metrics(port)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("bkbcs_gamedeployment_api_writes_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Starts `gamedeploy run`; its log goes to `log`, for the reader of a failure.
fn operator(kubeconfig: &PathBuf, name: &str, port: u16, log: &Path) -> Reaped {
    let log = std::fs::File::create(log).expect("create the operator's log");
    Reaped(
        Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
            .args(["run", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--lease-namespace", "default"])
            .env("HOSTNAME", name)
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_LOG")
                    .unwrap_or_else(|_| "info,gamedeploy_operator=debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gamedeploy run"),
    )
}

/// Under load this found a new leader that reported ready, renewed the Lease, and never
/// reconciled (kube-runtime's store readiness wakes only its last waiter; see
/// `tests/operator.rs::an_operator_whose_pod_list_arrives_last_still_reconciles`). On a
/// failure it prints the new leader's log.
#[test]
fn the_standby_finishes_the_seed_session_after_the_leader_is_killed_mid_rollout() {
    if skipped("the leader hand-over session") {
        return;
    }
    let cluster = cluster::start("leader", &["--kubelet"]);
    let kc = cluster.kubeconfig.clone();
    let dir = kc.parent().unwrap().to_path_buf();
    let ports = [free_port(), free_port()];
    let logs = [dir.join("operator-a.log"), dir.join("operator-b.log")];
    let mut ops = [
        Some(operator(&kc, "operator-a", ports[0], &logs[0])),
        Some(operator(&kc, "operator-b", ports[1], &logs[1])),
    ];
    let leader = poll("a leader", Duration::from_secs(60), || {
        (0..2).find(|i| leads(ports[*i]))
    });
    let standby = 1 - leader;

    // The seed's session: apply, wait for eight running pods, patch the image.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/inplace-update.yaml"
    );
    kubectl(&kc, &["apply", "-f", example]);
    poll("8 running pods", Duration::from_secs(120), || {
        let pods = kubectl(&kc, &["get", "pods"]);
        (pods.matches("1/1     Running   0").count() == 8).then_some(())
    });
    kubectl(
        &kc,
        &[
            "patch",
            "gamedeployment",
            "test-gamedeployment",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"python:latest"}]"#,
        ],
    );
    // Mid-rollout: the first pods are out of endpoints, waiting out their grace (the record
    // says `Unready`; GracefulWait is derived from it and the clock).
    poll(
        "pods in their grace period",
        Duration::from_secs(60),
        || {
            let states = kubectl(
                &kc,
                &[
                    "get",
                    "pods",
                    "-o",
                    "jsonpath={.items[*].metadata.annotations}",
                ],
            );
            states.contains(r#"\"state\":\"Unready\""#).then_some(())
        },
    );
    assert!(leads(ports[leader]) && !leads(ports[standby]));
    assert_eq!(
        writes(ports[standby]),
        0.0,
        "the standby wrote while standing by"
    );
    ops[leader] = None; // SIGKILL: no lease release, no goodbye.
    poll(
        "the standby to take the lease",
        Duration::from_secs(60),
        || leads(ports[standby]).then_some(()),
    );

    // A liveness bound, not a timing assertion: the rollout itself takes about 100 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let done = loop {
        let gd = kubectl(&kc, &["get", "gamedeployment", "test-gamedeployment"]);
        let row: Vec<String> = gd
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        if row.len() > 5 && row[1..6] == ["8", "5", "5", "8", "8"] {
            break row;
        }
        if std::time::Instant::now() > deadline {
            // What a reader needs to see why it stalled.
            let pods = kubectl(&kc, &["get", "pods", "-o", "wide"]);
            let lease = kubectl(&kc, &["get", "lease", "-o", "yaml"]);
            let readyz = get(ports[standby], "/readyz");
            let log = std::fs::read_to_string(&logs[standby]).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "no `8 5 5 8 8`: {gd}\n{pods}\n{lease}\nstandby /readyz: {readyz:?}\nthe new leader's log ({}), last lines:\n{}",
                logs[standby].display(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(done[0], "test-gamedeployment");
    let pods = kubectl(&kc, &["get", "pods", "--no-headers"]);
    let restarts: Vec<&str> = pods
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(restarts.iter().filter(|r| **r == "1").count(), 5, "{pods}");
    assert_eq!(restarts.iter().filter(|r| **r == "0").count(), 3, "{pods}");
    let images = kubectl(
        &kc,
        &[
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert_eq!(images.matches("python:latest").count(), 5, "{images}");
    assert!(
        writes(ports[standby]) > 0.0,
        "the new leader finished the rollout"
    );
}
