//! One reconcile, phase by phase. `plan::plan` runs them in this order, each taking
//! what it needs (the observed world and earlier phases' typed results) and returning its
//! decisions; no phase re-reads or changes what an earlier one decided.
//!
//! 1. [`spec`]: the spec resolved and its selector checked, or the plan that refuses it.
//! 2. [`revisions`]: the update and current revisions, the revision to create, those to prune.
//! 3. [`canary`]: where the canary steps stand, the partition they allow, their HookRuns.
//! 4. [`scale`]: the pods to create and to delete for the replica count.
//! 5. [`update`]: the pods that move now, and how (in-place step, recreate, hot patch), and
//!    the readiness gates of the pods left alone.
//! 6. [`gates`]: the preDelete gate on every deletion, postInplace HookRuns, stale HookRuns.
//! 7. [`status`]: the status, its conditions and hook lists, and when to look again.
//!
//! [`finish`] runs the status phase over the others' decisions and puts them together (the plan
//! from a settled tally, `planner/settled.rs`, runs it too, over empty pod decisions).
//! Then [`assemble`] puts the decisions in the order the executor must follow, as effects.

pub(super) mod assemble;
pub(super) mod canary;
pub(super) mod finish;
pub(super) mod gates;
pub(super) mod revisions;
pub(super) mod scale;
pub(super) mod spec;
pub(super) mod status;
pub(super) mod update;
