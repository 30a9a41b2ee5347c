//! What the machine looks at: a small, owned view of a Pod, taken from the watch cache. Keeping
//! it separate from `k8s_openapi::Pod` lets fixtures describe pods in a few lines and keeps the
//! machine independent of API plumbing.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::resources::ContainerResources;
use crate::{SmallMap, names};

/// One container's status, as kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerView {
    #[serde(default)]
    pub image: String,
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<String>,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default)]
    pub ready: bool,
    /// `state.running` is set.
    #[serde(default)]
    pub running: bool,
    /// `state.running.startedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// `state.waiting.reason`, e.g. `ImagePullBackOff`, `CrashLoopBackOff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// `resources`: the cpu/memory requests and limits the kubelet reports applied (`None`
    /// when it reports none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ContainerResources>,
}

/// Pod condition the kubelet sets while it cannot apply a resize (reason [`RESIZE_DEFERRED`]
/// or [`RESIZE_INFEASIBLE`]); Kubernetes' names, not ours.
pub const CONDITION_POD_RESIZE_PENDING: &str = "PodResizePending";
/// Pod condition the kubelet sets while it applies a resize.
pub const CONDITION_POD_RESIZE_IN_PROGRESS: &str = "PodResizeInProgress";
/// `PodResizePending` reason: the node cannot fit the resize now.
pub const RESIZE_DEFERRED: &str = "Deferred";
/// `PodResizePending` reason: the node can never fit the resize.
pub const RESIZE_INFEASIBLE: &str = "Infeasible";

/// The pod condition `PodResizePending` (status True): the kubelet cannot apply a resize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizePending {
    /// `Deferred` (may fit later) or `Infeasible` (never fits this node).
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// The kubelet's view of a resize, from the pod's status: what completion is judged on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeStatus {
    /// `metadata.generation` (moves on every spec change, a resize included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// `status.observedGeneration`: the generation the kubelet last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<ResizePending>,
    /// The pod condition `PodResizeInProgress` is True.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
}

/// The parts of a pod the machine decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodView {
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Label `controller-revision-hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub labels: SmallMap<String, String>,
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub annotations: SmallMap<String, String>,
    /// `spec.containers[*].image` by container name.
    #[serde(default)]
    pub spec_images: SmallMap<String, String>,
    /// `spec.containers[*].resources` cpu/memory by container name (containers without any
    /// are absent).
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub spec_resources: SmallMap<String, ContainerResources>,
    /// Generations and resize conditions (absent when the pod has none of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<Box<ResizeStatus>>,
    /// `status.containerStatuses` by container name.
    #[serde(default)]
    pub containers: SmallMap<String, ContainerView>,
    /// Status of the pod condition `InPlaceUpdateReady`; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_ready: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `metadata.deletionTimestamp` is set: the machine never writes to a dying pod.
    #[serde(default)]
    pub deleting: bool,
    /// `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `spec.nodeName`; unscheduled pods sort first in the active-pods order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `status.phase` (`Pending`, `Running`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The pod condition `Ready` is True.
    #[serde(default)]
    pub ready: bool,
    /// When `Ready` last became True (its lastTransitionTime), for minReadySeconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// The revision of a hot patch the kubelet has not applied yet, as `unapplied_hot_patch`
    /// (below) finds it. Derived with the view (once per watch event), not per reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unapplied_hot_patch: Option<String>,
}

/// The revision of the pod's hot patch (`hotpatch-update-state`) if a patched container still
/// runs the image it ran before (its imageID is the one the patch recorded) and has not
/// restarted since: the kubelet has yet to apply the patch (a stock kubelet restarts the
/// container). Such a pod keeps its share of the maxUnavailable budget, or the next reconcile,
/// seeing it still Ready, would patch another.
pub fn unapplied_hot_patch(
    annotations: &SmallMap<String, String>,
    containers: &SmallMap<String, ContainerView>,
) -> Option<String> {
    let raw = annotations.get(names::ANNOTATION_HOTPATCH_STATE)?;
    let state: serde_json::Value = serde_json::from_str(raw).ok()?;
    let revision = state["revision"].as_str()?;
    let last = state["lastContainerStatuses"].as_object()?;
    let patched_at = state["updateTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let pending = last.iter().any(|(name, before)| {
        let before = before["imageID"].as_str().unwrap_or_default();
        containers.get(name).is_some_and(|c| {
            // Unknown before, or restarted since (a retag to the same digest): applied.
            let restarted = matches!((c.started_at, patched_at), (Some(s), Some(p)) if s > p);
            !before.is_empty() && c.image_id.as_deref() == Some(before) && !restarted
        })
    });
    pending.then(|| revision.to_string())
}

