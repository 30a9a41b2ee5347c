//! The pure core of gamedeploy: everything here is a function of observed objects and a `now`
//! passed in. No kube client, no tokio, no IO; the crate's dependency list keeps it that way.
//!
//! - [`api`]: the custom resources (GameDeployment, HookTemplate, HookRun) and their CRDs.
//! - [`names`]: labels, annotations, condition types and event reasons users and scripts see.
//! - [`hookrun`]: the HookRun engine: what to measure when, what a measurement means.
//! - [`inplace`]: the per-pod in-place update state machine; where a pod's state changes.
//! - [`planner`]: one reconcile of a GameDeployment decided: revisions, scale, updates, status.
pub mod api;
pub mod hookrun;
pub mod inplace;
pub mod names;
pub mod planner;
