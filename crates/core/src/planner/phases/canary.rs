//! Phase 3, canary: where the canary steps stand, and the partition they allow. It exists so
//! that the update phase takes one partition, whether the user set it or a step did, and so the
//! steps' own writes (their HookRuns, the pause) are decided before anything moves. The steps
//! themselves are [`crate::planner::rules::canary_steps`]'s; this phase only hands it what was
//! observed.

use super::revisions::Revisions;
use crate::api::UpdateStrategyType;
use crate::planner::model::PlanInput;
use crate::planner::rules::canary_steps::{self, Canary};
use crate::planner::rules::conditions::Counts;
use crate::planner::rules::limits::Resolved;

/// The canary of this reconcile; `resolved`'s partition replaced by the steps' while they exist.
/// `counts` counts the pods against the update revision and `minReadySeconds`; it is asked
/// only when a step may wait on them.
pub fn canary(
    world: &PlanInput,
    resolved: &mut Resolved,
    counts: impl FnOnce(&str, i64) -> Counts,
    revisions: &Revisions,
) -> Canary {
    let steps = world.gd.spec.canary_steps();
    // OnDelete keeps no pod back (see `limits::resolve`), whatever a step says.
    let on_delete = resolved.strategy == UpdateStrategyType::OnDelete;
    let limits = &mut resolved.limits;
    // Counting 10,000 pods is only needed when a step may wait on them.
    let counts = if steps.is_empty() {
        Counts::default()
    } else {
        counts(&revisions.update, limits.min_ready_seconds)
    };
    let decided = canary_steps::decide(&canary_steps::CanaryInput {
        steps,
        previous: world.gd.status.as_ref(),
        update_revision: &revisions.update,
        paused: resolved.paused,
        replicas: limits.replicas,
        counts,
        runs: world.hook_runs,
        now: world.now,
    });
    if let Some(p) = decided.partition.filter(|_| !on_delete) {
        limits.partition = p;
    }
    decided
}
