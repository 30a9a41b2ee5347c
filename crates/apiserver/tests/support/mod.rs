//! Conformance harness: one `kube::Client` per test, talking to the embedded API server or,
//! when `GAMEDEPLOY_CONFORMANCE_KUBECONFIG` names a kubeconfig, to that real cluster (each
//! test then works in its own namespace, deleted at the end).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, SystemClock};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

pub const KUBECONFIG_ENV: &str = "GAMEDEPLOY_CONFORMANCE_KUBECONFIG";

/// Generous bound on waiting for an event that must come; never asserts a duration.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Env {
    pub client: Client,
    pub ns: String,
    /// `Some` for the embedded server (tests of embedded-only features use it).
    pub server: Option<ApiServer>,
}

pub fn real_cluster() -> Option<String> {
    std::env::var(KUBECONFIG_ENV).ok().filter(|s| !s.is_empty())
}

pub async fn env(test: &str) -> Env {
    env_with_clock(test, Arc::new(SystemClock)).await
}

pub async fn env_with_clock(test: &str, clock: SharedClock) -> Env {
    let (client, server) = match real_cluster() {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
            let cfg = Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .expect("kubeconfig");
            (Client::try_from(cfg).expect("client"), None)
        }
        None => {
            let s = ApiServer::new(clock);
            (s.client_as("conformance"), Some(s))
        }
    };
    let suffix: String = (0..5).map(|_| fastrand::lowercase()).collect();
    let ns = format!("gdc-{}-{suffix}", test.replace('_', "-"));
    let ns = ns
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
    )
    .await
    .expect("create test namespace");
    Env { client, ns, server }
}

impl Env {
    pub async fn cleanup(self) {
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let _ = nss.delete(&self.ns, &DeleteParams::default()).await;
    }
}

pub const GROUP: &str = "conformance.gamedeploy.dev";

/// A CRD exercising defaults, pruning, validation, CEL, printer columns, status and scale.
pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.selector"}},
                "additionalPrinterColumns": [
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.replicas"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["image"],
                            "x-kubernetes-validations": [
                                {"rule": "self.replicas <= 50", "message": "replicas must be at most 50"},
                                {"rule": "!has(oldSelf.mode) || self.mode == oldSelf.mode", "message": "mode is immutable"}],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                "image": {"type": "string", "pattern": "^[a-z0-9.:/-]+$"},
                                "mode": {"type": "string", "enum": ["InPlace", "Recreate"], "default": "InPlace"},
                                "strategy": {"type": "object", "default": {}, "properties": {
                                    "partition": {"type": "integer", "default": 0},
                                    "maxUnavailable": {"x-kubernetes-int-or-string": true, "default": "25%"}}},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {"type": "object", "properties": {
                            "replicas": {"type": "integer"},
                            "selector": {"type": "string"},
                            "observedGeneration": {"type": "integer"}}}
                    }
                }}
            }]
        }
    })
}

pub fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Widget"), "widgets")
}

/// Create the Widget CRD (idempotent) and wait until the API serves it.
pub async fn install_widgets(client: &Client) -> Api<DynamicObject> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).expect("crd");
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create CRD: {e}"),
    }
    let ar = widget_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.list(&Default::default()).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "CRD never became served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api
}

pub fn widgets(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.ns, &widget_resource())
}

pub fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("widget")
}

/// A pod no real scheduler picks up (unknown schedulerName), so tests behave the same on a
/// real cluster: it stays unscheduled unless a test binds it.
pub fn pod(name: &str, image: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"schedulerName": "gamedeploy-conformance-none", "containers": [{"name": "app", "image": image}]}
    }))
    .expect("pod")
}

/// The API error of a failed call (panics on success or a transport error).
pub fn api_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// GET `uri` asking for another representation (`accept`, e.g. a Table): the JSON body.
pub async fn get_as(client: &Client, uri: &str, accept: &str) -> Value {
    let req = http::Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = client.send(req).await.expect("transport");
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}

/// Raw request: (status code, JSON body).
pub async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", ctype)
        .body(kube::client::Body::from(body.to_vec()))
        .expect("request");
    let resp = client.send(req).await.expect("transport");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (code, v)
}
