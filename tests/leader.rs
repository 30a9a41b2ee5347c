//! Two operators under leader election against one embedded API server, on virtual time: only
//! the holder of the Lease writes, a standby finishes the rollout of a leader killed in the
//! middle of it, and a leader that loses the lease sends nothing more (issue 11).

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::SharedClock;
use gamedeploy_core::api::{GameDeployment, crds};
use gamedeploy_core::names;
use gamedeploy_operator::controller::Options;
use gamedeploy_operator::leader::{Handle, LeaseSettings};
use gamedeploy_operator::metrics::Metrics;
use gamedeploy_operator::write_gate::WriteGate;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

#[path = "support/embedded.rs"]
mod embedded;
use embedded::{cluster_with, seed_gd, start_kubelet, wait_for};

const LEASE: &str = "gamedeploy-operator";
const DURATION: Duration = Duration::from_secs(15);

/// The seed's cluster with a simulated kubelet, so pods run and in-place updates complete.
async fn cluster() -> (ApiServer, SharedClock, kube::Client) {
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    start_kubelet(&server, &clock);
    (server, clock, admin)
}

/// An operator named `who` (its identity, event instance and API client name).
fn start(server: &ApiServer, clock: &SharedClock, who: &str, seed: u64) -> (Handle, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let settings = LeaseSettings {
        name: LEASE.into(),
        namespace: "default".into(),
        identity: who.into(),
        duration: DURATION,
        renew: Duration::from_secs(5),
    };
    let options = Options {
        seed,
        instance: who.into(),
        metrics: metrics.clone(),
        gate: WriteGate::default(),
        ..Default::default()
    };
    let handle = Handle::start(server.client_as(who), clock.clone(), settings, options);
    (handle, metrics)
}

/// Writes `client` sent, by resource; `leases` counts the election's own.
fn writes(server: &ApiServer, client: &str) -> Vec<(String, String, u64)> {
    server
        .request_counts()
        .into_iter()
        .filter(|c| c.client == client)
        .filter(|c| matches!(c.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .map(|c| (format!("{} {}", c.verb, c.resource), c.subresource, c.count))
        .collect()
}

fn non_lease_writes(server: &ApiServer, client: &str) -> u64 {
    writes(server, client)
        .iter()
        .filter(|(what, _, _)| !what.ends_with(" leases"))
        .map(|(_, _, n)| n)
        .sum()
}

async fn holder(admin: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), "default")
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
}

async fn set_image(admin: &kube::Client, image: &str) {
    let patch = serde_json::json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]);
    Api::<GameDeployment>::namespaced(admin.clone(), "default")
        .patch(
            "test-gamedeployment",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
        )
        .await
        .unwrap();
}

async fn columns(admin: &kube::Client) -> [i32; 5] {
    let gd = Api::<GameDeployment>::namespaced(admin.clone(), "default")
        .get("test-gamedeployment")
        .await
        .unwrap();
    let s = gd.status.unwrap_or_default();
    [
        gd.spec.replicas.unwrap_or_default(),
        s.replicas,
        s.ready_replicas,
        s.updated_replicas,
        s.updated_ready_replicas,
    ]
}

async fn pods(admin: &kube::Client) -> Vec<Pod> {
    Api::<Pod>::namespaced(admin.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

#[tokio::test(start_paused = true)]
async fn a_standby_finishes_the_rollout_of_a_leader_killed_in_the_middle_of_it() {
    let (server, clock, admin) = cluster().await;
    let (a, _) = start(&server, &clock, "operator-a", 1);
    assert!(wait_for(|| async { holder(&admin).await.as_deref() == Some("operator-a") }).await);
    let (b, b_metrics) = start(&server, &clock, "operator-b", 2);
    assert!(wait_for(|| async { columns(&admin).await == [8, 8, 8, 8, 8] }).await);
    assert_eq!(
        non_lease_writes(&server, "operator-b"),
        0,
        "the standby wrote"
    );
    assert!(b_metrics.readiness().1.starts_with("standby"));

    set_image(&admin, "python:latest").await;
    // Mid-rollout: the first pods are unready, waiting out their 30 s grace.
    assert!(
        wait_for(|| async {
            pods(&admin).await.iter().any(|p| {
                p.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(names::ANNOTATION_STATE))
            })
        })
        .await
    );
    let before_kill = writes(&server, "operator-a");
    let at_kill = columns(&admin).await;
    assert_ne!(
        at_kill,
        [8, 8, 8, 5, 5],
        "killed before the rollout finished"
    );
    let killed_at = clock.now();
    a.kill().await;

    assert!(wait_for(|| async { columns(&admin).await == [8, 8, 8, 5, 5] }).await);
    assert_eq!(
        writes(&server, "operator-a"),
        before_kill,
        "the killed leader wrote"
    );
    let lease = Api::<Lease>::namespaced(admin.clone(), "default")
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("operator-b"));
    let taken = lease.acquire_time.unwrap().0.duration_since(killed_at);
    assert!(
        taken <= jiff::SignedDuration::try_from(DURATION).unwrap(),
        "the standby took over {taken} after the kill"
    );
    eprintln!("killed at columns {at_kill:?}; the standby took the lease {taken} after the kill");
    assert!(non_lease_writes(&server, "operator-b") > 0);
    let pods = pods(&admin).await;
    let updated: Vec<i32> = pods
        .iter()
        .filter(|p| {
            p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("python:latest")
        })
        .map(restarts)
        .collect();
    assert_eq!(updated, [1; 5], "each updated pod restarted exactly once");
    assert!(
        pods.iter().filter(|p| restarts(p) == 0).count() == 3,
        "the partition's pods were never restarted"
    );
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_loses_the_lease_writes_nothing_more() {
    let (server, clock, admin) = cluster().await;
    let (a, a_metrics) = start(&server, &clock, "operator-a", 1);
    assert!(wait_for(|| async { columns(&admin).await == [8, 8, 8, 8, 8] }).await);
    // Someone else takes the lease, as after a partition longer than the renewal deadline.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "default");
    let mut lease = leases.get(LEASE).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.lease_duration_seconds = Some(3600);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        clock.now(),
    ));
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();
    assert!(wait_for(|| async { a_metrics.readiness().1.contains("intruder") }).await);
    let after_loss = non_lease_writes(&server, "operator-a");
    set_image(&admin, "python:latest").await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(non_lease_writes(&server, "operator-a"), after_loss);
    assert_eq!(columns(&admin).await[3], 8, "nothing was updated");
    assert!(
        a_metrics
            .render()
            .lines()
            .any(|l| l == "bkbcs_gamedeployment_leader 0")
    );
    a.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_leader_stopped_gracefully_hands_the_lease_over_at_once() {
    let (server, clock, admin) = cluster().await;
    let (a, _) = start(&server, &clock, "operator-a", 1);
    assert!(wait_for(|| async { holder(&admin).await.as_deref() == Some("operator-a") }).await);
    let (b, _) = start(&server, &clock, "operator-b", 2);
    assert!(wait_for(|| async { columns(&admin).await == [8, 8, 8, 8, 8] }).await);
    a.shutdown().await;
    let stopped_at = clock.now();
    assert!(wait_for(|| async { holder(&admin).await.as_deref() == Some("operator-b") }).await);
    let waited = clock.now().duration_since(stopped_at);
    assert!(
        waited <= jiff::SignedDuration::try_from(gamedeploy_operator::leader::RETRY).unwrap(),
        "the standby waited {waited} for a released lease"
    );
    b.shutdown().await;
}
