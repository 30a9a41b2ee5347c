//! The reconcile loop on kube-runtime's `Controller`: GameDeployments are the primary resource;
//! Pods, ControllerRevisions and HookRuns are watched once each through reflectors whose caches
//! the reconcile reads (no GETs of pods), and whose events trigger the owning GameDeployment
//! (for a pod without a controller: every GameDeployment that would adopt it). Node metadata
//! is cached for node deletion costs; node changes trigger nothing.
//! A reconcile requeues exactly when a timer in the plan is due (grace end, deadline,
//! minReadySeconds), never by polling.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::claim;
use super::events::Events;
use crate::execute::{self, Edge, Writes};
use crate::expectations::Expectations;
use crate::hookruns::providers::{Measure, Providers};
use crate::hookruns::templates::TemplateChecks;
use crate::hookruns::{self, HookRunContext};
use crate::leader::Gate;
use crate::metrics::{ErrorKind, GdLabels, Metrics};
use gamedeploy_clock::SharedClock;
use gamedeploy_core::api::{GameDeployment, HookRun, HookTemplate, Lenient, StoredGameDeployment};
use gamedeploy_core::planner::model::{CachedPod, HookRunView, Plan, PlanInput};
use gamedeploy_core::planner::plan;
use gamedeploy_core::planner::rules::adoption::{self as adopt, controlled_by};
use gamedeploy_core::planner::rules::outcome::StatusWrite;
use gamedeploy_core::planner::rules::replicas as scale;

/// How soon a reconcile with a failed write runs again: a conflict usually clears at once,
/// while a failure the user must fix (a missing HookTemplate) should not cost a request a
/// second for ever, so consecutive failures back off, up to [`MAX_RETRY_AFTER_FAILED_WRITE`].
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);
/// The shortest time between the starts of two reconciles of one GameDeployment: the watch
/// events of one burst (a kubelet reporting hundreds of pods at once; every event of one
/// virtual instant in a simulation) are planned together, once, instead of once per event.
/// Short next to a pod's own start-up, so a pod turning Ready still reaches the next pod's
/// update within it.
pub const MIN_RECONCILE_INTERVAL: Duration = Duration::from_millis(10);
/// How long a reconcile waits for the watch to show the operator's own status write before it
/// plans without it (the event normally comes within milliseconds and triggers it sooner).
const STATUS_WATCH_WAIT: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(300);

/// The wait before retry number `attempt` (0-based) of a reconcile whose writes failed.
fn retry_delay(attempt: u32) -> Duration {
    RETRY_AFTER_FAILED_WRITE
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_RETRY_AFTER_FAILED_WRITE)
}

/// The reflector caches a reconcile reads.
pub struct Caches {
    pub pods: Store<CachedPod>,
    pub revisions: Store<ControllerRevision>,
    pub hook_runs: Store<HookRun>,
    pub hook_templates: Store<HookTemplate>,
    pub nodes: Store<PartialObjectMeta<Node>>,
}

/// What one reconcile read from the caches for one GameDeployment (no API requests).
pub struct CachedObjects {
    /// Pods of its namespace, shared with the cache (claiming decides which are its own).
    pub pods: Vec<Arc<CachedPod>>,
    pub revisions: Vec<ControllerRevision>,
    pub hook_runs: BTreeMap<String, HookRunView>,
    /// HookTemplates of its namespace, by name: the planner builds HookRuns from them.
    pub hook_templates: BTreeMap<String, Arc<HookTemplate>>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub clock: SharedClock,
    pub events: Events,
    pods: Store<CachedPod>,
    revisions: Store<ControllerRevision>,
    hook_runs: Store<HookRun>,
    hook_templates: Store<HookTemplate>,
    nodes: Store<PartialObjectMeta<Node>>,
    /// Unparsable node deletion costs already warned about, by (node, value).
    bad_costs: Mutex<BTreeSet<(String, String)>>,
    rng: Mutex<fastrand::Rng>,
    writes: Mutex<Writes>,
    /// Consecutive reconciles with failed writes, by `namespace/name`.
    failing: Mutex<BTreeMap<String, u32>>,
    /// When each GameDeployment's status was last written by this operator, by uid: status
    /// writes that only move counts are coalesced for a second after it.
    status_written: Mutex<HashMap<String, jiff::Timestamp>>,
    /// By GameDeployment uid, the version its last status write replaced, and when: while the
    /// cache still shows that version, a reconcile would decide again from the status before
    /// the write (and repeat its events), so it waits for the watch instead.
    status_over: Mutex<HashMap<String, (String, jiff::Timestamp)>>,
    /// By GameDeployment uid, when its last reconcile started (see [`MIN_RECONCILE_INTERVAL`]).
    last_start: Mutex<HashMap<String, jiff::Timestamp>>,
    /// Pod creates and deletes sent and not yet seen by the pod watch.
    expectations: Arc<Expectations>,
    /// Closed when leadership is lost; every write checks it first.
    gate: Gate,
    metrics: Arc<Metrics>,
}

