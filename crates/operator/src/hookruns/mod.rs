//! The HookRun controller: every HookRun, whoever created it (a GameDeployment's gate, a
//! canary step, a user), is measured until it has an outcome.
//!
//! One reconcile is `decide` → measure → `fold_measurement` → `decide` → write the status →
//! requeue at the instant the engine names (on the injected clock, so simulations replay).
//! The engine ([`gamedeploy_core::hookrun`]) decides everything; this module only carries the
//! measurements out ([`providers`]) and writes what the engine said.
//!
//! Crash safety: a measurement is taken from the stored status and its result written with
//! a JSON-patch `test` of the resourceVersion it was taken from, so a result is recorded
//! once or not at all. An operator killed mid-measurement loses that measurement (the run
//! shows nothing of it) and takes it again after the restart; nothing recorded is lost.

pub mod providers;
pub mod templates;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use gamedeploy_clock::SharedClock;
use gamedeploy_core::api::{HookPhase, HookRun, HookRunStatus, Lenient};
use gamedeploy_core::hookrun::{
    CompileErrors, CompiledRun, Finished, Observation, RunTimeout, decide, fold_measurement,
    rejected,
};
use gamedeploy_core::names;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use crate::events::Events;
use crate::metrics::Metrics;
use crate::trigger::{Noted, Wake, Wakes};
use crate::watch::{lenient_watcher, reflect};
use crate::write_gate::{NotLeader, WriteGate};
use providers::Measure;

/// Why a HookRun reconcile could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing HookRun {name} status: {reason}")]
    Status { name: String, reason: String },
    #[error("this operator lost the leader lease; the HookRun's status was not written")]
    NotLeader,
}

impl From<NotLeader> for Error {
    fn from(_: NotLeader) -> Self {
        Error::NotLeader
    }
}

/// How soon a failed status write is retried.
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_secs(1);

/// Longest a finished measurement may take to be judged (its JSONPath and CEL conditions over
/// an answer of up to 1 MiB). Judging runs on tokio's blocking pool, never on the async
/// workers that serve `/healthz`, renew the leader lease and see SIGTERM; past this deadline the
/// measurement is recorded as an Error saying so, and the reconcile moves on. A healthy
/// condition takes microseconds: 2 s is far beyond any honest one and well inside the lease's
/// renew deadline (10 s) and the 5 s a stop may take.
pub const JUDGE_DEADLINE: Duration = Duration::from_secs(2);

/// Measurements judged at once, process-wide: a template whose conditions are expensive holds
/// at most this many of the blocking pool's threads (and CPUs), however many runs use it.
pub const JUDGE_CONCURRENCY: usize = 2;

/// Called inside the blocking task before a measurement is judged (tests slow judging down).
pub type JudgeHook = Arc<dyn Fn(&str) + Send + Sync>;

/// A run's compiled spec, or why it cannot run, for one generation.
type Compiled = Arc<Result<CompiledRun, CompileErrors>>;

/// What the HookRun controller remembers of one run between its reconciles.
#[derive(Default)]
struct RunMemory {
    /// Its compiled spec, with the generation it was compiled from.
    compiled: Option<(Option<i64>, Compiled)>,
    /// The resourceVersion it had when this operator last wrote its status: until the watch
    /// shows a newer one, the cache is stale and a reconcile would measure again.
    written: Option<String>,
    /// What may wake its next reconcile.
    noted: Noted,
}

/// What the HookRun controller keeps between reconciles.
pub struct HookRunContext {
    client: kube::Client,
    clock: SharedClock,
    measure: Arc<dyn Measure>,
    gate: WriteGate,
    events: Events,
    /// Every run's memory, by uid.
    runs: Mutex<HashMap<String, RunMemory>>,
    /// Judging slots ([`JUDGE_CONCURRENCY`]) and the deadline of one judging.
    judging: Arc<tokio::sync::Semaphore>,
    judge_deadline: Duration,
    judge_hook: Option<JudgeHook>,
    /// Measurements taken and status writes sent (tests and benchmarks count them).
    pub measurements: AtomicU64,
    pub status_writes: AtomicU64,
}

