//! gamedeploy: a GameDeployment operator with crash-safe in-place updates.
//!
//! - [`api`]: the custom resources (GameDeployment, HookTemplate, HookRun) and their CRDs.
//! - [`inplace`]: the pure per-pod in-place update state machine; where a pod's state changes.
//! - [`controller`]: the pure planning of the GameDeployment controller (order, rollout).
//! - [`clock`]: injected time (system, manual, tokio-virtual).
//! - [`runtime`]: the IO edge: kube-runtime Controller wiring, plan execution, events.
//! - [`cluster`]: the embedded, in-process Kubernetes API server tests and simulations run against.
//! - [`names`]: labels, annotations and condition types users and scripts rely on.
//! - [`kubelet`]: the simulated kubelet of the embedded cluster (pure runtime core + IO edge).
//! - [`sim`]: scenario files, the simulation report, its kubectl-style tables and invariants.
pub mod api;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod inplace;
pub mod kubelet;
pub mod names;
pub mod runtime;
pub mod sim;
