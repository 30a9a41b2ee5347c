use super::*;
use crate::inplace::{Action, Endpoint, PodWrite, Record};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const START: &str = "2026-01-01T00:00:00Z";

/// A status whose `Progressing` condition is `reason` (as `conditions::compute` leaves it),
/// with `updated` of 8 pods on r2, none ready.
fn status(reason: &str, updated: i32) -> GameDeploymentStatus {
    GameDeploymentStatus {
        replicas: 8,
        updated_replicas: updated,
        update_revision: "r2".into(),
        conditions: vec![GameDeploymentCondition {
            type_: names::CONDITION_PROGRESSING.into(),
            status: "True".into(),
            reason: reason.into(),
            message: format!("{updated} of 8 pods updated, 0 ready"),
            last_update_time: None,
            last_transition_time: Some(Time(t(START))),
        }],
        ..Default::default()
    }
}

/// One reconcile at `at`: `computed` judged against `previous` with a 60 s deadline.
fn reconcile(
    previous: Option<&GameDeploymentStatus>,
    mut computed: GameDeploymentStatus,
    machines_moved: bool,
    at: &str,
) -> (GameDeploymentStatus, Option<Timestamp>) {
    let due = apply(
        &mut computed,
        &DeadlineInput {
            deadline_seconds: Some(60),
            previous,
            machines_moved,
            now: t(at),
        },
    );
    (computed, due)
}

fn condition(s: &GameDeploymentStatus) -> &GameDeploymentCondition {
    progressing(s).unwrap()
}

#[test]
fn no_deadline_leaves_the_condition_as_computed() {
    let mut s = status(names::REASON_UPDATING, 3);
    let before = s.clone();
    let due = apply(
        &mut s,
        &DeadlineInput {
            deadline_seconds: None,
            previous: None,
            machines_moved: false,
            now: t(START),
        },
    );
    assert_eq!((s, due), (before, None));
}

#[test]
fn a_rollout_without_progress_turns_false_once_the_deadline_passes_and_says_so_once() {
    let (first, due) = reconcile(None, status(names::REASON_UPDATING, 3), false, START);
    assert_eq!(condition(&first).last_update_time, Some(Time(t(START))));
    assert_eq!(
        due,
        Some(t("2026-01-01T00:01:00Z")),
        "requeue when it passes"
    );

    let (within, due) = reconcile(
        Some(&first),
        status(names::REASON_UPDATING, 3),
        false,
        "2026-01-01T00:00:59Z",
    );
    assert_eq!(condition(&within).status, "True");
    assert_eq!(
        due,
        Some(t("2026-01-01T00:01:00Z")),
        "the count is not reset"
    );
    assert_eq!(exceeded_note(Some(&first), &within), None);

    let (passed, due) = reconcile(
        Some(&within),
        status(names::REASON_UPDATING, 3),
        false,
        "2026-01-01T00:01:00Z",
    );
    let c = condition(&passed);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), due),
        ("False", names::REASON_PROGRESS_DEADLINE_EXCEEDED, None)
    );
    assert_eq!(
        c.last_update_time,
        Some(Time(t(START))),
        "the last progress"
    );
    assert_eq!(
        c.last_transition_time,
        Some(Time(t("2026-01-01T00:01:00Z")))
    );
    assert_eq!(
        c.message,
        "no pod made progress for 60s (spec.progressDeadlineSeconds) since 2026-01-01T00:00:00Z: \
         3 of 8 pods updated, 0 ready"
    );
    let note = exceeded_note(Some(&within), &passed).expect("one Warning event");
    assert!(note.warning);
    assert_eq!(note.reason, names::REASON_PROGRESS_DEADLINE_EXCEEDED);
    assert_eq!(note.message, c.message);

    // Later reconciles (or a restarted operator reading the written status) keep it, silently.
    let (later, due) = reconcile(
        Some(&passed),
        status(names::REASON_UPDATING, 3),
        false,
        "2026-01-01T00:05:00Z",
    );
    assert_eq!(condition(&later), condition(&passed));
    assert_eq!(due, None);
    assert_eq!(exceeded_note(Some(&passed), &later), None);
}

#[test]
fn progress_turns_it_back_to_true_and_restarts_the_count() {
    let (first, _) = reconcile(None, status(names::REASON_UPDATING, 3), false, START);
    let (passed, _) = reconcile(
        Some(&first),
        status(names::REASON_UPDATING, 3),
        false,
        "2026-01-01T00:02:00Z",
    );
    assert_eq!(condition(&passed).status, "False");
    let (resumed, due) = reconcile(
        Some(&passed),
        status(names::REASON_UPDATING, 4),
        false,
        "2026-01-01T00:03:00Z",
    );
    let c = condition(&resumed);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", names::REASON_UPDATING)
    );
    assert_eq!(c.last_update_time, Some(Time(t("2026-01-01T00:03:00Z"))));
    assert_eq!(due, Some(t("2026-01-01T00:04:00Z")));
    assert_eq!(exceeded_note(Some(&passed), &resumed), None);
}

