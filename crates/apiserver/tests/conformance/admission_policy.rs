//! ValidatingAdmissionPolicies and their bindings (admissionregistration.k8s.io/v1). Policies
//! are cluster-wide, so every binding here is limited to the test's namespace, and both are
//! deleted at the end. A real kube-apiserver picks up a new policy a moment after it is
//! written, so each test waits until its policy takes effect.

use crate::support::*;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::api::{Api, DeleteParams, Patch, PostParams};
use serde_json::{Value, json};

/// A policy on Widgets in the test's namespace, bound with `actions`; returns the policy and
/// binding names.
pub async fn bind_policy(env: &Env, tag: &str, spec: Value, actions: &[&str]) -> (String, String) {
    let policy = format!("{}-{tag}", env.ns);
    let binding = format!("{policy}-binding");
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(env.client.clone());
    let p = serde_json::from_value(json!({"metadata": {"name": policy}, "spec": spec})).unwrap();
    create(&policies, &p).await;
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(env.client.clone());
    let b = serde_json::from_value(json!({"metadata": {"name": binding}, "spec": {
        "policyName": policy,
        "validationActions": actions,
        "matchResources": {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": env.ns}}}}}))
    .unwrap();
    create(&bindings, &b).await;
    (policy, binding)
}

pub async fn unbind(env: &Env, (policy, binding): &(String, String)) {
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(env.client.clone());
    let _ = bindings.delete(binding, &DeleteParams::default()).await;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(env.client.clone());
    let _ = policies.delete(policy, &DeleteParams::default()).await;
}

fn widget_rules(operations: &[&str]) -> Value {
    json!({"resourceRules": [{"apiGroups": [GROUP], "apiVersions": ["v1"],
        "operations": operations, "resources": ["widgets"]}]})
}

/// Retries `create` of fresh widgets until the policy refuses one (a real cluster needs a
/// moment to load it); returns that refusal.
async fn first_refusal(
    api: &Api<kube::core::DynamicObject>,
    prefix: &str,
    spec: Value,
) -> Box<kube::core::Status> {
    for i in 0..300 {
        match api
            .create(
                &PostParams::default(),
                &widget(&format!("{prefix}-{i}"), spec.clone()),
            )
            .await
        {
            Err(kube::Error::Api(s)) => return s,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("create: {e}"),
        }
    }
    panic!("the policy never took effect");
}

#[tokio::test]
async fn policy_denies_create_and_delete_with_the_kube_apiserver_message() {
    let (env, api) = widget_env("vap-deny").await;
    let names = bind_policy(
        &env,
        "guard",
        json!({
            "failurePolicy": "Fail",
            "matchConstraints": widget_rules(&["CREATE", "DELETE"]),
            "validations": [
                {"expression": "request.operation != 'CREATE' || object.spec.replicas <= 3",
                 "message": "at most 3 replicas"},
                {"expression": "request.operation != 'DELETE' || (has(oldObject.metadata.annotations) && 'example.com/deletion-allow' in oldObject.metadata.annotations && oldObject.metadata.annotations['example.com/deletion-allow'] == 'true')",
                 "messageExpression": "'deletion of ' + oldObject.metadata.name + ' needs the deletion-allow annotation'",
                 "reason": "Forbidden"}]
        }),
        &["Deny"],
    )
    .await;
    let (policy, binding) = &names;
    let e = first_refusal(&api, "big", json!({"image": "game:1", "replicas": 5})).await;
    assert_eq!(
        (e.code, e.reason.as_str()),
        (422, "Invalid"),
        "no reason: Invalid"
    );
    let why = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: at most 3 replicas"
    );
    assert!(
        e.message.starts_with(&format!("widgets.{GROUP} \"big-"))
            && e.message.ends_with(&format!("is forbidden: {why}")),
        "{}",
        e.message
    );

    create(
        &api,
        &widget("small", json!({"image": "game:1", "replicas": 1})),
    )
    .await;
    let e = api_err(api.delete("small", &DeleteParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            "widgets.{GROUP} \"small\" is forbidden: ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: deletion of small needs the deletion-allow annotation"
        )
    );
    assert!(api.get("small").await.is_ok(), "still there");
    send_patch(
        &api,
        "small",
        Patch::Merge(json!({"metadata": {"annotations": {"example.com/deletion-allow": "true"}}})),
    )
    .await
    .unwrap();
    api.delete("small", &DeleteParams::default()).await.unwrap();
    unbind(&env, &names).await;
    env.cleanup().await;
}

#[tokio::test]
async fn match_conditions_limit_which_requests_a_policy_sees() {
    let (env, api) = widget_env("vap-conditions").await;
    let names = bind_policy(
        &env,
        "cond",
        json!({
            "matchConstraints": widget_rules(&["CREATE"]),
            "matchConditions": [{"name": "guarded-only",
                "expression": "object.metadata.name.startsWith('guarded-')"}],
            "validations": [{"expression": "object.spec.replicas == 0"}]
        }),
        &["Deny"],
    )
    .await;
    let e = first_refusal(&api, "guarded", json!({"image": "game:1"})).await;
    assert!(
        e.message
            .ends_with("denied request: failed expression: object.spec.replicas == 0"),
        "{}",
        e.message
    );
    create(&api, &widget("free", json!({"image": "game:1"}))).await;
    unbind(&env, &names).await;
    env.cleanup().await;
}

#[tokio::test]
async fn warn_action_adds_a_warning_header_and_admits() {
    let (env, _api) = widget_env("vap-warn").await;
    let names = bind_policy(
        &env,
        "warn",
        json!({
            "matchConstraints": widget_rules(&["CREATE"]),
            "validations": [{"expression": "object.spec.replicas <= 3", "message": "more than 3 replicas"}]
        }),
        &["Warn"],
    )
    .await;
    let (policy, binding) = &names;
    let expected = format!(
        "Validation failed for ValidatingAdmissionPolicy '{policy}' with binding '{binding}': more than 3 replicas"
    );
    let uri = format!("/apis/{GROUP}/v1/namespaces/{}/widgets", env.ns);
    let mut warned = false;
    for i in 0..300 {
        let body = json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
            "metadata": {"name": format!("w-{i}")}, "spec": {"image": "game:1", "replicas": 5}});
        let req = http::Request::builder()
            .method("POST")
            .uri(&uri)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(body.to_string().into_bytes()))
            .unwrap();
        let resp = env.client.send(req).await.expect("transport");
        assert_eq!(resp.status().as_u16(), 201, "Warn admits");
        let headers: Vec<String> = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        if headers.iter().any(|h| h.contains(&expected)) {
            warned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(warned, "no Warning header with {expected:?}");
    unbind(&env, &names).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_policy_whose_expression_does_not_compile_is_refused() {
    let env = env("vap-broken").await;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(env.client.clone());
    let p = serde_json::from_value(json!({"metadata": {"name": format!("{}-broken", env.ns)},
        "spec": {"matchConstraints": widget_rules(&["CREATE"]),
            "validations": [{"expression": "object.spec.replicas >"}]}}))
    .unwrap();
    let e = api_err(policies.create(&PostParams::default(), &p).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let cause = &e.details.unwrap().causes[0];
    assert_eq!(cause.field, "spec.validations[0].expression");
    assert!(
        cause.message.contains("compilation failed"),
        "{}",
        cause.message
    );
    env.cleanup().await;
}

/// Embedded only: `request.userInfo.username` is the identity the client was made for, and
/// a runtime error fails closed under `failurePolicy: Fail`.
#[tokio::test]
async fn request_user_is_the_client_identity() {
    let (env, api) = widget_env("vap-user").await;
    let Some(server) = env.server.clone() else {
        eprintln!("skipped on a real cluster: user names are the embedded server's identities");
        return;
    };
    let names = bind_policy(
        &env,
        "user",
        json!({
            "matchConstraints": widget_rules(&["CREATE", "UPDATE"]),
            "variables": [{"name": "who", "expression": "request.userInfo.username"}],
            "validations": [
                {"expression": "variables.who == 'operator'",
                 "messageExpression": "'only the operator writes widgets, not ' + variables.who",
                 "reason": "Forbidden"},
                {"expression": "object.spec.nosuch == 1"}]
        }),
        &["Deny"],
    )
    .await;
    let e = api_err(
        api.create(
            &PostParams::default(),
            &widget("w", json!({"image": "game:1"})),
        )
        .await,
    );
    assert_eq!(e.code, 403);
    assert!(
        e.message
            .ends_with("denied request: only the operator writes widgets, not conformance"),
        "{}",
        e.message
    );
    let op: Api<kube::core::DynamicObject> =
        Api::namespaced_with(server.client_as("operator"), &env.ns, &widget_resource());
    let e = api_err(
        op.create(
            &PostParams::default(),
            &widget("w", json!({"image": "game:1"})),
        )
        .await,
    );
    assert!(
        e.message
            .contains("expression 'object.spec.nosuch == 1' resulted in error"),
        "{}",
        e.message
    );
    unbind(&env, &names).await;
    env.cleanup().await;
}

/// kube-apiserver does not estimate a policy's cost when it is written (it compiles it only),
/// so a 400³ comprehension is accepted; at run time cel-go cancels it at `PerCallLimit` and
/// `failurePolicy: Fail` denies the request (403, no reason of the validation's). Here the
/// evaluation is estimated first and never run: before, each matching write held the server
/// for about 22 s.
#[tokio::test]
async fn an_expression_over_the_cost_limit_fails_at_run_time() {
    let (env, api) = widget_env("vap-cost").await;
    let list = format!(
        "[{}]",
        (0..400)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let cubed = format!("{list}.all(x, {list}.all(y, {list}.all(z, x + y + z >= 0)))");
    let names = bind_policy(
        &env,
        "cubed",
        json!({
            "failurePolicy": "Fail",
            "matchConstraints": widget_rules(&["CREATE"]),
            "validations": [{"expression": cubed}]
        }),
        &["Deny"],
    )
    .await;
    let e = first_refusal(&api, "w", json!({"image": "game:1"})).await;
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"), "{e:?}");
    assert!(
        e.message
            .ends_with("resulted in error: operation cancelled: actual cost limit exceeded"),
        "{}",
        e.message
    );
    unbind(&env, &names).await;
    env.cleanup().await;
}
