//! Every scenario of `fixtures/scenarios/` run end to end (real operator, embedded API server,
//! simulated kubelet, virtual time): outcomes asserted from the report, the state machine's
//! invariants recomputed from its history, and the final state kept as an insta snapshot
//! (`INSTA_UPDATE=always cargo test --test scenarios` to accept a change after reading it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gamedeploy_simulator::invariants::Invariant;
use gamedeploy_simulator::report::Report;

#[path = "support/sim.rs"]
mod sim;
use sim::{
    Rollout, condition, final_state, pod_extremes, restarts, scenario, simulate, status_int, until,
    update_revision, violations,
};

/// The fixtures' common rollout: 8 replicas, 2 unavailable at most, a 30 s grace period.
const EIGHT_PODS: Rollout = Rollout {
    replicas: 8,
    partition: 0,
    max_unavailable: 2,
    grace_seconds: 30.0,
};

fn snapshot(name: &str, r: &Report) {
    insta::with_settings!({ omit_expression => true, info => &r.name }, {
        insta::assert_yaml_snapshot!(name, final_state(r));
    });
}

/// Pod names at the start of the run (created by the operator in its first second).
fn initial_pods(r: &Report) -> BTreeSet<String> {
    r.history
        .iter()
        .filter(|h| h.t < 1.0)
        .map(|h| h.pod.clone())
        .collect()
}

fn uids(r: &Report) -> BTreeSet<String> {
    r.pods.iter().map(|p| p.uid.clone()).collect()
}

/// Violations of invariants that hold whatever the scale: grace respected, each changed
/// container restarted exactly once per completed update, UIDs stable.
fn per_pod_violations(r: &Report, grace: f64) -> Vec<String> {
    violations(
        r,
        Rollout {
            replicas: 1000,
            partition: 0,
            max_unavailable: 1000,
            grace_seconds: grace,
        },
    )
    .into_iter()
    .filter(|v| {
        matches!(
            v.invariant,
            Invariant::GracePeriod
                | Invariant::RestartOnce
                | Invariant::UidStable
                | Invariant::NoRestartOnResize
        )
    })
    .map(|v| format!("{v:?}"))
    .collect()
}

fn image(r: &Report, pod: &str) -> String {
    r.pods
        .iter()
        .find(|p| p.name == pod)
        .map(|p| p.containers[0].image.clone())
        .unwrap_or_default()
}

fn events(r: &Report, reason: &str) -> usize {
    r.events.iter().filter(|e| e.reason == reason).count()
}

#[test]
fn seed_then_partition_0_updates_all_eight_once() {
    let s = scenario("seed-then-partition-0.yaml");
    let canary = simulate(&until(&s, Duration::from_secs(170)));
    assert_eq!(status_int(&canary, "updatedReadyReplicas"), 5);
    let r = simulate(&s);
    assert!(r.settled);
    assert!(restarts(&r).values().all(|n| *n == 1), "{:?}", restarts(&r));
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:latest")
    );
    assert_eq!(uids(&r).len(), 8);
    assert_eq!(uids(&r), uids(&canary), "the same eight pods throughout");
    let v = violations(&r, EIGHT_PODS);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("seed-then-partition-0", &r);
}

#[test]
fn grace_0_patches_at_once_and_updates_all_eight() {
    let r = simulate(&scenario("grace-0.yaml"));
    assert!(r.settled);
    assert!(restarts(&r).values().all(|n| *n == 1), "{:?}", restarts(&r));
    let v = violations(
        &r,
        Rollout {
            grace_seconds: 0.0,
            ..EIGHT_PODS
        },
    );
    assert!(v.is_empty(), "{v:#?}");
    snapshot("grace-0", &r);
}

#[test]
fn rolling_update_with_max_surge_never_drops_below_replicas() {
    let r = simulate(&scenario("rolling-max-surge.yaml"));
    assert!(r.settled);
    assert_eq!(r.pods.len(), 8);
    let before = initial_pods(&r);
    assert!(
        r.pods.iter().all(|p| !before.contains(&p.name)),
        "every pod was recreated"
    );
    assert!(
        r.pods
            .iter()
            .all(|p| p.containers[0].image == "python:latest")
    );
    assert!(restarts(&r).values().all(|n| *n == 0));
    let (most, fewest_ready) = pod_extremes(&r, 5.0);
    assert!(
        most <= 10,
        "maxSurge 2: at most 10 pods at once, saw {most}"
    );
    assert!(
        fewest_ready >= 8,
        "maxUnavailable 0: never fewer than 8 ready, saw {fewest_ready}"
    );
    snapshot("rolling-max-surge", &r);
}

#[test]
fn scaling_during_an_in_place_update_keeps_every_machine_sound() {
    let r = simulate(&scenario("scale-during-inplace.yaml"));
    assert!(r.settled);
    assert_eq!(r.pods.len(), 4);
    let update = update_revision(&r);
    for p in &r.pods {
        assert!(p.ready, "{}", p.name);
        assert_eq!(p.revision.as_deref(), Some(update.as_str()), "{}", p.name);
        assert_eq!(p.containers[0].image, "python:latest");
    }
    let before = initial_pods(&r);
    let counts = restarts(&r);
    for (name, n) in counts.iter().filter(|(n, _)| !before.contains(*n)) {
        assert_eq!(*n, 0, "{name} started on the new revision");
    }
    assert!(restarts(&r).values().all(|n| *n <= 1));
    let v = per_pod_violations(&r, 30.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("scale-during-inplace", &r);
}

#[test]
fn rollback_during_the_grace_period_restarts_nothing() {
    let s = scenario("rollback-in-grace.yaml");
    let in_grace = simulate(&until(&s, Duration::from_secs(34)));
    let unready = in_grace.pods.iter().filter(|p| !p.ready).count();
    assert_eq!(unready, 2, "two pods were waiting out their grace period");
    let r = simulate(&s);
    assert!(r.settled);
    assert!(restarts(&r).values().all(|n| *n == 0));
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:3.9")
    );
    assert!(
        r.history
            .iter()
            .all(|h| h.images.values().all(|i| i == "python:3.9")),
        "no pod was ever patched to the abandoned image"
    );
    assert_eq!(uids(&r).len(), 8);
    assert_eq!(
        status_int(&r, "updatedReplicas"),
        8,
        "the old revision is the update revision again"
    );
    snapshot("rollback-in-grace", &r);
}

