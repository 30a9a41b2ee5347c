//! What the operator keeps of a pod: a projection made once, when the watch delivers the pod,
//! holding only what planning and claiming read, with the derived parts (the [`PodView`] and
//! the decoded state annotation) already computed.
//!
//! Why: a reconcile of an unchanged 10,000-pod GameDeployment used to build 10,000 views and
//! parse 10,000 annotations, every time, and the cache held whole `Pod`s (7.7 KiB each). Deriving
//! on arrival makes planning proportional to what changed since the last watch event (a pod is
//! re-derived exactly when its resourceVersion changes, because that is when the watch delivers
//! it), and the cache holds a fraction of the bytes.
//!
//! Labels and annotations are kept once, in the view; the `metadata` this type exposes to
//! kube-runtime (as a [`Resource`]) carries identity and ownership only. Read labels and
//! annotations through [`CachedPod::labels`] and [`CachedPod::annotations`].
//!
//! Nothing kept has spare capacity: the pod as decoded from the watch has room for four owner
//! references and four entries in every map it holds one of (a vector's smallest growth), which
//! was a kilobyte of every cached pod. The roster keeps the `CachedPod` the watch decoded, not
//! a clone, so it is made compact here.
//!
//! A state annotation that decodes is kept decoded only ([`CachedPod::decoded`]): the raw JSON
//! was about 350 bytes of every updated pod, and nothing that plans reads it (the machine takes
//! it decoded). One that does not decode stays in the view as it came, for what reports it.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

use crate::api::metadata_without_managed_fields;
use crate::inplace::{self, Decoded, PodView};
use crate::{SmallMap, names};

/// A pod as the operator's cache holds it. Built from a `Pod` ([`CachedPod::new`]), or
/// deserialized straight from the API server's JSON for a pod, so a reflector of `CachedPod`s
/// watches `pods` and never stores the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    /// Name, namespace, uid, resourceVersion, owner references and the creation and deletion
    /// timestamps; no labels, annotations or managedFields (see the module doc).
    metadata: ObjectMeta,
    view: PodView,
    decoded: Decoded,
}

impl CachedPod {
    pub fn new(pod: Pod) -> Self {
        let mut view = PodView::from_pod(&pod);
        let decoded = inplace::decode(&view.annotations);
        if matches!(decoded, Decoded::Valid(_)) {
            view.annotations.remove(names::ANNOTATION_STATE);
        }
        view.shrink_to_fit();
        let m = pod.metadata;
        let mut owner_references = m.owner_references;
        owner_references.iter_mut().for_each(Vec::shrink_to_fit);
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            owner_references,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        };
        CachedPod {
            metadata,
            view,
            decoded,
        }
    }

    /// The view the in-place machine and the planner decide on.
    pub fn view(&self) -> &PodView {
        &self.view
    }

    /// The pod's state annotation, decoded.
    pub fn decoded(&self) -> &Decoded {
        &self.decoded
    }

    pub fn labels(&self) -> &SmallMap<String, String> {
        &self.view.labels
    }

    pub fn annotations(&self) -> &SmallMap<String, String> {
        &self.view.annotations
    }

    /// `status.phase`.
    pub(crate) fn phase(&self) -> Option<&str> {
        self.view.phase.as_deref()
    }
}

impl From<Pod> for CachedPod {
    fn from(pod: Pod) -> Self {
        CachedPod::new(pod)
    }
}

impl<'de> Deserialize<'de> for CachedPod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WatchedPod::deserialize(d).map(|w| {
            CachedPod::new(Pod {
                metadata: w.metadata,
                spec: w.spec,
                status: w.status,
            })
        })
    }
}

/// A pod as the watch delivers it, read without its `managedFields` (the cache drops them;
/// [`metadata_without_managed_fields`]).
#[derive(Deserialize)]
struct WatchedPod {
    #[serde(default, deserialize_with = "metadata_without_managed_fields")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<PodSpec>,
    #[serde(default)]
    status: Option<PodStatus>,
}