impl Context {
    /// A context over reflector caches someone else fills: [`run`] uses it, and benchmarks
    /// drive [`reconcile`] through it directly.
    pub fn new(
        client: kube::Client,
        clock: SharedClock,
        caches: Caches,
        seed: u64,
        instance: String,
    ) -> Self {
        Context {
            events: Events::new(client.clone(), clock.clone(), instance),
            client,
            clock,
            pods: caches.pods,
            revisions: caches.revisions,
            hook_runs: caches.hook_runs,
            hook_templates: caches.hook_templates,
            nodes: caches.nodes,
            bad_costs: Mutex::new(BTreeSet::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            writes: Mutex::new(Writes::default()),
            failing: Mutex::new(BTreeMap::new()),
            status_written: Mutex::default(),
            status_over: Mutex::default(),
            last_start: Mutex::default(),
            expectations: Arc::default(),
            gate: Gate::default(),
            metrics: Arc::default(),
        }
    }

    /// The same context, writing only while `gate` is open and reporting to `metrics`.
    pub fn guarded(self, gate: Gate, metrics: Arc<Metrics>) -> Self {
        Context {
            events: self.events.guarded(gate.clone(), metrics.clone()),
            gate,
            metrics,
            ..self
        }
    }

    fn edge(&self) -> Edge<'_> {
        Edge {
            gate: &self.gate,
            metrics: &self.metrics,
        }
    }

    /// Writes made since start, for budgets and reports.
    pub fn writes(&self) -> Writes {
        self.writes.lock().map(|w| *w).unwrap_or_default()
    }

    fn record(&self, writes: Writes) {
        if let Ok(mut total) = self.writes.lock() {
            *total += writes;
        }
    }

    /// Drops what is remembered of a GameDeployment being deleted or gone: called from its
    /// reconcile with a deletion timestamp and from the watch's Delete event (one deleted
    /// without finalizers is never reconciled again).
    fn forget(&self, stored: &StoredGameDeployment) {
        let uid = stored.uid().unwrap_or_default();
        self.expectations.forget(&uid);
        if let Ok(mut m) = self.status_written.lock() {
            m.remove(&uid);
        }
        if let Ok(mut m) = self.status_over.lock() {
            m.remove(&uid);
        }
        if let Ok(mut m) = self.last_start.lock() {
            m.remove(&uid);
        }
        if let Ok(mut m) = self.failing.lock() {
            m.remove(&format!(
                "{}/{}",
                stored.namespace().unwrap_or_default(),
                stored.name_any()
            ));
        }
        self.metrics.forget(&labels_of(stored));
    }

    /// Executes `plan` for `stored` and records its writes; returns them, and when a status
    /// write held back to coalesce it with what follows is due (see
    /// `outcome::status_write`), for the reconcile to come back then.
    async fn execute(
        &self,
        stored: &StoredGameDeployment,
        pods: &[Arc<CachedPod>],
        plan: Plan,
        now: jiff::Timestamp,
    ) -> Result<(Writes, Option<jiff::Timestamp>), super::Error> {
        let uid = stored.uid().unwrap_or_default();
        let last = self
            .status_written
            .lock()
            .ok()
            .and_then(|m| m.get(&uid).copied());
        let (writes, status, over) = execute::run_plan(
            &self.client,
            self.edge(),
            &self.events,
            &self.expectations,
            stored,
            pods,
            plan,
            now,
            last,
        )
        .await?;
        self.record(writes);
        if let (Some(over), Ok(mut m)) = (over, self.status_over.lock()) {
            m.insert(uid.clone(), (over, now));
        }
        Ok((
            writes,
            match status {
                StatusWrite::Now => {
                    if let Ok(mut m) = self.status_written.lock() {
                        m.insert(uid, now);
                    }
                    None
                }
                StatusWrite::At(t) => Some(t),
                StatusWrite::Unchanged => None,
            },
        ))
    }

