//! API-server conformance: behaviour the operator relies on, checked through a real
//! `kube::Client`. Runs against the embedded server by default; set
//! `GAMEDEPLOY_CONFORMANCE_KUBECONFIG=/path/to/kubeconfig` to run the same tests against a real
//! cluster (tests that need the embedded server's virtual time or fault hooks are skipped there).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::DynamicObject;
use kube::runtime::{Controller, controller::Action, watcher};
use serde_json::{Value, json};
use support::*;

/// A fresh namespace with the Widget CRD installed, and the Widget API in it.
async fn widget_env(test: &str) -> (Env, Api<DynamicObject>) {
    let env = env(test).await;
    install_widgets(&env.client).await;
    let api = widgets(&env);
    (env, api)
}

/// What kubectl sends to get a table.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

fn lease(name: &str) -> Lease {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "a"}}, "spec": {"holderIdentity": "x"}})).unwrap()
}

#[tokio::test]
async fn create_get_and_already_exists() {
    let env = env("create").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mut p = pod("", "nginx:1.25");
    p.metadata.name = None;
    p.metadata.generate_name = Some("web-".into());
    let created = pods.create(&PostParams::default(), &p).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("web-") && name.len() == 9,
        "generateName adds 5 chars: {name}"
    );
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(
        created.metadata.generation,
        Some(1),
        "pods track generation since 1.33"
    );
    let status = created.status.clone().unwrap();
    assert_eq!(
        status.phase.as_deref(),
        Some("Pending"),
        "create resets pod status"
    );
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    let spec = created.spec.clone().unwrap();
    assert_eq!(
        spec.termination_grace_period_seconds,
        Some(30),
        "pod defaults applied"
    );
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    let got = pods.get(&name).await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    let mut dup = pod(&name, "nginx");
    dup.metadata.namespace = None;
    let e = api_err(pods.create(&PostParams::default(), &dup).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    let e = api_err(pods.get("missing").await);
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "pods \"missing\" not found");
    let other: Api<Pod> = Api::namespaced(env.client.clone(), "no-such-namespace");
    let e = api_err(
        other
            .create(&PostParams::default(), &pod("x", "nginx"))
            .await,
    );
    assert_eq!(e.code, 404, "creating in a missing namespace");
    env.cleanup().await;
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let env = env("list").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    for (i, app) in ["a", "a", "b", "c", "a"].iter().enumerate() {
        let mut l = lease(&format!("l{i}"));
        l.metadata.labels = Some(BTreeMap::from([("app".to_string(), app.to_string())]));
        if i == 4 {
            l.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("canary".into(), "true".into());
        }
        leases.create(&PostParams::default(), &l).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<Lease>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|x| x.metadata.name.unwrap())
            .collect()
    };
    for (sel, want) in [
        ("app=a", vec!["l0", "l1", "l4"]),
        ("app==b", vec!["l2"]),
        ("app!=a", vec!["l2", "l3"]),
        ("app in (b,c)", vec!["l2", "l3"]),
        ("app notin (a)", vec!["l2", "l3"]),
        ("canary", vec!["l4"]),
        ("!canary,app=a", vec!["l0", "l1"]),
    ] {
        let got = names(
            leases
                .list(&ListParams::default().labels(sel))
                .await
                .unwrap(),
        );
        assert_eq!(got, want, "selector {sel}");
    }
    let got = names(
        leases
            .list(&ListParams::default().fields("metadata.name=l3"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["l3"]);
    let got = names(
        leases
            .list(&ListParams::default().fields("metadata.name!=l3"))
            .await
            .unwrap(),
    );
    assert_eq!(got.len(), 4);
    // Pagination.
    let first = leases.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let tok = first.metadata.continue_.clone().expect("continue token");
    assert!(first.metadata.resource_version.is_some());
    let second = leases
        .list(&ListParams::default().limit(2).continue_token(&tok))
        .await
        .unwrap();
    let third = leases
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    let mut all = names(first);
    all.extend(names(second));
    assert!(third.metadata.continue_.as_deref().unwrap_or("").is_empty());
    all.extend(names(third));
    assert_eq!(all, vec!["l0", "l1", "l2", "l3", "l4"]);
    // Pods: spec.nodeName and status.phase field selectors.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &pod("p1", "nginx"))
        .await
        .unwrap();
    let got = pods
        .list(&ListParams::default().fields("spec.nodeName=,status.phase=Pending"))
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1);
    let got = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert!(got.items.is_empty());
    env.cleanup().await;
}

#[tokio::test]
async fn stale_update_conflicts_and_rv_moves_globally() {
    let env = env("conflict").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let rv0: u64 = l
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    let mut l1 = l.clone();
    l1.spec.as_mut().unwrap().holder_identity = Some("y".into());
    let l1 = leases
        .replace("a", &PostParams::default(), &l1)
        .await
        .unwrap();
    let rv1: u64 = l1
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv1 > rv0);
    let mut stale = l.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("z".into());
    let e = api_err(leases.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("the object has been modified"),
        "{}",
        e.message
    );
    // A write that changes nothing keeps the resourceVersion.
    let same = leases
        .replace("a", &PostParams::default(), &l1)
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, l1.metadata.resource_version);
    // resourceVersion in a patch body is a precondition.
    let e = api_err(
        leases
            .patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"resourceVersion": rv0.to_string()}, "spec": {"holderIdentity": "q"}})))
            .await,
    );
    assert_eq!(e.code, 409);
    env.cleanup().await;
}

#[tokio::test]
async fn custom_resource_generation_and_status_split() {
    let (env, api) = widget_env("generation").await;
    let w = api
        .create(
            &PostParams::default(),
            &widget("w", json!({"image": "game:1"})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    // Metadata-only write: no bump.
    let w = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}, "finalizers": ["test/f"]}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    // Status through the main resource is ignored (status subresource enabled).
    let w = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(w.data.get("status"), None);
    // Status write: no bump, spec changes ignored.
    let w = api
        .patch_status("w", &PatchParams::default(), &Patch::Merge(json!({"spec": {"image": "ignored:1"}, "status": {"replicas": 3}, "metadata": {"labels": {"via": "status"}}})))
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
    let w = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "game:2"}})),
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
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["test/f", "test/g"]}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    // Removing the last finalizer removes the object.
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Json::<()>(
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
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &pod("p", "nginx:1"))
        .await
        .unwrap();
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(1));
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    let p = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    env.cleanup().await;
}

