//! Efficiency of the controller (issue item 8). Run with `cargo bench --bench controller`;
//! results go in BENCHMARKS.md. Parts can be run alone by name:
//! `cargo bench --bench controller -- plan reconcile memory rollout`.
//! `BENCH_PODS` (default 10000) sizes the no-op and memory parts, `BENCH_ROLLOUT_PODS`
//! (default 1000) the rollout.
//!
//! 1. `plan`: the pure decision for one GameDeployment whose pods are all up to date and
//!    ready, in memory, as the operator would see them after a finished in-place rollout.
//! 2. `reconcile`: the whole reconcile (cache read, plan, act) on the embedded cluster.
//! 3. `memory`: live heap held by the reflector caches, and by a whole running operator.
//! 4. `rollout`: a simulated in-place rollout on the paused clock vs the ideal duration.
//! 5. `latency`: in real time, as `gamedeploy cluster --operator --kubelet` runs (API server,
//!    simulated kubelet and operator in one process), how long after an updated pod turns
//!    Ready the next pod is marked unready (`BENCH_LATENCY_PODS`, default 1000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_apiserver::ApiServer;
use futures::StreamExt;
use gamedeploy_clock::{SharedClock, SystemClock};
use gamedeploy_core::api::{
    GameDeployment, HookRun, HookTemplate, InPlaceUpdateStrategy, StoredGameDeployment, crds,
};
use gamedeploy_core::inplace::{self, ContainerSnapshot, Record, State};
use gamedeploy_core::names;
use gamedeploy_core::planner::model::{CachedPod, Effect, Owner, Plan, PlanInput, Tally};
use gamedeploy_core::planner::plan;
use gamedeploy_core::planner::rules::new_pods as pods;
use gamedeploy_core::planner::rules::replicas::NewPod;
use gamedeploy_core::planner::rules::revision_history::revision_template;
use gamedeploy_operator::controller::{
    self, Caches, Context, Handle, MIN_RECONCILE_INTERVAL, Options,
};
use gamedeploy_operator::metrics::PlanFrom;
use gamedeploy_operator::nodes::SharedNodes;
use gamedeploy_operator::roster::SharedRoster;
use gamedeploy_simulator::runner;
use gamedeploy_simulator::scenario;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

#[path = "support/alloc.rs"]
mod alloc;
use alloc::live;
#[path = "support/env.rs"]
mod env;
use env::env_usize;

const IMAGE: &str = "python:3.9";

fn now() -> Timestamp {
    "2026-01-01T01:00:00Z".parse().expect("time")
}

/// The seed example, scaled to `n` replicas with no partition.
fn game_deployment(n: usize) -> GameDeployment {
    let text = include_str!("../deploy/examples/inplace-update.yaml");
    let mut gd: GameDeployment = serde_saphyr::from_str(text).expect("example");
    gd.spec.replicas = Some(n as i32);
    if let Some(u) = gd.spec.update_strategy.as_mut() {
        u.partition = None;
    }
    gd
}

/// A 5-character suffix per index, in the generated-name alphabet (unique below 27^5).
fn suffix(mut i: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[i % ALPHABET.len()] as char;
            i /= ALPHABET.len();
            c
        })
        .collect()
}

/// Pod `i` as the controller creates it (its own builder), plus what an in-place update
/// that finished leaves: a `Ready` record for `revision` in the state annotation.
fn pod_spec(owner: &Owner, template: &PodTemplateSpec, revision: &str, i: usize) -> Pod {
    let s = suffix(i);
    let new = NewPod {
        name: format!("{}-{s}", owner.name),
        instance_id: s,
        revision: revision.to_string(),
    };
    let mut pod = pods::build(owner, template, &new, true);
    let t = now() - jiff::SignedDuration::from_secs(600);
    let record = Record {
        state: State::Ready,
        images: [("python".to_string(), IMAGE.to_string())]
            .into_iter()
            .collect(),
        unready_since: Some(t),
        patched_at: Some(t + jiff::SignedDuration::from_secs(30)),
        containers: [(
            "python".to_string(),
            ContainerSnapshot {
                container_id: Some(format!("containerd://{i}-0")),
                image_id: Some("sha256:old".into()),
                restart_count: 0,
            },
        )]
        .into_iter()
        .collect(),
        ..Record::start(revision, t)
    };
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::ANNOTATION_STATE.into(), inplace::encode(&record));
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some("node-1".into());
    }
    pod
}