    /// When `uid` may be reconciled, if not yet (its last reconcile started less than
    /// [`MIN_RECONCILE_INTERVAL`] ago); otherwise records `now` as its start.
    fn too_soon(&self, uid: &str, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let mut m = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        let interval = jiff::SignedDuration::try_from(MIN_RECONCILE_INTERVAL).unwrap_or_default();
        let due = m.get(uid).and_then(|t| t.checked_add(interval).ok());
        match due {
            Some(due) if now < due => Some(due),
            _ => {
                m.insert(uid.to_string(), now);
                None
            }
        }
    }

    /// Whether the cache still shows the version `uid`'s last status write replaced, less than
    /// [`STATUS_WATCH_WAIT`] after the write; once it shows another, or the wait is over, that
    /// write is forgotten.
    fn status_unseen(&self, uid: &str, cached: Option<&str>, now: jiff::Timestamp) -> bool {
        let mut m = self.status_over.lock().unwrap_or_else(|e| e.into_inner());
        let wait = jiff::SignedDuration::try_from(STATUS_WATCH_WAIT).unwrap_or_default();
        match m.get(uid) {
            Some((over, at))
                if Some(over.as_str()) == cached
                    && at.checked_add(wait).is_ok_and(|due| now < due) =>
            {
                true
            }
            Some(_) => {
                m.remove(uid);
                false
            }
            None => false,
        }
    }

    /// Node deletion costs from the node cache; a value that is not an integer is ignored,
    /// with one warning per node and value.
    fn node_costs(&self) -> BTreeMap<String, i64> {
        let mut costs = BTreeMap::new();
        for node in self.nodes.state() {
            let name = node.name_any();
            match scale::node_cost(node.metadata.annotations.as_ref()) {
                Ok(Some(cost)) => {
                    costs.insert(name, cost);
                }
                Ok(None) => {}
                Err(e) => {
                    let new = self
                        .bad_costs
                        .lock()
                        .is_ok_and(|mut seen| seen.insert((name.clone(), e.value.clone())));
                    if new {
                        tracing::warn!(node = %name, "{e}; the node counts as having no cost");
                    }
                }
            }
        }
        costs
    }

    fn suffix(&self) -> String {
        // Pod-name suffixes in the alphabet Kubernetes uses for generated names.
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..5)
            .map(|_| ALPHABET[rng.usize(..ALPHABET.len())] as char)
            .collect()
    }
}

/// What the caches keep of an object: everything but `managedFields`, which the operator
/// never reads. Pods are cached as [`CachedPod`]s, which keep far less.
pub fn for_cache<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// The GameDeployments a pod event concerns: its owners, or, for a pod without a controller,
/// every GameDeployment that would adopt it.
fn pod_triggers(
    gds: &Store<StoredGameDeployment>,
    pod: &CachedPod,
) -> Vec<ObjectRef<StoredGameDeployment>> {
    let ns = pod.namespace();
    let mut refs: Vec<ObjectRef<StoredGameDeployment>> = pod
        .owner_references()
        .iter()
        .filter_map(|o| ObjectRef::from_owner_ref(ns.as_deref(), o, ()))
        .collect();
    if adopt::controller_of(pod).is_none() {
        refs.extend(
            gds.state()
                .iter()
                .filter(|stored| {
                    stored
                        .decoded()
                        .is_some_and(|gd| adopt::wants_orphan(gd, pod))
                })
                .map(|stored| ObjectRef::from_obj(stored.as_ref())),
        );
    }
    refs
}

/// The claim's pods as plain references, for the IO edge.
fn as_pods<'a>(pods: &[&'a Arc<CachedPod>]) -> Vec<&'a CachedPod> {
    pods.iter().map(|p| -> &'a CachedPod { p }).collect()
}