#[tokio::test]
async fn patch_types() {
    let env = env("patch").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mut p = pod("p", "nginx:1");
    p.spec
        .as_mut()
        .unwrap()
        .containers
        .push(serde_json::from_value(json!({"name": "side", "image": "busybox:1"})).unwrap());
    pods.create(&PostParams::default(), &p).await.unwrap();
    // Strategic merge: containers merge by name.
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}}),
            ),
        )
        .await
        .unwrap();
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("nginx:1"));
    assert_eq!(cs[1].image.as_deref(), Some("busybox:2"));
    // Merge patch replaces lists.
    let e = api_err(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"containers": [{"name": "side", "image": "busybox:3"}]}}),
            ),
        )
        .await,
    );
    assert_eq!(e.code, 422, "pod spec may not drop a container");
    // JSON patch with a failing test → 422.
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "wrong"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:9"}]))
    .unwrap();
    let e = api_err(
        pods.patch("p", &PatchParams::default(), &Patch::Json::<()>(jp))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/image", "value": "nginx:1"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:9"}]))
    .unwrap();
    let p = pods
        .patch("p", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(
        p.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:9")
    );
    // Strategic merge on conditions merges by type, via /status.
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Strategic(json!({"status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "InPlaceUpdateReady", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let p = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
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
    api.create(
        &PostParams::default(),
        &widget("w", json!({"image": "game:1"})),
    )
    .await
    .unwrap();
    let e = api_err(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await,
    );
    assert_eq!(e.code, 415);
    env.cleanup().await;
}

#[tokio::test]
async fn server_side_apply() {
    let env = env("apply").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
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

#[tokio::test]
async fn pod_status_subresource_keeps_metadata_but_not_spec() {
    // podStatusStrategy.PrepareForUpdate resets spec, deletionTimestamp and ownerReferences
    // only: labels and annotations written through /status are kept.
    let env = env("podstatus").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &pod("p", "nginx:1"))
        .await
        .unwrap();
    let p = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({
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
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    env.cleanup().await;
}

#[tokio::test]
async fn scale_subresource() {
    let (env, api) = widget_env("scale").await;
    api.create(
        &PostParams::default(),
        &widget("w", json!({"image": "game:1", "replicas": 3})),
    )
    .await
    .unwrap();
    api.patch_status(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"replicas": 2, "selector": "app=w"}})),
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

#[tokio::test]
async fn crd_defaulting_pruning_and_validation() {
    let (env, api) = widget_env("schema").await;
    let w = api
        .create(
            &PostParams::default(),
            &widget(
                "w",
                json!({"image": "game:1", "unknown": 1, "extra": {"kept": true}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(w.data["spec"]["replicas"], 1);
    assert_eq!(w.data["spec"]["mode"], "InPlace");
    assert_eq!(
        w.data["spec"]["strategy"]["partition"], 0,
        "nested default inside defaulted object"
    );
    assert_eq!(w.data["spec"]["strategy"]["maxUnavailable"], "25%");
    assert!(
        w.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        w.data["spec"]["extra"]["kept"], true,
        "preserve-unknown-fields"
    );
    let e = api_err(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"replicas": -1, "image": "UP", "mode": "X"})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let causes = e.details.as_ref().unwrap().causes.clone();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert!(
        fields.contains(&"spec.replicas")
            && fields.contains(&"spec.image")
            && fields.contains(&"spec.mode"),
        "{causes:?}"
    );
    assert!(
        e.message
            .starts_with(&format!("Widget.{GROUP} \"bad\" is invalid: [")),
        "{}",
        e.message
    );
    let e = api_err(
        api.create(&PostParams::default(), &widget("bad", json!({})))
            .await,
    );
    assert_eq!(e.details.unwrap().causes[0].field, "spec.image");
    // CEL rule.
    let e = api_err(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"image": "a", "replicas": 51})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("replicas must be at most 50"),
        "{}",
        e.message
    );
    // CEL transition rule (oldSelf).
    let e = api_err(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "Recreate"}})),
        )
        .await,
    );
    assert!(e.message.contains("mode is immutable"), "{}", e.message);
    // Type error.
    let e = api_err(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": "three"}})),
        )
        .await,
    );
    assert_eq!(e.details.unwrap().causes[0].reason, "FieldValueTypeInvalid");
    // PUT without resourceVersion is not allowed for custom resources.
    let mut w2 = api.get("w").await.unwrap();
    w2.metadata.resource_version = None;
    let e = api_err(api.replace("w", &PostParams::default(), &w2).await);
    assert_eq!(e.code, 422);
    env.cleanup().await;
}

#[tokio::test]
async fn pod_graceful_deletion() {
    let env = env("grace").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    // Unscheduled pods go at once.
    pods.create(&PostParams::default(), &pod("unscheduled", "nginx"))
        .await
        .unwrap();
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(pods.get("unscheduled").await).code, 404);
    // Scheduled pods wait for the kubelet's gracePeriodSeconds=0 delete.
    pods.create(&PostParams::default(), &pod("p", "nginx"))
        .await
        .unwrap();
    let (code, _) = raw(&env.client, "POST", &format!("/api/v1/namespaces/{}/pods/p/binding", env.ns), "application/json",
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}).to_string().as_bytes()).await;
    assert_eq!(code, 201);
    let p = pods.get("p").await.unwrap();
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-1")
    );
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let p = pods.get("p").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(
        p.metadata.generation,
        Some(2),
        "graceful deletion bumps generation"
    );
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(api_err(pods.get("p").await).code, 404);
    // With a finalizer: the zero-grace delete shortens the grace period, the finalizer holds
    // the pod, and removing it removes the pod (shouldDeleteDuringUpdate).
    let mut fp = pod("fp", "nginx");
    fp.metadata.finalizers = Some(vec!["test/hold".into()]);
    fp.spec.as_mut().unwrap().node_name = Some("node-1".into());
    pods.create(&PostParams::default(), &fp).await.unwrap();
    pods.delete("fp", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        pods.get("fp")
            .await
            .unwrap()
            .metadata
            .deletion_grace_period_seconds,
        Some(30)
    );
    pods.delete(
        "fp",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let held = pods.get("fp").await.unwrap();
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    pods.patch(
        "fp",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_err(pods.get("fp").await).code, 404);
    env.cleanup().await;
}

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let (env, api) = widget_env("gc").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let child = |name: &str, owner: &DynamicObject| -> Lease {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "name": owner.metadata.name,
            "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true}]}, "spec": {}})).unwrap()
    };
    let wait_gone = |name: String| {
        let leases = leases.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while leases.get_opt(&name).await.unwrap().is_some() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} was never collected"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A dependent whose owner does not exist is collected.
    let ghost = widget("ghost", json!({"image": "a"}));
    let mut ghost = ghost;
    ghost.metadata.uid = Some("6a1f2a4e-0000-4000-8000-000000000000".into());
    leases
        .create(&PostParams::default(), &child("orphaned-at-birth", &ghost))
        .await
        .unwrap();
    wait_gone("orphaned-at-birth".into()).await;
    // Background.
    let w = api
        .create(&PostParams::default(), &widget("bg", json!({"image": "a"})))
        .await
        .unwrap();
    leases
        .create(&PostParams::default(), &child("bg-child", &w))
        .await
        .unwrap();
    api.delete("bg", &DeleteParams::background()).await.unwrap();
    wait_gone("bg-child".into()).await;
    // Foreground: owner waits for its dependents.
    let w = api
        .create(&PostParams::default(), &widget("fg", json!({"image": "a"})))
        .await
        .unwrap();
    leases
        .create(&PostParams::default(), &child("fg-child", &w))
        .await
        .unwrap();
    api.delete("fg", &DeleteParams::foreground()).await.unwrap();
    wait_gone("fg-child".into()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get_opt("fg").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "foreground owner never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Orphan: dependents stay, without the owner reference.
    let w = api
        .create(&PostParams::default(), &widget("or", json!({"image": "a"})))
        .await
        .unwrap();
    leases
        .create(&PostParams::default(), &child("or-child", &w))
        .await
        .unwrap();
    api.delete("or", &DeleteParams::orphan()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = leases.get("or-child").await.unwrap();
        if c.metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty())
            && api.get_opt("or").await.unwrap().is_none()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orphaning never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.cleanup().await;
}

