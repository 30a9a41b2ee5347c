//! `kubectl gamedeploy ...` through kubectl's own plugin mechanism: a directory holding
//! `kubectl-gamedeploy` (a link to the built binary) first on PATH, against `gamedeploy cluster
//! --operator --kubelet` as a process. Skipped, loudly, when no kubectl is on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/cluster.rs"]
mod cluster;
use cluster::{Cluster, kubectl, skipped, start};

const SEED_EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/examples/inplace-update.yaml"
);
const NAME: &str = "test-gamedeployment";

/// `gamedeploy cluster --operator --kubelet` whose kubelet takes `kubelet` (a scenario's
/// `kubelet:` block) through `--kubelet-config`.
fn start_with_kubelet(tag: &str, kubelet: &str) -> Cluster {
    let dir = std::env::temp_dir().join(format!("gamedeploy-plugin-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("kubelet.yaml");
    std::fs::write(&config, kubelet).unwrap();
    start(
        tag,
        &[
            "--operator",
            "--kubelet",
            "--kubelet-config",
            config.to_str().unwrap(),
        ],
    )
}

/// A directory with `kubectl-gamedeploy` linked to the built binary, for PATH.
fn plugin_dir(cluster: &Cluster) -> PathBuf {
    let dir = cluster.kubeconfig.parent().unwrap().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-gamedeploy");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gamedeploy"), &link).unwrap();
    dir
}

