//! The reconcile loop on kube-runtime's `Controller`: GameDeployments are the primary resource;
//! Pods, ControllerRevisions and HookRuns are watched once each into caches the reconcile
//! reads (no GETs of pods), and their events trigger the owning GameDeployment (for a pod
//! without a controller: every GameDeployment that would adopt it). Pods are cached in the
//! roster (`roster.rs`), which hands a reconcile its GameDeployment's pods without a pass over
//! the namespace. Nodes are cached as the deletion costs and facts planning reads
//! (`nodes.rs`); node changes trigger nothing.
//! A reconcile requeues exactly when a timer in the plan is due (grace end, deadline,
//! minReadySeconds), never by polling. Each reconcile runs in a `reconcile` span naming its
//! GameDeployment and what woke it (`trigger.rs`).

mod memory;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, Either, Shared};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use crate::claim;
use crate::events::Events;
use crate::execute::{self, Io, Writes};
use crate::expectations::Expectations;
use crate::hookruns::providers::{Measure, Providers};
use crate::hookruns::templates::TemplateChecks;
use crate::hookruns::{self, HookRunContext};
use crate::metrics::{ErrorKind, GdLabels, Metrics, PlanFrom};
use crate::nodes::SharedNodes;
use crate::roster::SharedRoster;
use crate::trigger::Wake;
use crate::watch::{api, lenient_watcher, reflect};
use crate::write_gate::WriteGate;
use gamedeploy_clock::SharedClock;
use gamedeploy_core::api::{GameDeployment, HookRun, HookTemplate, Lenient, StoredGameDeployment};
use gamedeploy_core::planner::model::{CachedPod, Controlled, HookRunView, Plan, PlanInput};
use gamedeploy_core::planner::plan;
use gamedeploy_core::planner::rules::adoption::{self, RosterClaim, controlled_by};
use gamedeploy_core::planner::rules::outcome::StatusWrite;
pub use memory::MIN_RECONCILE_INTERVAL;
use memory::{Memories, STATUS_WATCH_WAIT};

/// How soon a reconcile with a failed write runs again: a conflict usually clears at once,
/// while a failure the user must fix (a missing HookTemplate) should not cost a request a
/// second for ever, so consecutive failures back off, up to [`MAX_RETRY_AFTER_FAILED_WRITE`].
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);
const MAX_RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(300);
/// How soon a reconcile that failed runs again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// The wait before retry number `attempt` (0-based) of a reconcile whose writes failed.
fn retry_delay(attempt: u32) -> Duration {
    RETRY_AFTER_FAILED_WRITE
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_RETRY_AFTER_FAILED_WRITE)
}

/// The caches a reconcile reads.
pub struct Caches {
    pub pods: SharedRoster,
    pub revisions: Store<ControllerRevision>,
    pub hook_runs: Store<HookRun>,
    pub hook_templates: Store<HookTemplate>,
    pub nodes: SharedNodes,
}

impl Caches {
    /// Resolves once every cache is full. kube-runtime's `wait_until_ready` wakes only the last
    /// future that waited on a store, so exactly one future may wait for these (see [`run`]).
    fn synced(&self) -> impl Future<Output = ()> + Send + 'static {
        let (p, r, h, t, n) = (
            self.pods.clone(),
            self.revisions.clone(),
            self.hook_runs.clone(),
            self.hook_templates.clone(),
            self.nodes.clone(),
        );
        async move {
            let _ = futures::join!(
                p.wait_until_ready(),
                r.wait_until_ready(),
                h.wait_until_ready(),
                t.wait_until_ready(),
                n.wait_until_ready(),
            );
        }
    }
}

/// The watches that fill [`Caches`]: the first three trigger reconciles, the last two only
/// keep their caches.
struct CacheWatches {
    /// Each pod once it is in the roster.
    pods: BoxStream<'static, watcher::Result<Arc<CachedPod>>>,
    revisions: BoxStream<'static, watcher::Result<ControllerRevision>>,
    hook_runs: BoxStream<'static, watcher::Result<HookRun>>,
    hook_templates: BoxStream<'static, watcher::Result<watcher::Event<HookTemplate>>>,
    nodes: BoxStream<'static, watcher::Result<watcher::Event<Node>>>,
}

