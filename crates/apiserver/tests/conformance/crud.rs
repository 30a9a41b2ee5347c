//! Create, read, update and list: generated names, defaults, 404/409, selectors, pagination,
//! optimistic concurrency, cluster scope.

use std::collections::BTreeMap;

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PostParams};
use serde_json::json;

#[tokio::test]
async fn create_get_and_already_exists() {
    let env = env("create").await;
    let pods: Api<Pod> = env.api();
    let mut p = pod("", "nginx:1.25");
    p.metadata.name = None;
    p.metadata.generate_name = Some("web-".into());
    let created = create(&pods, &p).await;
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
    let leases: Api<Lease> = env.api();
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
        create(&leases, &l).await;
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
    // Every page carries the first page's resourceVersion, so a watch from it after the last
    // page sees what changed while paging, even among objects already listed.
    let first = leases.list(&ListParams::default().limit(2)).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    create(&leases, &lease("l0a")).await;
    let mut tok = first.metadata.continue_.clone();
    while let Some(t) = tok.filter(|t| !t.is_empty()) {
        let page = leases
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(page.metadata.resource_version.as_ref(), Some(&rv));
        tok = page.metadata.continue_;
    }
    let mut events = leases
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match events.next().await {
        Some(Ok(kube::api::WatchEvent::Added(l))) => {
            assert_eq!(l.metadata.name.as_deref(), Some("l0a"))
        }
        other => panic!("expected l0a ADDED, got {other:?}"),
    }
    // Pods: spec.nodeName and status.phase field selectors.
    let pods: Api<Pod> = env.api();
    create(&pods, &pod("p1", "nginx")).await;
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
    let leases: Api<Lease> = env.api();
    let l = create(&leases, &lease("a")).await;
    let rv0 = resource_version_number(l.metadata.resource_version.as_deref());
    let mut l1 = l.clone();
    l1.spec.as_mut().unwrap().holder_identity = Some("y".into());
    let l1 = leases
        .replace("a", &PostParams::default(), &l1)
        .await
        .unwrap();
    let rv1 = resource_version_number(l1.metadata.resource_version.as_deref());
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
        send_patch(&leases, "a", Patch::Merge(json!({"metadata": {"resourceVersion": rv0.to_string()}, "spec": {"holderIdentity": "q"}})))
            .await,
    );
    assert_eq!(e.code, 409);
    env.cleanup().await;
}

#[tokio::test]
async fn cluster_scoped_nodes() {
    let env = env("nodes").await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(env.client.clone());
    let name = format!("{}-node", env.ns);
    let n = create(
        &nodes,
        &serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"sim": "true"}},
            "status": {"capacity": {"pods": "110"}}}),
        )
        .unwrap(),
    )
    .await;
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

/// A `resourceVersion` as the number this server (and etcd) makes it.
fn resource_version_number(rv: Option<&str>) -> u64 {
    rv.expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}

/// Pod names are DNS-1123 subdomains: up to 253 characters, with no limit on one part (a
/// 100-character name without dots is valid); a `generateName` prefix is cut to 58 characters
/// so that the name with its five random ones fits 63.
#[tokio::test]
async fn long_names_and_long_generate_names() {
    let env = env("long-names").await;
    let pods: Api<Pod> = env.api();
    let long = "p".repeat(100);
    let created = create(&pods, &pod(&long, "nginx")).await;
    assert_eq!(created.metadata.name.as_deref(), Some(long.as_str()));
    let e = api_err(
        pods.create(&PostParams::default(), &pod(&"p".repeat(254), "nginx"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let mut generated = pod("", "nginx");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some(format!("{}-", "g".repeat(70)));
    let created = create(&pods, &generated).await;
    let name = created.metadata.name.unwrap();
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with(&"g".repeat(58)), "{name}");
    env.cleanup().await;
}

/// A body without apiVersion and kind: a built-in kind's decoder takes them from the URL, a
/// custom resource (decoded as unstructured) is refused with kube's messages.
#[tokio::test]
async fn a_body_without_its_type_is_defaulted_for_built_ins_and_refused_for_custom_resources() {
    let (env, _widgets) = widget_env("typeless").await;
    let cms = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let (code, v) = post_json(&env.client, &cms, br#"{"metadata":{"name":"c"}}"#).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        (v["apiVersion"].as_str(), v["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    let widgets = format!("/apis/{GROUP}/v1/namespaces/{}/widgets", env.ns);
    let (code, v) = post_json(
        &env.client,
        &widgets,
        br#"{"metadata":{"name":"w"},"spec":{"image":"x"}}"#,
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("BadRequest")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Object 'Kind' is missing in '"),
        "{v}"
    );
    let (code, v) = post_json(
        &env.client,
        &widgets,
        br#"{"kind":"Widget","metadata":{"name":"w"},"spec":{"image":"x"}}"#,
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["message"],
        format!(
            "the API version in the data () does not match the expected API version ({GROUP}/v1)"
        )
    );
    env.cleanup().await;
}

/// `resourceVersionMatch=Exact`: the list as of that version, or `410 Expired` when the server
/// no longer has it (kube-apiserver serves snapshots it still holds), never the current list
/// in its place; a version from the future is `504`.
#[tokio::test]
async fn an_exact_list_is_that_snapshot_or_expired() {
    let env = env("exact-list").await;
    let base = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let (code, first) = post_json(&env.client, &base, br#"{"metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 201);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let exact = |rv: String| {
        let (client, base) = (env.client.clone(), base.clone());
        async move {
            raw(
                &client,
                "GET",
                &format!("{base}?resourceVersion={rv}&resourceVersionMatch=Exact"),
                "",
                b"",
            )
            .await
        }
    };
    let (code, list) = exact(rv.clone()).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(names_in_items(&list), ["a"]);
    let (code, _) = post_json(&env.client, &base, br#"{"metadata":{"name":"b"}}"#).await;
    assert_eq!(code, 201);
    let (code, answer) = exact(rv).await;
    if real_cluster().is_none() {
        // The embedded server keeps no snapshots: a version older than the last change is gone.
        assert_eq!(
            (code, answer["reason"].as_str()),
            (410, Some("Expired")),
            "{answer}"
        );
        assert_eq!(
            answer["message"],
            "The resourceVersion for the provided list is too old."
        );
    } else {
        assert!(code == 410 || names_in_items(&answer) == ["a"], "{answer}");
    }
    let (code, answer) = exact("999999999999".into()).await;
    assert_eq!(
        (code, answer["reason"].as_str()),
        (504, Some("Timeout")),
        "{answer}"
    );
    env.cleanup().await;
}

fn names_in_items(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
