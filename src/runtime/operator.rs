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
use crate::controller::hooks::HookRunView;
use crate::controller::plan::{self, World};

/// How soon a reconcile with a failed write runs again: a conflict usually clears at once,
/// while a failure the user must fix (a missing HookTemplate) should not cost a request a
/// second for ever, so consecutive failures back off, up to [`MAX_RETRY_AFTER_FAILED_WRITE`].
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);
const MAX_RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(300);

/// The wait before retry number `attempt` (0-based) of a reconcile whose writes failed.
fn retry_delay(attempt: u32) -> Duration {
    RETRY_AFTER_FAILED_WRITE
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_RETRY_AFTER_FAILED_WRITE)
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
    /// Consecutive reconciles with failed writes, by `namespace/name`.
    failing: Mutex<BTreeMap<String, u32>>,
}

impl Context {
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
    let uid = gd.uid().unwrap_or_default();
    let ns = gd.namespace().unwrap_or_default();
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && owned_by(p.as_ref(), &uid))
        .map(|p| p.as_ref().clone())
        .collect();
    let revisions: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| owned_by(r.as_ref(), &uid))
        .map(|r| r.as_ref().clone())
        .collect();
    let hook_runs: BTreeMap<String, HookRunView> = ctx
        .hook_runs
        .state()
        .iter()
        .filter(|h| owned_by(h.as_ref(), &uid))
        .map(|h| (h.name_any(), HookRunView::from_hook_run(h)))
        .collect();
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
    let key = format!("{ns}/{}", gd.name_any());
    let mut failing = ctx.failing.lock().unwrap_or_else(|e| e.into_inner());
    if writes.failed > 0 {
        // A refused write changes nothing the watches would report: retry on our own.
        let attempt = failing.entry(key).or_default();
        let wait = retry_delay(*attempt);
        *attempt = attempt.saturating_add(1);
        return Ok(Action::requeue(wait));
    }
    failing.remove(&key);
    drop(failing);
    Ok(match requeue_at {
        Some(t) => {
            let wait = t.duration_since(now).max(jiff::SignedDuration::ZERO);
            Action::requeue(Duration::try_from(wait).unwrap_or(Duration::from_secs(1)))
        }
        None => Action::await_change(),
    })
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
        watcher(Api::<Pod>::all(client.clone()), cfg.clone()),
    )
    .default_backoff()
    .touched_objects();
    let (revisions, rev_writer) = reflector::store();
    let rev_stream = reflector::reflector(
        rev_writer,
        watcher(Api::<ControllerRevision>::all(client.clone()), cfg.clone()),
    )
    .default_backoff()
    .touched_objects();
    let (hook_runs, hook_writer) = reflector::store();
    let hook_stream = reflector::reflector(
        hook_writer,
        watcher(Api::<HookRun>::all(client.clone()), cfg.clone()),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(Context {
        events: Events::new(client.clone(), clock.clone(), options.instance),
        client: client.clone(),
        clock,
        pods,
        revisions,
        hook_runs,
        rng: Mutex::new(fastrand::Rng::with_seed(options.seed)),
        writes: Mutex::new(Writes::default()),
        failing: Mutex::new(BTreeMap::new()),
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_writes_back_off_from_one_second_to_five_minutes() {
        let waits: Vec<u64> = (0..12).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_AFTER_FAILED_WRITE);
    }
}
