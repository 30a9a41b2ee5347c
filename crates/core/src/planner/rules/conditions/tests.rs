use super::*;
use crate::planner::rules::pod_revisions::PodRevisions;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn pod(name: &str, rev: &str, ready: bool) -> PodView {
    PodView {
        name: name.into(),
        revision: Some(rev.into()),
        phase: Some("Running".into()),
        ready,
        ready_since: Some(t("2026-01-01T00:00:00Z")),
        ..Default::default()
    }
}

fn observed<'a>(
    pods: &'a [&'a PodView],
    problems: &'a [ConditionReport],
    revisions: &'a [String],
) -> StatusInput<'a> {
    let now = t("2026-01-01T00:10:00Z");
    StatusInput {
        generation: Some(3),
        counts: Counts::of(pods, "r2", 0, now),
        replicas: 8,
        partition: 3,
        paused: false,
        update_revision: "r2",
        current_revision: PodRevisions::of(pods)
            .oldest_live(revisions)
            .map_or("r2", String::as_str),
        collision_count: None,
        label_selector: "app=test-gamedeployment".into(),
        abandoned: 0,
        problems,
        previous: None,
        now,
    }
}

#[test]
fn the_seed_after_the_canary() {
    let mut pods: Vec<PodView> = (0..5).map(|i| pod(&format!("p{i}"), "r2", true)).collect();
    pods.extend((5..8).map(|i| pod(&format!("p{i}"), "r1", true)));
    let revs = vec!["r1".to_string(), "r2".to_string()];
    let pods: Vec<&PodView> = pods.iter().collect();
    let s = compute(&observed(&pods, &[], &revs));
    assert_eq!(
        (
            s.replicas,
            s.ready_replicas,
            s.updated_replicas,
            s.updated_ready_replicas
        ),
        (8, 8, 5, 5)
    );
    assert_eq!(
        s.current_revision, "r1",
        "the oldest revision a pod still runs"
    );
    assert_eq!(s.observed_generation, 3);
    assert_eq!(s.label_selector, "app=test-gamedeployment");
    let progressing = s
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_PROGRESSING)
        .unwrap();
    assert_eq!(progressing.reason, "PartitionReached");
}

fn progressing(s: &GameDeploymentStatus) -> (&str, &str) {
    let c = s
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_PROGRESSING)
        .unwrap();
    (c.reason.as_str(), c.message.as_str())
}

#[test]
fn one_revision_everywhere_is_complete_whatever_the_partition() {
    let pods: Vec<PodView> = (0..8).map(|i| pod(&format!("p{i}"), "r2", true)).collect();
    let revs = vec!["r2".to_string()];
    let pods: Vec<&PodView> = pods.iter().collect();
    let s = compute(&observed(&pods, &[], &revs));
    assert_eq!(progressing(&s), ("Complete", "all 8 pods run revision r2"));
}

#[test]
fn an_abandoned_pod_holding_the_rollout_back_is_named_as_such() {
    let mut pods: Vec<PodView> = (0..4).map(|i| pod(&format!("p{i}"), "r2", true)).collect();
    pods.extend((4..8).map(|i| pod(&format!("p{i}"), "r1", true)));
    let revs = vec!["r1".to_string(), "r2".to_string()];
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut o = observed(&pods, &[], &revs);
    o.abandoned = 1;
    let s = compute(&o);
    assert_eq!(
        progressing(&s),
        (
            "UpdateAbandoned",
            "4 of 5 pods updated; 1 abandoned by force (annotate tkex.tencent.com/inplace-update-force=Pending to resume)"
        )
    );
    o.abandoned = 0;
    assert_eq!(progressing(&compute(&o)).0, "Updating");
}

#[test]
fn failures_become_conditions_and_keep_their_transition_time() {
    let pods = [pod("p0", "r2", false)];
    let revs = vec!["r2".to_string()];
    let problems = vec![
        ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: "InPlaceUpdateFailed",
            message: "p0: ImagePullBackOff".into(),
        },
        ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: "InPlaceUpdateFailed",
            message: "p1: CrashLoop".into(),
        },
    ];
    let pods: Vec<&PodView> = pods.iter().collect();
    let first = compute(&observed(&pods, &problems, &revs));
    let failed = first
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_UPDATE)
        .unwrap();
    assert_eq!(failed.message, "p0: ImagePullBackOff; p1: CrashLoop");
    let mut later = observed(&pods, &problems, &revs);
    later.now = t("2026-01-01T01:00:00Z");
    later.previous = Some(&first);
    let second = compute(&later);
    let again = second
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_UPDATE)
        .unwrap();
    assert_eq!(again.last_transition_time, failed.last_transition_time);
    let cleared = compute(&StatusInput {
        problems: &[],
        previous: Some(&second),
        ..later
    });
    assert!(
        !cleared
            .conditions
            .iter()
            .any(|c| c.type_ == names::CONDITION_FAILED_UPDATE)
    );
}

#[test]
fn progressing_keeps_its_transition_time_while_only_the_reason_changes() {
    let revs = vec!["r1".to_string(), "r2".to_string()];
    let mut pods: Vec<PodView> = (0..5).map(|i| pod(&format!("p{i}"), "r2", true)).collect();
    pods.extend((5..8).map(|i| pod(&format!("p{i}"), "r1", true)));
    pods[0].ready = false;
    let updating = compute(&observed(&pods.iter().collect::<Vec<_>>(), &[], &revs));
    let progressing = |s: &GameDeploymentStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == names::CONDITION_PROGRESSING)
            .cloned()
            .unwrap()
    };
    assert_eq!(progressing(&updating).reason, "Updating");
    pods[0].ready = true;
    let pods: Vec<&PodView> = pods.iter().collect();
    let mut later = observed(&pods, &[], &revs);
    later.now = t("2026-01-01T01:00:00Z");
    later.previous = Some(&updating);
    let reached = compute(&later);
    let (before, after) = (progressing(&updating), progressing(&reached));
    assert_eq!(after.reason, "PartitionReached");
    assert_eq!(
        after.last_transition_time, before.last_transition_time,
        "Kubernetes convention: lastTransitionTime moves only when the status does"
    );
}

#[test]
fn terminating_pods_are_not_counted() {
    let mut pods = [pod("p0", "r2", true), pod("p1", "r2", true)];
    pods[1].deleting = true;
    let revs = vec!["r2".to_string()];
    let pods: Vec<&PodView> = pods.iter().collect();
    let s = compute(&observed(&pods, &[], &revs));
    assert_eq!(s.replicas, 1);
    assert_eq!(s.current_revision, "r2");
}
