//! Runs a plan's effects against the API server, in the planner's order, and reports what came
//! back. It decides nothing: what an outcome means (a retry, a condition, the rest of a chain
//! skipped) is [`gamedeploy_core::planner::rules::outcome`]'s to say.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};
use tracing::Instrument;

mod lanes;

use crate::events::Events;
use crate::expectations::Expectations;
use crate::metrics::Metrics;
use crate::write_gate::WriteGate;
use crate::written::Written;
use gamedeploy_core::api::{HookRun, StoredGameDeployment};
use gamedeploy_core::inplace::PodWrite;
use gamedeploy_core::planner::model::{
    ApiErrorKind, CachedPod, ConditionReport, Effect, EventNote, HookRunToCreate, Plan, Regarding,
    Write, in_name_order, pod_by_name,
};
use gamedeploy_core::planner::rules::outcome::{self, StatusWrite, WriteOutcome};

use lanes::{Request, Segment, Step};

/// A write's result as [`outcome::judge`] takes it.
type Refusal = Result<(), (ApiErrorKind, String)>;

/// Writes of one plan in flight at once, at most. When a burst of pods turns Ready, one
/// reconcile writes the next ones; sent one after another, the last waits for every round trip
/// before it. Bounded so that one reconcile of a thousand writes does not take the API server's
/// share of mutating requests in flight (`--max-mutating-requests-inflight`, 200 by default,
/// shared by every client, kubelets included) nor open that many streams at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// How long the first unsettled write of a segment may wait for its answer before the writes
/// after it are sent too. A server that answers sooner sees the writes one after another, in
/// plan order, as before (the simulator's answers at once, so its runs are unchanged); a slower
/// one (any real API server: a round trip takes milliseconds) gets them at once.
const WINDOW_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// What the server answered to one write of a [`Segment`], judged, and settled later in plan
/// order.
struct Answer {
    /// Verb and resource of the request; `None` when nothing could be sent (an unbuildable
    /// HookRun).
    request: Option<(&'static str, &'static str)>,
    verdict: WriteOutcome,
    /// The chain the verdict stops.
    stops: Option<String>,
}

impl Answer {
    fn of<T>(
        write: &Write<T>,
        request: Option<(&'static str, &'static str)>,
        result: Refusal,
    ) -> Answer {
        let verdict = outcome::judge(write, result);
        let stops = outcome::stopped_chain(write, &verdict).map(str::to_string);
        Answer {
            request,
            verdict,
            stops,
        }
    }
}

/// API writes made, for budgets and reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    pub pods: usize,
    pub other: usize,
    /// Writes that failed (conflicts included): nothing else may trigger the next reconcile,
    /// so the caller retries soon.
    pub failed: usize,
}

impl std::ops::AddAssign for Writes {
    fn add_assign(&mut self, other: Writes) {
        self.pods += other.pods;
        self.other += other.other;
        self.failed += other.failed;
    }
}

/// What a reconcile writes through: the client; the leadership gate, checked right before each
/// request is sent (so a reconcile in flight when the lease is lost sends nothing more); the
/// metrics that count the writes; events; and the expectations that pod writes raise.
#[derive(Clone, Copy)]
pub struct Io<'a> {
    pub client: &'a kube::Client,
    pub gate: &'a WriteGate,
    pub metrics: &'a Metrics,
    pub events: &'a Events,
    /// Creates, deletes and updates are recorded here before they are sent, so the next
    /// reconcile waits until the pod watch shows them (see `expectations.rs`).
    pub expectations: &'a Expectations,
}

/// The API handles and the progress of one plan's execution.
struct Executor<'a> {
    io: Io<'a>,
    gd: &'a StoredGameDeployment,
    gd_ref: ObjectReference,
    /// The pods writes and events are about, in name order, to be found by halving (no map of
    /// every pod per reconcile). Their `ObjectReference`s are built only for the events
    /// actually sent: building 10,000 of them up front doubled a no-op reconcile. Gathered on
    /// the first lookup: a plan that writes no pod needs none.
    pods_in_order: std::sync::OnceLock<Vec<&'a CachedPod>>,
    all_pods: &'a [Arc<CachedPod>],
    pods: Api<Pod>,
    ns: String,
    owner_uid: String,
    writes: Writes,
    failures: Vec<ConditionReport>,
    failed_chains: BTreeSet<String>,
    now: jiff::Timestamp,
    /// When this operator last wrote the status, for coalescing (`outcome::status_write`).
    last_status_write: Option<jiff::Timestamp>,
    /// What became of the status.
    status: StatusWrite,
    /// The version a status write replaced, once the server answered with a newer one.
    status_over: Option<String>,
}

