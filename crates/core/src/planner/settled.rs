//! The plan of a GameDeployment whose pods are all settled, read from the
//! roster's tally of them (`model/settled.rs`) instead of the pods: the plan a fleet at rest
//! gets on nearly every reconcile, at a cost that does not grow with the fleet.
//!
//! It is the full plan's, not a second opinion: the same phases run (spec, revisions, canary,
//! status), and the pod phases are left out only where the tally proves they decide nothing.
//! Every pod is settled, there are as many as `replicas`, and no more are on older revisions
//! than the partition keeps there, so nothing is created or deleted, no update starts, no
//! machine moves, and no readiness gate is released.
//! No HookRun exists and no postInplace hook is set, so no hook is started or cleaned up.
//! Where the tally cannot answer exactly (a pod not yet available under `minReadySeconds`),
//! it declines and the pods are planned one by one. `plan::plan_settled` checks in debug builds
//! that the two agree, on every plan of every test.

use super::model::{Decisions, Owner, PlanInput, Settled};
use super::phases::canary::canary;
use super::phases::finish::Phases;
use super::phases::gates::Gated;
use super::phases::revisions::revisions;
use super::phases::scale::Scaled;
use super::phases::spec::resolve_spec;
use super::phases::status::PodFacts;
use super::phases::update::Updated;
use super::rules::budget::ReadyBy;
use super::rules::conditions::Counts;
use super::rules::pod_revisions::PodRevisions;

/// The decisions for `world`, whose pods `settled` tallies; `None` when they need the pods.
pub(super) fn decide(world: &PlanInput, settled: &Settled) -> Option<Decisions> {
    let gd = world.gd;
    let hooks_after_update =
        (gd.spec.post_inplace_update_strategy.as_ref()).is_some_and(|s| s.hook.is_some());
    let pods_to_delete =
        (gd.spec.scale_strategy.as_ref()).is_some_and(|s| !s.pods_to_delete.is_empty());
    if !world.hook_runs.is_empty() || hooks_after_update || pods_to_delete {
        return None;
    }
    let mut resolved = resolve_spec(gd).ok()?;
    if settled.pods != resolved.limits.replicas {
        return None;
    }
    let on = PodRevisions {
        any: settled.revisions.keys().map(String::as_str).collect(),
        live: settled.revisions.keys().map(String::as_str).collect(),
    };
    let revisions = revisions(world, &Owner::of(gd), &on);
    let min_ready = resolved.limits.min_ready_seconds;
    let by = ReadyBy::new(min_ready, world.now);
    // Every pod available, or the count would need each pod's time.
    let available = settled.latest_ready.is_none_or(|t| by.covers(Some(t)))
        && (!settled.ready_since_unknown || by.covers(None));
    if !available {
        return None;
    }
    let n = settled.pods;
    let updated = settled
        .revisions
        .get(&revisions.update)
        .copied()
        .unwrap_or(0);
    let counts = Counts {
        replicas: n,
        ready: n,
        available: n,
        updated,
        updated_ready: updated,
    };
    let canary = canary(world, &mut resolved, |_, _| counts, &revisions);
    // The pods the partition (the canary's, while steps remain) keeps on older revisions are
    // all it may keep: else some move now.
    let limits = resolved.limits;
    if n - updated > limits.partition.clamp(0, limits.replicas.max(0)) {
        return None;
    }
    let phases = Phases {
        resolved: &resolved,
        revisions,
        canary,
        scaled: Scaled::default(),
        updated: Updated::default(),
        gated: Gated::default(),
    };
    Some(phases.finish(world, |_| PodFacts {
        counts,
        abandoned: 0,
        next_available: None,
        machines_moved: false,
    }))
}
