//! Garbage collection: owner references (background, foreground, orphan) and namespace
//! finalization.

use std::time::Duration;

use crate::support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use kube::core::DynamicObject;
use serde_json::json;

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let (env, api) = widget_env("gc").await;
    let leases: Api<Lease> = env.api();
    let child = |name: &str, owner: &DynamicObject| -> Lease {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "name": owner.metadata.name,
            "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true}]}, "spec": {}})).unwrap()
    };
    let wait_gone = |name: &'static str| {
        let leases = leases.clone();
        wait_until(WAIT, format!("{name} was never collected"), move || {
            let leases = leases.clone();
            async move { leases.get_opt(name).await.unwrap().is_none() }
        })
    };
    // A dependent whose owner does not exist is collected.
    let ghost = widget("ghost", json!({"image": "a"}));
    let mut ghost = ghost;
    ghost.metadata.uid = Some("6a1f2a4e-0000-4000-8000-000000000000".into());
    create(&leases, &child("orphaned-at-birth", &ghost)).await;
    wait_gone("orphaned-at-birth").await;
    // Background.
    let w = create(&api, &widget("bg", json!({"image": "a"}))).await;
    create(&leases, &child("bg-child", &w)).await;
    api.delete("bg", &DeleteParams::background()).await.unwrap();
    wait_gone("bg-child").await;
    // Foreground: owner waits for its dependents.
    let w = create(&api, &widget("fg", json!({"image": "a"}))).await;
    create(&leases, &child("fg-child", &w)).await;
    api.delete("fg", &DeleteParams::foreground()).await.unwrap();
    wait_gone("fg-child").await;
    wait_until(WAIT, "foreground owner never removed", || async {
        api.get_opt("fg").await.unwrap().is_none()
    })
    .await;
    // Orphan: dependents stay, without the owner reference.
    let w = create(&api, &widget("or", json!({"image": "a"}))).await;
    create(&leases, &child("or-child", &w)).await;
    api.delete("or", &DeleteParams::orphan()).await.unwrap();
    wait_until(WAIT, "orphaning never finished", || async {
        let c = leases.get("or-child").await.unwrap();
        c.metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty())
            && api.get_opt("or").await.unwrap().is_none()
    })
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn namespace_deletion_removes_content() {
    let env = env("nsdel").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("a")).await;
    let nss: Api<Namespace> = Api::all(env.client.clone());
    nss.delete(&env.ns, &DeleteParams::default()).await.unwrap();
    wait_until(
        Duration::from_secs(120),
        "namespace never finalized",
        || async { nss.get_opt(&env.ns).await.unwrap().is_none() },
    )
    .await;
    assert!(leases.get_opt("a").await.unwrap().is_none());
}