#[tokio::test]
async fn watch_streams_changes_and_resumes() {
    let env = env("watch").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let rv = l.metadata.resource_version.clone().unwrap();
    let mut stream = leases
        .watch(&WatchParams::default().labels("app=a"), &rv)
        .await
        .unwrap()
        .boxed();
    leases
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "b"}})),
        )
        .await
        .unwrap();
    leases
        .create(&PostParams::default(), &lease("b"))
        .await
        .unwrap();
    // Leaving the selection is a DELETED for this watcher.
    leases
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
        )
        .await
        .unwrap();
    leases.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        match ev {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        vec!["MODIFIED a", "ADDED b", "DELETED b", "DELETED a"]
    );
    // Resuming from the first version replays the same history.
    let mut again = leases
        .watch(&WatchParams::default().labels("app=a"), &rv)
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(WAIT, again.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Modified(_)));
    env.cleanup().await;
}

#[tokio::test]
async fn watch_too_old_resource_version_is_410() {
    let Some(_) = (real_cluster().is_none()).then_some(()) else {
        eprintln!("skipped on a real cluster: needs a small event history");
        return;
    };
    let server = embedded_apiserver::ApiServer::with_options(
        Arc::new(gamedeploy_clock::SystemClock),
        embedded_apiserver::ServerOptions {
            seed: 1,
            event_history: 3,
            ..Default::default()
        },
    );
    let client = server.client_as("conformance");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let rv = l.metadata.resource_version.clone().unwrap();
    for i in 0..5 {
        leases
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"leaseDurationSeconds": i + 1}})),
            )
            .await
            .unwrap();
    }
    let mut s = leases
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(WAIT, s.next()).await.unwrap().unwrap() {
        Ok(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn watch_timeout_and_bookmarks_on_virtual_time() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: uses virtual time");
        return;
    }
    let clock = Arc::new(gamedeploy_clock::TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let env = env_with_clock("timeout", clock).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    assert_eq!(
        l.metadata.creation_timestamp.unwrap().0.to_string(),
        "2026-01-01T00:00:00Z",
        "timestamps come from the clock"
    );
    let rv = l.metadata.resource_version.unwrap();
    let mut s = leases
        .watch(&WatchParams::default().timeout(150), &rv)
        .await
        .unwrap()
        .boxed();
    let mut bookmarks = 0;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(1000), s.next())
        .await
        .expect("server closes the watch by itself")
    {
        if let Ok(WatchEvent::Bookmark(b)) = ev {
            assert!(!b.metadata.resource_version.is_empty());
            bookmarks += 1;
        }
    }
    assert!(bookmarks >= 1, "bookmarks every minute when asked");
    env.cleanup().await;
}

#[tokio::test]
async fn streaming_list_watch_sends_initial_events() {
    let env = env("streaming").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("pre"))
        .await
        .unwrap();
    let cfg = watcher::Config::default().streaming_lists();
    let mut w = watcher(leases.clone(), cfg).boxed();
    let mut saw_init_done = false;
    let mut saw_pre = false;
    while !saw_init_done {
        match tokio::time::timeout(WAIT, w.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitApply(o)) if o.metadata.name.as_deref() == Some("pre") => {
                saw_pre = true
            }
            Some(watcher::Event::InitDone) => saw_init_done = true,
            _ => {}
        }
    }
    assert!(saw_pre);
    leases
        .create(&PostParams::default(), &lease("post"))
        .await
        .unwrap();
    loop {
        if let Some(watcher::Event::Apply(o)) = tokio::time::timeout(WAIT, w.try_next())
            .await
            .unwrap()
            .unwrap()
            && o.metadata.name.as_deref() == Some("post")
        {
            break;
        }
    }
    env.cleanup().await;
}

