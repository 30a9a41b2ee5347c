//! Hooks end to end: the real operator, its HookRun controller and live providers, against
//! HTTP servers on loopback and the embedded cluster. These run in real time: the providers'
//! sockets and timeouts are not on virtual time.

use std::collections::BTreeMap;
use std::time::Duration;

use gamedeploy_core::api::{GameDeployment, HookPhase, HookRun, HookTemplate, crds};
use gamedeploy_core::names;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[path = "support/embedded.rs"]
mod embedded;
#[path = "support/hook_server.rs"]
mod hook_server;
use embedded::{cluster_with, seed_gd, set_image, start_kubelet, start_operator, wait_for};
use hook_server::{HookServer, Reply, ok};

/// Two pods of the seed's GameDeployment (no partition, both at once, grace 1 s) gated by the HookTemplate
/// `drain`, which polls `url` every second until `result.players == 0`.
fn drained_gd() -> GameDeployment {
    let mut gd = seed_gd();
    gd.spec.replicas = Some(2);
    let strategy = json!({
        "type": "InplaceUpdate", "partition": 0, "maxUnavailable": 2,
        "inPlaceUpdateStrategy": {"gracePeriodSeconds": 1}
    });
    gd.spec.update_strategy = serde_json::from_value(strategy).unwrap();
    gd.spec.pre_inplace_update_strategy =
        Some(serde_json::from_value(json!({"hook": {"templateName": "drain"}})).unwrap());
    gd
}

fn drain_template(url: &str) -> HookTemplate {
    serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
        "metadata": {"name": "drain", "namespace": "default"},
        "spec": {"args": [{"name": "PodName"}], "metrics": [{
            "name": "drained", "interval": "1s", "successfulLimit": 1, "failureLimit": -1,
            "successCondition": "result.players == 0",
            "provider": {"web": {"url": url, "timeoutSeconds": 5}}
        }]}
    }))
    .unwrap()
}

/// Each pod's image and restart count.
async fn pods(admin: &kube::Client) -> BTreeMap<String, (String, i32)> {
    let api: Api<Pod> = Api::namespaced(admin.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let image = p.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap();
            let restarts = p
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|cs| cs.first().map(|c| c.restart_count))
                .unwrap_or(0);
            (p.metadata.name.unwrap(), (image, restarts))
        })
        .collect()
}

/// Each run's measurement count, by name.
async fn counts(runs: &Api<HookRun>) -> BTreeMap<String, i32> {
    runs.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| {
            let count = r
                .status
                .and_then(|s| s.metric_results.first().map(|m| m.count))
                .unwrap_or(0);
            (r.metadata.name.unwrap(), count)
        })
        .collect()
}

