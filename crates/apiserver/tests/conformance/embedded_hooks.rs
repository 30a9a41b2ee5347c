//! Embedded-server hooks a real cluster does not have: fault injection, request accounting and the
//! change feed (skipped on a real cluster).

use std::time::Duration;

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PostParams, WatchEvent, WatchParams};
use serde_json::json;

#[tokio::test]
async fn faults_and_request_accounting() {
    let env = env("faults").await;
    let Some(server) = env.server.clone() else {
        eprintln!("skipped on a real cluster: fault injection is an embedded-server feature");
        return;
    };
    let op = server.client_as("operator");
    let mine: Api<Lease> = Api::namespaced(op, &env.ns);
    let theirs: Api<Lease> = env.api();
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
    create(&theirs, &lease("y")).await;
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
    // Error answers are counted by client and code: the injected 409 to the operator, the
    // injected 500 to the conformance client.
    assert_eq!(server.error_responses("operator", 409), 1);
    assert_eq!(server.error_responses("conformance", 500), 1);
    assert_eq!(server.error_responses("operator", 500), 0);
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
    let leases: Api<Lease> = env.api();
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
    create(&operator, &pod("p", "nginx")).await;
    send_status_patch(
        &kubelet,
        "p",
        Patch::Merge(json!({"status": {"phase": "Running"}})),
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
