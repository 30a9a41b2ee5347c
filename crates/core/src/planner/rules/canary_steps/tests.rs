use super::*;

fn t(s: &str) -> Timestamp {
    format!("2026-01-01T00:{s}Z").parse().unwrap()
}

fn steps(yaml: &str) -> Vec<CanaryStep> {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Eight pods, `updated` of them on the update revision `r2`, all ready and available.
fn counts(updated: i32) -> Counts {
    Counts {
        replicas: 8,
        ready: 8,
        available: 8,
        updated,
        updated_ready: updated,
    }
}

struct World {
    steps: Vec<CanaryStep>,
    status: Option<GameDeploymentStatus>,
    update: String,
    paused: bool,
    updated: i32,
    runs: BTreeMap<String, HookRunView>,
    now: Timestamp,
}

impl World {
    /// A rollout from `r1` to `r2` whose previous reconcile saw only `r1`.
    fn new(yaml: &str) -> Self {
        let steps = steps(yaml);
        World {
            status: Some(GameDeploymentStatus {
                update_revision: "r1".into(),
                current_revision: "r1".into(),
                current_step_index: Some(steps.len() as i32),
                current_step_hash: steps_hash(&steps),
                canary: Some(CanaryStatus {
                    revision: "r1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            steps,
            update: "r2".into(),
            paused: false,
            updated: 0,
            runs: BTreeMap::new(),
            now: t("00:00"),
        }
    }

    fn decide(&self) -> Canary {
        decide(&CanaryInput {
            steps: &self.steps,
            previous: self.status.as_ref(),
            update_revision: &self.update,
            paused: self.paused,
            replicas: 8,
            counts: counts(self.updated),
            runs: &self.runs,
            now: self.now,
        })
    }

    /// Decides, then records the status as the executor would write it.
    fn step(&mut self) -> Canary {
        let c = self.decide();
        let s = self.status.get_or_insert_with(Default::default);
        s.update_revision = self.update.clone();
        s.current_step_index = c.current_step_index;
        s.current_step_hash = c.current_step_hash.clone();
        s.canary = c.status.clone();
        s.pause_conditions = c.pause_conditions.clone();
        c
    }

    fn run(&mut self, name: &str, phase: Option<HookPhase>) {
        let c = self.decide();
        let made = c.create.expect("a run to create");
        assert_eq!(made.name, name);
        self.runs.insert(
            name.into(),
            HookRunView {
                phase,
                labels: [
                    (names::LABEL_HOOKRUN_TYPE, "canary-step"),
                    (names::LABEL_HOOKRUN_REVISION, self.update.as_str()),
                    (
                        names::LABEL_HOOKRUN_CANARY_STEP_INDEX,
                        &made.index.to_string(),
                    ),
                    (names::LABEL_HOOKRUN_CANARY_STEP_HASH, &made.hash),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                terminate: false,
            },
        );
    }

    fn set_phase(&mut self, name: &str, phase: HookPhase) {
        self.runs.get_mut(name).unwrap().phase = Some(phase);
    }
}

fn reasons(c: &Canary) -> Vec<String> {
    c.notes
        .iter()
        .map(|n| format!("{}: {}", n.reason, n.message))
        .collect()
}

#[test]
fn the_first_sync_skips_the_steps_and_records_the_stable_revision() {
    let mut w = World::new("[{partition: 4}]");
    w.status = None;
    let c = w.step();
    assert_eq!(c.current_step_index, Some(1));
    assert_eq!(c.partition, Some(0));
    assert_eq!(c.status.unwrap().revision, "r2");
    assert!(c.notes.is_empty());
}

/// Steps done in a row at one instant are one event: 2,000 zero-length pauses sent 2,001
/// events in one burst.
#[test]
fn steps_done_at_once_are_one_event() {
    let steps = format!(
        "[{}{{partition: 4}}]",
        "{pause: {duration: 0}}, ".repeat(2000)
    );
    let mut w = World::new(&steps);
    let c = w.step();
    assert_eq!(c.current_step_index, Some(2000));
    assert_eq!(
        reasons(&c),
        [
            "SetStepIndex: Set Step Index to 0",
            "SetStepIndex: Set Step Index to 2000 (steps 0 to 1999 were done at once)"
        ]
    );
}

#[test]
fn partition_steps_hold_pods_back_until_the_pods_they_let_through_are_ready() {
    let mut w = World::new("[{partition: 6}, {partition: 2}]");
    let c = w.step();
    assert_eq!(reasons(&c), ["SetStepIndex: Set Step Index to 0"]);
    assert_eq!((c.current_step_index, c.partition), (Some(0), Some(6)));
    w.updated = 1;
    assert_eq!(w.step().partition, Some(6), "one of two is not enough");
    w.updated = 2;
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(1), Some(2)));
    assert_eq!(reasons(&c), ["SetStepIndex: Set Step Index to 1"]);
    w.updated = 6;
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(0)));
    assert_eq!(c.status.unwrap().revision, "r2", "the canary is done");
}

/// The newer API's percentage steps, of 8 replicas: "75%" keeps 6 back, "99%" rounds up to all
/// 8 but, below 100%, lets one through (CloneSet's rounding), and the hash of integer steps is
/// what it was when steps held plain integers.
#[test]
fn percentage_partition_steps_are_of_replicas() {
    let mut w = World::new("[{partition: \"75%\"}, {partition: \"99%\"}, {partition: 2}]");
    assert_eq!(w.step().partition, Some(6));
    w.updated = 2;
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(2)));
    assert_eq!(
        effective_partition(&w.steps, 1, 8),
        7,
        "99% of 8 keeps 7, not 8"
    );
    // The hash of what steps with a plain-number partition serialized to, so stored
    // `currentStepHash`es stay valid now that a partition may be a percentage.
    assert_eq!(
        steps_hash(&steps("[{partition: 6}]")),
        revision_hash(&serde_json::json!([{"partition": 6}]), None)
    );
}

