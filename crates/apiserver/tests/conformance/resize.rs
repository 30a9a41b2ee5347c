//! `pods/resize` (Kubernetes 1.35, `podResizeStrategy` and `ValidatePodResize`): only the cpu
//! and memory of containers change through it, by every patch type and PUT; the refusals with
//! kube-apiserver's messages; `metadata.generation` and `status.observedGeneration` on pods.

use crate::admission_policy::{bind_policy, unbind};
use crate::support::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A Burstable pod (requests below limits) no scheduler picks up.
fn resizable(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"schedulerName": "gamedeploy-conformance-none", "containers": [{
            "name": "app", "image": "nginx:1",
            "resources": {
                "requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"}}}]}
    }))
    .expect("pod")
}

/// PATCH `name`'s `/resize`.
async fn resize(api: &Api<Pod>, name: &str, patch: Patch<Value>) -> kube::Result<Pod> {
    api.patch_subresource("resize", name, &PatchParams::default(), &patch)
        .await
}

/// A strategic merge patch of the first container's resources.
fn resources(r: Value) -> Patch<Value> {
    Patch::Strategic(json!({"spec": {"containers": [{"name": "app", "resources": r}]}}))
}

/// The first container's resources as JSON.
fn resources_of(p: &Pod) -> Value {
    serde_json::to_value(&p.spec.as_ref().unwrap().containers[0].resources).unwrap()
}

/// The refusal of `r`: 422 Invalid, with `message` among its causes.
fn assert_refused(r: kube::Result<Pod>, message: &str) {
    let e = api_err(r);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "{e:?}");
    assert!(
        e.message.contains(message),
        "{message:?} in {:?}",
        e.message
    );
}

async fn setup(test: &str) -> (Env, Api<Pod>) {
    let env = env(test).await;
    let pods: Api<Pod> = env.api();
    create(&pods, &resizable("p")).await;
    (env, pods)
}

#[tokio::test]
async fn resize_by_strategic_merge_changes_cpu_and_bumps_generation() {
    let (env, pods) = setup("resize-smp").await;
    let p = resize(&pods, "p", resources(json!({"requests": {"cpu": "150m"}})))
        .await
        .unwrap();
    assert_eq!(
        resources_of(&p)["requests"],
        json!({"cpu": "150m", "memory": "64Mi"})
    );
    assert_eq!(p.metadata.generation, Some(2));
    env.cleanup().await;
}

#[tokio::test]
async fn resize_by_merge_and_json_patch_and_put() {
    let (env, pods) = setup("resize-types").await;
    let p = pods.get("p").await.unwrap();
    let mut c = serde_json::to_value(&p.spec.as_ref().unwrap().containers[0]).unwrap();
    c["resources"]["limits"]["cpu"] = json!("300m");
    let p = resize(
        &pods,
        "p",
        Patch::Merge(json!({"spec": {"containers": [c]}})),
    )
    .await
    .unwrap();
    assert_eq!(resources_of(&p)["limits"]["cpu"], "300m");
    let p = resize(
        &pods,
        "p",
        Patch::Json(
            serde_json::from_value(json!([{"op": "replace",
                "path": "/spec/containers/0/resources/requests/memory", "value": "100Mi"}]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resources_of(&p)["requests"]["memory"], "100Mi");
    let mut p = pods.get_subresource("resize", "p").await.unwrap();
    p.spec.as_mut().unwrap().containers[0].resources = Some(
        serde_json::from_value(json!({"requests": {"cpu": "120m", "memory": "100Mi"},
            "limits": {"cpu": "300m", "memory": "128Mi"}}))
        .unwrap(),
    );
    let p = pods
        .replace_subresource("resize", "p", &PostParams::default(), &p)
        .await
        .unwrap();
    assert_eq!(resources_of(&p)["requests"]["cpu"], "120m");
    assert_eq!(p.metadata.generation, Some(4));
    env.cleanup().await;
}

#[tokio::test]
async fn resize_by_server_side_apply() {
    let (env, pods) = setup("resize-apply").await;
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "250m"}}}]}});
    let p = pods
        .patch_subresource(
            "resize",
            "p",
            &PatchParams::apply("resizer").force(),
            &Patch::Apply(config),
        )
        .await
        .unwrap();
    assert_eq!(resources_of(&p)["limits"]["cpu"], "250m");
    env.cleanup().await;
}

