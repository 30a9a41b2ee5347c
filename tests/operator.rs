//! The real operator (kube-runtime Controller, plan, act) against the embedded API server, on
//! virtual time. No kubelet runs here: pods stay Pending, which is enough to check what the
//! operator writes and that partition and grace are obeyed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::SharedClock;
use gamedeploy_core::api::{GameDeployment, crds};
use gamedeploy_core::names;
use gamedeploy_operator::controller::{Handle, Options};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

#[path = "support/embedded.rs"]
mod embedded;
#[path = "support/hooks.rs"]
mod hooks;
use embedded::{
    cluster_with, seed_gd, set_image, start_kubelet, start_operator, start_operator_with, wait_for,
};

/// The embedded server with the CRDs and the seed's GameDeployment applied.
async fn seed_cluster() -> (ApiServer, SharedClock, kube::Client) {
    cluster_with(crds(), &seed_gd()).await
}

/// The CRDs as an older install may have them: without CEL rules, so specs the current schema
/// rejects get stored.
fn crds_without_cel() -> Vec<CustomResourceDefinition> {
    crds_without(&["x-kubernetes-validations"])
}

/// The CRDs with every schema keyword in `keys` removed, at any depth.
fn crds_without(keys: &[&str]) -> Vec<CustomResourceDefinition> {
    fn strip(v: &mut serde_json::Value, keys: &[&str]) {
        match v {
            serde_json::Value::Object(m) => {
                for key in keys {
                    m.remove(*key);
                }
                m.values_mut().for_each(|v| strip(v, keys));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
            _ => {}
        }
    }
    crds()
        .into_iter()
        .map(|crd| {
            let mut v = serde_json::to_value(crd).unwrap();
            strip(&mut v, keys);
            serde_json::from_value(v).unwrap()
        })
        .collect()
}

/// A spec past the schema that the operator must refuse: a condition naming the problem, a
/// Warning event, and no pod created.
async fn refused(gd: GameDeployment, expected: &str) {
    let (server, clock, admin) = cluster_with(crds_without_cel(), &gd).await;
    let operator = start_operator(&server, &clock, 3);
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let failed = || async {
        gds.get("test-gamedeployment")
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "FailedScale"))
    };
    assert!(wait_for(|| async { failed().await.is_some() }).await);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let c = failed().await.unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(c.message.contains(expected), "{}", c.message);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(admin, "default");
    let warned = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.message.as_deref().is_some_and(|m| m.contains(expected))
        });
    assert!(warned, "a Warning event names the problem");
    operator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_max_unavailable_past_the_schema_is_refused_without_touching_pods() {
    let mut gd = seed_gd();
    let strategy = gd.spec.update_strategy.as_mut().unwrap();
    strategy.max_unavailable =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("lots".into()));
    refused(gd, "maxUnavailable").await;
}

#[tokio::test(start_paused = true)]
async fn a_selector_that_does_not_match_the_template_is_refused_without_creating_pods() {
    let mut gd = seed_gd();
    gd.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    refused(gd, "spec.selector requires app=other").await;
}

#[tokio::test(start_paused = true)]
async fn the_operator_creates_the_seed_and_updates_five_pods_in_place_after_the_grace() {
    let (server, clock, admin) = seed_cluster().await;
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let operator = start_operator(&server, &clock, 7);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    assert!(
        wait_for(|| async { pods.list(&ListParams::default()).await.unwrap().items.len() == 8 })
            .await
    );
    let created = pods.list(&ListParams::default()).await.unwrap().items;
    let first_rev = created[0].metadata.labels.as_ref().unwrap()[names::LABEL_REVISION].clone();
    for p in &created {
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[names::LABEL_REVISION], first_rev);
        assert!(
            p.metadata
                .name
                .as_ref()
                .unwrap()
                .ends_with(&labels[names::LABEL_POD_INSTANCE_ID])
        );
        let gates = p.spec.as_ref().unwrap().readiness_gates.as_ref().unwrap();
        assert_eq!(gates[0].condition_type, names::CONDITION_INPLACE_READY);
    }
    let revs: Api<ControllerRevision> = Api::namespaced(admin.clone(), "default");
    assert_eq!(
        revs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    assert!(
        wait_for(|| async {
            gds.get("test-gamedeployment")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.replicas == 8)
        })
        .await
    );

    set_image(&admin, "python:latest").await;
    let updated = || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("python:latest")
            })
            .count()
    };
    // Within the 30 s grace nothing is patched; after it, exactly replicas - partition = 5.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        updated().await,
        0,
        "images patched before the grace period ended"
    );
    assert!(
        wait_for(|| async { updated().await == 5 }).await,
        "five pods patched after the grace"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(updated().await, 5, "partition 3 keeps three pods old");
    let after = pods.list(&ListParams::default()).await.unwrap().items;
    let names_after: Vec<_> = after.iter().map(|p| p.metadata.name.clone()).collect();
    let names_before: Vec<_> = created.iter().map(|p| p.metadata.name.clone()).collect();
    assert_eq!(names_after, names_before, "in place: same pods");
    operator.shutdown().await;
}

