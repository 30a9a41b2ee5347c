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
pub const STATUS_COALESCING: SignedDuration = SignedDuration::from_secs(1);

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
mod tests {
    use super::*;
    use crate::names;
    use crate::planner::model::{Regarding, Report};

    fn report() -> OnFailure {
        OnFailure::reported(Report {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::EVENT_FAILED_HOTPATCH,
            prefix: "hot-patch Pod p failed: ".into(),
            event: Some(Regarding::GameDeployment),
        })
    }

    fn refused(kind: ApiErrorKind) -> Result<(), (ApiErrorKind, String)> {
        Err((kind, "boom".into()))
    }

    #[test]
    fn a_success_raises_its_event() {
        let ok = EventNote::normal("Done", "done".into());
        let w = Write::new((), report()).on_success(ok.clone());
        assert_eq!(judge(&w, Ok(())), WriteOutcome::Succeeded(Some(ok)));
    }

    #[test]
    fn tolerated_errors_are_quiet_or_successes() {
        let ok = EventNote::normal("Done", "done".into());
        let gone = Write::new((), report().tolerating(ApiErrorKind::NotFound));
        assert_eq!(
            judge(&gone, refused(ApiErrorKind::NotFound)),
            WriteOutcome::Quiet
        );
        let there =
            Write::new((), report().tolerating(ApiErrorKind::AlreadyExists)).on_success(ok.clone());
        assert_eq!(
            judge(&there, refused(ApiErrorKind::AlreadyExists)),
            WriteOutcome::Succeeded(Some(ok))
        );
        // Not tolerated: a failure like any other.
        assert!(judge(&gone, refused(ApiErrorKind::AlreadyExists)).is_failure());
    }

    #[test]
    fn a_conflict_is_retried_only_where_the_write_says_so() {
        let w = Write::new((), report().retrying_conflicts());
        assert_eq!(
            judge(&w, refused(ApiErrorKind::Conflict)),
            WriteOutcome::Retry("boom".into())
        );
        let w = Write::new((), report());
        assert!(matches!(
            judge(&w, refused(ApiErrorKind::Conflict)),
            WriteOutcome::Failed(..)
        ));
    }

    #[test]
    fn a_reported_failure_names_its_condition_and_raises_a_warning() {
        let w = Write::new((), report());
        let WriteOutcome::Failed(failure, Some(event)) = judge(&w, refused(ApiErrorKind::Other))
        else {
            panic!("a reported failure");
        };
        assert_eq!(failure.condition, names::CONDITION_FAILED_UPDATE);
        assert_eq!(failure.message, "hot-patch Pod p failed: boom");
        assert!(event.warning);
        assert_eq!(event.reason, names::EVENT_FAILED_HOTPATCH);
        assert_eq!(event.message, failure.message);
        let logged = Write::new((), OnFailure::logged());
        assert_eq!(
            judge(&logged, refused(ApiErrorKind::Other)),
            WriteOutcome::Logged("boom".into())
        );
    }

    #[test]
    fn a_failure_skips_the_rest_of_its_chain_only() {
        let failed: BTreeSet<String> = ["pod-a".to_string()].into();
        assert!(skipped(Some("pod-a"), &failed));
        assert!(!skipped(Some("pod-b"), &failed));
        assert!(!skipped(None, &failed));
    }

    #[test]
    fn only_a_gating_write_that_failed_stops_its_chain() {
        let boom = judge(&Write::new((), report()), refused(ApiErrorKind::Other));
        let gating = Write::new((), report()).gating("pod-a");
        assert_eq!(stopped_chain(&gating, &boom), Some("pod-a"));
        assert_eq!(stopped_chain(&gating, &WriteOutcome::Quiet), None);
        let member = Write::new((), report()).in_chain("pod-a");
        assert_eq!(stopped_chain(&member, &boom), None);
    }

    #[test]
    fn failures_join_their_condition_once_and_keep_its_time() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let failure = |m: &str| ConditionReport {
            condition: names::CONDITION_FAILED_SCALE,
            reason: names::EVENT_FAILED_CREATE,
            message: m.into(),
        };
        let first = status_after(&[], GameDeploymentStatus::default(), vec![failure("a")], t0);
        assert_eq!(first.conditions.len(), 1);
        let again = status_after(
            &first.conditions,
            GameDeploymentStatus::default(),
            vec![failure("a"), failure("a"), failure("b")],
            t1,
        );
        assert_eq!(again.conditions[0].message, "a; b");
        assert_eq!(
            again.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );
    }

    mod status_coalescing {
        use super::super::*;

        fn t(s: i64) -> Timestamp {
            Timestamp::from_second(1_700_000_000 + s).unwrap()
        }

        fn progressing(reason: &str, message: &str) -> GameDeploymentStatus {
            GameDeploymentStatus {
                observed_generation: 2,
                replicas: 10,
                updated_replicas: 3,
                update_revision: "r2".into(),
                current_revision: "r1".into(),
                conditions: vec![GameDeploymentCondition {
                    type_: "Progressing".into(),
                    status: "True".into(),
                    reason: reason.into(),
                    message: message.into(),
                    last_transition_time: None,
                }],
                ..Default::default()
            }
        }

        #[test]
        fn counts_within_a_second_of_the_last_write_wait_for_it() {
            let before = progressing("Updating", "3 of 10 pods updated, 3 ready");
            let mut after = progressing("Updating", "4 of 10 pods updated, 3 ready");
            after.updated_replicas = 4;
            let last = t(0) + SignedDuration::from_millis(300);
            assert_eq!(
                status_write(Some(&before), &after, Some(last), t(1)),
                StatusWrite::At(last + STATUS_COALESCING)
            );
            // Due: written.
            let later = last + STATUS_COALESCING;
            assert_eq!(
                status_write(Some(&before), &after, Some(last), later),
                StatusWrite::Now
            );
            // Never written by this operator (a restart): written at once.
            assert_eq!(
                status_write(Some(&before), &after, None, t(1)),
                StatusWrite::Now
            );
        }

        #[test]
        fn what_tools_wait_on_is_written_at_once() {
            let before = progressing("Updating", "9 of 10 pods updated, 9 ready");
            let last = Some(t(1));
            let complete = progressing("Complete", "all 10 pods run revision r2");
            assert_eq!(
                status_write(Some(&before), &complete, last, t(1)),
                StatusWrite::Now
            );
            let mut generation = before.clone();
            generation.observed_generation = 3;
            assert_eq!(
                status_write(Some(&before), &generation, last, t(1)),
                StatusWrite::Now
            );
            let mut revision = before.clone();
            revision.current_revision = "r2".into();
            assert_eq!(
                status_write(Some(&before), &revision, last, t(1)),
                StatusWrite::Now
            );
        }

        #[test]
        fn an_unchanged_status_is_not_written_and_a_first_one_is() {
            let s = progressing("Updating", "3 of 10 pods updated, 3 ready");
            assert_eq!(
                status_write(Some(&s), &s, Some(t(0)), t(0)),
                StatusWrite::Unchanged
            );
            assert_eq!(status_write(None, &s, Some(t(0)), t(0)), StatusWrite::Now);
        }
    }
}