/// Status kubelet reports for a running, ready pod restarted once in place.
fn ready_status(i: usize) -> serde_json::Value {
    json!({
        "phase": "Running",
        "podIP": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
        "hostIP": "192.168.0.1",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:51:00Z"},
            {"type": "InPlaceUpdateReady", "status": "True", "lastTransitionTime": "2026-01-01T00:51:00Z"}
        ],
        "containerStatuses": [{
            "name": "python", "image": IMAGE, "imageID": "sha256:new",
            "containerID": format!("containerd://{i}-1"), "restartCount": 1, "ready": true,
            "state": {"running": {"startedAt": "2026-01-01T00:50:31Z"}}
        }]
    })
}

/// The pod as a reflector holds it: server-set metadata and the status filled in.
fn settled_pod(owner: &Owner, template: &PodTemplateSpec, revision: &str, i: usize) -> Pod {
    let mut pod = pod_spec(owner, template, revision, i);
    pod.metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
    pod.metadata.resource_version = Some((1000 + i).to_string());
    pod.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T00:00:00Z".parse().expect("time"),
    ));
    pod.status = Some(serde_json::from_value(ready_status(i)).expect("status"));
    pod
}

fn no_actions(p: &Plan) -> bool {
    p.effects
        .iter()
        .all(|e| matches!(e, Effect::WriteStatus(_)))
}

/// The GameDeployment's revision and template, from a first plan with no pods.
fn first_revision(gd: &GameDeployment) -> (ControllerRevision, PodTemplateSpec, String) {
    let hooks = BTreeMap::new();
    let costs = BTreeMap::new();
    let world = PlanInput {
        gd,
        pods: &[],
        revisions: &[],
        hook_runs: &hooks,
        hook_templates: &BTreeMap::new(),
        node_costs: &costs,
        resize_supported: true,
        nodes: &BTreeMap::new(),
        now: now(),
    };
    // Pod names must be unique: the scale decision skips taken ones.
    let mut i = 0;
    let first = plan::plan(&world, &mut || {
        i += 1;
        suffix(i)
    });
    let rev = first
        .effects
        .into_iter()
        .find_map(|e| match e {
            Effect::CreateRevision(w) => Some(w.object),
            _ => None,
        })
        .expect("a first revision");
    let template: PodTemplateSpec =
        serde_json::from_value(revision_template(&rev).expect("template")).expect("template");
    let name = rev.metadata.name.clone().expect("name");
    (rev, template, name)
}

