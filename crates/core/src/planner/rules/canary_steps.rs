//! Canary steps (`updateStrategy.canary.steps`): where the rollout stands and what moves it on,
//! as a pure function of the steps, the last status, the pod counts, the canary HookRuns and the
//! clock. While steps exist, the partition it returns replaces `updateStrategy.partition`.
//!
//! The position lives in the status, in the original's fields (`currentStepIndex`,
//! `currentStepHash`, `canary.revision`, `canary.currentStepHookRun`, `pauseConditions`), and
//! every step ends on a fact that still holds when looked at again (pods updated and ready, a
//! pause's start time, a HookRun's phase, the user's `paused: false`). So a crash or a lost
//! status write only makes the next reconcile decide the same again.
//!
//! Where it differs from the original, on purpose: resuming after a failed hook step runs the
//! hook again instead of skipping it; the operator writes `paused: true` only to stop at a pause
//! without duration or a failed hook, and never writes it back to false, so a user's own pause
//! holds; a partition step that is already exceeded completes (the original waited for an exact
//! count).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::Counts;
use super::hookruns::free_name;
use super::revision_history::revision_hash;
use crate::api::{
    CanaryPause, CanaryStatus, CanaryStep, GameDeploymentStatus, HookPhase, HookStep,
    PauseCondition, PauseReason,
};
use crate::inplace::HookKind;
use crate::inplace::attempt_of;
use crate::names;
use crate::planner::model::{ConditionReport, EventNote, HookRunView, StepRun};

/// What one reconcile knows about the canary.
#[derive(Debug, Clone, Copy)]
pub struct CanaryInput<'a> {
    pub steps: &'a [CanaryStep],
    pub previous: Option<&'a GameDeploymentStatus>,
    pub update_revision: &'a str,
    /// `updateStrategy.paused` as the spec has it now.
    pub paused: bool,
    /// `spec.replicas`.
    pub replicas: i32,
    pub counts: Counts,
    /// The HookRuns the GameDeployment owns (only `canary-step` ones are read).
    pub runs: &'a BTreeMap<String, HookRunView>,
    pub now: Timestamp,
}

/// The canary decided: the partition to apply, the status fields, and what to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Canary {
    /// The partition the update phase applies; `None` without steps (then
    /// `updateStrategy.partition` applies).
    pub partition: Option<i32>,
    pub current_step_index: Option<i32>,
    pub current_step_hash: String,
    pub status: Option<CanaryStatus>,
    pub pause_conditions: Vec<PauseCondition>,
    pub create: Option<StepRun>,
    /// Write `updateStrategy.paused: true`: a pause without duration or a failed hook step was
    /// reached while the spec is not paused. The pause condition is recorded on the next
    /// reconcile, once the spec shows the pause, so `paused: false` next to a pause condition
    /// always means a user resumed.
    pub pause_updates: bool,
    /// Canary HookRuns superseded by another step or attempt, still running: stopped.
    pub terminate: Vec<String>,
    /// Canary HookRuns of another revision.
    pub delete: Vec<String>,
    pub notes: Vec<EventNote>,
    pub problems: Vec<ConditionReport>,
    /// A timed pause ends then.
    pub wake_at: Option<Timestamp>,
}

