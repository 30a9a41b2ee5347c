//! The GameDeployment controller's pure planning: which pods an update may touch now, in which
//! order, and what the status says. Shaped observe → plan → act: everything here is a function
//! of observed objects and a clock, returning decisions; the runtime edge executes them.
//!
//! Three rooms, each using only the ones below it:
//!
//! - [`plan`]: the entry: one reconcile decided, by running the phases in order.
//! - `phases`: the pipeline. Each phase takes the observed world and earlier phases' typed
//!   results and returns its own decisions, in this order:
//!   1. `spec`: the spec resolved and its selector checked, or a plan that refuses it;
//!   2. `revisions`: update and current revision, the revision to create, those to prune;
//!   3. `canary`: where the canary steps stand and the partition they allow;
//!   4. `scale`: pods to create and delete for the replica count;
//!   5. `update`: which pods move now and how (in-place step, recreate, hot patch), and the
//!      readiness gates of the pods left alone;
//!   6. `gates`: the preDelete gate on every deletion, postInplace and stale HookRuns;
//!   7. `status`: status, conditions, hook lists and when to look again;
//!
//!   then `assemble` puts the decisions in the executor's order as effects.
//! - [`rules`]: what the phases decide with, one file per rule (budget, order, adoption,
//!   HookRun names, the preDelete gate, revisions, canary steps, ...).
//! - [`model`]: the types all of them share: what a reconcile observed, what its phases
//!   decide, and the plan's effects.
pub mod model;
mod phases;
pub mod plan;
pub mod rules;
mod settled;

#[cfg(test)]
mod testing;
