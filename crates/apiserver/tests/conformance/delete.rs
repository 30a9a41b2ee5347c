//! Deletion: pod grace periods, finalizers, preconditions, `DeleteOptions` checks, deletecollection
//! and the namespaces that cannot be deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch};
use kube::runtime::controller::Action;
use serde_json::json;

#[tokio::test]
async fn pod_graceful_deletion() {
    let env = env("grace").await;
    let pods: Api<Pod> = env.api();
    // Unscheduled pods go at once.
    create(&pods, &pod("unscheduled", "nginx")).await;
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(pods.get("unscheduled").await).code, 404);
    // Scheduled pods wait for the kubelet's gracePeriodSeconds=0 delete.
    create(&pods, &pod("p", "nginx")).await;
    let (code, _) = post_json(&env.client, &format!("/api/v1/namespaces/{}/pods/p/binding", env.ns), json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}).to_string().as_bytes()).await;
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
    kubelet_delete(&pods, "p").await;
    assert_eq!(api_err(pods.get("p").await).code, 404);
    // With a finalizer: the zero-grace delete shortens the grace period, the finalizer holds
    // the pod, and removing it removes the pod (shouldDeleteDuringUpdate).
    let mut fp = pod("fp", "nginx");
    fp.metadata.finalizers = Some(vec!["test/hold".into()]);
    fp.spec.as_mut().unwrap().node_name = Some("node-1".into());
    create(&pods, &fp).await;
    pods.delete("fp", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        pods.get("fp")
            .await
            .unwrap()
            .metadata
            .deletion_grace_period_seconds,
        Some(30)
    );
    kubelet_delete(&pods, "fp").await;
    let held = pods.get("fp").await.unwrap();
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    send_patch(
        &pods,
        "fp",
        Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_err(pods.get("fp").await).code, 404);
    env.cleanup().await;
}

#[tokio::test]
async fn delete_collection_by_label() {
    let env = env("deletecoll").await;
    let leases: Api<Lease> = env.api();
    for n in ["a", "b", "c"] {
        let mut l = lease(n);
        if n == "c" {
            l.metadata.labels = Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
        }
        create(&leases, &l).await;
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

/// A DELETE whose body says `DeleteOptions` but mistypes a field is refused and deletes
/// nothing (kube-apiserver ≥ 1.35 answers 400; older servers 500, kubernetes#132359), and a
/// precondition that does not match is a 409 Conflict.
#[tokio::test]
async fn delete_options_are_type_checked_and_preconditions_conflict() {
    let env = env("delopts").await;
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
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

#[tokio::test]
async fn kube_finalizer_helper_round_trip() {
    // kube::runtime::finalizer adds/removes with JSON patches guarded by `test` ops, including
    // a `test` of null against the absent finalizers list.
    use kube::runtime::finalizer::{Event as Fin, finalizer};
    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;
    let env = env("finalizer").await;
    let leases: Api<Lease> = env.api();
    create(&leases, &lease("a")).await;
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

/// The DELETE a kubelet sends once a pod's containers are gone: `gracePeriodSeconds=0`.
async fn kubelet_delete(pods: &Api<Pod>, name: &str) {
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete(name, &now).await.unwrap();
}

/// `ReturnDeletedObject` (kubernetes' pod, serviceaccount, service and namespace storage): a
/// delete that removes a Pod answers with the Pod, one of a ConfigMap with a `Status`; a delete
/// that leaves the object in place (finalizers) answers with it, 200, or 202 when the
/// deprecated `orphanDependents: false` asked for cascading deletion.
#[tokio::test]
async fn deleting_a_pod_returns_the_pod() {
    let env = env("delete-returns").await;
    let pods: Api<Pod> = env.api();
    let created = create(&pods, &pod("p", "nginx")).await;
    let reply = pods.delete("p", &DeleteParams::default()).await.unwrap();
    let p = reply.left().expect("the Pod, not a Status");
    assert_eq!(p.metadata.name.as_deref(), Some("p"));
    assert_eq!(p.metadata.uid, created.metadata.uid);
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = env.api();
    let cm = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let cm = create(&cms, &cm).await;
    let reply = cms.delete("c", &DeleteParams::default()).await.unwrap();
    let d = reply.right().expect("a Status").details.expect("details");
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("c", "configmaps"));
    assert_eq!(Some(d.uid), cm.metadata.uid);

    // Finalizers keep both in place: the reply is the object, marked for deletion.
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    create(&pods, &serde_json::from_value(held).unwrap()).await;
    let uri = format!("/api/v1/namespaces/{}/pods/held", env.ns);
    let (code, v) = raw(&env.client, "DELETE", &uri, "application/json", b"").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "Pod", "{v}");
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    create(&cms, &serde_json::from_value(cm).unwrap()).await;
    let uri = format!("/api/v1/namespaces/{}/configmaps/held", env.ns);
    let (code, v) = raw(
        &env.client,
        "DELETE",
        &uri,
        "application/json",
        br#"{"orphanDependents": false}"#,
    )
    .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["kind"], "ConfigMap", "{v}");
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    for (api, name) in [("pods", "held"), ("configmaps", "held")] {
        let uri = format!("/api/v1/namespaces/{}/{api}/{name}", env.ns);
        let (code, _) = raw(
            &env.client,
            "PATCH",
            &uri,
            "application/merge-patch+json",
            br#"{"metadata": {"finalizers": null}}"#,
        )
        .await;
        assert_eq!(code, 200);
    }
    env.cleanup().await;
}

/// Namespaces have no collection delete (kube-apiserver's namespace storage does not offer
/// one): `DELETE /api/v1/namespaces` is 405 and deletes nothing; discovery does not list the
/// verb for them.
#[tokio::test]
async fn namespaces_cannot_be_deleted_as_a_collection() {
    let env = env("ns-collection").await;
    let (code, body) = raw(
        &env.client,
        "DELETE",
        "/api/v1/namespaces",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "{body}"
    );
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    assert!(
        nss.get_opt(&env.ns).await.unwrap().is_some(),
        "nothing deleted"
    );
    let (_, list) = raw(&env.client, "GET", "/api/v1", "", b"").await;
    let verbs = |name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["verbs"].clone())
            .unwrap()
    };
    assert!(
        !verbs("namespaces")
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "deletecollection")
    );
    assert!(
        verbs("configmaps")
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "deletecollection")
    );
    env.cleanup().await;
}
