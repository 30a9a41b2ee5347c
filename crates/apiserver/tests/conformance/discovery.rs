//! Discovery documents (`/api`, `/apis`) and `/openapi/v3`.

use std::time::Duration;

use crate::support::*;
use kube::api::{Api, Patch};
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_documents() {
    let env = env("discovery").await;
    install_widgets(&env.client).await;
    let (code, core) = raw(&env.client, "GET", "/api/v1", "", b"").await;
    assert_eq!(code, 200);
    let names: Vec<&str> = names_in(&core["resources"]);
    for n in ["pods", "pods/status", "events", "namespaces", "nodes"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let (_, groups) = raw(&env.client, "GET", "/apis", "", b"").await;
    let gs: Vec<&str> = names_in(&groups["groups"]);
    for g in [
        "apps",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
        GROUP,
    ] {
        assert!(gs.contains(&g), "{g} in {gs:?}");
    }
    let (_, w) = raw(&env.client, "GET", &format!("/apis/{GROUP}/v1"), "", b"").await;
    let res = w["resources"].as_array().unwrap();
    let main = res.iter().find(|r| r["name"] == "widgets").unwrap();
    assert_eq!(main["kind"], "Widget");
    assert_eq!(main["namespaced"], true);
    assert_eq!(main["shortNames"], json!(["wdg"]));
    assert!(res.iter().any(|r| r["name"] == "widgets/status"));
    assert!(
        res.iter()
            .any(|r| r["name"] == "widgets/scale" && r["kind"] == "Scale")
    );
    // kube's own discovery client works too.
    let d = kube::Discovery::new(env.client.clone())
        .filter(&[GROUP])
        .run()
        .await
        .unwrap();
    assert!(d.has_group(GROUP));
    env.cleanup().await;
}

/// GET through the client without following redirects: (status, Location header, JSON body).
async fn get_raw(client: &kube::Client, uri: &str) -> (u16, String, Value) {
    let req = http::Request::builder()
        .uri(uri)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let resp = client.send(req).await.expect("transport");
    let code = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (
        code,
        location,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The component schema carrying `x-kubernetes-group-version-kind` for this kind.
fn schema_for_gvk<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    doc.pointer("/components/schemas")?
        .as_object()?
        .values()
        .find(|s| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        g["group"] == group && g["version"] == version && g["kind"] == kind
                    })
                })
        })
}

/// The PATCH operation of a kind's item path (what kubectl's field-validation check reads).
fn patch_op<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    doc.get("paths")?.as_object()?.values().find_map(|p| {
        let op = p.get("patch")?;
        let g = op.get("x-kubernetes-group-version-kind")?;
        (g["group"] == group && g["version"] == version && g["kind"] == kind).then_some(op)
    })
}

/// The hashed URL of a group/version in `/openapi/v3`, waiting until it is published (a real
/// cluster publishes CRD schemas asynchronously) and differs from `not`.
async fn openapi_url(client: &kube::Client, key: &str, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, _, disc) = get_raw(client, "/openapi/v3").await;
        assert_eq!(code, 200, "/openapi/v3: {disc}");
        if let Some(url) = disc
            .pointer(&format!(
                "/paths/{}/serverRelativeURL",
                key.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            && Some(url) != not
        {
            return url.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never (re)published in /openapi/v3: {disc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn openapi_v3_publishes_crd_and_builtin_schemas() {
    let env = env("openapi").await;
    install_widgets(&env.client).await;
    let key = format!("apis/{GROUP}/v1");
    let url = openapi_url(&env.client, &key, None).await;
    assert!(
        url.starts_with(&format!("/openapi/v3/{key}?hash=")),
        "{url}"
    );
    let (code, _, doc) = get_raw(&env.client, &url).await;
    assert_eq!(code, 200);
    let widget = schema_for_gvk(&doc, GROUP, "v1", "Widget").expect("Widget schema with GVK");
    assert_eq!(
        widget.pointer("/properties/spec/properties/image/pattern"),
        Some(&json!("^[a-z0-9.:/-]+$")),
        "the CRD's openAPIV3Schema is published"
    );
    let op = patch_op(&doc, GROUP, "v1", "Widget").expect("PATCH operation for Widget");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"fieldValidation"), "{params:?}");
    let content = op.pointer("/requestBody/content").expect("request body");
    assert!(content.get("application/merge-patch+json").is_some());
    assert!(
        content
            .get("application/strategic-merge-patch+json")
            .is_none(),
        "custom resources take no strategic merge patch"
    );

    // Built-ins: the Pod schema, with the patch metadata kubectl's apply needs.
    let core_url = openapi_url(&env.client, "api/v1", None).await;
    let (code, _, core) = get_raw(&env.client, &core_url).await;
    assert_eq!(code, 200);
    assert!(schema_for_gvk(&core, "", "v1", "Pod").is_some());
    let containers = core
        .pointer("/components/schemas/io.k8s.api.core.v1.PodSpec/properties/containers")
        .expect("PodSpec.containers");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let pod_patch = patch_op(&core, "", "v1", "Pod").expect("PATCH operation for Pod");
    assert!(
        pod_patch
            .pointer("/requestBody/content/application~1strategic-merge-patch+json")
            .is_some()
    );

    // Changing the CRD changes the hash; the old URL redirects to the new one.
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    send_patch(&crds, &format!("widgets.{GROUP}"), Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "add",
                "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/openapiProbe",
                "value": {"type": "string"}}]))
            .unwrap(),
        ))
    .await
    .unwrap();
    let new_url = openapi_url(&env.client, &key, Some(&url)).await;
    let (code, _, doc) = get_raw(&env.client, &new_url).await;
    assert_eq!(code, 200);
    let widget = schema_for_gvk(&doc, GROUP, "v1", "Widget").expect("Widget schema");
    assert!(
        widget
            .pointer("/properties/spec/properties/openapiProbe")
            .is_some()
    );
    let (code, location, _) = get_raw(&env.client, &url).await;
    assert_eq!(code, 301, "an obsolete hash redirects");
    assert!(
        new_url.ends_with(&location) || location.ends_with(&new_url),
        "{location} vs {new_url}"
    );

    let (code, _, _) = get_raw(&env.client, "/openapi/v3/apis/nosuch.example.com/v1").await;
    assert_eq!(code, 404);
    env.cleanup().await;
}
