//! The rollout deadline, `spec.progressDeadlineSeconds`, as Deployment's: when no pod makes
//! progress for that long while the rollout is `Updating`, the `Progressing` condition turns
//! False with reason `ProgressDeadlineExceeded`, and back to True with the next progress.
//!
//! The last progress is the condition's `lastUpdateTime`, in the status, so a restarted
//! operator resumes the count where it was. Progress is (Kubernetes'
//! `pkg/controller/deployment/util/deployment_util.go`, `DeploymentProgressing`, for the
//! counts; the rest is what an in-place rollout does between them):
//! - more pods updated, ready, available or updated and ready than the last written status
//!   says, or fewer pods left on older revisions;
//! - a new update revision (a new rollout starts, as Deployment's new ReplicaSet);
//! - a pod's in-place machine writing a new checkpoint (`HookCheck`, `Unready`,
//!   `ImagePatched`, `Ready`): see [`machine_moved`];
//! - a preInplace or preDelete HookRun a pod waits on (the status' hook lists) that is still
//!   Pending or Running: the rollout is progressing all the while, so the deadline cannot pass,
//!   and the count starts afresh when the last such run ends, whatever its outcome (time
//!   after a Failed, Error, Inconclusive or Terminated run counts). Holding the count rather
//!   than moving `lastUpdateTime` on every reconcile keeps a long hook from costing a status
//!   write per reconcile.
//!
//! No deadline runs unless the reason is `Updating`: paused (`Paused`), held by a user's
//! force (`UpdateAbandoned`), done (`PartitionReached`, `Complete`). Leaving one of those
//! starts the count afresh, so paused time never counts.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{GameDeploymentCondition, GameDeploymentStatus};
use crate::inplace::{Decoded, MachineStep, State};
use crate::names;
use crate::planner::model::EventNote;

/// What the deadline is judged from, besides the status just computed.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineInput<'a> {
    /// `spec.progressDeadlineSeconds`; `None`: no deadline, the condition is left as it is.
    pub deadline_seconds: Option<i64>,
    /// The status the object shows (the last one written).
    pub previous: Option<&'a GameDeploymentStatus>,
    /// A pod's machine wrote a new checkpoint (see [`machine_moved`]).
    pub machines_moved: bool,
    pub now: Timestamp,
}

/// Applies the deadline to the `Progressing` condition of `status` (computed without it, with
/// its hook lists); returns the instant the deadline passes if nothing moves before, to look
/// again then.
pub fn apply(status: &mut GameDeploymentStatus, o: &DeadlineInput) -> Option<Timestamp> {
    let seconds = o.deadline_seconds?;
    let previous = o.previous.and_then(progressing);
    let held = hooks_running(status);
    let hooks_ended = o.previous.is_some_and(hooks_running) && !held;
    let progressed =
        o.machines_moved || hooks_ended || o.previous.is_some_and(|p| counts_progressed(p, status));
    let now = o.now;
    let condition = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == names::CONDITION_PROGRESSING)?;
    if condition.reason != names::REASON_UPDATING {
        let kept = previous
            .filter(|p| p.reason == condition.reason && p.status == condition.status)
            .and_then(|p| p.last_update_time.clone());
        condition.last_update_time = Some(kept.unwrap_or(Time(now)));
        return None;
    }
    let last = previous
        .filter(|p| {
            p.reason == names::REASON_UPDATING
                || p.reason == names::REASON_PROGRESS_DEADLINE_EXCEEDED
        })
        .and_then(|p| p.last_update_time.as_ref())
        .map(|t| t.0);
    let since = match last {
        Some(t) if !progressed => t,
        _ => now,
    };
    condition.last_update_time = Some(Time(since));
    if held {
        // The run's end triggers the next reconcile, which restarts the count.
        return None;
    }
    let due = since
        .checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX);
    if due > now {
        return Some(due);
    }
    condition.status = "False".to_string();
    condition.reason = names::REASON_PROGRESS_DEADLINE_EXCEEDED.to_string();
    condition.message = format!(
        "no pod made progress for {seconds}s (spec.progressDeadlineSeconds) since {since}: {}",
        condition.message
    );
    condition.last_transition_time = Some(
        previous
            .filter(|p| p.status == "False")
            .and_then(|p| p.last_transition_time.clone())
            .unwrap_or(Time(now)),
    );
    None
}

/// The Warning event of a rollout whose deadline has just passed: once, when the condition
/// the object shows does not say so yet.
pub fn exceeded_note(
    previous: Option<&GameDeploymentStatus>,
    status: &GameDeploymentStatus,
) -> Option<EventNote> {
    let now = progressing(status).filter(|c| c.is_progress_deadline_exceeded())?;
    if previous
        .and_then(progressing)
        .is_some_and(GameDeploymentCondition::is_progress_deadline_exceeded)
    {
        return None;
    }
    Some(EventNote::warning(
        names::REASON_PROGRESS_DEADLINE_EXCEEDED,
        now.message.clone(),
    ))
}

/// Whether a pod's machine step writes a checkpoint other than the one its record holds for
/// `update_revision`: the in-place rollout moved on. Derived states count as the checkpoint
/// they derive from (`GracefulWait` as `Unready`, `Restarting` as `ImagePatched`), so a pod
/// that keeps restarting without getting ready is no progress; `Failed` and `Abandoned` are
/// none either. Under an ordered policy, patching the next container is progress too.
pub fn machine_moved(record: &Decoded, step: &MachineStep, update_revision: &str) -> bool {
    if step.writes().next().is_none() {
        return false;
    }
    let checkpoint = match step.state {
        Some(State::HookCheck) => State::HookCheck,
        Some(State::Unready | State::GracefulWait) => State::Unready,
        Some(State::ImagePatched | State::Restarting | State::ContainerUpdated) => {
            State::ImagePatched
        }
        Some(State::Ready) => State::Ready,
        _ => return false,
    };
    // An ordered policy's next container keeps the checkpoint's state but patches one more.
    let patched_more = step
        .writes()
        .filter_map(|w| w.checkpoint.as_ref())
        .any(|c| matches!(record, Decoded::Valid(r) if c.images.len() > r.images.len()));
    let unchanged = !patched_more
        && matches!(record, Decoded::Valid(r) if r.state == checkpoint && r.revision == update_revision);
    !unchanged
}

/// Deployment's counts rule, plus a new update revision.
fn counts_progressed(before: &GameDeploymentStatus, now: &GameDeploymentStatus) -> bool {
    let old = |s: &GameDeploymentStatus| s.replicas - s.updated_replicas;
    now.update_revision != before.update_revision
        || now.updated_replicas > before.updated_replicas
        || now.ready_replicas > before.ready_replicas
        || now.available_replicas > before.available_replicas
        || now.updated_ready_replicas > before.updated_ready_replicas
        || old(now) < old(before)
}

/// Whether a pod waits on a preInplace or preDelete HookRun that is still Pending or Running
/// (a postInplace hook gates nothing, so it holds no rollout).
fn hooks_running(status: &GameDeploymentStatus) -> bool {
    (status.pre_inplace_hook_condition.iter())
        .chain(&status.pre_delete_hook_condition)
        .any(|c| !c.phase.is_completed())
}

fn progressing(status: &GameDeploymentStatus) -> Option<&GameDeploymentCondition> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_PROGRESSING)
}

#[cfg(test)]
mod tests;
