//! The GameDeployment controller's pure planning: which pods an update may touch now, in which
//! order, and what the status says. Shaped observe → plan → act: everything here is a function
//! of observed objects and a clock, returning decisions; the runtime edge executes them.
//!
//! - [`adopt`]: which pods a GameDeployment controls: adoption and release by selector.
//! - [`hooks`]: a HookRun (preInplace or preDelete) built from its HookTemplate.
//! - [`order`]: the kube "active pods" order the original uses for updates and scale-down.
//! - [`revision`]: template revision names and the in-place eligibility check.
//! - [`plan`]: one reconcile decided: revisions, scale, updates, status (ties the others together).
//! - [`effect`]: a plan's output: one ordered list of finished writes and events.
//! - [`outcome`]: what the outcomes of those writes mean (retry, report, skip), and the status.
//! - [`pods`]: the pods the controller creates.
//! - [`predelete`]: the preDelete hook gate every deletion passes.
//! - [`spec`]: the spec resolved into limits and the in-place policy.
//! - [`rollout`]: partition and maxUnavailable: which pods move to the update revision now.
//! - [`scale`]: how many pods to create or delete, and which.
//! - [`status`]: the status and its conditions, computed from what was observed.
pub mod adopt;
pub mod effect;
pub mod hooks;
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
