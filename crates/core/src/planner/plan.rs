//! One reconcile of one GameDeployment, decided: observe → **plan** → act → status. The plan
//! is a pure function of the GameDeployment, its pods, its ControllerRevisions, the HookRun
//! phases and the clock; the runtime edge executes it. Nothing here can touch a pod: a bad spec
//! produces a condition and no pod changes at all.

use std::sync::Arc;

use jiff::Timestamp;

use super::model::{CachedPod, Decisions, Owner, Plan, PlanInput, SortedPods};
use super::phases::assemble::into_plan;
use super::phases::canary::canary;
use super::phases::gates::gates;
use super::phases::revisions::revisions;
use super::phases::scale::scale;
use super::phases::spec::{refuse, refuse_undecodable, resolve_spec};
use super::phases::status::{Decided, HookWaits, status};
use super::phases::update::update;
use super::rules::progress_deadline::exceeded_note;
use crate::api::Undecodable;
use crate::inplace::PodView;

/// Plans one reconcile. `suffix` yields random pod-name suffixes (injected for replay).
pub fn plan(world: &PlanInput, suffix: &mut dyn FnMut() -> String) -> Plan {
    match decide(world, suffix) {
        Ok((decisions, views)) => into_plan(world, &views, decisions),
        Err(refused) => refused,
    }
}

/// Plans a reconcile of a GameDeployment whose spec does not decode: a Warning event and a
/// `FailedScale`/`InvalidSpec` condition saying which field to fix, over `pods` (the ones it
/// controls, counted in status). Nothing else is written: no pod changes without a spec.
pub fn plan_undecodable(u: &Undecodable, pods: &[Arc<CachedPod>], now: Timestamp) -> Plan {
    refuse_undecodable(u, &SortedPods::new(pods).views, now)
}

/// The decisions of one reconcile, phase by phase (see `super::phases`), with the pod views
/// they were made from; or the plan that refuses the spec.
fn decide<'a>(
    world: &PlanInput<'a>,
    suffix: &mut dyn FnMut() -> String,
) -> Result<(Decisions, Vec<&'a PodView>), Plan> {
    let observed = SortedPods::new(world.pods);
    let mut resolved = resolve_spec(world.gd).map_err(|m| refuse(world, &observed.views, m))?;
    let owner = Owner::of(world.gd);
    let revisions = revisions(world, &owner, &observed.views);
    let canary = canary(world, &mut resolved, &observed, &revisions);
    let scaled = scale(
        world,
        &resolved,
        &owner,
        &observed.views,
        &revisions,
        suffix,
    );
    let updated = update(world, &resolved, &observed, &revisions, &scaled);
    let deletions = scaled.delete.into_iter().chain(updated.recreate).collect();
    let gated = gates(world, &observed, deletions);
    let problems: Vec<_> = (scaled.problems.into_iter())
        .chain(updated.problems)
        .chain(gated.problems)
        .chain(canary.problems.iter().cloned())
        .collect();
    let decided = Decided {
        resolved: &resolved,
        revisions: &revisions,
        problems: &problems,
        waits: HookWaits {
            pre_inplace: &updated.waiting,
            pre_delete: &gated.pre_delete_waiting,
            post_inplace: &gated.post_inplace_waiting,
        },
        machines: &updated.machines,
        canary: &canary,
    };
    let (status, requeue_at) = status(world, &observed, &decided);
    let decisions = Decisions {
        revisions: Some(revisions.plan),
        create: scaled.create,
        delete: gated.delete,
        machines: updated.machines,
        hot_patches: updated.hot_patches,
        release_gates: updated.release_gates,
        pre_delete: gated.pre_delete,
        post_hooks: gated.post_hooks,
        stale_hook_runs: gated
            .stale_hook_runs
            .into_iter()
            .chain(canary.delete)
            .collect(),
        canary_run: canary.create,
        terminate_hook_runs: canary.terminate,
        pause_updates: canary.pause_updates,
        notes: (canary.notes.into_iter())
            .chain(updated.notes)
            .chain(exceeded_note(world.gd.status.as_ref(), &status))
            .collect(),
        status,
        requeue_at,
    };
    Ok((decisions, observed.views))
}

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod deadline_tests;
#[cfg(test)]
mod resize_tests;
#[cfg(test)]
mod tests;
