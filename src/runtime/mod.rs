//! The operator's edge: the kube-runtime `Controller` wiring, the execution of plans against
//! the API server, and events. Everything here does IO; every decision it executes comes from
//! [`crate::controller`] and [`crate::inplace`].
//!
//! - [`operator`]: watches, caches, the reconcile loop, requeue timing.
//! - [`act`]: executes one [`crate::controller::plan::Plan`].
//! - [`claim`]: adopts and releases pods as [`crate::controller::adopt`] decided.
//! - [`events`]: events.k8s.io/v1 events stamped with the injected clock.
pub mod act;
pub mod claim;
pub mod events;
pub mod operator;

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