#[tokio::test]
async fn controller_reconciles_objects_created_after_start() {
    let env = env("controller").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("before"))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    let ctl = Controller::new(leases.clone(), watcher::Config::default())
        .run(
            |l: Arc<Lease>, tx: Arc<tokio::sync::mpsc::UnboundedSender<String>>| async move {
                let _ = tx.send(l.metadata.name.clone().unwrap_or_default());
                Ok::<_, Never>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            Arc::new(tx),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(ctl);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut created_after = false;
    while !seen.contains("after") {
        if seen.contains("before") && !created_after {
            leases
                .create(&PostParams::default(), &lease("after"))
                .await
                .unwrap();
            created_after = true;
        }
        let name = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("reconcile in time")
            .unwrap();
        seen.insert(name);
    }
    handle.abort();
    env.cleanup().await;
}

#[tokio::test]
async fn discovery_documents() {
    let env = env("discovery").await;
    install_widgets(&env.client).await;
    let (code, core) = raw(&env.client, "GET", "/api/v1", "", b"").await;
    assert_eq!(code, 200);
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for n in ["pods", "pods/status", "events", "namespaces", "nodes"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let (_, groups) = raw(&env.client, "GET", "/apis", "", b"").await;
    let gs: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
        GROUP,
    ] {
        assert!(gs.contains(&g), "{g} in {gs:?}");
    }
    let (_, w) = raw(&env.client, "GET", &format!("/apis/{GROUP}/v1"), "", b"").await;
    let res = w["resources"].as_array().unwrap();
    let main = res.iter().find(|r| r["name"] == "widgets").unwrap();
    assert_eq!(main["kind"], "Widget");
    assert_eq!(main["namespaced"], true);
    assert_eq!(main["shortNames"], json!(["wdg"]));
    assert!(res.iter().any(|r| r["name"] == "widgets/status"));
    assert!(
        res.iter()
            .any(|r| r["name"] == "widgets/scale" && r["kind"] == "Scale")
    );
    // kube's own discovery client works too.
    let d = kube::Discovery::new(env.client.clone())
        .filter(&[GROUP])
        .run()
        .await
        .unwrap();
    assert!(d.has_group(GROUP));
    env.cleanup().await;
}

#[tokio::test]
async fn garbage_input_gets_status_errors() {
    let env = env("garbage").await;
    let ns = &env.ns;
    let c = &env.client;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let cases: Vec<(&str, String, &str, Vec<u8>, u16)> =
        vec![
        (
            "POST",
            pods.clone(),
            "application/json",
            b"{not json".to_vec(),
            400,
        ),
        (
            "POST",
            pods.clone(),
            "application/json",
            b"[1,2]".to_vec(),
            400,
        ),
        (
            "POST",
            pods.clone(),
            "application/json",
            br#"{"apiVersion":"v2","kind":"Pod","metadata":{"name":"x"}}"#.to_vec(),
            400,
        ),
        (
            "POST",
            pods.clone(),
            "application/json",
            br#"{"metadata":{}}"#.to_vec(),
            422,
        ),
        (
            "POST",
            pods.clone(),
            "application/json",
            br#"{"metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"a","image":"b"}]}}"#
                .to_vec(),
            422,
        ),
        (
            "GET",
            format!("/api/v1/namespaces/{ns}/nosuchthings"),
            "",
            vec![],
            404,
        ),
        ("GET", "/apis/nosuch.group/v1".into(), "", vec![], 404),
        ("GET", "/totally/unknown".into(), "", vec![], 404),
        (
            "GET",
            format!("{pods}?labelSelector=a%20b%3Dc"),
            "",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{pods}?fieldSelector=spec.bogus%3Dx"),
            "",
            vec![],
            400,
        ),
        ("GET", format!("{pods}?limit=abc"), "", vec![], 400),
        ("GET", format!("{pods}?continue=zz"), "", vec![], 400),
        ("PUT", pods.clone(), "application/json", b"{}".to_vec(), 405),
        ("POST", pods.clone(), "text/plain", b"hello".to_vec(), 415),
        ("POST", pods.clone(), "application/yaml", b"metadata: [unclosed".to_vec(), 400),
        (
            "PATCH",
            format!("{pods}/missing"),
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
        ),
        (
            "GET",
            format!("/api/v1/namespaces/{ns}/pods/missing/nosuchsub"),
            "",
            vec![],
            404,
        ),
    ];
    for (m, uri, ct, body, want) in cases {
        let (code, v) = raw(c, m, &uri, ct, &body).await;
        assert_eq!(code, want, "{m} {uri}: {v}");
        assert_eq!(v["kind"], "Status", "{m} {uri}: {v}");
        assert_eq!(v["code"], want);
    }
    // Bad patches against an existing object.
    let pods_api: Api<Pod> = Api::namespaced(c.clone(), ns);
    pods_api
        .create(&PostParams::default(), &pod("p", "nginx"))
        .await
        .unwrap();
    for (ct, body, want) in [
        ("application/merge-patch+json", &b"{oops"[..], 400),
        ("application/json-patch+json", &b"{\"op\":1}"[..], 400),
        (
            "application/json-patch+json",
            &br#"[{"op":"remove","path":"/nope/x"}]"#[..],
            422,
        ),
        ("application/strategic-merge-patch+json", &b"[]"[..], 400),
        ("application/x-unknown", &b"{}"[..], 415),
        ("application/apply-patch+yaml", &b": : :"[..], 422),
    ] {
        let (code, v) = raw(c, "PATCH", &format!("{pods}/p"), ct, body).await;
        assert_eq!(code, want, "{ct} {}: {v}", String::from_utf8_lossy(body));
        assert_eq!(v["kind"], "Status");
    }
    // The server still works.
    assert!(pods_api.get("p").await.is_ok());
    env.cleanup().await;
}

#[tokio::test]
async fn namespace_deletion_removes_content() {
    let env = env("nsdel").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(env.client.clone());
    nss.delete(&env.ns, &DeleteParams::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while nss.get_opt(&env.ns).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespace never finalized"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(leases.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn events_in_both_groups() {
    let env = env("events").await;
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), &env.ns);
    let e = core
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"generateName": "ev-"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": env.ns},
            "reason": "Started", "message": "hi", "type": "Normal"})).unwrap())
        .await
        .unwrap();
    assert!(e.metadata.name.unwrap().starts_with("ev-"));
    let got = core
        .list(&ListParams::default().fields("involvedObject.name=p,reason=Started"))
        .await
        .unwrap();
    assert_eq!(got.items.len(), 1);
    let new: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    new.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "gamedeploy",
        "reportingInstance": "x", "action": "Update", "reason": "Updated", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": env.ns}})).unwrap()).await.unwrap();
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
async fn table_output_uses_printer_columns() {
    let (env, api) = widget_env("table").await;
    api.create(
        &PostParams::default(),
        &widget("w", json!({"image": "a", "replicas": 4})),
    )
    .await
    .unwrap();
    let v = get_as(
        &env.client,
        &format!("/apis/{GROUP}/v1/namespaces/{}/widgets", env.ns),
        TABLE,
    )
    .await;
    assert_eq!(v["kind"], "Table");
    let cols: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
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
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &pod("p", "nginx"))
        .await
        .unwrap();
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(
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
    let cols: Vec<&str> = v["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(&cols[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
    let cells = &v["rows"][0]["cells"];
    assert_eq!(
        (cells[1].as_str(), cells[2].as_str(), cells[3].as_str()),
        (Some("0/1"), Some("CrashLoopBackOff"), Some("2"))
    );
    env.cleanup().await;
}

#[tokio::test]
async fn faults_and_request_accounting() {
    let env = env("faults").await;
    let Some(server) = env.server.clone() else {
        eprintln!("skipped on a real cluster: fault injection is an embedded-server feature");
        return;
    };
    let op = server.client_as("operator");
    let mine: Api<Lease> = Api::namespaced(op, &env.ns);
    let theirs: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    server.set_faults(Some(embedded_apiserver::FaultConfig {
        seed: 7,
        conflict_rate: 1.0,
        client: Some("operator".into()),
        ..Default::default()
    }));
    let e = api_err(mine.create(&PostParams::default(), &lease("x")).await);
    assert_eq!(e.code, 409);
    assert!(
        mine.list(&ListParams::default()).await.is_ok(),
        "reads are not disturbed"
    );
    theirs
        .create(&PostParams::default(), &lease("y"))
        .await
        .unwrap();
    assert_eq!(server.faults_injected(), 1);
    server.set_faults(Some(embedded_apiserver::FaultConfig {
        seed: 7,
        error_rate: 1.0,
        ..Default::default()
    }));
    assert_eq!(
        api_err(theirs.create(&PostParams::default(), &lease("z")).await).code,
        500
    );
    server.set_faults(None);
    // Dropped watches end the stream.
    let mut w = mine
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let _ = tokio::time::timeout(WAIT, w.next()).await.unwrap();
    assert_eq!(server.drop_watches(Some("operator")), 1);
    while let Some(ev) = tokio::time::timeout(WAIT, w.next()).await.unwrap() {
        let _ = ev;
    }
    let counts = server.request_counts();
    let find = |client: &str, verb: &str| {
        counts
            .iter()
            .find(|c| c.client == client && c.verb == verb && c.resource == "leases")
            .map(|c| c.count)
    };
    assert_eq!(find("operator", "create"), Some(1));
    assert_eq!(find("operator", "list"), Some(1));
    assert_eq!(find("operator", "watch"), Some(1));
    assert_eq!(find("conformance", "create"), Some(2));
    env.cleanup().await;
}

#[tokio::test]
async fn kube_finalizer_helper_round_trip() {
    // kube::runtime::finalizer adds/removes with JSON patches guarded by `test` ops, including
    // a `test` of null against the absent finalizers list.
    use kube::runtime::finalizer::{Event as Fin, finalizer};
    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    let env = env("finalizer").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let cleaned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = |obj: Lease| {
        let leases = leases.clone();
        let cleaned = cleaned.clone();
        async move {
            finalizer(
                &leases,
                "gamedeploy.dev/cleanup",
                Arc::new(obj),
                |ev| async move {
                    if let Fin::Cleanup(_) = ev {
                        cleaned.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok::<_, Never>(Action::await_change())
                },
            )
            .await
        }
    };
    run(leases.get("a").await.unwrap()).await.unwrap();
    let l = leases.get("a").await.unwrap();
    assert_eq!(
        l.metadata.finalizers,
        Some(vec!["gamedeploy.dev/cleanup".to_string()])
    );
    run(l).await.unwrap();
    leases.delete("a", &DeleteParams::default()).await.unwrap();
    let l = leases.get("a").await.unwrap();
    assert!(
        l.metadata.deletion_timestamp.is_some(),
        "finalizer holds the object"
    );
    run(l).await.unwrap();
    assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        leases.get_opt("a").await.unwrap().is_none(),
        "removed once the finalizer is gone"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn builtin_objects_are_decoded_as_typed() {
    let env = env("typed").await;
    let uri = format!("/api/v1/namespaces/{}/pods", env.ns);
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/json",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"bogus": 1, "containers": [{"name": "a", "image": "b", "alsoBogus": true}]}})
        .to_string()
        .as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert!(
        v["spec"].get("bogus").is_none(),
        "unknown fields are dropped: {v}"
    );
    assert!(v["spec"]["containers"][0].get("alsoBogus").is_none());
    let (code, v) = raw(&env.client, "POST", &uri, "application/json",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {"containers": "nope"}}).to_string().as_bytes()).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/json",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-yaml\nspec:\n  containers:\n  - name: a\n    image: b\n";
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/yaml",
        yaml.as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "YAML bodies are accepted: {v}");
    // fieldValidation=Strict turns dropped unknown fields into a 400.
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s"},
        "spec": {"bogus": 1, "containers": [{"name": "a", "image": "b"}]}})
    .to_string();
    let (code, v) = raw(
        &env.client,
        "POST",
        &format!("{uri}?fieldValidation=Strict"),
        "application/json",
        body.as_bytes(),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{v}"
    );
    // dryRun=All validates and answers without storing.
    let ok = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry"},
        "spec": {"containers": [{"name": "a", "image": "b"}]}})
    .to_string();
    let (code, v) = raw(
        &env.client,
        "POST",
        &format!("{uri}?dryRun=All"),
        "application/json",
        ok.as_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["metadata"]["name"], "dry");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(
        pods.get_opt("dry").await.unwrap().is_none(),
        "dry run stores nothing"
    );
    install_widgets(&env.client).await;
    let w =
        json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"image": "a", "unknown": 1}})
        .to_string();
    let (code, v) = raw(
        &env.client,
        "POST",
        &format!(
            "/apis/{GROUP}/v1/namespaces/{}/widgets?fieldValidation=Strict",
            env.ns
        ),
        "application/json",
        w.as_bytes(),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    env.cleanup().await;
}