/// A copy of a pod's label or annotation map, as the view keeps it.
fn small_map(m: Option<&BTreeMap<String, String>>) -> SmallMap<String, String> {
    let pairs = m.into_iter().flatten();
    pairs.map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl PodView {
    /// Extracts the view from a pod as stored by the API server.
    pub fn from_pod(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let labels = small_map(meta.labels.as_ref());
        let status = pod.status.as_ref();
        let containers = status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let running = c.state.as_ref().and_then(|s| s.running.as_ref());
                        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
                        let view = ContainerView {
                            image: c.image.clone(),
                            image_id: non_empty(&c.image_id),
                            container_id: c
                                .container_id
                                .as_ref()
                                .filter(|s| !s.is_empty())
                                .cloned(),
                            restart_count: c.restart_count,
                            ready: c.ready,
                            running: running.is_some(),
                            started_at: running.and_then(|r| r.started_at.as_ref()).map(|t| t.0),
                            waiting_reason: waiting.and_then(|w| w.reason.clone()),
                            resources: c
                                .resources
                                .as_ref()
                                .map(|r| ContainerResources::from_requirements(Some(r))),
                        };
                        (c.name.clone(), view)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let condition = |type_: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        };
        let in_place_ready = condition(names::CONDITION_INPLACE_READY).map(|c| c.status == "True");
        let ready = condition("Ready").filter(|c| c.status == "True");
        let annotations = small_map(meta.annotations.as_ref());
        let pending = condition(CONDITION_POD_RESIZE_PENDING)
            .filter(|c| c.status == "True")
            .map(|c| ResizePending {
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            });
        let resize = ResizeStatus {
            generation: meta.generation,
            observed_generation: status.and_then(|s| s.observed_generation),
            pending,
            in_progress: condition(CONDITION_POD_RESIZE_IN_PROGRESS)
                .is_some_and(|c| c.status == "True"),
        };
        let spec_resources = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| {
                (
                    c.name.clone(),
                    ContainerResources::from_requirements(c.resources.as_ref()),
                )
            })
            .filter(|(_, r)| *r != ContainerResources::default())
            .collect();
        PodView {
            spec_resources,
            resize: (resize != ResizeStatus::default()).then(|| Box::new(resize)),
            unapplied_hot_patch: unapplied_hot_patch(&annotations, &containers),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            revision: labels.get(names::LABEL_REVISION).cloned(),
            labels,
            annotations,
            spec_images: pod
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default(),
            containers,
            in_place_ready,
            pod_ip: status.and_then(|s| s.pod_ip.clone()),
            host_ip: status.and_then(|s| s.host_ip.clone()),
            deleting: meta.deletion_timestamp.is_some(),
            uid: meta.uid.clone(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            phase: status.and_then(|s| s.phase.clone()),
            ready: ready.is_some(),
            ready_since: ready
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0),
            created_at: meta.creation_timestamp.as_ref().map(|t| t.0),
        }
    }

    /// Gives back the spare capacity of the view's maps ([`crate::shrink_to_fit`]), for a view
    /// a cache keeps.
    pub fn shrink_to_fit(&mut self) {
        crate::shrink_to_fit(&mut self.labels);
        crate::shrink_to_fit(&mut self.annotations);
        crate::shrink_to_fit(&mut self.spec_images);
        crate::shrink_to_fit(&mut self.spec_resources);
        crate::shrink_to_fit(&mut self.containers);
    }

    /// Highest restart count among the containers.
    pub fn max_restarts(&self) -> i32 {
        self.containers
            .values()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
    }

    /// The instance id the original operator gives every pod (label, else the name suffix).
    pub fn instance_id(&self) -> &str {
        self.labels
            .get(names::LABEL_POD_INSTANCE_ID)
            .map(String::as_str)
            .unwrap_or_else(|| self.name.rsplit('-').next().unwrap_or(&self.name))
    }

    /// The spec's cpu/memory of container `name` (empty when it sets none).
    pub fn resources_of(&self, name: &str) -> ContainerResources {
        self.spec_resources.get(name).cloned().unwrap_or_default()
    }

    /// The kubelet reports `PodResizePending` with `reason`.
    pub fn resize_pending(&self, reason: &str) -> Option<&ResizePending> {
        let pending = self.resize.as_ref()?.pending.as_ref()?;
        (pending.reason == reason).then_some(pending)
    }

    /// The resize in the spec is complete (the shared contract's test): the kubelet acted on
    /// the current generation, reports no resize condition, every container's applied
    /// cpu/memory equals its spec's as quantities, and each container in `restarted` (a
    /// `RestartContainer` resize) is ready again.
    pub fn resize_complete<'a>(&self, mut restarted: impl Iterator<Item = &'a String>) -> bool {
        let caught_up = self.resize.as_ref().is_none_or(|r| {
            r.pending.is_none()
                && !r.in_progress
                && r.generation
                    .is_none_or(|g| r.observed_generation.is_some_and(|o| o >= g))
        });
        let applied = self.containers.iter().all(|(name, c)| {
            let applied = c.resources.clone().unwrap_or_default();
            applied.same_as(&self.resources_of(name))
        });
        caught_up && applied && restarted.all(|n| self.containers.get(n).is_some_and(|c| c.ready))
    }

    /// `InPlaceUpdateReady` is explicitly False.
    pub fn is_marked_unready(&self) -> bool {
        self.in_place_ready == Some(false)
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "test-gamedeployment-49m5l", "namespace": "default", "resourceVersion": "42",
                "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"controller-revision-hash": "gd-1",
                           "tkex.bkbcs.tencent.com/gamedeployment-instance-id": "49m5l"},
                "annotations": {"a": "b"}
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "python", "image": "python:3.9"}]},
            "status": {
                "phase": "Running", "podIP": "10.0.0.7", "hostIP": "192.0.2.1",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"},
                               {"type": "InPlaceUpdateReady", "status": "False"}],
                "containerStatuses": [{
                    "name": "python", "image": "python:3.9", "imageID": "sha256:aa",
                    "containerID": "containerd://c1", "restartCount": 2, "ready": true,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                }]
            }
        }))
        .unwrap();
        let v = PodView::from_pod(&pod);
        assert_eq!(v.revision.as_deref(), Some("gd-1"));
        assert_eq!(v.instance_id(), "49m5l");
        assert_eq!(v.spec_images.get("python").unwrap(), "python:3.9");
        assert!(v.is_marked_unready());
        let c = &v.containers.get("python").unwrap();
        assert_eq!((c.restart_count, c.ready, c.running), (2, true, true));
        assert_eq!(c.container_id.as_deref(), Some("containerd://c1"));
        assert_eq!(c.started_at, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(v.pod_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(
            (v.uid.as_deref(), v.node_name.as_deref(), v.phase.as_deref()),
            (Some("u-1"), Some("node-1"), Some("Running"))
        );
        assert!(v.ready);
        assert_eq!(v.ready_since, Some("2026-01-01T00:00:05Z".parse().unwrap()));
        assert_eq!(v.created_at, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(v.max_restarts(), 2);
    }

    #[test]
    fn a_bare_pod_gives_an_empty_view() {
        let v = PodView::from_pod(&Pod::default());
        assert_eq!(v, PodView::default());
        assert_eq!(v.in_place_ready, None);
    }

    #[test]
    fn waiting_reason_is_read() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p-abcde"},
            "status": {"containerStatuses": [{"name": "c", "image": "x", "imageID": "", "restartCount": 0,
                "ready": false, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}
        }))
        .unwrap();
        let v = PodView::from_pod(&pod);
        assert_eq!(
            v.containers.get("c").unwrap().waiting_reason.as_deref(),
            Some("ImagePullBackOff")
        );
        assert_eq!(v.containers.get("c").unwrap().image_id, None);
        assert_eq!(v.instance_id(), "abcde");
    }
}