#[test]
fn before_the_first_partition_step_no_pod_moves() {
    let mut w = World::new("[{pause: {duration: 60}}, {partition: 4}]");
    assert_eq!(w.step().partition, Some(8));
}

#[test]
fn a_timed_pause_ends_on_the_clock_without_touching_the_spec() {
    let mut w = World::new("[{partition: 6}, {pause: {duration: 60}}]");
    w.updated = 2;
    let c = w.step();
    assert_eq!(c.current_step_index, Some(1));
    assert_eq!(c.wake_at, Some(t("01:00")));
    assert!(!c.pause_updates);
    assert_eq!(
        c.pause_conditions[0].reason,
        PauseReason::PausedByCanaryPauseStep
    );
    w.now = t("00:59");
    let c = w.step();
    assert_eq!(
        (c.current_step_index, c.wake_at),
        (Some(1), Some(t("01:00"))),
        "the start time is kept"
    );
    w.now = t("01:00");
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(0)));
    assert!(c.pause_conditions.is_empty());
}

#[test]
fn a_pause_without_duration_pauses_the_spec_then_waits_for_the_user() {
    let mut w = World::new("[{partition: 6}, {pause: {}}]");
    w.updated = 2;
    let c = w.step();
    assert!(c.pause_updates, "first the spec is paused");
    assert!(
        c.pause_conditions.is_empty(),
        "the condition follows the spec"
    );
    w.paused = true;
    let c = w.step();
    assert!(!c.pause_updates);
    assert_eq!(c.pause_conditions.len(), 1);
    assert_eq!(reasons(&c)[0].split(':').next(), Some("CanaryPaused"));
    let c = w.step();
    assert_eq!(c.current_step_index, Some(1), "still paused");
    assert!(c.notes.is_empty(), "said once");
    w.paused = false;
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(0)));
    assert!(c.pause_conditions.is_empty());
}

#[test]
fn a_users_own_pause_is_taken_as_the_stop_and_never_written_back() {
    let mut w = World::new("[{partition: 6}, {pause: {}}]");
    w.paused = true;
    w.updated = 2;
    let c = w.step();
    assert!(!c.pause_updates);
    assert_eq!(c.pause_conditions.len(), 1);
}

#[test]
fn a_hook_step_runs_its_hook_and_passes_when_it_succeeds() {
    let mut w = World::new("[{partition: 6}, {hook: {templateName: check}}]");
    w.updated = 2;
    w.run("canary-r2-1-check", None);
    let c = w.step();
    assert_eq!(c.current_step_index, Some(1));
    assert_eq!(c.status.unwrap().current_step_hook_run, "canary-r2-1-check");
    assert_eq!(c.create, None, "it is there");
    w.set_phase("canary-r2-1-check", HookPhase::Running);
    assert_eq!(w.step().current_step_index, Some(1));
    w.set_phase("canary-r2-1-check", HookPhase::Successful);
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(0)));
    assert_eq!(c.status.unwrap().current_step_hook_run, "");
}

