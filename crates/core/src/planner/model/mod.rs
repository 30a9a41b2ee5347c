//! The planner's vocabulary, below both the pipeline (`phases/`) and the rules
//! (`rules/`), and using neither: what a reconcile observed ([`PlanInput`], the pods as
//! [`CachedPod`]s and `SortedPods`, the HookRuns as [`HookRunView`]s), what its phases decide
//! (`Decisions`) and what it emits ([`Plan`], a list of [`Effect`]s).
//!
//! Each file holds one idea; this module only says which of them the crate's users see.

mod by_name;
mod cached_pod;
mod decisions;
mod effect;
mod hook_run_view;
mod input;
mod owner;
mod report;
mod roster;
mod settled;
mod sorted_pods;

pub(crate) use by_name::{find_by_name, position_by_name};
pub use cached_pod::CachedPod;
pub(crate) use decisions::{Decisions, DeleteReason, RevisionPlan, StepRun};
pub use effect::{
    ApiErrorKind, Consequence, Effect, EventNote, HookRunToCreate, OnFailure, Plan, Regarding,
    Report, Write,
};
pub use hook_run_view::HookRunView;
pub use input::{NodeFacts, PlanInput};
pub use owner::Owner;
pub use report::ConditionReport;
pub use roster::{Controlled, MachineCounts, Roster, machine_state};
pub use settled::{Settled, SettledPod, Tally, settled};
pub(crate) use sorted_pods::SortedPods;
pub use sorted_pods::{in_name_order, pod_by_name};
