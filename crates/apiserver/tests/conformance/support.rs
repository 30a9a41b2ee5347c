//! Conformance harness: one `kube::Client` per test, talking to the embedded API server or,
//! when `GAMEDEPLOY_CONFORMANCE_KUBECONFIG` names a kubeconfig, to that real cluster (each
//! test then works in its own namespace, deleted at the end).

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, SystemClock};
use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    /// The API of a namespaced kind in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

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
    wait_until(WAIT, "CRD never became served", || async {
        api.list(&Default::default()).await.is_ok()
    })
    .await;
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

/// A fresh namespace with the Widget CRD installed, and the Widget API in it.
pub async fn widget_env(test: &str) -> (Env, Api<DynamicObject>) {
    let env = env(test).await;
    install_widgets(&env.client).await;
    let api = widgets(&env);
    (env, api)
}

/// A Lease labelled `app=a`, held by `x`.
pub fn lease(name: &str) -> k8s_openapi::api::coordination::v1::Lease {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "a"}}, "spec": {"holderIdentity": "x"}})).unwrap()
}

/// Create `obj` with default parameters, expecting success.
pub async fn create<K>(api: &Api<K>, obj: &K) -> K
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), obj)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
}

/// PATCH `name` with default parameters (no field manager, no dry run).
pub async fn send_patch<K, P>(api: &Api<K>, name: &str, patch: Patch<P>) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &patch).await
}

/// PATCH `name`'s `/status` with default parameters.
pub async fn send_status_patch<K, P>(api: &Api<K>, name: &str, patch: Patch<P>) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug,
{
    api.patch_status(name, &PatchParams::default(), &patch)
        .await
}

/// Polls `done` (every 100 ms) until it holds; panics with `what` once `within` has passed.
pub async fn wait_until<F, Fut>(within: Duration, what: impl std::fmt::Display, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Raw POST of a JSON body: (status code, JSON body).
pub async fn post_json(client: &Client, uri: &str, body: &[u8]) -> (u16, Value) {
    raw(client, "POST", uri, "application/json", body).await
}

/// The `name` of each entry of a JSON array (discovery resources, table columns, …).
pub fn names_in(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .filter_map(|entry| entry["name"].as_str())
        .collect()
}
