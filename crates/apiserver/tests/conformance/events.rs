//! Events: core `v1` and `events.k8s.io/v1` share storage, and kube-runtime's `Recorder` works.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::json;

#[tokio::test]
async fn events_in_both_groups() {
    let env = env("events").await;
    let core: Api<k8s_openapi::api::core::v1::Event> = env.api();
    let e = create(&core, &serde_json::from_value(json!({
            "metadata": {"generateName": "ev-"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": env.ns},
            "reason": "Started", "message": "hi", "type": "Normal"})).unwrap()).await;
    assert!(e.metadata.name.unwrap().starts_with("ev-"));
    let got = core
        .list(&ListParams::default().fields("involvedObject.name=p,reason=Started"))
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1);
    let new: Api<k8s_openapi::api::events::v1::Event> = env.api();
    create(&new, &serde_json::from_value(json!({
        "metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "gamedeploy",
        "reportingInstance": "x", "action": "Update", "reason": "Updated", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": env.ns}})).unwrap()).await;
    assert!(new.get("e2").await.is_ok());
    // One storage, two versions: each event is visible through both APIs.
    let as_core = core.get("e2").await.unwrap();
    assert_eq!(as_core.involved_object.name.as_deref(), Some("p"));
    assert_eq!(as_core.reporting_component.as_deref(), Some("gamedeploy"));
    let listed = new
        .list(&ListParams::default().fields("regarding.name=p"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2, "both events through events.k8s.io");
    assert!(listed.items.iter().any(|e| e.note.as_deref() == Some("hi")));
    let mut w = new
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut seen = 0;
    while seen < 2 {
        match tokio::time::timeout(WAIT, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(e) => {
                assert!(e.regarding.is_some(), "watch objects are converted");
                seen += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    env.cleanup().await;
}

#[tokio::test]
async fn kube_event_recorder_publishes_and_updates_series() {
    use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
    let env = env("recorder").await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    let rec = Recorder::new(
        env.client.clone(),
        Reporter {
            controller: "gamedeploy".into(),
            instance: Some("test".into()),
        },
    );
    let ev = KEvent {
        type_: EventType::Normal,
        reason: "Updated".into(),
        note: Some("image patched".into()),
        action: "Patch".into(),
        secondary: None,
    };
    let oref = kube::Resource::object_ref(&l, &());
    rec.publish(&ev, &oref).await.unwrap();
    rec.publish(&ev, &oref).await.unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> = env.api();
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items.len(),
        1,
        "the repeat updates the series of the same event"
    );
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Updated"));
    assert_eq!(e.regarding.as_ref().unwrap().name.as_deref(), Some("a"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    env.cleanup().await;
}

/// `ValidateEventCreate` for `events.k8s.io/v1` (`pkg/apis/core/validation/events.go`):
/// `eventTime` is required, and with it `reportingController` (a qualified name),
/// `reportingInstance`, `action` and `reason`; `note` is at most 1 KiB. Core `v1` creates keep
/// the legacy rules only.
#[tokio::test]
async fn events_v1_creates_and_updates_are_validated() {
    let env = env("events-valid").await;
    let uri = format!("/apis/events.k8s.io/v1/namespaces/{}/events", env.ns);
    let regarding = json!({"kind": "Pod", "name": "p", "namespace": env.ns});
    let post = |body: serde_json::Value| {
        let (client, uri) = (env.client.clone(), uri.clone());
        async move { post_json(&client, &uri, body.to_string().as_bytes()).await }
    };

    // No eventTime: only what applies without one (the legacy rules of old events).
    let (code, v) = post(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "no-time"}, "type": "Normal", "regarding": regarding}))
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    assert_eq!(
        v["message"],
        "Event.events.k8s.io \"no-time\" is invalid: eventTime: Required value"
    );
    assert_eq!(v["details"]["causes"][0]["field"], "eventTime");

    // An eventTime: the reporting fields are required, the note limited.
    let (code, v) = post(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "bare"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "type": "Sideways", "regarding": regarding, "note": "x".repeat(1025)}))
    .await;
    assert_eq!(code, 422, "{v}");
    let fields: Vec<(&str, &str)> = v["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["field"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    for want in [
        ("reportingController", "FieldValueRequired"),
        ("reportingInstance", "FieldValueRequired"),
        ("action", "FieldValueRequired"),
        ("reason", "FieldValueRequired"),
        ("message", "FieldValueInvalid"),
        ("type", "FieldValueInvalid"),
    ] {
        assert!(fields.contains(&want), "{want:?} in {fields:?}");
    }
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("message: Invalid value: \"\": can have at most 1024 characters"),
        "{msg}"
    );
    assert!(
        msg.contains("type: Invalid value: \"\": has invalid value: Sideways"),
        "{msg}"
    );

    // A valid one; then an update may not change its reason.
    let good = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "good"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
        "action": "Sync", "reason": "Synced", "type": "Normal", "regarding": regarding});
    let (code, v) = post(good.clone()).await;
    assert_eq!(code, 201, "{v}");
    let mut changed = v.clone();
    changed["reason"] = json!("Other");
    let (code, v) = raw(
        &env.client,
        "PUT",
        &format!("{uri}/good"),
        "application/json",
        changed.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["details"]["causes"][0]["field"], "reason");
    assert_eq!(
        v["details"]["causes"][0]["message"],
        "Invalid value: \"Other\": field is immutable"
    );
    // A bad reportingController name.
    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("bad-ctl");
    bad["reportingController"] = json!("not a name");
    let (code, v) = post(bad).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["details"]["causes"][0]["field"], "reportingController");

    // Through core v1, an event without eventTime is fine.
    let core_uri = format!("/api/v1/namespaces/{}/events", env.ns);
    let (code, v) = post_json(
        &env.client,
        &core_uri,
        json!({"metadata": {"name": "old-style"}, "involvedObject": regarding, "reason": "R"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    env.cleanup().await;
}

/// managedFields name the API version the client wrote in, with that version's field names.
#[tokio::test]
async fn events_v1_writes_record_their_version_in_managed_fields() {
    let env = env("events-managed").await;
    let uri = format!("/apis/events.k8s.io/v1/namespaces/{}/events", env.ns);
    let body = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "ctl", "reportingInstance": "ctl-1", "note": "hello",
        "action": "Sync", "reason": "Synced", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": env.ns}});
    let (code, v) = post_json(
        &env.client,
        &format!("{uri}?fieldManager=tester"),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let check = |v: &serde_json::Value| {
        let mf = &v["metadata"]["managedFields"];
        let entry = mf
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "tester")
            .unwrap_or_else(|| panic!("{mf}"));
        assert_eq!(entry["apiVersion"], "events.k8s.io/v1", "{mf}");
        assert!(entry["fieldsV1"].get("f:note").is_some(), "{mf}");
        assert!(entry["fieldsV1"].get("f:regarding").is_some(), "{mf}");
        assert!(entry["fieldsV1"].get("f:message").is_none(), "{mf}");
    };
    check(&v);
    // The same entries through core v1 (managedFields are not converted).
    let core: Api<k8s_openapi::api::core::v1::Event> = env.api();
    let got = serde_json::to_value(core.get("e").await.unwrap()).unwrap();
    check(&got);
    // A later events.k8s.io write by the same manager keeps one entry of its fields.
    let mut upd = v.clone();
    upd["metadata"]["labels"] = json!({"x": "y"});
    let (code, v) = raw(
        &env.client,
        "PUT",
        &format!("{uri}/e?fieldManager=tester"),
        "application/json",
        upd.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    check(&v);
    let entry = v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "tester")
        .unwrap()
        .clone();
    assert!(
        entry["fieldsV1"]["f:metadata"].get("f:labels").is_some(),
        "{entry}"
    );
    env.cleanup().await;
}