impl Resource for CachedPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::State;
    use crate::names;
    use serde_json::json;

    fn pod_json() -> serde_json::Value {
        let mut ready = inplace::Record::start("gd-abc", "2026-01-01T00:00:00Z".parse().unwrap());
        ready.state = State::Ready;
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "gd-x7k2p", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                "labels": {"app": "game", names::LABEL_REVISION: "gd-abc"},
                "annotations": {names::ANNOTATION_STATE: inplace::encode(&ready)},
                "ownerReferences": [{"apiVersion": "tkex.tencent.com/v1alpha1",
                    "kind": "GameDeployment", "name": "gd", "uid": "g1", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                "finalizers": ["x"]
            },
            "spec": {"containers": [{"name": "python", "image": "python:3.9",
                "env": [{"name": "A", "value": "b"}]}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        })
    }

    #[test]
    fn deserializing_a_pod_derives_the_view_and_record_and_keeps_identity_only() {
        let cached: CachedPod = serde_json::from_value(pod_json()).unwrap();
        let pod: Pod = serde_json::from_value(pod_json()).unwrap();
        // The view, but for the state annotation, which is kept decoded only.
        let mut view = PodView::from_pod(&pod);
        let raw = view.annotations.remove(names::ANNOTATION_STATE);
        assert!(raw.is_some(), "the pod has a state annotation");
        assert_eq!(cached.view(), &view);
        assert!(
            matches!(cached.decoded(), Decoded::Valid(r) if r.state == State::Ready),
            "{:?}",
            cached.decoded()
        );
        let meta = cached.meta();
        assert_eq!(meta.name.as_deref(), Some("gd-x7k2p"));
        assert_eq!(meta.uid.as_deref(), Some("u1"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.owner_references.as_ref().map(Vec::len), Some(1));
        // One copy of labels and annotations (in the view), no managedFields, no finalizers.
        assert_eq!(
            (&meta.labels, &meta.annotations, &meta.managed_fields),
            (&None, &None, &None)
        );
        assert_eq!(meta.finalizers, None);
        assert_eq!(cached.labels().get("app").unwrap(), "game");
        assert_eq!(cached.phase(), Some("Running"));
    }

    /// Read without its managedFields, a pod is cached as it was when read whole: the same
    /// identity, view and record, whatever the managedFields hold.
    #[test]
    fn a_pod_read_without_managed_fields_is_cached_as_one_read_whole() {
        let mut j = pod_json();
        j["metadata"]["managedFields"] = json!([{"manager": "kubelet", "operation": "Update",
            "apiVersion": "v1", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "subresource": "status", "fieldsV1": {"f:status": {"f:conditions": {
                "k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}}}, "f:phase": {}}}}]);
        j["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        j["metadata"]["generateName"] = json!("gd-");
        let text = j.to_string();
        let read_whole = CachedPod::new(serde_json::from_str::<Pod>(&text).unwrap());
        let cached: CachedPod = serde_json::from_str(&text).unwrap();
        assert_eq!(cached, read_whole);
        // A field of an unexpected type still fails the pod, as it did read whole.
        j["metadata"]["labels"] = json!(["not", "a", "map"]);
        assert!(serde_json::from_str::<CachedPod>(&j.to_string()).is_err());
    }

    /// Decoded from text, as the watch decodes it (a decoded `Value` would size every vector
    /// exactly), the pod has room for four owner references and four entries in each map the
    /// view copies; the cache keeps none of that room.
    #[test]
    fn a_cached_pod_keeps_no_spare_capacity() {
        fn spare<K, V>(map: SmallMap<K, V>) -> usize {
            let pairs = map.into_tuple_vec();
            pairs.capacity() - pairs.len()
        }
        let mut j = pod_json();
        j["metadata"]["annotations"]["note"] = json!("kept");
        j["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "500m"}});
        j["status"]["containerStatuses"] = json!([{"name": "python", "image": "python:3.9",
            "imageID": "sha256:a", "restartCount": 0, "ready": true}]);
        let CachedPod { metadata, view, .. } = serde_json::from_str(&j.to_string()).unwrap();
        let refs = metadata.owner_references.unwrap();
        assert_eq!((refs.len(), refs.capacity()), (1, 1));
        let lens = [
            view.labels.len(),
            view.annotations.len(),
            view.spec_images.len(),
            view.spec_resources.len(),
            view.containers.len(),
        ];
        assert_eq!(lens, [2, 1, 1, 1, 1], "every map holds what the pod has");
        let spare = [
            spare(view.labels),
            spare(view.annotations),
            spare(view.spec_images),
            spare(view.spec_resources),
            spare(view.containers),
        ];
        assert_eq!(spare, [0; 5]);
    }

    #[test]
    fn it_is_a_pod_to_the_api() {
        assert_eq!(CachedPod::kind(&()), "Pod");
        assert_eq!(CachedPod::api_version(&()), "v1");
        assert_eq!(CachedPod::plural(&()), "pods");
        assert_eq!(
            CachedPod::url_path(&(), Some("games")),
            "/api/v1/namespaces/games/pods"
        );
    }

    #[test]
    fn a_corrupt_annotation_is_a_corrupt_record_not_an_error() {
        let mut j = pod_json();
        j["metadata"]["annotations"][names::ANNOTATION_STATE] = json!("{not json");
        let cached: CachedPod = serde_json::from_value(j).unwrap();
        assert!(matches!(cached.decoded(), Decoded::Corrupt { .. }));
        // Kept as it came, for what reports it.
        let raw = cached.annotations().get(names::ANNOTATION_STATE);
        assert_eq!(raw.map(String::as_str), Some("{not json"));
    }
}
