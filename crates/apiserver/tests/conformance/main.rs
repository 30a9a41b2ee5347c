//! API-server conformance: behaviour the operator relies on, checked through a real
//! `kube::Client`. Runs against the embedded server by default; set
//! `GAMEDEPLOY_CONFORMANCE_KUBECONFIG=/path/to/kubeconfig` to run the same tests against a real
//! cluster (tests that need the embedded server's virtual time or fault hooks are skipped there).
//!
//! One module a topic; helpers more than one topic uses live in `support` (`support.rs`).

mod support;

mod admission_policy;
mod crd_schema;
mod crud;
mod delete;
mod discovery;
mod embedded_hooks;
mod events;
mod gc;
mod install_kinds;
mod limits;
mod options;
mod patch;
mod resize;
mod subresources;
mod tables;
mod transport;
mod validation;
mod watch;