/// The operator took the pod out of endpoints (`InPlaceUpdateReady` is False).
fn out_of_endpoints(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|k| k.type_ == names::CONDITION_INPLACE_READY && k.status == "False")
        })
}

/// Seconds since the epoch of a change's server time.
fn secs(time: &str) -> f64 {
    let t: jiff::Timestamp = time.parse().unwrap();
    t.as_millisecond() as f64 / 1000.0
}

#[tokio::test(start_paused = true)]
async fn an_operator_restart_during_the_grace_period_neither_cuts_nor_resets_it() {
    let (server, clock, admin) = seed_cluster().await;
    let mut changes = server.changes();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let first = start_operator(&server, &clock, 1);
    assert!(
        wait_for(|| async { pods.list(&ListParams::default()).await.unwrap().items.len() == 8 })
            .await
    );
    set_image(&admin, "python:latest").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    first.shutdown().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = start_operator(&server, &clock, 2);
    tokio::time::sleep(Duration::from_secs(60)).await;
    second.shutdown().await;

    // From the server's change feed: when each pod went unready, and when its image changed.
    let mut unready_at = std::collections::BTreeMap::new();
    let mut patched_at: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut last_image = std::collections::BTreeMap::new();
    while let Ok(c) = changes.try_recv() {
        if c.resource != "pods" {
            continue;
        }
        let pod: Pod = serde_json::from_value((*c.object).clone()).unwrap();
        if out_of_endpoints(&pod) {
            unready_at.entry(c.name.clone()).or_insert(secs(&c.time));
        }
        let image = pod.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default();
        if last_image
            .insert(c.name.clone(), image.clone())
            .is_some_and(|old| old != image)
        {
            patched_at
                .entry(c.name.clone())
                .or_default()
                .push(secs(&c.time));
        }
    }
    assert_eq!(patched_at.len(), 5, "five pods patched: {patched_at:?}");
    for (pod, times) in &patched_at {
        assert_eq!(times.len(), 1, "{pod} patched once");
        let waited = times[0] - unready_at[pod];
        assert!(
            (30.0..31.0).contains(&waited),
            "{pod}: patched {waited}s after going unready"
        );
    }
}

/// A cluster with a node (the hooks gate only running pods, as in the original), the HookTemplate
/// `ready-check`, the seed GameDeployment with `configure` applied, and the operator, once all
/// eight pods serve. The HookRun controller measures each run; the tests script what each
/// pod's `ready` endpoint answers ([`hooks::Answers`]), and until they do it waits.
struct Hooked {
    admin: kube::Client,
    answers: hooks::Answers,
    operator: Handle,
    pods: Api<Pod>,
    runs: Api<gamedeploy_core::api::HookRun>,
    gds: Api<GameDeployment>,
}