#[tokio::test]
async fn delete_collection_by_label() {
    let env = env("deletecoll").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    for n in ["a", "b", "c"] {
        let mut l = lease(n);
        if n == "c" {
            l.metadata.labels = Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
        }
        leases.create(&PostParams::default(), &l).await.unwrap();
    }
    leases
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=a"),
        )
        .await
        .unwrap();
    let left: Vec<String> = leases
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| l.metadata.name.unwrap())
        .collect();
    assert_eq!(left, vec!["c"]);
    env.cleanup().await;
}

#[tokio::test]
async fn kube_event_recorder_publishes_and_updates_series() {
    use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
    let env = env("recorder").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
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
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
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

#[tokio::test]
async fn cluster_scoped_nodes() {
    let env = env("nodes").await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.client.clone());
    let name = format!("{}-node", env.ns);
    let n = nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": name, "labels": {"sim": "true"}},
            "status": {"capacity": {"pods": "110"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(n.metadata.namespace.is_none());
    assert_eq!(n.metadata.generation, None, "nodes do not track generation");
    let (code, _) = raw(
        &env.client,
        "GET",
        &format!("/api/v1/namespaces/{}/nodes/{name}", env.ns),
        "",
        b"",
    )
    .await;
    assert_eq!(
        code, 404,
        "cluster-scoped resources are not served under a namespace"
    );
    assert!(
        nodes
            .list(&ListParams::default().labels("sim=true"))
            .await
            .unwrap()
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(name.as_str()))
    );
    nodes.delete(&name, &DeleteParams::default()).await.unwrap();
    env.cleanup().await;
}

#[tokio::test(start_paused = true)]
async fn injected_latency_is_virtual_time() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: fault injection is an embedded-server feature");
        return;
    }
    let env = env("latency").await;
    let server = env.server.clone().unwrap();
    server.set_faults(Some(embedded_apiserver::FaultConfig {
        latency: Duration::from_secs(5),
        client: Some("conformance".into()),
        ..Default::default()
    }));
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let t0 = tokio::time::Instant::now();
    leases.list(&ListParams::default()).await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "latency applies (on the paused clock)"
    );
    let other: Api<Lease> = Api::namespaced(server.client_as("someone-else"), &env.ns);
    let t1 = tokio::time::Instant::now();
    other.list(&ListParams::default()).await.unwrap();
    assert!(
        t1.elapsed() < Duration::from_secs(5),
        "other clients are not slowed"
    );
    server.set_faults(None);
    env.cleanup().await;
}

