//! The preDelete hook gate (`preDeleteUpdateStrategy`), as the original's `CheckDelete`: a
//! running pod is deleted (scale-down, `podsToDelete`, a recreate) only once its HookRun has
//! succeeded, so a game server can drain its players first. Until then the pod is marked with
//! the original's annotation and keeps serving; an unsuccessful hook holds it for good, and
//! the status says so.

use std::collections::BTreeMap;

use super::hookruns;
use crate::api::HookPhase;
use crate::inplace::{self, HookKind, HookRunRequest, PodView, pod_hook_args};
use crate::names;
use crate::planner::model::HookRunView;

/// What to do with one pod the plan wants to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionVerdict {
    /// No hook applies, or it succeeded.
    Delete,
    /// Keep the pod for now.
    Wait {
        /// The HookRun to create (it does not exist yet).
        create: Option<HookRunRequest>,
        /// The pod lacks [`names::ANNOTATION_POD_DELETING`].
        mark: bool,
        /// Why the pod will never go without the user's help (a completed, failed hook).
        stuck: Option<String>,
        /// The phase of the hook it waits on (`Pending` until one exists).
        phase: HookPhase,
    },
}

/// How the gate is configured (`preDeleteUpdateStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionGate<'a> {
    pub template: &'a str,
    /// With `retry: true`, the generation an unsuccessful hook may run again in
    /// ([`hookruns::retry_generation`]); the attempt carries it as a label.
    pub retry_generation: Option<i64>,
}

/// Decides whether `pod` may be deleted now, given the gate configured (if any) and this
/// GameDeployment's HookRuns by name.
pub fn check(
    pod: &PodView,
    gate: Option<DeletionGate>,
    hook_runs: &BTreeMap<String, HookRunView>,
) -> DeletionVerdict {
    let Some(gate) = gate else {
        return DeletionVerdict::Delete;
    };
    // As in the original: a pod that is not running has nothing to drain.
    if pod.phase.as_deref() != Some("Running") {
        return DeletionVerdict::Delete;
    }
    let base = HookKind::PreDelete.run_name(
        pod.revision.as_deref().unwrap_or_default(),
        pod.instance_id(),
        gate.template,
    );
    let mark = !pod.annotations.contains_key(names::ANNOTATION_POD_DELETING);
    let request = |name: String, retry_generation| HookRunRequest {
        name,
        template: gate.template.to_string(),
        args: pod_hook_args(pod),
        kind: HookKind::PreDelete,
        retry_generation,
    };
    let wait = |create, stuck, phase| DeletionVerdict::Wait {
        create,
        mark,
        stuck,
        phase,
    };
    let Some((attempt, name, run)) = hookruns::latest_attempt(&base, hook_runs) else {
        return wait(Some(request(base, None)), None, HookPhase::Pending);
    };
    let phase = run.phase.unwrap_or(HookPhase::Pending);
    if phase == HookPhase::Successful {
        return DeletionVerdict::Delete;
    }
    if !phase.is_completed() {
        return wait(None, None, phase);
    }
    let retried_in = run
        .label(names::LABEL_HOOKRUN_RETRY_GENERATION)
        .and_then(|g| g.parse().ok());
    match inplace::retry_due(gate.retry_generation, retried_in) {
        Some(g) => wait(
            Some(request(inplace::attempt_name(&base, attempt + 1), Some(g))),
            None,
            HookPhase::Pending,
        ),
        None => wait(
            None,
            Some(format!(
                "pod {}: preDeleteUpdateStrategy HookRun {name} is {phase}; the pod is kept \
                 (set preDeleteUpdateStrategy.retry to true to run the hook again, once per \
                 spec change; or delete the HookRun, or the pod yourself)",
                pod.name
            )),
            phase,
        ),
    }
}

#[cfg(test)]
mod tests;
