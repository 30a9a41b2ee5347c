//! What the machine asks the controller to do. Actions are data: the pure core decides, the
//! controller executes. Each [`Action::WritePod`] is exactly one API write, which is what the
//! write budget counts.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::observe::PodView;
use super::record::{Record, encode};
use crate::names;

/// Which endpoint a pod write goes to. `pods/status` may change the status and the metadata
/// (labels, annotations) but not the spec; the main resource may change spec and metadata
/// but not the status. So a condition flip and its checkpoint travel together through
/// `pods/status`, and an image patch and its checkpoint through the main resource.
/// `pods/resize` changes only containers' cpu/memory requests and limits: it carries no
/// metadata, so no checkpoint; the state after it is derived from the pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    Pod,
    PodStatus,
    PodResize,
}

/// The `InPlaceUpdateReady` condition to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionWrite {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Timestamp,
}

/// One write to the pod: a checkpoint plus the side effect it describes, atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodWrite {
    pub endpoint: Endpoint,
    /// The machine after this write; `None` only when the write just consumes a refused force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionWrite>,
    /// Container name to new image (pod endpoint only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Container name to its `resources` patch (`pods/resize` only): the cpu/memory requests
    /// and limits to set, `null` for one to remove.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Value>,
    /// Other annotations; `None` removes the key (the consumed force request).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
    /// This write follows the kubelet applying a resize (the `Resized` transition): what
    /// the operator's resize metrics count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resized: bool,
    /// The pod resourceVersion the decision was made on: a stale cache gets a 409, not a
    /// wrong write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<String>,
}

impl PodWrite {
    pub fn new(endpoint: Endpoint, precondition: Option<String>) -> Self {
        PodWrite {
            endpoint,
            checkpoint: None,
            condition: None,
            images: BTreeMap::new(),
            resources: BTreeMap::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            resized: false,
            precondition,
        }
    }

    /// The strategic merge patch body for this write (containers merge by `name`,
    /// conditions by `type`, as kube-apiserver does for Pods).
    pub fn to_patch(&self) -> Value {
        if self.endpoint == Endpoint::PodResize {
            let containers: Vec<Value> = self
                .resources
                .iter()
                .map(|(name, r)| json!({"name": name, "resources": r}))
                .collect();
            return json!({"spec": {"containers": containers}});
        }
        let mut metadata = Map::new();
        if let Some(rv) = &self.precondition {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), json!(self.labels));
        }
        let mut annotations: Map<String, Value> = self
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, |v| json!(v))))
            .collect();
        if let Some(r) = &self.checkpoint {
            annotations.insert(names::ANNOTATION_STATE.into(), json!(encode(r)));
        }
        if !annotations.is_empty() {
            metadata.insert("annotations".into(), Value::Object(annotations));
        }
        let mut patch = Map::new();
        patch.insert("metadata".into(), Value::Object(metadata));
        if !self.images.is_empty() {
            let containers: Vec<Value> = self
                .images
                .iter()
                .map(|(name, image)| json!({"name": name, "image": image}))
                .collect();
            patch.insert("spec".into(), json!({ "containers": containers }));
        }
        if let Some(c) = &self.condition {
            patch.insert(
                "status".into(),
                json!({"conditions": [{
                    "type": names::CONDITION_INPLACE_READY,
                    "status": if c.ready { "True" } else { "False" },
                    "reason": c.reason,
                    "message": c.message,
                    "lastTransitionTime": c.last_transition_time.to_string(),
                }]}),
            );
        }
        Value::Object(patch)
    }
}

/// Severity of an event, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// The HookRun that gates something done to a pod: its in-place update
/// (preInplaceUpdateStrategy) or its deletion (preDeleteUpdateStrategy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRunRequest {
    pub name: String,
    pub template: String,
    /// Arguments the original passes: PodName, PodNamespace, PodIP, HostIP,
    /// `PodContainer[i]`, `ModifiedContainer[i]`.
    pub args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "HookKind::is_pre_inplace")]
    pub kind: HookKind,
    /// `retry: true` made this run (a new attempt) in this GameDeployment generation; written as
    /// a label, so the hook is retried once per generation without writing the spec back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_generation: Option<i64>,
}

