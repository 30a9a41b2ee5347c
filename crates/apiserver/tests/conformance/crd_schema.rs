//! Custom resources against their CRD schema: defaulting, pruning, OpenAPI validation and CEL
//! rules.

use crate::support::*;
use kube::api::{Patch, PostParams};
use serde_json::json;

#[tokio::test]
async fn crd_defaulting_pruning_and_validation() {
    let (env, api) = widget_env("schema").await;
    let w = create(
        &api,
        &widget(
            "w",
            json!({"image": "game:1", "unknown": 1, "extra": {"kept": true}}),
        ),
    )
    .await;
    assert_eq!(w.data["spec"]["replicas"], 1);
    assert_eq!(w.data["spec"]["mode"], "InPlace");
    assert_eq!(
        w.data["spec"]["strategy"]["partition"], 0,
        "nested default inside defaulted object"
    );
    assert_eq!(w.data["spec"]["strategy"]["maxUnavailable"], "25%");
    assert!(
        w.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        w.data["spec"]["extra"]["kept"], true,
        "preserve-unknown-fields"
    );
    let e = api_err(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"replicas": -1, "image": "UP", "mode": "X"})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let causes = e.details.as_ref().unwrap().causes.clone();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert!(
        fields.contains(&"spec.replicas")
            && fields.contains(&"spec.image")
            && fields.contains(&"spec.mode"),
        "{causes:?}"
    );
    assert!(
        e.message
            .starts_with(&format!("Widget.{GROUP} \"bad\" is invalid: [")),
        "{}",
        e.message
    );
    let e = api_err(
        api.create(&PostParams::default(), &widget("bad", json!({})))
            .await,
    );
    assert_eq!(e.details.unwrap().causes[0].field, "spec.image");
    // CEL rule.
    let e = api_err(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"image": "a", "replicas": 51})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("replicas must be at most 50"),
        "{}",
        e.message
    );
    // CEL transition rule (oldSelf).
    let e = api_err(
        send_patch(
            &api,
            "w",
            Patch::Merge(json!({"spec": {"mode": "Recreate"}})),
        )
        .await,
    );
    assert!(e.message.contains("mode is immutable"), "{}", e.message);
    // Type error.
    let e = api_err(
        send_patch(
            &api,
            "w",
            Patch::Merge(json!({"spec": {"replicas": "three"}})),
        )
        .await,
    );
    assert_eq!(e.details.unwrap().causes[0].reason, "FieldValueTypeInvalid");
    // PUT without resourceVersion is not allowed for custom resources.
    let mut w2 = api.get("w").await.unwrap();
    w2.metadata.resource_version = None;
    let e = api_err(api.replace("w", &PostParams::default(), &w2).await);
    assert_eq!(e.code, 422);
    env.cleanup().await;
}

/// A CRD (checked with `dryRun=All`, so nothing is installed) whose `spec` carries `rules`.
fn crd_with_rules(name: &str, spec_schema: serde_json::Value) -> Vec<u8> {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{name}s.{GROUP}")},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"plural": format!("{name}s"), "singular": name, "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "properties": {"spec": spec_schema}}}}]}})
    .to_string()
    .into_bytes()
}

/// kube-apiserver compiles every rule when the CRD is written: a rule over cel-go's 100,000
/// code points, or nested past its recursion limit, does not compile (422), and a rule whose
/// estimated cost passes `StaticEstimatedCostLimit` is forbidden with kube's message. Here a
/// 100 KB rule used to overflow the parser's stack and abort the whole process.
#[tokio::test]
async fn crd_rules_over_the_cel_limits_are_refused() {
    let env = env("crd-cel-limits").await;
    let uri = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?dryRun=All";
    let field = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule";
    let with_rule = |rule: String| {
        json!({"type": "object", "x-kubernetes-validations": [{"rule": rule}],
            "properties": {"a": {"type": "integer"},
                "names": {"type": "array", "items": {"type": "string"}},
                "few": {"type": "array", "maxItems": 10,
                    "items": {"type": "string", "maxLength": 10}}}})
    };
    let huge = format!("self.a == 0{}", " || self.a == 1".repeat(7000));
    let chain = format!("self{} == 1", ".a".repeat(30_000));
    for rule in [huge, chain] {
        let (code, v) =
            post_json(&env.client, uri, &crd_with_rules("gadget", with_rule(rule))).await;
        assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
        let cause = &v["details"]["causes"][0];
        assert_eq!(cause["field"], field, "{v}");
        assert!(
            cause["message"]
                .as_str()
                .unwrap_or("")
                .contains("compilation failed"),
            "{v}"
        );
    }
    let quadratic = "self.names.all(x, self.names.all(y, x == y))".to_string();
    let (code, v) = post_json(
        &env.client,
        uri,
        &crd_with_rules("gadget", with_rule(quadratic)),
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    let cause = &v["details"]["causes"][0];
    assert_eq!(
        (cause["field"].as_str(), cause["reason"].as_str()),
        (Some(field), Some("FieldValueForbidden")),
        "{v}"
    );
    assert!(
        cause["message"].as_str().unwrap_or("").starts_with(
            "Forbidden: estimated rule cost exceeds budget by factor of more than 100x"
        ),
        "{v}"
    );
    // The same rule over a bounded list, and a plain rule, are fine.
    for rule in ["self.few.all(x, self.few.all(y, x == y))", "self.a <= 10"] {
        let (code, v) = post_json(
            &env.client,
            uri,
            &crd_with_rules("gadget", with_rule(rule.into())),
        )
        .await;
        assert_eq!(code, 201, "{rule}: {v}");
    }
    env.cleanup().await;
}
