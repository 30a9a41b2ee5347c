//! The verbs' decisions from objects written as the operator writes them.

use super::*;
use serde_json::{Value, json};

const UID: &str = "0b6f6c1e-gd";

fn stored(spec_extra: Value, status: Value) -> StoredGameDeployment {
    let mut spec = json!({
        "replicas": 8,
        "selector": {"matchLabels": {"app": "game"}},
        "template": {"metadata": {"labels": {"app": "game"}},
                     "spec": {"containers": [{"name": "game", "image": "game:2"}]}},
        "updateStrategy": {"type": "InplaceUpdate", "partition": 3}
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut spec, spec_extra) {
        a.extend(b);
    }
    StoredGameDeployment::from_json(
        &json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "metadata": {"name": "game", "namespace": "default", "uid": UID, "generation": 2},
            "spec": spec,
            "status": status,
        })
        .to_string(),
    )
    .unwrap()
}

fn observed(gd: StoredGameDeployment) -> RolloutSnapshot {
    RolloutSnapshot {
        gd,
        pods: Vec::new(),
        hook_runs: BTreeMap::new(),
    }
}

fn status(updated: i32, updated_ready: i32, conditions: Value) -> Value {
    json!({"observedGeneration": 2, "replicas": 8, "readyReplicas": 8, "availableReplicas": 8,
           "updatedReplicas": updated, "updatedReadyReplicas": updated_ready,
           "updateRevision": "game-b", "currentRevision": "game-a", "labelSelector": "app=game",
           "conditions": conditions})
}

fn verdict_of(spec_extra: Value, status: Value) -> Verdict {
    verdict(&observed(stored(spec_extra, status)))
}

#[test]
fn a_partitioned_rollout_is_complete_once_the_pods_it_lets_through_are_updated_and_ready() {
    assert_eq!(
        verdict_of(json!({}), status(5, 5, json!([]))),
        Verdict::Complete(
            "partitioned roll out complete: 5 new pods have been updated (partition 3)...".into()
        )
    );
    assert_eq!(
        verdict_of(json!({}), status(5, 4, json!([]))),
        Verdict::Waiting(
            "Waiting for gamedeployment \"game\" rollout to finish: 4 of 5 updated pods are ready..."
                .into()
        )
    );
    assert_eq!(
        verdict_of(json!({}), status(2, 2, json!([]))),
        Verdict::Waiting(
            "Waiting for gamedeployment \"game\" rollout to finish: 2 out of 5 new pods have been updated..."
                .into()
        )
    );
    let whole = json!({"updateStrategy": {"type": "InplaceUpdate"}});
    assert_eq!(
        verdict_of(whole, status(8, 8, json!([]))),
        Verdict::Complete("gamedeployment \"game\" successfully rolled out".into())
    );
}

#[test]
fn a_status_for_an_older_generation_says_nothing_yet_not_even_a_failure() {
    let mut s = status(
        8,
        8,
        json!([{"type": "FailedUpdate", "status": "True", "reason": "InPlaceUpdateFailed"}]),
    );
    s["observedGeneration"] = json!(1);
    assert_eq!(
        verdict_of(json!({}), s),
        Verdict::Waiting(
            "Waiting for gamedeployment \"game\" spec update to be observed...".into()
        )
    );
    assert!(matches!(
        verdict_of(json!({}), Value::Null),
        Verdict::Waiting(l) if l.contains("operator to report")
    ));
}

#[test]
fn an_exceeded_progress_deadline_fails_and_names_itself() {
    let s = status(
        2,
        0,
        json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "no pod made progress for 600s"}]),
    );
    assert_eq!(
        verdict_of(json!({}), s),
        Verdict::Failed(
            "gamedeployment \"game\" exceeded its progress deadline (ProgressDeadlineExceeded): no pod made progress for 600s"
                .into()
        )
    );
    // Progressing=False for another reason (paused) is not a failure.
    let s = status(
        2,
        2,
        json!([{"type": "Progressing", "status": "False", "reason": "Paused"}]),
    );
    assert!(
        matches!(verdict_of(json!({"updateStrategy": {"type": "InplaceUpdate", "partition": 3, "paused": true}}), s), Verdict::Waiting(l) if l.ends_with("(paused: `kubectl gamedeploy resume game` continues it)..."))
    );
}

