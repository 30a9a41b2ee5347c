//! Patch types: JSON merge, RFC 6902 JSON patch, strategic merge (including what controllers send)
//! and server-side apply.

use crate::support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn patch_types() {
    let env = env("patch").await;
    let pods: Api<Pod> = env.api();
    let mut p = pod("p", "nginx:1");
    p.spec
        .as_mut()
        .unwrap()
        .containers
        .push(serde_json::from_value(json!({"name": "side", "image": "busybox:1"})).unwrap());
    create(&pods, &p).await;
    // Strategic merge: containers merge by name.
    let p = send_patch(
        &pods,
        "p",
        Patch::Strategic(json!({"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}})),
    )
    .await
    .unwrap();
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("nginx:1"));
    assert_eq!(cs[1].image.as_deref(), Some("busybox:2"));
    // Merge patch replaces lists.
    let e = api_err(
        send_patch(
            &pods,
            "p",
            Patch::Merge(json!({"spec": {"containers": [{"name": "side", "image": "busybox:3"}]}})),
        )
        .await,
    );
    assert_eq!(e.code, 422, "pod spec may not drop a container");
    // JSON patch with a failing test → 422.
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "wrong"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:9"}]))
    .unwrap();
    let e = api_err(send_patch(&pods, "p", Patch::Json::<()>(jp)).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    // kube-apiserver's patch handler answers a failed JSON patch with
    // `NewGenericServerResponse(422, ..., isUnexpectedResponse=false)`: its generic message and
    // no causes; the patch library's own error text is not sent.
    assert_eq!(
        e.message,
        "the server rejected our request due to an error in our request"
    );
    assert!(
        e.details.as_ref().is_none_or(|d| d.causes.is_empty()),
        "{:?}",
        e.details
    );
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "nginx:1"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:9"}]))
    .unwrap();
    let p = send_patch(&pods, "p", Patch::Json::<()>(jp)).await.unwrap();
    assert_eq!(
        p.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:9")
    );
    // Strategic merge on conditions merges by type, via /status.
    send_status_patch(
        &pods,
        "p",
        Patch::Strategic(json!({"status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "InPlaceUpdateReady", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let p = send_status_patch(
        &pods,
        "p",
        Patch::Strategic(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let conds = p.status.unwrap().conditions.unwrap();
    let ready: Vec<_> = conds
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert!(
        ready.contains(&("Ready", "True")) && ready.contains(&("InPlaceUpdateReady", "True")),
        "{ready:?}"
    );
    // Strategic merge is not available for custom resources.
    install_widgets(&env.client).await;
    let api = widgets(&env);
    create(&api, &widget("w", json!({"image": "game:1"}))).await;
    let e = api_err(
        send_patch(
            &api,
            "w",
            Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await,
    );
    assert_eq!(e.code, 415);
    env.cleanup().await;
}

#[tokio::test]
async fn server_side_apply() {
    let env = env("apply").await;
    let leases: Api<Lease> = env.api();
    let cfg = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "a", "labels": {"owner": "one"}}, "spec": {"holderIdentity": "one", "leaseDurationSeconds": 10}});
    let l = leases
        .patch("a", &PatchParams::apply("mgr-one"), &Patch::Apply(&cfg))
        .await
        .unwrap();
    assert_eq!(
        l.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("one")
    );
    let mf = l.metadata.managed_fields.clone().unwrap();
    assert!(mf.iter().any(
        |m| m.manager.as_deref() == Some("mgr-one") && m.operation.as_deref() == Some("Apply")
    ));
    // Another manager changing an owned field conflicts unless forced.
    let cfg2 = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "a"}, "spec": {"holderIdentity": "two"}});
    let e = api_err(
        leases
            .patch("a", &PatchParams::apply("mgr-two"), &Patch::Apply(&cfg2))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let l = leases
        .patch(
            "a",
            &PatchParams::apply("mgr-two").force(),
            &Patch::Apply(&cfg2),
        )
        .await
        .unwrap();
    assert_eq!(
        l.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("two")
    );
    assert_eq!(
        l.spec.as_ref().unwrap().lease_duration_seconds,
        Some(10),
        "other fields kept"
    );
    // The first manager drops a field it alone owns: it is removed.
    let cfg3 = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "a", "labels": {"owner": "one"}}, "spec": {}});
    let l = leases
        .patch("a", &PatchParams::apply("mgr-one"), &Patch::Apply(&cfg3))
        .await
        .unwrap();
    assert_eq!(l.spec.as_ref().unwrap().lease_duration_seconds, None);
    assert_eq!(
        l.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("two")
    );
    // Apply without a fieldManager is rejected.
    let (code, _) = raw(
        &env.client,
        "PATCH",
        &format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases/a",
            env.ns
        ),
        "application/apply-patch+yaml",
        cfg.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 422);
    // Apply status on a custom resource.
    install_widgets(&env.client).await;
    let api = widgets(&env);
    let w = json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": "w"}, "spec": {"image": "game:1", "replicas": 2}});
    let created = api
        .patch("w", &PatchParams::apply("op"), &Patch::Apply(&w))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["replicas"], 2);
    assert_eq!(
        created.data["spec"]["mode"], "InPlace",
        "defaults apply on create through apply"
    );
    let st = json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": "w"}, "status": {"replicas": 2}});
    let w = api
        .patch_status("w", &PatchParams::apply("op").force(), &Patch::Apply(&st))
        .await
        .unwrap();
    assert_eq!(w.data["status"]["replicas"], 2);
    assert_eq!(w.metadata.generation, Some(1));
    env.cleanup().await;
}

