//! `gamedeploy simulate`: a scenario run on the embedded cluster (API server, simulated kubelet)
//! with the real operator, on virtual time.
//!
//! - [`runner`]: starts the cluster, kubelet and operator and plays the scenario's steps.
//! - [`scenario`]: scenario files, loaded and validated with messages naming file and field.
//! - [`report`]: the JSON report and its builders from stored objects.
//! - [`kubectl_table`]: what `kubectl get pods` / `kubectl get gamedeployment` would print.
//! - [`feed_view`]: the runner's view of the cluster, kept from the change feed.
//! - [`pod_heads`]: the parts of a stored pod the runner decodes on every change.
//! - [`settle`]: when a run has settled, for listed objects and for the feed view alike.
//! - [`progress`]: the progress line of long runs.
//! - [`podref`]: `${pods[N]}` references to generated pod names in steps.
//! - [`invariants`]: the state machine's invariants, checked from a report's history.
//! - [`chaos`]: one scenario under many seeds of API faults and operator crashes.
pub mod chaos;
pub mod feed_view;
pub mod hooks;
pub mod invariants;
pub mod kubectl_table;
pub mod pod_heads;
pub mod podref;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod settle;
