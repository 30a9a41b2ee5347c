//! Query options checked before anything is read or written, as apimachinery's
//! `Validate{Create,Update,Patch,Delete,List}Options` do: a value the server does not know is
//! `422 Invalid` on `XOptions.meta.k8s.io ""`, never read as "not set" (a `dryRun=true` that
//! really created and deleted objects).

use crate::support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::{Value, json};

fn cm_body(name: &str) -> Vec<u8> {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
        .to_string()
        .into_bytes()
}

/// (code, reason, message) of a refused request.
fn refusal(answer: &(u16, Value)) -> (u16, &str, &str) {
    let (code, body) = answer;
    (
        *code,
        body["reason"].as_str().unwrap_or_default(),
        body["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn dry_run_values_other_than_all_are_refused_and_touch_nothing() {
    let env = env("dry-run-values").await;
    let base = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let cms: Api<ConfigMap> = env.api();
    for (i, value) in ["true", "all", "Bogus", ""].iter().enumerate() {
        let name = format!("dry-{i}");
        let answer = post_json(
            &env.client,
            &format!("{base}?dryRun={value}"),
            &cm_body(&name),
        )
        .await;
        assert_eq!(
            refusal(&answer),
            (
                422,
                "Invalid",
                format!(
                    "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: \
                     [\"{value}\"]: supported values: \"All\""
                )
                .as_str()
            )
        );
        assert_eq!(answer.1["details"]["kind"], "CreateOptions");
        assert_eq!(answer.1["details"]["group"], "meta.k8s.io");
        assert_eq!(
            answer.1["details"]["causes"][0]["reason"],
            "FieldValueNotSupported"
        );
        assert!(cms.get_opt(&name).await.unwrap().is_none(), "not created");
    }
    let (code, _) = post_json(&env.client, &format!("{base}?dryRun=All"), &cm_body("d")).await;
    assert_eq!(code, 201);
    assert!(cms.get_opt("d").await.unwrap().is_none(), "a dry run");
    create(&cms, &serde_json::from_slice(&cm_body("kept")).unwrap()).await;
    let answer = raw(
        &env.client,
        "DELETE",
        &format!("{base}/kept?dryRun=true"),
        "application/json",
        b"",
    )
    .await;
    assert_eq!(refusal(&answer).0, 422);
    assert_eq!(answer.1["details"]["kind"], "DeleteOptions");
    let answer = raw(
        &env.client,
        "DELETE",
        &format!("{base}/kept"),
        "application/json",
        br#"{"dryRun": ["true"]}"#,
    )
    .await;
    assert_eq!(refusal(&answer).0, 422);
    assert!(cms.get_opt("kept").await.unwrap().is_some(), "not deleted");
    env.cleanup().await;
}

#[tokio::test]
async fn field_manager_and_propagation_policy_are_checked() {
    let env = env("field-manager").await;
    let base = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let long = "m".repeat(200);
    let answer = post_json(
        &env.client,
        &format!("{base}?fieldManager={long}"),
        &cm_body("a"),
    )
    .await;
    assert_eq!(
        refusal(&answer),
        (
            422,
            "Invalid",
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more \
             than 128 bytes"
        )
    );
    let answer = post_json(
        &env.client,
        &format!("{base}?fieldManager=a%01b"),
        &cm_body("a"),
    )
    .await;
    assert_eq!(
        refusal(&answer).2,
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\x01b\": \
         invalid character U+0001 (at position 1)"
    );
    let answer = post_json(
        &env.client,
        &format!("{base}?fieldValidation=Loose"),
        &cm_body("a"),
    )
    .await;
    assert_eq!(
        refusal(&answer).2,
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \
         \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    let (code, _) = post_json(&env.client, &base, &cm_body("a")).await;
    assert_eq!(code, 201);
    let answer = raw(
        &env.client,
        "DELETE",
        &format!("{base}/a?propagationPolicy=Bogus"),
        "application/json",
        b"",
    )
    .await;
    assert_eq!(
        refusal(&answer),
        (
            422,
            "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \
             \"Bogus\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        )
    );
    let cms: Api<ConfigMap> = env.api();
    assert!(cms.get_opt("a").await.unwrap().is_some(), "not deleted");
    env.cleanup().await;
}

#[tokio::test]
async fn list_and_watch_options_are_checked() {
    let env = env("list-options").await;
    let base = format!("/api/v1/namespaces/{}/configmaps", env.ns);
    let cases = [
        (
            "resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless \
             resourceVersion is provided",
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Bogus",
            "resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \
             \"NotOlderThan\", \"\"",
        ),
        (
            "sendInitialEvents=true",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
        (
            "watch=true&resourceVersion=1&resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch \
             unless sendInitialEvents is provided",
        ),
    ];
    for (query, want) in cases {
        let answer = raw(&env.client, "GET", &format!("{base}?{query}"), "", b"").await;
        assert_eq!(
            refusal(&answer),
            (
                422,
                "Invalid",
                format!("ListOptions.meta.k8s.io \"\" is invalid: {want}").as_str()
            ),
            "{query}"
        );
    }
    env.cleanup().await;
}