#[test]
fn a_new_image_while_restarting_retargets_without_a_second_grace() {
    let r = simulate(&scenario("new-image-while-restarting.yaml"));
    assert!(r.settled);
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:3.11")
    );
    assert!(restarts(&r).values().all(|n| *n == 1), "{:?}", restarts(&r));
    let on_310: BTreeSet<&str> = r
        .history
        .iter()
        .filter(|h| h.images.values().any(|i| i == "python:3.10"))
        .map(|h| h.pod.as_str())
        .collect();
    assert_eq!(on_310.len(), 2, "only the first batch saw python:3.10");
    let v = per_pod_violations(&r, 10.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("new-image-while-restarting", &r);
}

#[test]
fn an_image_that_fails_to_pull_stops_the_rollout_at_max_unavailable() {
    let s = scenario("image-pull-failure.yaml");
    let stuck = simulate(&until(&s, Duration::from_secs(290)));
    let broken: Vec<&str> = stuck
        .pods
        .iter()
        .filter(|p| p.containers[0].image == "game:broken")
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(broken.len(), 2, "stopped at maxUnavailable");
    assert!(stuck.pods.iter().filter(|p| p.ready).count() == 6);
    let (reason, message) = condition(&stuck, "FailedUpdate").expect("FailedUpdate is set");
    assert_eq!(reason, "InPlaceUpdateFailed");
    for pod in &broken {
        assert!(message.contains(pod), "{message}");
    }
    assert!(message.contains("ImagePullBackOff"), "{message}");
    snapshot("image-pull-failure-stuck", &stuck);

    let r = simulate(&s);
    assert!(r.settled);
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:latest")
    );
    assert_eq!(condition(&r, "FailedUpdate"), None, "cleared once fixed");
    let v = violations(
        &r,
        Rollout {
            grace_seconds: 10.0,
            ..EIGHT_PODS
        },
    )
    .into_iter()
    .filter(|v| v.invariant != Invariant::RestartOnce)
    .collect::<Vec<_>>();
    assert!(v.is_empty(), "{v:#?}");
    snapshot("image-pull-failure", &r);
}

/// The Progressing condition of the first GameDeployment: status, reason, lastUpdateTime.
fn progressing(r: &Report) -> (String, String, String) {
    let c = r.game_deployments[0].status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .expect("Progressing is set");
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("lastUpdateTime"))
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline_once_and_recovers_when_fixed() {
    let s = scenario("progress-deadline.yaml");
    // Not yet: the two pods failed at about 32 s, so the deadline passes at about 92 s.
    let early = simulate(&until(&s, Duration::from_secs(80)));
    let (status, reason, _) = progressing(&early);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Updating"));
    assert_eq!(events(&early, "ProgressDeadlineExceeded"), 0);

    // The operator restarted at 60 s: the count resumed from the status, so the deadline
    // passed 60 s after the last progress (31 s), not 60 s after the restart.
    let resumed = simulate(&until(&s, Duration::from_secs(100)));
    assert_eq!(progressing(&resumed).1, "ProgressDeadlineExceeded");

    let stuck = simulate(&until(&s, Duration::from_secs(290)));
    let (status, reason, since) = progressing(&stuck);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert_eq!(
        since, "2026-01-01T00:00:31Z",
        "the last progress (the images patched), kept in the status for a restart"
    );
    let warnings: Vec<_> = (stuck.events.iter())
        .filter(|e| e.reason == "ProgressDeadlineExceeded")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one Warning event, however often it reconciles"
    );
    assert_eq!(warnings[0].type_, "Warning");
    assert_eq!(warnings[0].object, "GameDeployment/test-gamedeployment");
    snapshot("progress-deadline-stuck", &stuck);

    let r = simulate(&s);
    assert!(r.settled);
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:latest")
    );
    let (status, reason, _) = progressing(&r);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Complete"));
    assert_eq!(events(&r, "ProgressDeadlineExceeded"), 1);
    snapshot("progress-deadline", &r);
}

#[test]
fn a_same_digest_retag_restarts_and_completes() {
    let r = simulate(&scenario("same-digest-retag.yaml"));
    assert!(r.settled);
    let retagged: Vec<_> = r
        .pods
        .iter()
        .filter(|p| p.containers[0].image == "python:retag")
        .collect();
    assert_eq!(retagged.len(), 5);
    let old_id = r
        .pods
        .iter()
        .find(|p| p.containers[0].image == "python:3.9")
        .map(|p| p.containers[0].image_id.clone());
    for p in retagged {
        assert_eq!(p.containers[0].restart_count, 1, "{}", p.name);
        assert_eq!(
            Some(&p.containers[0].image_id),
            old_id.as_ref(),
            "same digest"
        );
    }
    let v = violations(
        &r,
        Rollout {
            partition: 3,
            ..EIGHT_PODS
        },
    );
    assert!(v.is_empty(), "{v:#?}");
    snapshot("same-digest-retag", &r);
}

