//! A pod as the kubelet's watch decodes and keeps it: the fields [`NodeRuntime::sync`] and the
//! status patch read, nothing else.
//!
//! A stored pod also carries labels, annotations (the operator's state record among them),
//! managedFields, owner references and every defaulted field of its spec. The kubelet reads
//! none of them, yet decoding a whole `Pod` built them all, for every event of every pod, and
//! its watch's store kept them. Here the unread fields are skipped while decoding: serde's
//! derive passes an unknown field to `IgnoredAny`, which walks the JSON without allocating.
//!
//! Kept: the metadata `sync` and the store read (name, namespace, uid, resourceVersion,
//! generation, deletionTimestamp, deletionGracePeriodSeconds); of the spec `nodeName`,
//! `readinessGates` and each container's name, image, resources and resizePolicy; the whole
//! status, which the kubelet renders its report from and compares it with.
//!
//! [`NodeRuntime::sync`]: super::container_runtime::NodeRuntime::sync

use k8s_openapi::api::core::v1::{
    Container, ContainerResizePolicy, Pod, PodReadinessGate, PodSpec, PodStatus,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

/// A pod with only what the kubelet reads (see the module doc); the rest is left at its
/// default. Deserialized straight from the API server's JSON, so a watch of `WatchedPod`s
/// watches `pods`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchedPod(Pod);

impl WatchedPod {
    /// The pod, as [`NodeRuntime::sync`](super::container_runtime::NodeRuntime::sync) takes it.
    pub fn pod(&self) -> &Pod {
        &self.0
    }
}

impl k8s_openapi::Resource for WatchedPod {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <Pod as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for WatchedPod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl<'de> Deserialize<'de> for WatchedPod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let m = wire.metadata.unwrap_or_default();
        Ok(WatchedPod(Pod {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                generation: m.generation,
                deletion_timestamp: m.deletion_timestamp,
                deletion_grace_period_seconds: m.deletion_grace_period_seconds,
                ..ObjectMeta::default()
            },
            spec: wire.spec.map(|s| PodSpec {
                node_name: s.node_name,
                readiness_gates: s.readiness_gates,
                containers: containers(s.containers),
                ..PodSpec::default()
            }),
            status: wire.status,
        }))
    }
}

/// The JSON of a pod, as far as the kubelet reads it. `Option`s where `Pod`'s own decoder
/// takes `null` for absent.
#[derive(Deserialize)]
struct Wire {
    metadata: Option<WireMeta>,
    spec: Option<WireSpec>,
    status: Option<PodStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<String>,
    readiness_gates: Option<Vec<PodReadinessGate>>,
    containers: Option<Vec<ContainerHead>>,
}

/// A container of a pod's spec as far as the kubelet reads it: name, image, resources and
/// resize policy (what a simulation's history records of it, too).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerHead {
    name: Option<String>,
    image: Option<String>,
    resources: Option<ResourceRequirements>,
    resize_policy: Option<Vec<ContainerResizePolicy>>,
}

/// `spec.containers` from its heads, the other fields of each at their defaults; absent or
/// `null` is none, as `PodSpec`'s decoder reads it.
pub fn containers(heads: Option<Vec<ContainerHead>>) -> Vec<Container> {
    heads
        .unwrap_or_default()
        .into_iter()
        .map(|c| Container {
            name: c.name.unwrap_or_default(),
            image: c.image,
            resources: c.resources,
            resize_policy: c.resize_policy,
            ..Container::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A pod as the API server stores it, with what the kubelet never reads.
    fn stored() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "gd-x7k2p", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z",
                "deletionTimestamp": "2026-01-01T00:01:00Z", "deletionGracePeriodSeconds": 30,
                "labels": {"app": "x"}, "annotations": {"a": "b"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "o"}],
                "managedFields": [{"manager": "kubelet", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}}],
            },
            "spec": {
                "nodeName": "sim-node", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
                "containers": [{
                    "name": "c", "image": "i:1", "command": ["run"],
                    "env": [{"name": "E", "value": "v"}], "imagePullPolicy": "IfNotPresent",
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                    "resizePolicy": [{"resourceName": "memory",
                        "restartPolicy": "RestartContainer"}],
                }],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True",
                    "lastTransitionTime": "2026-01-01T00:00:02Z"}],
                "containerStatuses": [{"name": "c", "image": "i:1", "imageID": "d",
                    "ready": true, "restartCount": 1}],
            },
        })
    }

    /// What the kubelet reads comes out as a whole `Pod`'s decoder gives it; the rest stays
    /// at its default.
    #[test]
    fn keeps_what_the_kubelet_reads_and_nothing_else() {
        let full: Pod = serde_json::from_value(stored()).unwrap();
        let watched: WatchedPod = serde_json::from_str(&stored().to_string()).unwrap();
        let spec = full.spec.clone().unwrap();
        let c = &spec.containers[0];
        let expected = Pod {
            metadata: ObjectMeta {
                name: full.metadata.name.clone(),
                namespace: full.metadata.namespace.clone(),
                uid: full.metadata.uid.clone(),
                resource_version: full.metadata.resource_version.clone(),
                generation: full.metadata.generation,
                deletion_timestamp: full.metadata.deletion_timestamp.clone(),
                deletion_grace_period_seconds: full.metadata.deletion_grace_period_seconds,
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: spec.node_name.clone(),
                readiness_gates: spec.readiness_gates.clone(),
                containers: vec![Container {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    resources: c.resources.clone(),
                    resize_policy: c.resize_policy.clone(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: full.status.clone(),
        };
        assert_eq!(watched.pod(), &expected);
        assert!(
            expected.spec.as_ref().unwrap().containers[0]
                .resources
                .is_some()
        );
        assert_eq!(
            watched.pod().status.as_ref().unwrap().pod_ip.as_deref(),
            Some("10.0.0.1")
        );
    }

    /// Absent and `null` parts read as a whole `Pod`'s decoder reads them.
    #[test]
    fn absent_and_null_parts_read_as_a_pod_reads_them() {
        for object in [
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": null, "spec": null, "status": null}),
            json!({"metadata": {"name": "p"}, "spec": {"containers": null}}),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "i"}]}}),
        ] {
            let full: Pod = serde_json::from_value(object.clone()).unwrap();
            let watched: WatchedPod = serde_json::from_value(object).unwrap();
            assert_eq!(watched.pod(), &full);
        }
    }
}
