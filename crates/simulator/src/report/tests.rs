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
