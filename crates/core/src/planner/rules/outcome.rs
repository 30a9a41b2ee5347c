//! What the outcomes of a plan's writes mean, as pure functions the executor
//! (`crates/operator/src/execute.rs`) calls: whether an error is a success, a retry or a
//! failure to report, which writes a failure skips, and the status that reports the failures.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::conditions;
use crate::api::{GameDeploymentCondition, GameDeploymentStatus};
use crate::planner::model::{
    ApiErrorKind, ConditionReport, Consequence, EventNote, OnFailure, Write,
};

/// What a write's outcome leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Done; the event to raise, if any.
    Succeeded(Option<EventNote>),
    /// Nothing to do and nothing to say (a delete that found nothing).
    Quiet,
    /// Logged only.
    Logged(String),
    /// Counted, so the reconcile retries soon.
    Retry(String),
    /// Counted, a condition, and the Warning event, if any.
    Failed(ConditionReport, Option<EventNote>),
}

impl WriteOutcome {
    /// Whether the write failed (and so skips the rest of its chain).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            WriteOutcome::Logged(_) | WriteOutcome::Retry(_) | WriteOutcome::Failed(..)
        )
    }
}

/// The meaning of `result` for `write`: `Err((kind, message))` is the API's refusal.
pub fn judge<T>(write: &Write<T>, result: Result<(), (ApiErrorKind, String)>) -> WriteOutcome {
    let (kind, error) = match result {
        Ok(()) => return WriteOutcome::Succeeded(write.on_success.clone()),
        Err(e) => e,
    };
    let OnFailure {
        tolerated,
        conflict_retries,
        consequence,
    } = &write.on_failure;
    match (kind, consequence) {
        (ApiErrorKind::NotFound, _) if *tolerated == Some(kind) => WriteOutcome::Quiet,
        (ApiErrorKind::AlreadyExists, _) if *tolerated == Some(kind) => {
            WriteOutcome::Succeeded(write.on_success.clone())
        }
        (ApiErrorKind::Conflict, _) if *conflict_retries => WriteOutcome::Retry(error),
        (_, Consequence::Logged) => WriteOutcome::Logged(error),
        (_, Consequence::Retried) => WriteOutcome::Retry(error),
        (_, Consequence::Reported(report)) => {
            let message = format!("{}{error}", report.prefix);
            let event = report.event.clone().map(|regarding| EventNote {
                regarding,
                warning: true,
                reason: report.reason.to_string(),
                message: message.clone(),
            });
            let failure = ConditionReport {
                condition: report.condition,
                reason: report.reason,
                message,
            };
            WriteOutcome::Failed(failure, event)
        }
    }
}

/// Whether an effect of `chain` is skipped: a write of the chain that the rest depends on (a
/// pod's checkpoint; a creation in the slow start) failed.
pub fn skipped(chain: Option<&str>, failed_chains: &BTreeSet<String>) -> bool {
    chain.is_some_and(|c| failed_chains.contains(c))
}

/// The chain that `write`'s outcome stops, if it does: see [`skipped`].
pub fn stopped_chain<'a, T>(write: &'a Write<T>, outcome: &WriteOutcome) -> Option<&'a str> {
    write
        .chain
        .as_deref()
        .filter(|_| write.gates_chain && outcome.is_failure())
}

/// The planned status with the failures of this reconcile's writes added to their conditions.
/// A failure that persists keeps its condition's transition time, so a retry that fails the
/// same way writes no status (and so does not trigger itself through the watch).
pub fn status_after(
    previous: &[GameDeploymentCondition],
    mut planned: GameDeploymentStatus,
    failures: Vec<ConditionReport>,
    now: Timestamp,
) -> GameDeploymentStatus {
    for ConditionReport {
        condition,
        reason,
        message,
    } in failures
    {
        match planned.conditions.iter_mut().find(|c| c.type_ == condition) {
            Some(c) if c.message.split("; ").any(|m| m == message) => {}
            Some(c) => c.message = format!("{}; {message}", c.message),
            None => planned.conditions.push(conditions::condition(
                previous, condition, "True", reason, message, now,
            )),
        }
    }
    planned
}

/// How long a status whose only news is counts may wait: `kubectl get gd` is never more stale
/// than this, and a burst of pod changes within it (a 1,000-pod rollout makes several per
/// second) costs one status write instead of one each.
pub(crate) const STATUS_COALESCING: SignedDuration = SignedDuration::from_secs(1);

/// Whether and when to write a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// What the status shows has not changed.
    Unchanged,
    Now,
    /// Only counts (and the messages that quote them) changed, and the last status write was
    /// less than [`STATUS_COALESCING`] ago: write it when that has passed, together with
    /// whatever else changes meanwhile.
    At(Timestamp),
}

/// Whether `status` must be written now, given what the object shows (`previous`) and when
/// this operator last wrote its status (`last_write`; unknown after a restart, which writes at
/// once). A change of generation, revisions, selector, condition types, statuses or reasons,
/// pauses or canary progress is written at once: tools and users wait on those.
pub fn status_write(
    previous: Option<&GameDeploymentStatus>,
    status: &GameDeploymentStatus,
    last_write: Option<Timestamp>,
    now: Timestamp,
) -> StatusWrite {
    let Some(previous) = previous.filter(|p| *p != status) else {
        return if previous.is_some() {
            StatusWrite::Unchanged
        } else {
            StatusWrite::Now
        };
    };
    let due = last_write.and_then(|t| t.checked_add(STATUS_COALESCING).ok());
    match due {
        Some(due) if due > now && counts_only(previous, status) => StatusWrite::At(due),
        _ => StatusWrite::Now,
    }
}

/// Whether `a` and `b` differ only in counts and condition messages.
fn counts_only(a: &GameDeploymentStatus, b: &GameDeploymentStatus) -> bool {
    fn shape(s: &GameDeploymentStatus) -> impl PartialEq + '_ {
        let conditions: Vec<(&str, &str, &str)> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        (
            (
                s.observed_generation,
                &s.update_revision,
                &s.current_revision,
            ),
            (s.collision_count, &s.label_selector, conditions),
            (
                &s.pause_conditions,
                s.current_step_index,
                &s.current_step_hash,
            ),
            &s.canary,
        )
    }
    shape(a) == shape(b)
}

#[cfg(test)]
mod tests;