/// A watch delay holds each change back from the client's watches, in order, without
/// closing them; other clients' watches are on time.
#[tokio::test(start_paused = true)]
async fn injected_watch_delay_holds_changes_back() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: fault injection is an embedded-server feature");
        return;
    }
    let env = env("watch-delay").await;
    let server = env.server.clone().unwrap();
    server.set_faults(Some(embedded_apiserver::FaultConfig {
        watch_delay: Duration::from_secs(5),
        client: Some("slow".into()),
        ..Default::default()
    }));
    let watch = |client: kube::Client| {
        let api: Api<Lease> = Api::namespaced(client, &env.ns);
        async move {
            let rv = api
                .list(&ListParams::default())
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap();
            api.watch(&WatchParams::default(), &rv)
                .await
                .unwrap()
                .boxed()
        }
    };
    let mut slow = watch(server.client_as("slow")).await;
    let mut fast = watch(server.client_as("fast")).await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let t0 = tokio::time::Instant::now();
    for name in ["a", "b"] {
        leases
            .create(&PostParams::default(), &lease(name))
            .await
            .unwrap();
    }
    let name = |ev: Option<Result<WatchEvent<Lease>, kube::Error>>| match ev.unwrap().unwrap() {
        WatchEvent::Added(o) => o.metadata.name.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(name(fast.next().await), "a");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "other clients are on time"
    );
    assert_eq!(name(slow.next().await), "a");
    assert!(
        t0.elapsed() >= Duration::from_secs(5),
        "the change is held back"
    );
    assert_eq!(name(slow.next().await), "b", "in order");
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "each change waits once, not behind the one before"
    );
    server.set_faults(None);
    env.cleanup().await;
}

#[tokio::test]
async fn metadata_only_requests() {
    use kube::core::PartialObjectMeta;
    let env = env("metadata").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let meta: Api<PartialObjectMeta<Lease>> = Api::namespaced(env.client.clone(), &env.ns);
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

#[tokio::test]
async fn changes_are_attributed_to_clients() {
    let env = env("changes").await;
    let Some(server) = env.server.clone() else {
        eprintln!("skipped on a real cluster: the change feed is an embedded-server feature");
        return;
    };
    let mut feed = server.changes();
    let kubelet: Api<Pod> = Api::namespaced(server.client_as("kubelet"), &env.ns);
    let operator: Api<Pod> = Api::namespaced(server.client_as("operator"), &env.ns);
    operator
        .create(&PostParams::default(), &pod("p", "nginx"))
        .await
        .unwrap();
    kubelet
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    operator
        .delete("p", &DeleteParams::default())
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let c = tokio::time::timeout(WAIT, feed.recv())
            .await
            .unwrap()
            .unwrap();
        if c.resource == "pods" {
            got.push((c.client.clone(), c.kind, c.name.clone()));
        }
    }
    use embedded_apiserver::EventType::*;
    assert_eq!(
        got,
        vec![
            ("operator".to_string(), Added, "p".to_string()),
            ("kubelet".to_string(), Modified, "p".to_string()),
            ("operator".to_string(), Deleted, "p".to_string()),
        ]
    );
    env.cleanup().await;
}

#[tokio::test]
async fn controller_revisions_and_lease_validation() {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    let env = env("revisions").await;
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let r: ControllerRevision = serde_json::from_value(json!({
        "metadata": {"name": "gd-abc", "labels": {"controller-revision-hash": "abc"}},
        "data": {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "game:1"}]}}}},
        "revision": 1})).unwrap();
    let created = revs.create(&PostParams::default(), &r).await.unwrap();
    assert_eq!(created.revision, 1);
    // The revision number may move (the controller renumbers on rollback); data may not.
    let r2 = revs
        .patch(
            "gd-abc",
            &PatchParams::default(),
            &Patch::Merge(json!({"revision": 3})),
        )
        .await
        .unwrap();
    assert_eq!(r2.revision, 3);
    let e = api_err(
        revs.patch(
            "gd-abc",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"other": 1}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("field is immutable"), "{}", e.message);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let mut l = lease("bad");
    l.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    assert_eq!(
        api_err(leases.create(&PostParams::default(), &l).await).code,
        422
    );
    env.cleanup().await;
}

/// GET through the client without following redirects: (status, Location header, JSON body).
async fn get_raw(client: &kube::Client, uri: &str) -> (u16, String, Value) {
    let req = http::Request::builder()
        .uri(uri)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let resp = client.send(req).await.expect("transport");
    let code = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (
        code,
        location,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The component schema carrying `x-kubernetes-group-version-kind` for this kind.
fn schema_for_gvk<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    doc.pointer("/components/schemas")?
        .as_object()?
        .values()
        .find(|s| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        g["group"] == group && g["version"] == version && g["kind"] == kind
                    })
                })
        })
}

/// The PATCH operation of a kind's item path (what kubectl's field-validation check reads).
fn patch_op<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    doc.get("paths")?.as_object()?.values().find_map(|p| {
        let op = p.get("patch")?;
        let g = op.get("x-kubernetes-group-version-kind")?;
        (g["group"] == group && g["version"] == version && g["kind"] == kind).then_some(op)
    })
}

