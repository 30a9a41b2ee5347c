//! The GameDeployment status (counts, revisions, conditions) as a pure function of what was
//! observed; [`crate::planner::phases::status`] adds the hook lists and canary fields. Conditions are computed
//! here and written with the rest of the status (the Go original returned before writing them,
//! so they never reached the API).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::budget::{ReadyBy, is_available_by};
use crate::api::{GameDeploymentCondition, GameDeploymentStatus};
use crate::inplace::PodView;
use crate::names;
use crate::planner::model::ConditionReport;

/// What the status is computed from.
#[derive(Debug, Clone)]
pub struct StatusInput<'a> {
    pub generation: Option<i64>,
    /// Owned pods, including those being deleted.
    pub pods: &'a [&'a PodView],
    pub replicas: i32,
    pub partition: i32,
    pub paused: bool,
    pub update_revision: &'a str,
    /// Revision names, oldest first (by ControllerRevision `revision` number).
    pub revisions: &'a [String],
    pub collision_count: Option<i32>,
    pub label_selector: String,
    pub min_ready_seconds: i64,
    /// Pods whose update to `update_revision` was given up by force: they hold the rollout
    /// back until forced to `Pending`, and the condition must say so rather than "Updating".
    pub abandoned: i32,
    pub problems: &'a [ConditionReport],
    pub previous: Option<&'a GameDeploymentStatus>,
    pub now: Timestamp,
}

/// The pod counts the status reports, and canary steps wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pods not being deleted.
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    /// On the update revision.
    pub updated: i32,
    pub updated_ready: i32,
}

impl Counts {
    /// Counts `pods` (those being deleted left out) against `update_revision`.
    pub fn of(
        pods: &[&PodView],
        update_revision: &str,
        min_ready_seconds: i64,
        now: Timestamp,
    ) -> Self {
        let mut c = Counts::default();
        let ready_by = ReadyBy::new(min_ready_seconds, now);
        for p in pods.iter().filter(|p| !p.deleting) {
            let updated = p.revision.as_deref() == Some(update_revision);
            c.replicas += 1;
            c.ready += i32::from(p.ready);
            c.available += i32::from(is_available_by(p, ready_by));
            c.updated += i32::from(updated);
            c.updated_ready += i32::from(updated && p.ready);
        }
        c
    }
}

/// Computes the status to write.
pub fn compute(o: &StatusInput) -> GameDeploymentStatus {
    let active: Vec<&PodView> = o.pods.iter().filter(|p| !p.deleting).copied().collect();
    let counts = Counts::of(&active, o.update_revision, o.min_ready_seconds, o.now);
    let current_revision = o
        .revisions
        .iter()
        .find(|r| {
            active
                .iter()
                .any(|p| p.revision.as_deref() == Some(r.as_str()))
        })
        .cloned()
        .unwrap_or_else(|| o.update_revision.to_string());
    let mut status = o.previous.cloned().unwrap_or_default();
    status.observed_generation = o.generation.unwrap_or(status.observed_generation);
    status.replicas = counts.replicas;
    status.ready_replicas = counts.ready;
    status.available_replicas = counts.available;
    status.updated_replicas = counts.updated;
    status.updated_ready_replicas = counts.updated_ready;
    status.update_revision = o.update_revision.to_string();
    status.current_revision = current_revision;
    status.collision_count = o.collision_count;
    status.label_selector = o.label_selector.clone();

    let previous = o
        .previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut conditions = Vec::new();
    for kind in [
        names::CONDITION_FAILED_SCALE,
        names::CONDITION_FAILED_UPDATE,
    ] {
        let mine: Vec<&ConditionReport> =
            o.problems.iter().filter(|p| p.condition == kind).collect();
        if let Some(first) = mine.first() {
            let message = mine
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            conditions.push(condition(
                previous,
                kind,
                "True",
                first.reason,
                message,
                o.now,
            ));
        }
    }
    let target = (o.replicas - o.partition.clamp(0, o.replicas.max(0))).max(0);
    let (reason, message) = if o.paused {
        (names::REASON_PAUSED, "updates are paused".to_string())
    } else if o.abandoned > 0
        && status.updated_replicas < target
        && status.updated_replicas + o.abandoned >= target
        && status.updated_ready_replicas == status.updated_replicas
    {
        (
            names::REASON_UPDATE_ABANDONED,
            format!(
                "{} of {target} pods updated; {} abandoned by force \
                 (annotate tkex.tencent.com/inplace-update-force=Pending to resume)",
                status.updated_replicas, o.abandoned
            ),
        )
    } else if status.updated_replicas < target
        || status.updated_ready_replicas < status.updated_replicas
    {
        (
            names::REASON_UPDATING,
            format!(
                "{} of {target} pods updated, {} ready",
                status.updated_replicas, status.updated_ready_replicas
            ),
        )
    } else if status.updated_replicas < o.replicas {
        (
            names::REASON_PARTITION_REACHED,
            format!(
                "{} pods updated; partition keeps {} on older revisions",
                status.updated_replicas,
                o.replicas - status.updated_replicas
            ),
        )
    } else {
        (
            names::REASON_COMPLETE,
            format!("all {} pods run revision {}", o.replicas, o.update_revision),
        )
    };
    conditions.push(condition(
        previous,
        names::CONDITION_PROGRESSING,
        "True",
        reason,
        message,
        o.now,
    ));
    status.conditions = conditions;
    status
}

/// A condition, keeping the previous transition time while its status does not change.
pub fn condition(
    previous: &[GameDeploymentCondition],
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> GameDeploymentCondition {
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    GameDeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_transition_time: Some(since),
        reason: reason.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        StatusInput {
            generation: Some(3),
            pods,
            replicas: 8,
            partition: 3,
            paused: false,
            update_revision: "r2",
            revisions,
            collision_count: None,
            label_selector: "app=test-gamedeployment".into(),
            min_ready_seconds: 0,
            abandoned: 0,
            problems,
            previous: None,
            now: t("2026-01-01T00:10:00Z"),
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
}