/// Which gate a HookRun is for: decides its `hookrun-type` label and where extra arguments
/// come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookKind {
    #[default]
    PreInplace,
    PreDelete,
    /// Runs after a pod's in-place update completed; gates nothing.
    PostInplace,
    /// A canary step's hook: gates the next step, not a pod.
    CanaryStep,
}

impl HookKind {
    fn is_pre_inplace(&self) -> bool {
        *self == HookKind::PreInplace
    }

    /// The `hookrun-type` label value the original uses.
    pub fn label(self) -> &'static str {
        match self {
            HookKind::PreInplace => "pre-inplace-step",
            HookKind::PreDelete => "pre-delete-step",
            HookKind::PostInplace => "post-inplace-step",
            HookKind::CanaryStep => "canary-step",
        }
    }

    /// The name of the first attempt of a HookRun of this kind, as the original names them:
    /// `<kind>-<revision>-<subject>-<template>`, where the subject is the pod's instance id (the
    /// canary step's index for a canary step). Later attempts are [`attempt_name`]s of it. The
    /// one place HookRun names are made, so the machine and the planner cannot drift apart.
    pub(crate) fn run_name(self, revision: &str, subject: &str, template: &str) -> String {
        let prefix = match self {
            HookKind::PreInplace => "preinplace",
            HookKind::PreDelete => "predelete",
            HookKind::PostInplace => "postinplace",
            HookKind::CanaryStep => "canary",
        };
        format!("{prefix}-{revision}-{subject}-{template}")
    }
}

/// The generation to retry an unsuccessful hook in now, if any: with `retry: true` the hook
/// may run again once per GameDeployment generation (`allowed_in`, `None` without `retry`),
/// and the last retry happened in generation `last` (`None` if never). The one check of the
/// rule's second half, for the preInplace machine and the preDelete gate alike; the planner's
/// `rules::hookruns::retry_generation` is the first (whether retry is on, and in which
/// generation).
pub(crate) fn retry_due(allowed_in: Option<i64>, last: Option<i64>) -> Option<i64> {
    allowed_in.filter(|g| last.is_none_or(|last| last < *g))
}

/// Attempt `n` of the run named `base`: `base` itself for the first (0), `base.N` after it
/// (the original's collision suffix, used for every new attempt).
pub(crate) fn attempt_name(base: &str, n: u32) -> String {
    match n {
        0 => base.to_string(),
        n => format!("{base}.{n}"),
    }
}

/// The attempt number of a run named `name`: the inverse of [`attempt_name`]; `None` for a run
/// of another base.
pub(crate) fn attempt_of(base: &str, name: &str) -> Option<u32> {
    match name.strip_prefix(base)? {
        "" => Some(0),
        rest => rest.strip_prefix('.')?.parse().ok(),
    }
}

/// The arguments the operator supplies for any hook on `pod`, as the original does.
pub fn pod_hook_args(pod: &PodView) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    args.insert("PodName".to_string(), pod.name.clone());
    args.insert("PodNamespace".to_string(), pod.namespace.clone());
    args.insert("PodIP".to_string(), pod.pod_ip.clone().unwrap_or_default());
    args.insert(
        "HostIP".to_string(),
        pod.host_ip.clone().unwrap_or_default(),
    );
    for (i, name) in pod.spec_images.keys().enumerate() {
        args.insert(format!("PodContainer[{i}]"), name.clone());
    }
    args
}

/// Something for the controller to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// One API write to the pod (boxed: it carries the whole checkpoint).
    WritePod(Box<PodWrite>),
    /// Create the HookRun; an `AlreadyExists` answer means it is already there and is fine.
    CreateHookRun(HookRunRequest),
    /// Record an event on the pod.
    Event {
        r#type: EventType,
        reason: String,
        message: String,
    },
}

