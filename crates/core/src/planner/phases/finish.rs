//! The end of a plan: the status phase run over what the other phases decided, and all of it
//! put together as the plan's decisions. Shared by the plan pod by pod (`plan.rs`) and the plan
//! from a settled tally (`settled.rs`), whose pod phases decide nothing.

use super::gates::Gated;
use super::revisions::Revisions;
use super::scale::Scaled;
use super::status::{Decided, HookWaits, PodFacts, status};
use super::update::Updated;
use crate::planner::model::{Decisions, PlanInput};
use crate::planner::rules::canary_steps::Canary;
use crate::planner::rules::limits::Resolved;
use crate::planner::rules::progress_deadline::exceeded_note;

/// What the phases decided, before the status is worked out from it.
pub(crate) struct Phases<'r> {
    pub(crate) resolved: &'r Resolved,
    pub(crate) revisions: Revisions,
    pub(crate) canary: Canary,
    /// Its deletions already handed to the gates.
    pub(crate) scaled: Scaled,
    pub(crate) updated: Updated,
    pub(crate) gated: Gated,
}

impl Phases<'_> {
    /// The decisions, with the status phase's: `pods` says what the status reads of the pods.
    pub(crate) fn finish(
        self,
        world: &PlanInput,
        pods: impl FnOnce(&Decided) -> PodFacts,
    ) -> Decisions {
        let Phases {
            resolved,
            revisions,
            canary,
            scaled,
            updated,
            gated,
        } = self;
        let problems: Vec<_> = (scaled.problems.into_iter())
            .chain(updated.problems)
            .chain(gated.problems)
            .chain(canary.problems.iter().cloned())
            .collect();
        let decided = Decided {
            resolved,
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
        let (status, requeue_at) = status(world, &pods(&decided), &decided);
        Decisions {
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
        }
    }
}
