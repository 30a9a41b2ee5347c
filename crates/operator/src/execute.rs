//! Runs a plan's effects against the API server, in the planner's order, and reports what came
//! back. It decides nothing: what an outcome means (a retry, a condition, the rest of a chain
//! skipped) is [`gamedeploy_core::planner::rules::outcome`]'s to say.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};
use tracing::Instrument;

use crate::events::Events;
use crate::expectations::Expectations;
use crate::metrics::Metrics;
use crate::write_gate::WriteGate;
use gamedeploy_core::api::{HookRun, StoredGameDeployment};
use gamedeploy_core::inplace::PodWrite;
use gamedeploy_core::planner::model::{
    ApiErrorKind, CachedPod, ConditionReport, Effect, EventNote, HookRunToCreate, Plan, Regarding,
    Write,
};
use gamedeploy_core::planner::rules::outcome::{self, StatusWrite, WriteOutcome};

/// A write's result as [`outcome::judge`] takes it.
type Refusal = Result<(), (ApiErrorKind, String)>;

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
    /// The pods events may be about, by name. Their `ObjectReference`s are built only for the
    /// events actually sent: building 10,000 of them up front doubled a no-op reconcile.
    /// The index itself is built on the first lookup: a plan that writes no pod needs none.
    pods_by_name: std::sync::OnceLock<HashMap<&'a str, &'a CachedPod>>,
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
        self.pods_by_name
            .get_or_init(|| {
                self.all_pods
                    .iter()
                    .filter_map(|p| Some((p.meta().name.as_deref()?, p.as_ref())))
                    .collect()
            })
            .get(name)
            .copied()
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

    fn skipped(&self, chain: Option<&String>) -> bool {
        outcome::skipped(chain.map(String::as_str), &self.failed_chains)
    }

    /// Counts a write about to be sent, in the writes and the metrics.
    fn count(&mut self, verb: &'static str, resource: &'static str) {
        if resource.starts_with("pods") {
            self.writes.pods += 1;
        } else {
            self.writes.other += 1;
        }
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
            if !self.skipped(write.chain.as_ref()) {
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
            Effect::WritePod { pod, write } => self.write_pod(pod, write).await,
            Effect::CreateHookRun(w) if self.skipped(w.chain.as_ref()) => {}
            Effect::CreateHookRun(w) => match &w.object {
                HookRunToCreate::Ready(run) => {
                    let runs: Api<HookRun> = self.api();
                    let request = async { refusal(runs.create(&post, run).await) };
                    self.send(w, ("create", "hookruns"), request).await;
                }
                HookRunToCreate::Unbuildable { why, .. } => {
                    self.writes.other += 1;
                    self.settle(w, Err((ApiErrorKind::Other, why.clone())))
                        .await;
                }
            },
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
                if !self.skipped(chain.as_ref()) {
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

    /// Patches a pod or its status (a checkpoint of its in-place update, an image, a gate).
    async fn write_pod(&mut self, pod: &str, write: &Write<PodWrite>) {
        if self.skipped(write.chain.as_ref()) {
            return;
        }
        let resource = match write.object.endpoint {
            gamedeploy_core::inplace::Endpoint::Pod => "pods",
            gamedeploy_core::inplace::Endpoint::PodStatus => "pods/status",
            gamedeploy_core::inplace::Endpoint::PodResize => "pods/resize",
        };
        // Written over a version: the next reconcile waits until the cache moves past it,
        // instead of deciding this pod again from what it wrote over.
        let watched = self
            .pod(pod)
            .and_then(|p| Some((p.uid()?, write.object.precondition.clone()?)));
        let (io, owner, pods, now) = (self.io, self.owner_uid.clone(), self.pods.clone(), self.now);
        let request = async {
            if let Some((uid, over)) = &watched {
                io.expectations.updating(&owner, uid, over, now);
            }
            let r = send_pod_write(&pods, pod, &write.object).await;
            if let Some((uid, over)) = &watched {
                // A failed write, or one that changed nothing (no new version, no watch
                // event), leaves nothing to wait for.
                let new_version = r.as_ref().ok().and_then(|p| p.resource_version());
                if new_version.is_none_or(|v| &v == over) {
                    io.expectations.forget_update(&owner, uid);
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
            refusal(r)
        };
        self.send(write, ("patch", resource), request).await;
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
        // Read leniently: only the answer's resourceVersion is used, and a typed read of a
        // GameDeployment with deep managedFields fails (see `Lenient`).
        let gds: Api<StoredGameDeployment> = self.api();
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
        if written.resource_version() != over {
            self.status_over = over;
        }
        Ok(())
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
        pods_by_name: std::sync::OnceLock::new(),
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
    let mut effects = plan.effects.iter().peekable();
    while let Some(effect) = effects.next() {
        io.gate.check()?;
        if let Effect::CreatePod { pod, batch } = effect {
            // One slow-start batch is sent at once.
            let mut group = vec![pod];
            while let Some(Effect::CreatePod { pod, batch: b }) = effects.peek()
                && b == batch
            {
                group.push(pod);
                effects.next();
            }
            if !exec.skipped(pod.chain.as_ref()) {
                exec.create_pods(&group).await;
            }
            continue;
        }
        exec.run(effect).await?;
    }
    Ok((exec.writes, exec.status, exec.status_over))
}

/// Sends one pod write; the pod as the server stored it.
async fn send_pod_write(api: &Api<Pod>, name: &str, w: &PodWrite) -> Result<Pod, kube::Error> {
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