#[test]
fn pods_to_delete_removes_exactly_the_named_pods() {
    let r = simulate(&scenario("pods-to-delete.yaml"));
    assert!(r.settled);
    let before: Vec<String> = initial_pods(&r).into_iter().collect();
    let after_first: Vec<&String> = before
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2 && *i != 5)
        .map(|(_, n)| n)
        .collect();
    let now: BTreeSet<&str> = r.pods.iter().map(|p| p.name.as_str()).collect();
    let gone: BTreeSet<&str> = before
        .iter()
        .map(String::as_str)
        .filter(|n| !now.contains(n))
        .collect();
    let expected: BTreeSet<&str> = [
        before[2].as_str(),
        before[5].as_str(),
        after_first[0].as_str(),
    ]
    .into();
    assert_eq!(gone, expected);
    assert_eq!(r.pods.len(), 6);
    assert_eq!(
        now.iter()
            .filter(|n| !before.contains(&n.to_string()))
            .count(),
        1,
        "the pod deleted at replicas 6 was replaced"
    );
    snapshot("pods-to-delete", &r);
}

#[test]
fn forced_transitions_drive_a_stuck_update() {
    let s = scenario("forced-transitions.yaml");
    let held = simulate(&until(&s, Duration::from_secs(115)));
    let (reason, _) = condition(&held, "Progressing").unwrap();
    assert_eq!(reason, "UpdateAbandoned");
    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(events(&r, "InPlaceUpdateForced"), 4);
    let refused: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.reason == "InPlaceUpdateForceRefused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].type_, "Warning");
    assert!(
        refused[0].message.contains("Failed -> Restarting"),
        "{}",
        refused[0].message
    );
    assert!(
        r.pods.iter().all(|p| !p
            .annotations
            .contains_key("tkex.tencent.com/inplace-update-force")),
        "every force annotation is consumed"
    );
    let updated: Vec<_> = r
        .pods
        .iter()
        .filter(|p| p.containers[0].image == "game:v2")
        .collect();
    assert_eq!(updated.len(), 2);
    assert!(updated.iter().all(|p| p.ready));
    let v = per_pod_violations(&r, 30.0)
        .into_iter()
        // Skipping the grace period is exactly what the ImagePatched force is for.
        .filter(|v| !v.contains("GracePeriod"))
        .collect::<Vec<_>>();
    assert!(v.is_empty(), "{v:#?}");
    snapshot("forced-transitions", &r);
}

#[test]
fn pause_holds_the_rollout_and_resume_finishes_it() {
    let s = scenario("pause-resume.yaml");
    let paused = simulate(&until(&s, Duration::from_secs(110)));
    assert_eq!(status_int(&paused, "updatedReplicas"), 0);
    assert_eq!(condition(&paused, "Progressing").unwrap().0, "Paused");
    let touched = paused
        .history
        .iter()
        .filter(|h| h.client == "operator" && h.t > 10.0)
        .count();
    assert_eq!(touched, 0, "no pod written while paused");
    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(restarts(&r).values().filter(|n| **n == 1).count(), 5);
    let v = violations(
        &r,
        Rollout {
            partition: 3,
            ..EIGHT_PODS
        },
    );
    assert!(v.is_empty(), "{v:#?}");
    snapshot("pause-resume", &r);
}

#[test]
fn min_ready_seconds_paces_the_batches() {
    let r = simulate(&scenario("min-ready-seconds.yaml"));
    assert!(r.settled);
    // When each pod was taken out of endpoints, and when it was back.
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();
    let mut back: BTreeMap<&str, f64> = BTreeMap::new();
    for h in r.history.iter().filter(|h| h.t >= 40.0) {
        match h.in_place_update_ready {
            Some(false) => {
                out.entry(&h.pod).or_insert(h.t);
            }
            Some(true) if h.ready && out.contains_key(h.pod.as_str()) => {
                back.entry(&h.pod).or_insert(h.t);
            }
            _ => {}
        }
    }
    assert_eq!(out.len(), 8);
    for (pod, t_out) in &out {
        // Pods unavailable at t_out: out earlier and not back for 20 s yet.
        let unavailable = out
            .iter()
            .filter(|(p, o)| *p != pod && **o <= *t_out)
            .filter(|(p, _)| back.get(*p).is_none_or(|b| b + 20.0 > *t_out))
            .count();
        assert!(
            unavailable < 2,
            "{pod} left endpoints at {t_out} with {unavailable} other pods not yet available"
        );
    }
    snapshot("min-ready-seconds", &r);
}

#[test]
fn a_corrupt_state_annotation_is_reported_and_left_alone() {
    let s = scenario("corrupt-annotation.yaml");
    let mid = simulate(&until(&s, Duration::from_secs(200)));
    let warnings: Vec<_> = mid
        .events
        .iter()
        .filter(|e| e.reason == "InvalidInPlaceUpdateState")
        .collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].type_, "Warning");
    let pod = warnings[0].object.trim_start_matches("Pod/").to_string();
    let (_, message) = condition(&mid, "FailedUpdate").expect("FailedUpdate is set");
    assert!(message.contains(&pod), "{message}");
    let writes = mid
        .history
        .iter()
        .filter(|h| h.pod == pod && h.client == "operator" && h.t > 30.0)
        .count();
    assert!(
        writes <= 1,
        "only the Failed record is written, saw {writes} writes"
    );
    assert_eq!(image(&mid, &pod), "python:3.9", "its image was not touched");
    assert_eq!(
        status_int(&mid, "updatedReadyReplicas"),
        4,
        "the others went on"
    );

    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(image(&r, &pod), "python:latest");
    assert_eq!(restarts(&r).values().filter(|n| **n == 1).count(), 5);
    let v = violations(
        &r,
        Rollout {
            partition: 3,
            ..EIGHT_PODS
        },
    );
    assert!(v.is_empty(), "{v:#?}");
    snapshot("corrupt-annotation", &r);
}

