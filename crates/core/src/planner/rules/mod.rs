//! What the phases decide with: each file one rule, named for what it decides, as pure
//! functions of the [`super::model`] types (rules use the model and each other, never a phase).
//!
//! - [`adoption`]: which pods a GameDeployment controls: adoption and release by selector.
//! - `budget`: partition and maxUnavailable: which pods move to the update revision now.
//! - `canary_steps`: where the canary steps stand, the partition they allow, their HookRuns.
//! - `conditions`: the status counts and conditions, computed from what was observed.
//! - `hookruns`: HookRun attempts, which strategy retries in which generation; a HookRun built
//!   from its template.
//! - [`limits`]: the spec resolved into limits and the in-place policy.
//! - [`new_pods`]: the pods the controller creates.
//! - `order`: the kube "active pods" order the original uses for updates and scale-down.
//! - [`outcome`]: what the outcomes of a plan's writes mean (retry, report, skip).
//! - `pod_index`: the pod index annotation and `POD_INDEX`.
//! - `pod_revisions`: which revisions the pods are on, each named once.
//! - `progress_deadline`: `spec.progressDeadlineSeconds`: when the rollout stopped progressing.
//! - `predelete`: the preDelete hook gate every deletion passes.
//! - [`replicas`]: how many pods to create or delete, and which.
//! - `resize_fit`: whether some node could hold a pod whose in-place resize is infeasible.
//! - [`revision_history`]: template revisions: their names, and which to create and prune.
//! - `template_diff`: whether a move between two template revisions can happen in place.

pub mod adoption;
pub(crate) mod budget;
pub(crate) mod canary_steps;
pub(crate) mod conditions;
pub(crate) mod hookruns;
pub mod limits;
pub mod new_pods;
pub(crate) mod order;
pub mod outcome;
pub(crate) mod pod_index;
pub(crate) mod pod_revisions;
pub(crate) mod predelete;
pub(crate) mod progress_deadline;
pub mod replicas;
pub(crate) mod resize_fit;
pub mod revision_history;
pub(crate) mod template_diff;
