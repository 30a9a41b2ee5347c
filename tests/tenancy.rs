//! Issue 22: two tenants on one cluster, one operator. HookRuns in `tenant-a` whose kubernetes
//! metrics name `tenant-b`'s Secret, pod and GameDeployment are refused before any request:
//! they end Error saying why, `tenant-b`'s objects keep their annotations, and no secret lands
//! in `tenant-a`'s status. The same provider still reads and patches `tenant-a`'s own pod.
//! Real time: the providers' requests are not on virtual time.

use std::collections::BTreeMap;

use gamedeploy_core::api::{GameDeployment, HookPhase, HookRun, crds};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[path = "support/embedded.rs"]
mod embedded;
use embedded::{cluster_with, seed_gd, start_operator, wait_for};

const PASSWORD: &str = "hunter2-tenant-b-only";

/// A HookRun in `tenant-a` with one kubernetes metric: `function` on the object the args name.
fn run(
    name: &str,
    function: &str,
    annotation: &str,
    value: &str,
    args: &[(&str, &str)],
) -> HookRun {
    let args: Vec<_> = args
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
        "metadata": {"name": name, "namespace": "tenant-a"},
        "spec": {"args": args, "metrics": [{
            "name": "m", "successfulLimit": 1, "consecutiveErrorLimit": 0,
            "successCondition": "true",
            "provider": {"kubernetes": {
                "function": function,
                "fields": [{"path": format!("metadata.annotations.{annotation}"), "value": value}]
            }}
        }]}
    }))
    .unwrap()
}

fn pod(namespace: &str, name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"example.com/owner": namespace}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    }))
    .unwrap()
}

fn annotations(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_hooks_cannot_read_or_patch_another_tenants_objects() {
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in ["tenant-a", "tenant-b"] {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    // tenant-b: a Secret applied with kubectl (its data in the last-applied annotation), a
    // pod and a GameDeployment.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "tenant-b");
    let last_applied = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "tenant-b"},
        "stringData": {"password": PASSWORD}})
    .to_string();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db", "namespace": "tenant-b", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": last_applied}},
        "stringData": {"password": PASSWORD}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let b_pods: Api<Pod> = Api::namespaced(admin.clone(), "tenant-b");
    b_pods
        .create(&PostParams::default(), &pod("tenant-b", "game-0"))
        .await
        .unwrap();
    let b_gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "tenant-b");
    let mut gd = seed_gd();
    gd.metadata.namespace = Some("tenant-b".into());
    gd.metadata.annotations =
        Some([("example.com/owner".to_string(), "tenant-b".to_string())].into());
    b_gds.create(&PostParams::default(), &gd).await.unwrap();
    // tenant-a: its own pod and Secret.
    let a_pods: Api<Pod> = Api::namespaced(admin.clone(), "tenant-a");
    a_pods
        .create(&PostParams::default(), &pod("tenant-a", "mine"))
        .await
        .unwrap();
    Api::<Secret>::namespaced(admin.clone(), "tenant-a")
        .create(&PostParams::default(), &{
            let mut s = secret.clone();
            s.metadata.namespace = Some("tenant-a".into());
            s
        })
        .await
        .unwrap();
    let b_pod_before = annotations(&b_pods.get("game-0").await.unwrap().metadata);
    let b_gd_before = annotations(&b_gds.get("test-gamedeployment").await.unwrap().metadata);

    let runs: Api<HookRun> = Api::namespaced(admin.clone(), "tenant-a");
    let last_applied_key = "kubectl.kubernetes.io/last-applied-configuration";
    let hostile = [
        run(
            "read-secret",
            "get",
            last_applied_key,
            "",
            &[
                ("Kind", "Secret"),
                ("PodNamespace", "tenant-b"),
                ("PodName", "db"),
            ],
        ),
        run(
            "force-pod",
            "patch",
            "tkex.tencent.com/inplace-update-force",
            "Ready",
            &[("PodNamespace", "tenant-b"), ("PodName", "game-0")],
        ),
        run(
            "patch-gd",
            "patch",
            "example.com/owner",
            "tenant-a",
            &[
                ("Group", "tkex.tencent.com"),
                ("Version", "v1alpha1"),
                ("Kind", "GameDeployment"),
                ("PodNamespace", "tenant-b"),
                ("PodName", "test-gamedeployment"),
            ],
        ),
        // Its own namespace's Secret, through an annotation that is not last-applied.
        run(
            "own-secret",
            "get",
            "example.com/any",
            "",
            &[
                ("Kind", "Secret"),
                ("PodNamespace", "tenant-a"),
                ("PodName", "db"),
            ],
        ),
    ];
    let benign = run(
        "own-pod",
        "patch",
        "example.com/drained",
        "yes",
        &[("PodNamespace", "tenant-a"), ("PodName", "mine")],
    );
    for r in hostile.iter().chain([&benign]) {
        runs.create(&PostParams::default(), r).await.unwrap();
    }
    let operator = start_operator(&server, &clock, 1);
    let ended = || async {
        let items = runs.list(&ListParams::default()).await.unwrap().items;
        items.len() == 5
            && items.iter().all(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .is_some_and(|p| p.is_completed())
            })
    };
    assert!(wait_for(ended).await, "every run ends");
    let outcome = |name: &str| {
        let runs = runs.clone();
        let name = name.to_string();
        async move { runs.get(&name).await.unwrap().status.unwrap() }
    };
    for (name, refusal) in [
        ("read-secret", "does not read or patch Secrets"),
        ("force-pod", "own namespace tenant-a, not tenant-b"),
        ("patch-gd", "own namespace tenant-a, not tenant-b"),
        ("own-secret", "does not read or patch Secrets"),
    ] {
        let status = outcome(name).await;
        assert_eq!(status.phase, Some(HookPhase::Error), "{name}: {status:?}");
        assert!(
            status.message.contains(refusal) && status.message.contains("metric m"),
            "{name}: {}",
            status.message
        );
        assert!(
            status.metric_results[0].measurements.is_empty(),
            "{name}: nothing was measured"
        );
        let text = serde_json::to_string(&status).unwrap();
        assert!(!text.contains(PASSWORD), "{name} leaked the secret: {text}");
    }
    let mine = outcome("own-pod").await;
    assert_eq!(mine.phase, Some(HookPhase::Successful), "{mine:?}");
    assert_eq!(
        a_pods
            .get("mine")
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap()["example.com/drained"],
        "yes",
        "the provider still patches the run's own namespace"
    );
    assert_eq!(
        annotations(&b_pods.get("game-0").await.unwrap().metadata),
        b_pod_before,
        "tenant-b's pod untouched"
    );
    assert_eq!(
        annotations(&b_gds.get("test-gamedeployment").await.unwrap().metadata),
        b_gd_before,
        "tenant-b's GameDeployment untouched"
    );
    operator.shutdown().await;
}