/// Runs `f` at least `min` times and for at least `secs`; returns (iterations, mean).
fn time<T>(min: usize, secs: f64, mut f: impl FnMut() -> T) -> (usize, Duration) {
    let t = Instant::now();
    let mut n = 0;
    while n < min || t.elapsed().as_secs_f64() < secs {
        std::hint::black_box(f());
        n += 1;
    }
    (n, t.elapsed() / n as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ----- 1. plan ---------------------------------------------------------------------------

fn bench_plan(n: usize) {
    println!("== plan: one GameDeployment, {n} pods up to date and ready (in memory)");
    let mut gd = game_deployment(n);
    gd.metadata.uid = Some("gd-uid".into());
    gd.metadata.generation = Some(1);
    let owner = Owner {
        name: gd.metadata.name.clone().unwrap_or_default(),
        namespace: "default".into(),
        uid: "gd-uid".into(),
    };
    let (rev, template, rev_name) = first_revision(&gd);
    let full: Vec<Pod> = (0..n)
        .map(|i| settled_pod(&owner, &template, &rev_name, i))
        .collect();
    let mut pods: Vec<Arc<CachedPod>> = full
        .iter()
        .map(|p| Arc::new(CachedPod::new(p.clone())))
        .collect();
    // In name order, as the operator's pod roster hands a GameDeployment's pods to the plan.
    pods.sort_by(|a, b| a.view().name.cmp(&b.view().name));
    let revisions = vec![rev];
    let hooks = BTreeMap::new();
    let costs = BTreeMap::new();
    let mut suffixes = || "zzzzz".to_string();
    // The status the previous reconcile wrote: a no-op reconcile computes the same one.
    let first = {
        let world = PlanInput {
            gd: &gd,
            pods: &pods,
            revisions: &revisions,
            hook_runs: &hooks,
            hook_templates: &BTreeMap::new(),
            node_costs: &costs,
            resize_supported: true,
            nodes: &BTreeMap::new(),
            now: now(),
        };
        plan::plan(&world, &mut suffixes)
    };
    assert!(no_actions(&first), "not a no-op: {first:#?}");
    gd.status = first.status().cloned();
    let world = PlanInput {
        gd: &gd,
        pods: &pods,
        revisions: &revisions,
        hook_runs: &hooks,
        hook_templates: &BTreeMap::new(),
        node_costs: &costs,
        resize_supported: true,
        nodes: &BTreeMap::new(),
        now: now(),
    };
    let p = plan::plan(&world, &mut suffixes);
    assert!(no_actions(&p), "not a no-op");
    assert_eq!(
        gd.status.as_ref(),
        p.status(),
        "status unchanged: no status write"
    );
    let (iters, per) = time(5, 3.0, || plan::plan(&world, &mut suffixes));
    println!(
        "plan::plan                          {:>8.2} ms per plan ({:.2} µs per pod, {iters} runs); actions: 0, status write: no",
        ms(per),
        per.as_secs_f64() * 1e6 / n as f64
    );
    // What a reconcile of these pods plans with: the roster's tally, kept as events arrive.
    let mut tally = Tally::default();
    for pod in &pods {
        tally.count(pod, 1);
    }
    let settled = tally.settled().expect("settled pods");
    assert_eq!(
        plan::plan_settled(&world, &settled),
        Some(p),
        "the plan from the tally"
    );
    let (iters, per) = time(5, 2.0, || plan::plan_settled(&world, &settled));
    println!(
        "plan::plan_settled (from the tally) {:>8.3} ms per plan ({iters} runs): reads no pod",
        ms(per)
    );
    // Not part of a reconcile: the cache derives each pod's view and record once, when the
    // watch delivers it. For scale: what every reconcile paid before it did.
    let (_, per) = time(5, 2.0, || {
        full.iter()
            .map(|p| CachedPod::new(p.clone()))
            .collect::<Vec<_>>()
    });
    println!(
        "  projecting all {n} pods (CachedPod::new, once per watch event, not per plan) {:>8.2} ms",
        ms(per)
    );
}

// ----- 2. reconcile on the embedded cluster ------------------------------------------------

struct Cluster {
    server: ApiServer,
    gd: GameDeployment,
}

/// An embedded API server on `clock` with gamedeploy's CRDs installed, and an admin client.
async fn server_with_crds(clock: SharedClock) -> (ApiServer, kube::Client) {
    let server = ApiServer::new(clock);
    let admin = server.client_as("bench");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api
            .create(&PostParams::default(), &crd)
            .await
            .expect("crd");
    }
    (server, admin)
}

/// The embedded cluster with the GameDeployment, its revision and `n` settled pods, written
/// through the API as the operator and kubelet would have.
async fn cluster(n: usize) -> Cluster {
    let (server, admin) = server_with_crds(Arc::new(SystemClock)).await;
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    let gd = gds
        .create(&PostParams::default(), &game_deployment(n))
        .await
        .expect("gd");
    let owner = Owner {
        name: gd.metadata.name.clone().unwrap_or_default(),
        namespace: "default".into(),
        uid: gd.metadata.uid.clone().unwrap_or_default(),
    };
    let (mut rev, template, rev_name) = first_revision(&gd);
    rev.metadata.owner_references = Some(vec![owner.reference()]);
    rev.metadata.namespace = Some("default".into());
    Api::<ControllerRevision>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &rev)
        .await
        .expect("revision");
    let pod_api: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let t = Instant::now();
    for i in 0..n {
        let pod = pod_spec(&owner, &template, &rev_name, i);
        let name = pod.metadata.name.clone().expect("name");
        pod_api
            .create(&PostParams::default(), &pod)
            .await
            .expect("create");
        pod_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": ready_status(i)})),
            )
            .await
            .expect("status");
    }
    println!(
        "setup: {n} pods created and made ready through the API in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Cluster { server, gd }
}

