//! The embedded cluster for tests of the real operator on virtual time: the API server with
//! the CRDs and a GameDeployment, an optional simulated kubelet, and bounded waiting.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, TokioClock};
use gamedeploy_core::api::GameDeployment;
use gamedeploy_operator::controller::{Handle, Options};
use gamedeploy_operator::hookruns::providers::Measure;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// Polls `check` every 250 virtual ms, up to 300 virtual seconds; whether it came true.
pub async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// The seed's GameDeployment (`deploy/examples/inplace-update.yaml`).
pub fn seed_gd() -> GameDeployment {
    serde_saphyr::from_str(include_str!("../../deploy/examples/inplace-update.yaml")).unwrap()
}

/// The embedded server on virtual time with these CRDs installed and `gd` created; the client
/// is the admin's (`scenario`).
pub async fn cluster_with(
    crds: Vec<CustomResourceDefinition>,
    gd: &GameDeployment,
) -> (ApiServer, SharedClock, kube::Client) {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::new(clock.clone());
    let admin = server.client_as("scenario");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds {
        crd_api.create(&PostParams::default(), &crd).await.unwrap();
    }
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    gds.create(&PostParams::default(), gd).await.unwrap();
    (server, clock, admin)
}

/// A simulated kubelet node on `server`, for as long as the test runs: pods start, become
/// ready, and restart their containers on an image change.
pub fn start_kubelet(server: &ApiServer, clock: &SharedClock) {
    let (_config, config_rx) = tokio::sync::watch::channel(Default::default());
    tokio::spawn(simulated_kubelet::node::run(
        server.client_as("kubelet"),
        Default::default(),
        clock.clone(),
        config_rx,
        Default::default(),
        std::future::pending::<()>(),
    ));
}

/// Changes the seed GameDeployment's first container image, as the seed's `kubectl patch` does.
pub async fn set_image(admin: &kube::Client, image: &str) {
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let patch = serde_json::json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]);
    gds.patch(
        "test-gamedeployment",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).unwrap()),
    )
    .await
    .unwrap();
}

/// The real operator on its own task (`shutdown` stops it gracefully), with the live hook
/// providers.
pub fn start_operator(server: &ApiServer, clock: &SharedClock, seed: u64) -> Handle {
    start_operator_with(server, clock, seed, None)
}

/// The same, with hook measurements answered by `measure`.
pub fn start_operator_with(
    server: &ApiServer,
    clock: &SharedClock,
    seed: u64,
    measure: Option<Arc<dyn Measure>>,
) -> Handle {
    let options = Options {
        seed,
        instance: "test".into(),
        concurrency: 4,
        measure,
        ..Default::default()
    };
    Handle::start(server.client_as("operator"), clock.clone(), options)
}