/// Decides the canary of one reconcile.
pub fn decide(input: &CanaryInput) -> Canary {
    let mut out = Canary::default();
    if input.steps.is_empty() {
        supersede(input, None, &mut out);
        return out;
    }
    let len = input.steps.len();
    let update = input.update_revision;
    let hash = steps_hash(input.steps);
    let previous = input.previous;
    let last = previous.and_then(|s| s.canary.as_ref());
    let mut stable = last.map(|c| c.revision.clone()).unwrap_or_default();
    let mut current = last
        .map(|c| c.current_step_hook_run.clone())
        .unwrap_or_default();
    let mut pauses = previous
        .map(|s| s.pause_conditions.clone())
        .unwrap_or_default();
    let mut index = previous
        .and_then(|s| s.current_step_index)
        .map_or(0, |i| i.clamp(0, len as i32) as usize);
    let restart =
        previous.is_none_or(|s| s.current_step_hash != hash || s.update_revision != update);
    if restart {
        // The steps move a rollout off the stable revision: the first sync creates pods on the
        // update revision (nothing to stage), and a rollback to the stable revision skips them.
        if stable.is_empty() {
            stable = previous
                .map(|s| s.current_revision.clone())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| update.to_string());
        }
        let to = if update == stable { len } else { 0 };
        // Steps added to a settled GameDeployment have nothing to move: no event.
        if previous
            .and_then(|s| s.current_step_index)
            .unwrap_or(len as i32)
            != to as i32
        {
            out.notes.push(step_note(to.saturating_sub(1), to));
        }
        index = to;
        current.clear();
        pauses.clear();
    }
    let step_input = StepInput { input, hash: &hash };
    // The step a run of steps done in a row started from, and where its one event is.
    let mut run_of_steps: Option<(usize, usize)> = None;
    while index < len {
        let step = &input.steps[index];
        let done = if let Some(p) = step.partition {
            partition_reached(p, input)
        } else if let Some(pause) = &step.pause {
            pause_over(pause, index, &step_input, &mut pauses, &mut out)
        } else if let Some(hook) = &step.hook {
            hook_passed(
                hook,
                index,
                &step_input,
                &mut current,
                &mut pauses,
                &mut out,
            )
        } else {
            true
        };
        if !done {
            break;
        }
        index += 1;
        current.clear();
        // Steps done in a row at one instant (a list of zero-length pauses) are one event,
        // not one each: 2,000 such steps sent 2,001 events in a burst.
        match run_of_steps {
            Some((from, at)) if at + 1 == out.notes.len() => {
                out.notes[at] = step_note(from, index);
            }
            _ => {
                run_of_steps = Some((index - 1, out.notes.len()));
                out.notes.push(step_note(index - 1, index));
            }
        }
    }
    if index == len {
        stable = update.to_string();
        pauses.clear();
    }
    supersede(input, Some(&current), &mut out);
    out.partition = Some(effective_partition(input.steps, index, input.replicas));
    out.current_step_index = Some(index as i32);
    out.current_step_hash = hash;
    out.status = Some(CanaryStatus {
        revision: stable,
        pause_start_time: last.and_then(|c| c.pause_start_time.clone()),
        current_step_hook_run: current,
    });
    out.pause_conditions = pauses;
    out
}

/// The hash of the steps (`currentStepHash`): a change restarts them.
pub fn steps_hash(steps: &[CanaryStep]) -> String {
    revision_hash(&serde_json::to_value(steps).unwrap_or_default(), None)
}

/// The partition at step `index`: the nearest `partition` step at or before it; all pods kept
/// back before the first one; none once every step is done.
fn effective_partition(steps: &[CanaryStep], index: usize, replicas: i32) -> i32 {
    if index >= steps.len() {
        return 0;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.partition)
        .map_or(replicas, |p| p.clamp(0, replicas.max(0)))
}

/// The original's event text, for a move to step `index`; when several steps were done at
/// once (from step `from`), one event says so.
fn step_note(from: usize, index: usize) -> EventNote {
    let message = if index > from + 1 {
        format!(
            "Set Step Index to {index} (steps {from} to {} were done at once)",
            index - 1
        )
    } else {
        format!("Set Step Index to {index}")
    };
    EventNote::normal(names::EVENT_SET_STEP_INDEX, message)
}

/// What every step reads besides the input.
struct StepInput<'a> {
    input: &'a CanaryInput<'a>,
    hash: &'a str,
}

/// A partition step is done once the pods it lets through are updated and ready, and every
/// ready pod is available.
fn partition_reached(partition: i32, input: &CanaryInput) -> bool {
    let target = input.replicas - partition.clamp(0, input.replicas.max(0));
    input.counts.updated_ready >= target && input.counts.available == input.counts.ready
}

/// A pause step: a timed one ends `duration` after it began; one without duration when the
/// user sets `paused: false` after the operator paused.
fn pause_over(
    pause: &CanaryPause,
    index: usize,
    s: &StepInput,
    pauses: &mut Vec<PauseCondition>,
    out: &mut Canary,
) -> bool {
    let reason = PauseReason::PausedByCanaryPauseStep;
    let since = pauses
        .iter()
        .find(|c| c.reason == reason)
        .map(|c| c.start_time.0);
    let now = s.input.now;
    let position = format!("canary step {index} of {}", s.input.steps.len());
    match (pause.duration, since) {
        (Some(seconds), since) => {
            let start = since.unwrap_or(now);
            let end = start
                .checked_add(SignedDuration::from_secs(i64::from(seconds)))
                .unwrap_or(start);
            if end <= now {
                pauses.retain(|c| c.reason != reason);
                return true;
            }
            if since.is_none() {
                pauses.push(pause_condition(reason, now));
                out.notes.push(EventNote::normal(
                    names::EVENT_CANARY_PAUSED,
                    format!("{position}: paused for {seconds}s"),
                ));
            }
            out.wake_at = Some(end);
            false
        }
        (None, Some(_)) if !s.input.paused => {
            pauses.retain(|c| c.reason != reason);
            true
        }
        (None, Some(_)) => false,
        (None, None) if s.input.paused => {
            pauses.push(pause_condition(reason, now));
            out.notes.push(EventNote::normal(
                names::EVENT_CANARY_PAUSED,
                format!("{position}: paused; set spec.updateStrategy.paused to false to continue"),
            ));
            false
        }
        (None, None) => {
            out.pause_updates = true;
            false
        }
    }
}

