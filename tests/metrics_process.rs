//! `gamedeploy run` as a process against `gamedeploy cluster`: its /healthz, /readyz and
//! /metrics answer over plain HTTP, it leads through the Lease, and it releases the lease on
//! SIGTERM (issue 11).

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/process.rs"]
mod process;
use process::{Reaped, free_port, get, poll};

#[test]
fn run_serves_health_readiness_and_metrics_and_releases_the_lease_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("gamedeploy-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let api_port = free_port();
    let _cluster = Reaped(
        Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
            .args(["cluster", "--listen", &format!("127.0.0.1:{api_port}")])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gamedeploy cluster"),
    );
    poll("the cluster", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", api_port)).ok()
    });
    let metrics_port = free_port();
    let mut run = Reaped(
        Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
            .args(["run", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--lease-namespace", "default", "--log-format", "json"])
            .env("HOSTNAME", "operator-0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gamedeploy run"),
    );
    let (status, body) = poll("/healthz", Duration::from_secs(30), || {
        get(metrics_port, "/healthz")
    });
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let body = poll("/readyz to answer 200", Duration::from_secs(30), || {
        get(metrics_port, "/readyz").filter(|(s, _)| *s == 200)
    })
    .1;
    assert_eq!(body, "leader: caches synced\n");
    let (status, metrics) = get(metrics_port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "bkbcs_gamedeployment_leader 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE bkbcs_gamedeployment_operator_version"));
    assert!(metrics.trim_end().ends_with("# EOF"));

    let kill = Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = poll("run to exit", Duration::from_secs(10), || {
        run.0.try_wait().unwrap()
    });
    assert!(status.success(), "exit {status}");
    let mut stderr = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.lines().all(|l| l.starts_with('{')),
        "--log-format json writes JSON lines:\n{stderr}"
    );
    assert!(
        stderr.contains("released the leader lease"),
        "the lease is released on SIGTERM:\n{stderr}"
    );
}

#[test]
fn the_embedded_clusters_operator_serves_metrics_when_asked() {
    let dir =
        std::env::temp_dir().join(format!("gamedeploy-cluster-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (api_port, metrics_port) = (free_port(), free_port());
    let _cluster = Reaped(
        Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
            .args([
                "cluster",
                "--operator",
                "--listen",
                &format!("127.0.0.1:{api_port}"),
            ])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .arg("--kubeconfig-out")
            .arg(dir.join("kubeconfig"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gamedeploy cluster"),
    );
    let body = poll("/readyz to answer 200", Duration::from_secs(30), || {
        get(metrics_port, "/readyz").filter(|(s, _)| *s == 200)
    })
    .1;
    assert_eq!(body, "running (no leader election): caches synced\n");
    let (status, metrics) = get(metrics_port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("bkbcs_gamedeployment_leader 1"),
        "{metrics}"
    );
}
