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
