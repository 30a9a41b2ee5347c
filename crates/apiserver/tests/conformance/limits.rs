//! Size limits: request bodies and annotations.

use crate::support::*;
use serde_json::json;

/// kube-apiserver caps request bodies at 3 MiB (413) and an object's annotations at 256 KiB in
/// total, keys included (422 on `metadata.annotations`).
#[tokio::test]
async fn request_body_and_annotation_size_limits() {
    let env = env("limits").await;
    let uri = format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", env.ns);
    let with_annotation = |name: &str, len: usize| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "annotations": {"a": "x".repeat(len)}}})
        .to_string()
        .into_bytes()
    };
    let (code, v) = post_json(&env.client, &uri, &with_annotation("huge", 3 * 1024 * 1024)).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{v}"
    );
    assert_eq!(v["message"], "Request entity too large: limit is 3145728");
    // 256 KiB in total, counting the key "a".
    let (code, v) = post_json(&env.client, &uri, &with_annotation("over", 256 * 1024)).await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    let cause = &v["details"]["causes"][0];
    assert_eq!(cause["field"], "metadata.annotations", "{v}");
    assert_eq!(cause["reason"], "FieldValueTooLong", "{v}");
    assert!(
        cause["message"].as_str().unwrap_or("").contains("262144"),
        "{v}"
    );
    let (code, v) = post_json(&env.client, &uri, &with_annotation("fits", 256 * 1024 - 1)).await;
    assert_eq!(code, 201, "{v}");
    env.cleanup().await;
}
