//! `gamedeploy status` and `gamedeploy force` as processes, against `gamedeploy cluster
//! --operator --kubelet` in real time, with the real kubectl applying the seed (issue 11).
//! Skipped, loudly, when no kubectl is on PATH.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cluster.rs"]
mod cluster;
use cluster::{kubectl, skipped, start};

/// Runs `gamedeploy ARGS --kubeconfig KC` (the flag, not KUBECONFIG, is what is tested).
fn gamedeploy(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .env_remove("COLUMNS")
        .output()
        .expect("run gamedeploy")
}

fn status(kubeconfig: &Path) -> String {
    let out = gamedeploy(
        kubeconfig,
        &["status", "test-gamedeployment", "-n", "default"],
    );
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `status` until `done` holds (bounded; never asserts a duration).
fn status_until(kubeconfig: &Path, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = status(kubeconfig);
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The pod rows of a status screen, as whitespace-split cells.
fn pod_rows(screen: &str) -> Vec<Vec<String>> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("POD "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn status_shows_a_rollout_and_force_is_judged_like_the_operator() {
    if skipped("the status/force process test") {
        return;
    }
    let cluster = start("rollout", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/inplace-update.yaml"
    );
    kubectl(kc, &["apply", "-f", example]);
    let settled = |s: &str| s.contains("8 desired, 8 updated, 8 updated-ready, 8 ready, 8 total");
    let screen = status_until(kc, settled);
    assert!(settled(&screen), "{screen}");
    assert_eq!(pod_rows(&screen).len(), 8, "{screen}");

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
    // Pods move before the status does (a status write after the last one within a second
    // is held back to coalesce): wait for the screen with both, inside the 30 s grace.
    let waiting = |s: &str| {
        pod_rows(s).iter().any(|r| r[3] == "GracefulWait") && !s.contains("has not caught up")
    };
    let screen = status_until(kc, waiting);
    assert!(waiting(&screen), "{screen}");
    // The shape, not the times.
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines[0], "GameDeployment default/test-gamedeployment");
    assert_eq!(
        lines[1],
        "  strategy   InplaceUpdate, partition 3, grace 30s, not paused"
    );
    assert!(
        lines[2].starts_with("  revisions  current ") && lines[2].ends_with(" (rolling out)"),
        "{screen}"
    );
    assert!(lines[3].starts_with("  pods       8 desired, "), "{screen}");
    assert_eq!(lines[4], "  problems   none");
    let header: Vec<&str> = screen
        .lines()
        .find(|l| l.starts_with("POD "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["POD", "REV", "READY", "STATE", "FOR", "GRACE"]);
    let rows = pod_rows(&screen);
    assert_eq!(rows.len(), 8, "{screen}");
    assert!(rows.iter().all(|r| r.len() == 6), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    let pod = rows
        .iter()
        .find(|r| r[3] == "GracefulWait")
        .map(|r| r[0].clone())
        .unwrap();

    // Ready is not forcible from GracefulWait: refused, nothing written.
    let refused = gamedeploy(kc, &["force", &pod, "Ready", "-n", "default"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot force GracefulWait -> Ready")
            && stderr.contains("you may force ImagePatched, Abandoned"),
        "{stderr}"
    );
    assert!(!stderr.contains("Error {"), "no Debug output: {stderr}");

    // Skipping the rest of the grace period is.
    let forced = gamedeploy(kc, &["force", &pod, "ImagePatched", "-n", "default"]);
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(
        stdout.contains("GracefulWait -> ImagePatched requested")
            && stdout.contains("The operator will write the new images now"),
        "{stdout}"
    );
    let moved = |s: &str| {
        pod_rows(s).iter().any(|r| {
            r[0] == pod && ["ImagePatched", "Restarting", "Ready"].contains(&r[3].as_str())
        })
    };
    let screen = status_until(kc, moved);
    assert!(
        moved(&screen),
        "the operator took the forced edge:\n{screen}"
    );

    // --watch draws, then stops cleanly on Ctrl-C.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(["status", "test-gamedeployment", "--watch", "--kubeconfig"])
        .arg(kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(watch.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "GameDeployment default/test-gamedeployment\n");
    let int = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(int.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = watch.kill();
            panic!("status --watch did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}

#[test]
fn status_of_a_missing_game_deployment_says_where_it_looked() {
    let cluster = start("missing", &["--operator", "--kubelet"]);
    let out = gamedeploy(&cluster.kubeconfig, &["status", "nope", "-n", "games"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gamedeploy: GameDeployment games/nope not found (pass -n NAMESPACE if it is elsewhere)\n"
    );
}
