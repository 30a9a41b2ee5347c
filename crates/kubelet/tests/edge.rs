//! The kubelet's IO edge against the embedded API server, on paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, TokioClock};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use simulated_kubelet::{KubeletConfig, NodeConfig, NodeRuntime};

fn cond(p: &Pod, t: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

#[tokio::test(start_paused = true)]
async fn binds_runs_gates_restarts_and_deletes_through_the_api() {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::new(clock.clone());
    let (tx, rx) = tokio::sync::watch::channel(KubeletConfig::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(simulated_kubelet::run(
        server.client_as("kubelet"),
        NodeConfig::default(),
        clock.clone(),
        rx,
        NodeRuntime::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let client = server.client_as("scenario");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p1"},
        "spec": {"readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
                 "containers": [{"name": "app", "image": "python:3.9"}, {"name": "side", "image": "envoy:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get("sim-node").await.unwrap();
    assert_eq!(node.status.unwrap().conditions.unwrap()[0].status, "True");
    let p = pods.get("p1").await.unwrap();
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some("sim-node")
    );
    assert_eq!(cond(&p, "ContainersReady").as_deref(), Some("True"));
    assert_eq!(cond(&p, "Ready").as_deref(), Some("False"), "gate missing");
    let uid = p.metadata.uid.clone();
    let ip = p.status.as_ref().unwrap().pod_ip.clone();
    // The operator sets the gate through pods/status.
    let gate =
        json!({"status": {"conditions": [{"type": "InPlaceUpdateReady", "status": "True"}]}});
    pods.patch_status("p1", &PatchParams::default(), &Patch::Strategic(gate))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = pods.get("p1").await.unwrap();
    assert_eq!(cond(&p, "Ready").as_deref(), Some("True"));
    // Ready turned True: the reason it was False ("ReadinessGatesNotReady") is gone with it.
    let ready = p.status.as_ref().unwrap().conditions.as_ref().unwrap();
    let ready = ready.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.reason.as_deref(), ready.message.as_deref()),
        (None, None)
    );
    // In-place image change: only that container restarts.
    let before = p.status.clone().unwrap().container_statuses.unwrap();
    let img = json!({"spec": {"containers": [{"name": "app", "image": "python:latest"}]}});
    pods.patch("p1", &PatchParams::default(), &Patch::Strategic(img))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = pods.get("p1").await.unwrap();
    let after = p.status.clone().unwrap().container_statuses.unwrap();
    assert_eq!(after[0].restart_count, 1);
    assert_ne!(after[0].container_id, before[0].container_id);
    assert_eq!(after[1], before[1]);
    assert_eq!(
        (
            p.metadata.uid.clone(),
            p.status.as_ref().unwrap().pod_ip.clone()
        ),
        (uid, ip)
    );
    assert_eq!(cond(&p, "InPlaceUpdateReady").as_deref(), Some("True"));
    assert_eq!(cond(&p, "Ready").as_deref(), Some("True"));
    // Config change mid-run and graceful deletion.
    tx.send_modify(|c| c.ready_seconds = 2);
    pods.delete(
        "p1",
        &DeleteParams {
            grace_period_seconds: Some(30),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        pods.get_opt("p1").await.unwrap().is_some(),
        "still in its grace period"
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(
        pods.get_opt("p1").await.unwrap().is_none(),
        "deleted after the grace period"
    );
    for r in server
        .request_counts()
        .iter()
        .filter(|r| r.client == "kubelet")
    {
        eprintln!("{r:?}");
    }
    stop_tx.send(()).unwrap();
    let runtime = task.await.unwrap().unwrap();
    assert_eq!(runtime.uids().count(), 0);
}

/// A kubelet that falls behind its pod watch (the server closes a watch `watch_backlog` events
/// behind, and keeps only `event_history` events to resume from) gets 410 Gone, lists again
/// and goes on: every pod of a burst runs, and so does every pod created after it.
/// A kubelet running until the test ends; the sender keeps its config channel open.
fn spawn_kubelet(
    server: &ApiServer,
    clock: &SharedClock,
    config: KubeletConfig,
) -> tokio::sync::watch::Sender<KubeletConfig> {
    let (tx, rx) = tokio::sync::watch::channel(config);
    tokio::spawn(simulated_kubelet::run(
        server.client_as("kubelet"),
        NodeConfig::default(),
        clock.clone(),
        rx,
        NodeRuntime::default(),
        std::future::pending::<()>(),
    ));
    tx
}

#[tokio::test(start_paused = true)]
async fn a_kubelet_whose_watch_expired_lists_again_and_runs_every_pod() {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::with_options(
        clock.clone(),
        embedded_apiserver::ServerOptions {
            seed: 0,
            event_history: 40,
            watch_backlog: 20,
        },
    );
    let _tx = spawn_kubelet(&server, &clock, KubeletConfig::default());
    let client = server.client_as("scenario");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let create = |name: String| {
        let pods = pods.clone();
        async move {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "app", "image": "python:3.9"}]}
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
        }
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    futures::future::join_all((0..600).map(|i| create(format!("burst-{i}")))).await;
    // (pods with ContainersReady, pods) once `n` run, or after two virtual minutes.
    let running = |n: usize| {
        let pods = pods.clone();
        async move {
            let mut seen = (0, 0);
            for _ in 0..120 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let list = pods.list(&Default::default()).await.unwrap().items;
                let ready = list
                    .iter()
                    .filter(|p| cond(p, "ContainersReady").as_deref() == Some("True"))
                    .count();
                seen = (ready, list.len());
                if ready == n {
                    break;
                }
            }
            seen
        }
    };
    assert_eq!(running(600).await, (600, 600), "after the burst");
    assert!(
        server.watch_stats().closed_lagging > 0,
        "the burst closed the kubelet's watch: {:?}",
        server.watch_stats()
    );
    futures::future::join_all((0..20).map(|i| create(format!("after-{i}")))).await;
    assert_eq!(running(620).await, (620, 620), "after the next pods");
}

#[tokio::test(start_paused = true)]
async fn several_nodes_register_their_capacity_and_bind_pods_that_fit() {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::new(clock.clone());
    let config: KubeletConfig = serde_json::from_value(
        json!({"nodes": {"count": 2, "cpu": "2", "memory": "4Gi", "pods": 110}}),
    )
    .unwrap();
    let _tx = spawn_kubelet(&server, &clock, config);
    let client = server.client_as("scenario");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b", "c"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "game:1",
                "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut names = Vec::new();
    for node in nodes.list(&Default::default()).await.unwrap() {
        let status = node.status.unwrap();
        assert_eq!(status.allocatable.as_ref().unwrap()["cpu"].0, "2");
        assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
        names.push(node.metadata.name.unwrap());
    }
    assert_eq!(names, ["sim-node", "sim-node-2"]);
    let node_of = |p: &Pod| p.spec.as_ref().unwrap().node_name.clone();
    assert_eq!(
        node_of(&pods.get("a").await.unwrap()).as_deref(),
        Some("sim-node")
    );
    assert_eq!(
        node_of(&pods.get("b").await.unwrap()).as_deref(),
        Some("sim-node-2")
    );
    let c = pods.get("c").await.unwrap();
    assert_eq!(node_of(&c), None);
    let scheduled = c.status.unwrap().conditions.unwrap();
    let scheduled = scheduled
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        (scheduled.reason.as_deref(), scheduled.message.as_deref()),
        (
            Some("Unschedulable"),
            Some("0/2 nodes are available: 2 Insufficient cpu.")
        )
    );
    // Room frees when a pod leaves: the waiting pod is bound without any change of its own.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("a", &now).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = pods.get("c").await.unwrap();
    assert_eq!(node_of(&c).as_deref(), Some("sim-node"));
    assert_eq!(cond(&c, "PodScheduled").as_deref(), Some("True"));
}