/// One reconcile: observe from the caches, claim pods, plan, act. An object whose spec does
/// not decode is reported (condition and event) and nothing else is touched. Timed and
/// counted in the metrics. The caches must be full: [`run`] starts no reconcile before they
/// are.
pub async fn reconcile(
    stored: Arc<StoredGameDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, super::Error> {
    // Real time even in simulations: this measures the operator's cost, not the cluster's.
    let started = std::time::Instant::now();
    let result = reconcile_once(stored, &ctx).await;
    let error = match &result {
        Ok((_, false)) => None,
        Ok((_, true)) => Some(ErrorKind::WriteFailed),
        Err(super::Error::Status { .. }) => Some(ErrorKind::StatusWrite),
        Err(super::Error::NotLeader) => Some(ErrorKind::NotLeader),
        Err(super::Error::Unnamed) => Some(ErrorKind::Internal),
    };
    ctx.metrics.reconciled(started.elapsed(), error);
    result.map(|(action, _)| action)
}

/// [`reconcile`]'s work; the flag says whether a write failed.
async fn reconcile_once(
    stored: Arc<StoredGameDeployment>,
    ctx: &Arc<Context>,
) -> Result<(Action, bool), super::Error> {
    if stored.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the pods.
        ctx.forget(&stored);
        return Ok((Action::await_change(), false));
    }
    match stored.as_ref() {
        StoredGameDeployment::Decoded(gd) => reconcile_decoded(gd.clone(), &stored, ctx).await,
        StoredGameDeployment::Undecodable(u) => {
            tracing::warn!(gamedeployment = %stored.name_any(), reason = %u.reason, "cannot decode the spec");
            let uid = stored.uid().unwrap_or_default();
            let ns = stored.namespace();
            let owned: Vec<Arc<CachedPod>> = ctx
                .pods
                .state()
                .into_iter()
                .filter(|p| p.meta().namespace == ns && controlled_by(p.as_ref(), &uid))
                .collect();
            let now = ctx.clock.now();
            let plan = plan::plan_undecodable(u, &owned, now);
            let (writes, status_due) = ctx.execute(&stored, &owned, plan, now).await?;
            // A new spec is a new object in the watch: nothing to do until then, but for a
            // status write held back.
            let action = match status_due {
                Some(t) => Action::requeue(until(now, t)),
                None => Action::await_change(),
            };
            Ok((action, writes.failed > 0))
        }
    }
}

/// The reconcile of a GameDeployment whose spec decoded.
async fn reconcile_decoded(
    gd: Arc<GameDeployment>,
    stored: &StoredGameDeployment,
    ctx: &Context,
) -> Result<(Action, bool), super::Error> {
    let uid = gd.uid().unwrap_or_default();
    let ns = gd.namespace().unwrap_or_default();
    let now = ctx.clock.now();
    if let Some(due) = ctx.too_soon(&uid, now) {
        return Ok((Action::requeue(until(now, due)), false));
    }
    let CachedObjects {
        pods: in_namespace,
        revisions,
        hook_runs,
        hook_templates,
    } = observe(&gd, ctx);
    // The whole reconcile waits, not only its creates and deletes: a plan made from a pod set
    // that lacks the operator's own writes is wrong beyond its counts (status would go
    // backwards, maxUnavailable and preDelete victims would be chosen from a set about to
    // change). The wait is the watch's lag: the event that satisfies the last expectation
    // triggers the next reconcile, and the timeout bounds it if that event is lost.
    if let Some(expires) = ctx.expectations.unsatisfied(&uid, &in_namespace, now) {
        tracing::debug!(gamedeployment = %gd.name_any(), "waiting for the pod watch to show our writes");
        return Ok((Action::requeue(until(now, expires)), false));
    }
    if ctx.status_unseen(&uid, gd.metadata.resource_version.as_deref(), now) {
        // The watch event of our own status write triggers the next reconcile; the wait only
        // bounds a lost event.
        tracing::debug!(gamedeployment = %gd.name_any(), "waiting for the watch to show our status write");
        return Ok((Action::requeue(STATUS_WATCH_WAIT), false));
    }
    // The cache's own Arcs: copying 10,000 pods took longer than planning them.
    let pods: Vec<Arc<CachedPod>> = match adopt::claim(&gd, &in_namespace) {
        Ok(claim) => {
            let claimed = claim::execute(
                &ctx.client,
                &ctx.edge(),
                &ctx.events,
                &gd,
                &as_pods(&claim.adopt),
                &as_pods(&claim.release),
            )
            .await;
            ctx.record(claimed.writes);
            if claimed.writes.failed > 0 {
                // Planning without a pod we failed to adopt would create its replacement.
                return Ok((Action::requeue(RETRY_AFTER_FAILED_WRITE), true));
            }
            claim
                .owned
                .into_iter()
                .cloned()
                .chain(claimed.adopted.into_iter().map(|p| Arc::new(p.into())))
                .collect()
        }
        Err(e) => {
            // The plan refuses this spec and says why; meanwhile no pod changes hands.
            tracing::debug!(gamedeployment = %gd.name_any(), error = %e, "not claiming pods");
            in_namespace
                .into_iter()
                .filter(|p| controlled_by(p.as_ref(), &uid))
                .collect()
        }
    };
    let node_costs = ctx.node_costs();
    let world = PlanInput {
        gd: &gd,
        pods: &pods,
        revisions: &revisions,
        hook_runs: &hook_runs,
        hook_templates: &hook_templates,
        node_costs: &node_costs,
        now,
    };
    let plan = plan::plan(&world, &mut || ctx.suffix());
    let requeue_at = plan.requeue_at;
    let status = plan.status().cloned();
    let labels = labels_of(stored);
    ctx.metrics.machines(&labels, &machine_counts(&pods));
    let (writes, status_due) = ctx.execute(stored, &pods, plan, now).await?;
    if let Some(status) = &status {
        let desired = gd.spec.replicas.unwrap_or_default();
        ctx.metrics.status(&labels, desired, status);
    }
    let key = format!("{ns}/{}", gd.name_any());
    let mut failing = ctx.failing.lock().unwrap_or_else(|e| e.into_inner());
    if writes.failed > 0 {
        // A refused write changes nothing the watches would report: retry on our own.
        let attempt = failing.entry(key).or_default();
        let wait = retry_delay(*attempt);
        *attempt = attempt.saturating_add(1);
        return Ok((Action::requeue(wait), true));
    }
    failing.remove(&key);
    drop(failing);
    let action = match requeue_at.into_iter().chain(status_due).min() {
        Some(t) => Action::requeue(until(now, t)),
        None => Action::await_change(),
    };
    Ok((action, false))
}