impl Hooked {
    async fn start(configure: impl FnOnce(&mut GameDeployment)) -> Hooked {
        use gamedeploy_core::api::HookTemplate;
        let mut gd = seed_gd();
        configure(&mut gd);
        let (server, clock, admin) = cluster_with(crds(), &gd).await;
        let template: HookTemplate = serde_json::from_value(serde_json::json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
            "metadata": {"name": "ready-check", "namespace": "default"},
            "spec": {"args": [{"name": "PodName"}], "metrics": [{"name": "ok", "provider": {"web": {
                "url": "http://{{args.PodName}}:8000/ready", "jsonPath": "{$.ok}"}},
                "successCondition": "result == true"}]}
        }))
        .unwrap();
        Api::<HookTemplate>::namespaced(admin.clone(), "default")
            .create(&PostParams::default(), &template)
            .await
            .unwrap();
        start_kubelet(&server, &clock);
        let answers = hooks::Answers::default();
        let h = Hooked {
            operator: start_operator_with(&server, &clock, 5, Some(answers.measure())),
            answers,
            pods: Api::namespaced(admin.clone(), "default"),
            runs: Api::namespaced(admin.clone(), "default"),
            gds: Api::namespaced(admin.clone(), "default"),
            admin,
        };
        let ready = || async {
            h.gds
                .get("test-gamedeployment")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.ready_replicas == 8)
        };
        assert!(wait_for(ready).await, "all eight serve");
        h
    }

    /// The HookRuns once there are `n`, with the pod each is for.
    async fn runs(&self, n: usize) -> Vec<(String, String)> {
        let list = || async { self.runs.list(&ListParams::default()).await.unwrap().items };
        assert!(
            wait_for(|| async { list().await.len() == n }).await,
            "{n} HookRuns"
        );
        list()
            .await
            .iter()
            .map(|r| {
                let pod = r.spec.args.iter().find(|a| a.name == "PodName");
                (
                    r.metadata.name.clone().unwrap(),
                    pod.and_then(|a| a.value.clone()).unwrap(),
                )
            })
            .collect()
    }

    /// From now on `pod`'s ready endpoint answers `{"ok": ok}`: its run becomes Successful
    /// or Failed (one Failed measurement fails the template's metric).
    fn answer(&self, pod: &str, ok: bool) {
        self.answers.answer(
            &format!("http://{pod}:8000/ready"),
            serde_json::json!({ "ok": ok }),
        );
    }

    async fn pods_where(&self, keep: impl Fn(&Pod) -> bool) -> Vec<String> {
        self.pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| keep(p))
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    /// The pods of a status hook list (`preInplaceHookCondition`, ...) with their phases.
    async fn waiting(
        &self,
        list: fn(
            &gamedeploy_core::api::GameDeploymentStatus,
        ) -> &Vec<gamedeploy_core::api::HookCondition>,
    ) -> BTreeMap<String, String> {
        let status = self.gds.get("test-gamedeployment").await.unwrap().status;
        status
            .map(|s| {
                list(&s)
                    .iter()
                    .map(|c| (c.pod_name.clone(), c.phase.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message of the GameDeployment's condition `type_`.
    async fn condition(&self, type_: &str) -> Option<String> {
        let status = self.gds.get("test-gamedeployment").await.unwrap().status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.message)
    }
}

/// The preInplace hook gates each pod: no pod is made unready before its HookRun succeeds;
/// a Failed HookRun holds its pod untouched, with a FailedUpdate condition.
#[tokio::test(start_paused = true)]
async fn a_pre_in_place_hook_gates_each_pod_until_its_hook_run_succeeds() {
    let h = Hooked::start(|gd| {
        gd.spec.pre_inplace_update_strategy = Some(
            serde_json::from_value(serde_json::json!({"hook": {"templateName": "ready-check"}}))
                .unwrap(),
        )
    })
    .await;
    set_image(&h.admin, "python:latest").await;
    let runs = h.runs(2).await; // one per pod of the first batch (maxUnavailable 2)
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        h.pods_where(out_of_endpoints).await.is_empty(),
        "no pod touched while its hook is pending"
    );
    let pending: BTreeMap<String, String> = runs
        .iter()
        .map(|(_, pod)| (pod.clone(), "Pending".to_string()))
        .collect();
    assert_eq!(h.waiting(|s| &s.pre_inplace_hook_condition).await, pending);
    let ((_, good_pod), (_, bad_pod)) = (&runs[0], &runs[1]);
    h.answer(good_pod, true);
    h.answer(bad_pod, false);
    assert!(
        wait_for(|| async { h.pods_where(out_of_endpoints).await.contains(good_pod) }).await,
        "the pod whose hook succeeded leaves endpoints"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        !h.pods_where(out_of_endpoints).await.contains(bad_pod),
        "the pod whose hook failed is left alone"
    );
    let failed = h
        .condition("FailedUpdate")
        .await
        .expect("a FailedUpdate condition");
    assert!(failed.contains(bad_pod.as_str()), "{failed}");
    // preInplaceHookCondition lists the held pod, as the original's status does; the pod whose
    // hook passed has left it (the next pod's hook may have started meanwhile).
    let waiting = h.waiting(|s| &s.pre_inplace_hook_condition).await;
    assert_eq!(waiting.get(bad_pod).map(String::as_str), Some("Failed"));
    assert!(!waiting.contains_key(good_pod), "{waiting:?}");
    h.operator.shutdown().await;
}

/// The preDelete hook gates every deletion: a scale-down marks its victims and waits for their
/// HookRuns; a successful hook lets its pod go, a failed one keeps it, with a FailedScale
/// condition, until `retry: true` runs it again.
#[tokio::test(start_paused = true)]
async fn a_pre_delete_hook_gates_a_scale_down_until_its_hook_run_succeeds() {
    let h = Hooked::start(|gd| {
        gd.spec.pre_delete_update_strategy = Some(
            serde_json::from_value(serde_json::json!({"hook": {"templateName": "ready-check"}}))
                .unwrap(),
        )
    })
    .await;
    h.gds
        .patch_scale(
            "test-gamedeployment",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    let runs = h.runs(2).await;
    assert!(runs.iter().all(|(name, _)| name.starts_with("predelete-")));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let all = h.pods_where(|_| true).await;
    assert_eq!(all.len(), 8, "nothing deleted while the hooks run");
    let marked = h
        .pods_where(|p| {
            p.annotations()
                .get(names::ANNOTATION_POD_DELETING)
                .is_some_and(|v| v == "true")
        })
        .await;
    let victims: Vec<String> = runs.iter().map(|(_, pod)| pod.clone()).collect();
    assert_eq!(
        marked.iter().collect::<BTreeSet<_>>(),
        victims.iter().collect::<BTreeSet<_>>()
    );
    let ((_, good_pod), (_, bad_pod)) = (&runs[0], &runs[1]);
    h.answer(good_pod, true);
    h.answer(bad_pod, false);
    assert!(
        wait_for(|| async { !h.pods_where(|_| true).await.contains(good_pod) }).await,
        "the pod whose hook succeeded is deleted"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let left = h.pods_where(|_| true).await;
    assert!(left.contains(bad_pod), "the pod whose hook failed is kept");
    assert_eq!(left.len(), 7, "no other pod is taken in its place");
    let failed = h
        .condition("FailedScale")
        .await
        .expect("a FailedScale condition");
    assert!(failed.contains(bad_pod.as_str()), "{failed}");
    assert_eq!(
        h.waiting(|s| &s.pre_delete_hook_condition).await,
        [(bad_pod.clone(), "Failed".to_string())].into()
    );
    // retry: true runs the failed hook again as a new HookRun (the old one is finished and
    // measures nothing more), which now succeeds; the flag is not written back.
    h.answer(bad_pod, true);
    h.gds
        .patch(
            "test-gamedeployment",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"preDeleteUpdateStrategy": {"retry": true}}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        wait_for(|| async { !h.pods_where(|_| true).await.contains(bad_pod) }).await,
        "the retried hook lets its pod go"
    );
    assert_eq!(h.pods_where(|_| true).await.len(), 6);
    assert_eq!(h.condition("FailedScale").await, None);
    let gd = h.gds.get("test-gamedeployment").await.unwrap();
    assert!(gd.spec.pre_delete_update_strategy.unwrap().retry);
    h.operator.shutdown().await;
}

/// The postInplace hook reports on each pod after its in-place update and gates nothing: the
/// rollout finishes while the runs are still pending, each updated pod is listed in
/// `postInplaceHookCondition` until its run succeeds, and the runs stay until the pod moves on.
#[tokio::test(start_paused = true)]
async fn a_post_in_place_hook_runs_after_each_update_without_gating_it() {
    let h = Hooked::start(|gd| {
        gd.spec.post_inplace_update_strategy = Some(
            serde_json::from_value(serde_json::json!({"hook": {"templateName": "ready-check"}}))
                .unwrap(),
        )
    })
    .await;
    set_image(&h.admin, "python:latest").await;
    let runs = h.runs(5).await; // one per updated pod (partition 3), none of them run
    assert!(
        runs.iter()
            .all(|(name, _)| name.starts_with("postinplace-"))
    );
    let status = h
        .gds
        .get("test-gamedeployment")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        status.updated_ready_replicas, 5,
        "not gated by the pending runs"
    );
    let waiting = h.waiting(|s| &s.post_inplace_hook_condition).await;
    assert_eq!(waiting.len(), 5, "{waiting:?}");
    let (_, done_pod) = &runs[0];
    h.answer(done_pod, true);
    assert!(
        wait_for(|| async {
            !h.waiting(|s| &s.post_inplace_hook_condition)
                .await
                .contains_key(done_pod)
        })
        .await,
        "a pod leaves the list once its run succeeded"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        h.runs(5).await.len(),
        5,
        "runs are neither recreated nor removed"
    );
    h.operator.shutdown().await;
}

/// Pod creates and deletes the operator has sent so far.
fn pod_writes(server: &ApiServer) -> (u64, u64) {
    let count = |verb: &str| {
        server
            .request_counts()
            .iter()
            .filter(|c| {
                c.client == "operator"
                    && c.verb == verb
                    && c.resource == "pods"
                    && c.subresource.is_empty()
            })
            .map(|c| c.count)
            .sum()
    };
    (count("create"), count("delete"))
}

/// Scales the seed GameDeployment from `from` to `to` replicas with the operator's watches
/// `watch_delay` late; returns the pod creates and deletes it sent, once settled.
async fn scale_and_count(from: i32, to: i32, watch_delay: Duration) -> (u64, u64) {
    let mut gd = seed_gd();
    gd.spec.replicas = Some(from);
    let (server, clock, admin) = cluster_with(crds(), &gd).await;
    server.set_faults(Some(embedded_apiserver::FaultConfig {
        watch_delay,
        client: Some("operator".into()),
        ..Default::default()
    }));
    let operator = start_operator(&server, &clock, 11);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let settled_at = |n: i32| {
        let (pods, gds) = (&pods, &gds);
        async move {
            let listed = pods.list(&ListParams::default()).await.unwrap().items.len();
            let status = gds.get("test-gamedeployment").await.unwrap().status;
            listed == n as usize && status.is_some_and(|s| s.replicas == n)
        }
    };
    assert!(wait_for(|| settled_at(from)).await, "{from} pods");
    if from != to {
        gds.patch_scale(
            "test-gamedeployment",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": to}})),
        )
        .await
        .unwrap();
        assert!(wait_for(|| settled_at(to)).await, "{to} pods");
    }
    // Long enough for any late reconcile to act on what it saw.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(settled_at(to).await, "still {to} pods");
    let counted = pod_writes(&server);
    operator.shutdown().await;
    counted
}

/// A reconcile that runs before the watch shows the operator's own creates must not create
/// again (nor delete the surplus afterwards): every scale makes exactly the pods it needs.
#[tokio::test(start_paused = true)]
async fn scaling_creates_exactly_the_missing_pods_and_deletes_none() {
    for delay in [
        Duration::ZERO,
        Duration::from_millis(300),
        Duration::from_secs(3),
    ] {
        assert_eq!(
            scale_and_count(100, 100, delay).await,
            (100, 0),
            "0 -> 100, watch delay {delay:?}"
        );
        assert_eq!(
            scale_and_count(8, 100, delay).await,
            (8 + 92, 0),
            "8 -> 100, watch delay {delay:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn scaling_to_a_thousand_with_late_watches_creates_a_thousand() {
    assert_eq!(
        scale_and_count(0, 1000, Duration::from_secs(2)).await,
        (1000, 0)
    );
}

/// Requests the operator sent, of `verb` on `resource` (and `subresource`, "" for none).
fn sent(server: &ApiServer, verb: &str, resource: &str, subresource: &str) -> u64 {
    server
        .request_counts()
        .iter()
        .filter(|c| {
            c.client == "operator"
                && c.verb == verb
                && c.resource == resource
                && c.subresource == subresource
        })
        .map(|c| c.count)
        .sum()
}

/// A template the API server rejects: creates back off instead of looping, the condition and
/// events carry the server's message (not a `Debug` dump, not a random pod name), and a
/// condition that does not change is not written again.
#[tokio::test(start_paused = true)]
async fn a_template_the_server_rejects_backs_off_with_a_stable_human_message() {
    let mut gd = seed_gd();
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = None;
    let (server, clock, admin) = cluster_with(crds_without_cel(), &gd).await;
    let operator = start_operator(&server, &clock, 5);
    tokio::time::sleep(Duration::from_secs(300)).await;
    let creates = sent(&server, "create", "pods", "");
    let status_writes = sent(&server, "patch", "gamedeployments", "status");
    let event_writes = sent(&server, "create", "events", "") + sent(&server, "patch", "events", "");
    operator.shutdown().await;
    println!("creates {creates}, status writes {status_writes}, event writes {event_writes}");
    assert!(
        (2..=12).contains(&creates),
        "{creates} creates in 5 minutes"
    );
    assert!(status_writes <= 3, "{status_writes} status writes");
    assert!(event_writes <= creates + 2, "{event_writes} event writes");
    let server_says = "spec.containers[0].image: Required value";
    let debug_markers = ["Status {", "ErrorResponse", "code:"];
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let status = gds
        .get("test-gamedeployment")
        .await
        .unwrap()
        .status
        .unwrap();
    let failed = status
        .conditions
        .iter()
        .find(|c| c.type_ == "FailedScale")
        .expect("a FailedScale condition");
    assert!(failed.message.contains(server_says), "{}", failed.message);
    for marker in debug_markers {
        assert!(!failed.message.contains(marker), "{}", failed.message);
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin, "default");
    let warnings: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.note)
        .collect();
    assert!(!warnings.is_empty(), "a Warning event");
    for note in &warnings {
        assert!(note.contains(server_says), "{note}");
        for marker in debug_markers {
            assert!(!note.contains(marker), "{note}");
        }
    }
    assert_eq!(
        warnings.len(),
        1,
        "one event, repeated as a series: {warnings:?}"
    );
}

/// The CRDs as an install older than the integer bounds has them: no `minimum`/`maximum` and
/// no CEL, so a spec whose numbers do not fit their format is stored.
fn crds_without_bounds() -> Vec<CustomResourceDefinition> {
    crds_without(&["minimum", "maximum", "x-kubernetes-validations"])
}

/// `value` wrapped in `depth` levels of objects.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(
        serde_json::json!("bottom"),
        |inner, _| serde_json::json!({ "x": inner }),
    )
}

/// GameDeployments the operator cannot decode (numbers past their format, stored through a CRD
/// without bounds) get a Warning event and an `InvalidSpec` condition, touch no pod, and do not
/// stop the operator from reconciling the others, before and after a restart. A template nested
/// as deep as the server stores is no obstacle: its unknown fields are skipped.
#[tokio::test(start_paused = true)]
async fn game_deployments_the_operator_cannot_decode_are_reported_and_do_not_stall_the_others() {
    let (server, clock, admin) = cluster_with(crds_without_bounds(), &seed_gd()).await;
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        "default",
        &kube::api::ApiResource::erase::<GameDeployment>(&()),
    );
    let poison = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(seed_gd()).unwrap();
        v["metadata"]["name"] = name.into();
        for labels in [
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            v.pointer_mut(labels).unwrap()["app"] = name.into();
        }
        edit(&mut v);
        serde_json::from_value::<kube::api::DynamicObject>(v).unwrap()
    };
    for gd in [
        poison("huge-grace", &|v| {
            v["spec"]["updateStrategy"]["inPlaceUpdateStrategy"]["gracePeriodSeconds"] =
                1_000_000_000_000_i64.into()
        }),
        poison("huge-replicas", &|v| {
            v["spec"]["replicas"] = 1_099_511_627_776_i64.into()
        }),
        poison("deep", &|v| {
            v["spec"]["template"]["spec"]["x"] = nested(123)
        }),
    ] {
        match raw.create(&PostParams::default(), &gd).await {
            Ok(_) => {}
            // Stored: only this client's typed reading of the answer stops at serde_json's
            // 128 levels (the answer's managedFields are as deep as the template), which is
            // what the operator's watch must not do.
            Err(kube::Error::SerdeError(e)) if gd.metadata.name.as_deref() == Some("deep") => {
                assert!(e.to_string().contains("recursion limit"), "{e}")
            }
            Err(e) => panic!("{e}"),
        }
    }
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    for restart in [false, true] {
        let operator = start_operator(&server, &clock, 3);
        let pods_of = |app: &'static str| {
            let pods = &pods;
            async move {
                pods.list(&ListParams::default().labels(&format!("app={app}")))
                    .await
                    .unwrap()
                    .items
                    .len()
            }
        };
        let settled =
            || async { pods_of("test-gamedeployment").await == 8 && pods_of("deep").await == 8 };
        assert!(wait_for(settled).await, "restart {restart}");
        tokio::time::sleep(Duration::from_secs(30)).await;
        for (name, field) in [
            (
                "huge-grace",
                "spec.updateStrategy.inPlaceUpdateStrategy.gracePeriodSeconds",
            ),
            ("huge-replicas", "spec.replicas"),
        ] {
            let gd = raw.get(name).await.unwrap();
            let conditions = gd.data["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let c = conditions
                .iter()
                .find(|c| c["type"] == "FailedScale")
                .unwrap_or_else(|| panic!("{name}: no condition in {}", gd.data["status"]));
            assert_eq!(c["reason"], "InvalidSpec");
            let message = c["message"].as_str().unwrap();
            assert!(message.contains(field), "{name}: {message}");
        }
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(all.len(), 16, "pods of the seed and of the deep one only");
        operator.shutdown().await;
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin, "default");
    let warnings: Vec<(String, String)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| {
            (
                e.regarding.and_then(|r| r.name).unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect();
    for name in ["huge-grace", "huge-replicas"] {
        assert!(
            warnings
                .iter()
                .any(|(n, note)| n == name && note.starts_with("cannot read spec.")),
            "{name}: {warnings:?}"
        );
    }
    assert!(
        warnings.iter().all(|(n, _)| n.starts_with("huge-")),
        "{warnings:?}"
    );
}

/// A client of `server` as `identity` whose full pod lists (not watches) arrive `delay` late,
/// as on a cluster with many pods: the GameDeployment list completes first.
fn client_with_slow_pod_lists(server: &ApiServer, identity: &str, delay: Duration) -> kube::Client {
    use tower::ServiceExt;
    let inner = server.service(Some(identity));
    let slow = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let slow = req.method() == http::Method::GET
            && req.uri().path() == "/api/v1/pods"
            && !req.uri().query().unwrap_or_default().contains("watch=true");
        async move {
            if slow {
                tokio::time::sleep(delay).await;
            }
            inner.oneshot(req).await
        }
    });
    kube::Client::new(slow, "default")
}