/// Reflector stores over the server, filled; the tasks feeding them are returned too.
async fn stores(client: &kube::Client) -> (Caches, Vec<tokio::task::JoinHandle<()>>) {
    fn fill<K>(api: Api<K>) -> (Store<K>, tokio::task::JoinHandle<()>)
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let (store, writer) = reflector::store();
        // As the operator's reflectors do (`operator::run`).
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).modify(controller::for_cache),
        );
        let task = tokio::spawn(stream.for_each(|_| async {}));
        (store, task)
    }
    // The pod and node caches as the operator fills them (`controller::run`).
    let pods = SharedRoster::default();
    let pod_watch = watcher(
        Api::<CachedPod>::all(client.clone()),
        watcher::Config::default(),
    );
    let a = tokio::spawn(pods.reflect(pod_watch).for_each(|_| async {}));
    let nodes = SharedNodes::default();
    let node_watch = watcher(Api::<Node>::all(client.clone()), watcher::Config::default());
    let d = tokio::spawn(nodes.reflect(node_watch).for_each(|_| async {}));
    let (revisions, b) = fill(Api::<ControllerRevision>::all(client.clone()));
    let (hook_runs, c) = fill(Api::<HookRun>::all(client.clone()));
    let (hook_templates, e) = fill(Api::<HookTemplate>::all(client.clone()));
    pods.wait_until_ready().await;
    nodes.wait_until_ready().await;
    for ready in [
        revisions.wait_until_ready().await,
        hook_runs.wait_until_ready().await,
        hook_templates.wait_until_ready().await,
    ] {
        ready.expect("store ready");
    }
    (
        Caches {
            pods,
            revisions,
            hook_runs,
            hook_templates,
            nodes,
        },
        vec![a, b, c, d, e],
    )
}

