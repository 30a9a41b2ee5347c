//! The reconcile loop on kube-runtime's `Controller`: GameDeployments are the primary resource;
//! Pods, ControllerRevisions and HookRuns are watched once each through reflectors whose caches
//! the reconcile reads (no GETs of pods), and whose events trigger the owning GameDeployment.
//! A reconcile requeues exactly when a timer in the plan is due (grace end, deadline,
//! minReadySeconds), never by polling.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::act::{self, Writes};
use super::events::Events;
use crate::api::{GameDeployment, HookRun};
use crate::clock::SharedClock;
use crate::controller::plan::{self, World};
use crate::inplace::HookPhase;

/// How soon a reconcile with a failed write runs again.
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);

/// The reflector caches a reconcile reads.
pub struct Caches {
    pub pods: Store<Pod>,
    pub revisions: Store<ControllerRevision>,
    pub hook_runs: Store<HookRun>,
}

/// What one reconcile read from the caches for one GameDeployment.
pub struct Observed {
    /// Pods it owns, shared with the cache.
    pub pods: Vec<Arc<Pod>>,
    pub revisions: Vec<ControllerRevision>,
    /// HookRun phase by name.
    pub hook_runs: BTreeMap<String, HookPhase>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub clock: SharedClock,
    pub events: Events,
    pods: Store<Pod>,
    revisions: Store<ControllerRevision>,
    hook_runs: Store<HookRun>,
    rng: Mutex<fastrand::Rng>,
    writes: Mutex<Writes>,
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
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            writes: Mutex::new(Writes::default()),
        }
    }

    /// Writes made since start, for budgets and reports.
    pub fn writes(&self) -> Writes {
        self.writes.lock().map(|w| *w).unwrap_or_default()
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
/// never reads and which was most of a cached pod's memory.
pub fn for_cache<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

fn owned_by<K: Resource>(obj: &K, uid: &str) -> bool {
    obj.meta().owner_references.as_ref().is_some_and(|refs| {
        refs.iter()
            .any(|r| r.controller == Some(true) && r.uid == uid)
    })
}

/// One reconcile: observe from the caches, plan, act.
pub async fn reconcile(gd: Arc<GameDeployment>, ctx: Arc<Context>) -> Result<Action, super::Error> {
    if gd.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the pods.
        return Ok(Action::await_change());
    }
    // The controller starts as soon as the GameDeployment watch does; a reconcile before the
    // first full list of pods would see none and create them all again.
    for ready in [
        ctx.pods.wait_until_ready().await,
        ctx.revisions.wait_until_ready().await,
        ctx.hook_runs.wait_until_ready().await,
    ] {
        ready.map_err(|_| super::Error::CacheClosed)?;
    }
    let Observed {
        pods,
        revisions,
        hook_runs,
    } = observe(&gd, &ctx);
    let now = ctx.clock.now();
    let node_costs = BTreeMap::new();
    let world = World {
        gd: &gd,
        pods: &pods,
        revisions: &revisions,
        hook_runs: &hook_runs,
        node_costs: &node_costs,
        now,
    };
    let plan = plan::plan(&world, &mut || ctx.suffix());
    let requeue_at = plan.requeue_at;
    let writes = act::execute(&ctx.client, &ctx.events, &gd, &pods, plan, now).await?;
    if let Ok(mut total) = ctx.writes.lock() {
        total.pods += writes.pods;
        total.other += writes.other;
        total.failed += writes.failed;
    }
    if writes.failed > 0 {
        // A refused write changes nothing the watches would report: retry on our own.
        return Ok(Action::requeue(RETRY_AFTER_FAILED_WRITE));
    }
    Ok(match requeue_at {
        Some(t) => {
            let wait = t.duration_since(now).max(jiff::SignedDuration::ZERO);
            Action::requeue(Duration::try_from(wait).unwrap_or(Duration::from_secs(1)))
        }
        None => Action::await_change(),
    })
}

/// Reads one GameDeployment's objects from the caches (no API requests).
pub fn observe(gd: &GameDeployment, ctx: &Context) -> Observed {
    let uid = gd.uid().unwrap_or_default();
    let ns = gd.namespace().unwrap_or_default();
    // The cache's own Arcs: copying 10,000 pods took longer than planning them.
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str()) && owned_by(p.as_ref(), &uid)
        })
        .collect();
    let revisions: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| owned_by(r.as_ref(), &uid))
        .map(|r| r.as_ref().clone())
        .collect();
    let hook_runs: BTreeMap<String, HookPhase> = ctx
        .hook_runs
        .state()
        .iter()
        .filter(|h| owned_by(h.as_ref(), &uid))
        .filter_map(|h| Some((h.name_any(), *h.status.as_ref()?.phase.as_ref()?)))
        .collect();
    Observed {
        pods,
        revisions,
        hook_runs,
    }
}

/// Retry a failed reconcile soon; the error is logged with the object's name.
pub fn error_policy(gd: Arc<GameDeployment>, error: &super::Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(gamedeployment = %gd.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Options for [`run`].
pub struct Options {
    /// Seed for pod-name suffixes (a fixed seed replays the same names).
    pub seed: u64,
    /// `reportingInstance` of events.
    pub instance: String,
    /// GameDeployments reconciled at once.
    pub concurrency: u16,
}

/// Runs the operator until `shutdown` resolves; returns the context (write counts).
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Context> {
    let cfg = watcher::Config::default();
    let (pods, pod_writer) = reflector::store();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), cfg.clone()).modify(for_cache),
    )
    .default_backoff()
    .touched_objects();
    let (revisions, rev_writer) = reflector::store();
    let rev_stream = reflector::reflector(
        rev_writer,
        watcher(Api::<ControllerRevision>::all(client.clone()), cfg.clone()).modify(for_cache),
    )
    .default_backoff()
    .touched_objects();
    let (hook_runs, hook_writer) = reflector::store();
    let hook_stream = reflector::reflector(
        hook_writer,
        watcher(Api::<HookRun>::all(client.clone()), cfg.clone()).modify(for_cache),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(Context::new(
        client.clone(),
        clock,
        Caches {
            pods,
            revisions,
            hook_runs,
        },
        options.seed,
        options.instance,
    ));
    let config = kube::runtime::controller::Config::default().concurrency(options.concurrency);
    Controller::new(Api::<GameDeployment>::all(client), cfg)
        .with_config(config)
        .owns_stream(pod_stream)
        .owns_stream(rev_stream)
        .owns_stream(hook_stream)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(gamedeployment = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
    ctx
}

/// A running operator that can be stopped gracefully, or killed as by a crash, and replaced
/// by a fresh one with empty caches (simulations and tests).
pub struct Handle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Arc<Context>>,
}

impl Handle {
    /// Starts an operator on its own task.
    pub fn start(client: kube::Client, clock: SharedClock, options: Options) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(client, clock, options, async {
            let _ = stopped.await;
        }));
        Handle { stop, task }
    }

    /// Graceful shutdown: in-flight reconciles finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Ends the operator at once, mid-reconcile if need be, as a crash would.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