impl<'a> Executor<'a> {
    /// The cached pod named `name`.
    fn pod(&self, name: &str) -> Option<&'a CachedPod> {
        pod_by_name(
            self.pods_in_order
                .get_or_init(|| in_name_order(self.all_pods)),
            name,
        )
    }

    async fn emit(&self, note: &EventNote) {
        let regarding = match &note.regarding {
            Regarding::GameDeployment => Some(self.gd_ref.clone()),
            Regarding::Pod(name) => self.pod(name).map(|p| p.object_ref(&())),
        };
        if let Some(r) = regarding {
            self.io
                .events
                .emit(&r, note.warning, &note.reason, &note.message)
                .await;
        }
    }

    /// Acts on what [`outcome::judge`] made of a write's result.
    async fn settle<T>(&mut self, write: &Write<T>, result: Refusal) {
        let verdict = outcome::judge(write, result);
        if let Some(chain) = outcome::stopped_chain(write, &verdict) {
            self.failed_chains.insert(chain.to_string());
        }
        self.report(verdict).await;
    }

    /// Counts a write of a segment and acts on its answer, as [`Executor::settle`] does.
    async fn settle_answer(&mut self, answer: Answer) {
        self.tally(answer.request.map(|(_, resource)| resource));
        if let Some(chain) = answer.stops {
            self.failed_chains.insert(chain);
        }
        let span = match answer.request {
            Some((verb, resource)) => tracing::debug_span!("write", verb, resource),
            None => tracing::Span::none(),
        };
        self.report(answer.verdict).instrument(span).await;
    }

    /// The counts, events and failures of a write's verdict.
    async fn report(&mut self, verdict: WriteOutcome) {
        match verdict {
            WriteOutcome::Succeeded(Some(note)) => self.emit(&note).await,
            WriteOutcome::Succeeded(None) | WriteOutcome::Quiet => {}
            WriteOutcome::Logged(error) => tracing::warn!(%error, "a clean-up write failed"),
            WriteOutcome::Retry(error) => {
                self.writes.failed += 1;
                tracing::debug!(%error, "a write failed; retrying soon");
            }
            WriteOutcome::Failed(failure, event) => {
                self.writes.failed += 1;
                if let Some(note) = event {
                    self.emit(&note).await;
                }
                self.failures.push(failure);
            }
        }
    }

    fn skipped(&self, chain: Option<&str>) -> bool {
        outcome::skipped(chain, &self.failed_chains)
    }

    /// Counts a write to `resource` in the writes (`None`: one that could not be sent).
    fn tally(&mut self, resource: Option<&str>) {
        if resource.is_some_and(|r| r.starts_with("pods")) {
            self.writes.pods += 1;
        } else {
            self.writes.other += 1;
        }
    }

    /// Counts a write about to be sent, in the writes and the metrics.
    fn count(&mut self, verb: &'static str, resource: &'static str) {
        self.tally(Some(resource));
        self.io.metrics.write_sent(verb, resource);
    }

    /// One write: counted, sent by `request`, and settled by what came back.
    async fn send<T>(
        &mut self,
        write: &Write<T>,
        (verb, resource): (&'static str, &'static str),
        request: impl Future<Output = Refusal>,
    ) {
        self.count(verb, resource);
        let result = request.await;
        // Lines about the outcome name the request; the reconcile's span names the object.
        let span = tracing::debug_span!("write", verb, resource);
        self.settle(write, result).instrument(span).await;
    }

    /// An `Api` of `K` in the GameDeployment's namespace.
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.io.client.clone(), &self.ns)
    }

    /// Sends one slow-start batch of creations at once.
    async fn create_pods(&mut self, batch: &[&Write<Pod>]) {
        let params = PostParams::default();
        for w in batch {
            let name = w.object.name_any();
            self.io
                .expectations
                .creating(&self.owner_uid, &name, self.now);
            self.count("create", "pods");
        }
        let results = join_all(batch.iter().map(|w| self.pods.create(&params, &w.object))).await;
        for (write, result) in batch.iter().zip(results) {
            let name = write.object.name_any();
            if result.is_err() {
                self.io.expectations.create_failed(&self.owner_uid, &name);
            }
            // The server's message names the random pod: written as kube writes a generated
            // name before its suffix, it reads the same on every attempt.
            let result = refusal(result).map_err(|(kind, m)| (kind, without_suffix(&m, &name)));
            // A failure stops the rest of the batch's reports as well as later batches.
            if !self.skipped(write.chain.as_deref()) {
                let span = tracing::debug_span!("write", verb = "create", resource = "pods");
                self.settle(*write, result).instrument(span).await;
            }
        }
    }

    async fn run(&mut self, effect: &Effect) -> Result<(), super::Error> {
        let delete = DeleteParams::default();
        let post = PostParams::default();
        let patch = PatchParams::default();
        match effect {
            Effect::CreatePod { pod, .. } => self.create_pods(&[pod]).await,
            Effect::CreateRevision(w) => {
                let revs: Api<ControllerRevision> = self.api();
                let request = async { refusal(revs.create(&post, &w.object).await) };
                self.send(w, ("create", "controllerrevisions"), request)
                    .await;
            }
            Effect::DeleteRevision(w) => {
                let revs: Api<ControllerRevision> = self.api();
                let request = async { refusal(revs.delete(&w.object, &delete).await) };
                self.send(w, ("delete", "controllerrevisions"), request)
                    .await;
            }
            Effect::DeletePod { pod, uid } => self.delete_pod(pod, uid).await,
            // A write alone is a segment of one.
            Effect::WritePod { .. } => {
                self.run_segment(&Segment::starting(std::slice::from_ref(effect)))
                    .await?
            }
            Effect::CreateHookRun(w) if self.skipped(w.chain.as_deref()) => {}
            Effect::CreateHookRun(w) => {
                let answer = self.target().create_hook_run(w).await;
                self.settle_answer(answer).await;
            }
            Effect::DeleteHookRun(w) => {
                let runs: Api<HookRun> = self.api();
                let request = async { refusal(runs.delete(&w.object, &delete).await) };
                self.send(w, ("delete", "hookruns"), request).await;
            }
            Effect::TerminateHookRun(w) => {
                let runs: Api<HookRun> = self.api();
                let body = serde_json::json!({ "spec": { "terminate": true } });
                let request =
                    async { refusal(runs.patch(&w.object, &patch, &Patch::Merge(&body)).await) };
                self.send(w, ("patch", "hookruns"), request).await;
            }
            Effect::PauseUpdates(w) => {
                let gds: Api<StoredGameDeployment> = self.api();
                let name = self.gd.name_any();
                // Only over the version planned from: a resume the user wrote since stands.
                let body = serde_json::from_value::<json_patch::Patch>(serde_json::json!([
                    {"op": "test", "path": "/metadata/resourceVersion", "value": w.object},
                    {"op": "add", "path": "/spec/updateStrategy/paused", "value": true},
                ]));
                let request = async {
                    match body {
                        Ok(body) => {
                            refusal(gds.patch(&name, &patch, &Patch::Json::<()>(body)).await)
                        }
                        Err(e) => Err((ApiErrorKind::Other, e.to_string())),
                    }
                };
                self.send(w, ("patch", "gamedeployments"), request).await;
            }
            Effect::Event { note, chain } => {
                if !self.skipped(chain.as_deref()) {
                    self.emit(note).await;
                }
            }
            Effect::WriteStatus(planned) => self.write_status(planned).await?,
        }
        Ok(())
    }

    /// Deletes a pod, only the one with `uid` if known (not a namesake created since).
    async fn delete_pod(&mut self, pod: &Write<String>, uid: &Option<String>) {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let pod_uid = uid.clone().unwrap_or_default();
        let (io, owner, pods) = (self.io, self.owner_uid.clone(), self.pods.clone());
        io.expectations.deleting(&owner, &pod_uid, self.now);
        let request = async {
            let r = pods.delete(&pod.object, &params).await;
            if r.is_err() {
                io.expectations.delete_failed(&owner, &pod_uid);
            }
            refusal(r)
        };
        self.send(pod, ("delete", "pods"), request).await;
    }

    /// Where this plan's writes go, for requests in flight while answers are settled.
    fn target(&self) -> Target<'a> {
        Target {
            io: self.io,
            pods: self.api(),
            hook_runs: self.api(),
            owner_uid: self.owner_uid.clone(),
            now: self.now,
        }
    }

    /// The pod and version a pod write is written over, if it is: the next reconcile waits
    /// until the cache moves past it, instead of deciding this pod again from what it wrote
    /// over.
    fn watched(&self, request: &Request<'_>) -> Option<(String, String)> {
        let Request::Pod { pod, write } = request else {
            return None;
        };
        let uid = self.pod(pod)?.uid()?;
        Some((uid, write.object.precondition.clone()?))
    }

    /// Runs `segment` in plan order, except that once its first unsettled write has waited
    /// [`WINDOW_AFTER`] for its answer, the writes after it that depend on nothing unsettled
    /// (the first step of their lane from there) are sent too, up to [`MAX_IN_FLIGHT`] at
    /// once. Every step is settled in plan order, whatever order the answers come in: the
    /// counts, the failures the status reports and the events are the same on every run.
    ///
    /// Until the window opens, each write is awaited alone, polled exactly as a write awaited
    /// in place (the window's timer outside the task's cooperative budget): a server that
    /// answers at once, as the simulator's does on its paused clock, sees the same requests in
    /// the same order and the same interleaving with other clients as before writes went at
    /// once, so its runs are unchanged.
    async fn run_segment(&mut self, segment: &Segment<'_>) -> Result<(), super::Error> {
        let steps = &segment.steps;
        let target = self.target();
        // The step before each one in its lane.
        let mut before = vec![None; steps.len()];
        for lane in &segment.lanes {
            for pair in lane.windows(2) {
                before[pair[1]] = Some(pair[0]);
            }
        }
        let mut answers: Vec<Option<Answer>> = steps.iter().map(|_| None).collect();
        let mut sent = vec![false; steps.len()];
        let (mut alone, mut in_flight) = (None, FuturesUnordered::new());
        let mut window =
            std::pin::pin!(tokio::task::unconstrained(tokio::time::sleep(WINDOW_AFTER)));
        let mut open = false;
        // Steps before `head` are settled; those before `ahead`, settled, sent or events.
        let (mut head, mut ahead) = (0, 0);
        let result = 'run: loop {
            // Settles what it can, in order, and sends the first write not sent.
            while let Some(step) = steps.get(head) {
                let skipped = self.skipped(step.chain());
                match step {
                    _ if answers[head].is_some() => {
                        if let Some(answer) = answers[head].take() {
                            self.settle_answer(answer).await;
                        }
                    }
                    Step::Event { note, .. } if !skipped => self.emit(note).await,
                    Step::Write(_) if sent[head] => break,
                    Step::Write(request) if !skipped => {
                        if let Err(e) = self.io.gate.check() {
                            break 'run Err(e.into());
                        }
                        let watched = self.watched(request);
                        let write = Box::pin(target.send(head, *request, watched));
                        sent[head] = true;
                        if open {
                            in_flight.push(write);
                        } else {
                            alone = Some(write);
                            let timer = tokio::time::sleep(WINDOW_AFTER);
                            window.set(tokio::task::unconstrained(timer));
                        }
                        break;
                    }
                    _ => {}
                }
                head += 1;
            }
            if head == steps.len() {
                break Ok(());
            }
            if open {
                // Sent ahead: writes whose lane has nothing unsettled before them.
                ahead = ahead.max(head + 1);
                while steps
                    .get(ahead)
                    .is_some_and(|s| sent[ahead] || matches!(s, Step::Event { .. }))
                {
                    ahead += 1;
                }
                for i in ahead..steps.len() {
                    if in_flight.len() >= MAX_IN_FLIGHT {
                        break;
                    }
                    let Step::Write(request) = &steps[i] else {
                        continue;
                    };
                    let free = before[i].is_none_or(|b| b < head);
                    if sent[i] || !free || self.skipped(steps[i].chain()) {
                        continue;
                    }
                    if let Err(e) = self.io.gate.check() {
                        break 'run Err(e.into());
                    }
                    let watched = self.watched(request);
                    in_flight.push(Box::pin(target.send(i, *request, watched)));
                    sent[i] = true;
                }
            }
            let answered = match alone.take() {
                Some(mut write) => {
                    // The timer is set from the write's second poll: one that answers once the
                    // client has handed it over (an in-process server) never sets it, and so
                    // never moves a paused clock.
                    let mut polls = 0;
                    let answered = std::future::poll_fn(|cx| {
                        if let Poll::Ready(answer) = write.as_mut().poll(cx) {
                            return Poll::Ready(Some(answer));
                        }
                        polls += 1;
                        if polls < 2 {
                            return Poll::Pending;
                        }
                        window.as_mut().poll(cx).map(|()| None)
                    })
                    .await;
                    if answered.is_none() {
                        open = true;
                        in_flight.push(write);
                    }
                    answered
                }
                None => in_flight.next().await,
            };
            if let Some((i, answer)) = answered {
                answers[i] = Some(answer);
            }
        };
        // Stopped by a closed gate: what is in flight still answers, and nothing more is sent.
        if let Some(write) = alone {
            in_flight.push(write);
        }
        while in_flight.next().await.is_some() {}
        result
    }
    /// The status after the plan's writes (their failures as conditions), written now, held
    /// back to coalesce it with what follows, or left as it is (`outcome::status_write`).
    async fn write_status(
        &mut self,
        planned: &gamedeploy_core::api::GameDeploymentStatus,
    ) -> Result<(), super::Error> {
        let previous = self.gd.status();
        let status = outcome::status_after(
            previous
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            planned.clone(),
            std::mem::take(&mut self.failures),
            self.now,
        );
        self.status = outcome::status_write(previous, &status, self.last_status_write, self.now);
        if self.status != StatusWrite::Now {
            return Ok(());
        }
        let name = self.gd.name_any();
        // Only the answer's resourceVersion is read ([`Written`]).
        let gds: Api<Written<StoredGameDeployment>> = self.api();
        let body = serde_json::json!({
            "status": merge_patch(
                &serde_json::to_value(previous).unwrap_or_default(),
                &serde_json::to_value(&status).unwrap_or_default(),
            )
        });
        self.count("patch", "gamedeployments/status");
        let written = gds
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|source| super::Error::Status { name, source })?;
        let over = self.gd.resource_version();
        if written.version() != over.as_deref() {
            self.status_over = over;
        }
        Ok(())
    }
}

