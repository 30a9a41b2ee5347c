//! Runs a scenario: the embedded API server, one simulated kubelet node and the real operator
//! on tokio's paused clock, so virtual minutes cost milliseconds. The scenario's steps are
//! applied as a user (client `scenario`) would; the operator can be restarted or crashed after
//! its N-th write; faults are injected on the operator's requests only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use kube::discovery::{ApiCapabilities, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::time::Instant;

use super::feed_view::{FeedView, read_pods};
use super::hooks::ScriptedHooks;
use super::kubectl_table::snapshot;
use super::pod_heads::HistoryHead;
use super::progress::Progress;
use super::report::{
    ApiRequest, EventEntry, GameDeploymentEntry, HistoryEntry, PodEntry, Report, seconds_since,
};
use super::scenario::{Manifest, PatchType, Scenario, StepAction, StepObject};
use super::settle::is_settled;
use embedded_apiserver::{ApiServer, Change, EventType, FaultConfig, ServerOptions};
use gamedeploy_clock::{SharedClock, TokioClock};
use gamedeploy_core::api::{StoredGameDeployment, crds};
use gamedeploy_operator::controller::{Handle, Options};
use gamedeploy_operator::describe;
use simulated_kubelet::{NodeConfig, NodeRuntime};

/// Virtual time zero of every simulation, so reports are reproducible.
pub const EPOCH: &str = "2026-01-01T00:00:00Z";

/// Client name of the operator's requests and writes in reports and histories.
pub const OPERATOR: &str = "operator";
const SCENARIO: &str = "scenario";

/// Something the simulation could not do (as opposed to the operator misbehaving, which the
/// report shows).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{origin}: {message}")]
    Apply { origin: String, message: String },
    /// `steps[index]` as the scenario file numbers them; `what` is the request, e.g.
    /// `patch pods/foo`.
    #[error("steps[{index}] (t={at}): {what}: {message}")]
    Step {
        index: usize,
        at: String,
        what: String,
        message: String,
    },
    #[error("setting up the embedded cluster: {0}")]
    Setup(String),
    /// The cluster outgrew what one simulation runs (a schema-valid `replicas: 2147483647`
    /// would otherwise grow it until memory runs out).
    #[error(
        "the simulation stopped at t={at} with {pods} pods, more than until.maxPods ({max}): \
         lower spec.replicas (or the scale steps) of the scenario's GameDeployments, or raise \
         until.maxPods"
    )]
    TooManyPods { at: String, pods: usize, max: usize },
}

/// Runs `scenario`; `table` receives kubectl-style snapshots as the run goes.
/// Must run on a tokio runtime with paused time (`start_paused`).
pub async fn run(scenario: &Scenario, table: &mut dyn FnMut(String)) -> Result<Report, SimError> {
    run_with_progress(scenario, table, &mut |_| {}).await
}

