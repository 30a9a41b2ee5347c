//! `spec.progressDeadlineSeconds` through whole reconciles: each plans from the status the
//! previous one wrote, as a restarted operator would (nothing else is remembered).

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::api::{GameDeployment, GameDeploymentCondition};
use crate::names;
use crate::planner::model::{Effect, EventNote, Plan};
use crate::planner::testing::{now, seed};

fn at(seconds: i64) -> Timestamp {
    now() + SignedDuration::from_secs(seconds)
}

/// The seed with a 60 s deadline, the revision and the eight pods its first sync creates
/// (never started: they stay unready), and that sync's plan.
fn created() -> (GameDeployment, Vec<Pod>, Vec<ControllerRevision>, Plan) {
    let mut gd = seed();
    gd.spec.progress_deadline_seconds = Some(60);
    let first = plan(&PlanInput::for_test(&gd), &mut suffixes());
    let mut pods = Vec::new();
    let mut revs = Vec::new();
    for e in &first.effects {
        match e {
            Effect::CreatePod { pod, .. } => pods.push(pod.object.clone()),
            Effect::CreateRevision(r) => revs.push(r.object.clone()),
            _ => {}
        }
    }
    (gd, pods, revs, first)
}

fn suffixes() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("d{n:04}")
    }
}

/// One reconcile at `when` of `gd` showing `previous`'s status.
fn reconcile(
    gd: &GameDeployment,
    previous: &Plan,
    pods: &[Pod],
    revs: &[ControllerRevision],
    when: Timestamp,
) -> Plan {
    let mut gd = gd.clone();
    gd.status = previous.status().cloned();
    let pods: Vec<Arc<CachedPod>> = pods.iter().cloned().map(|p| Arc::new(p.into())).collect();
    plan(
        &PlanInput {
            pods: &pods,
            revisions: revs,
            now: when,
            ..PlanInput::for_test(&gd)
        },
        &mut suffixes(),
    )
}

fn progressing(p: &Plan) -> GameDeploymentCondition {
    let s = p.status().unwrap();
    let c = s.conditions.iter().find(|c| c.type_ == "Progressing");
    c.unwrap().clone()
}

fn deadline_events(p: &Plan) -> Vec<&EventNote> {
    p.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event { note, .. } if note.reason == "ProgressDeadlineExceeded" => Some(note),
            _ => None,
        })
        .collect()
}

fn ready(mut pod: Pod) -> Pod {
    pod.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "InPlaceUpdateReady", "status": "True"}
            ]
        }))
        .unwrap(),
    );
    pod
}

#[test]
fn pods_that_never_get_ready_exceed_the_deadline_once_and_progress_ends_it() {
    let (gd, pods, revs, first) = created();
    assert_eq!(pods.len(), 8);
    // The pods appear: 8 more updated than the status says, progress.
    let seen = reconcile(&gd, &first, &pods, &revs, at(30));
    let c = progressing(&seen);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Updating"));
    assert_eq!(c.last_update_time.map(|t| t.0), Some(at(30)));
    assert_eq!(
        seen.requeue_at,
        Some(at(90)),
        "look again when it would pass"
    );
    // Nothing moves: still within the deadline at 89 s, past it at 90 s.
    let within = reconcile(&gd, &seen, &pods, &revs, at(89));
    assert_eq!(progressing(&within).status, "True");
    assert!(deadline_events(&within).is_empty());
    let passed = reconcile(&gd, &within, &pods, &revs, at(90));
    let c = progressing(&passed);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", names::REASON_PROGRESS_DEADLINE_EXCEEDED)
    );
    let events = deadline_events(&passed);
    assert_eq!(events.len(), 1);
    assert!(events[0].warning);
    assert_eq!(events[0].message, c.message);
    // A restarted operator sees only the written status: no second event, still False.
    let restarted = reconcile(&gd, &passed, &pods, &revs, at(600));
    assert_eq!(progressing(&restarted).status, "False");
    assert!(deadline_events(&restarted).is_empty());
    // The pods get ready: progress, True again, and no deadline once complete.
    let ready_pods: Vec<Pod> = pods.into_iter().map(ready).collect();
    let done = reconcile(&gd, &restarted, &ready_pods, &revs, at(700));
    let c = progressing(&done);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Complete"));
    assert!(deadline_events(&done).is_empty());
}

#[test]
fn paused_time_does_not_count_toward_the_deadline() {
    let (mut gd, pods, revs, first) = created();
    let seen = reconcile(&gd, &first, &pods, &revs, at(30));
    gd.spec.update_strategy.as_mut().unwrap().paused = true;
    let paused = reconcile(&gd, &seen, &pods, &revs, at(60));
    assert_eq!(progressing(&paused).reason, "Paused");
    let still = reconcile(&gd, &paused, &pods, &revs, at(3600));
    assert_eq!(progressing(&still).status, "True");
    gd.spec.update_strategy.as_mut().unwrap().paused = false;
    let resumed = reconcile(&gd, &still, &pods, &revs, at(7200));
    let c = progressing(&resumed);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Updating"));
    assert_eq!(
        resumed.requeue_at,
        Some(at(7260)),
        "counted from the resume"
    );
}

#[test]
fn without_a_deadline_the_condition_carries_no_update_time() {
    let (mut gd, pods, revs, first) = created();
    gd.spec.progress_deadline_seconds = None;
    let later = reconcile(&gd, &first, &pods, &revs, at(100_000));
    let c = progressing(&later);
    assert_eq!((c.status.as_str(), c.last_update_time), ("True", None));
}