/// The caches a reconcile reads, and the watches that fill them.
fn watch_caches(client: &kube::Client, ns: Option<&str>) -> (Caches, CacheWatches) {
    let cfg = watcher::Config::default();
    // Each pod is projected (view and record derived) as it arrives: see `CachedPod`.
    let pods = SharedRoster::default();
    let pod_events = pods.reflect(watcher(api::<CachedPod>(client, ns), cfg.clone()));
    let (revisions, rev_events) = reflect(
        lenient_watcher(api::<Lenient<ControllerRevision>>(client, ns), cfg.clone())
            .modify(for_cache),
    );
    let (hook_runs, hook_events) = reflect(
        lenient_watcher(api::<Lenient<HookRun>>(client, ns), cfg.clone()).modify(for_cache),
    );
    // HookTemplates are read, not watched for: a reconcile waiting on a missing one retries.
    let (hook_templates, template_events) = reflect(
        lenient_watcher(api::<Lenient<HookTemplate>>(client, ns), cfg.clone()).modify(for_cache),
    );
    let nodes = SharedNodes::default();
    let node_events = nodes.reflect(watcher(Api::<Node>::all(client.clone()), cfg));
    let watches = CacheWatches {
        pods: pod_events.default_backoff().boxed(),
        revisions: rev_events.default_backoff().touched_objects().boxed(),
        hook_runs: hook_events.default_backoff().touched_objects().boxed(),
        hook_templates: template_events.default_backoff().boxed(),
        nodes: node_events.default_backoff().boxed(),
    };
    let caches = Caches {
        pods,
        revisions,
        hook_runs,
        hook_templates,
        nodes,
    };
    (caches, watches)
}