/// Where a plan's writes go, owned: writes are in flight while the executor settles the answers
/// of others.
struct Target<'a> {
    io: Io<'a>,
    /// Only the answers' resourceVersion is read ([`Written`]).
    pods: Api<Written<Pod>>,
    hook_runs: Api<HookRun>,
    owner_uid: String,
    now: jiff::Timestamp,
}

impl Target<'_> {
    /// Sends the `index`-th step of a segment; `watched` as [`Executor::watched`] says.
    async fn send(
        &self,
        index: usize,
        request: Request<'_>,
        watched: Option<(String, String)>,
    ) -> (usize, Answer) {
        let answer = match request {
            Request::Pod { pod, write } => self.write_pod(pod, write, watched).await,
            Request::HookRun(w) => self.create_hook_run(w).await,
        };
        (index, answer)
    }

    /// Creates a HookRun, or reports why it cannot be built (counted as a write, sending
    /// nothing).
    async fn create_hook_run(&self, w: &Write<HookRunToCreate>) -> Answer {
        match &w.object {
            HookRunToCreate::Ready(run) => {
                self.io.metrics.write_sent("create", "hookruns");
                let result = refusal(self.hook_runs.create(&PostParams::default(), run).await);
                Answer::of(w, Some(("create", "hookruns")), result)
            }
            HookRunToCreate::Unbuildable { why, .. } => {
                Answer::of(w, None, Err((ApiErrorKind::Other, why.clone())))
            }
        }
    }

    /// Patches a pod or its status (a checkpoint of its in-place update, an image, a gate).
    async fn write_pod(
        &self,
        pod: &str,
        write: &Write<PodWrite>,
        watched: Option<(String, String)>,
    ) -> Answer {
        let resource = match write.object.endpoint {
            gamedeploy_core::inplace::Endpoint::Pod => "pods",
            gamedeploy_core::inplace::Endpoint::PodStatus => "pods/status",
            gamedeploy_core::inplace::Endpoint::PodResize => "pods/resize",
        };
        let (io, owner, now) = (self.io, &self.owner_uid, self.now);
        if let Some((uid, over)) = &watched {
            io.expectations.updating(owner, uid, over, now);
        }
        io.metrics.write_sent("patch", resource);
        let r = send_pod_write(&self.pods, pod, &write.object).await;
        if let Some((uid, over)) = &watched {
            // A failed write, or one that changed nothing (no new version, no watch
            // event), leaves nothing to wait for.
            let new_version = r.as_ref().ok().and_then(Written::version);
            if new_version.is_none_or(|v| v == over) {
                io.expectations.forget_update(owner, uid);
            }
        }
        if r.is_ok()
            && let Some(checkpoint) = &write.object.checkpoint
        {
            if checkpoint.state == gamedeploy_core::inplace::State::Ready {
                io.metrics.inplace_ready(checkpoint, now);
            }
            io.metrics
                .resize_written(checkpoint, write.object.resized, now);
        }
        Answer::of(write, Some(("patch", resource)), refusal(r))
    }
}

