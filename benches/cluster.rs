//! Throughput of the embedded API server with 10,000 pods, through a real `kube::Client`
//! (so client-side serde is included, as in a simulation). Run with
//! `cargo bench --bench cluster`; results go in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Instant;

use embedded_apiserver::ApiServer;
use futures::StreamExt;
use gamedeploy_clock::SystemClock;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

#[path = "support/alloc.rs"]
mod alloc;
use alloc::live;

const N: usize = 10_000;

fn pod(i: usize, owner_uid: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "game", "shard": format!("s{}", i % 100)},
            "ownerReferences": [{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "name": "owner", "uid": owner_uid, "controller": true}]},
        "spec": {"readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": [{"name": "app", "image": "game:1", "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "prod"}]}]}
    }))
    .expect("pod")
}

fn report(what: &str, n: usize, t: std::time::Duration) {
    println!(
        "{what:<48} {n:>6} ops in {:>8.3} s  = {:>9.0} ops/s  ({:.1} µs/op)",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64(),
        t.as_secs_f64() * 1e6 / n as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = ApiServer::new(Arc::new(SystemClock));
    let client = server.client_as("bench");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Every pod has a live owner, as the operator's pods do (exercises the GC bookkeeping).
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "default");
    let owner = leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}, "spec": {}}))
                .expect("lease"),
        )
        .await
        .expect("owner");
    let owner_uid = owner.metadata.uid.expect("uid");
    let before = live();
    let t = Instant::now();
    for i in 0..N {
        pods.create(&PostParams::default(), &pod(i, &owner_uid))
            .await
            .expect("create");
    }
    report("create (POST) pods", N, t.elapsed());
    let after = live();
    println!(
        "memory: {:.1} KiB live heap per stored pod (object + event log entry + indexes)",
        (after - before) as f64 / N as f64 / 1024.0
    );
    let t = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        let l = pods.list(&ListParams::default()).await.expect("list");
        assert_eq!(l.items.len(), N);
    }
    report("LIST all 10,000 pods (per list)", rounds, t.elapsed());
    let t = Instant::now();
    let rounds = 50;
    for i in 0..rounds {
        let l = pods
            .list(&ListParams::default().labels(&format!("shard=s{i}")))
            .await
            .expect("list");
        assert_eq!(l.items.len(), N / 100);
    }
    report("LIST label selector (100 of 10,000)", rounds, t.elapsed());
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let l = pods
            .list(&ListParams::default().limit(500))
            .await
            .expect("list");
        assert_eq!(l.items.len(), 500);
    }
    report("LIST limit=500 page", rounds, t.elapsed());

    // A watcher started now sees every patch below.
    let rv = pods
        .list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let watch_pods = pods.clone();
    let watcher = tokio::spawn(async move {
        let mut s = watch_pods
            .watch(&WatchParams::default().timeout(290), &rv)
            .await
            .expect("watch")
            .boxed();
        let mut n = 0;
        let t = Instant::now();
        while n < 2 * N {
            match s.next().await {
                Some(Ok(WatchEvent::Modified(_))) => n += 1,
                Some(Ok(_)) => {}
                other => panic!("watch ended: {other:?}"),
            }
        }
        t.elapsed()
    });
    let t = Instant::now();
    for i in 0..N {
        pods.patch_status(
            &format!("pod-{i:05}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"state": "ready"}},
                "status": {"conditions": [{"type": "InPlaceUpdateReady", "status": "True"}]}})),
        )
        .await
        .expect("patch status");
    }
    report("PATCH pods/status (merge)", N, t.elapsed());
    let t = Instant::now();
    for i in 0..N {
        pods.patch(
            &format!("pod-{i:05}"),
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "app", "image": "game:2"}]}}),
            ),
        )
        .await
        .expect("patch");
    }
    report("PATCH pod image (strategic merge)", N, t.elapsed());
    let watched = watcher.await.expect("watcher");
    report("WATCH events delivered while patching", 2 * N, watched);
    // Replay: a new watch from an old version streams the logged history.
    let t = Instant::now();
    let mut s = pods
        .watch(&WatchParams::default().timeout(290), "0")
        .await
        .expect("watch")
        .boxed();
    let mut n = 0;
    while n < N {
        if let Some(Ok(WatchEvent::Added(_))) = s.next().await {
            n += 1;
        }
    }
    report(
        "WATCH initial state (ADDED for 10,000 pods)",
        N,
        t.elapsed(),
    );
    let total: u64 = server.request_counts().iter().map(|c| c.count).sum();
    println!("requests served: {total}");
}