/// What one reconcile read from the caches for one GameDeployment (no API requests).
pub struct CachedObjects {
    /// Its pods as claiming decided from the roster: those it keeps, in name order and shared
    /// with the cache, and the orphans to adopt and pods to release.
    pub pods: RosterClaim,
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
    caches: Caches,
    /// Evaluations of a selector on a pod by claiming, since start.
    selector_evaluations: AtomicUsize,
    rng: Mutex<fastrand::Rng>,
    writes: Mutex<Writes>,
    /// What is remembered of each GameDeployment between its reconciles.
    memory: Memories,
    /// Pod creates and deletes sent and not yet seen by the pod watch.
    expectations: Arc<Expectations>,
    /// Closed when leadership is lost; every write checks it first.
    gate: WriteGate,
    metrics: Arc<Metrics>,
    /// The API server serves `pods/resize` (found once at start, [`serves_pod_resize`]).
    resize_supported: bool,
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
            caches,
            selector_evaluations: AtomicUsize::new(0),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            writes: Mutex::new(Writes::default()),
            memory: Memories::default(),
            expectations: Arc::default(),
            gate: WriteGate::default(),
            metrics: Arc::default(),
            resize_supported: true,
        }
    }

    /// The same context, told whether the API server serves `pods/resize`.
    pub fn with_resize(self, supported: bool) -> Self {
        Context {
            resize_supported: supported,
            ..self
        }
    }

    /// The same context, writing only while `gate` is open and reporting to `metrics`.
    pub fn guarded(self, gate: WriteGate, metrics: Arc<Metrics>) -> Self {
        Context {
            events: self.events.guarded(gate.clone(), metrics.clone()),
            gate,
            metrics,
            ..self
        }
    }

    fn io(&self) -> Io<'_> {
        Io {
            client: &self.client,
            gate: &self.gate,
            metrics: &self.metrics,
            events: &self.events,
            expectations: &self.expectations,
        }
    }

    /// Writes made since start, for budgets and reports.
    pub fn writes(&self) -> Writes {
        self.writes.lock().map(|w| *w).unwrap_or_default()
    }

    /// How many times claiming evaluated a selector on a pod since start: on the pods that
    /// are new to their GameDeployment or changed labels, and on orphans (see
    /// `adoption::claim_from`).
    pub fn selector_evaluations(&self) -> usize {
        self.selector_evaluations.load(Ordering::Relaxed)
    }

    /// How many plans were made from `from` since start (`bkbcs_gamedeployment_plans_total`).
    pub fn plans(&self, from: PlanFrom) -> u64 {
        self.metrics.plans(from)
    }

    fn add_writes(&self, writes: Writes) {
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
        self.memory.forget(&uid);
        self.metrics.forget(&labels_of(stored));
    }

    /// Executes `plan` for `stored` and counts its writes; returns them, and when a status
    /// write held back to coalesce it with what follows is due (see
    /// `outcome::status_write`), for the reconcile to come back then.
    async fn execute(
        &self,
        stored: &StoredGameDeployment,
        pods: &[Arc<CachedPod>],
        plan: Plan,
        now: jiff::Timestamp,
    ) -> Result<(Writes, Option<jiff::Timestamp>), crate::Error> {
        let uid = stored.uid().unwrap_or_default();
        let last = self.memory.status_written(&uid);
        let (writes, status, over) =
            execute::run_plan(self.io(), stored, pods, plan, now, last).await?;
        self.add_writes(writes);
        if writes != Writes::default() {
            // One line per reconcile that changed something; the span names the object.
            tracing::info!(
                pod_writes = writes.pods,
                other_writes = writes.other,
                failed = writes.failed,
                "executed the plan"
            );
        }
        let due = match status {
            StatusWrite::Now => {
                self.memory.wrote_status(&uid, now, over);
                None
            }
            StatusWrite::At(t) => Some(t),
            StatusWrite::Unchanged => None,
        };
        Ok((writes, due))
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
/// every GameDeployment that would adopt it. Each is noted as woken by a pod.
fn pod_triggers(
    gds: &Store<StoredGameDeployment>,
    pod: &CachedPod,
    memory: &Memories,
) -> Vec<ObjectRef<StoredGameDeployment>> {
    let ns = pod.namespace();
    let mut refs: Vec<ObjectRef<StoredGameDeployment>> = Vec::new();
    for owner in pod.owner_references() {
        memory.note(&owner.uid, Wake::Pod);
        refs.extend(ObjectRef::from_owner_ref(ns.as_deref(), owner, ()));
    }
    if adoption::controller_of(pod).is_none() {
        for stored in gds.state() {
            if stored
                .decoded()
                .is_some_and(|gd| adoption::wants_orphan(gd, pod))
            {
                memory.note(&stored.uid().unwrap_or_default(), Wake::Pod);
                refs.push(ObjectRef::from_obj(stored.as_ref()));
            }
        }
    }
    refs
}

/// Notes an owned object's event as a cause of its controller's next reconcile.
fn note_owner<K: Resource>(memory: &Memories, owned: &watcher::Result<K>) {
    let Ok(owned) = owned else { return };
    for owner in owned.owner_references() {
        if owner.controller == Some(true) {
            memory.note(&owner.uid, Wake::Owned);
        }
    }
}

/// How one reconcile ended: when it runs again (`None`: on a change only), and whether a write
/// failed.
struct Done {
    requeue_after: Option<Duration>,
    write_failed: bool,
}

impl Done {
    fn requeue(after: Duration) -> Self {
        Done {
            requeue_after: Some(after),
            write_failed: false,
        }
    }

    fn await_change() -> Self {
        Done {
            requeue_after: None,
            write_failed: false,
        }
    }

    /// Back after `at`, or on a change when `at` is `None`.
    fn at(now: jiff::Timestamp, at: Option<jiff::Timestamp>) -> Self {
        match at {
            Some(t) => Done::requeue(until(now, t)),
            None => Done::await_change(),
        }
    }
}

/// One reconcile: observe from the caches, claim pods, plan, act. An object whose spec does
/// not decode is reported (condition and event) and nothing else is touched. Timed and
/// counted in the metrics, and run in a `reconcile` span carrying the GameDeployment's
/// namespace and name and what woke the reconcile (`trigger.rs`), so every line it logs (the
/// executor's included) names them. The caches must be full: [`run`] starts no reconcile
/// before they are.
pub async fn reconcile(
    stored: Arc<StoredGameDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, crate::Error> {
    let uid = stored.uid().unwrap_or_default();
    let trigger = ctx.memory.trigger(&uid, tokio::time::Instant::now());
    let span = tracing::info_span!(
        "reconcile",
        namespace = %stored.namespace().unwrap_or_default(),
        gamedeployment = %stored.name_any(),
        %trigger,
    );
    // Real time even in simulations: this measures the operator's cost, not the cluster's.
    let started = std::time::Instant::now();
    let result = reconcile_once(stored, &ctx).instrument(span).await;
    let error = match &result {
        Ok(done) if done.write_failed => Some(ErrorKind::WriteFailed),
        Ok(_) => None,
        Err(crate::Error::Status { .. }) => Some(ErrorKind::StatusWrite),
        Err(crate::Error::NotLeader) => Some(ErrorKind::NotLeader),
        Err(crate::Error::Unnamed) => Some(ErrorKind::Internal),
    };
    ctx.metrics.reconciled(started.elapsed(), error);
    let done = result?;
    let cause = if done.write_failed {
        Wake::Retry
    } else {
        Wake::Requeue
    };
    ctx.memory.requeued(&uid, done.requeue_after, cause);
    Ok(done
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// [`reconcile`]'s work.
async fn reconcile_once(
    stored: Arc<StoredGameDeployment>,
    ctx: &Arc<Context>,
) -> Result<Done, crate::Error> {
    if stored.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the pods.
        ctx.forget(&stored);
        return Ok(Done::await_change());
    }
    match stored.as_ref() {
        StoredGameDeployment::Decoded(gd) => reconcile_decoded(gd.clone(), &stored, ctx).await,
        StoredGameDeployment::Undecodable(u) => {
            tracing::warn!(reason = %u.reason, "cannot decode the spec");
            let uid = stored.uid().unwrap_or_default();
            let ns = stored.namespace().unwrap_or_default();
            let owned = ctx.caches.pods.lock().controlled(&ns, &uid).pods;
            let now = ctx.clock.now();
            let plan = plan::plan_undecodable(u, &owned, now);
            let (writes, status_due) = ctx.execute(&stored, &owned, plan, now).await?;
            // A new spec is a new object in the watch: nothing to do until then, but for a
            // status write held back.
            Ok(Done {
                write_failed: writes.failed > 0,
                ..Done::at(now, status_due)
            })
        }
    }
}

/// The reconcile of a GameDeployment whose spec decoded.
async fn reconcile_decoded(
    gd: Arc<GameDeployment>,
    stored: &StoredGameDeployment,
    ctx: &Context,
) -> Result<Done, crate::Error> {
    let uid = gd.uid().unwrap_or_default();
    let now = ctx.clock.now();
    if let Some(due) = ctx.memory.too_soon(&uid, now) {
        return Ok(Done::requeue(until(now, due)));
    }
    // The whole reconcile waits, not only its creates and deletes: a plan made from a pod set
    // that lacks the operator's own writes is wrong beyond its counts (status would go
    // backwards, maxUnavailable and preDelete victims would be chosen from a set about to
    // change). The wait is the watch's lag: the event that satisfies the last expectation
    // triggers the next reconcile, and the timeout bounds it if that event is lost. The pods
    // are read after this look at the roster, so they show at least what it saw.
    let ns = gd.namespace().unwrap_or_default();
    let unsatisfied = (ctx.expectations).unsatisfied(&uid, &ns, &ctx.caches.pods.lock(), now);
    if let Some(expires) = unsatisfied {
        tracing::debug!("waiting for the pod watch to show our writes");
        return Ok(Done::requeue(until(now, expires)));
    }
    if ctx
        .memory
        .status_unseen(&uid, gd.metadata.resource_version.as_deref(), now)
    {
        // The watch event of our own status write triggers the next reconcile; the wait only
        // bounds a lost event.
        tracing::debug!("waiting for the watch to show our status write");
        return Ok(Done::requeue(STATUS_WATCH_WAIT));
    }
    let CachedObjects {
        pods: claim,
        revisions,
        hook_runs,
        hook_templates,
    } = observe(&gd, ctx);
    let Some(Controlled {
        pods,
        counts,
        settled,
    }) = claimed_pods(&gd, claim, ctx).await
    else {
        // Planning without a pod we failed to adopt would create its replacement.
        return Ok(Done {
            write_failed: true,
            ..Done::requeue(RETRY_AFTER_FAILED_WRITE)
        });
    };
    let nodes = ctx.caches.nodes.read();
    let world = PlanInput {
        gd: &gd,
        pods: &pods,
        revisions: &revisions,
        hook_runs: &hook_runs,
        hook_templates: &hook_templates,
        node_costs: &nodes.costs,
        resize_supported: ctx.resize_supported,
        nodes: &nodes.facts,
        now,
    };
    // A GameDeployment at rest is planned from the roster's tally, without reading its pods.
    let (plan, from) = match settled.and_then(|s| plan::plan_settled(&world, &s)) {
        Some(plan) => (plan, PlanFrom::Tally),
        None => (plan::plan(&world, &mut || ctx.suffix()), PlanFrom::Pods),
    };
    ctx.metrics.planned(from);
    let requeue_at = plan.requeue_at;
    let status = plan.status().cloned();
    let labels = labels_of(stored);
    ctx.metrics.machines(&labels, &counts);
    let (writes, status_due) = ctx.execute(stored, &pods, plan, now).await?;
    if let Some(status) = &status {
        let desired = gd.spec.replicas.unwrap_or_default();
        ctx.metrics.status(&labels, desired, status);
    }
    if writes.failed > 0 {
        // A refused write changes nothing the watches would report: retry on our own.
        let wait = retry_delay(ctx.memory.failed(&uid));
        return Ok(Done {
            write_failed: true,
            ..Done::requeue(wait)
        });
    }
    ctx.memory.succeeded(&uid);
    Ok(Done::at(
        now,
        requeue_at.into_iter().chain(status_due).min(),
    ))
}

/// The pods `gd` plans with, counted per in-place state: those it keeps after adopting and
/// releasing what claiming decided (the cache's own Arcs: copying 10,000 pods took longer than
/// planning them). `None` when a claim write failed.
async fn claimed_pods(
    gd: &GameDeployment,
    claim: RosterClaim,
    ctx: &Context,
) -> Option<Controlled> {
    (ctx.selector_evaluations).fetch_add(claim.evaluated, Ordering::Relaxed);
    if let Some(e) = &claim.refused {
        // The plan refuses this spec and says why; meanwhile no pod changes hands.
        tracing::debug!(error = %e, "not claiming pods");
        return Some(claim.owned);
    }
    let adopt: Vec<&CachedPod> = claim.adopt.iter().map(|p| p.as_ref()).collect();
    let release: Vec<&CachedPod> = claim.release.iter().map(|p| p.as_ref()).collect();
    let claimed = claim::execute(ctx.io(), gd, &adopt, &release).await;
    ctx.add_writes(claimed.writes);
    if claimed.writes.failed > 0 {
        return None;
    }
    let mut owned = claim.owned;
    for pod in claimed.adopted {
        owned.adopt(Arc::new(CachedPod::from(pod)));
    }
    Some(owned)
}

/// A GameDeployment's metric labels.
fn labels_of(stored: &StoredGameDeployment) -> GdLabels {
    GdLabels {
        namespace: stored.namespace().unwrap_or_default(),
        name: stored.name_any(),
    }
}

/// The wait from `now` to `t` (none if `t` is past).
fn until(now: jiff::Timestamp, t: jiff::Timestamp) -> Duration {
    let wait = t.duration_since(now).max(jiff::SignedDuration::ZERO);
    Duration::try_from(wait).unwrap_or(Duration::from_secs(1))
}

/// Reads one GameDeployment's pods (claimed from the roster), revisions, HookRuns and
/// HookTemplates from the caches.
pub fn observe(gd: &GameDeployment, ctx: &Context) -> CachedObjects {
    let uid = gd.uid().unwrap_or_default();
    let ns = gd.namespace();
    let caches = &ctx.caches;
    CachedObjects {
        pods: adoption::claim_from(gd, &mut caches.pods.lock()),
        revisions: caches
            .revisions
            .state()
            .iter()
            .filter(|r| controlled_by(r.as_ref(), &uid))
            .map(|r| r.as_ref().clone())
            .collect(),
        hook_runs: caches
            .hook_runs
            .state()
            .iter()
            .filter(|h| controlled_by(h.as_ref(), &uid))
            .map(|h| (h.name_any(), HookRunView::from_hook_run(h)))
            .collect(),
        hook_templates: caches
            .hook_templates
            .state()
            .into_iter()
            .filter(|t| t.metadata.namespace == ns)
            .map(|t| (t.name_any(), t))
            .collect(),
    }
}

/// Retry a failed reconcile soon; the error is logged with the object's name (this runs
/// outside the reconcile's span).
pub fn error_policy(
    gd: Arc<StoredGameDeployment>,
    error: &crate::Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(
        namespace = %gd.namespace().unwrap_or_default(),
        gamedeployment = %gd.name_any(),
        %error,
        "reconcile failed; retrying"
    );
    let uid = gd.uid().unwrap_or_default();
    ctx.memory
        .requeued(&uid, Some(RETRY_AFTER_ERROR), Wake::Retry);
    Action::requeue(RETRY_AFTER_ERROR)
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
    pub gate: WriteGate,
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
            gate: WriteGate::default(),
            measure: None,
        }
    }
}

/// The stop signal, shared by everything that stops on it.
type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Runs the operator until `shutdown` resolves: the GameDeployment controller and, beside it,
/// the HookRun controller. Returns the GameDeployment controller's context (write counts).
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Context> {
    let shutdown: Shutdown = shutdown.boxed().shared();
    let hook_ctx = Arc::new(HookRunContext::new(
        client.clone(),
        clock.clone(),
        options
            .measure
            .clone()
            .unwrap_or_else(|| Arc::new(Providers::new(client.clone()))),
        &options.instance,
        options.gate.clone(),
        options.metrics.clone(),
    ));
    let hook_api = api::<Lenient<HookRun>>(&client, options.namespace.as_deref());
    let hook_controller = hookruns::run(hook_api, hook_ctx, shutdown.clone());
    // Measurements are not checkpoints: when the GameDeployment controller has stopped, a
    // measurement still in flight is dropped and taken again by the next operator.
    let hook_controller = async {
        hook_controller.await;
        std::future::pending::<Infallible>().await
    };
    let gd_controller = gamedeployments(client, clock, &options, shutdown);
    let ctx = match futures::future::select(
        std::pin::pin!(gd_controller),
        std::pin::pin!(hook_controller),
    )
    .await
    {
        Either::Left((ctx, _)) => ctx,
        Either::Right((never, _)) => match never {},
    };
    options.metrics.set_synced(false);
    ctx
}

/// Whether the API server lists the `pods/resize` subresource (Kubernetes 1.33+): asked once,
/// at start. Without it a cpu/memory change recreates the pod, and its event says why. A
/// discovery failure counts as "not served": recreating is what every older operator did.
pub async fn serves_pod_resize(client: &kube::Client) -> bool {
    match client.list_core_api_resources("v1").await {
        Ok(list) => list.resources.iter().any(|r| r.name == "pods/resize"),
        Err(error) => {
            tracing::warn!(%error, "discovery of /api/v1 failed; cpu/memory changes recreate pods");
            false
        }
    }
}

/// The GameDeployment controller, until `shutdown`; returns its context.
async fn gamedeployments(
    client: kube::Client,
    clock: SharedClock,
    options: &Options,
    shutdown: Shutdown,
) -> Arc<Context> {
    let ns = options.namespace.as_deref();
    let (caches, watches) = watch_caches(&client, ns);
    // A reconcile before the first full list of pods would see none and create them all again
    // (one before the node list would scale down ignoring node costs). kube-runtime's
    // `wait_until_ready` wakes only the last future that waited on a store, so a reconcile
    // waiting beside a readiness check could sleep for ever (a new leader with many pods did).
    // Hence exactly one future waits for these caches: it holds the GameDeployment watch back
    // until they are full, and the Controller, which waits for its own store, reconciles
    // nothing before then.
    let caches_synced = caches.synced();
    let resize = serves_pod_resize(&client).await;
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            clock,
            caches,
            options.seed,
            options.instance.clone(),
        )
        .guarded(options.gate.clone(), options.metrics.clone())
        .with_resize(resize),
    );
    // Set once the GameDeployments are listed, which is after every other cache.
    let listed = Arc::new(AtomicBool::new(false));
    let (gds, gd_stream) = gamedeployment_watch(&client, ns, &ctx, &listed, caches_synced);
    let config = kube::runtime::controller::Config::default().concurrency(options.concurrency);
    let (pod_ctx, rev_ctx, hook_ctx) = (ctx.clone(), ctx.clone(), ctx.clone());
    let reconciles = Controller::for_stream(gd_stream, gds.clone())
        .with_config(config)
        .watches_shared_stream(watches.pods.filter_map(passed), move |pod| {
            pod_ctx.expectations.observe(&pod);
            pod_triggers(&gds, &pod, &pod_ctx.memory)
        })
        .owns_stream(
            watches
                .revisions
                .inspect(move |r| note_owner(&rev_ctx.memory, r)),
        )
        .owns_stream(
            watches
                .hook_runs
                .inspect(move |h| note_owner(&hook_ctx.memory, h)),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(
                    namespace = obj.namespace.as_deref().unwrap_or_default(),
                    gamedeployment = %obj.name,
                    "reconciled"
                ),
                Err(kube::runtime::controller::Error::QueueError(e)) => watch_failed(&e),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        });
    let other_caches = keep_caches(watches.nodes, watches.hook_templates, ctx.clone());
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
        () = other_caches => {}
        () = stopped_unsynced => {}
    }
    ctx
}