impl HookRunContext {
    pub fn new(
        client: kube::Client,
        clock: SharedClock,
        measure: Arc<dyn Measure>,
        instance: &str,
        gate: WriteGate,
        metrics: Arc<Metrics>,
    ) -> Self {
        HookRunContext {
            events: Events::new(client.clone(), clock.clone(), instance)
                .guarded(gate.clone(), metrics),
            client,
            clock,
            measure,
            gate,
            runs: Mutex::default(),
            judging: Arc::new(tokio::sync::Semaphore::new(JUDGE_CONCURRENCY)),
            judge_deadline: JUDGE_DEADLINE,
            judge_hook: None,
            measurements: AtomicU64::new(0),
            status_writes: AtomicU64::new(0),
        }
    }

    /// The same context with another judging deadline (tests).
    pub fn with_judge_deadline(mut self, deadline: Duration) -> Self {
        self.judge_deadline = deadline;
        self
    }

    /// The same context, calling `hook` with the metric's name before each judging, on the
    /// blocking thread (tests: an artificially slow condition).
    #[doc(hidden)]
    pub fn with_judge_hook(mut self, hook: JudgeHook) -> Self {
        self.judge_hook = Some(hook);
        self
    }

    /// `finished` folded into `run`'s status by [`fold_measurement`], on the blocking pool,
    /// at most [`JUDGE_CONCURRENCY`] at once and within the judging deadline (waiting for a
    /// slot included). Past the deadline the measurement is recorded as an Error instead; the
    /// judging left running keeps its slot until it ends, so runaway conditions cannot pile up.
    async fn judge(&self, run: &HookRun, compiled: &Compiled, finished: Finished) -> HookRunStatus {
        let Ok(spec) = compiled.as_ref() else {
            // Only a compiled run is measured.
            return run.status.clone().unwrap_or_default();
        };
        let deadline = self.judge_deadline;
        let judging = async {
            let slot = self
                .judging
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| "the operator is stopping".to_string())?;
            let (run, compiled, finished) = (run.clone(), compiled.clone(), finished.clone());
            let hook = self.judge_hook.clone();
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                if let Some(hook) = hook {
                    hook(&finished.metric);
                }
                match compiled.as_ref() {
                    Ok(spec) => fold_measurement(&run, spec, finished),
                    Err(_) => run.status.clone().unwrap_or_default(),
                }
            })
            .await
            .map_err(|e| format!("judging the measurement failed: {e}"))
        };
        let why = match tokio::time::timeout(deadline, judging).await {
            Ok(Ok(status)) => return status,
            Ok(Err(why)) => why,
            Err(_) => format!(
                "judging the measurement (jsonPath and conditions) took longer than {}; simplify the conditions or the answer",
                seconds(deadline)
            ),
        };
        tracing::warn!(metric = %finished.metric, "{why}");
        fold_measurement(
            run,
            spec,
            Finished {
                observation: Observation::Error(why),
                ..finished
            },
        )
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunMemory>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run's spec compiled once per generation.
    fn compiled(&self, run: &HookRun) -> Compiled {
        let uid = run.uid().unwrap_or_default();
        let generation = run.metadata.generation;
        if let Some((g, c)) = self.runs().get(&uid).and_then(|m| m.compiled.as_ref())
            && *g == generation
        {
            return c.clone();
        }
        let c: Compiled = Arc::new(CompiledRun::compile(&run.spec));
        self.runs().entry(uid).or_default().compiled = Some((generation, c.clone()));
        c
    }

    /// Drops the compiled spec of a run that completed: it is measured no more.
    fn completed(&self, uid: &str) {
        if let Some(m) = self.runs().get_mut(uid) {
            m.compiled = None;
        }
    }

    /// Forgets a run that cannot start or is gone.
    fn forget(&self, uid: &str) {
        self.runs().remove(uid);
    }

    /// Whether the cached run predates this operator's last status write.
    fn stale(&self, run: &HookRun) -> bool {
        let uid = run.uid().unwrap_or_default();
        let mut runs = self.runs();
        let Some(m) = runs.get_mut(&uid) else {
            return false;
        };
        match &m.written {
            Some(rv) if Some(rv) == run.metadata.resource_version.as_ref() => true,
            Some(_) => {
                m.written = None;
                false
            }
            None => false,
        }
    }

    /// Notes that the watch showed the run changed: a cause of its next reconcile.
    fn changed(&self, uid: &str) {
        self.runs()
            .entry(uid.to_string())
            .or_default()
            .noted
            .note(Wake::Changed);
    }

    /// What woke the run's reconcile starting now.
    fn trigger(&self, uid: &str) -> Wakes {
        let now = tokio::time::Instant::now();
        self.runs()
            .get_mut(uid)
            .map(|m| m.noted.take(now))
            .unwrap_or_default()
    }

    /// The run's reconcile asked to run again `after` (`None`: on a change only).
    fn requeued(&self, uid: &str, after: Option<Duration>, cause: Wake) {
        if let Some(m) = self.runs().get_mut(uid) {
            m.noted.requeued(after, cause, tokio::time::Instant::now());
        }
    }

    /// Writes `status` if it differs from the stored one, guarded by the resourceVersion the
    /// decision was made from.
    async fn write(&self, run: &HookRun, status: &HookRunStatus) -> Result<bool, Error> {
        if run.status.as_ref() == Some(status) {
            return Ok(false);
        }
        self.gate.check()?;
        let name = run.name_any();
        let api: Api<HookRun> =
            Api::namespaced(self.client.clone(), &run.namespace().unwrap_or_default());
        let rv = run.metadata.resource_version.clone().unwrap_or_default();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/status", "value": status},
        ]))
        .map_err(|e| Error::Status {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        self.status_writes.fetch_add(1, Ordering::Relaxed);
        api.patch_status(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .map_err(|e| Error::Status {
                name: name.clone(),
                reason: crate::describe(&e),
            })?;
        self.runs()
            .entry(run.uid().unwrap_or_default())
            .or_default()
            .written = Some(rv);
        Ok(true)
    }

    /// The completion event, once: only the write that completed the run sends it.
    async fn report(&self, run: &HookRun, status: &HookRunStatus) {
        let Some(phase) = status.phase.filter(HookPhase::is_completed) else {
            return;
        };
        let (warning, reason) = match phase {
            HookPhase::Successful => (false, names::EVENT_HOOKRUN_SUCCESSFUL),
            _ => (true, names::EVENT_HOOKRUN_UNSUCCESSFUL),
        };
        let note = if status.message.is_empty() {
            format!("the run is {phase}")
        } else {
            format!("the run is {phase}: {}", status.message)
        };
        self.events
            .emit(&object_ref(run), warning, reason, &note)
            .await;
    }
}

/// The status of a run that names an object its kubernetes metrics may not reach (another
/// namespace, a Secret): Error before anything is measured, each such metric saying why. The
/// arguments are part of the spec, so the refusal holds for the generation.
fn refused(
    run: &HookRun,
    compiled: &CompiledRun,
    namespace: &str,
    now: Timestamp,
) -> Option<HookRunStatus> {
    let refusals: Vec<(usize, String)> = compiled
        .metrics
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let why = providers::confine(&m.call, namespace).err()?;
            Some((i, format!("metric {}: {why}", m.name)))
        })
        .collect();
    if refusals.is_empty() {
        return None;
    }
    let mut status = run.status.clone().unwrap_or_default();
    if !completed(Some(&status)) {
        status.phase = Some(HookPhase::Error);
        status.message = format!(
            "the run cannot start: {}",
            refusals
                .iter()
                .map(|(_, why)| why.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    // `decide` on a completed run aligns the metric results and sets the conditions.
    let stopped = HookRun {
        status: Some(status),
        ..run.clone()
    };
    let mut status = decide(&stopped, compiled, None, now).status;
    for (i, why) in refusals {
        if let Some(r) = status.metric_results.get_mut(i)
            && !r.phase.is_completed()
        {
            r.phase = HookPhase::Error;
            r.message = why;
        }
    }
    Some(status)
}

fn object_ref(run: &HookRun) -> ObjectReference {
    let mut r = run.object_ref(&());
    r.resource_version = None;
    r
}

fn completed(status: Option<&HookRunStatus>) -> bool {
    status
        .and_then(|s| s.phase)
        .is_some_and(|p| p.is_completed())
}

/// Writes the status of a run that cannot start (its spec, or what it would touch), sends the
/// `InvalidHookRun` event once, and forgets the run: nothing will be measured.
async fn end_invalid(
    ctx: &HookRunContext,
    run: &HookRun,
    status: &HookRunStatus,
    was_completed: bool,
) -> Result<Option<Duration>, Error> {
    if ctx.write(run, status).await? && !was_completed {
        ctx.events
            .emit(
                &object_ref(run),
                true,
                names::EVENT_HOOKRUN_INVALID,
                &status.message,
            )
            .await;
    }
    ctx.forget(&run.uid().unwrap_or_default());
    Ok(None)
}

/// One HookRun reconcile, in a `reconcile` span carrying the run's namespace and name and
/// what woke the reconcile (`trigger.rs`).
pub async fn reconcile(run: Arc<HookRun>, ctx: Arc<HookRunContext>) -> Result<Action, Error> {
    let uid = run.uid().unwrap_or_default();
    let trigger = ctx.trigger(&uid);
    let span = tracing::info_span!(
        "reconcile",
        namespace = %run.namespace().unwrap_or_default(),
        hookrun = %run.name_any(),
        %trigger,
    );
    let requeue_after = async {
        let result = reconcile_run(run, &ctx).await;
        if let Err(error @ Error::Status { .. }) = &result {
            tracing::debug!("{error}; retrying");
        }
        result
    }
    .instrument(span)
    .await?;
    ctx.requeued(&uid, requeue_after, Wake::Requeue);
    Ok(requeue_after.map_or_else(Action::await_change, Action::requeue))
}

/// [`reconcile`]'s work: when to run again (`None`: on a change only).
async fn reconcile_run(run: Arc<HookRun>, ctx: &HookRunContext) -> Result<Option<Duration>, Error> {
    let uid = run.uid().unwrap_or_default();
    if run.meta().deletion_timestamp.is_some() {
        ctx.forget(&uid);
        return Ok(None);
    }
    // A measurement may write (a kubernetes patch): only the leader measures.
    ctx.gate.check()?;
    if ctx.stale(&run) {
        // Our own write is on its way through the watch, which triggers the next reconcile.
        return Ok(None);
    }
    let was_completed = completed(run.status.as_ref());
    let compiled_arc = ctx.compiled(&run);
    let now = ctx.clock.now();
    let compiled = match compiled_arc.as_ref() {
        Ok(c) => c,
        Err(errors) => {
            let status = rejected(&run, errors, now);
            return end_invalid(ctx, &run, &status, was_completed).await;
        }
    };
    let namespace = run.namespace().unwrap_or_default();
    if let Some(status) = refused(&run, compiled, &namespace, now) {
        return end_invalid(ctx, &run, &status, was_completed).await;
    }
    let timeout = RunTimeout::of(&run.spec);
    let mut decision = decide(&run, compiled, timeout.as_ref(), now);
    if !decision.measure.is_empty() {
        let mut current = HookRun {
            status: Some(decision.status.clone()),
            ..(*run).clone()
        };
        let clock = &ctx.clock;
        let measuring = futures::future::join_all(decision.measure.iter().map(|m| async {
            let started_at = clock.now();
            let observation = ctx.measure.measure_for(&namespace, &m.call).await;
            Finished {
                metric: m.metric.clone(),
                started_at,
                finished_at: clock.now(),
                observation,
            }
        }));
        // The run's deadline cuts measurements in flight short: the run ends then, not when a
        // slow endpoint gives up.
        let deadline = timeout.and_then(|t| Some(decision.status.started_at.as_ref()?.0 + t.after));
        let finished = match deadline {
            Some(at) => {
                tokio::select! {
                    f = measuring => f,
                    () = tokio::time::sleep(until(at, now)) => Vec::new(),
                }
            }
            None => measuring.await,
        };
        ctx.measurements
            .fetch_add(finished.len() as u64, Ordering::Relaxed);
        for f in finished {
            current.status = Some(ctx.judge(&current, &compiled_arc, f).await);
        }
        decision = decide(&current, compiled, timeout.as_ref(), ctx.clock.now());
    }
    if ctx.write(&run, &decision.status).await? && !was_completed {
        ctx.report(&run, &decision.status).await;
    }
    if completed(Some(&decision.status)) {
        ctx.completed(&uid);
    }
    Ok(decision.requeue_at.map(|at| until(at, ctx.clock.now())))
}

/// `2s`, or `250ms` below a second.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The wait from `now` until `at` (none if it has passed).
fn until(at: Timestamp, now: Timestamp) -> Duration {
    at.duration_since(now).try_into().unwrap_or(Duration::ZERO)
}

fn error_policy(run: Arc<HookRun>, error: &Error, ctx: Arc<HookRunContext>) -> Action {
    match error {
        Error::NotLeader => Action::await_change(),
        Error::Status { .. } => {
            let uid = run.uid().unwrap_or_default();
            ctx.requeued(&uid, Some(RETRY_AFTER_FAILED_WRITE), Wake::Retry);
            Action::requeue(RETRY_AFTER_FAILED_WRITE)
        }
    }
}

/// Runs the HookRun controller until `shutdown` resolves.
pub async fn run(
    api: Api<Lenient<HookRun>>,
    ctx: Arc<HookRunContext>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let noting = ctx.clone();
    let (store, events) = reflect(lenient_watcher(api, watcher::Config::default()));
    let stream = events
        .inspect(move |event| match event {
            Ok(watcher::Event::Apply(run) | watcher::Event::InitApply(run)) => {
                noting.changed(&run.uid().unwrap_or_default())
            }
            Ok(watcher::Event::Delete(run)) => noting.forget(&run.uid().unwrap_or_default()),
            _ => {}
        })
        .default_backoff()
        .applied_objects();
    Controller::for_stream(stream, store)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HookRun controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Logged;

    /// A HookRun whose status write cannot reach the server logs that inside its reconcile's
    /// span, which names the run and what woke it.
    #[tokio::test]
    async fn a_line_logged_in_a_hookrun_reconcile_names_its_run_and_trigger() {
        let logged = Logged::default();
        let writer = logged.clone();
        let filter = tracing_subscriber::EnvFilter::new("debug");
        let _logging =
            tracing::subscriber::set_default(crate::logs::text(filter, move || writer.clone()));
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let gate = WriteGate::default();
        gate.open();
        let ctx = Arc::new(HookRunContext::new(
            client.clone(),
            Arc::new(gamedeploy_clock::SystemClock),
            Arc::new(providers::Providers::new(client.clone())),
            "test",
            gate,
            Arc::new(Metrics::default()),
        ));
        let run: HookRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
            "metadata": {"name": "check", "namespace": "games", "uid": "uid-check"},
            "spec": {"metrics": [{
                "name": "bad", "successCondition": "result ==",
                "provider": {"web": {"url": "http://game:8080/ready"}}
            }]}
        }))
        .unwrap();
        ctx.changed("uid-check");
        let result = reconcile(Arc::new(run), ctx).await;
        assert!(matches!(result, Err(Error::Status { .. })), "{result:?}");
        let lines = logged.lines();
        assert!(
            lines.iter().any(|l| l.contains("retrying")
                && l.contains("reconcile{namespace=games hookrun=check trigger=changed}:")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_due_instant_in_the_past_is_due_now() {
        let t: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        assert_eq!(until(t, t), Duration::ZERO);
        assert_eq!(
            until(t, "2026-01-01T00:00:12Z".parse().unwrap()),
            Duration::ZERO
        );
        assert_eq!(
            until(t, "2026-01-01T00:00:07.5Z".parse().unwrap()),
            Duration::from_millis(2500)
        );
    }
}
