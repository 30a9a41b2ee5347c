//! The JSON report of a simulation run (`-o json`, fields in `crates/simulator/README.md`): field
//! names are a contract with scripts. Builders fill entries from stored objects so the runner
//! only collects; [`HistoryEntry`] carries enough per pod change to recompute the state
//! machine's invariants from outside (see [`super::invariants`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
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
            terminating: pod.metadata.deletion_timestamp.is_some(),
            deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "gd-abcde", "namespace": "default", "uid": "u1",
                "labels": {"controller-revision-hash": "gd-2"},
                "annotations": {"tkex.tencent.com/inplace-update-state": "{}"}},
            "spec": {"containers": [{"name": "python", "image": "python:latest"},
                                    {"name": "side", "image": "envoy:1"}]},
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady",
                     "lastTransitionTime": "2026-01-01T00:00:30Z"},
                    {"type": "InPlaceUpdateReady", "status": "False"}],
                "containerStatuses": [{"name": "python", "image": "python:3.9",
                    "imageID": "docker-pullable://python@sha256:aa", "containerID": "containerd://c1",
                    "restartCount": 1, "ready": true}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn pod_entries_pair_spec_and_reported_images() {
        let e = PodEntry::from_pod(&pod());
        assert_eq!((e.name.as_str(), e.uid.as_str()), ("gd-abcde", "u1"));
        assert_eq!(e.revision.as_deref(), Some("gd-2"));
        assert!(!e.ready);
        assert_eq!(
            e.conditions[0].reason.as_deref(),
            Some("ReadinessGatesNotReady")
        );
        assert_eq!(e.containers[0].image, "python:3.9");
        assert_eq!(e.containers[0].spec_image, "python:latest");
        assert_eq!(e.containers[0].restart_count, 1);
        // No status yet for the sidecar: the spec image, nothing reported.
        assert_eq!(e.containers[1].image, "envoy:1");
        assert_eq!(
            (e.containers[1].container_id.as_ref(), e.containers[1].ready),
            (None, false)
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json["containers"][0]["imageID"],
            "docker-pullable://python@sha256:aa"
        );
        assert_eq!(json["containers"][0]["containerID"], "containerd://c1");
        assert_eq!(json["conditions"][0]["type"], "Ready");
        assert_eq!(
            json["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:30Z"
        );
    }

    #[test]
    fn history_entries_capture_what_the_invariants_need() {
        let h = HistoryEntry::from_pod(12.5, "operator", &pod(), false);
        assert_eq!(h.in_place_update_ready, Some(false));
        assert!(!h.ready && !h.terminating && !h.deleted);
        assert_eq!(h.images["python"], "python:latest");
        assert_eq!(
            h.restart_counts,
            BTreeMap::from([("python".to_string(), 1)])
        );
        let json = serde_json::to_value(&h).unwrap();
        for key in [
            "t",
            "pod",
            "client",
            "ready",
            "inPlaceUpdateReady",
            "images",
            "restartCounts",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        let back: HistoryEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn report_round_trips_with_contract_names() {
        let r = Report {
            name: "x".into(),
            virtual_seconds: 90.0,
            settled: true,
            pods: vec![PodEntry::from_pod(&pod())],
            api_requests: vec![ApiRequest {
                client: "kubelet".into(),
                verb: "patch".into(),
                resource: "pods".into(),
                subresource: "status".into(),
                count: 3,
            }],
            operator_restarts: 1,
            faults_injected: 2,
            ..Report::default()
        };
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "virtualSeconds",
            "settled",
            "gameDeployments",
            "pods",
            "events",
            "apiRequests",
            "history",
            "operatorRestarts",
            "faultsInjected",
        ] {
            assert!(json.get(key).is_some(), "{key} missing");
        }
        assert_eq!(serde_json::from_value::<Report>(json).unwrap(), r);
    }

    #[test]
    fn events_of_both_apis_name_object_and_virtual_time() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let e: Event = serde_json::from_value(json!({
            "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:45.000000Z",
            "regarding": {"kind": "Pod", "name": "gd-abcde"}, "type": "Warning",
            "reason": "InPlaceUpdateForceRefused", "note": "not allowed"
        }))
        .unwrap();
        let entry = EventEntry::from_event(start, &e);
        assert_eq!(entry.t, 45.0);
        assert_eq!(entry.object, "Pod/gd-abcde");
        assert_eq!(entry.message, "not allowed");
        let c: CoreEvent = serde_json::from_value(json!({
            "metadata": {"name": "e2"}, "lastTimestamp": "2026-01-01T00:01:00Z",
            "involvedObject": {"kind": "GameDeployment", "name": "gd"}, "type": "Normal",
            "reason": "SuccessfulCreate", "message": "created pod"
        }))
        .unwrap();
        let entry = EventEntry::from_core_event(start, &c);
        assert_eq!(
            (entry.t, entry.object.as_str()),
            (60.0, "GameDeployment/gd")
        );
    }

    #[test]
    fn game_deployments_keep_spec_and_status() {
        let object = |replicas: serde_json::Value| {
            let text = json!({
                "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
                "metadata": {"name": "gd", "namespace": "default"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
                "status": {"replicas": 8, "updatedReplicas": 5}
            });
            StoredGameDeployment::from_json(&text.to_string()).unwrap()
        };
        let e = GameDeploymentEntry::from_object(&object(json!(8)));
        assert_eq!(e.spec["replicas"], 8);
        assert_eq!(e.status["updatedReplicas"], 5);
        // One the operator cannot decode is reported as stored.
        let e = GameDeploymentEntry::from_object(&object(json!(1_099_511_627_776_i64)));
        assert_eq!(e.spec["replicas"], 1_099_511_627_776_i64);
        assert_eq!(e.status["updatedReplicas"], 5);
    }
}