/// A failing watch is a lost or refusing cluster: say so (watches back off).
fn watch_failed(e: &watcher::Error) {
    tracing::warn!(
        "watching the cluster failed: {}; retrying",
        crate::describe(e)
    )
}

/// What passed a watch, its failure said.
fn passed<T>(item: watcher::Result<T>) -> futures::future::Ready<Option<T>> {
    futures::future::ready(item.inspect_err(watch_failed).ok())
}

/// The GameDeployment watch, held back until `caches_synced`. It is ours, not the
/// Controller's, to see deletions: their series leave the metrics with them, and what the
/// context remembers of them is dropped. Every change is noted as a cause of a reconcile.
fn gamedeployment_watch(
    client: &kube::Client,
    ns: Option<&str>,
    ctx: &Arc<Context>,
    listed: &Arc<AtomicBool>,
    caches_synced: impl Future<Output = ()> + Send + 'static,
) -> (
    Store<StoredGameDeployment>,
    impl futures::Stream<Item = watcher::Result<StoredGameDeployment>> + Send + 'static,
) {
    let watch = watcher(
        api::<StoredGameDeployment>(client, ns),
        watcher::Config::default(),
    );
    let (gds, events) = reflect(watch);
    let (store, ctx, listed) = (gds.clone(), ctx.clone(), listed.clone());
    let events = events
        .inspect(move |event| match event {
            Ok(watcher::Event::Apply(gd) | watcher::Event::InitApply(gd)) => ctx
                .memory
                .note(&gd.uid().unwrap_or_default(), Wake::Changed),
            Ok(watcher::Event::Delete(gd)) => ctx.forget(gd),
            // Every cache is full once the GameDeployments are listed. A relist may have
            // missed deletions.
            Ok(watcher::Event::InitDone) => {
                listed.store(true, Ordering::SeqCst);
                ctx.metrics.set_synced(true);
                let live: BTreeSet<GdLabels> =
                    store.state().iter().map(|gd| labels_of(gd)).collect();
                for gone in ctx
                    .metrics
                    .known()
                    .into_iter()
                    .filter(|k| !live.contains(k))
                {
                    ctx.metrics.forget(&gone);
                }
            }
            _ => {}
        })
        .applied_objects();
    let held_back = futures::stream::once(async move {
        caches_synced.await;
        events
    })
    .flatten();
    (gds, held_back)
}

/// Keeps the node and HookTemplate caches up to date for as long as the controller runs,
/// checking each HookTemplate as it is applied; never ends.
async fn keep_caches(
    nodes: BoxStream<'static, watcher::Result<watcher::Event<Node>>>,
    templates: BoxStream<'static, watcher::Result<watcher::Event<HookTemplate>>>,
    ctx: Arc<Context>,
) {
    let checks = Arc::new(TemplateChecks::default());
    futures::join!(
        nodes.for_each(|_| futures::future::ready(())),
        templates.for_each(|event| {
            let (ctx, checks) = (ctx.clone(), checks.clone());
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