/// A GameDeployment's metric labels.
fn labels_of(stored: &StoredGameDeployment) -> GdLabels {
    GdLabels {
        namespace: stored.namespace().unwrap_or_default(),
        name: stored.name_any(),
    }
}

/// How many of `pods` are in each in-place state, from their decoded state annotations (a pod
/// without one has never been updated in place and is not counted).
fn machine_counts(pods: &[Arc<CachedPod>]) -> BTreeMap<gamedeploy_core::inplace::State, i64> {
    use gamedeploy_core::inplace::{Decoded, State};
    let mut counts = BTreeMap::new();
    for pod in pods {
        let state = match pod.decoded() {
            Decoded::Missing => continue,
            Decoded::Valid(r) => r.state,
            Decoded::Unsupported { .. } | Decoded::Corrupt { .. } => State::Unknown,
        };
        *counts.entry(state).or_default() += 1;
    }
    counts
}

/// The wait from `now` to `t` (none if `t` is past).
fn until(now: jiff::Timestamp, t: jiff::Timestamp) -> Duration {
    let wait = t.duration_since(now).max(jiff::SignedDuration::ZERO);
    Duration::try_from(wait).unwrap_or(Duration::from_secs(1))
}

/// Reads one GameDeployment's namespace pods, revisions, HookRuns and HookTemplates from the
/// caches.
pub fn observe(gd: &GameDeployment, ctx: &Context) -> CachedObjects {
    let uid = gd.uid().unwrap_or_default();
    let ns = gd.namespace();
    CachedObjects {
        pods: ctx
            .pods
            .state()
            .into_iter()
            .filter(|p| p.meta().namespace == ns)
            .collect(),
        revisions: ctx
            .revisions
            .state()
            .iter()
            .filter(|r| controlled_by(r.as_ref(), &uid))
            .map(|r| r.as_ref().clone())
            .collect(),
        hook_runs: ctx
            .hook_runs
            .state()
            .iter()
            .filter(|h| controlled_by(h.as_ref(), &uid))
            .map(|h| (h.name_any(), HookRunView::from_hook_run(h)))
            .collect(),
        hook_templates: ctx
            .hook_templates
            .state()
            .into_iter()
            .filter(|t| t.metadata.namespace == ns)
            .map(|t| (t.name_any(), t))
            .collect(),
    }
}

/// Retry a failed reconcile soon; the error is logged with the object's name.
pub fn error_policy(
    gd: Arc<StoredGameDeployment>,
    error: &super::Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(gamedeployment = %gd.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Options for [`run`].
#[derive(Clone)]
pub struct Options {
    /// Seed for pod-name suffixes (a fixed seed replays the same names).
    pub seed: u64,
    /// `reportingInstance` of events.
    pub instance: String,
    /// GameDeployments reconciled at once.
    pub concurrency: u16,
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Where the controller reports; shared with the metrics endpoint.
    pub metrics: Arc<Metrics>,
    /// The leadership gate (open when there is no leader election).
    pub gate: Gate,
    /// Who takes HookRun measurements: the live providers when `None`; simulations script them.
    pub measure: Option<Arc<dyn Measure>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            instance: "gamedeploy".into(),
            concurrency: 4,
            namespace: None,
            metrics: Arc::default(),
            gate: Gate::default(),
            measure: None,
        }
    }
}

