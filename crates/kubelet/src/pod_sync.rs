//! The kubelet's decision for one pod, as a pure function of what it holds and what the API
//! server stores: `(runtime, stored pod, config, now) -> (runtime', SyncActions)`. It advances the
//! container runtime (`container_runtime.rs`), renders it (`status.rs`) and compares the
//! result with the stored status; the IO edge (`node.rs`) only executes the decision, so every
//! behaviour of the node is tested here without a server.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};

use super::config::{KubeletConfig, NodeConfig};
use super::container_runtime::{NodeRuntime, PendingReason, Resize};
use super::resources;
use super::status;

/// What the kubelet wants done for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncActions {
    /// The pod has no node: bind it to this node (`pods/binding`).
    pub bind: Option<String>,
    /// The status to report, when it differs from the stored one. It is complete: conditions
    /// the kubelet does not own (readiness gates) are carried over as stored.
    pub status: Option<PodStatus>,
    /// The termination grace period is over: delete the pod for good.
    pub delete: bool,
    /// When to look at this pod again even if nothing changes in the API.
    pub wake_at: Option<Timestamp>,
    /// The pod waits for room on a node (unschedulable, or a `Deferred` resize): sync it
    /// again when capacity frees.
    pub waits_for_room: bool,
    /// This decision frees capacity (a pod leaves, or its allocation shrank): pods waiting
    /// for room should be synced again.
    pub frees_room: bool,
}

impl NodeRuntime {
    /// The kubelet's decision for `pod` (as stored) at `now`, advancing the runtime to `now`.
    /// `node` is the first node; the others follow from `config.nodes` ([`NodeConfig::nth`]).
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
        let Some(uid) = pod.metadata.uid.as_deref().filter(|u| !u.is_empty()) else {
            return SyncActions::default();
        };
        let node = match spec.node_name.as_deref() {
            // A dying pod without a node is the API server's to remove, not ours to bind.
            None | Some("") if pod.metadata.deletion_timestamp.is_some() => {
                return SyncActions::default();
            }
            None | Some("") => return self.bind(pod, uid, spec, config, node, now),
            Some(n) => match (0..config.node_count())
                .map(|i| (i, node.nth(i)))
                .find(|(_, c)| c.name == n)
            {
                Some(ours) => ours,
                None => return SyncActions::default(),
            },
        };
        let (index, node) = node;
        let mut decision = SyncActions::default();
        if let Some(deadline) = pod.metadata.deletion_timestamp.as_ref().map(|t| t.0) {
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            // The API server sets deletionTimestamp to the request time plus the grace period.
            if grace <= 0 || deadline <= now {
                decision.delete = true;
                decision.frees_room = true;
                return decision;
            }
            decision.wake_at = Some(deadline);
        }
        let stored = pod.status.as_ref();
        if self
            .advance_pod(uid, &node.name, spec, stored, config, now)
            .is_none()
        {
            return decision;
        }
        decision.frees_room = self.resize(uid, spec, config, config.node_size(index), now);
        let Some(runtime) = self.pod(uid) else {
            return decision;
        };
        decision.waits_for_room = matches!(
            runtime.resize,
            Resize::Pending {
                reason: PendingReason::Deferred,
                ..
            }
        );
        decision.wake_at = [decision.wake_at, runtime.next_change(now)]
            .into_iter()
            .flatten()
            .min();
        let report = status::render(pod, runtime, &node, now);
        if stored != Some(&report) {
            decision.status = Some(report);
        }
        decision
    }

    /// An unbound pod: bound to the node chosen by `config.binding`, or reported
    /// `PodScheduled=False`/`Unschedulable` until room frees.
    fn bind(
        &mut self,
        pod: &Pod,
        uid: &str,
        spec: &PodSpec,
        config: &KubeletConfig,
        first: &NodeConfig,
        now: Timestamp,
    ) -> SyncActions {
        let requests = resources::pod_requests(spec);
        match self.place(uid, requests, config, first) {
            Ok(name) => {
                self.record_binding(uid, &name, requests);
                SyncActions {
                    bind: Some(name),
                    ..SyncActions::default()
                }
            }
            Err(message) => {
                let report = status::unschedulable(pod, message, now);
                SyncActions {
                    status: (pod.status.as_ref() != Some(&report)).then_some(report),
                    waits_for_room: true,
                    ..SyncActions::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod resize_tests;
#[cfg(test)]
mod tests;