/// What one `kubectl gamedeploy` run gave.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `kubectl gamedeploy ARGS` with the plugin first on PATH.
fn gamedeploy(kc: &Path, plugins: &Path, args: &[&str]) -> Ran {
    let path = std::env::join_paths(std::iter::once(plugins.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = Command::new("kubectl")
        .arg("gamedeploy")
        .args(args)
        .env("KUBECONFIG", kc)
        .env("PATH", path)
        .env_remove("COLUMNS")
        .output()
        .expect("run kubectl gamedeploy");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a verb expected to succeed; its stdout.
fn ok(kc: &Path, plugins: &Path, args: &[&str]) -> String {
    let ran = gamedeploy(kc, plugins, args);
    assert_eq!(
        ran.code,
        Some(0),
        "kubectl gamedeploy {args:?}: {}{}",
        ran.stdout,
        ran.stderr
    );
    ran.stdout
}

/// `status --watch` with a bound, so a wrong verdict fails the test instead of hanging it.
fn watch(kc: &Path, plugins: &Path) -> Ran {
    gamedeploy(kc, plugins, &["status", NAME, "--watch", "--timeout", "4m"])
}

/// Polls a kubectl command until `done` holds (bounded; never asserts a duration).
fn eventually(kc: &Path, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = kubectl(kc, args);
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Each pod's (uid, restarts, image), by name.
fn pods(kc: &Path) -> Vec<(String, String, u32, String)> {
    let out = kubectl(
        kc,
        &[
            "get",
            "pods",
            "--no-headers",
            "-o",
            "custom-columns=N:.metadata.name,U:.metadata.uid,R:.status.containerStatuses[0].restartCount,I:.spec.containers[0].image",
        ],
    );
    out.lines()
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (
                c[0].to_string(),
                c[1].to_string(),
                c[2].parse().unwrap_or(0),
                c[3].to_string(),
            )
        })
        .collect()
}

/// The seed session through the plugin: apply, `status --watch` exits 0; pause holds a
/// `set image` (a bounded watch times out, exit 1), resume lets it finish (exit 0).
#[test]
fn status_watch_exits_0_on_the_seed_session_and_pause_holds_it() {
    if skipped("the kubectl plugin seed test") {
        return;
    }
    let cluster = start("plugin-seed", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    let plugins = plugin_dir(&cluster);
    let plugins = plugins.as_path();
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    let done = watch(kc, plugins);
    assert_eq!(done.code, Some(0), "{}{}", done.stdout, done.stderr);
    assert!(
        done.stdout.lines().next() == Some("GameDeployment default/test-gamedeployment")
            && done.stdout.trim_end().ends_with(
                "partitioned roll out complete: 5 new pods have been updated (partition 3)..."
            ),
        "the screen once, then one line per change: {}",
        done.stdout
    );

    assert_eq!(
        ok(kc, plugins, &["pause", NAME, "-n", "default"]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment paused\n"
    );
    let again = gamedeploy(kc, plugins, &["pause", NAME]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert_eq!(
        again.stderr,
        "error: gamedeployments.tkex.tencent.com \"test-gamedeployment\" is already paused\n"
    );
    // The seed's own change, through the verb.
    assert_eq!(
        ok(kc, plugins, &["set", "image", NAME, "python=python:latest"]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment image updated\n"
    );
    let held = gamedeploy(kc, plugins, &["status", NAME, "-w", "--timeout", "3s"]);
    assert_eq!(held.code, Some(1), "{}{}", held.stdout, held.stderr);
    assert!(
        held.stderr
            .contains("timed out after 3s waiting for the rollout")
            && held.stderr.contains("(paused: `kubectl gamedeploy resume"),
        "{}",
        held.stderr
    );
    let held_pods = pods(kc);
    assert_eq!(held_pods.len(), 8);
    assert!(held_pods.iter().all(|p| p.3 == "python:3.9"), "paused");
    assert_eq!(
        ok(kc, plugins, &["resume", NAME]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment resumed\n"
    );
    let done = watch(kc, plugins);
    assert_eq!(done.code, Some(0), "{}{}", done.stdout, done.stderr);
    let on_latest = pods(kc).iter().filter(|p| p.3 == "python:latest").count();
    assert_eq!(on_latest, 5, "partition 3 keeps 3 of 8");
    let again = gamedeploy(kc, plugins, &["resume", NAME]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert_eq!(
        again.stderr,
        "error: gamedeployments.tkex.tencent.com \"test-gamedeployment\" is not paused\n"
    );
}

/// `--kubelet-config` makes an image fail to pull: `status --watch` exits 1 and names why.
#[test]
fn status_watch_exits_1_on_a_broken_image() {
    if skipped("the kubectl plugin broken-image test") {
        return;
    }
    let cluster = start_with_kubelet(
        "plugin-broken",
        "startSeconds: 1\nreadySeconds: 1\nimages:\n  \"game:broken\": {fail: ImagePullBackOff}\n",
    );
    let kc = cluster.kubeconfig.as_path();
    let plugins = plugin_dir(&cluster);
    let plugins = plugins.as_path();
    kubectl(kc, &["apply", "-f", SEED_EXAMPLE]);
    assert_eq!(watch(kc, plugins).code, Some(0));
    let unknown = gamedeploy(kc, plugins, &["set", "image", NAME, "nope=game:2"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown
            .stderr
            .contains("unable to find container named \"nope\" in gamedeployment \"test-gamedeployment\" (it has: python)"),
        "{}",
        unknown.stderr
    );
    ok(kc, plugins, &["set", "image", NAME, "python=game:broken"]);
    let failed = watch(kc, plugins);
    assert_eq!(failed.code, Some(1), "{}{}", failed.stdout, failed.stderr);
    // The first report of the failed pod already says why (the checkpoint that failed it).
    assert!(
        failed.stderr.contains(
            "error: gamedeployment \"test-gamedeployment\" rollout failed: FailedUpdate InPlaceUpdateFailed: pod test-gamedeployment-"
        ) && failed.stderr.contains("game:broken cannot be pulled: ImagePullBackOff"),
        "{}",
        failed.stderr
    );
    let once = gamedeploy(kc, plugins, &["status", NAME]);
    assert_eq!(once.code, Some(1), "{}{}", once.stdout, once.stderr);
    assert!(
        once.stderr
            .contains("game:broken cannot be pulled: ImagePullBackOff")
            && once
                .stdout
                .starts_with("GameDeployment default/test-gamedeployment\n"),
        "{}{}",
        once.stdout,
        once.stderr
    );
}

/// An image that takes an hour to start stops the rollout without failing a pod: once
/// `spec.progressDeadlineSeconds` passes without progress, `status --watch` exits 1 naming the
/// deadline.
#[test]
fn status_watch_exits_1_on_an_exceeded_progress_deadline() {
    if skipped("the kubectl plugin deadline test") {
        return;
    }
    let cluster = start_with_kubelet(
        "plugin-deadline",
        "startSeconds: 1\nreadySeconds: 1\nimages:\n  \"game:slow\": {startSeconds: 3600}\n",
    );
    let kc = cluster.kubeconfig.as_path();
    let plugins = plugin_dir(&cluster);
    let plugins = plugins.as_path();
    let manifest = std::fs::read_to_string(SEED_EXAMPLE)
        .unwrap()
        .replace(
            "  replicas: 8\n",
            "  replicas: 8\n  progressDeadlineSeconds: 5\n",
        )
        .replace("gracePeriodSeconds: 30", "gracePeriodSeconds: 0");
    assert!(
        manifest.contains("progressDeadlineSeconds: 5"),
        "{manifest}"
    );
    let file = cluster.kubeconfig.parent().unwrap().join("deadline.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl(kc, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(watch(kc, plugins).code, Some(0));
    ok(kc, plugins, &["set", "image", NAME, "python=game:slow"]);
    let stuck = watch(kc, plugins);
    assert_eq!(stuck.code, Some(1), "{}{}", stuck.stdout, stuck.stderr);
    assert!(
        stuck.stderr.contains(
            "error: gamedeployment \"test-gamedeployment\" exceeded its progress deadline (ProgressDeadlineExceeded)"
        ),
        "{}",
        stuck.stderr
    );
}

/// `undo` moves the pods back in place (same UIDs, one more restart) and `history` lists the
/// revisions with their images and pods.
#[test]
fn undo_returns_pods_in_place_and_history_lists_the_revisions() {
    if skipped("the kubectl plugin undo test") {
        return;
    }
    let cluster = start("plugin-undo", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    let plugins = plugin_dir(&cluster);
    let plugins = plugins.as_path();
    // The seed without its partition, and a short grace period: every pod moves, quickly.
    let manifest = std::fs::read_to_string(SEED_EXAMPLE)
        .unwrap()
        .replace("partition: 3", "partition: 0")
        .replace("gracePeriodSeconds: 30", "gracePeriodSeconds: 1");
    let file = cluster
        .kubeconfig
        .parent()
        .unwrap()
        .join("unpartitioned.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl(kc, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(watch(kc, plugins).code, Some(0));
    let refused = gamedeploy(kc, plugins, &["undo", NAME]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains(
            "gamedeployment \"test-gamedeployment\" has no previous revision to roll back to"
        ),
        "{}",
        refused.stderr
    );
    let no_steps = gamedeploy(kc, plugins, &["promote", NAME]);
    assert_eq!(no_steps.code, Some(1));
    assert!(
        no_steps.stderr.contains("has no canary steps"),
        "{}",
        no_steps.stderr
    );

    ok(kc, plugins, &["set", "image", NAME, "python=python:3.10"]);
    assert_eq!(watch(kc, plugins).code, Some(0));
    let before = pods(kc);
    assert_eq!(before.len(), 8, "{before:?}");
    assert!(before.iter().all(|p| p.3 == "python:3.10"), "{before:?}");
    let history = ok(kc, plugins, &["history", NAME]);
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        history.lines().next(),
        Some("gamedeployment.tkex.tencent.com/test-gamedeployment")
    );
    assert_eq!(
        rows,
        [
            vec!["1", "<none>", "python=python:3.9", "-", "0"],
            vec!["2", "<none>", "python=python:3.10", "-", "8"],
        ],
        "{history}"
    );
    let one = ok(kc, plugins, &["history", NAME, "--revision", "1"]);
    assert!(
        one.starts_with(
            "gamedeployment.tkex.tencent.com/test-gamedeployment with revision #1\nPod Template:\n"
        ) && one.contains("image: python:3.9"),
        "{one}"
    );

    // As kubectl: no rollback of a paused rollout.
    ok(kc, plugins, &["pause", NAME]);
    let paused = gamedeploy(kc, plugins, &["undo", NAME]);
    assert_eq!(paused.code, Some(1));
    assert!(
        paused
            .stderr
            .contains("you cannot rollback a paused gamedeployment; resume it first"),
        "{}",
        paused.stderr
    );
    ok(kc, plugins, &["resume", NAME]);
    assert_eq!(
        ok(kc, plugins, &["undo", NAME]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment rolled back\n"
    );
    assert_eq!(watch(kc, plugins).code, Some(0));
    let back = |p: &[(String, String, u32, String)]| p.iter().all(|p| p.3 == "python:3.9");
    let after = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = pods(kc);
            if back(&seen) && seen.iter().all(|p| p.2 > 1) || Instant::now() > deadline {
                break seen;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    assert!(back(&after), "{after:?}");
    assert_eq!(after.len(), before.len());
    for (name, uid, restarts, _) in &before {
        let now = after
            .iter()
            .find(|p| &p.0 == name)
            .unwrap_or_else(|| panic!("pod {name} was replaced, not updated in place: {after:?}"));
        assert_eq!(&now.1, uid, "{name} kept its UID");
        assert_eq!(now.2, restarts + 1, "{name}: RESTARTS +1");
    }
    assert_eq!(
        ok(kc, plugins, &["undo", NAME, "--to-revision", "1"]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment skipped rollback (current template already matches revision 1)\n"
    );
    let missing = gamedeploy(kc, plugins, &["undo", NAME, "--to-revision", "9"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("unable to find specified revision 9 in history"),
        "{}",
        missing.stderr
    );
}

/// A canary with three pause steps: `promote` finishes the step it waits at, `--full` the rest.
#[test]
fn promote_finishes_canary_steps() {
    if skipped("the kubectl plugin promote test") {
        return;
    }
    let cluster = start("plugin-promote", &["--operator", "--kubelet"]);
    let kc = cluster.kubeconfig.as_path();
    let plugins = plugin_dir(&cluster);
    let plugins = plugins.as_path();
    let manifest = std::fs::read_to_string(SEED_EXAMPLE)
        .unwrap()
        .replace("    partition: 3\n", "")
        .replace(
            "      gracePeriodSeconds: 30\n",
            "      gracePeriodSeconds: 1\n    canary:\n      steps:\n        - partition: 6\n        - pause: {}\n        - partition: 4\n        - pause: {}\n        - partition: 2\n        - pause: {}\n",
        );
    assert!(manifest.contains("- pause: {}"), "{manifest}");
    let file = cluster.kubeconfig.parent().unwrap().join("canary.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl(kc, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(watch(kc, plugins).code, Some(0));
    ok(kc, plugins, &["set", "image", NAME, "python=python:3.10"]);
    let at_pause = |step: &str| {
        let seen = eventually(
            kc,
            &[
                "get",
                "gd",
                NAME,
                "-o",
                "jsonpath={.status.currentStepIndex} {.status.pauseConditions[*].reason}",
            ],
            |o| o == format!("{step} PausedByCanaryPauseStep"),
        );
        assert_eq!(seen, format!("{step} PausedByCanaryPauseStep"));
    };
    at_pause("1");
    let updated = || pods(kc).iter().filter(|p| p.3 == "python:3.10").count();
    assert_eq!(updated(), 2, "partition 6 of 8");
    assert_eq!(
        ok(kc, plugins, &["promote", NAME]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment promoted: canary step 1 done, now at step 2 of 6\n"
    );
    at_pause("3");
    assert_eq!(updated(), 4, "partition 4 of 8");
    assert_eq!(
        ok(kc, plugins, &["promote", NAME, "--full"]),
        "gamedeployment.tkex.tencent.com/test-gamedeployment promoted: canary steps 3 to 5 done, the rollout goes on to every pod\n"
    );
    let done = watch(kc, plugins);
    assert_eq!(done.code, Some(0), "{}{}", done.stdout, done.stderr);
    assert!(
        done.stdout
            .trim_end()
            .ends_with("gamedeployment \"test-gamedeployment\" successfully rolled out"),
        "{}",
        done.stdout
    );
    assert_eq!(updated(), 8);
    let finished = gamedeploy(kc, plugins, &["promote", NAME]);
    assert_eq!(finished.code, Some(1));
    assert!(
        finished
            .stderr
            .contains("has finished all 6 canary steps; nothing to promote"),
        "{}",
        finished.stderr
    );
}
