//! The built-in kinds an operator install writes (`kubectl apply -k`): ServiceAccounts,
//! Services, ConfigMaps, Secrets, Deployments, RBAC and admission policies. Only what a real
//! kube-apiserver does too: no Deployment status is asserted (a real cluster's controller
//! writes it), and no cluster IP (a real cluster allocates one).

use crate::support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in discovery"))
}

#[tokio::test]
async fn install_kinds_are_discovered_with_scope_short_names_and_categories() {
    let env = env("install-discovery").await;
    let (_, core) = raw(&env.client, "GET", "/api/v1", "", b"").await;
    for (name, short, namespaced) in [
        ("serviceaccounts", Some("sa"), true),
        ("services", Some("svc"), true),
        ("configmaps", Some("cm"), true),
        ("secrets", None, true),
    ] {
        let r = find(&core, name);
        assert_eq!(r["namespaced"], namespaced, "{name}");
        if let Some(s) = short {
            assert_eq!(r["shortNames"], json!([s]), "{name}");
        }
    }
    assert!(
        find(&core, "services")["categories"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("all")))
    );
    find(&core, "services/status");
    let (_, apps) = raw(&env.client, "GET", "/apis/apps/v1", "", b"").await;
    assert_eq!(find(&apps, "deployments")["shortNames"], json!(["deploy"]));
    find(&apps, "deployments/status");
    assert_eq!(find(&apps, "deployments/scale")["kind"], "Scale");
    let (_, rbac) = raw(
        &env.client,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1",
        "",
        b"",
    )
    .await;
    for (name, namespaced) in [
        ("clusterroles", false),
        ("clusterrolebindings", false),
        ("roles", true),
        ("rolebindings", true),
    ] {
        assert_eq!(find(&rbac, name)["namespaced"], namespaced, "{name}");
    }
    let (_, adm) = raw(
        &env.client,
        "GET",
        "/apis/admissionregistration.k8s.io/v1",
        "",
        b"",
    )
    .await;
    for name in [
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ] {
        assert_eq!(find(&adm, name)["namespaced"], false, "{name}");
    }
    find(&adm, "validatingadmissionpolicies/status");
    env.cleanup().await;
}

#[tokio::test]
async fn configmaps_secrets_and_serviceaccounts_round_trip() {
    let env = env("install-config").await;
    let cms: Api<ConfigMap> = env.api();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
    create(&cms, &cm).await;
    let patched = send_patch(
        &cms,
        "c",
        Patch::Merge(json!({"data": {"k": "w", "k2": "x"}})),
    )
    .await
    .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "w");
    let bad: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "bad"}, "data": {"a b": "v"}})).unwrap();
    let e = api_err(cms.create(&PostParams::default(), &bad).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));

    let secrets: Api<Secret> = env.api();
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"},
        "data": {"a": "eA==", "b": "eA=="}, "stringData": {"a": "hi"}}))
    .unwrap();
    let s = create(&secrets, &s).await;
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert!(s.string_data.is_none(), "stringData is write-only");
    let data = s.data.unwrap();
    assert_eq!(data["a"].0, b"hi", "stringData wins over data");
    assert_eq!(data["b"].0, b"x");

    let sas: Api<ServiceAccount> = env.api();
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "op"}})).unwrap();
    create(&sas, &sa).await;
    let names: Vec<String> = sas
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert!(names.contains(&"op".to_string()), "{names:?}");
    sas.delete("op", &DeleteParams::default()).await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn services_are_defaulted_and_typed() {
    let env = env("install-svc").await;
    let svcs: Api<Service> = env.api();
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}))
    .unwrap();
    let svc = create(&svcs, &svc).await;
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );
    // A wrongly typed field is refused by typed decoding.
    let (code, body) = post_json(
        &env.client,
        &format!("/api/v1/namespaces/{}/services", env.ns),
        br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":"80"}}"#,
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    env.cleanup().await;
}

#[tokio::test]
async fn deployments_are_defaulted_validated_and_scaled() {
    let env = env("install-deploy").await;
    let deploys: Api<Deployment> = env.api();
    let manifest = |name: &str, template_app: &str| -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "selector": {"matchLabels": {"app": "op"}},
            "template": {"metadata": {"labels": {"app": template_app}},
                "spec": {"containers": [{"name": "op", "image": "op:1"}]}}}}))
        .unwrap()
    };
    let d = create(&deploys, &manifest("op", "op")).await;
    assert_eq!(d.metadata.generation, Some(1));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    assert_eq!(
        spec.strategy.unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    let pod_spec = spec.template.spec.unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"));

    let scale = deploys.get_scale("op").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=op"));
    deploys
        .patch_scale(
            "op",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let d = deploys.get("op").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert_eq!(d.metadata.generation, Some(2));

    let e = api_err(
        deploys
            .create(&PostParams::default(), &manifest("bad", "other"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = e
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(
        fields.contains(&"spec.template.metadata.labels".to_string()),
        "{fields:?}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn rbac_objects_round_trip() {
    let env = env("install-rbac").await;
    let name = format!("{}-reader", env.ns);
    let rule = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]);
    let crs: Api<ClusterRole> = Api::all(env.client.clone());
    let cr: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": name}, "rules": rule})).unwrap();
    let cr = create(&crs, &cr).await;
    assert_eq!(cr.rules.unwrap()[0].verbs, vec!["get", "list"]);
    let crbs: Api<ClusterRoleBinding> = Api::all(env.client.clone());
    let crb: ClusterRoleBinding = serde_json::from_value(json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": env.ns}]}))
    .unwrap();
    create(&crbs, &crb).await;
    let roles: Api<Role> = env.api();
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": "r"}, "rules": rule})).unwrap();
    create(&roles, &role).await;
    let rbs: Api<RoleBinding> = env.api();
    let rb: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "r"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": env.ns}]}))
    .unwrap();
    let rb = create(&rbs, &rb).await;
    assert_eq!(rb.role_ref.name, "r");
    crbs.delete(&name, &DeleteParams::default()).await.unwrap();
    crs.delete(&name, &DeleteParams::default()).await.unwrap();
    env.cleanup().await;
}