/// The issue's "done when": a pod gated by a preInplace web hook on a real HTTP server updates
/// only after the server says yes, and an operator killed while a measurement is in flight
/// leaves no duplicate HookRun and no lost result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_hook_on_loopback_gates_each_pod_across_an_operator_crash() {
    let hook = HookServer::start(|_, _| ok(json!({"players": 3}))).await;
    let gd = drained_gd();
    let (server, clock, admin) = cluster_with(crds(), &gd).await;
    Api::<HookTemplate>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &drain_template(&hook.url("/drain?pod={{args.PodName}}")),
        )
        .await
        .unwrap();
    start_kubelet(&server, &clock);
    let first = start_operator(&server, &clock, 1);
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let serving = || async {
        gds.get("test-gamedeployment")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.ready_replicas == 2)
    };
    assert!(wait_for(serving).await, "both pods serve");
    let old = pods(&admin).await;
    set_image(&admin, "python:latest").await;

    // Both pods are gated; measurements say "3 players" and are recorded.
    let runs: Api<HookRun> = Api::namespaced(admin.clone(), "default");
    let measured = || async {
        let c = counts(&runs).await;
        c.len() == 2 && c.values().all(|n| *n >= 2)
    };
    assert!(
        wait_for(measured).await,
        "both runs measured twice: {:?}, {} requests, {:?}",
        counts(&runs).await,
        hook.requests.load(std::sync::atomic::Ordering::SeqCst),
        runs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| serde_json::to_string(&r.status).unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        pods(&admin).await,
        old,
        "no pod touched while players remain"
    );

    // The operator dies while a measurement is in flight.
    hook.script(|_, _| Reply::Hold);
    assert!(
        wait_for(|| async { hook.holding.load(std::sync::atomic::Ordering::SeqCst) >= 1 }).await,
        "a measurement is in flight"
    );
    first.kill().await;
    let before = counts(&runs).await;
    hook.script(|_, _| ok(json!({"players": 3})));
    hook.release();
    let second = start_operator(&server, &clock, 2);
    let resumed = || async {
        let c = counts(&runs).await;
        c.keys().eq(before.keys()) && c.iter().all(|(k, n)| *n >= before[k] + 2)
    };
    assert!(
        wait_for(resumed).await,
        "the new operator measures the same two runs on from the recorded results"
    );
    assert_eq!(pods(&admin).await, old, "still no pod touched");

    // The server says yes: both runs succeed (they are deleted once their pods have moved to
    // the new revision, as in the original, so they are read as they succeed), then both pods
    // update in place, once.
    hook.script(|_, _| ok(json!({"players": 0})));
    let finished: std::sync::Mutex<BTreeMap<String, HookRun>> = Default::default();
    let succeeded = || async {
        for run in runs.list(&ListParams::default()).await.unwrap().items {
            if run.status.as_ref().and_then(|s| s.phase) == Some(HookPhase::Successful) {
                finished
                    .lock()
                    .unwrap()
                    .insert(run.metadata.name.clone().unwrap(), run);
            }
        }
        finished.lock().unwrap().len() == 2
    };
    assert!(wait_for(succeeded).await, "both runs succeed after the yes");
    let finished = finished.into_inner().unwrap();
    assert!(
        finished.keys().eq(before.keys()),
        "one HookRun per pod, none created twice"
    );
    let updated = || async {
        pods(&admin)
            .await
            .values()
            .all(|(image, restarts)| image == "python:latest" && *restarts == 1)
    };
    assert!(wait_for(updated).await, "both pods updated after the yes");
    let now = pods(&admin).await;
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        old.keys().collect::<Vec<_>>(),
        "same pods"
    );
    for (name, run) in &finished {
        let status = run.status.as_ref().unwrap();
        let result = &status.metric_results[0];
        assert!(result.count > before[name], "no recorded result lost");
        assert_eq!(result.successful, 1);
        let completed = status.conditions.iter().find(|c| c.type_ == "Completed");
        assert_eq!(completed.map(|c| c.status.as_str()), Some("True"));
        // Every kept measurement is a distinct one: none was recorded twice.
        let mut starts: Vec<_> = result
            .measurements
            .iter()
            .map(|m| m.started_at.clone())
            .collect();
        starts.dedup();
        assert_eq!(starts.len(), result.measurements.len());
        assert!(
            result.measurements[0]
                .request
                .starts_with(&format!("GET http://{}/drain?pod=", hook.addr)),
            "{}",
            result.measurements[0].request
        );
    }
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    let successes = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(names::EVENT_HOOKRUN_SUCCESSFUL))
        .count();
    assert_eq!(successes, 2, "one HookRunSuccessful event per run");
    second.shutdown().await;
}