/// The hashed URL of a group/version in `/openapi/v3`, waiting until it is published (a real
/// cluster publishes CRD schemas asynchronously) and differs from `not`.
async fn openapi_url(client: &kube::Client, key: &str, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, _, disc) = get_raw(client, "/openapi/v3").await;
        assert_eq!(code, 200, "/openapi/v3: {disc}");
        if let Some(url) = disc
            .pointer(&format!(
                "/paths/{}/serverRelativeURL",
                key.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            && Some(url) != not
        {
            return url.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never (re)published in /openapi/v3: {disc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn openapi_v3_publishes_crd_and_builtin_schemas() {
    let env = env("openapi").await;
    install_widgets(&env.client).await;
    let key = format!("apis/{GROUP}/v1");
    let url = openapi_url(&env.client, &key, None).await;
    assert!(
        url.starts_with(&format!("/openapi/v3/{key}?hash=")),
        "{url}"
    );
    let (code, _, doc) = get_raw(&env.client, &url).await;
    assert_eq!(code, 200);
    let widget = schema_for_gvk(&doc, GROUP, "v1", "Widget").expect("Widget schema with GVK");
    assert_eq!(
        widget.pointer("/properties/spec/properties/image/pattern"),
        Some(&json!("^[a-z0-9.:/-]+$")),
        "the CRD's openAPIV3Schema is published"
    );
    let op = patch_op(&doc, GROUP, "v1", "Widget").expect("PATCH operation for Widget");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    let content = op.pointer("/requestBody/content").expect("request body");
    assert!(content.get("application/merge-patch+json").is_some());
    assert!(
        content
            .get("application/strategic-merge-patch+json")
            .is_none(),
        "custom resources take no strategic merge patch"
    );

    // Built-ins: the Pod schema, with the patch metadata kubectl's apply needs.
    let core_url = openapi_url(&env.client, "api/v1", None).await;
    let (code, _, core) = get_raw(&env.client, &core_url).await;
    assert_eq!(code, 200);
    assert!(schema_for_gvk(&core, "", "v1", "Pod").is_some());
    let containers = core
        .pointer("/components/schemas/io.k8s.api.core.v1.PodSpec/properties/containers")
        .expect("PodSpec.containers");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let pod_patch = patch_op(&core, "", "v1", "Pod").expect("PATCH operation for Pod");
    assert!(
        pod_patch
            .pointer("/requestBody/content/application~1strategic-merge-patch+json")
            .is_some()
    );

    // Changing the CRD changes the hash; the old URL redirects to the new one.
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.patch(
        &format!("widgets.{GROUP}"),
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "add",
                "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/openapiProbe",
                "value": {"type": "string"}}]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    let new_url = openapi_url(&env.client, &key, Some(&url)).await;
    let (code, _, doc) = get_raw(&env.client, &new_url).await;
    assert_eq!(code, 200);
    let widget = schema_for_gvk(&doc, GROUP, "v1", "Widget").expect("Widget schema");
    assert!(
        widget
            .pointer("/properties/spec/properties/openapiProbe")
            .is_some()
    );
    let (code, location, _) = get_raw(&env.client, &url).await;
    assert_eq!(code, 301, "an obsolete hash redirects");
    assert!(
        new_url.ends_with(&location) || location.ends_with(&new_url),
        "{location} vs {new_url}"
    );

    let (code, _, _) = get_raw(&env.client, "/openapi/v3/apis/nosuch.example.com/v1").await;
    assert_eq!(code, 404);
    env.cleanup().await;
}

/// What a ReplicaSet's `PodControllerRefManager` sends: adoption adds the controller reference
/// and releasing deletes it by uid (strategic merge, merge key `uid`); the pod's uid in the
/// patch makes sure a pod recreated under the same name is neither adopted nor released.
#[tokio::test]
async fn adoption_and_release_patches_carry_the_pod_uid() {
    let env = env("adopt").await;
    install_widgets(&env.client).await;
    let owner = widgets(&env)
        .create(
            &PostParams::default(),
            &widget("owner", json!({"image": "a"})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod = pods
        .create(&PostParams::default(), &pod("orphan", "nginx:1.25"))
        .await
        .unwrap();
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

/// A DELETE whose body says `DeleteOptions` but mistypes a field is refused and deletes
/// nothing (kube-apiserver ≥ 1.35 answers 400; older servers 500, kubernetes#132359), and a
/// precondition that does not match is a 409 Conflict.
#[tokio::test]
async fn delete_options_are_type_checked_and_preconditions_conflict() {
    let env = env("delopts").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let l = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let uri = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases/a",
        env.ns
    );
    for body in [
        &br#"{"preconditions":{"resourceVersion":1}}"#[..],
        br#"{"gracePeriodSeconds":"abc"}"#,
        br#"{"propagationPolicy":true}"#,
        br#"{"dryRun":"All"}"#,
    ] {
        let (code, v) = raw(&env.client, "DELETE", &uri, "application/json", body).await;
        let body = String::from_utf8_lossy(body);
        if env.server.is_some() {
            assert_eq!(
                (code, v["reason"].as_str()),
                (400, Some("BadRequest")),
                "{body}: {v}"
            );
        } else {
            assert!(code == 400 || code == 500, "{body}: {code} {v}");
        }
        assert_eq!(v["kind"], "Status", "{body}: {v}");
        assert!(
            leases.get_opt("a").await.unwrap().is_some(),
            "{body} deleted the lease"
        );
    }
    let uid = l.metadata.uid.clone().unwrap();
    let rv = l.metadata.resource_version.clone().unwrap();
    for pre in [
        kube::api::Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        },
        kube::api::Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        },
    ] {
        let dp = DeleteParams {
            preconditions: Some(pre),
            ..Default::default()
        };
        let e = api_err(leases.delete("a", &dp).await);
        assert_eq!(
            (e.code, e.reason.as_str()),
            (409, "Conflict"),
            "{}",
            e.message
        );
        assert!(e.message.contains("Precondition failed"), "{}", e.message);
    }
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid),
            resource_version: Some(rv),
        }),
        ..Default::default()
    };
    leases.delete("a", &dp).await.unwrap();
    assert!(leases.get_opt("a").await.unwrap().is_none());
    env.cleanup().await;
}

/// NamespaceLifecycle admission refuses to delete `default`, `kube-system` and `kube-public`
/// (asked as a dry run, so a misbehaving real cluster would still keep them).
#[tokio::test]
async fn immortal_namespaces_cannot_be_deleted() {
    let env = env("immortal").await;
    let nss: Api<Namespace> = Api::all(env.client.clone());
    let dp = DeleteParams::default().dry_run();
    for ns in ["default", "kube-system", "kube-public"] {
        let e = api_err(nss.delete(ns, &dp).await);
        assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"), "{ns}");
        assert_eq!(
            e.message,
            format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
        );
        let left = nss.get(ns).await.unwrap();
        assert!(
            left.metadata.deletion_timestamp.is_none(),
            "{ns} is terminating"
        );
    }
    // Without dry run too (the embedded server only: a real one must never get this far).
    if env.server.is_some() {
        let e = api_err(nss.delete("default", &DeleteParams::default()).await);
        assert_eq!(e.code, 403);
        assert!(
            nss.get("default")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_none()
        );
    }
    env.cleanup().await;
}