/// kube-runtime's store readiness wakes only the last of its waiters (one oneshot receiver
/// behind a mutex). A reconcile that began waiting for the pod cache before the operator's own
/// readiness check did was never woken: a new leader with many pods reported ready and never
/// reconciled. Now only one future waits per cache.
#[tokio::test(start_paused = true)]
async fn an_operator_whose_pod_list_arrives_last_still_reconciles() {
    let (server, clock, admin) = seed_cluster().await;
    let options = Options {
        instance: "test".into(),
        ..Default::default()
    };
    let client = client_with_slow_pod_lists(&server, "operator", Duration::from_secs(3));
    let operator = Handle::start(client, clock.clone(), options);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    assert!(
        wait_for(|| async { pods.list(&ListParams::default()).await.unwrap().items.len() == 8 })
            .await,
        "the operator never created the seed's pods"
    );
    operator.shutdown().await;
}

/// A stop that arrives before the first lists complete ends the operator at once: kube-runtime
/// holds its graceful shutdown until its store is ready, which a stopped operator's never
/// becomes (a chaos seed hung there, its watches re-opening for ever on virtual time).
#[tokio::test(start_paused = true)]
async fn an_operator_stopped_before_its_caches_fill_stops() {
    let (server, clock, _admin) = seed_cluster().await;
    let client = client_with_slow_pod_lists(&server, "operator", Duration::from_secs(3));
    let operator = Handle::start(client, clock.clone(), Options::default());
    tokio::task::yield_now().await;
    let stopped = tokio::time::timeout(Duration::from_secs(60), operator.shutdown()).await;
    assert!(stopped.is_ok(), "the operator did not stop");
}