async fn bench_reconcile(c: &Cluster, n: usize) {
    println!("== reconcile: one GameDeployment, {n} settled pods, embedded cluster");
    let client = c.server.client_as("operator");
    let (caches, tasks) = stores(&client).await;
    assert_eq!(caches.pods.lock().len(), n);
    let pod_cache = caches.pods.clone();
    let clock: SharedClock = Arc::new(SystemClock);
    let ctx = Arc::new(Context::new(client, clock, caches, 1, "bench".into()));
    // The first reconcile writes the status (the GameDeployment was created without one).
    let gd = Arc::new(StoredGameDeployment::from(c.gd.clone()));
    controller::reconcile(gd.clone(), ctx.clone())
        .await
        .expect("reconcile");
    let first = ctx.writes();
    assert_eq!(first.pods, 0, "no pod writes");
    // The first claim evaluates the selector on every pod; no later one here needs to.
    let evaluated = ctx.selector_evaluations();
    assert_eq!(evaluated, n, "the first claim evaluates every pod");
    let gd: GameDeployment = Api::namespaced(c.server.client_as("bench"), "default")
        .get(&c.gd.metadata.name.clone().unwrap_or_default())
        .await
        .expect("gd");
    let gd = Arc::new(StoredGameDeployment::from(gd));
    let from = Counted::now(&ctx);
    let (t, mut spent) = (Instant::now(), Duration::ZERO);
    let mut iters = 0u32;
    while iters < 5 || t.elapsed().as_secs_f64() < 3.0 {
        spent += full_reconcile(&gd, &ctx).await;
        iters += 1;
    }
    let per = spent / iters;
    let no_op = Counted::now(&ctx).since(&from, "a no-op reconcile");
    println!(
        "reconcile (observe + plan + act)    {:>8.2} ms per reconcile ({iters} runs); {no_op}",
        ms(per)
    );
    // One pod changed since the last reconcile: an annotation the operator does not read, so
    // the plan stays a no-op, but the cache has re-derived that pod. Only the reconcile is timed.
    let pods_api: Api<Pod> = Api::namespaced(c.server.client_as("bench"), "default");
    let gd_uid = gd.meta().uid.clone().unwrap_or_default();
    let names: Vec<String> = (pod_cache.lock().controlled("default", &gd_uid).pods.iter())
        .take(100)
        .filter_map(|p| p.meta().name.clone())
        .collect();
    let (mut spent, mut runs) = (Duration::ZERO, 0usize);
    let from = Counted::now(&ctx);
    let started = Instant::now();
    while runs < 5 || started.elapsed().as_secs_f64() < 3.0 {
        let name = &names[runs % names.len()];
        let touch = json!({"metadata": {"annotations": {"bench/touched": runs.to_string()}}});
        let patched = pods_api
            .patch(name, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .expect("touch");
        let cached_version = || {
            let cache = pod_cache.lock();
            let pod = cache.get("default", name);
            pod.and_then(|p| p.meta().resource_version.clone())
        };
        while cached_version() != patched.metadata.resource_version {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        spent += full_reconcile(&gd, &ctx).await;
        runs += 1;
    }
    // An annotation is not a label: claiming does not evaluate the selector on that pod, and
    // the pod stays settled.
    let touched = Counted::now(&ctx).since(&from, "a reconcile after an unread change");
    println!(
        "reconcile after one pod changed     {:>8.2} ms per reconcile ({runs} runs); {touched}",
        ms(spent / runs as u32)
    );
    let (_, per) = time(5, 2.0, || {
        controller::observe(gd.decoded().expect("decoded"), &ctx)
    });
    println!("  of which observe (cache read)     {:>8.2} ms", ms(per));
    for t in tasks {
        t.abort();
    }
}

/// One reconcile that runs through, and how long it took. A reconcile started within
/// [`MIN_RECONCILE_INTERVAL`] of the previous one returns at once (a burst of watch events is
/// planned together), so this waits out the interval first, untimed.
/// What reconciles of settled pods must not do, counted: API writes, selector evaluations and
/// plans made pod by pod (a reconcile that waits, for its own status write to show, say, plans
/// nothing, so plans from the tally are only said to happen).
struct Counted {
    writes: usize,
    evaluations: usize,
    tally: u64,
    pods: u64,
}

impl Counted {
    fn now(ctx: &Context) -> Self {
        let w = ctx.writes();
        Counted {
            writes: w.pods + w.other,
            evaluations: ctx.selector_evaluations(),
            tally: ctx.plans(PlanFrom::Tally),
            pods: ctx.plans(PlanFrom::Pods),
        }
    }

    /// Asserts that `what`, between `from` and `self`, wrote nothing, evaluated no selector and
    /// planned from the tally only; says so.
    fn since(self, from: &Counted, what: &str) -> String {
        let writes = self.writes - from.writes;
        let evaluations = self.evaluations - from.evaluations;
        let (tally, pods) = (self.tally - from.tally, self.pods - from.pods);
        assert_eq!(writes, 0, "{what} writes nothing");
        assert_eq!(evaluations, 0, "{what} evaluates no selector");
        assert!(
            tally > 0 && pods == 0,
            "{what} plans from the tally: {tally} from it, {pods} pod by pod"
        );
        format!(
            "API writes: {writes}; selector evaluations: {evaluations}; plans from the tally: {tally}"
        )
    }
}

async fn full_reconcile(gd: &Arc<StoredGameDeployment>, ctx: &Arc<Context>) -> Duration {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let since = LAST.lock().expect("lock").map(|t| t.elapsed());
    if let Some(wait) = since.and_then(|s| MIN_RECONCILE_INTERVAL.checked_sub(s)) {
        tokio::time::sleep(wait + Duration::from_millis(1)).await;
    }
    let t = Instant::now();
    *LAST.lock().expect("lock") = Some(t);
    controller::reconcile(gd.clone(), ctx.clone())
        .await
        .expect("reconcile");
    t.elapsed()
}

// ----- 3. memory ---------------------------------------------------------------------------

/// Waits until live heap stops moving (background tasks done), returns it.
async fn settled_live() -> isize {
    let mut last = live();
    let mut stable = 0;
    while stable < 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = live();
        if (now - last).abs() < 64 * 1024 {
            stable += 1;
        } else {
            stable = 0;
        }
        last = now;
    }
    last
}

async fn bench_memory(c: &Cluster, n: usize) {
    println!("== memory: {n} pods cached");
    let kib = |b: isize| b as f64 / 1024.0;
    let before = settled_live().await;
    let client = c.server.client_as("memory");
    let (caches, tasks) = stores(&client).await;
    let filled = settled_live().await;
    println!(
        "reflector caches (pods, revisions, hook runs): {:.1} MiB live heap, {:.2} KiB per pod",
        kib(filled - before) / 1024.0,
        kib(filled - before) / n as f64
    );
    for t in tasks {
        t.abort();
    }
    drop(caches);
    let dropped = settled_live().await;
    println!(
        "  freed when the caches are dropped: {:.1} MiB",
        kib(filled - dropped) / 1024.0
    );
    let before = settled_live().await;
    let op = Handle::start(
        c.server.client_as("operator"),
        Arc::new(SystemClock),
        Options {
            seed: 1,
            instance: "bench".into(),
            concurrency: 4,
            ..Default::default()
        },
    );
    let running = settled_live().await;
    println!(
        "whole operator (caches, controller queues, clients): {:.1} MiB live heap, {:.2} KiB per pod",
        kib(running - before) / 1024.0,
        kib(running - before) / n as f64
    );
    op.shutdown().await;
    let stopped = settled_live().await;
    println!("  left after shutdown: {:.1} KiB", kib(stopped - before));
}

// ----- 4. rollout --------------------------------------------------------------------------

fn bench_rollout(n: usize) {
    let max_unavailable = (n / 10).max(1);
    let (grace, restart, ready) = (30u64, 1u64, 1u64);
    let at = 120u64;
    println!(
        "== rollout: in-place image change of {n} pods, maxUnavailable {max_unavailable}, grace {grace}s, kubelet start {restart}s + ready {ready}s"
    );
    let text = format!(
        r#"
name: bench rollout of {n} pods
kubelet: {{startSeconds: {restart}, readySeconds: {ready}}}
apply:
  - apiVersion: tkex.tencent.com/v1alpha1
    kind: GameDeployment
    metadata: {{name: bench, namespace: default}}
    spec:
      replicas: {n}
      selector: {{matchLabels: {{app: bench}}}}
      template:
        metadata: {{labels: {{app: bench}}}}
        spec:
          containers: [{{name: python, image: "python:3.9"}}]
      updateStrategy:
        type: InplaceUpdate
        maxUnavailable: {max_unavailable}
        inPlaceUpdateStrategy: {{gracePeriodSeconds: {grace}}}
steps:
  - at: {at}s
    patch:
      kind: GameDeployment
      name: bench
      type: json
      patch: [{{op: replace, path: /spec/template/spec/containers/0/image, value: "python:latest"}}]
until: {{settled: true, timeout: 3h}}
"#
    );
    let s =
        scenario::parse(&text, std::path::Path::new("benches/controller.rs")).expect("scenario");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let t = Instant::now();
    let report = rt.block_on(runner::run(&s, &mut |_| {})).expect("run");
    let real = t.elapsed();
    assert!(report.settled, "the rollout settled");
    // The rollout starts at the patch; the pods were all ready well before it.
    let before_patch = report
        .history
        .iter()
        .filter(|h| h.t < at as f64)
        .map(|h| h.t)
        .fold(0.0, f64::max);
    let first_touch = report
        .history
        .iter()
        .filter(|h| h.t >= at as f64 && h.client == "operator")
        .map(|h| h.t)
        .fold(f64::INFINITY, f64::min);
    let last_change = report.history.iter().map(|h| h.t).fold(0.0, f64::max);
    let virtual_s = report.virtual_seconds - at as f64;
    let ideal = n.div_ceil(max_unavailable) as u64 * (grace + restart + ready);
    let restarted = report
        .pods
        .iter()
        .filter(|p| p.containers.iter().any(|c| c.restart_count == 1))
        .count();
    assert_eq!(restarted, n, "every pod restarted once, in place");
    println!("scale-up to {n} pods settled by t={before_patch:.1}s; image patched at t={at}s");
    println!(
        "virtual seconds to settle           {virtual_s:>8.1} s (last pod change {:.1} s after the patch; first operator write {:.1} s after)",
        last_change - at as f64,
        first_touch - at as f64
    );
    println!(
        "ideal ceil({n}/{max_unavailable}) x ({grace}+{restart}+{ready})     {ideal:>8} s  -> ratio {:.3}",
        virtual_s / ideal as f64
    );
    println!(
        "real seconds                        {:>8.1} s for the whole run (scale-up included)",
        real.as_secs_f64()
    );
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for r in report
        .api_requests
        .iter()
        .filter(|r| r.client == "operator")
    {
        if !matches!(r.verb.as_str(), "get" | "list" | "watch") {
            let key = if r.subresource.is_empty() {
                format!("{} {}", r.verb, r.resource)
            } else {
                format!("{} {}/{}", r.verb, r.resource, r.subresource)
            };
            *by.entry(key).or_default() += r.count;
        }
    }
    let event_creates = by.get("create events").copied().unwrap_or(0);
    // Only the operator records events here (the simulated kubelet records none).
    let operator_events = report.events.len();
    println!(
        "operator events                     {operator_events:>8} stored, {event_creates} create requests"
    );
    println!(
        "operator API writes (whole run)     {:>8} ({})",
        report.operator_writes,
        by.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn main() {
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
    let n = env_usize("BENCH_PODS", 10_000);
    if wants("plan") {
        bench_plan(n);
    }
    if wants("reconcile") || wants("memory") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let c = cluster(n).await;
            if wants("memory") {
                bench_memory(&c, n).await;
            }
            if wants("reconcile") {
                bench_reconcile(&c, n).await;
            }
        });
    }
    if wants("rollout") {
        bench_rollout(env_usize("BENCH_ROLLOUT_PODS", 1000));
    }
    if wants("latency") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(bench_latency(env_usize("BENCH_LATENCY_PODS", 1000)));
    }
}

