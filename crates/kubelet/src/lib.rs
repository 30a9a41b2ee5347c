//! The simulated kubelet: one node of the embedded cluster. It binds pods to its node, runs
//! their containers on a modelled runtime (start and ready delays, pull failures, crash loops,
//! re-tags with the same digest), restarts exactly the containers whose spec image changed,
//! reports `PodStatus` like kubelet (pod `Ready` honours readiness gates) and deletes pods when
//! their grace period is over.
//!
//! - [`config`]: node behaviour, the `kubelet:` block of a scenario.
//! - [`runtime`]: the pure core: runtime memory and the per-pod decision.
//! - [`status`]: how the runtime is reported as a `PodStatus`.
//! - [`ids`]: deterministic digests, container IDs and pod IPs.
//! - [`node`]: the thin IO edge that watches pods and executes decisions through a
//!   `kube::Client`.
pub mod config;
pub mod ids;
pub mod node;
pub mod runtime;
pub mod status;

pub use config::{ConfigError, ImageConfig, ImageFailure, KubeletConfig};
pub use node::{KubeletError, run};
pub use runtime::{Decision, NodeConfig, NodeRuntime};