/// What each kind of web answer becomes, through the live providers against a loopback
/// server: yes, no, an error status, garbage, 5 MB, too slow, a redirect, a POST with a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_answers_become_observations_the_engine_can_judge() {
    use gamedeploy_core::api::WebMethod;
    use gamedeploy_core::hookrun::{Observation, ProviderCall};
    use gamedeploy_operator::hookruns::providers::{Measure, Providers};
    let hook = HookServer::start(|target, _| match target {
        "GET /yes" => ok(json!({"ok": true})),
        "GET /no" => Reply::Now {
            status: 503,
            body: "draining".into(),
        },
        "GET /garbage" => Reply::Now {
            status: 200,
            body: "\u{0}{not json".into(),
        },
        "GET /huge" => Reply::Now {
            status: 200,
            body: "x".repeat(5 * 1024 * 1024),
        },
        "GET /slow" => Reply::After {
            delay: Duration::from_secs(3),
            status: 200,
            body: "late".into(),
        },
        "GET /moved" => Reply::Now {
            status: 302,
            body: String::new(),
        },
        "POST /drain" => ok(json!({"accepted": true})),
        _ => Reply::Now {
            status: 404,
            body: String::new(),
        },
    })
    .await;
    let (_server, _clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let providers = Providers::new(admin);
    let get = |path: &str, timeout: i64| ProviderCall::Web {
        method: WebMethod::GET,
        url: hook.url(path),
        body: String::new(),
        headers: vec![("X-Check".into(), "1".into())],
        timeout: jiff::SignedDuration::from_secs(timeout),
    };
    let http = |status: u16, body: &str| Observation::Http {
        status,
        body: body.into(),
    };
    assert_eq!(
        providers.measure(&get("/yes", 5)).await,
        http(200, r#"{"ok":true}"#)
    );
    assert_eq!(
        providers.measure(&get("/no", 5)).await,
        http(503, "draining")
    );
    assert_eq!(
        providers.measure(&get("/garbage", 5)).await,
        http(200, "\u{0}{not json")
    );
    assert_eq!(
        providers.measure(&get("/moved", 5)).await,
        http(302, ""),
        "a redirect is the answer, not followed"
    );
    let Observation::Error(huge) = providers.measure(&get("/huge", 5)).await else {
        panic!("a 5 MB answer is refused");
    };
    assert!(huge.contains("larger than 1024 KiB"), "{huge}");
    let Observation::Error(slow) = providers.measure(&get("/slow", 1)).await else {
        panic!("a slow answer times out");
    };
    assert!(slow.contains("did not answer within 1s"), "{slow}");
    let post = ProviderCall::Web {
        method: WebMethod::POST,
        url: hook.url("/drain"),
        body: r#"{"pod":"gd-a"}"#.into(),
        headers: vec![],
        timeout: jiff::SignedDuration::from_secs(5),
    };
    assert_eq!(
        providers.measure(&post).await,
        http(200, r#"{"accepted":true}"#)
    );
    let seen = hook.seen.lock().unwrap().clone();
    assert!(seen[0].to_lowercase().contains("x-check: 1"), "{}", seen[0]);
    let last = seen.last().unwrap();
    assert!(
        last.starts_with("POST /drain") && last.ends_with(r#"{"pod":"gd-a"}"#),
        "{last}"
    );
    let refused = ProviderCall::Web {
        method: WebMethod::GET,
        url: "http://127.0.0.1:1/".into(),
        body: String::new(),
        headers: vec![],
        timeout: jiff::SignedDuration::from_secs(5),
    };
    let Observation::Error(e) = providers.measure(&refused).await else {
        panic!("an unreachable endpoint is an error");
    };
    assert!(e.contains("127.0.0.1:1") && !e.contains("{ "), "{e}");
}

/// A minimal Prometheus-compatible endpoint: a vector with a value, an empty vector, NaN, and
/// an error answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_are_numbers_no_data_or_errors() {
    use gamedeploy_core::hookrun::{Observation, ProviderCall};
    use gamedeploy_operator::hookruns::providers::{Measure, Providers};
    let vector = |values: &[&str]| {
        let result: Vec<_> = values
            .iter()
            .map(|v| json!({"metric": {}, "value": [1700000000, v]}))
            .collect();
        ok(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
    };
    let hook = HookServer::start(move |target, _| {
        let query = target.split_once("query=").map_or("", |(_, q)| q);
        match query {
            "up" => vector(&["0.97"]),
            "none" => vector(&[]),
            "nan" => vector(&["NaN"]),
            _ => Reply::Now {
                status: 400,
                body: json!({"status": "error", "errorType": "bad_data", "error": "parse error"})
                    .to_string(),
            },
        }
    })
    .await;
    let (_server, _clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let providers = Providers::new(admin);
    let query = |q: &str| ProviderCall::Prometheus {
        address: hook.url(""),
        query: q.into(),
    };
    assert_eq!(
        providers.measure(&query("up")).await,
        Observation::Numbers(vec![0.97])
    );
    assert_eq!(
        providers.measure(&query("none")).await,
        Observation::NoData("the query returned no samples".into())
    );
    let Observation::Numbers(nan) = providers.measure(&query("nan")).await else {
        panic!("NaN is data");
    };
    assert!(nan[0].is_nan());
    let Observation::Error(e) = providers.measure(&query("sum(")).await else {
        panic!("a refused query is an error");
    };
    assert!(e.contains("parse error"), "{e}");
}

/// The kubernetes provider patches an annotation onto a pod that has none (JSON-escaped), and
/// reads it back; a missing annotation is no data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_provider_patches_and_reads_pod_annotations() {
    use gamedeploy_core::api::KubernetesFunction;
    use gamedeploy_core::hookrun::{ObjectTarget, Observation, ProviderCall};
    use gamedeploy_operator::hookruns::providers::{Measure, Providers};
    let (_server, _clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "lonely"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let providers = Providers::new(admin);
    let call = |function, value: &str| ProviderCall::Kubernetes {
        function,
        target: ObjectTarget {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            namespace: "default".into(),
            name: "lonely".into(),
        },
        annotations: vec![("example.com/drained".into(), value.into())],
    };
    assert_eq!(
        providers.measure(&call(KubernetesFunction::Get, "")).await,
        Observation::NoData("pod default/lonely has no annotation example.com/drained".into())
    );
    let tricky = r#"yes "really" \ done"#;
    assert_eq!(
        providers
            .measure(&call(KubernetesFunction::Patch, tricky))
            .await,
        Observation::Value(json!(true))
    );
    assert_eq!(
        providers.measure(&call(KubernetesFunction::Get, "")).await,
        Observation::Value(json!(tricky))
    );
}

/// A HookRun a user created is run too; `timeoutSeconds` ends one whose endpoint never answers
/// with its declared outcome, and the run's message says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_hook_run_times_out_with_its_declared_outcome() {
    let hook = HookServer::start(|_, _| Reply::Hold).await;
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let run: HookRun = serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
        "metadata": {"name": "mine", "namespace": "default"},
        "spec": {"timeoutSeconds": 2, "onTimeout": "Inconclusive", "metrics": [{
            "name": "never", "provider": {"web": {"url": hook.url("/"), "timeoutSeconds": 30}}
        }]}
    }))
    .unwrap();
    let runs: Api<HookRun> = Api::namespaced(admin.clone(), "default");
    runs.create(&PostParams::default(), &run).await.unwrap();
    let operator = start_operator(&server, &clock, 1);
    let ended = || async {
        runs.get("mine")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_completed())
    };
    assert!(wait_for(ended).await, "the run ends");
    let status = runs.get("mine").await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(HookPhase::Inconclusive));
    assert!(status.message.contains("timed out"), "{}", status.message);
    assert_eq!(status.metric_results[0].phase, HookPhase::Terminated);
    let took = status.conditions[0]
        .last_transition_time
        .0
        .duration_since(status.started_at.unwrap().0);
    assert!(
        took.as_secs() < 15,
        "the deadline cuts the measurement in flight short (ended {}s after the start)",
        took.as_secs()
    );
    hook.release();
    operator.shutdown().await;
}