/// What a fault-free in-place rollout cost the operator.
#[derive(Debug)]
struct RolloutCost {
    event_creates: u64,
    events_stored: usize,
    conflicts: u64,
}

/// `replicas` pods of the seed (grace 5 s, partition 0) rolled to a new image in place with
/// `max_unavailable`, on the embedded cluster with a kubelet and no faults.
async fn rollout_cost(replicas: i32, max_unavailable: &str) -> RolloutCost {
    use k8s_openapi::api::events::v1::Event;
    let mut gd = seed_gd();
    gd.spec.replicas = Some(replicas);
    let mut spec = serde_json::to_value(&gd.spec).unwrap();
    spec["updateStrategy"]["partition"] = 0.into();
    spec["updateStrategy"]["maxUnavailable"] = max_unavailable.into();
    spec["updateStrategy"]["inPlaceUpdateStrategy"]["gracePeriodSeconds"] = 5.into();
    gd.spec = serde_json::from_value(spec).unwrap();
    let (server, clock, admin) = cluster_with(crds(), &gd).await;
    start_kubelet(&server, &clock);
    let operator = start_operator(&server, &clock, 5);
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    // All `n` pods ready on a revision other than `old`.
    let rolled = |old: String| {
        let gds = &gds;
        async move {
            let s = gds.get("test-gamedeployment").await.unwrap().status;
            s.is_some_and(|s| {
                s.update_revision != old
                    && s.updated_ready_replicas == replicas
                    && s.ready_replicas == replicas
            })
        }
    };
    assert!(
        wait_for(|| rolled(String::new())).await,
        "{replicas} pods ready"
    );
    let first = gds
        .get("test-gamedeployment")
        .await
        .unwrap()
        .status
        .unwrap();
    set_image(&admin, "python:latest").await;
    let mut done = false;
    for _ in 0..20 {
        if wait_for(|| rolled(first.update_revision.clone())).await {
            done = true;
            break;
        }
    }
    assert!(done, "the rollout did not finish");
    tokio::time::sleep(Duration::from_secs(30)).await;
    operator.shutdown().await;
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    RolloutCost {
        event_creates: sent(&server, "create", "events", ""),
        events_stored: events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        conflicts: server.error_responses("operator", 409),
    }
}

