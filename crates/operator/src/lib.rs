//! The operator's edge: the kube-runtime `Controller` wiring, the execution of plans against
//! the API server, and events. Everything here does IO; every decision it executes comes from
//! [`gamedeploy_core::planner`] and [`gamedeploy_core::inplace`].
//!
//! - [`controller`]: watches, caches, the reconcile loop, requeue timing.
//! - [`execute`]: [`execute::run_plan`] runs one [`gamedeploy_core::planner::plan::Plan`].
//! - [`claim`]: adopts and releases pods as [`gamedeploy_core::planner::adopt`] decided.
//! - [`events`]: events.k8s.io/v1 events stamped with the injected clock.
pub mod claim;
pub mod controller;
pub mod events;
pub mod execute;

/// Why a reconcile could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing GameDeployment {name} status: {source}")]
    Status { name: String, source: kube::Error },
    #[error("the GameDeployment has no namespace or name")]
    Unnamed,
    #[error("a watch cache stopped before its first list completed")]
    CacheClosed,
}
