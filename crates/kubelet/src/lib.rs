//! The simulated kubelet: the nodes of the embedded cluster. It binds pods to a node they fit, runs
//! their containers on a modelled runtime (start and ready delays, pull failures, crash loops,
//! re-tags with the same digest), restarts exactly the containers whose spec image changed,
//! reports `PodStatus` like kubelet (pod `Ready` honours readiness gates) and deletes pods when
//! their grace period is over. It knows only Kubernetes' own API types. What it models and
//! what it does not: `crates/kubelet/README.md`.
//!
//! Modules, each depending only on those listed before it:
//!
//! - [`config`]: node identity and behaviour, the `kubelet:` block of a scenario.
//! - [`ids`]: deterministic digests, container IDs and pod IPs.
//! - [`resources`]: cpu and memory of containers and pods in kubelet's units.
//! - [`container_runtime`]: what runs on the nodes and how it moves on over time; it does not
//!   know how it is reported.
//! - [`placement`]: binding an unbound pod to a node its requests fit (first fit or spread).
//! - [`resize`]: admitting and applying in-place resizes of cpu and memory.
//! - [`status`]: renders a pod's container runtime as the `PodStatus` kubelet reports.
//! - [`pod_sync`]: the pure core, [`NodeRuntime::sync`]: the decision for one stored pod
//!   (bind, status to report, delete, when to look again).
//! - [`watched_pod`]: a pod as the watch decodes and keeps it, only the fields the kubelet
//!   reads.
//! - [`node`]: the thin IO edge that watches pods and executes decisions through a
//!   `kube::Client`.
pub mod config;
pub mod container_runtime;
pub mod ids;
pub mod node;
pub mod placement;
pub mod pod_sync;
pub mod resize;
pub mod resources;
pub mod status;
pub mod watched_pod;

pub use config::{
    Binding, ConfigError, ImageConfig, ImageFailure, KubeletConfig, NodeConfig, NodesConfig,
};
pub use container_runtime::NodeRuntime;
pub use node::{KubeletError, run};
pub use pod_sync::SyncActions;
pub use watched_pod::WatchedPod;
