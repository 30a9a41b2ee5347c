//! `/status` and `/scale`: what each write may change, and when `generation` moves.

use crate::support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn custom_resource_generation_and_status_split() {
    let (env, api) = widget_env("generation").await;
    let w = create(&api, &widget("w", json!({"image": "game:1"}))).await;
    assert_eq!(w.metadata.generation, Some(1));
    // Metadata-only write: no bump.
    let w = send_patch(
        &api,
        "w",
        Patch::Merge(json!({"metadata": {"labels": {"x": "y"}, "finalizers": ["test/f"]}})),
    )
    .await
    .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    // Status through the main resource is ignored (status subresource enabled).
    let w = send_patch(&api, "w", Patch::Merge(json!({"status": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(w.data.get("status"), None);
    // Status write: no bump, spec changes ignored.
    let w = send_status_patch(&api, "w", Patch::Merge(json!({"spec": {"image": "ignored:1"}, "status": {"replicas": 3}, "metadata": {"labels": {"via": "status"}}})))
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    assert_eq!(w.data["status"]["replicas"], 3);
    assert_eq!(w.data["spec"]["image"], "game:1");
    assert!(
        w.metadata.labels.as_ref().unwrap().get("via").is_none(),
        "CR /status keeps only status"
    );
    // Spec write: bump.
    let w = send_patch(
        &api,
        "w",
        Patch::Merge(json!({"spec": {"image": "game:2"}})),
    )
    .await
    .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    // Deletion with a finalizer: deletionTimestamp set, generation bumped, object kept.
    api.delete("w", &DeleteParams::default()).await.unwrap();
    let w = api.get("w").await.unwrap();
    assert!(w.metadata.deletion_timestamp.is_some());
    assert_eq!(w.metadata.generation, Some(3));
    // No new finalizers while deleting.
    let e = api_err(
        send_patch(
            &api,
            "w",
            Patch::Merge(json!({"metadata": {"finalizers": ["test/f", "test/g"]}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    // Removing the last finalizer removes the object.
    send_patch(
        &api,
        "w",
        Patch::Json::<()>(
            serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "test/f"},
        {"op": "remove", "path": "/metadata/finalizers/0"}]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(api_err(api.get("w").await).code, 404);
    // Pods: generation moves on spec (image) changes only.
    let pods: Api<Pod> = env.api();
    create(&pods, &pod("p", "nginx:1")).await;
    let p = send_patch(
        &pods,
        "p",
        Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(1));
    let p = send_patch(
        &pods,
        "p",
        Patch::Strategic(json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    let p = send_status_patch(
        &pods,
        "p",
        Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    env.cleanup().await;
}

#[tokio::test]
async fn pod_status_subresource_keeps_metadata_but_not_spec() {
    // podStatusStrategy.PrepareForUpdate resets spec, deletionTimestamp and ownerReferences
    // only: labels and annotations written through /status are kept.
    let env = env("podstatus").await;
    let pods: Api<Pod> = env.api();
    create(&pods, &pod("p", "nginx:1")).await;
    let p = send_status_patch(
        &pods,
        "p",
        Patch::Merge(json!({
            "metadata": {"annotations": {"state": "updated"}, "labels": {"x": "1"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:2"}]},
            "status": {"conditions": [{"type": "InPlaceUpdateReady", "status": "True"}]}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.annotations.as_ref().unwrap()["state"], "updated");
    assert_eq!(p.metadata.labels.as_ref().unwrap()["x"], "1");
    assert_eq!(
        p.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("nginx:1")
    );
    assert_eq!(
        p.status.as_ref().unwrap().conditions.as_ref().unwrap()[0].type_,
        "InPlaceUpdateReady"
    );
    assert_eq!(
        p.status.as_ref().unwrap().qos_class.as_deref(),
        Some("BestEffort"),
        "qosClass kept"
    );
    // Main resource writes ignore status.
    let p = send_patch(
        &pods,
        "p",
        Patch::Merge(json!({"status": {"phase": "Failed"}})),
    )
    .await
    .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    env.cleanup().await;
}

#[tokio::test]
async fn scale_subresource() {
    let (env, api) = widget_env("scale").await;
    create(
        &api,
        &widget("w", json!({"image": "game:1", "replicas": 3})),
    )
    .await;
    send_status_patch(
        &api,
        "w",
        Patch::Merge(json!({"status": {"replicas": 2, "selector": "app=w"}})),
    )
    .await
    .unwrap();
    let s = api.get_scale("w").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(3));
    let st = s.status.unwrap();
    assert_eq!(st.replicas, 2);
    assert_eq!(st.selector.as_deref(), Some("app=w"));
    let s = api
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    let w = api.get("w").await.unwrap();
    assert_eq!(w.data["spec"]["replicas"], 5);
    assert_eq!(w.metadata.generation, Some(2));
    env.cleanup().await;
}
