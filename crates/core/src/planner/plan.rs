//! One reconcile of one GameDeployment, decided: observe → **plan** → act → status. The plan
//! is a pure function of the GameDeployment, its pods, its ControllerRevisions, the HookRun
//! phases and the clock; the runtime edge executes it. Nothing here can touch a pod: a bad spec
//! produces a condition and no pod changes at all.

use std::cell::OnceCell;
use std::sync::Arc;

use jiff::Timestamp;

use super::model::{CachedPod, Decisions, Owner, Plan, PlanInput, Settled, SortedPods};
use super::phases::assemble::into_plan;
use super::phases::canary::canary;
use super::phases::finish::Phases;
use super::phases::gates::gates;
use super::phases::revisions::revisions;
use super::phases::scale::scale;
use super::phases::spec::{refuse, refuse_undecodable, resolve_spec};
use super::phases::status::PodFacts;
use super::phases::update::update;
use super::rules::conditions::Counts;
use super::rules::pod_revisions::PodRevisions;
use super::settled;
use crate::api::Undecodable;
use crate::inplace::PodView;

/// Plans one reconcile. `suffix` yields random pod-name suffixes (injected for replay).
pub fn plan(world: &PlanInput, suffix: &mut dyn FnMut() -> String) -> Plan {
    match decide(world, suffix) {
        Ok((decisions, views)) => into_plan(world, &views, decisions),
        Err(refused) => refused,
    }
}

/// [`plan`], read from `settled`, the roster's tally of `world`'s pods, without reading the
/// pods (`planner/settled.rs`); `None` when the plan needs them. Debug builds check it against
/// [`plan`] every time.
pub fn plan_settled(world: &PlanInput, settled: &Settled) -> Option<Plan> {
    let plan = into_plan(world, &[], settled::decide(world, settled)?);
    #[cfg(debug_assertions)]
    check_settled(world, settled, &plan);
    Some(plan)
}

/// Checks a plan made from the roster's tally against the plan made from the pods it tallies,
/// on every such plan of every debug build (all the tests): they must be the same.
#[cfg(debug_assertions)]
fn check_settled(world: &PlanInput, settled: &Settled, from_tally: &Plan) {
    let mut tally = super::model::Tally::default();
    for pod in world.pods {
        tally.count(pod, 1);
    }
    assert_eq!(
        tally.settled().as_ref(),
        Some(settled),
        "the roster's tally is not of these pods"
    );
    let by_pod = PlanInput { ..*world };
    let creates = &mut || panic!("the plan of a settled GameDeployment created a pod");
    assert_eq!(
        *from_tally,
        plan(&by_pod, creates),
        "the plan from the tally differs from the plan pod by pod"
    );
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
    // 10,000 pods share a revision or two: one pass names each once.
    let revisions = revisions(world, &owner, &PodRevisions::of(&observed.views));
    let views = &observed.views;
    // Counted once, by the canary (when a step may wait on the counts) or by the status: both
    // count against the update revision and minReadySeconds, which no later phase changes.
    let counted = OnceCell::new();
    let counts = |update: &str, min_ready| {
        *counted.get_or_init(|| Counts::of(views, update, min_ready, world.now))
    };
    let canary = canary(world, &mut resolved, counts, &revisions);
    let mut scaled = scale(
        world,
        &resolved,
        &owner,
        &observed.views,
        &revisions,
        suffix,
    );
    let mut updated = update(world, &resolved, &observed, &revisions, &scaled);
    let recreate = std::mem::take(&mut updated.recreate);
    let deletions = scaled.delete.drain(..).chain(recreate).collect();
    let gated = gates(world, &observed, deletions);
    let decided = Phases {
        resolved: &resolved,
        revisions,
        canary,
        scaled,
        updated,
        gated,
    };
    let decisions = decided.finish(world, |d| {
        let counts = counts(&d.revisions.update, d.resolved.limits.min_ready_seconds);
        PodFacts::observed(world, &observed, d, counts)
    });
    Ok((decisions, observed.views))
}

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod deadline_tests;
#[cfg(test)]
mod resize_tests;
#[cfg(test)]
mod settled_tests;
#[cfg(test)]
mod tests;