/// What a ReplicaSet's `PodControllerRefManager` sends: adoption adds the controller reference
/// and releasing deletes it by uid (strategic merge, merge key `uid`); the pod's uid in the
/// patch makes sure a pod recreated under the same name is neither adopted nor released.
#[tokio::test]
async fn adoption_and_release_patches_carry_the_pod_uid() {
    let env = env("adopt").await;
    install_widgets(&env.client).await;
    let owner = create(&widgets(&env), &widget("owner", json!({"image": "a"}))).await;
    let pods: Api<Pod> = env.api();
    let pod = create(&pods, &pod("orphan", "nginx:1.25")).await;
    let owner_uid = owner.metadata.uid.clone().unwrap();
    let adopt = |pod_uid: &str| {
        json!({"metadata": {"uid": pod_uid, "ownerReferences": [{
            "apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "name": "owner",
            "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]}})
    };
    let pp = PatchParams::default();
    let stale = pods
        .patch("orphan", &pp, &Patch::Strategic(adopt("not-the-pods-uid")))
        .await;
    let status = api_err(stale);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("metadata.uid"),
        "{}",
        status.message
    );

    let pod_uid = pod.metadata.uid.clone().unwrap();
    let adopted = pods
        .patch("orphan", &pp, &Patch::Strategic(adopt(&pod_uid)))
        .await
        .unwrap();
    let refs = adopted.metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].uid.as_str(), refs[0].controller),
        (owner_uid.as_str(), Some(true))
    );

    let release = json!({"metadata": {"uid": pod_uid,
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}]}});
    let released = pods
        .patch("orphan", &pp, &Patch::Strategic(release))
        .await
        .unwrap();
    assert!(
        released
            .metadata
            .owner_references
            .is_none_or(|r| r.is_empty()),
        "the controller reference is gone"
    );
    env.cleanup().await;
}

/// The patch and update handlers check the result's name against the URL (`checkName`): a JSON
/// patch that removes `/metadata` leaves no name and is refused, so it cannot drop every label;
/// a PUT without a name is refused the same way.
#[tokio::test]
async fn a_patch_or_update_that_loses_the_name_is_refused() {
    let env = env("lose-name").await;
    let base = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let (code, _) = post_json(
        &env.client,
        &base,
        br#"{"metadata":{"name":"c","labels":{"keep":"me"}},"data":{"a":"b"}}"#,
    )
    .await;
    assert_eq!(code, 201);
    let (code, v) = raw(
        &env.client,
        "PATCH",
        &format!("{base}/c"),
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/metadata"}]"#,
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    assert_eq!(
        v["message"],
        "the name of the object (c based on URL) was undeterminable: name must be provided"
    );
    let (code, v) = raw(
        &env.client,
        "PUT",
        &format!("{base}/c"),
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{},"data":{"a":"x"}}"#,
    )
    .await;
    assert_eq!(code, 400, "{v}");
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = env.api();
    let kept = cms.get("c").await.unwrap();
    assert_eq!(kept.metadata.labels.unwrap()["keep"], "me");
    assert_eq!(kept.data.unwrap()["a"], "b");
    env.cleanup().await;
}
