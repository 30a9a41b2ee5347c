//! The JSON report of a simulation run (`-o json`, fields in `crates/simulator/README.md`): field
//! names are a contract with scripts. Builders fill entries from stored objects so the runner
//! only collects; [`HistoryEntry`] carries enough per pod change to recompute the state
//! machine's invariants from outside (see [`super::invariants`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, ResourceRequirements};
use k8s_openapi::api::events::v1::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use gamedeploy_core::api::StoredGameDeployment;
use gamedeploy_core::names;
use kube::Resource;

/// Everything a run leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The scenario's `name`.
    pub name: String,
    /// Virtual seconds from the start to the end of the run.
    pub virtual_seconds: f64,
    pub settled: bool,
    pub game_deployments: Vec<GameDeploymentEntry>,
    pub pods: Vec<PodEntry>,
    pub events: Vec<EventEntry>,
    pub api_requests: Vec<ApiRequest>,
    pub history: Vec<HistoryEntry>,
    pub operator_restarts: u32,
    pub faults_injected: u64,
    /// Stored changes made by the operator (what `crashOperatorAfterWrites` counts).
    #[serde(default)]
    pub operator_writes: u64,
}

/// A GameDeployment as stored at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GameDeploymentEntry {
    pub namespace: String,
    pub name: String,
    pub spec: Value,
    pub status: Value,
}

impl GameDeploymentEntry {
    /// The entry for `gd`; a spec the operator cannot decode is shown as stored.
    pub fn from_object(gd: &StoredGameDeployment) -> Self {
        let meta = gd.meta();
        let spec = match gd {
            StoredGameDeployment::Decoded(gd) => serde_json::to_value(&gd.spec).ok(),
            StoredGameDeployment::Undecodable(u) => serde_json::from_str(&u.spec_json).ok(),
        };
        GameDeploymentEntry {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            spec: spec.unwrap_or(Value::Null),
            status: gd
                .status()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or(Value::Null),
        }
    }
}

/// A pod as stored at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEntry {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Label `controller-revision-hash`.
    pub revision: Option<String>,
    /// Pod condition `Ready` is True.
    pub ready: bool,
    /// `status.phase`.
    pub phase: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub conditions: Vec<ConditionEntry>,
    pub containers: Vec<ContainerEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionEntry {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
}

/// One container: the spec image beside what kubelet reports for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEntry {
    pub name: String,
    /// The image kubelet reports (the spec image until it reports one).
    pub image: String,
    /// `spec.containers[].image`.
    pub spec_image: String,
    #[serde(rename = "imageID")]
    pub image_id: String,
    #[serde(rename = "containerID")]
    pub container_id: Option<String>,
    pub restart_count: i32,
    pub ready: bool,
    /// `requests.cpu`, `limits.memory`, ... the container runs with, as kubelet reports them
    /// (`containerStatuses[].resources`); empty when it reports none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
}

impl PodEntry {
    pub fn from_pod(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let status = pod.status.as_ref();
        let statuses = status
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        let containers = spec_images(pod)
            .into_iter()
            .map(|(name, spec_image)| {
                let s = statuses.iter().find(|s| s.name == name);
                ContainerEntry {
                    image: s
                        .map(|s| s.image.clone())
                        .filter(|i| !i.is_empty())
                        .unwrap_or_else(|| spec_image.clone()),
                    spec_image,
                    image_id: s.map(|s| s.image_id.clone()).unwrap_or_default(),
                    container_id: s.and_then(|s| s.container_id.clone()),
                    restart_count: s.map_or(0, |s| s.restart_count),
                    ready: s.is_some_and(|s| s.ready),
                    resources: flat_resources(s.and_then(|s| s.resources.as_ref())),
                    name,
                }
            })
            .collect();
        let conditions = status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|c| ConditionEntry {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: c.last_transition_time.as_ref().map(|t| t.0),
            })
            .collect();
        PodEntry {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            revision: revision(pod),
            ready: condition(pod, "Ready") == Some(true),
            phase: status.and_then(|s| s.phase.clone()),
            annotations: meta.annotations.clone().unwrap_or_default(),
            conditions,
            containers,
        }
    }
}

/// A container's cpu/memory as the spec writes them, and which of them restart it when resized.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResources {
    /// `requests.cpu`, `limits.memory`, ... as written in the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Resources whose `resizePolicy` is `RestartContainer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_on_resize: Vec<String>,
}