/// [`run`], also telling `progress` where the run has got to every 500 virtual ms (callers
/// throttle it: see [`super::progress::Throttle`]).
pub async fn run_with_progress(
    scenario: &Scenario,
    table: &mut dyn FnMut(String),
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, SimError> {
    let epoch: Timestamp = EPOCH.parse().map_err(|e| SimError::Setup(format!("{e}")))?;
    let clock: SharedClock = Arc::new(TokioClock::starting_at(epoch));
    let start = Instant::now();
    let seed = scenario.faults.as_ref().map_or(0, |f| f.seed);
    let server = ApiServer::with_options(
        clock.clone(),
        ServerOptions {
            seed,
            ..Default::default()
        },
    );
    let mut changes = server.changes();
    let guard = pod_guard(server.changes(), scenario.until.max_pods);
    let stop_guard = guard.abort_handle();
    let mut outgrowing = futures::FutureExt::fuse(guard);
    let admin = server.client_as(SCENARIO);
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api
            .create(&PostParams::default(), &crd)
            .await
            .map_err(|e| SimError::Setup(format!("installing CRDs: {}", describe(&e))))?;
    }
    let discovery = Discovery::new(admin.clone())
        .run()
        .await
        .map_err(|e| SimError::Setup(format!("discovery: {}", describe(&e))))?;

    // The node.
    let (kubelet_config, kubelet_rx) = watch::channel(scenario.kubelet.clone());
    let (kubelet_stop, kubelet_stopped) = tokio::sync::oneshot::channel::<()>();
    let kubelet = tokio::spawn(simulated_kubelet::node::run(
        server.client_as("kubelet"),
        NodeConfig::default(),
        clock.clone(),
        kubelet_rx,
        NodeRuntime::default(),
        async {
            let _ = kubelet_stopped.await;
        },
    ));

    // Faults apply to the operator only: the scenario and the kubelet stand for the world.
    if let Some(f) = &scenario.faults {
        server.set_faults(Some(FaultConfig {
            seed: f.seed,
            conflict_rate: f.conflict_rate,
            error_rate: f.error_rate,
            latency: f.latency.unwrap_or(Duration::ZERO),
            watch_delay: Duration::ZERO,
            client: Some(OPERATOR.into()),
            writes_only: true,
        }));
    }

    let hooks = Arc::new(ScriptedHooks::new(
        scenario.hooks.clone(),
        server.client_as(OPERATOR),
    ));
    let mut operator = Operator::start(&server, &clock, hooks);

    let mut history = Vec::new();
    let mut observed = FeedView::default();
    // Changes `observed` has taken in and the history not yet.
    let mut pending = VecDeque::new();
    let mut operator_writes = 0u64;
    let mut crash_after: Option<u64> = None;
    for m in &scenario.apply {
        apply(&admin, &discovery, m)
            .await
            .map_err(|f| SimError::Apply {
                origin: f.what,
                message: f.message,
            })?;
    }
    let mut steps = scenario.steps.iter().enumerate().peekable();
    let mut next_drop = scenario.faults.as_ref().and_then(|f| f.drop_watch_every);
    // Snapshots are printed after each step and whenever a rollout makes progress.
    let mut progress_shown: Vec<(i32, i32)> = Vec::new();
    let mut last_shown: Option<Instant> = None;
    let deadline = start + scenario.until.timeout;
    // The instant the loop last looked at the cluster: where the run ended.
    let mut ended;
    let mut outgrown = None;
    let settled = loop {
        // The change feed, in order: history and the operator's write count (a crash after
        // a write restarts the operator mid-way, and what it stores then follows at once).
        loop {
            pull(&mut changes, &mut observed, &mut pending);
            let Some(c) = pending.pop_front() else { break };
            push_history(&c, epoch, &mut history);
            if c.client == OPERATOR {
                operator_writes += 1;
                if crash_after.is_some_and(|n| operator_writes >= n) {
                    crash_after = None;
                    operator.restart(&server, &clock, true).await;
                }
            }
        }
        let now = Instant::now();
        ended = now;
        if let Some((index, step)) = steps.next_if(|(_, s)| start + s.at <= now) {
            match &step.action {
                StepAction::RestartOperator => operator.restart(&server, &clock, false).await,
                StepAction::CrashOperatorAfterWrites(n) => {
                    crash_after = Some(operator_writes + u64::from(*n))
                }
                StepAction::SetImage(images) => {
                    kubelet_config.send_modify(|c| c.set_images(images))
                }
                other => act(&admin, &discovery, other)
                    .await
                    .map_err(|f| SimError::Step {
                        index,
                        at: super::scenario::format_duration(step.at),
                        what: f.what,
                        message: f.message,
                    })?,
            }
            last_shown = Some(Instant::now());
            table(snapshot(
                step.at,
                clock.now(),
                &list_pods(&admin).await,
                &list_gds(&admin).await,
            ));
            continue;
        }
        if let Some(every) = next_drop
            && now >= start + every
        {
            server.drop_watches(Some(OPERATOR));
            next_drop = Some(
                every
                    + scenario
                        .faults
                        .as_ref()
                        .and_then(|f| f.drop_watch_every)
                        .unwrap_or(every),
            );
        }
        let done = steps.peek().is_none();
        // The settle check looks at pods, then at GameDeployments, each after a round trip
        // to the API server: see `sync_point`.
        sync_point::<Pod>(&admin).await;
        pull(&mut changes, &mut observed, &mut pending);
        let (pods_busy, pods) = (observed.pods_busy(), observed.pods());
        sync_point::<StoredGameDeployment>(&admin).await;
        pull(&mut changes, &mut observed, &mut pending);
        if observed.pod_count() > scenario.until.max_pods {
            outgrown = Some(SimError::TooManyPods {
                at: super::scenario::format_duration(now - start),
                pods: observed.pod_count(),
                max: scenario.until.max_pods,
            });
            break false;
        }
        let is_settled = !pods_busy && observed.gds_settled();
        let (updated, replicas) = observed.updated_of_replicas();
        progress(Progress {
            elapsed: now - start,
            updated,
            replicas,
        });
        let shown = observed.progress();
        if shown != progress_shown && (is_settled || shown.iter().any(|(u, r)| u == r)) {
            if last_shown != Some(now) {
                let pods = read_pods(&pods);
                table(snapshot(now - start, clock.now(), &pods, &observed.gds()));
                last_shown = Some(now);
            }
            progress_shown = shown;
        }
        if done && is_settled && scenario.until.settled {
            break true;
        }
        if now >= deadline {
            break done && is_settled;
        }
        // The guard wakes the loop at once when the pods pass `until.maxPods`: within one
        // 500 ms sleep the operator can create thousands.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut outgrowing => {}
        }
    };

    stop_guard.abort();
    if let Some(e) = outgrown {
        operator.stop().await;
        let _ = kubelet_stop.send(());
        let _ = kubelet.await;
        return Err(e);
    }
    let end = clock.now();
    // The state the run settled or gave up in, which is what a reader came to see; once, so
    // not again when the loop's last look already printed it.
    if last_shown != Some(ended) {
        table(snapshot(
            ended - start,
            end,
            &list_pods(&admin).await,
            &list_gds(&admin).await,
        ));
    }
    let restarts = operator.restarts;
    operator.stop().await;
    let _ = kubelet_stop.send(());
    let _ = kubelet.await;
    pull(&mut changes, &mut observed, &mut pending);
    for c in pending {
        push_history(&c, epoch, &mut history);
    }
    let pods = list_pods(&admin).await;
    let gds = list_gds(&admin).await;
    debug_assert_eq!(
        observed.is_settled(),
        is_settled(&pods, &gds),
        "the change feed's view of the cluster is what a list shows"
    );
    let events: Api<CoreEvent> = Api::all(admin.clone());
    let mut events: Vec<EventEntry> = events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|e| EventEntry::from_core_event(epoch, e))
                .collect()
        })
        .unwrap_or_default();
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(Report {
        name: scenario.name.clone(),
        virtual_seconds: seconds_since(epoch, end),
        settled,
        game_deployments: gds.iter().map(GameDeploymentEntry::from_object).collect(),
        pods: pods.iter().map(PodEntry::from_pod).collect(),
        events,
        api_requests: server
            .request_counts()
            .into_iter()
            .map(|r| ApiRequest {
                client: r.client,
                verb: r.verb,
                resource: r.resource,
                subresource: r.subresource,
                count: r.count,
            })
            .collect(),
        history,
        operator_restarts: restarts,
        faults_injected: server.faults_injected(),
        operator_writes,
    })
}