#[test]
fn a_failed_update_that_holds_fails_and_one_that_cleared_does_not() {
    let failed = json!([{"type": "FailedUpdate", "status": "True", "reason": "InPlaceUpdateFailed",
                         "message": "game-x: image game:broken cannot be pulled: ImagePullBackOff"}]);
    assert_eq!(
        verdict_of(json!({}), status(2, 1, failed)),
        Verdict::Failed(
            "gamedeployment \"game\" rollout failed: FailedUpdate InPlaceUpdateFailed: game-x: image game:broken cannot be pulled: ImagePullBackOff"
                .into()
        )
    );
    let cleared =
        json!([{"type": "FailedUpdate", "status": "False", "reason": "InPlaceUpdateFailed"}]);
    assert!(matches!(
        verdict_of(json!({}), status(5, 5, cleared)),
        Verdict::Complete(_)
    ));
}

#[test]
fn a_failed_canary_hook_step_fails_and_unfinished_steps_wait() {
    let steps = json!({"updateStrategy": {"type": "InplaceUpdate", "paused": true, "canary": {"steps": [
        {"partition": 6}, {"hook": {"templateName": "error-rate"}}, {"pause": {}}]}}});
    let mut s = status(2, 2, json!([]));
    s["currentStepIndex"] = json!(1);
    s["pauseConditions"] =
        json!([{"reason": "PausedByStepBasedHook", "startTime": "2026-01-01T00:00:00Z"}]);
    assert_eq!(
        verdict_of(steps.clone(), s.clone()),
        Verdict::Failed(
            "gamedeployment \"game\" rollout failed: a canary hook step did not succeed (pause condition PausedByStepBasedHook, canary step 1)"
                .into()
        )
    );
    s["pauseConditions"] = json!([]);
    s["currentStepIndex"] = json!(2);
    assert!(matches!(verdict_of(steps.clone(), s.clone()),
        Verdict::Waiting(l) if l.contains("canary step 2 of 3")));
    s["currentStepIndex"] = json!(3);
    s["updatedReplicas"] = json!(8);
    s["updatedReadyReplicas"] = json!(8);
    assert!(matches!(verdict_of(steps, s), Verdict::Complete(_)));
}

fn revision(number: i64, name: &str, image: &str, cause: Option<&str>) -> ControllerRevision {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
                     "annotations": cause.map(|c| json!({names::ANNOTATION_CHANGE_CAUSE: c})),
                     "ownerReferences": [{"apiVersion": "tkex.tencent.com/v1alpha1",
                        "kind": "GameDeployment", "name": "game", "uid": UID, "controller": true}]},
        "revision": number,
        "data": {"spec": {"template": {"$patch": "replace",
            "metadata": {"labels": {"app": "game"}},
            "spec": {"containers": [{"name": "game", "image": image,
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "64Mi"}}}]}}}}
    }))
    .unwrap()
}

fn pod(revision: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"labels": {names::LABEL_REVISION: revision}}}))
        .unwrap()
}

#[test]
fn history_lists_each_revision_with_its_cause_images_resources_and_pods() {
    let gd = stored(json!({}), Value::Null);
    let mut foreign = revision(9, "other-x", "other:1", None);
    foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "another".into();
    let stored_revisions = [
        revision(2, "game-b", "game:2", None),
        revision(1, "game-a", "game:1", Some("first release")),
        foreign,
    ];
    let revisions = Revision::of(&gd, &stored_revisions);
    assert_eq!(
        revisions.iter().map(|r| r.number).collect::<Vec<_>>(),
        [1, 2]
    );
    let pods = [pod("game-a"), pod("game-b"), pod("game-b")];
    assert_eq!(
        history(
            "game",
            &revisions,
            &pods,
            Some("set image game=game:2"),
            "game-b"
        ),
        "gamedeployment.tkex.tencent.com/game\n\
         REVISION   CHANGE-CAUSE            IMAGES        RESOURCES                          PODS\n\
         1          first release           game=game:1   game:cpu=100m/200m,memory=-/64Mi   1\n\
         2          set image game=game:2   game=game:2   game:cpu=100m/200m,memory=-/64Mi   2\n"
    );
}