/// kube-apiserver caps request bodies at 3 MiB (413) and an object's annotations at 256 KiB in
/// total, keys included (422 on `metadata.annotations`).
#[tokio::test]
async fn request_body_and_annotation_size_limits() {
    let env = env("limits").await;
    let uri = format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", env.ns);
    let with_annotation = |name: &str, len: usize| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "annotations": {"a": "x".repeat(len)}}})
        .to_string()
        .into_bytes()
    };
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/json",
        &with_annotation("huge", 3 * 1024 * 1024),
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{v}"
    );
    assert_eq!(v["message"], "Request entity too large: limit is 3145728");
    // 256 KiB in total, counting the key "a".
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/json",
        &with_annotation("over", 256 * 1024),
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    let cause = &v["details"]["causes"][0];
    assert_eq!(cause["field"], "metadata.annotations", "{v}");
    assert_eq!(cause["reason"], "FieldValueTooLong", "{v}");
    assert!(
        cause["message"].as_str().unwrap_or("").contains("262144"),
        "{v}"
    );
    let (code, v) = raw(
        &env.client,
        "POST",
        &uri,
        "application/json",
        &with_annotation("fits", 256 * 1024 - 1),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    env.cleanup().await;
}

/// Duplicate and malformed container names are refused with kube-apiserver's field paths
/// (`ValidateContainers`, `validateInitContainers`: names are DNS-1123 labels, unique across
/// init and regular containers).
#[tokio::test]
async fn pod_container_names_are_validated() {
    let env = env("ctrnames").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mk = |containers: Value, init: Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"schedulerName": "gamedeploy-conformance-none",
                     "containers": containers, "initContainers": init}
        }))
        .unwrap()
    };
    let c = |n: &str| json!({"name": n, "image": "nginx"});
    let label_msg = |v: &str| {
        format!(
            "Invalid value: \"{v}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    };
    for (containers, init, field, message) in [
        (
            json!([c("x"), c("x")]),
            json!([]),
            "spec.containers[1].name",
            "Duplicate value: \"x\"".to_string(),
        ),
        (
            json!([c("Main_X")]),
            json!([]),
            "spec.containers[0].name",
            label_msg("Main_X"),
        ),
        (
            json!([c("app")]),
            json!([c("app")]),
            "spec.initContainers[0].name",
            "Duplicate value: \"app\"".to_string(),
        ),
        (
            json!([c("app")]),
            json!([c("Init_X")]),
            "spec.initContainers[0].name",
            label_msg("Init_X"),
        ),
    ] {
        let e = api_err(
            pods.create(&PostParams::default(), &mk(containers, init))
                .await,
        );
        assert_eq!(
            (e.code, e.reason.as_str()),
            (422, "Invalid"),
            "{}",
            e.message
        );
        let causes = e
            .details
            .as_ref()
            .map(|d| d.causes.clone())
            .unwrap_or_default();
        assert!(
            causes
                .iter()
                .any(|c| c.field == field && c.message == message),
            "want {field}: {message}\ngot {}",
            e.message
        );
        assert!(
            e.message.contains(&format!("{field}: {message}")),
            "{}",
            e.message
        );
    }
    assert!(pods.get_opt("p").await.unwrap().is_none());
    env.cleanup().await;
}

/// `resourceVersion` must be a number where the server parses it (GET and LIST answer 500
/// with the storage layer's message, kubernetes#101350), and an unknown strategic-merge
/// `$patch` directive is refused (`mergepatch.ErrBadPatchType`, also a 500).
#[tokio::test]
async fn invalid_resource_version_and_patch_directive() {
    let env = env("badrv").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    let base = format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", env.ns);
    for uri in [
        format!("{base}/a?resourceVersion=abc"),
        format!("{base}?resourceVersion=abc"),
    ] {
        let (code, v) = raw(&env.client, "GET", &uri, "", b"").await;
        assert_eq!(code, 500, "{uri}: {v}");
        assert_eq!(v["kind"], "Status");
        assert_eq!(
            v["message"],
            "resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax",
            "{uri}"
        );
    }
    let e = api_err(
        leases
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Strategic(json!({"metadata": {"labels": {"$patch": "explode"}}})),
            )
            .await,
    );
    assert_eq!(e.code, 500, "{}", e.message);
    assert_eq!(
        e.message,
        "unknown patch type: explode in map: map[$patch:explode]"
    );
    let got = leases.get("a").await.unwrap();
    assert_eq!(
        got.metadata.labels.unwrap().get("app").map(String::as_str),
        Some("a")
    );
    env.cleanup().await;
}

/// A watcher that never reads is closed once it falls `watch_backlog` events behind, and the
/// server drops what it queued for it, as kube-apiserver's cacher terminates a watcher whose
/// buffer is full; a watcher that keeps reading gets every event. Embedded server only.
#[tokio::test]
async fn watch_that_falls_behind_is_closed() {
    if real_cluster().is_some() {
        eprintln!("skipped on a real cluster: watch buffers are not observable there");
        return;
    }
    let server = embedded_apiserver::ApiServer::with_options(
        Arc::new(gamedeploy_clock::SystemClock),
        embedded_apiserver::ServerOptions {
            watch_backlog: 32,
            ..Default::default()
        },
    );
    let client = server.client_as("conformance");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let mut slow = leases
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let fast = leases
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    const N: usize = 300;
    let reader = tokio::spawn(async move {
        let mut fast = fast;
        let mut added = 0;
        while added < N {
            match tokio::time::timeout(WAIT, fast.next()).await {
                Ok(Some(Ok(WatchEvent::Added(_)))) => added += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("the reading watcher lost its stream after {added}: {other:?}"),
            }
        }
        (added, fast)
    });
    assert_eq!(server.watch_stats().open, 2);
    for i in 0..N {
        leases
            .create(&PostParams::default(), &lease(&format!("l{i}")))
            .await
            .unwrap();
    }
    let (added, _fast) = reader.await.unwrap();
    assert_eq!(added, N, "the reading watcher saw every event");
    let stats = server.watch_stats();
    assert_eq!(stats.closed_lagging, 1, "{stats:?}");
    assert_eq!(stats.open, 1, "only the reading watcher is left: {stats:?}");
    assert!(stats.queued <= 32, "{stats:?}");
    // The lagging watcher's stream ends after what was already on its wire.
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("stream ends")
        {
            Some(Ok(_)) => delivered += 1,
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    assert!(
        delivered < N,
        "the lagging watcher was closed early ({delivered})"
    );
}