#[test]
fn each_kind_of_progress_restarts_the_count() {
    let (first, _) = reconcile(None, status(names::REASON_UPDATING, 3), false, START);
    let later = "2026-01-01T00:00:50Z";
    let moved = |s: GameDeploymentStatus, machines_moved: bool| {
        let (s, due) = reconcile(Some(&first), s, machines_moved, later);
        (condition(&s).last_update_time.clone(), due)
    };
    let restarted = (Some(Time(t(later))), Some(t("2026-01-01T00:01:50Z")));
    let with = |f: fn(&mut GameDeploymentStatus)| {
        let mut s = status(names::REASON_UPDATING, 3);
        f(&mut s);
        s
    };
    assert_eq!(moved(status(names::REASON_UPDATING, 3), true), restarted);
    assert_eq!(moved(with(|s| s.ready_replicas = 1), false), restarted);
    assert_eq!(moved(with(|s| s.available_replicas = 1), false), restarted);
    assert_eq!(
        moved(with(|s| s.updated_ready_replicas = 1), false),
        restarted
    );
    assert_eq!(
        moved(with(|s| s.replicas = 7), false),
        restarted,
        "an old pod went"
    );
    assert_eq!(
        moved(with(|s| s.update_revision = "r3".into()), false),
        restarted,
        "a new rollout"
    );
    // Pods that get worse are no progress.
    let mut worse = status(names::REASON_UPDATING, 3);
    worse.replicas = 9;
    assert_eq!(
        moved(worse, false),
        (Some(Time(t(START))), Some(t("2026-01-01T00:01:00Z")))
    );
}

#[test]
fn paused_time_does_not_count() {
    let (first, _) = reconcile(None, status(names::REASON_UPDATING, 3), false, START);
    let (paused, due) = reconcile(
        Some(&first),
        status(names::REASON_PAUSED, 3),
        false,
        "2026-01-01T00:00:30Z",
    );
    assert_eq!(due, None, "no deadline runs while paused");
    let (still, _) = reconcile(
        Some(&paused),
        status(names::REASON_PAUSED, 3),
        false,
        "2026-01-01T01:00:00Z",
    );
    assert_eq!(condition(&still).status, "True");
    assert_eq!(
        condition(&still).last_update_time,
        Some(Time(t("2026-01-01T00:00:30Z"))),
        "kept while the reason stays"
    );
    let (resumed, due) = reconcile(
        Some(&still),
        status(names::REASON_UPDATING, 3),
        false,
        "2026-01-01T02:00:00Z",
    );
    let c = condition(&resumed);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Updating"));
    assert_eq!(
        due,
        Some(t("2026-01-01T02:01:00Z")),
        "counted from the resume"
    );
}

#[test]
fn a_finished_rollout_has_no_deadline() {
    for reason in [
        names::REASON_COMPLETE,
        names::REASON_PARTITION_REACHED,
        names::REASON_UPDATE_ABANDONED,
    ] {
        let (done, due) = reconcile(None, status(reason, 8), false, START);
        let (later, later_due) = reconcile(
            Some(&done),
            status(reason, 8),
            false,
            "2026-01-02T00:00:00Z",
        );
        assert_eq!((due, later_due), (None, None), "{reason}");
        assert_eq!(condition(&later).status, "True", "{reason}");
    }
}

fn record(state: State, revision: &str) -> Decoded {
    Decoded::Valid(Record {
        state,
        ..Record::start(revision, t(START))
    })
}

fn step(state: State, writes: bool) -> MachineStep {
    MachineStep {
        transitions: vec![],
        state: Some(state),
        actions: if writes {
            vec![Action::WritePod(Box::new(PodWrite::new(
                Endpoint::Pod,
                None,
            )))]
        } else {
            vec![]
        },
        wake_at: None,
    }
}