/// Every event is created once and kept; the operator's writes never meet a conflict when
/// nothing else writes: 1,000 pods (issue 10's size), with maxUnavailable 10 % and 100 %.
/// About 80 s per strategy in a debug build, on virtual time.
#[tokio::test(start_paused = true)]
async fn a_fault_free_rollout_of_1000_pods_creates_each_event_once_and_meets_no_conflict() {
    for max_unavailable in ["10%", "100%"] {
        let cost = rollout_cost(1000, max_unavailable).await;
        assert_eq!(cost.event_creates, cost.events_stored as u64, "{cost:?}");
        // At least one `SuccessfulCreate` per pod: none lost.
        assert!(cost.events_stored >= 1000, "{cost:?}");
        assert_eq!(cost.conflicts, 0, "{cost:?}");
    }
}

/// The original's pod index: each new pod takes the lowest free index of the range, in its
/// annotation and in `POD_INDEX`; a replacement takes the index its predecessor freed; more
/// replicas than the range holds is a `FailedScale` condition and creates nothing.
#[tokio::test(start_paused = true)]
async fn pods_take_the_lowest_free_index_of_the_range() {
    let mut gd = seed_gd();
    gd.spec.replicas = Some(3);
    gd.metadata.annotations = Some(
        [
            (names::ANNOTATION_INDEX_ON.to_string(), "true".to_string()),
            (
                names::ANNOTATION_INDEX_RANGE.to_string(),
                r#"{"podStartIndex":10,"podEndIndex":13}"#.to_string(),
            ),
        ]
        .into(),
    );
    let (server, clock, admin) = cluster_with(crds(), &gd).await;
    start_kubelet(&server, &clock);
    let operator = start_operator(&server, &clock, 9);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let indices = || async {
        let mut found: Vec<(String, String, String)> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                let index = p.annotations()[names::ANNOTATION_POD_INDEX].clone();
                let env = p.spec.as_ref().unwrap().containers[0]
                    .env
                    .iter()
                    .flatten()
                    .find(|e| e.name == "POD_INDEX")
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default();
                (index, env, p.metadata.name.unwrap())
            })
            .collect();
        found.sort();
        found
    };
    assert!(wait_for(|| async { indices().await.len() == 3 }).await);
    let first = indices().await;
    let numbers: Vec<(&str, &str)> = first
        .iter()
        .map(|(i, e, _)| (i.as_str(), e.as_str()))
        .collect();
    assert_eq!(numbers, [("10", "10"), ("11", "11"), ("12", "12")]);
    // The pod with index 11 goes; its replacement takes 11 again.
    pods.delete(&first[1].2, &Default::default()).await.unwrap();
    assert!(
        wait_for(|| async {
            let now = indices().await;
            now.len() == 3 && now[1].0 == "11" && now[1].2 != first[1].2
        })
        .await,
        "the replacement takes the freed index"
    );
    // Four replicas do not fit in three indices.
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    gds.patch(
        "test-gamedeployment",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let failed = || async {
        gds.get("test-gamedeployment")
            .await
            .unwrap()
            .status
            .and_then(|s| {
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == names::CONDITION_FAILED_SCALE)
            })
            .is_some_and(|c| c.reason == names::REASON_INVALID_POD_INDEX_RANGE)
    };
    assert!(wait_for(failed).await, "a FailedScale condition");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(indices().await.len(), 3, "no pod without an index");
    operator.shutdown().await;
}

