//! The GameDeployment controller's pure planning: which pods an update may touch now, in which
//! order, and what the status says. Shaped observe → plan → act: everything here is a function
//! of observed objects and a clock, returning decisions; the runtime edge executes them.
//!
//! - [`adopt`]: which pods a GameDeployment controls: adoption and release by selector.
//! - [`cached_pod`]: what the operator keeps of a pod, derived once per watch event.
//! - [`canary`]: canary steps: the partition they allow, their pauses and hook runs.
//! - [`hooks`]: a HookRun (preInplace or preDelete) built from its HookTemplate.
//! - [`order`]: the kube "active pods" order the original uses for updates and scale-down.
//! - [`revision`]: template revision names and the in-place eligibility check.
//! - [`plan`]: one reconcile decided, as a short sequence of phases (in `phases/`, run in this
//!   order, each taking earlier phases' typed results and returning its own decisions):
//!   1. `spec`: the spec resolved and its selector checked, or a plan that refuses it;
//!   2. `revisions`: update and current revision, the revision to create, those to prune;
//!   3. `canary`: where the canary steps stand and the partition they allow ([`canary`]);
//!   4. `scale`: pods to create and delete for the replica count;
//!   5. `update`: which pods move now and how (in-place step, recreate, hot patch), and the
//!      readiness gates of the pods left alone;
//!   6. `gates`: the preDelete gate on every deletion, postInplace and stale HookRuns;
//!   7. `status`: status, conditions, hook lists and when to look again;
//!
//!   then `assemble` puts the decisions in the executor's order as [`effect`]s.
//! - [`effect`]: a plan's output: one ordered list of finished writes and events.
//! - [`outcome`]: what the outcomes of those writes mean (retry, report, skip), and the status.
//! - [`pods`]: the pods the controller creates.
//! - [`predelete`]: the preDelete hook gate every deletion passes.
//! - [`spec`]: the spec resolved into limits and the in-place policy.
//! - [`rollout`]: partition and maxUnavailable: which pods move to the update revision now.
//! - [`scale`]: how many pods to create or delete, and which.
//! - [`status`]: the status and its conditions, computed from what was observed.
pub mod adopt;
pub mod cached_pod;
pub mod canary;
pub mod effect;
pub mod hooks;
pub mod index;
pub mod order;
pub mod outcome;
mod phases;
pub mod plan;
pub mod pods;
pub mod predelete;
pub mod revision;
pub mod rollout;
pub mod scale;
pub mod spec;
pub mod status;

pub use cached_pod::CachedPod;