/// The operator under test: one at a time, restarted gracefully or killed as by a crash; each
/// incarnation gets a new seed (fresh pod-name suffixes, as a new process would).
struct Operator {
    handle: Option<Handle>,
    seed: u64,
    restarts: u32,
    /// The scenario's hook endpoints, shared by every incarnation.
    hooks: Arc<ScriptedHooks>,
}

impl Operator {
    fn start(server: &ApiServer, clock: &SharedClock, hooks: Arc<ScriptedHooks>) -> Self {
        let mut op = Operator {
            handle: None,
            seed: 0,
            restarts: 0,
            hooks,
        };
        op.spawn(server, clock);
        op
    }

    fn spawn(&mut self, server: &ApiServer, clock: &SharedClock) {
        self.seed += 1;
        let options = Options {
            seed: self.seed,
            instance: format!("sim-{}", self.seed),
            concurrency: 4,
            measure: Some(self.hooks.clone()),
            ..Default::default()
        };
        self.handle = Some(Handle::start(
            server.client_as(OPERATOR),
            clock.clone(),
            options,
        ));
    }

    async fn restart(&mut self, server: &ApiServer, clock: &SharedClock, crash: bool) {
        if let Some(h) = self.handle.take() {
            if crash {
                h.kill().await
            } else {
                h.shutdown().await;
            }
        }
        self.restarts += 1;
        self.spawn(server, clock);
    }

    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// Resolves once more than `max` pods exist, by the change feed; never otherwise.
fn pod_guard(mut changes: UnboundedReceiver<Change>, max: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pods: usize = 0;
        while let Some(c) = changes.recv().await {
            if c.group.is_empty() && c.resource == "pods" {
                match c.kind {
                    EventType::Added => pods += 1,
                    EventType::Deleted => pods = pods.saturating_sub(1),
                    _ => {}
                }
                if pods > max {
                    return;
                }
            }
        }
        std::future::pending::<()>().await
    })
}