#[test]
fn a_pod_deleted_mid_update_is_replaced_on_the_new_revision() {
    let r = simulate(&scenario("pod-deleted-mid-update.yaml"));
    assert!(r.settled);
    assert_eq!(r.pods.len(), 8);
    let before = initial_pods(&r);
    let gone: Vec<&String> = before
        .iter()
        .filter(|n| r.pods.iter().all(|p| &&p.name != n))
        .collect();
    assert_eq!(gone.len(), 1);
    let update = update_revision(&r);
    let fresh: Vec<_> = r
        .pods
        .iter()
        .filter(|p| !before.contains(&p.name))
        .collect();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].revision.as_deref(), Some(update.as_str()));
    assert_eq!(fresh[0].containers[0].restart_count, 0);
    assert_eq!(status_int(&r, "updatedReadyReplicas"), 5);
    let v = per_pod_violations(&r, 30.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("pod-deleted-mid-update", &r);
}

#[test]
fn a_missing_hook_template_holds_the_rollout_without_touching_a_pod() {
    let r = simulate(&scenario("missing-hook-template.yaml"));
    assert!(!r.settled, "the rollout cannot finish without its hook");
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:3.9")
    );
    assert!(restarts(&r).values().all(|n| *n == 0));
    let (reason, message) = condition(&r, "FailedUpdate").expect("FailedUpdate is set");
    assert_eq!(reason, "FailedCreatePreInplaceHookRun");
    assert_eq!(
        message,
        "HookTemplate canary-check does not exist in namespace default: create it, or fix preInplaceUpdateStrategy.hook.templateName"
    );
    assert_eq!(events(&r, "FailedCreatePreInplaceHookRun"), 2);
    // Retries back off instead of asking every second (3 virtual minutes here).
    let gets: u64 = r
        .api_requests
        .iter()
        .filter(|a| a.client == "operator" && a.resource == "hooktemplates")
        .map(|a| a.count)
        .sum();
    assert!(gets <= 20, "{gets} HookTemplate reads");
    let status_writes: u64 = r
        .api_requests
        .iter()
        .filter(|a| {
            a.client == "operator" && a.subresource == "status" && a.resource == "gamedeployments"
        })
        .map(|a| a.count)
        .sum();
    assert!(
        status_writes <= 12,
        "the failing retry rewrote the status {status_writes} times"
    );
    snapshot("missing-hook-template", &r);
}

#[test]
fn hot_patch_updates_images_without_a_readiness_flip() {
    let r = simulate(&scenario("hotpatch-update.yaml"));
    assert!(r.settled);
    let patched: Vec<_> = r
        .pods
        .iter()
        .filter(|p| p.containers[0].image == "python:latest")
        .collect();
    assert_eq!(patched.len(), 5);
    for p in &patched {
        assert_eq!(
            p.annotations
                .get("io.kubernetes.hotpatch.container")
                .map(String::as_str),
            Some("true"),
            "{}",
            p.name
        );
        assert_eq!(
            p.containers[0].restart_count, 1,
            "a stock kubelet restarts it"
        );
    }
    assert_eq!(uids(&r).len(), 8);
    assert!(
        r.history
            .iter()
            .all(|h| h.in_place_update_ready != Some(false)),
        "no pod is taken out of endpoints first"
    );
    let (_, fewest_ready) = pod_extremes(&r, 5.0);
    assert!(
        fewest_ready >= 6,
        "maxUnavailable 2, saw {fewest_ready} ready"
    );
    assert_eq!(events(&r, "SuccessfulUpdatePodHotPatch"), 5);
    snapshot("hotpatch-update", &r);
}

#[test]
fn a_change_that_cannot_be_made_in_place_recreates_pods_with_the_reason() {
    let r = simulate(&scenario("not-in-place-change.yaml"));
    assert!(r.settled);
    let before = initial_pods(&r);
    let update = update_revision(&r);
    let (kept, fresh): (Vec<_>, Vec<_>) = r.pods.iter().partition(|p| before.contains(&p.name));
    assert_eq!((kept.len(), fresh.len()), (3, 5), "partition 3 keeps three");
    assert!(
        fresh
            .iter()
            .all(|p| p.revision.as_deref() == Some(update.as_str()))
    );
    let recreated: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.reason == "SuccessfulUpdatePodReCreate")
        .collect();
    assert_eq!(recreated.len(), 5);
    assert!(
        recreated
            .iter()
            .all(|e| e.message.contains("spec.containers[0].env changed")),
        "{:?}",
        recreated[0].message
    );
    let (_, fewest_ready) = pod_extremes(&r, 5.0);
    assert!(
        fewest_ready >= 6,
        "maxUnavailable 2, saw {fewest_ready} ready"
    );
    snapshot("not-in-place-change", &r);
}

