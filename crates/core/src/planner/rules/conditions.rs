//! The GameDeployment status (counts, revisions, conditions) as a pure function of what was
//! observed; the status phase adds the hook lists and canary fields. Conditions are computed
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
    /// The owned pods, counted ([`Counts::of`] their views, or a settled roster's tally).
    pub counts: Counts,
    pub replicas: i32,
    pub partition: i32,
    pub paused: bool,
    pub update_revision: &'a str,
    /// The oldest revision a live pod is on ([`super::pod_revisions::PodRevisions::current`]).
    pub current_revision: &'a str,
    pub collision_count: Option<i32>,
    pub label_selector: String,
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
    let counts = o.counts;
    let mut status = o.previous.cloned().unwrap_or_default();
    status.observed_generation = o.generation.unwrap_or(status.observed_generation);
    status.replicas = counts.replicas;
    status.ready_replicas = counts.ready;
    status.available_replicas = counts.available;
    status.updated_replicas = counts.updated;
    status.updated_ready_replicas = counts.updated_ready;
    status.update_revision = o.update_revision.to_string();
    status.current_revision = o.current_revision.to_string();
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
        last_update_time: None,
        last_transition_time: Some(since),
        reason: reason.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests;
