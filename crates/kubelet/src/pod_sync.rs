//! The kubelet's decision for one pod, as a pure function of what it holds and what the API
//! server stores: `(runtime, stored pod, config, now) -> (runtime', SyncActions)`. It advances the
//! container runtime (`container_runtime.rs`), renders it (`status.rs`) and compares the
//! result with the stored status; the IO edge (`node.rs`) only executes the decision, so every
//! behaviour of the node is tested here without a server.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};

use super::config::{KubeletConfig, NodeConfig};
use super::container_runtime::NodeRuntime;
use super::status;

/// What the kubelet wants done for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncActions {
    /// The pod has no node: bind it to this one (`pods/binding`).
    pub bind: bool,
    /// The status to report, when it differs from the stored one. It is complete: conditions
    /// the kubelet does not own (readiness gates) are carried over as stored.
    pub status: Option<PodStatus>,
    /// The termination grace period is over: delete the pod for good.
    pub delete: bool,
    /// When to look at this pod again even if nothing changes in the API.
    pub wake_at: Option<Timestamp>,
}

impl NodeRuntime {
    /// The kubelet's decision for `pod` (as stored) at `now`, advancing the runtime to `now`.
    pub fn sync(
        &mut self,
        pod: &Pod,
        config: &KubeletConfig,
        node: &NodeConfig,
        now: Timestamp,
    ) -> SyncActions {
        let Some(spec) = pod.spec.as_ref() else {
            return SyncActions::default();
        };
        match spec.node_name.as_deref() {
            None | Some("") => {
                // A dying pod without a node is the API server's to remove, not ours to bind.
                return SyncActions {
                    bind: pod.metadata.deletion_timestamp.is_none(),
                    ..SyncActions::default()
                };
            }
            Some(n) if n != node.name => return SyncActions::default(),
            Some(_) => {}
        }
        let Some(uid) = pod.metadata.uid.as_deref().filter(|u| !u.is_empty()) else {
            return SyncActions::default();
        };
        let mut decision = SyncActions::default();
        if let Some(deadline) = pod.metadata.deletion_timestamp.as_ref().map(|t| t.0) {
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            // The API server sets deletionTimestamp to the request time plus the grace period.
            if grace <= 0 || deadline <= now {
                decision.delete = true;
                return decision;
            }
            decision.wake_at = Some(deadline);
        }
        let stored = pod.status.as_ref();
        let Some(runtime) = self.advance_pod(uid, spec, stored, config, now) else {
            return decision;
        };
        decision.wake_at = [decision.wake_at, runtime.next_change(now)]
            .into_iter()
            .flatten()
            .min();
        let report = status::render(pod, runtime, node, now);
        if stored != Some(&report) {
            decision.status = Some(report);
        }
        decision
    }
}

#[cfg(test)]
mod tests;