/// A spec stored through a CRD without bounds, which the operator cannot decode: reported in
/// a condition and a Warning event naming the field, across an operator restart, with no pod
/// touched; the run ends (it used to spin at one virtual instant). Fixed, it settles as before.
#[test]
fn a_spec_the_operator_cannot_decode_is_reported_across_a_restart_and_touches_no_pod() {
    let s = scenario("undecodable-spec.yaml");
    let mid = simulate(&until(&s, Duration::from_secs(59)));
    assert!(
        !mid.settled,
        "a GameDeployment that cannot be read is not settled"
    );
    assert_eq!(mid.operator_restarts, 1);
    let (reason, message) = condition(&mid, "FailedScale").expect("FailedScale is set");
    assert_eq!(reason, "InvalidSpec");
    assert_eq!(
        message,
        "cannot read spec.replicas: invalid value: integer `1099511627776`, expected i32"
    );
    let warned: Vec<f64> = mid
        .events
        .iter()
        .filter(|e| e.reason == "InvalidSpec" && e.type_ == "Warning" && e.message == message)
        .map(|e| e.t)
        .collect();
    assert_eq!(warned, [20.0, 30.0], "once per operator instance");
    let touched = mid
        .history
        .iter()
        .filter(|h| h.client == "operator" && h.t >= 20.0)
        .count();
    assert_eq!(touched, 0, "no pod written while the spec cannot be read");
    assert_eq!(mid.pods.len(), 8);

    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(condition(&r, "FailedScale"), None, "cleared once fixed");
    let uids: BTreeSet<&str> = r.history.iter().map(|h| h.uid.as_str()).collect();
    assert_eq!(uids.len(), 8, "the same eight pods from start to end");
    assert!(violations(&r, EIGHT_PODS).is_empty());
}

/// The README's drain hook: every pod's HookRun asks its admin port until no player is left
/// (two "2 players" answers, 5 s apart, then 0), and only then is the pod made unready; five
/// pods update once, three stay, and each run ends Successful with an event.
#[test]
fn a_drain_hook_holds_each_pod_until_its_players_are_gone() {
    let r = simulate(&scenario("pre-inplace-drain-hook.yaml"));
    assert!(r.settled);
    let updated: Vec<_> = r
        .pods
        .iter()
        .filter(|p| p.containers[0].image == "python:latest")
        .collect();
    assert_eq!(updated.len(), 5);
    assert!(
        updated
            .iter()
            .all(|p| p.ready && p.containers[0].restart_count == 1)
    );
    let first_unready = r
        .history
        .iter()
        .filter(|h| h.in_place_update_ready == Some(false))
        .map(|h| h.t)
        .fold(f64::INFINITY, f64::min);
    assert!(
        first_unready >= 30.0,
        "no pod leaves endpoints before its hook's third answer (image changed at 20 s, answers every 5 s): {first_unready}"
    );
    assert_eq!(events(&r, "HookRunSuccessful"), 5);
    assert_eq!(events(&r, "HookRunUnsuccessful"), 0);
    assert!(per_pod_violations(&r, 30.0).is_empty());
    snapshot("pre-inplace-drain-hook", &r);
}

/// A hook whose endpoint answers 503 fails its run (the fifth consecutive error); its pod is
/// never touched, and a rollback to the stable image settles the rollout without a restart.
#[test]
fn a_failing_hook_holds_its_pod_until_a_rollback() {
    let r = simulate(&scenario("failing-hook.yaml"));
    assert!(r.settled);
    assert!(
        r.pods
            .iter()
            .all(|p| p.ready && p.containers[0].image == "python:3.9")
    );
    assert!(restarts(&r).values().all(|n| *n == 0));
    assert!(
        r.history
            .iter()
            .all(|h| h.in_place_update_ready != Some(false)),
        "no pod left endpoints"
    );
    assert_eq!(events(&r, "HookRunUnsuccessful"), 1, "one pod at a time");
    assert_eq!(events(&r, "HookRunSuccessful"), 0);
    snapshot("failing-hook", &r);
}

/// Times at which pods on `image` left endpoints (InPlaceUpdateReady false), first per pod.
fn first_unready_by_pod(r: &Report) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for h in &r.history {
        if h.in_place_update_ready == Some(false) {
            out.entry(h.pod.clone()).or_insert(h.t);
        }
    }
    out
}

/// The README's three-step canary (`canary-steps.yaml`): two pods update (partition 6), the
/// error-rate hook passes after three measurements 10 s apart, the rollout waits 60 s, then the
/// other six update; every pod restarts once, in place, and the status records every step.
#[test]
fn a_three_step_canary_runs_partition_hook_and_pause_in_order() {
    let r = simulate(&scenario("canary-steps.yaml"));
    assert!(r.settled);
    assert!(restarts(&r).values().all(|n| *n == 1), "{:?}", restarts(&r));
    assert_eq!(uids(&r).len(), 8, "in place: the same eight pods");
    let started: Vec<f64> = first_unready_by_pod(&r).into_values().collect();
    let (first, rest): (Vec<f64>, Vec<f64>) = started.iter().partition(|t| **t < 100.0);
    assert_eq!(first.len(), 2, "step 0 lets two pods through: {started:?}");
    let hook_done = r
        .events
        .iter()
        .find(|e| e.reason == "HookRunSuccessful")
        .expect("the canary hook succeeds")
        .t;
    assert!(
        hook_done >= 70.0,
        "three measurements, 10 s apart: {hook_done}"
    );
    assert!(
        rest.iter().all(|t| *t >= hook_done + 60.0),
        "the other six wait for the 60 s pause after the hook: {rest:?}"
    );
    let steps: Vec<&str> = r
        .events
        .iter()
        .filter(|e| e.reason == "SetStepIndex")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "Set Step Index to 0",
            "Set Step Index to 1",
            "Set Step Index to 2",
            "Set Step Index to 3"
        ]
    );
    let status = &r.game_deployments[0].status;
    assert_eq!(status["currentStepIndex"], 3);
    assert_eq!(status["canary"]["revision"], status["updateRevision"]);
    assert!(
        status.get("pauseConditions").is_none(),
        "cleared once done: {status}"
    );
    assert!(per_pod_violations(&r, 30.0).is_empty());
    snapshot("canary-steps", &r);
}