/// Runs `plan`'s effects in order for `gd`, whose pods are `pods`, through `io`; returns the
/// writes made, what became of the status (written now, unchanged, or coalesced until a later
/// instant: see `outcome::status_write`, given when the status was last written), and the
/// version of `gd` a status write replaced. Every decision was made by the planner or by
/// `outcome`'s pure functions: this only writes, and reports what came back.
pub async fn run_plan(
    io: Io<'_>,
    gd: &StoredGameDeployment,
    pods: &[Arc<CachedPod>],
    plan: Plan,
    now: jiff::Timestamp,
    last_status_write: Option<jiff::Timestamp>,
) -> Result<(Writes, StatusWrite, Option<String>), super::Error> {
    let (Some(ns), Some(_)) = (gd.namespace(), gd.meta().name.as_ref()) else {
        return Err(super::Error::Unnamed);
    };
    let mut exec = Executor {
        io,
        gd,
        gd_ref: gd.object_ref(&()),
        pods_in_order: std::sync::OnceLock::new(),
        all_pods: pods,
        pods: Api::namespaced(io.client.clone(), &ns),
        ns,
        owner_uid: gd.uid().unwrap_or_default(),
        writes: Writes::default(),
        failures: Vec::new(),
        failed_chains: BTreeSet::new(),
        now,
        last_status_write,
        status: StatusWrite::Unchanged,
        status_over: None,
    };
    let mut rest = plan.effects.as_slice();
    while let Some(effect) = rest.first() {
        io.gate.check()?;
        // The pod writes that follow, with their chains' HookRuns and events, go at once.
        let segment = Segment::starting(rest);
        if !segment.steps.is_empty() {
            exec.run_segment(&segment).await?;
            rest = &rest[segment.steps.len()..];
            continue;
        }
        if let Effect::CreatePod { pod, batch } = effect {
            // One slow-start batch is sent at once.
            let size = rest
                .iter()
                .take_while(|e| matches!(e, Effect::CreatePod { batch: b, .. } if b == batch))
                .count();
            let group: Vec<&Write<Pod>> = rest[..size]
                .iter()
                .filter_map(|e| match e {
                    Effect::CreatePod { pod, .. } => Some(pod),
                    _ => None,
                })
                .collect();
            if !exec.skipped(pod.chain.as_deref()) {
                exec.create_pods(&group).await;
            }
            rest = &rest[size..];
            continue;
        }
        exec.run(effect).await?;
        rest = &rest[1..];
    }
    Ok((exec.writes, exec.status, exec.status_over))
}

