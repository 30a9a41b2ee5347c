use super::*;
use crate::report::HistoryEntry;
use crate::settle::pod_busy;
use gamedeploy_core::inplace::{self, State};
use serde_json::{Value, json};

/// A pod as the API server stores it, with much that neither the history nor the settle
/// check reads.
fn stored() -> Value {
    let mut record = inplace::Record::start("gd-1", "2026-01-01T00:00:00Z".parse().unwrap());
    record.state = State::Unready;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "gd-abcde", "namespace": "default", "uid": "u1", "resourceVersion": "9",
            "generation": 3, "deletionTimestamp": "2026-01-01T00:01:00Z",
            "labels": {"app": "x", (names::LABEL_REVISION): "gd-2", "z": "last"},
            "annotations": {"a": "b", (names::ANNOTATION_STATE): inplace::encode(&record)},
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}}],
        },
        "spec": {
            "nodeName": "sim-node",
            "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": [
                {"name": "python", "image": "python:latest", "command": ["run"],
                 "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                 "resizePolicy": [{"resourceName": "memory",
                     "restartPolicy": "RestartContainer"}]},
                {"name": "side", "image": "envoy:1"}],
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.1",
            "conditions": [
                {"type": "Ready", "status": "True",
                 "lastTransitionTime": "2026-01-01T00:00:30Z"},
                {"type": "InPlaceUpdateReady", "status": "False", "reason": "x"}],
            "containerStatuses": [{"name": "python", "image": "python:3.9", "imageID": "d",
                "ready": true, "restartCount": 2}],
        },
    })
}

fn history(pod: &Pod) -> HistoryEntry {
    HistoryEntry::from_pod(1.5, "kubelet", pod, false)
}

/// A history entry from the head is the entry from the whole pod, whatever parts are there.
#[test]
fn history_heads_record_what_whole_pods_record() {
    let mut variants = vec![stored()];
    for (part, field) in [
        ("metadata", "labels"),
        ("metadata", "deletionTimestamp"),
        ("spec", "containers"),
        ("status", "conditions"),
        ("status", "containerStatuses"),
    ] {
        for null in [true, false] {
            let mut v = stored();
            if null {
                v[part][field] = Value::Null;
            } else {
                v[part].as_object_mut().unwrap().remove(field);
            }
            variants.push(v);
        }
    }
    for part in ["metadata", "spec", "status"] {
        let mut v = stored();
        v[part] = Value::Null;
        variants.push(v);
    }
    for v in variants {
        let whole: Pod = Pod::deserialize(&v).unwrap();
        let head = HistoryHead::deserialize(&v).unwrap().into_pod();
        assert_eq!(history(&head), history(&whole), "{v}");
    }
    let entry = history(&HistoryHead::deserialize(&stored()).unwrap().into_pod());
    assert_eq!(entry.revision.as_deref(), Some("gd-2"));
    assert_eq!(entry.restart_counts["python"], 2);
    assert!(entry.terminating && entry.ready);
    assert_eq!(entry.resources["python"].restart_on_resize, ["memory"]);
}

/// The head keeps the revision label and nothing else of the pod's labels and annotations.
#[test]
fn history_heads_keep_only_the_revision_label() {
    let head = HistoryHead::deserialize(&stored()).unwrap().into_pod();
    assert_eq!(
        head.metadata.labels,
        Some(BTreeMap::from([(
            names::LABEL_REVISION.into(),
            "gd-2".into()
        )]))
    );
    assert_eq!(head.metadata.annotations, None);
    assert_eq!(head.metadata.managed_fields, None);
}

/// The settle check reads the head as it reads the whole pod: terminating, mid-update, or
/// neither, under the state annotation or the Go original's.
#[test]
fn settle_heads_are_busy_when_whole_pods_are() {
    let mut ready = inplace::Record::start("gd-1", "2026-01-01T00:00:00Z".parse().unwrap());
    ready.state = State::Ready;
    let annotated = |annotations: Value, terminating: bool| {
        let mut v = stored();
        v["metadata"]["annotations"] = annotations;
        if !terminating {
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("deletionTimestamp");
        }
        v
    };
    let cases = [
        (stored(), true),
        (
            annotated(
                json!({(names::ANNOTATION_STATE): inplace::encode(&ready)}),
                false,
            ),
            false,
        ),
        (
            annotated(
                json!({(names::ANNOTATION_STATE): inplace::encode(&ready)}),
                true,
            ),
            true,
        ),
        (annotated(json!({"other": "x"}), false), false),
        (annotated(Value::Null, false), false),
        (
            annotated(json!({(names::ANNOTATION_STATE): "not json"}), false),
            false,
        ),
        (
            annotated(
                json!({(names::ANNOTATION_LEGACY_STATE): "{\"revision\":\"r\",\"updateTimestamp\":\"2026-01-01T00:00:00Z\"}",
                       (names::ANNOTATION_LEGACY_GRACE): "{}"}),
                false,
            ),
            true,
        ),
    ];
    for (v, busy) in cases {
        let whole: Pod = Pod::deserialize(&v).unwrap();
        let head = SettleHead::deserialize(&v).unwrap().into_pod();
        assert_eq!((pod_busy(&head), pod_busy(&whole)), (busy, busy), "{v}");
    }
}

/// Of a label or annotation map only the entries asked for are kept; `null` and absent read
/// as no map, as `ObjectMeta` reads them.
#[test]
fn kept_entries_skip_the_rest() {
    #[derive(Deserialize)]
    struct M {
        #[serde(default, deserialize_with = "revision_label")]
        labels: Option<BTreeMap<String, String>>,
    }
    let read = |v: Value| serde_json::from_str::<M>(&v.to_string()).unwrap().labels;
    assert_eq!(read(json!({})), None);
    assert_eq!(read(json!({"labels": null})), None);
    assert_eq!(read(json!({"labels": {"a": "b"}})), Some(BTreeMap::new()));
    assert_eq!(
        read(json!({"labels": {"a": {"nested": [1]}, (names::LABEL_REVISION): "r"}})),
        Some(BTreeMap::from([(names::LABEL_REVISION.into(), "r".into())]))
    );
}