#[test]
fn undo_goes_back_to_the_newest_other_template_or_the_one_named() {
    let gd = stored(json!({}), Value::Null);
    let stored_revisions = [
        revision(1, "game-a", "game:1", None),
        revision(2, "game-b", "game:2", None),
        revision(3, "game-c", "game:3", None),
    ];
    let revisions = Revision::of(&gd, &stored_revisions);
    let on = |n: usize| revisions[n].template.clone();
    assert_eq!(
        undo_target("game", &revisions, &on(2), None)
            .unwrap()
            .number,
        2
    );
    // After that undo the spec has revision 2's template: undo again goes to 3, as a
    // Deployment's renumbered history would.
    assert_eq!(
        undo_target("game", &revisions, &on(1), None)
            .unwrap()
            .number,
        3
    );
    assert_eq!(
        undo_target("game", &revisions, &on(2), Some(1))
            .unwrap()
            .number,
        1
    );
    assert_eq!(
        undo_target("game", &revisions, &on(2), Some(0))
            .unwrap()
            .number,
        2
    );
    assert_eq!(
        undo_target("game", &revisions, &on(2), Some(7))
            .unwrap_err()
            .to_string(),
        "unable to find specified revision 7 in history (`kubectl gamedeploy history NAME` lists them)"
    );
    assert_eq!(
        undo_target("game", &revisions[..1], &on(0), None).unwrap_err(),
        Unrestorable::NoPrevious {
            name: "game".into()
        }
    );
    assert!(matches!(
        undo_target("game", &[], &on(0), None),
        Err(Unrestorable::NoHistory { .. })
    ));
}

fn decoded(spec_extra: Value, status: Value) -> GameDeployment {
    stored(spec_extra, status)
        .decoded()
        .unwrap()
        .as_ref()
        .clone()
}

#[test]
fn promote_moves_one_step_or_past_the_last_and_resumes_only_an_operator_pause() {
    let steps = |paused: bool| {
        json!({"updateStrategy": {"type": "InplaceUpdate", "paused": paused, "canary": {"steps": [
            {"partition": 6}, {"pause": {}}, {"partition": 0}]}}})
    };
    let mut s = status(2, 2, json!([]));
    s["currentStepIndex"] = json!(1);
    s["pauseConditions"] =
        json!([{"reason": "PausedByCanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}]);
    let p = promotion(&decoded(steps(true), s.clone()), false).unwrap();
    assert_eq!(
        p,
        Promotion {
            from: 1,
            to: 2,
            steps: 3,
            resume: true,
            still_paused: false
        }
    );
    assert_eq!(
        promotion(&decoded(steps(true), s.clone()), true)
            .unwrap()
            .to,
        3
    );
    // The user's own pause (no pause condition) stays.
    s["pauseConditions"] = json!([]);
    let p = promotion(&decoded(steps(true), s.clone()), false).unwrap();
    assert!(!p.resume && p.still_paused, "{p:?}");
    s["currentStepIndex"] = json!(3);
    assert_eq!(
        promotion(&decoded(steps(false), s.clone()), false)
            .unwrap_err()
            .to_string(),
        "gamedeployment \"game\" has finished all 3 canary steps; nothing to promote"
    );
    s["observedGeneration"] = json!(1);
    assert!(matches!(
        promotion(&decoded(steps(false), s.clone()), false),
        Err(PromoteRefused::NotObserved { generation: 2, .. })
    ));
    assert_eq!(
        promotion(&decoded(json!({}), status(5, 5, json!([]))), true)
            .unwrap_err()
            .to_string(),
        "gamedeployment \"game\" has no canary steps (spec.updateStrategy.canary.steps), so there is no step to promote; nothing was changed"
    );
}

#[test]
fn the_verdict_under_the_screen_fits_its_width() {
    let v = verdict_of(json!({}), status(2, 2, json!([])));
    let wrapped = v.wrapped(40);
    assert!(
        wrapped.lines().all(|l| l.chars().count() <= 40),
        "{wrapped}"
    );
    assert_eq!(
        wrapped.split_whitespace().collect::<Vec<_>>().join(" "),
        v.line()
    );
}