/// Sends one pod write; the pod's new resourceVersion.
async fn send_pod_write(
    api: &Api<Written<Pod>>,
    name: &str,
    w: &PodWrite,
) -> Result<Written<Pod>, kube::Error> {
    let patch = Patch::Strategic(w.to_patch());
    let params = PatchParams::default();
    match w.endpoint {
        gamedeploy_core::inplace::Endpoint::Pod => api.patch(name, &params, &patch).await,
        gamedeploy_core::inplace::Endpoint::PodStatus => {
            api.patch_status(name, &params, &patch).await
        }
        gamedeploy_core::inplace::Endpoint::PodResize => {
            api.patch_subresource("resize", name, &params, &patch).await
        }
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    api_code(e) == Some(409)
}

pub(super) fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: what `new` leaves out (an
/// emptied list, a cleared field, which the status omits rather than writes empty) is written
/// as `null`, or a merge patch would keep the old value for ever.
fn merge_patch(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch: serde_json::Map<String, Value> = new
                .iter()
                .map(|(k, v)| {
                    let v = match old.get(k) {
                        Some(o) => merge_patch(o, v),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect();
            for k in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        (_, new) => new.clone(),
    }
}

/// A result as [`outcome::judge`] takes it.
fn refusal<T>(result: Result<T, kube::Error>) -> Refusal {
    result
        .map(|_| ())
        .map_err(|e| (error_kind(&e), super::describe(&e)))
}

/// The kind of an API error, for [`outcome::judge`].
fn error_kind(e: &kube::Error) -> ApiErrorKind {
    if is_already_exists(e) {
        ApiErrorKind::AlreadyExists
    } else if is_conflict(e) {
        ApiErrorKind::Conflict
    } else if is_not_found(e) {
        ApiErrorKind::NotFound
    } else {
        ApiErrorKind::Other
    }
}

/// `message` with the generated pod name `name` written as kube's generated names are before
/// the suffix (`Pod "test-gamedeployment-" is invalid`), so it reads the same every attempt.
fn without_suffix(message: &str, name: &str) -> String {
    match name.rsplit_once('-') {
        Some((base, _)) if !base.is_empty() => message.replace(name, &format!("{base}-")),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_clears_what_the_new_status_leaves_out() {
        let old = serde_json::json!({
            "replicas": 8,
            "pauseConditions": [{"reason": "PausedByCanaryPauseStep"}],
            "canary": {"revision": "r1", "currentStepHookRun": "canary-r2-1-check"},
        });
        let new = serde_json::json!({"replicas": 8, "canary": {"revision": "r2"}});
        let patch = merge_patch(&old, &new);
        assert_eq!(
            patch,
            serde_json::json!({
                "replicas": 8,
                "pauseConditions": null,
                "canary": {"revision": "r2", "currentStepHookRun": null},
            })
        );
        let mut applied = old.clone();
        json_patch::merge(&mut applied, &patch);
        assert_eq!(applied, new);
    }

    #[test]
    fn a_failed_create_reads_the_same_whatever_the_pod_was_called() {
        let said = |name: &str| {
            let e = kube::Error::Api(
                kube::core::Status::failure(
                    &format!("Pod \"{name}\" is invalid: spec.containers[0].image: Required value"),
                    "Invalid",
                )
                .with_code(422)
                .boxed(),
            );
            without_suffix(&super::super::describe(&e), name)
        };
        assert_eq!(said("gd-x-b4c5d"), said("gd-x-zz9q2"));
        assert_eq!(
            said("gd-x-b4c5d"),
            "Pod \"gd-x-\" is invalid: spec.containers[0].image: Required value"
        );
    }
}
