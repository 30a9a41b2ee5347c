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
    let WriteOutcome::Failed(failure, Some(event)) = judge(&w, refused(ApiErrorKind::Other)) else {
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
                last_update_time: None,
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
