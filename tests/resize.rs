//! In-place cpu resize end to end: the real operator, the embedded API server (which serves
//! `pods/resize`) and the simulated kubelet, on virtual time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use gamedeploy_core::api::{GameDeployment, crds};
use gamedeploy_core::inplace::same_quantity;
use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};

#[path = "support/embedded.rs"]
mod embedded;
use embedded::{cluster_with, seed_gd, start_kubelet, start_operator, wait_for};

fn cpu(request: &str) -> Option<ResourceRequirements> {
    Some(ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(request.to_string())),
            ("memory".to_string(), Quantity("256Mi".to_string())),
        ])),
        ..Default::default()
    })
}

/// The pod's `Ready` condition is True.
fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The cpu request the kubelet reports applied to the first container.
fn applied_cpu(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let requests = statuses.first()?.resources.as_ref()?.requests.as_ref()?;
    Some(requests.get("cpu")?.0.clone())
}

fn spec_cpu(pod: &Pod) -> Option<String> {
    let c = pod.spec.as_ref()?.containers.first()?;
    Some(
        c.resources
            .as_ref()?
            .requests
            .as_ref()?
            .get("cpu")?
            .0
            .clone(),
    )
}

/// The operator's start-up discovery finds `pods/resize` on a 1.35 server (the embedded one).
#[tokio::test(start_paused = true)]
async fn discovery_finds_the_resize_subresource() {
    let (server, _clock, _admin) = cluster_with(crds(), &seed_gd()).await;
    let client = server.client_as("operator");
    assert!(gamedeploy_operator::controller::serves_pod_resize(&client).await);
}

#[tokio::test(start_paused = true)]
async fn raising_cpu_resizes_five_pods_in_place_ready_throughout() {
    let mut gd = seed_gd();
    gd.spec.template.spec.as_mut().unwrap().containers[0].resources = cpu("500m");
    let (server, clock, admin) = cluster_with(crds(), &gd).await;
    start_kubelet(&server, &clock);
    let operator = start_operator(&server, &clock, 26);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let list = || async { pods.list(&ListParams::default()).await.unwrap().items };
    assert!(
        wait_for(|| async {
            let all = list().await;
            all.len() == 8 && all.iter().all(ready)
        })
        .await,
        "eight pods Ready"
    );
    let before: BTreeMap<String, String> = list()
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.metadata.uid.clone().unwrap(),
            )
        })
        .collect();

    // Every watch event of a pod that is not Ready is a readiness flip.
    let flips = Arc::new(AtomicUsize::new(0));
    let counted = flips.clone();
    let watched = pods.clone();
    let watch = tokio::spawn(async move {
        watcher(watched, watcher::Config::default())
            .applied_objects()
            .for_each(|p| {
                if p.as_ref().is_ok_and(|p| !ready(p)) {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                async {}
            })
            .await;
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        flips.load(Ordering::SeqCst),
        0,
        "all Ready before the change"
    );

    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let patch = serde_json::json!([{"op": "replace",
        "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "1"}]);
    gds.patch(
        "test-gamedeployment",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
    )
    .await
    .unwrap();
    let one = "1".to_string();
    let resized = || async {
        list()
            .await
            .iter()
            .filter(|p| {
                same_quantity(spec_cpu(p).as_ref(), Some(&one))
                    && same_quantity(applied_cpu(p).as_ref(), Some(&one))
            })
            .count()
    };
    assert!(
        wait_for(|| async { resized().await == 5 }).await,
        "five pods resized in place"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = list().await;
    assert_eq!(resized().await, 5, "partition 3 keeps three pods at 500m");
    let uids: BTreeMap<String, String> = after
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.metadata.uid.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(uids, before, "same pods, same UIDs");
    for p in &after {
        let statuses = p
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap();
        assert_eq!(statuses[0].restart_count, 0, "no restart");
        assert!(ready(p));
    }
    assert_eq!(
        flips.load(Ordering::SeqCst),
        0,
        "no pod left Service endpoints during the resize"
    );
    watch.abort();
    operator.shutdown().await;
}