/// A failed canary hook pauses the rollout (spec paused, a pause condition, a FailedUpdate
/// condition and one Warning event) and no further pod moves; the user's resume runs the hook
/// again (the original skipped it) and it passes; the pause without duration then waits for
/// the user's second resume.
#[test]
fn a_failed_canary_hook_pauses_and_resuming_checks_again() {
    let s = scenario("canary-hook-failure.yaml");
    let held = simulate(&until(&s, Duration::from_secs(110)));
    let gd = &held.game_deployments[0];
    assert_eq!(gd.spec["updateStrategy"]["paused"], true);
    assert_eq!(
        gd.status["pauseConditions"][0]["reason"],
        "PausedByStepBasedHook"
    );
    let (reason, message) = condition(&held, "FailedUpdate").expect("FailedUpdate is set");
    assert_eq!(reason, "CanaryHookFailed");
    assert!(message.contains("ended Failed"), "{message}");
    assert_eq!(events(&held, "CanaryHookFailed"), 1);
    assert_eq!(
        first_unready_by_pod(&held).len(),
        1,
        "only the first step's pod moved"
    );

    let waiting = simulate(&until(&s, Duration::from_secs(230)));
    assert_eq!(events(&waiting, "CanaryHookRetried"), 1);
    assert_eq!(
        events(&waiting, "HookRunSuccessful"),
        1,
        "the second attempt"
    );
    assert_eq!(waiting.game_deployments[0].status["currentStepIndex"], 2);
    assert_eq!(
        waiting.game_deployments[0].spec["updateStrategy"]["paused"],
        true
    );
    assert_eq!(
        condition(&waiting, "FailedUpdate"),
        None,
        "cleared by the retry"
    );
    assert_eq!(first_unready_by_pod(&waiting).len(), 1);

    let r = simulate(&s);
    assert!(r.settled);
    assert!(restarts(&r).values().all(|n| *n == 1), "{:?}", restarts(&r));
    assert!(
        first_unready_by_pod(&r)
            .values()
            .filter(|t| **t >= 240.0)
            .count()
            == 7,
        "the other seven after the second resume"
    );
    assert!(per_pod_violations(&r, 30.0).is_empty());
    snapshot("canary-hook-failure", &r);
}

#[test]
fn on_delete_touches_no_pod_and_a_deleted_pod_comes_back_updated() {
    let r = simulate(&scenario("on-delete.yaml"));
    assert_eq!(r.pods.len(), 8);
    let before = initial_pods(&r);
    let update = update_revision(&r);
    let (kept, fresh): (Vec<_>, Vec<_>) = r.pods.iter().partition(|p| before.contains(&p.name));
    assert_eq!((kept.len(), fresh.len()), (7, 1));
    for p in &kept {
        assert_eq!(
            p.containers[0].image, "python:3.9",
            "{} was touched",
            p.name
        );
        assert_ne!(p.revision.as_deref(), Some(update.as_str()));
    }
    for p in &fresh {
        assert_eq!(p.containers[0].image, "python:latest");
        assert_eq!(p.revision.as_deref(), Some(update.as_str()));
        assert!(p.ready);
    }
    assert!(restarts(&r).values().all(|n| *n == 0));
    assert!(
        r.history
            .iter()
            .all(|h| !before.contains(&h.pod) || h.in_place_update_ready != Some(false)),
        "no pod was taken out of service for an update"
    );
    assert_eq!(status_int(&r, "updatedReplicas"), 1);
    assert_eq!(status_int(&r, "updatedReadyReplicas"), 1);
    assert_eq!(status_int(&r, "readyReplicas"), 8);
    // currentRevision: the revision the seven pods not yet updated run.
    let status = &r.game_deployments[0].status;
    assert_eq!(
        status["currentRevision"].as_str(),
        kept[0].revision.as_deref()
    );
    snapshot("on-delete", &r);
}