#[tokio::test]
async fn resize_keeps_everything_but_container_resources() {
    // dropNonResizeUpdates: spec, status, labels and annotations come from the stored pod.
    let (env, pods) = setup("resize-drop").await;
    let p = resize(
        &pods,
        "p",
        Patch::Strategic(json!({
            "metadata": {"labels": {"x": "1"}, "annotations": {"a": "b"}},
            "spec": {"activeDeadlineSeconds": 60,
                "containers": [{"name": "app", "image": "nginx:2",
                    "resources": {"requests": {"memory": "96Mi"}}}]},
            "status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    assert_eq!(resources_of(&p)["requests"]["memory"], "96Mi");
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:1"));
    assert_eq!(spec.active_deadline_seconds, None);
    assert!(p.metadata.labels.is_none_or(|l| l.is_empty()));
    assert!(p.metadata.annotations.is_none_or(|a| a.is_empty()));
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    env.cleanup().await;
}

#[tokio::test]
async fn resize_get_returns_the_pod() {
    let (env, pods) = setup("resize-get").await;
    let p = pods.get_subresource("resize", "p").await.unwrap();
    assert_eq!(p.metadata.name.as_deref(), Some("p"));
    assert_eq!(resources_of(&p)["limits"]["memory"], "128Mi");
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_a_qos_class_change() {
    let (env, pods) = setup("resize-qos").await;
    // Requests raised to the limits would make the pod Guaranteed.
    let r = resize(
        &pods,
        "p",
        resources(json!({"requests": {"cpu": "200m", "memory": "128Mi"}})),
    )
    .await;
    assert_refused(
        r,
        "spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_other_resources() {
    let (env, pods) = setup("resize-other").await;
    let r = resize(
        &pods,
        "p",
        resources(json!({"limits": {"ephemeral-storage": "1Gi"}})),
    )
    .await;
    assert_refused(
        r,
        "spec: Forbidden: only cpu and memory resources are mutable",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_a_resize_policy_change() {
    let (env, pods) = setup("resize-policy").await;
    let r = resize(
        &pods,
        "p",
        Patch::Strategic(json!({"spec": {"containers": [{"name": "app",
            "resizePolicy": [{"resourceName": "memory", "restartPolicy": "RestartContainer"}]}]}})),
    )
    .await;
    assert_refused(
        r,
        "spec: Forbidden: only cpu and memory resources are mutable",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_removing_requests_or_limits() {
    let (env, pods) = setup("resize-remove").await;
    let r = resize(&pods, "p", resources(json!({"requests": {"memory": null}}))).await;
    assert_refused(
        r,
        "spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed",
    );
    let r = resize(&pods, "p", resources(json!({"limits": {"cpu": null}}))).await;
    assert_refused(
        r,
        "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_a_request_above_its_limit() {
    let (env, pods) = setup("resize-over").await;
    let r = resize(&pods, "p", resources(json!({"requests": {"cpu": "500m"}}))).await;
    assert_refused(
        r,
        "spec.containers[0].resources.requests: Invalid value: \"500m\": must be less than or equal to cpu limit of 200m",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_allows_a_memory_limit_decrease() {
    // 1.35 dropped 1.33's refusal of a memory-limit decrease under a NotRequired policy.
    let (env, pods) = setup("resize-memdown").await;
    let p = resize(
        &pods,
        "p",
        resources(json!({"limits": {"memory": "100Mi"}})),
    )
    .await
    .unwrap();
    assert_eq!(resources_of(&p)["limits"]["memory"], "100Mi");
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_non_sidecar_init_container_changes() {
    let env = env("resize-init").await;
    let pods: Api<Pod> = env.api();
    let mut p = serde_json::to_value(resizable("p")).unwrap();
    p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox:1",
        "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "20m"}}}]);
    create(&pods, &serde_json::from_value(p).unwrap()).await;
    let r = resize(
        &pods,
        "p",
        Patch::Strategic(json!({"spec": {"initContainers": [{"name": "init",
            "resources": {"requests": {"cpu": "15m"}}}]}})),
    )
    .await;
    assert_refused(
        r,
        "spec: Forbidden: resources for non-sidecar init containers are immutable",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn resize_refuses_a_running_pod_whose_node_cannot_resize() {
    // isPodResizeRequestSupported: a running container whose status has no `resources`.
    let (env, pods) = setup("resize-node").await;
    send_status_patch(
        &pods,
        "p",
        Patch::Merge(
            json!({"status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "nginx:1", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}),
        ),
    )
    .await
    .unwrap();
    let r = resize(&pods, "p", resources(json!({"requests": {"cpu": "150m"}}))).await;
    assert_refused(
        r,
        "spec: Forbidden: Pod running on node without support for resize",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn main_resource_refuses_resource_changes() {
    let (env, pods) = setup("resize-main").await;
    let r = send_patch(&pods, "p", resources(json!({"requests": {"cpu": "150m"}}))).await;
    assert_refused(
        r,
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    );
    env.cleanup().await;
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() {
    let (env, pods) = setup("resize-gen").await;
    assert_eq!(pods.get("p").await.unwrap().metadata.generation, Some(1));
    let p = send_patch(
        &pods,
        "p",
        Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(1), "metadata-only write");
    let p = send_status_patch(
        &pods,
        "p",
        Patch::Merge(json!({"status": {"phase": "Pending"}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(1), "status write");
    let p = resize(&pods, "p", resources(json!({"requests": {"cpu": "150m"}})))
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2), "resize");
    let p = resize(&pods, "p", resources(json!({"requests": {"cpu": "150m"}})))
        .await
        .unwrap();
    assert_eq!(
        p.metadata.generation,
        Some(2),
        "a resize that changes nothing"
    );
    let p = send_patch(
        &pods,
        "p",
        Patch::Strategic(json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}})),
    )
    .await
    .unwrap();
    assert_eq!(p.metadata.generation, Some(3), "image change");
    let (code, _) = post_json(
        &env.client,
        &format!("/api/v1/namespaces/{}/pods/p/binding", env.ns),
        br#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#,
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        pods.get("p").await.unwrap().metadata.generation,
        Some(3),
        "binding"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn observed_generation_is_kept_by_status_writes_without_it() {
    // preserveOldObservedGeneration: a status write leaving it unset keeps the stored value.
    let (env, pods) = setup("resize-observed").await;
    let p = send_status_patch(
        &pods,
        "p",
        Patch::Merge(json!({"status": {"observedGeneration": 1,
            "conditions": [{"type": "PodScheduled", "status": "False", "observedGeneration": 1}]}})),
    )
    .await
    .unwrap();
    assert_eq!(p.status.as_ref().unwrap().observed_generation, Some(1));
    let mut p = pods.get_status("p").await.unwrap();
    let status = p.status.as_mut().unwrap();
    status.observed_generation = None;
    status.conditions.as_mut().unwrap()[0].observed_generation = None;
    let p = pods
        .replace_status("p", &PostParams::default(), &p)
        .await
        .unwrap();
    let status = p.status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.conditions.unwrap()[0].observed_generation, Some(1));
    env.cleanup().await;
}

#[tokio::test]
async fn discovery_lists_pods_resize() {
    let env = env("resize-discovery").await;
    let (_, core) = raw(&env.client, "GET", "/api/v1", "", b"").await;
    let r = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/resize")
        .expect("pods/resize listed");
    assert_eq!(r["kind"], "Pod");
    assert_eq!(r["verbs"], json!(["get", "patch", "update"]));
    env.cleanup().await;
}

#[tokio::test]
async fn admission_policies_match_pods_resize_as_a_subresource() {
    let (env, pods) = setup("resize-vap").await;
    let names = bind_policy(
        &env,
        "resize",
        json!({
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["UPDATE"], "resources": ["pods/resize"]}]},
            "validations": [{"expression": "object.spec.containers[0].resources.limits['cpu'] != '300m'",
                "message": "cpu capped"}]}),
        &["Deny"],
    )
    .await;
    // A real cluster loads the policy a moment later: until then each resize is undone.
    let mut refusal = None;
    for _ in 0..300 {
        match resize(&pods, "p", resources(json!({"limits": {"cpu": "300m"}}))).await {
            Err(kube::Error::Api(s)) => {
                refusal = Some(s);
                break;
            }
            Ok(_) => {
                resize(&pods, "p", resources(json!({"limits": {"cpu": "200m"}})))
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("resize: {e}"),
        }
    }
    let e = refusal.expect("the policy never took effect");
    assert!(
        e.message.ends_with("denied request: cpu capped"),
        "{}",
        e.message
    );
    // The rule names the subresource only: writes to the pod itself are not its business.
    send_patch(
        &pods,
        "p",
        Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    unbind(&env, &names).await;
    env.cleanup().await;
}