/// Moves what the change feed holds into `observed`, and queues it for the history.
fn pull(
    changes: &mut UnboundedReceiver<Change>,
    observed: &mut FeedView,
    pending: &mut VecDeque<Change>,
) {
    while let Ok(c) = changes.try_recv() {
        observed.apply(&c);
        pending.push_back(c);
    }
}

/// A pod change, as a history entry.
fn push_history(c: &Change, epoch: Timestamp, history: &mut Vec<HistoryEntry>) {
    if c.resource != "pods" {
        return;
    }
    // Read in place, only what the entry records: no copy of the stored object.
    let Ok(pod) = HistoryHead::deserialize(&*c.object).map(HistoryHead::into_pod) else {
        return;
    };
    let t = c
        .time
        .parse::<Timestamp>()
        .map(|t| seconds_since(epoch, t))
        .unwrap_or(0.0);
    history.push(HistoryEntry::from_pod(
        t,
        &c.client,
        &pod,
        matches!(c.kind, EventType::Deleted),
    ));
}

/// One of the settle check's moments: a list of `K` as the check made when it listed every
/// pod and GameDeployment every 500 virtual ms, but selecting nothing. The round trip lets the
/// tasks woken at this instant (operator, kubelet) run before the check looks, as they always
/// did, so runs end at the same virtual time and show the same tables, and the report's
/// request counts stay what they were; what the check reads comes from the change feed
/// ([`FeedView`]), which costs nothing per pod.
async fn sync_point<K>(client: &kube::Client)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let nothing = ListParams::default().labels(NO_OBJECT_HAS_THIS_LABEL);
    let _ = Api::<K>::all(client.clone()).list(&nothing).await;
}

/// A label key no object carries (a selector on its existence matches nothing).
const NO_OBJECT_HAS_THIS_LABEL: &str = "simulate.gamedeploy.dev/sync-point";

async fn list_pods(client: &kube::Client) -> Vec<Pod> {
    Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// GameDeployments as the operator reads them: one it cannot decode is listed as such, not
/// dropped with the whole list.
async fn list_gds(client: &kube::Client) -> Vec<StoredGameDeployment> {
    Api::<StoredGameDeployment>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// The resource serving `kind`, and its scope.
fn resource_for_kind(
    discovery: &Discovery,
    api_version: Option<&str>,
    kind: &str,
) -> Option<Served> {
    if let Some(av) = api_version {
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some((resource, caps)) = discovery.resolve_gvk(&gvk) {
            return Some(Served { resource, caps });
        }
    }
    discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind.eq_ignore_ascii_case(kind))
        .map(|(resource, caps)| Served { resource, caps })
}

/// A kind the cluster serves.
struct Served {
    resource: ApiResource,
    caps: ApiCapabilities,
}

impl Served {
    /// The API for objects of this kind in `namespace` (default: `default`); cluster-scoped
    /// kinds (a CRD, a node) ignore it.
    fn api(&self, client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = &self.resource;
        match (&self.caps.scope, namespace) {
            (Scope::Cluster, _) => Api::all_with(client.clone(), ar),
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), ar),
        }
    }
}