#[test]
fn create_batch_waves_no_readiness_gate_and_a_percentage_partition() {
    // Run on for minutes after the rollout: the status is the one written after it.
    let r = simulate(&scenario("newer-api.yaml"));
    assert_eq!(status_int(&r, "availableReplicas"), 8);
    assert_eq!(r.pods.len(), 8);
    // createBatch 3: never more than three pods alive and not Ready while they are created,
    // and the eight are created at three or more instants (waves), not at once.
    let mut alive: BTreeMap<&str, bool> = BTreeMap::new();
    let mut created_at: BTreeMap<&str, u64> = BTreeMap::new();
    let mut most_unready = 0;
    for h in r.history.iter().filter(|h| h.t < 120.0) {
        created_at.entry(&h.pod).or_insert(h.t as u64);
        if h.deleted || h.terminating {
            alive.remove(h.pod.as_str());
        } else {
            alive.insert(&h.pod, h.ready);
        }
        most_unready = most_unready.max(alive.values().filter(|r| !**r).count());
    }
    assert_eq!(most_unready, 3);
    let waves: BTreeSet<u64> = created_at.values().copied().collect();
    assert!(waves.len() >= 3, "{created_at:?}");
    // partition "50%" of 8 keeps 4 pods back.
    assert_eq!(status_int(&r, "updatedReplicas"), 4);
    // disableReadinessGate: a pod marked InPlaceUpdateReady=False for its grace period still
    // serves (Ready) until its container restarts.
    assert!(
        r.history
            .iter()
            .any(|h| h.in_place_update_ready == Some(false) && h.ready),
        "an updating pod stays Ready through its grace period"
    );
    assert!(r.pods.iter().all(|p| {
        p.conditions
            .iter()
            .all(|c| c.type_ != "InPlaceUpdateReady" || p.ready)
    }));
    let v = per_pod_violations(&r, 30.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("newer-api", &r);
}

/// `inPlaceUpdateStrategy.policy: OrderedReady` with two containers: in every pod, `agent`'s
/// new image is written only after `game` (first in the spec) runs a ready new instance; each
/// container restarts exactly once and no pod is replaced.
#[test]
fn ordered_ready_updates_the_containers_one_at_a_time_in_spec_order() {
    let r = simulate(&scenario("ordered-containers.yaml"));
    assert!(r.settled);
    assert_eq!(r.pods.len(), 2);
    assert_eq!(uids(&r), initial_pods_uids(&r), "every pod keeps its UID");
    for pod in &r.pods {
        let images: BTreeMap<&str, &str> = pod
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_str()))
            .collect();
        assert_eq!(images["game"], "python:latest", "{}", pod.name);
        assert_eq!(images["agent"], "busybox:1.37", "{}", pod.name);
        let counts: BTreeMap<&str, i32> = pod
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.restart_count))
            .collect();
        assert_eq!(counts, [("agent", 1), ("game", 1)].into(), "{}", pod.name);
        let history: Vec<_> = r.history.iter().filter(|h| h.pod == pod.name).collect();
        let agent_patched = history
            .iter()
            .position(|h| h.images.get("agent").map(String::as_str) == Some("busybox:1.37"))
            .expect("agent is patched");
        let game_patched = history
            .iter()
            .position(|h| h.images.get("game").map(String::as_str) == Some("python:latest"))
            .expect("game is patched");
        assert!(
            game_patched < agent_patched,
            "{}: game first, then agent",
            pod.name
        );
        // Between the two patches, game restarted once and its new instance was ready:
        // kubelet reported the pod's containers after game's restart before agent changed.
        assert!(
            history[game_patched..agent_patched].iter().any(|h| {
                h.client == "kubelet"
                    && h.restart_counts.get("game") == Some(&1)
                    && h.restart_counts.get("agent") == Some(&0)
            }),
            "{}: game restarted before agent was patched",
            pod.name
        );
        let patches: Vec<&str> = r
            .events
            .iter()
            .filter(|e| e.reason == "SuccessfulUpdatePodInPlace" && e.object.contains(&pod.name))
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(patches.len(), 2, "{}: one patch per container", pod.name);
        assert!(
            patches[0].contains("set game=python:latest ")
                && patches[1].contains("set agent=busybox:1.37 "),
            "{patches:#?}"
        );
    }
    let v = per_pod_violations(&r, 5.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("ordered-containers", &r);
}

fn initial_pods_uids(r: &Report) -> BTreeSet<String> {
    r.history
        .iter()
        .filter(|h| h.t < 20.0)
        .map(|h| h.uid.clone())
        .collect()
}

// --- In-place resize (fixtures/scenarios/resize-*.yaml, on deploy/examples/inplace-resize.yaml)

/// The cpu/memory a pod's first container runs with, as kubelet reports them.
fn running(r: &Report, pod: &str, key: &str) -> String {
    r.pods
        .iter()
        .find(|p| p.name == pod)
        .and_then(|p| p.containers[0].resources.get(key).cloned())
        .unwrap_or_default()
}

/// Pods of the final state on the update revision.
fn updated(r: &Report) -> Vec<String> {
    let update = update_revision(r);
    r.pods
        .iter()
        .filter(|p| p.revision.as_deref() == Some(update.as_str()))
        .map(|p| p.name.clone())
        .collect()
}

/// How often a pod's `InPlaceUpdateReady` turned False (a readiness flip).
fn readiness_flips(r: &Report) -> usize {
    let mut last: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    let mut h: Vec<_> = r.history.iter().collect();
    h.sort_by(|a, b| a.t.total_cmp(&b.t));
    h.into_iter()
        .filter(|h| {
            let before = last.insert(h.pod.as_str(), h.in_place_update_ready);
            h.in_place_update_ready == Some(false) && before.flatten() != Some(false)
        })
        .count()
}

#[test]
fn raising_cpu_resizes_the_five_pods_above_the_partition_without_a_restart() {
    let r = simulate(&scenario("resize-cpu.yaml"));
    assert!(r.settled);
    let moved = updated(&r);
    assert_eq!(moved.len(), 5, "partition 3 keeps three: {moved:?}");
    for p in &r.pods {
        let cpu = if moved.contains(&p.name) { "1" } else { "500m" };
        assert_eq!(running(&r, &p.name, "limits.cpu"), cpu, "{}", p.name);
        assert!(p.ready, "{}", p.name);
    }
    assert!(restarts(&r).values().all(|n| *n == 0), "{:?}", restarts(&r));
    assert_eq!(
        uids(&r),
        initial_pods_uids(&r),
        "the same eight pods throughout"
    );
    assert_eq!(
        readiness_flips(&r),
        0,
        "a NotRequired resize keeps the pods in Service"
    );
    let v = violations(&r, EIGHT_PODS);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("resize-cpu", &r);
}

#[test]
fn a_memory_change_under_restart_container_restarts_each_pod_once() {
    let r = simulate(&scenario("resize-memory-restart.yaml"));
    assert!(r.settled);
    let moved = updated(&r);
    assert_eq!(moved.len(), 5);
    for (name, n) in restarts(&r) {
        let (want, memory) = if moved.contains(&name) {
            (1, "512Mi")
        } else {
            (0, "256Mi")
        };
        assert_eq!(n, want, "{name}");
        assert_eq!(running(&r, &name, "limits.memory"), memory, "{name}");
    }
    assert_eq!(uids(&r), initial_pods_uids(&r));
    assert_eq!(
        readiness_flips(&r),
        5,
        "one readiness gate and grace period per pod"
    );
    let v = violations(&r, EIGHT_PODS);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("resize-memory-restart", &r);
}

