//! The HTTP front end as real clients meet it (`serve`): HTTPS with the CA written into the
//! kubeconfig, and media types as kube-apiserver negotiates them. Embedded only: it serves the
//! embedded server on loopback and talks to it through a kube-rs client built from the
//! kubeconfig `serve` writes, so the TLS path is the one kubectl and client libraries take.

use embedded_apiserver::ApiServer;
use embedded_apiserver::serve::{self, Tls};
use gamedeploy_clock::SystemClock;
use http::{Method, Request};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::sync::Arc;

use super::support::real_cluster;

/// Serves a fresh embedded server over HTTPS on loopback; its kubeconfig and the server task.
async fn https() -> (String, Tls, tokio::task::JoinHandle<std::io::Result<()>>) {
    let server = ApiServer::new(Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = Tls::generate(&[]).expect("TLS identity");
    let kubeconfig = serve::kubeconfig_tls(addr, &tls);
    let task = tokio::spawn(serve::serve_tls(
        server,
        listener,
        tls.clone(),
        std::future::pending(),
    ));
    (kubeconfig, tls, task)
}

async fn client_from(kubeconfig: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config from the kubeconfig");
    Client::try_from(cfg).expect("client")
}

/// Sends `body` with no Content-Type; (status, answer as JSON).
async fn untyped(client: &Client, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .unwrap();
    assert!(req.headers().get(http::header::CONTENT_TYPE).is_none());
    let resp = client.send(req).await.expect("an answer");
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("the answer's body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// kube-apiserver's `NegotiateInputSerializerForMediaType` reads an empty media type as JSON
/// on create and update (the official Python client sends its bodies without one); a patch's
/// media type is its patch type, so a patch without one is 415.
#[tokio::test]
async fn create_and_update_without_a_media_type_are_json_a_patch_is_not() {
    if real_cluster().is_some() {
        return;
    }
    let (kubeconfig, _tls, serving) = https().await;
    let client = client_from(&kubeconfig).await;
    let path = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "untyped"}, "data": {"a": "1"}});
    let (code, created) = untyped(&client, Method::POST, path, &cm).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["data"]["a"], "1");

    let mut update = created.clone();
    update["data"]["a"] = json!("2");
    let (code, updated) = untyped(&client, Method::PUT, &format!("{path}/untyped"), &update).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["data"]["a"], "2");

    let (code, refused) = untyped(
        &client,
        Method::PATCH,
        &format!("{path}/untyped"),
        &json!({"data": {"a": "3"}}),
    )
    .await;
    assert_eq!(code, 415, "{refused}");
    assert_eq!(refused["reason"], "UnsupportedMediaType", "{refused}");
    serving.abort();
}

/// The kubeconfig `serve` writes is `https` with the CA that signed the serving certificate; a
/// client trusting another CA is refused at the handshake.
#[tokio::test]
async fn the_kubeconfig_trusts_the_servers_ca_and_no_other() {
    if real_cluster().is_some() {
        return;
    }
    let (kubeconfig, tls, serving) = https().await;
    assert!(
        kubeconfig.contains("server: https://127.0.0.1:"),
        "{kubeconfig}"
    );
    assert!(
        kubeconfig.contains("certificate-authority-data: "),
        "{kubeconfig}"
    );
    assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let client = client_from(&kubeconfig).await;
    let version = client
        .apiserver_version()
        .await
        .expect("version over HTTPS");
    assert_eq!(version.major, "1");

    let other = Tls::generate(&[]).expect("another identity");
    let addr = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .unwrap()
        .parse()
        .unwrap();
    let stranger = client_from(&serve::kubeconfig_tls(addr, &other)).await;
    let err = stranger
        .apiserver_version()
        .await
        .expect_err("a CA the server's certificate is not from");
    let text = format!("{err:?}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    serving.abort();
}
