//! Runs a plan's effects against the API server, in the planner's order, and reports what came
//! back. It decides nothing: what an outcome means (a retry, a condition, the rest of a chain
//! skipped) is [`gamedeploy_core::planner::rules::outcome`]'s to say.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};

use super::events::Events;
use super::expectations::Expectations;
use crate::leader::Gate;
use crate::metrics::Metrics;
use gamedeploy_core::api::{HookRun, StoredGameDeployment};
use gamedeploy_core::inplace::PodWrite;
use gamedeploy_core::planner::model::{
    ApiErrorKind, CachedPod, ConditionReport as Failure, Effect, EventNote, HookRunToCreate, Plan,
    Regarding, Write,
};
use gamedeploy_core::planner::rules::outcome::{self, StatusWrite, WriteOutcome as Verdict};

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

/// What every write of the operator passes through: the leadership gate, checked right before
/// each request is sent (so a reconcile in flight when the lease is lost sends nothing more),
/// and the metrics that count the writes.
#[derive(Clone, Copy)]
pub struct Edge<'a> {
    pub gate: &'a Gate,
    pub metrics: &'a Metrics,
}

/// The API handles and the record of one plan's execution.
struct Executor<'a> {
    client: &'a kube::Client,
    edge: Edge<'a>,
    events: &'a Events,
    gd: &'a StoredGameDeployment,
    gd_ref: ObjectReference,
    /// The pods events may be about, by name. Their `ObjectReference`s are built only for the
    /// events actually sent: building 10,000 of them up front doubled a no-op reconcile.
    /// The index itself is built on the first lookup: a plan that writes no pod needs none.
    pods_by_name: std::sync::OnceLock<HashMap<&'a str, &'a CachedPod>>,
    all_pods: &'a [Arc<CachedPod>],
    pods: Api<Pod>,
    ns: String,
    /// Creates, deletes and updates are recorded here before they are sent, so the next
    /// reconcile waits until the pod watch shows them (see `crates/operator/src/expectations.rs`).
    expectations: &'a Expectations,
    owner_uid: String,
    writes: Writes,
    failures: Vec<Failure>,
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
            self.events
                .emit(&r, note.warning, &note.reason, &note.message)
                .await;
        }
    }

    /// Acts on what [`outcome::judge`] made of a write's result.
    async fn settle<T>(&mut self, write: &Write<T>, result: Result<(), (ApiErrorKind, String)>) {
        let verdict = outcome::judge(write, result);
        if let Some(chain) = outcome::stopped_chain(write, &verdict) {
            self.failed_chains.insert(chain.to_string());
        }
        match verdict {
            Verdict::Succeeded(Some(note)) => self.emit(&note).await,
            Verdict::Succeeded(None) | Verdict::Quiet => {}
            Verdict::Logged(error) => tracing::warn!(%error, "a clean-up write failed"),
            Verdict::Retry(error) => {
                self.writes.failed += 1;
                tracing::debug!(%error, "a write failed; retrying soon");
            }
            Verdict::Failed(failure, event) => {
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

    /// Sends one slow-start batch of creations at once.
    async fn create_pods(&mut self, batch: &[&Write<Pod>]) {
        self.writes.pods += batch.len();
        let params = PostParams::default();
        for w in batch {
            let name = w.object.name_any();
            self.expectations.creating(&self.owner_uid, &name, self.now);
            self.edge.metrics.write_sent("create", "pods");
        }
        let results = join_all(batch.iter().map(|w| self.pods.create(&params, &w.object))).await;
        for (write, result) in batch.iter().zip(results) {
            let name = write.object.name_any();
            if result.is_err() {
                self.expectations.create_failed(&self.owner_uid, &name);
            }
            // The server's message names the random pod: written as kube writes a generated
            // name before its suffix, it reads the same on every attempt.
            let result = refusal(result).map_err(|(kind, m)| (kind, without_suffix(&m, &name)));
            // A failure stops the rest of the batch's reports as well as later batches.
            if !self.skipped(write.chain.as_ref()) {
                self.settle(*write, result).await;
            }
        }
    }

    async fn run(&mut self, effect: &Effect) -> Result<(), super::Error> {
        match effect {
            Effect::CreatePod { pod, .. } => self.create_pods(&[pod]).await,
            Effect::CreateRevision(w) => {
                self.writes.other += 1;
                self.edge
                    .metrics
                    .write_sent("create", "controllerrevisions");
                let revs: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &self.ns);
                let r = revs.create(&PostParams::default(), &w.object).await;
                self.settle(w, refusal(r)).await;
            }
            Effect::DeleteRevision(w) => {
                self.writes.other += 1;
                self.edge
                    .metrics
                    .write_sent("delete", "controllerrevisions");
                let revs: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &self.ns);
                let r = revs.delete(&w.object, &DeleteParams::default()).await;
                self.settle(w, refusal(r)).await;
            }
            Effect::DeletePod { pod, uid } => {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                self.writes.pods += 1;
                let pod_uid = uid.clone().unwrap_or_default();
                self.expectations
                    .deleting(&self.owner_uid, &pod_uid, self.now);
                self.edge.metrics.write_sent("delete", "pods");
                let r = self.pods.delete(&pod.object, &params).await;
                if r.is_err() {
                    self.expectations.delete_failed(&self.owner_uid, &pod_uid);
                }
                self.settle(pod, refusal(r)).await;
            }
            Effect::WritePod { pod, write } => {
                if self.skipped(write.chain.as_ref()) {
                    return Ok(());
                }
                self.writes.pods += 1;
                let resource = match write.object.endpoint {
                    gamedeploy_core::inplace::Endpoint::Pod => "pods",
                    gamedeploy_core::inplace::Endpoint::PodStatus => "pods/status",
                };
                self.edge.metrics.write_sent("patch", resource);
                // Written over a version: the next reconcile waits until the cache moves past
                // it, instead of deciding this pod again from what it wrote over.
                let watched = self
                    .pod(pod)
                    .and_then(|p| Some((p.uid()?, write.object.precondition.clone()?)));
                if let Some((uid, over)) = &watched {
                    self.expectations
                        .updating(&self.owner_uid, uid, over, self.now);
                }
                let r = write_pod(&self.pods, pod, &write.object).await;
                if let Some((uid, over)) = &watched {
                    // A failed write, or one that changed nothing (no new version, no watch
                    // event), leaves nothing to wait for.
                    let new_version = r.as_ref().ok().and_then(|p| p.resource_version());
                    if new_version.is_none_or(|v| &v == over) {
                        self.expectations.forget_update(&self.owner_uid, uid);
                    }
                }
                let r = r.map(|_| ());
                if r.is_ok()
                    && let Some(record) = &write.object.checkpoint
                    && record.state == gamedeploy_core::inplace::State::Ready
                {
                    self.edge.metrics.inplace_ready(record, self.now);
                }
                self.settle(write, refusal(r)).await;
            }
            Effect::CreateHookRun(w) => {
                if self.skipped(w.chain.as_ref()) {
                    return Ok(());
                }
                self.writes.other += 1;
                let r = match &w.object {
                    HookRunToCreate::Ready(run) => {
                        self.edge.metrics.write_sent("create", "hookruns");
                        let runs: Api<HookRun> = Api::namespaced(self.client.clone(), &self.ns);
                        refusal(runs.create(&PostParams::default(), run).await)
                    }
                    HookRunToCreate::Unbuildable { why, .. } => {
                        Err((ApiErrorKind::Other, why.clone()))
                    }
                };
                self.settle(w, r).await;
            }
            Effect::DeleteHookRun(w) => {
                self.writes.other += 1;
                self.edge.metrics.write_sent("delete", "hookruns");
                let runs: Api<HookRun> = Api::namespaced(self.client.clone(), &self.ns);
                let r = runs.delete(&w.object, &DeleteParams::default()).await;
                self.settle(w, refusal(r)).await;
            }
            Effect::TerminateHookRun(w) => {
                self.writes.other += 1;
                self.edge.metrics.write_sent("patch", "hookruns");
                let runs: Api<HookRun> = Api::namespaced(self.client.clone(), &self.ns);
                let body = serde_json::json!({ "spec": { "terminate": true } });
                let r = runs
                    .patch(&w.object, &PatchParams::default(), &Patch::Merge(&body))
                    .await;
                self.settle(w, refusal(r)).await;
            }
            Effect::PauseUpdates(w) => {
                self.writes.other += 1;
                self.edge.metrics.write_sent("patch", "gamedeployments");
                let gds: Api<StoredGameDeployment> = Api::namespaced(self.client.clone(), &self.ns);
                // Only over the version planned from: a resume the user wrote since stands.
                let patch = serde_json::from_value::<json_patch::Patch>(serde_json::json!([
                    {"op": "test", "path": "/metadata/resourceVersion", "value": w.object},
                    {"op": "add", "path": "/spec/updateStrategy/paused", "value": true},
                ]));
                let r = match patch {
                    Ok(patch) => refusal(
                        gds.patch(
                            &self.gd.name_any(),
                            &PatchParams::default(),
                            &Patch::Json::<()>(patch),
                        )
                        .await,
                    ),
                    Err(e) => Err((ApiErrorKind::Other, e.to_string())),
                };
                self.settle(w, r).await;
            }
            Effect::Event { note, chain } => {
                if !self.skipped(chain.as_ref()) {
                    self.emit(note).await;
                }
            }
            Effect::WriteStatus(planned) => {
                let previous = self.gd.status();
                let status = outcome::status_after(
                    previous
                        .map(|s| s.conditions.as_slice())
                        .unwrap_or_default(),
                    planned.clone(),
                    std::mem::take(&mut self.failures),
                    self.now,
                );
                self.status =
                    outcome::status_write(previous, &status, self.last_status_write, self.now);
                if self.status == StatusWrite::Now {
                    let name = self.gd.name_any();
                    // Read leniently: only the answer's resourceVersion is used, and a typed
                    // read of a GameDeployment with deep managedFields fails (see `Lenient`).
                    let gds: Api<StoredGameDeployment> =
                        Api::namespaced(self.client.clone(), &self.ns);
                    let body = serde_json::json!({
                        "status": merge_patch(
                            &serde_json::to_value(previous).unwrap_or_default(),
                            &serde_json::to_value(&status).unwrap_or_default(),
                        )
                    });
                    self.writes.other += 1;
                    self.edge
                        .metrics
                        .write_sent("patch", "gamedeployments/status");
                    let written = gds
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                        .await
                        .map_err(|source| super::Error::Status { name, source })?;
                    let over = self.gd.resource_version();
                    if written.resource_version() != over {
                        self.status_over = over;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs `plan`'s effects in order for `gd`, whose pods are `pods`; returns the writes made,
/// what became of the status (written now, unchanged, or coalesced until a later instant: see
/// `outcome::status_write`, given when the status was last written), and the version of `gd`
/// a status write replaced. Every decision was made
/// by the planner or by `outcome`'s pure functions: this only writes, and reports what came
/// back.
#[allow(clippy::too_many_arguments)]
pub async fn run_plan(
    client: &kube::Client,
    edge: Edge<'_>,
    events: &Events,
    expectations: &Expectations,
    gd: &StoredGameDeployment,
    pods: &[Arc<CachedPod>],
    plan: Plan,
    now: jiff::Timestamp,
    last_status_write: Option<jiff::Timestamp>,
) -> Result<(Writes, StatusWrite, Option<String>), super::Error> {
    let Some(ns) = gd.namespace() else {
        return Err(super::Error::Unnamed);
    };
    if gd.meta().name.is_none() {
        return Err(super::Error::Unnamed);
    }
    let mut exec = Executor {
        client,
        edge,
        events,
        gd,
        gd_ref: gd.object_ref(&()),
        pods_by_name: std::sync::OnceLock::new(),
        all_pods: pods,
        pods: Api::namespaced(client.clone(), &ns),
        ns,
        expectations,
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
        if !edge.gate.is_open() {
            return Err(super::Error::NotLeader);
        }
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
async fn write_pod(api: &Api<Pod>, name: &str, w: &PodWrite) -> Result<Pod, kube::Error> {
    let patch = Patch::Strategic(w.to_patch());
    let params = PatchParams::default();
    match w.endpoint {
        gamedeploy_core::inplace::Endpoint::Pod => api.patch(name, &params, &patch).await,
        gamedeploy_core::inplace::Endpoint::PodStatus => {
            api.patch_status(name, &params, &patch).await
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

/// A result as [`outcome::judge`] takes it.
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

fn refusal<T>(result: Result<T, kube::Error>) -> Result<(), (ApiErrorKind, String)> {
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