/// What the latency part saw of one pod in one watch event.
struct Seen {
    at: Instant,
    name: String,
    image: String,
    ready: bool,
    in_place_ready: Option<bool>,
}

impl Seen {
    fn of(pod: &Pod, at: Instant) -> Seen {
        let condition = |t: &str| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == t))
                .map(|c| c.status == "True")
        };
        Seen {
            at,
            name: pod.metadata.name.clone().unwrap_or_default(),
            image: (pod.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            ready: condition("Ready").unwrap_or(false),
            in_place_ready: condition(names::CONDITION_INPLACE_READY),
        }
    }
}

/// Ready of one updated pod → `InPlaceUpdateReady=False` of the next, in real time. Every
/// Ready of an updated pod frees one unit of the maxUnavailable budget, and the operator spends
/// it on the next pod, so the k-th such Ready is paired with the (budget + k)-th unready write
/// (budget: the writes made before any updated pod was Ready). Both are timed as one watch of
/// this process receives them, so the watch's own delay cancels out.
async fn bench_latency(n: usize) {
    use simulated_kubelet::config::KubeletConfig;
    let budget = (n / 10).max(1);
    println!(
        "== latency: real time, {n} pods, maxUnavailable {budget}, grace 5s, kubelet start 1s + ready 1s"
    );
    let clock: SharedClock = Arc::new(SystemClock);
    let (server, admin) = server_with_crds(clock.clone()).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let operator = tokio::spawn(controller::run(
        server.client_as("operator"),
        clock.clone(),
        Options {
            seed: 1,
            instance: "bench".into(),
            ..Default::default()
        },
        stop(),
    ));
    let kubelet_config = KubeletConfig {
        start_seconds: 1,
        ready_seconds: 1,
        ..KubeletConfig::default()
    };
    let (_config, rx) = tokio::sync::watch::channel(kubelet_config);
    let kubelet = tokio::spawn(simulated_kubelet::node::run(
        server.client_as("kubelet"),
        simulated_kubelet::NodeConfig::default(),
        clock.clone(),
        rx,
        simulated_kubelet::NodeRuntime::default(),
        stop(),
    ));
    let mut gd = game_deployment(n);
    if let Some(u) = gd.spec.update_strategy.as_mut() {
        u.max_unavailable = Some(IntOrString::Int(budget as i32));
        u.in_place_update_strategy = Some(InPlaceUpdateStrategy {
            grace_period_seconds: Some(5),
            ..Default::default()
        });
    }
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    gds.create(&PostParams::default(), &gd).await.expect("gd");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let t = Instant::now();
    let rv = loop {
        let list = pods.list(&Default::default()).await.expect("list");
        let ready = list.items.iter().filter(|p| Seen::of(p, t).ready).count();
        if ready == n {
            break list.metadata.resource_version.expect("resourceVersion");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "setup: {n} pods created by the operator and ready in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let new_image = "python:latest";
    let mut watch = pods
        .watch(&kube::api::WatchParams::default().timeout(290), &rv)
        .await
        .expect("watch")
        .boxed();
    gds.patch(
        gd.metadata.name.as_deref().expect("name"),
        &PatchParams::default(),
        &Patch::<()>::Json(
            serde_json::from_value(json!([{"op": "replace",
                "path": "/spec/template/spec/containers/0/image", "value": new_image}]))
            .expect("patch"),
        ),
    )
    .await
    .expect("image patch");
    let patched = Instant::now();
    let mut last: BTreeMap<String, Seen> = BTreeMap::new();
    let (mut readies, mut unreadies) = (Vec::new(), Vec::new());
    let mut done = std::collections::BTreeSet::new();
    while done.len() < n {
        let Some(event) = watch.next().await else {
            panic!("the watch ended after {} of {n} pods", done.len());
        };
        let kube::api::WatchEvent::Modified(pod) = event.expect("watch event") else {
            continue;
        };
        let seen = Seen::of(&pod, Instant::now());
        let before = last.get(&seen.name);
        let updated = seen.image == new_image;
        if seen.in_place_ready == Some(false)
            && before.is_none_or(|b| b.in_place_ready != Some(false))
        {
            unreadies.push(seen.at);
        }
        if updated && seen.ready && before.is_none_or(|b| !b.ready || b.image != new_image) {
            readies.push(seen.at);
            done.insert(seen.name.clone());
        }
        last.insert(seen.name.clone(), seen);
    }
    println!(
        "rollout: {n} pods updated and ready {:.1} s after the image patch ({} unready writes seen)",
        patched.elapsed().as_secs_f64(),
        unreadies.len()
    );
    let first_ready = readies.first().copied().expect("a ready");
    let head = unreadies.iter().filter(|u| **u < first_ready).count();
    let mut latencies: Vec<f64> = readies
        .iter()
        .zip(unreadies.iter().skip(head))
        .map(|(r, u)| u.saturating_duration_since(*r).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "Ready -> next pod's unready write   {} pairs (first {head} writes made before any Ready): median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    // How bursty the Readies were: the pairs' latencies are the operator's answer to a burst,
    // so a kubelet that makes pods Ready closer together makes later pairs of a burst wait
    // longer.
    let window = Duration::from_millis(20);
    let burst = (0..readies.len())
        .map(|i| readies[i..].partition_point(|r| *r < readies[i] + window))
        .max()
        .unwrap_or(0);
    println!("Readies: at most {burst} within {} ms", window.as_millis());
    stop_tx.send(true).expect("stop");
    let _ = operator.await;
    let _ = kubelet.await;
}
