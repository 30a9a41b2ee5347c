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