/// An `Api` over one namespace, or over all.
fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch of `K` read leniently ([`Lenient`]): `managedFields` are skipped without recursion,
/// and an object that still does not decode is logged and left out, so one stored object can
/// fail neither its list nor the cache of every other object of its kind.
pub fn lenient_watcher<K>(
    api: Api<Lenient<K>>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + 'static,
{
    watcher(api, config).filter_map(|event| {
        std::future::ready(match event {
            Ok(e) => decoded_event(e).map(Ok),
            Err(e) => Some(Err(e)),
        })
    })
}

/// The event with its object decoded; `None` (logged) for an object that did not decode.
fn decoded_event<K: Resource<DynamicType = ()>>(
    event: watcher::Event<Lenient<K>>,
) -> Option<watcher::Event<K>> {
    use watcher::Event as E;
    let decoded = |object: Lenient<K>| match object.into_result() {
        Ok(k) => Some(k),
        Err(u) => {
            tracing::warn!(
                kind = %K::kind(&()),
                namespace = u.metadata.namespace.as_deref().unwrap_or_default(),
                name = u.metadata.name.as_deref().unwrap_or_default(),
                reason = %u.reason,
                "an object cannot be read and is left out of the cache"
            );
            None
        }
    };
    Some(match event {
        E::Apply(o) => E::Apply(decoded(o)?),
        E::InitApply(o) => E::InitApply(decoded(o)?),
        E::Delete(o) => E::Delete(decoded(o)?),
        E::Init => E::Init,
        E::InitDone => E::InitDone,
    })
}

/// Runs the operator until `shutdown` resolves; returns the context (write counts).
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Context> {
    let shutdown = shutdown.boxed().shared();
    // Set once the GameDeployments are listed, which is after every other cache.
    let listed = Arc::new(AtomicBool::new(false));
    let cfg = watcher::Config::default();
    let ns = options.namespace.as_deref();
    let (pods, pod_writer) = reflector::store();
    let pod_stream = reflector::reflector(
        pod_writer,
        // Each pod is projected (view and record derived) as it arrives: see `CachedPod`.
        watcher(api::<CachedPod>(&client, ns), cfg.clone()),
    )
    .default_backoff()
    .touched_objects();
    let (revisions, rev_writer) = reflector::store();
    let rev_stream = reflector::reflector(
        rev_writer,
        lenient_watcher(api::<Lenient<ControllerRevision>>(&client, ns), cfg.clone())
            .modify(for_cache),
    )
    .default_backoff()
    .touched_objects();
    let (hook_runs, hook_writer) = reflector::store();
    let hook_stream = reflector::reflector(
        hook_writer,
        lenient_watcher(api::<Lenient<HookRun>>(&client, ns), cfg.clone()).modify(for_cache),
    )
    .default_backoff()
    .touched_objects();
    // HookTemplates are read, not watched for: a reconcile waiting on a missing one retries.
    let (hook_templates, template_writer) = reflector::store();
    let template_stream = reflector::reflector(
        template_writer,
        lenient_watcher(api::<Lenient<HookTemplate>>(&client, ns), cfg.clone()).modify(for_cache),
    )
    .default_backoff();
    let (nodes, node_writer) = reflector::store();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(
            Api::<PartialObjectMeta<Node>>::all(client.clone()),
            cfg.clone(),
        ),
    )
    .default_backoff();
    // A reconcile before the first full list of pods would see none and create them all again
    // (one before the node list would scale down ignoring node costs). kube-runtime's
    // `wait_until_ready` wakes only the last future that waited on a store, so a reconcile
    // waiting beside a readiness check could sleep for ever (a new leader with many pods did).
    // Hence exactly one future waits for these caches: it holds the GameDeployment watch back
    // until they are full, and the Controller, which waits for its own store, reconciles
    // nothing before then.
    let caches_synced = {
        let stores = (
            pods.clone(),
            revisions.clone(),
            hook_runs.clone(),
            hook_templates.clone(),
            nodes.clone(),
        );
        async move {
            let (p, r, h, t, n) = stores;
            let _ = futures::join!(
                p.wait_until_ready(),
                r.wait_until_ready(),
                h.wait_until_ready(),
                t.wait_until_ready(),
                n.wait_until_ready(),
            );
        }
    };
    let metrics = options.metrics.clone();
    let instance = options.instance.clone();
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            clock,
            Caches {
                pods,
                revisions,
                hook_runs,
                hook_templates,
                nodes,
            },
            options.seed,
            options.instance,
        )
        .guarded(options.gate.clone(), metrics.clone()),
    );
    let hook_ctx = Arc::new(HookRunContext::new(
        client.clone(),
        ctx.clock.clone(),
        options
            .measure
            .clone()
            .unwrap_or_else(|| Arc::new(Providers::new(client.clone()))),
        &instance,
        options.gate.clone(),
        metrics.clone(),
    ));
    // Measurements are not checkpoints: when the GameDeployment controller has stopped, a
    // measurement still in flight is dropped and taken again by the next operator.
    let hook_controller = {
        let hook_runs = hookruns::run(
            api::<Lenient<HookRun>>(&client, ns),
            hook_ctx,
            shutdown.clone(),
        );
        async move {
            hook_runs.await;
            std::future::pending::<()>().await
        }
    };
    let config = kube::runtime::controller::Config::default().concurrency(options.concurrency);
    // The GameDeployment watch is ours, not the Controller's, to see deletions: their series
    // leave the metrics with them, and what the context remembers of them is dropped.
    let (gds, gd_writer) = reflector::store::<StoredGameDeployment>();
    let gd_stream = {
        let (gds, metrics, listed) = (gds.clone(), metrics.clone(), listed.clone());
        let forget_ctx = ctx.clone();
        let gd_stream = reflector::reflector(
            gd_writer,
            watcher(api::<StoredGameDeployment>(&client, ns), cfg.clone()),
        )
        .inspect(move |event| match event {
            Ok(watcher::Event::Delete(gd)) => forget_ctx.forget(gd),
            // Every cache is full once the GameDeployments are listed. A relist may have
            // missed deletions.
            Ok(watcher::Event::InitDone) => {
                listed.store(true, Ordering::SeqCst);
                metrics.set_synced(true);
                let live: BTreeSet<GdLabels> = gds.state().iter().map(|gd| labels_of(gd)).collect();
                for gone in metrics.known().into_iter().filter(|k| !live.contains(k)) {
                    metrics.forget(&gone);
                }
            }
            _ => {}
        })
        .applied_objects();
        futures::stream::once(async move {
            caches_synced.await;
            gd_stream
        })
        .flatten()
    };
    let controller = Controller::for_stream(gd_stream, gds.clone());
    let expectations = ctx.expectations.clone();
    let reconciles = controller
        .with_config(config)
        .watches_stream(pod_stream, move |pod| {
            expectations.observe(&pod);
            pod_triggers(&gds, &pod)
        })
        .owns_stream(rev_stream)
        .owns_stream(hook_stream)
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(gamedeployment = %obj.name, "reconciled"),
                // A failing watch is a lost or refusing cluster: say so (watches back off).
                Err(kube::runtime::controller::Error::QueueError(e)) => {
                    tracing::warn!(
                        "watching the cluster failed: {}; retrying",
                        super::describe(&e)
                    )
                }
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        });
    // The node and HookTemplate caches are kept up to date for as long as the controller runs;
    // each HookTemplate is checked as it is applied.
    let (template_ctx, template_checks) = (ctx.clone(), Arc::new(TemplateChecks::default()));
    let node_cache = async {
        futures::join!(
            node_stream.for_each(|_| futures::future::ready(())),
            template_stream.for_each(|event| {
                let (ctx, checks) = (template_ctx.clone(), template_checks.clone());
                async move {
                    match event {
                        Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => {
                            checks.check(&t, &ctx.events).await
                        }
                        Ok(watcher::Event::Delete(t)) => checks.forget(&t),
                        _ => {}
                    }
                }
            }),
        );
        std::future::pending::<()>().await
    };
    // kube-runtime's graceful shutdown first waits for its store to be ready, which after the
    // stop it never becomes (its watch is no longer polled). Stopped before the first lists,
    // nothing is in flight: stop at once.
    let stopped_unsynced = async {
        shutdown.clone().await;
        if listed.load(Ordering::SeqCst) {
            std::future::pending::<()>().await
        }
    };
    tokio::select! {
        () = reconciles => {}
        () = node_cache => {}
        () = hook_controller => {}
        () = stopped_unsynced => {}
    }
    metrics.set_synced(false);
    ctx
}