/// A request of the scenario's that failed: what it was (`patch pods/foo`, or an applied
/// object's origin) and why, in the API server's words.
struct Failed {
    what: String,
    message: String,
}

/// Applies one object with server-side apply, as `kubectl apply --server-side` would.
async fn apply(client: &kube::Client, discovery: &Discovery, m: &Manifest) -> Result<(), Failed> {
    let err = |message: String| Failed {
        what: m.origin.clone(),
        message,
    };
    let api_version = m.object.get("apiVersion").and_then(Value::as_str);
    let kind = m.kind();
    let served =
        resource_for_kind(discovery, api_version, kind).ok_or_else(|| err(no_such_kind(kind)))?;
    let name = m
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| err("metadata.name is missing".into()))?;
    let ns = m
        .object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    served
        .api(client, ns)
        .patch(
            name,
            &PatchParams::apply(SCENARIO).force(),
            &Patch::Apply(&m.object),
        )
        .await
        .map(|_| ())
        .map_err(|e| err(describe(&e)))
}

fn no_such_kind(kind: &str) -> String {
    format!("the cluster serves no kind {kind}")
}

/// Executes a user-like step, first resolving its `${pods[N]}` references.
async fn act(
    client: &kube::Client,
    discovery: &Discovery,
    action: &StepAction,
) -> Result<(), Failed> {
    let (verb, target) = match action {
        StepAction::Patch(p) => ("patch", &p.target),
        StepAction::Annotate { target, .. } => ("annotate", target),
        StepAction::Delete(target) => ("delete", target),
        StepAction::Scale { target, .. } => ("scale", target),
        StepAction::Apply(manifests) => {
            for m in manifests {
                apply(client, discovery, m).await?;
            }
            return Ok(());
        }
        StepAction::RestartOperator
        | StepAction::CrashOperatorAfterWrites(_)
        | StepAction::SetImage(_) => {
            return Ok(());
        }
    };
    let resource = resource_for_kind(discovery, None, &target.kind);
    // `patch pods/foo`, as kubectl names it (the kind as written when the cluster has none).
    let what = |name: &str| {
        let kind = resource
            .as_ref()
            .map_or(&target.kind, |s| &s.resource.plural);
        format!("{verb} {kind}/{name}")
    };
    let fail = |message: String| Failed {
        what: what(&target.name),
        message,
    };
    let Some(served) = &resource else {
        return Err(fail(no_such_kind(&target.kind)));
    };
    let expanded;
    let action = match action.pod_namespace() {
        Some(ns) => {
            let mut names: Vec<String> = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| {
                    fail(format!(
                        "listing pods to resolve ${{pods[N]}}: {}",
                        describe(&e)
                    ))
                })?
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name)
                .collect();
            names.sort();
            expanded = action.expand(&names).map_err(|e| fail(e.to_string()))?;
            &expanded
        }
        None => action,
    };
    let api = |t: &StepObject| served.api(client, t.namespace.as_deref());
    let pp = PatchParams::default();
    let (name, result) = match action {
        StepAction::Patch(p) => {
            let patch = match p.r#type {
                PatchType::Json => Patch::Json(
                    serde_json::from_value(p.patch.clone())
                        .map_err(|e| fail(format!("not a JSON patch: {e}")))?,
                ),
                PatchType::Merge => Patch::Merge(p.patch.clone()),
                PatchType::Strategic => Patch::Strategic(p.patch.clone()),
            };
            let name = &p.target.name;
            (
                name,
                api(&p.target).patch(name, &pp, &patch).await.map(drop),
            )
        }
        StepAction::Annotate { target, key, value } => {
            let body = json!({"metadata": {"annotations": {key: value}}});
            let name = &target.name;
            let r = api(target).patch(name, &pp, &Patch::Merge(body)).await;
            (name, r.map(drop))
        }
        StepAction::Delete(target) => {
            let name = &target.name;
            let r = api(target).delete(name, &DeleteParams::default()).await;
            (name, r.map(drop))
        }
        StepAction::Scale { target, replicas } => {
            let body = json!({"spec": {"replicas": replicas}});
            let name = &target.name;
            let r = api(target)
                .patch_scale(name, &pp, &Patch::Merge(body))
                .await;
            (name, r.map(drop))
        }
        // Handled above; expansion keeps the kind of action.
        _ => return Ok(()),
    };
    result.map_err(|e| Failed {
        what: what(name),
        message: describe(&e),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::parse;

    /// How running `steps` (after one pod-free setup) fails, as the user reads it.
    async fn failure(body: &str) -> String {
        let text = format!("name: x\nuntil: {{timeout: 1m}}\n{body}");
        let scenario = parse(&text, Path::new("s.yaml")).unwrap();
        run(&scenario, &mut |_| {}).await.unwrap_err().to_string()
    }

    /// A schema-valid `replicas: 2147483647` grew the cluster until memory ran out; the run
    /// now stops once more pods than `until.maxPods` exist, and says why.
    #[tokio::test(start_paused = true)]
    async fn a_run_past_max_pods_stops_and_says_why() {
        let gd = include_str!("../../../deploy/examples/inplace-update.yaml")
            .replace("replicas: 8", "replicas: 2147483647");
        let gd: Value = serde_saphyr::from_str(&gd).unwrap();
        let text = format!(
            "name: x\nuntil: {{timeout: 10m, maxPods: 40}}\napply: [{}]\n",
            serde_json::to_string(&gd).unwrap()
        );
        let scenario = parse(&text, Path::new("s.yaml")).unwrap();
        let e = run(&scenario, &mut |_| {}).await.unwrap_err();
        let SimError::TooManyPods { pods, max, .. } = &e else {
            panic!("{e}")
        };
        assert!(*pods > 40 && *max == 40, "{e}");
        assert!(e.to_string().contains("lower spec.replicas"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_steps_name_the_step_the_request_and_the_servers_message() {
        let cases = [
            (
                "steps:\n  - at: 5s\n    restartOperator: true\n  - at: 10s\n    patch: {kind: Pod, name: foo, type: merge, patch: {metadata: {labels: {a: b}}}}\n",
                r#"steps[1] (t=10s): patch pods/foo: pods "foo" not found"#,
            ),
            (
                "steps:\n  - at: 1s\n    delete: {kind: GameDeployment, name: nope}\n",
                r#"steps[0] (t=1s): delete gamedeployments/nope: gamedeployments.tkex.tencent.com "nope" not found"#,
            ),
            (
                "steps:\n  - at: 1s\n    annotate: {kind: Pod, name: foo, key: k, value: v}\n",
                r#"steps[0] (t=1s): annotate pods/foo: pods "foo" not found"#,
            ),
            (
                "steps:\n  - at: 1s\n    scale: {kind: Widget, name: w, replicas: 1}\n",
                "steps[0] (t=1s): scale Widget/w: the cluster serves no kind Widget",
            ),
            (
                "steps:\n  - at: 1s\n    delete: {kind: Pod, name: '${pods[3]}'}\n",
                "steps[0] (t=1s): delete pods/${pods[3]}: ${pods[3]} names no pod: only 0 pods exist when the step runs",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(failure(body).await, want, "for {body}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refused_applies_say_what_the_server_said() {
        let e = failure(
            "apply: [{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: 5}}]\n",
        )
        .await;
        assert!(e.starts_with("apply[0] (inline): "), "{e}");
        assert!(!e.contains("Status {") && !e.contains("ApiError"), "{e}");
    }
}