impl Action {
    pub fn event(r#type: EventType, reason: &str, message: impl Into<String>) -> Self {
        Action::Event {
            r#type,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn as_write(&self) -> Option<&PodWrite> {
        match self {
            Action::WritePod(w) => Some(w.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::state::State;

    #[test]
    fn a_hook_is_retried_once_per_generation() {
        assert_eq!(retry_due(None, None), None, "without retry: never");
        assert_eq!(retry_due(Some(3), None), Some(3), "never retried: now");
        assert_eq!(
            retry_due(Some(3), Some(2)),
            Some(3),
            "retried before this spec"
        );
        assert_eq!(
            retry_due(Some(3), Some(3)),
            None,
            "already retried in this generation"
        );
    }

    #[test]
    fn every_hook_run_kind_is_named_as_the_original_names_it() {
        let names: Vec<String> = [
            HookKind::PreInplace,
            HookKind::PreDelete,
            HookKind::PostInplace,
            HookKind::CanaryStep,
        ]
        .iter()
        .map(|k| attempt_name(&k.run_name("gd-abc", "49m5l", "check"), 2))
        .collect();
        assert_eq!(
            names,
            [
                "preinplace-gd-abc-49m5l-check.2",
                "predelete-gd-abc-49m5l-check.2",
                "postinplace-gd-abc-49m5l-check.2",
                "canary-gd-abc-49m5l-check.2",
            ]
        );
        assert_eq!(attempt_name("base", 0), "base");
    }

    #[test]
    fn status_patch_carries_condition_and_checkpoint() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut r = Record::start("gd-2", t);
        r.state = State::Unready;
        let mut w = PodWrite::new(Endpoint::PodStatus, Some("7".into()));
        w.checkpoint = Some(r.clone());
        w.condition = Some(ConditionWrite {
            ready: false,
            reason: "StartInPlaceUpdate".into(),
            message: "m".into(),
            last_transition_time: t,
        });
        w.annotations.insert(names::ANNOTATION_FORCE.into(), None);
        let p = w.to_patch();
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(
            p["metadata"]["annotations"][names::ANNOTATION_FORCE],
            Value::Null
        );
        assert_eq!(
            p["metadata"]["annotations"][names::ANNOTATION_STATE],
            json!(encode(&r))
        );
        assert_eq!(p["status"]["conditions"][0]["type"], "InPlaceUpdateReady");
        assert_eq!(p["status"]["conditions"][0]["status"], "False");
        assert!(p.get("spec").is_none());
    }

    #[test]
    fn pod_patch_merges_containers_by_name() {
        let mut w = PodWrite::new(Endpoint::Pod, None);
        w.images.insert("python".into(), "python:latest".into());
        w.labels.insert(names::LABEL_REVISION.into(), "gd-2".into());
        let p = w.to_patch();
        assert_eq!(
            p["spec"]["containers"],
            json!([{"name": "python", "image": "python:latest"}])
        );
        assert_eq!(p["metadata"]["labels"][names::LABEL_REVISION], "gd-2");
        assert!(p["metadata"].get("resourceVersion").is_none());
    }

    /// `pods/resize` takes only `spec.containers[].resources`: no metadata, so no checkpoint.
    #[test]
    fn resize_patch_is_container_resources_only() {
        let mut w = PodWrite::new(Endpoint::PodResize, Some("7".into()));
        w.resources.insert(
            "app".into(),
            json!({"requests": {"cpu": "1"}, "limits": {"cpu": null}}),
        );
        assert_eq!(
            w.to_patch(),
            json!({"spec": {"containers": [{"name": "app", "resources":
                {"requests": {"cpu": "1"}, "limits": {"cpu": null}}}]}})
        );
    }
}