/// A HookTemplate that cannot run (a nested comprehension over the answer, past the cost
/// budget; an argument named twice) is reported on the template when it is applied: one
/// Warning event per generation, however often the watch shows it.
#[tokio::test(start_paused = true)]
async fn a_hook_template_that_cannot_run_is_reported_when_applied() {
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let operator = start_operator(&server, &clock, 5);
    let templates: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        "default",
        &kube::api::ApiResource::erase::<gamedeploy_core::api::HookTemplate>(&()),
    );
    let template = |condition: &str, label: &str| {
        serde_json::from_value::<kube::api::DynamicObject>(serde_json::json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
            "metadata": {"name": "costly", "labels": {"try": label}},
            "spec": {"args": [{"name": "a"}, {"name": "a"}], "metrics": [{
                "name": "m", "successCondition": condition,
                "provider": {"web": {"url": "http://127.0.0.1:1/"}}
            }]}
        }))
        .unwrap()
    };
    let nested = "result.all(x, result.all(y, x + y >= 0))";
    templates
        .create(&PostParams::default(), &template(nested, "1"))
        .await
        .unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(admin.clone(), "default");
    let reports = || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(names::EVENT_HOOKTEMPLATE_INVALID))
            .collect::<Vec<_>>()
    };
    assert!(wait_for(|| async { !reports().await.is_empty() }).await);
    let note = reports().await[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("estimated rule cost exceeds budget"),
        "{note}"
    );
    assert!(note.contains("argument a"), "{note}");
    // A label change is no new generation: no second report.
    let relabel = serde_json::json!({"metadata": {"labels": {"try": "2"}}});
    templates
        .patch("costly", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let all = reports().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].series.as_ref().map(|s| s.count), None, "sent once");
    operator.shutdown().await;
}