#[test]
fn a_machine_moves_the_rollout_when_it_writes_a_new_checkpoint() {
    let at = |s, r| record(s, r);
    assert!(machine_moved(
        &Decoded::Missing,
        &step(State::Unready, true),
        "r2"
    ));
    assert!(machine_moved(
        &at(State::Unready, "r2"),
        &step(State::ImagePatched, true),
        "r2"
    ));
    assert!(machine_moved(
        &at(State::ImagePatched, "r2"),
        &step(State::Ready, true),
        "r2"
    ));
    assert!(machine_moved(
        &at(State::Ready, "r1"),
        &step(State::HookCheck, true),
        "r2"
    ));
    // The same checkpoint, a derived state of it, a failure, or no write: no progress.
    assert!(!machine_moved(
        &at(State::ImagePatched, "r2"),
        &step(State::Restarting, true),
        "r2"
    ));
    assert!(!machine_moved(
        &at(State::Unready, "r2"),
        &step(State::GracefulWait, true),
        "r2"
    ));
    assert!(!machine_moved(
        &at(State::ImagePatched, "r2"),
        &step(State::Failed, true),
        "r2"
    ));
    assert!(!machine_moved(
        &at(State::ImagePatched, "r2"),
        &step(State::Ready, false),
        "r2"
    ));
}

fn pre_inplace(s: &mut GameDeploymentStatus) -> &mut Vec<crate::api::HookCondition> {
    &mut s.pre_inplace_hook_condition
}

fn pre_delete(s: &mut GameDeploymentStatus) -> &mut Vec<crate::api::HookCondition> {
    &mut s.pre_delete_hook_condition
}

fn post_inplace(s: &mut GameDeploymentStatus) -> &mut Vec<crate::api::HookCondition> {
    &mut s.post_inplace_hook_condition
}

/// `status(Updating, 3)` with pod `p` waiting on a hook in `phase`, in the list `list` picks.
fn waiting(
    phase: crate::api::HookPhase,
    list: fn(&mut GameDeploymentStatus) -> &mut Vec<crate::api::HookCondition>,
) -> GameDeploymentStatus {
    let mut s = status(names::REASON_UPDATING, 3);
    list(&mut s).push(crate::api::HookCondition {
        pod_name: "p".into(),
        start_time: Time(t(START)),
        phase,
    });
    s
}

#[test]
fn a_running_pre_hook_holds_the_count_and_its_end_restarts_it_whatever_the_outcome() {
    use crate::api::HookPhase;
    for list in [pre_inplace, pre_delete] {
        let (first, _) = reconcile(None, waiting(HookPhase::Running, list), false, START);
        // Long past the deadline, the hook still running: still progressing, nothing to requeue.
        let (running, due) = reconcile(
            Some(&first),
            waiting(HookPhase::Running, list),
            false,
            "2026-01-01T01:00:00Z",
        );
        assert_eq!(condition(&running).status, "True");
        assert_eq!(due, None, "the run's end triggers the next reconcile");
        assert_eq!(
            condition(&running).last_update_time,
            Some(Time(t(START))),
            "held, not rewritten on every reconcile"
        );
        // It ends Failed: the count starts from its end and is not held any more.
        let (ended, due) = reconcile(
            Some(&running),
            waiting(HookPhase::Failed, list),
            false,
            "2026-01-01T01:00:10Z",
        );
        assert_eq!(condition(&ended).status, "True");
        assert_eq!(due, Some(t("2026-01-01T01:01:10Z")));
        let (passed, _) = reconcile(
            Some(&ended),
            waiting(HookPhase::Failed, list),
            false,
            "2026-01-01T01:01:10Z",
        );
        assert_eq!(
            condition(&passed).reason,
            names::REASON_PROGRESS_DEADLINE_EXCEEDED,
            "a failed hook keeps nothing progressing"
        );
    }
}

#[test]
fn a_running_post_hook_gates_nothing_and_holds_no_deadline() {
    let running = || waiting(crate::api::HookPhase::Running, post_inplace);
    let (first, _) = reconcile(None, running(), false, START);
    let (later, _) = reconcile(Some(&first), running(), false, "2026-01-01T00:01:00Z");
    assert_eq!(
        condition(&later).reason,
        names::REASON_PROGRESS_DEADLINE_EXCEEDED
    );
}

/// An ordered `inPlaceUpdateStrategy.policy` patches its next container from `ImagePatched` to
/// `ImagePatched`: the checkpoint's state is the same, but one more container is patched.
#[test]
fn the_next_container_of_an_ordered_update_is_progress() {
    let mut first = Record {
        state: State::ImagePatched,
        ..Record::start("r2", t(START))
    };
    first.images.insert("game".into(), "game:2".into());
    let mut next = first.clone();
    next.images.insert("agent".into(), "agent:2".into());
    let write = |checkpoint: Record| {
        let mut w = PodWrite::new(Endpoint::Pod, None);
        w.checkpoint = Some(checkpoint);
        MachineStep {
            transitions: vec![],
            state: Some(State::ImagePatched),
            actions: vec![Action::WritePod(Box::new(w))],
            wake_at: None,
        }
    };
    let recorded = Decoded::Valid(first.clone());
    assert!(machine_moved(&recorded, &write(next), "r2"));
    assert!(!machine_moved(&recorded, &write(first), "r2"));
}