#[test]
fn image_plus_cpu_is_one_grace_period_and_one_restart() {
    let r = simulate(&scenario("resize-image-and-cpu.yaml"));
    assert!(r.settled);
    let moved = updated(&r);
    assert_eq!(moved.len(), 5);
    for name in &moved {
        assert_eq!(image(&r, name), "python:latest");
        assert_eq!(running(&r, name, "requests.cpu"), "1");
        assert_eq!(restarts(&r)[name], 1, "{name}");
    }
    // The resize goes first and the image once it is applied (kubernetes #127356).
    for name in &moved {
        let h: Vec<_> = r.history.iter().filter(|h| &h.pod == name).collect();
        let resized = h
            .iter()
            .position(|h| h.resources["python"].values["requests.cpu"] == "1");
        let patched = h.iter().position(|h| h.images["python"] == "python:latest");
        assert!(
            resized < patched,
            "{name}: resize at {resized:?}, image at {patched:?}"
        );
    }
    assert_eq!(readiness_flips(&r), 5);
    assert_eq!(uids(&r), initial_pods_uids(&r));
    let v = violations(&r, EIGHT_PODS);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("resize-image-and-cpu", &r);
}

#[test]
fn an_infeasible_resize_under_hold_keeps_every_pod_running_and_says_so_once() {
    let r = simulate(&scenario("resize-infeasible-hold.yaml"));
    assert!(r.settled);
    assert!(r.pods.iter().all(|p| p.ready), "no pod is left unready");
    assert_eq!(uids(&r), initial_pods_uids(&r), "no pod is lost");
    for p in &r.pods {
        assert_eq!(running(&r, &p.name, "limits.cpu"), "500m", "{}", p.name);
    }
    let warnings: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.reason == "ResizeInfeasible")
        .collect();
    assert_eq!(warnings.len(), 5, "one Warning per pod");
    for e in &warnings {
        assert_eq!(e.type_, "Warning");
        assert!(
            e.message.contains("container python") && e.message.contains("node sim-node"),
            "{}",
            e.message
        );
    }
    let (reason, _) = condition(&r, "FailedUpdate").expect("a FailedUpdate condition");
    assert_eq!(reason, "ResizeInfeasible");
    assert!(restarts(&r).values().all(|n| *n == 0));
    snapshot("resize-infeasible-hold", &r);
}

#[test]
fn an_infeasible_resize_under_recreate_moves_the_pods_to_a_node_that_holds_them() {
    let r = simulate(&scenario("resize-infeasible-recreate.yaml"));
    assert!(r.settled);
    let before = initial_pods(&r);
    let moved = updated(&r);
    assert_eq!(moved.len(), 5);
    for name in &moved {
        assert!(!before.contains(name), "{name} was recreated");
        assert_eq!(running(&r, name, "limits.cpu"), "6", "{name}");
    }
    assert!(r.pods.iter().all(|p| p.ready));
    assert_eq!(r.pods.len(), 8);
    assert_eq!(events(&r, "ResizeInfeasible"), 5);
    // Per pod only: like every recreation (not-in-place-change.yaml), the budget counts the
    // replacement until it is ready, not its terminating predecessor (a Deployment's default).
    let v = per_pod_violations(&r, 30.0);
    assert!(v.is_empty(), "{v:#?}");
    snapshot("resize-infeasible-recreate", &r);
}

#[test]
fn a_deferred_resize_waits_until_a_scale_down_frees_the_node() {
    let s = scenario("resize-deferred.yaml");
    let waiting = simulate(&until(&s, Duration::from_secs(50)));
    let deferred = waiting
        .pods
        .iter()
        .filter(|p| {
            p.conditions
                .iter()
                .any(|c| c.type_ == "PodResizePending" && c.reason.as_deref() == Some("Deferred"))
        })
        .count();
    assert!(
        deferred > 0,
        "a resize waits for room before the scale-down"
    );
    assert!(waiting.pods.iter().all(|p| p.ready));
    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(r.pods.len(), 6);
    let moved = updated(&r);
    assert_eq!(moved.len(), 3, "6 replicas, partition 3");
    for name in &moved {
        assert_eq!(running(&r, name, "requests.cpu"), "600m", "{name}");
    }
    assert!(restarts(&r).values().all(|n| *n == 0));
    assert!(per_pod_violations(&r, 30.0).is_empty());
    snapshot("resize-deferred", &r);
}

#[test]
fn a_rollback_mid_resize_resizes_back_and_restarts_nothing() {
    let s = scenario("resize-rollback.yaml");
    let mid = simulate(&until(&s, Duration::from_secs(22)));
    let in_flight = mid
        .pods
        .iter()
        .filter(|p| {
            p.conditions
                .iter()
                .any(|c| c.type_ == "PodResizeInProgress")
        })
        .count();
    assert!(in_flight > 0, "resizes were being applied at the rollback");
    let r = simulate(&s);
    assert!(r.settled);
    assert_eq!(
        updated(&r).len(),
        8,
        "the old revision is the update revision again"
    );
    for p in &r.pods {
        assert_eq!(running(&r, &p.name, "limits.cpu"), "500m", "{}", p.name);
        assert!(p.ready);
    }
    assert!(restarts(&r).values().all(|n| *n == 0));
    assert_eq!(uids(&r), initial_pods_uids(&r));
    assert_eq!(readiness_flips(&r), 0);
    snapshot("resize-rollback", &r);
}