fn pause_condition(reason: PauseReason, now: Timestamp) -> PauseCondition {
    PauseCondition {
        reason,
        start_time: Time(now),
    }
}

/// A hook step is done when its HookRun is Successful. One that ends otherwise pauses the
/// rollout; when the user resumes, the hook runs again as a new attempt (`<name>.N`).
fn hook_passed(
    hook: &HookStep,
    index: usize,
    s: &StepInput,
    current: &mut String,
    pauses: &mut Vec<PauseCondition>,
    out: &mut Canary,
) -> bool {
    let input = s.input;
    let base = HookKind::CanaryStep.run_name(
        input.update_revision,
        &index.to_string(),
        &hook.template_name,
    );
    let reason = PauseReason::PausedByStepBasedHook;
    *current = current_attempt(&base, index, s, current);
    let request = |name: &str| StepRun {
        name: name.to_string(),
        revision: input.update_revision.to_string(),
        index,
        hash: s.hash.to_string(),
        hook: hook.clone(),
    };
    let Some(run) = input.runs.get(current.as_str()) else {
        // Not there yet (or not in the cache yet: creating it again is answered
        // AlreadyExists, which is fine).
        out.create = Some(request(current));
        pauses.retain(|c| c.reason != reason);
        return false;
    };
    let phase = run.phase.unwrap_or(HookPhase::Pending);
    if phase == HookPhase::Successful {
        pauses.retain(|c| c.reason != reason);
        return true;
    }
    if !phase.is_completed() {
        pauses.retain(|c| c.reason != reason);
        return false;
    }
    let paused_by_hook = pauses.iter().any(|c| c.reason == reason);
    if paused_by_hook && !input.paused {
        pauses.retain(|c| c.reason != reason);
        let again = free_name(&base, input.runs);
        out.notes.push(EventNote::normal(
            names::EVENT_CANARY_HOOK_RETRIED,
            format!(
                "canary step {index}: resumed; running hook {} again as HookRun {again}",
                hook.template_name
            ),
        ));
        out.create = Some(request(&again));
        *current = again;
        return false;
    }
    let message = format!(
        "canary step {index}: HookRun {current} (template {}) ended {phase}; the rollout is \
         paused: fix the cause, then set spec.updateStrategy.paused to false to run the hook \
         again",
        hook.template_name
    );
    out.problems.push(ConditionReport {
        condition: names::CONDITION_FAILED_UPDATE,
        reason: names::EVENT_CANARY_HOOK_FAILED,
        message: message.clone(),
    });
    if !paused_by_hook {
        if input.paused {
            pauses.push(pause_condition(reason, input.now));
            out.notes
                .push(EventNote::warning(names::EVENT_CANARY_HOOK_FAILED, message));
        } else {
            out.pause_updates = true;
        }
    }
    false
}

/// The attempt of this step that counts: the newest run made for it (by its labels: this
/// revision, step and steps hash), or the one the status names if that is newer (created but
/// not in the cache yet); without either, a new one.
fn current_attempt(base: &str, index: usize, s: &StepInput, recorded: &str) -> String {
    let input = s.input;
    let index_label = index.to_string();
    let made_for_step = input
        .runs
        .iter()
        .filter(|(_, r)| {
            is_canary(r)
                && r.label(names::LABEL_HOOKRUN_REVISION) == Some(input.update_revision)
                && r.label(names::LABEL_HOOKRUN_CANARY_STEP_INDEX) == Some(index_label.as_str())
                && r.label(names::LABEL_HOOKRUN_CANARY_STEP_HASH) == Some(s.hash)
        })
        .filter_map(|(name, _)| Some((attempt_of(base, name)?, name.as_str())));
    let recorded = attempt_of(base, recorded).map(|a| (a, recorded));
    made_for_step
        .chain(recorded)
        .max()
        .map_or_else(|| free_name(base, input.runs), |(_, n)| n.to_string())
}

/// Whether `run` is a canary step's (not a pod's).
fn is_canary(run: &HookRunView) -> bool {
    run.label(names::LABEL_HOOKRUN_TYPE) == Some(HookKind::CanaryStep.label())
}

/// Canary runs that no longer count: those of another revision are deleted; those of this
/// revision other than `keep` are stopped if still running, and kept for the record.
fn supersede(input: &CanaryInput, keep: Option<&String>, out: &mut Canary) {
    for (name, run) in input.runs.iter().filter(|(_, r)| is_canary(r)) {
        if run.label(names::LABEL_HOOKRUN_REVISION) != Some(input.update_revision) {
            out.delete.push(name.clone());
        } else if Some(name) != keep
            && !run.terminate
            && !run.phase.is_some_and(|p| p.is_completed())
        {
            out.terminate.push(name.clone());
        }
    }
}

#[cfg(test)]
mod tests;
