//! The real operator (kube-runtime Controller, plan, act) against the embedded API server, on
//! virtual time. No kubelet runs here: pods stay Pending, which is enough to check what the
//! operator writes and that partition and grace are obeyed.

use std::sync::Arc;
use std::time::Duration;

use gamedeploy::api::{GameDeployment, crds};
use gamedeploy::clock::{SharedClock, TokioClock};
use gamedeploy::cluster::ApiServer;
use gamedeploy::names;
use gamedeploy::runtime::operator::{Options, run};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

#[tokio::test(start_paused = true)]
async fn the_operator_creates_the_seed_and_updates_five_pods_in_place_after_the_grace() {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::new(clock.clone());
    let admin = server.client_as("scenario");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api.create(&PostParams::default(), &crd).await.unwrap();
    }
    let gd: GameDeployment =
        serde_saphyr::from_str(include_str!("../deploy/examples/inplace-update.yaml")).unwrap();
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    gds.create(&PostParams::default(), &gd).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run(
        server.client_as("operator"),
        clock.clone(),
        Options {
            seed: 7,
            instance: "test".into(),
            concurrency: 4,
        },
        async {
            let _ = stopped.await;
        },
    ));

    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    assert!(
        wait_for(|| async { pods.list(&ListParams::default()).await.unwrap().items.len() == 8 })
            .await
    );
    let created = pods.list(&ListParams::default()).await.unwrap().items;
    let first_rev = created[0].metadata.labels.as_ref().unwrap()[names::LABEL_REVISION].clone();
    for p in &created {
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::LABEL_REVISION], first_rev);
        assert!(
            p.metadata
                .name
                .as_ref()
                .unwrap()
                .ends_with(&labels[names::LABEL_INSTANCE_ID])
        );
        let gates = p.spec.as_ref().unwrap().readiness_gates.as_ref().unwrap();
        assert_eq!(gates[0].condition_type, names::CONDITION_INPLACE_READY);
    }
    let revs: Api<ControllerRevision> = Api::namespaced(admin.clone(), "default");
    assert_eq!(
        revs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    assert!(
        wait_for(|| async {
            gds.get("test-gamedeployment")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.replicas == 8)
        })
        .await
    );

    let patch = serde_json::json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "python:latest"}]);
    gds.patch(
        "test-gamedeployment",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
    )
    .await
    .unwrap();
    let updated = || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("python:latest")
            })
            .count()
    };
    // Within the 30 s grace nothing is patched; after it, exactly replicas - partition = 5.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        updated().await,
        0,
        "images patched before the grace period ended"
    );
    assert!(
        wait_for(|| async { updated().await == 5 }).await,
        "five pods patched after the grace"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(updated().await, 5, "partition 3 keeps three pods old");
    let after = pods.list(&ListParams::default()).await.unwrap().items;
    let names_after: Vec<_> = after.iter().map(|p| p.metadata.name.clone()).collect();
    let names_before: Vec<_> = created.iter().map(|p| p.metadata.name.clone()).collect();
    assert_eq!(names_after, names_before, "in place: same pods");
    let _ = stop.send(());
    let _ = operator.await;
}