#[test]
fn a_failed_hook_pauses_and_resuming_runs_it_again_instead_of_skipping_it() {
    let mut w = World::new("[{partition: 6}, {hook: {templateName: check}}]");
    w.updated = 2;
    w.run("canary-r2-1-check", Some(HookPhase::Failed));
    let c = w.step();
    assert!(c.pause_updates);
    assert_eq!(c.problems[0].reason, "CanaryHookFailed");
    assert!(
        c.problems[0].message.contains("ended Failed"),
        "{:?}",
        c.problems
    );
    w.paused = true;
    let c = w.step();
    assert_eq!(
        c.pause_conditions[0].reason,
        PauseReason::PausedByStepBasedHook
    );
    assert_eq!(reasons(&c).len(), 1, "one Warning event");
    assert!(reasons(&c)[0].starts_with("CanaryHookFailed"));
    assert!(w.step().notes.is_empty(), "said once");
    w.paused = false;
    let c = w.decide();
    assert_eq!(c.current_step_index, Some(1), "not skipped");
    assert!(reasons(&c)[0].starts_with("CanaryHookRetried"));
    w.run("canary-r2-1-check.1", None);
    let c = w.step();
    assert!(c.pause_conditions.is_empty());
    assert!(c.problems.is_empty(), "the new attempt is running");
    assert_eq!(
        c.status.unwrap().current_step_hook_run,
        "canary-r2-1-check.1"
    );
    w.set_phase("canary-r2-1-check.1", HookPhase::Successful);
    assert_eq!(w.step().current_step_index, Some(2));
}

#[test]
fn a_lost_status_write_finds_the_run_it_made_and_makes_no_second_one() {
    let mut w = World::new("[{hook: {templateName: check}}]");
    w.run("canary-r2-0-check", None);
    // The status that would have named the run was never written.
    w.status.as_mut().unwrap().update_revision = "r2".into();
    w.status.as_mut().unwrap().current_step_index = Some(0);
    let c = w.step();
    assert_eq!(c.create, None);
    assert_eq!(c.status.unwrap().current_step_hook_run, "canary-r2-0-check");
}

#[test]
fn a_steps_edit_restarts_them_and_never_reuses_a_run_made_for_the_old_steps() {
    let mut w = World::new("[{hook: {templateName: check}}, {partition: 4}]");
    w.run("canary-r2-0-check", Some(HookPhase::Running));
    w.step();
    w.set_phase("canary-r2-0-check", HookPhase::Successful);
    assert_eq!(w.step().current_step_index, Some(1));
    w.steps = steps("[{hook: {templateName: check}}, {partition: 2}]");
    let c = w.decide();
    assert_eq!(c.current_step_index, Some(0));
    assert_eq!(
        c.create.map(|r| r.name).as_deref(),
        Some("canary-r2-0-check.1"),
        "a new run, not the old success"
    );
}

#[test]
fn a_template_change_restarts_and_supersedes_the_runs_of_the_old_revision() {
    let mut w = World::new("[{hook: {templateName: check}}]");
    w.run("canary-r2-0-check", Some(HookPhase::Running));
    w.step();
    w.update = "r3".into();
    let c = w.step();
    assert_eq!(c.current_step_index, Some(0));
    assert_eq!(c.delete, ["canary-r2-0-check"]);
    assert_eq!(c.create.as_ref().unwrap().name, "canary-r3-0-check");
    assert!(
        reasons(&c).is_empty(),
        "the index stays 0: {:?}",
        reasons(&c)
    );
}

#[test]
fn a_rollback_to_the_stable_revision_skips_the_steps() {
    let mut w = World::new("[{partition: 6}, {pause: {}}]");
    w.updated = 2;
    w.step();
    w.update = "r1".into();
    w.updated = 6;
    let c = w.step();
    assert_eq!((c.current_step_index, c.partition), (Some(2), Some(0)));
    assert_eq!(reasons(&c), ["SetStepIndex: Set Step Index to 2"]);
    assert!(!c.pause_updates);
}

#[test]
fn steps_removed_clear_the_canary_and_stop_its_runs() {
    let mut w = World::new("[{hook: {templateName: check}}]");
    w.run("canary-r2-0-check", Some(HookPhase::Running));
    w.step();
    w.steps.clear();
    let c = w.step();
    assert_eq!(c.partition, None);
    assert_eq!(c.current_step_index, None);
    assert_eq!(c.terminate, ["canary-r2-0-check"]);
}

#[test]
fn a_duplicate_attempt_is_stopped() {
    let mut w = World::new("[{hook: {templateName: check}}]");
    w.run("canary-r2-0-check", Some(HookPhase::Running));
    w.step();
    w.runs.insert(
        "canary-r2-0-check.1".into(),
        w.runs["canary-r2-0-check"].clone(),
    );
    let c = w.step();
    assert_eq!(
        c.status.unwrap().current_step_hook_run,
        "canary-r2-0-check.1"
    );
    assert_eq!(c.terminate, ["canary-r2-0-check"]);
}