/// A running operator that can be stopped gracefully, or killed as by a crash, and replaced
/// by a fresh one with empty caches (simulations and tests); `shutdown` returns its context.
pub type Handle = crate::handle::Handle<Arc<Context>>;

impl Handle {
    /// Starts an operator on its own task.
    pub fn start(client: kube::Client, clock: SharedClock, options: Options) -> Self {
        Self::spawn(|stopped| run(client, clock, options, stopped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use serde_json::Value;

    /// Why exactly one future waits for each cache in [`run`]. If kube-runtime starts waking
    /// every waiter, this fails, and a reconcile may wait for the caches again.
    #[test]
    fn a_kube_runtime_store_wakes_only_the_last_future_waiting_for_it() {
        use futures::task::{ArcWake, waker};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::Context as TaskContext;

        #[derive(Default)]
        struct Woken(AtomicBool);
        impl ArcWake for Woken {
            fn wake_by_ref(me: &Arc<Self>) {
                me.0.store(true, Ordering::SeqCst);
            }
        }
        let (store, mut writer) = reflector::store::<k8s_openapi::api::core::v1::ConfigMap>();
        let (first, second) = (Arc::new(Woken::default()), Arc::new(Woken::default()));
        let mut a = Box::pin(store.wait_until_ready());
        let mut b = Box::pin(store.wait_until_ready());
        let waker_a = waker(first.clone());
        let waker_b = waker(second.clone());
        assert!(
            a.as_mut()
                .poll(&mut TaskContext::from_waker(&waker_a))
                .is_pending()
        );
        assert!(
            b.as_mut()
                .poll(&mut TaskContext::from_waker(&waker_b))
                .is_pending()
        );
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        assert!(second.0.load(Ordering::SeqCst), "the last waiter is woken");
        assert!(
            !first.0.load(Ordering::SeqCst),
            "kube-runtime now wakes every waiter of a store"
        );
    }

    #[test]
    fn failed_writes_back_off_from_one_second_to_five_minutes() {
        let waits: Vec<u64> = (0..12).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_AFTER_FAILED_WRITE);
    }

    /// Every API call the operator makes is granted by `deploy/operator/rbac.yaml`: cluster-wide
    /// by the ClusterRole, except the leader Lease, which only the Role in the operator's own
    /// namespace grants.
    #[test]
    fn the_cluster_role_grants_what_the_operator_calls() {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(include_str!("../../../deploy/operator/rbac.yaml"))
                .unwrap();
        let rules_of = |kind: &str| -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
            let doc = docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
            match kind {
                "ClusterRole" => serde_json::from_value::<ClusterRole>(doc).unwrap().rules,
                _ => {
                    serde_json::from_value::<k8s_openapi::api::rbac::v1::Role>(doc)
                        .unwrap()
                        .rules
                }
            }
            .unwrap_or_default()
        };
        let allows = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule],
                      group: &str,
                      resource: &str,
                      verb: &str| {
            rules.iter().any(|r| {
                let has = |list: &Option<Vec<String>>, x: &str| {
                    list.iter().flatten().any(|v| v == x || v == "*")
                };
                has(&r.api_groups, group)
                    && has(&r.resources, resource)
                    && r.verbs.iter().any(|v| v == verb)
            })
        };
        let (cluster, namespaced) = (rules_of("ClusterRole"), rules_of("Role"));
        for verb in ["get", "create", "update"] {
            assert!(
                allows(&namespaced, "coordination.k8s.io", "leases", verb),
                "{verb} leases"
            );
            assert!(
                !allows(&cluster, "coordination.k8s.io", "leases", verb),
                "leases cluster-wide"
            );
        }
        let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
        assert_eq!(binding["metadata"]["namespace"], "gamedeploy");
        assert_eq!(binding["roleRef"]["name"], "gamedeploy-leader-election");
        let rules = cluster;
        let allows =
            |group: &str, resource: &str, verb: &str| allows(&rules, group, resource, verb);
        for (group, resource, verbs) in [
            (
                "tkex.tencent.com",
                "gamedeployments",
                &["get", "list", "watch"][..],
            ),
            ("tkex.tencent.com", "gamedeployments/status", &["patch"]),
            (
                "tkex.tencent.com",
                "hookruns",
                &["list", "watch", "create", "delete"],
            ),
            ("tkex.tencent.com", "hookruns/status", &["patch"]),
            ("tkex.tencent.com", "hooktemplates", &["list", "watch"]),
            (
                "",
                "pods",
                &["get", "list", "watch", "create", "delete", "patch"],
            ),
            ("", "pods/status", &["patch"]),
            ("", "nodes", &["list", "watch"]),
            (
                "apps",
                "controllerrevisions",
                &["list", "watch", "create", "delete"],
            ),
            ("events.k8s.io", "events", &["create", "patch"]),
        ] {
            for verb in verbs {
                assert!(allows(group, resource, verb), "{verb} {resource}.{group}");
            }
        }
    }
}
