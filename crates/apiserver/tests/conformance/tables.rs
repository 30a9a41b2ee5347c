//! Other representations kubectl and kube ask for: `as=Table` and metadata-only objects.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, WatchEvent, WatchParams};
use serde_json::{Value, json};

/// What kubectl sends to get a table.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

#[tokio::test]
async fn table_output_uses_printer_columns() {
    let (env, api) = widget_env("table").await;
    create(&api, &widget("w", json!({"image": "a", "replicas": 4}))).await;
    let v = get_as(
        &env.client,
        &format!("/apis/{GROUP}/v1/namespaces/{}/widgets", env.ns),
        TABLE,
    )
    .await;
    assert_eq!(v["kind"], "Table");
    let cols: Vec<&str> = names_in(&v["columnDefinitions"]);
    assert_eq!(
        cols,
        vec!["Name", "Desired", "Ready"],
        "printer columns replace the default Age column"
    );
    assert_eq!(v["rows"][0]["cells"][0], "w");
    assert_eq!(v["rows"][0]["cells"][1], 4);
    assert_eq!(
        v["rows"][0]["cells"][2],
        Value::Null,
        "missing values are null cells"
    );
    // Pods get kubectl's columns, computed server-side.
    let pods: Api<Pod> = env.api();
    create(&pods, &pod("p", "nginx")).await;
    send_status_patch(
        &pods,
        "p",
        Patch::Merge(
            json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "image": "nginx", "imageID": "", "ready": false, "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        ),
    )
    .await
    .unwrap();
    let v = get_as(
        &env.client,
        &format!("/api/v1/namespaces/{}/pods", env.ns),
        TABLE,
    )
    .await;
    let cols: Vec<&str> = names_in(&v["columnDefinitions"]);
    assert_eq!(&cols[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
    let cells = &v["rows"][0]["cells"];
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str(), cells[3].as_str()),
        (Some("0/1"), Some("CrashLoopBackOff"), Some("2"))
    );
    env.cleanup().await;
}

#[tokio::test]
async fn metadata_only_requests() {
    use kube::core::PartialObjectMeta;
    let env = env("metadata").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("a")).await;
    let meta: Api<PartialObjectMeta<Lease>> = env.api();
    let one = meta.get("a").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("a"));
    let list = meta.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let raw_list = get_as(
        &env.client,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", env.ns),
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(raw_list["kind"], "PartialObjectMetadataList");
    assert!(raw_list["items"][0].get("spec").is_none());
    let mut w = meta
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    env.cleanup().await;
}