/// `requests.cpu`, `limits.memory`, ... of `r`, as written.
fn flat_resources(r: Option<&ResourceRequirements>) -> BTreeMap<String, String> {
    [
        ("requests", r.and_then(|r| r.requests.as_ref())),
        ("limits", r.and_then(|r| r.limits.as_ref())),
    ]
    .into_iter()
    .flat_map(|(kind, m)| {
        m.into_iter()
            .flatten()
            .map(move |(k, v)| (format!("{kind}.{k}"), v.0.clone()))
    })
    .collect()
}

fn spec_resources(pod: &Pod) -> BTreeMap<String, ContainerResources> {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    containers
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let values = flat_resources(c.resources.as_ref());
            let restart_on_resize = c
                .resize_policy
                .iter()
                .flatten()
                .filter(|p| p.restart_policy == "RestartContainer")
                .map(|p| p.resource_name.clone())
                .collect();
            (!values.is_empty()).then(|| {
                (
                    c.name.clone(),
                    ContainerResources {
                        values,
                        restart_on_resize,
                    },
                )
            })
        })
        .collect()
}

/// `spec.containers` as (name, image), in spec order.
fn spec_images(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn revision(pod: &Pod) -> Option<String> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(names::LABEL_REVISION))
        .cloned()
}

/// A pod condition's status, `None` when absent.
pub use gamedeploy_inspect::kubectl::condition;

/// Virtual seconds from `start` to `t`.
pub fn seconds_since(start: Timestamp, t: Timestamp) -> f64 {
    t.duration_since(start).as_secs_f64()
}

/// An event, with its virtual time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    pub t: f64,
    /// `Kind/name` of the object the event is about.
    pub object: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

impl EventEntry {
    /// From an `events.k8s.io/v1` Event (what kube's `Recorder` publishes).
    pub fn from_event(start: Timestamp, e: &Event) -> Self {
        let when = e
            .event_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.deprecated_last_timestamp.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(start);
        let regarding = e.regarding.as_ref();
        EventEntry {
            t: seconds_since(start, when),
            object: object_name(
                regarding.and_then(|r| r.kind.as_deref()),
                regarding.and_then(|r| r.name.as_deref()),
            ),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.note.clone().unwrap_or_default(),
        }
    }

    /// From a core `v1` Event (what kubectl and older clients write).
    pub fn from_core_event(start: Timestamp, e: &CoreEvent) -> Self {
        let when = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(start);
        EventEntry {
            t: seconds_since(start, when),
            object: object_name(
                e.involved_object.kind.as_deref(),
                e.involved_object.name.as_deref(),
            ),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
        }
    }
}

fn object_name(kind: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", kind.unwrap_or_default(), name.unwrap_or_default())
}

/// Requests served, per client identity (`operator`, `kubelet`, `scenario`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    pub client: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub count: u64,
}

/// One stored change of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub t: f64,
    pub pod: String,
    /// Who made the change: `operator`, `kubelet`, `scenario`, `garbage-collector`.
    pub client: String,
    pub uid: String,
    pub revision: Option<String>,
    /// Pod condition `Ready` is True.
    pub ready: bool,
    /// Pod condition `InPlaceUpdateReady`; `None` when absent.
    pub in_place_update_ready: Option<bool>,
    /// `spec.containers[].image` by container name.
    pub images: BTreeMap<String, String>,
    /// `restartCount` by container name, as kubelet reports it.
    pub restart_counts: BTreeMap<String, i32>,
    /// `spec.containers[].resources` by container name, for containers that set any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ContainerResources>,
    /// `metadata.deletionTimestamp` is set.
    #[serde(default)]
    pub terminating: bool,
    /// The change removed the pod.
    #[serde(default)]
    pub deleted: bool,
}

impl HistoryEntry {
    /// The entry for `pod` as stored after a change by `client` at virtual time `t`;
    /// `deleted` when the change removed it.
    pub fn from_pod(t: f64, client: &str, pod: &Pod, deleted: bool) -> Self {
        let restart_counts = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| (c.name.clone(), c.restart_count))
                    .collect()
            })
            .unwrap_or_default();
        HistoryEntry {
            t,
            pod: pod.metadata.name.clone().unwrap_or_default(),
            client: client.to_string(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            revision: revision(pod),
            ready: condition(pod, "Ready") == Some(true),
            in_place_update_ready: condition(pod, names::CONDITION_INPLACE_READY),
            images: spec_images(pod).into_iter().collect(),
            restart_counts,
            resources: spec_resources(pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            deleted,
        }
    }
}

#[cfg(test)]
mod tests;
