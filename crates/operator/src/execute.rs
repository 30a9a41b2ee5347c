//! Executes a plan. Order matters for safety: revisions before the pods that reference them,
//! each pod's checkpoint write before the side effects that follow it (a HookRun, an event),
//! and status last, with whatever went wrong on the way added as conditions.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};

use super::describe;
use super::events::Events;
use super::expectations::Expectations;
use gamedeploy_core::api::{GameDeployment, HookRun, HookTemplate};
use gamedeploy_core::inplace::{Action, EventType, HookKind, HookRunRequest, PodWrite};
use gamedeploy_core::names;
use gamedeploy_core::planner::hooks;
use gamedeploy_core::planner::plan::{DeleteReason, Plan};
use gamedeploy_core::planner::pods::Owner;
use gamedeploy_core::planner::scale::slow_start_batches;
use gamedeploy_core::planner::status::{self, FAILED_SCALE, FAILED_UPDATE};

/// API writes made, for budgets and reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    pub pods: usize,
    pub other: usize,
    /// Writes that failed (conflicts included): nothing else may trigger the next reconcile,
    /// so the caller retries soon.
    pub failed: usize,
}

/// A failed write: the condition it raises, its reason and message.
type Failure = (&'static str, &'static str, String);

/// Where the outcome of each write goes: an event on the GameDeployment, and for a failure
/// also a status condition and a count that makes the caller retry soon.
struct Ledger<'a> {
    events: &'a Events,
    gd_ref: ObjectReference,
    writes: Writes,
    failures: Vec<Failure>,
}

impl Ledger<'_> {
    async fn succeeded(&self, reason: &str, message: &str) {
        self.events.emit(&self.gd_ref, false, reason, message).await;
    }

    /// A failure with a Warning event on the GameDeployment.
    async fn failed(&mut self, condition: &'static str, reason: &'static str, message: String) {
        self.events.emit(&self.gd_ref, true, reason, &message).await;
        self.record(condition, reason, message);
    }

    /// A failure whose event, if any, the caller emits.
    fn record(&mut self, condition: &'static str, reason: &'static str, message: String) {
        self.writes.failed += 1;
        self.failures.push((condition, reason, message));
    }
}

impl std::ops::AddAssign for Writes {
    fn add_assign(&mut self, other: Writes) {
        self.pods += other.pods;
        self.other += other.other;
        self.failed += other.failed;
    }
}

/// Runs `plan` for `gd`; returns the writes made. Each pod create and delete is recorded in
/// `expectations` before it is sent, and withdrawn if it fails.
pub async fn execute(
    client: &kube::Client,
    events: &Events,
    expectations: &Expectations,
    gd: &GameDeployment,
    pods: &[Arc<Pod>],
    plan: Plan,
    now: jiff::Timestamp,
) -> Result<Writes, super::Error> {
    let (Some(ns), Some(name)) = (gd.namespace(), gd.metadata.name.clone()) else {
        return Err(super::Error::Unnamed);
    };
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let uid = gd.uid().unwrap_or_default();
    let by_name: BTreeMap<String, &Pod> = pods.iter().map(|p| (p.name_any(), p.as_ref())).collect();
    let mut ledger = Ledger {
        events,
        gd_ref: gd.object_ref(&()),
        writes: Writes::default(),
        failures: Vec::new(),
    };

    // Revisions first: new pods reference them.
    if let Some(revs) = &plan.revisions {
        let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
        if let Some(rev) = &revs.create {
            ledger.writes.other += 1;
            if let Err(e) = api.create(&PostParams::default(), rev).await
                && !is_already_exists(&e)
            {
                ledger.record(
                    FAILED_SCALE,
                    "FailedCreateRevision",
                    format!("creating revision {}: {}", revs.update, describe(&e)),
                );
            }
        }
        for old in &revs.prune {
            ledger.writes.other += 1;
            if let Err(e) = api.delete(old, &DeleteParams::default()).await
                && !is_not_found(&e)
            {
                tracing::warn!(revision = %old, error = %describe(&e), "could not prune revision");
            }
        }
    }

    // Creations in batches of 1, 2, 4, ...; the first failure stops the rest.
    let mut created = plan.create.iter();
    'batches: for size in slow_start_batches(plan.create.len()) {
        let batch: Vec<&Pod> = created.by_ref().take(size).collect();
        ledger.writes.pods += batch.len();
        let params = PostParams::default();
        batch
            .iter()
            .for_each(|p| expectations.creating(&uid, &p.name_any(), now));
        let results = join_all(batch.iter().map(|p| pod_api.create(&params, p))).await;
        for (pod, r) in batch.iter().zip(&results) {
            if r.is_err() {
                expectations.create_failed(&uid, &pod.name_any());
            }
        }
        for (pod, r) in batch.iter().zip(results) {
            let pod_name = pod.name_any();
            match r {
                Ok(_) => {
                    let msg = format!("create Pod {pod_name} in GameDeployment {name} successful");
                    ledger.succeeded("SuccessfulCreate", &msg).await
                }
                Err(e) => {
                    // The same every attempt (the server's message names the random pod):
                    // an unchanged condition is not rewritten, and events repeat as a series.
                    let msg = format!(
                        "create Pod in GameDeployment {name} failed: {}",
                        without_suffix(&describe(&e), &pod_name)
                    );
                    ledger.failed(FAILED_SCALE, "FailedCreate", msg).await;
                    break 'batches;
                }
            }
        }
    }

    for (pod_name, why) in &plan.delete {
        let Some(pod) = by_name.get(pod_name) else {
            continue;
        };
        // The uid precondition makes sure a pod recreated under the same name is left alone.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        ledger.writes.pods += 1;
        let (ok_reason, fail_reason, detail) = match why {
            DeleteReason::Recreate(why) => (
                "SuccessfulUpdatePodReCreate",
                "FailedUpdatePodReCreate",
                format!(" to recreate it ({why})"),
            ),
            DeleteReason::Requested => (
                "SuccessfulDelete",
                "FailedDelete",
                " (scaleStrategy.podsToDelete)".into(),
            ),
            DeleteReason::ScaleDown => ("SuccessfulDelete", "FailedDelete", String::new()),
        };
        let condition = if matches!(why, DeleteReason::Recreate(_)) {
            FAILED_UPDATE
        } else {
            FAILED_SCALE
        };
        let what = format!("delete Pod {pod_name}{detail}");
        let pod_uid = pod.uid().unwrap_or_default();
        expectations.deleting(&uid, &pod_uid, now);
        let deleted = pod_api.delete(pod_name, &params).await;
        if deleted.is_err() {
            expectations.delete_failed(&uid, &pod_uid);
        }
        match deleted {
            Ok(_) => ledger.succeeded(ok_reason, &what).await,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                let msg = format!("{what} failed: {}", describe(&e));
                ledger.failed(condition, fail_reason, msg).await;
            }
        }
    }

    let owner = Owner {
        name: name.clone(),
        namespace: ns.clone(),
        uid: gd.uid().unwrap_or_default(),
    };
    for (pod_name, outcome) in &plan.machines {
        let Some(pod) = by_name.get(pod_name) else {
            continue;
        };
        let pod_ref = pod.object_ref(&());
        for action in &outcome.actions {
            match action {
                Action::WritePod(w) => {
                    ledger.writes.pods += 1;
                    if let Err(e) = write_pod(&pod_api, pod_name, w).await {
                        // Stop this pod's actions: what follows depends on the checkpoint.
                        // A 409 means the cache was stale; the watch brings the fresh pod.
                        if is_conflict(&e) {
                            ledger.writes.failed += 1;
                        } else {
                            let msg =
                                format!("update Pod {pod_name} in place failed: {}", describe(&e));
                            ledger
                                .failed(FAILED_UPDATE, "FailedUpdatePodInPlace", msg)
                                .await;
                        }
                        break;
                    }
                }
                Action::CreateHookRun(req) => {
                    ledger.writes.other += 1;
                    if let Err(msg) = create_hook_run(client, &owner, gd, pod, req).await {
                        events
                            .emit(&pod_ref, true, "FailedCreatePreInplaceHookRun", &msg)
                            .await;
                        ledger.record(FAILED_UPDATE, "FailedCreatePreInplaceHookRun", msg);
                    }
                }
                Action::Event {
                    r#type,
                    reason,
                    message,
                } => {
                    events
                        .emit(&pod_ref, *r#type == EventType::Warning, reason, message)
                        .await;
                }
            }
        }
    }

    for (pod_name, w) in &plan.hot_patches {
        ledger.writes.pods += 1;
        let what = format!("hot-patch Pod {pod_name}");
        match write_pod(&pod_api, pod_name, w).await {
            Ok(()) => {
                ledger
                    .succeeded("SuccessfulUpdatePodHotPatch", &format!("{what} successful"))
                    .await
            }
            Err(e) if is_conflict(&e) => ledger.writes.failed += 1,
            Err(e) => {
                let msg = format!("{what} failed: {}", describe(&e));
                ledger
                    .failed(FAILED_UPDATE, "FailedUpdatePodHotPatch", msg)
                    .await;
            }
        }
    }

    for (pod_name, w) in &plan.release_gates {
        ledger.writes.pods += 1;
        if let Err(e) = write_pod(&pod_api, pod_name, w).await
            && !is_not_found(&e)
        {
            ledger.writes.failed += 1;
            tracing::debug!(pod = %pod_name, error = %describe(&e), "could not set InPlaceUpdateReady");
        }
    }

    // Pods waiting for their preDelete hook: marked as the original marks them, then the
    // HookRun the hook operator will run.
    for (pod_name, create, mark) in &plan.pre_delete {
        let Some(pod) = by_name.get(pod_name) else {
            continue;
        };
        if let Some(w) = mark {
            ledger.writes.pods += 1;
            if let Err(e) = write_pod(&pod_api, pod_name, w).await {
                ledger.writes.failed += 1;
                tracing::debug!(pod = %pod_name, error = %describe(&e), "could not mark pod for deletion");
                continue;
            }
        }
        if let Some(req) = create {
            ledger.writes.other += 1;
            if let Err(msg) = create_hook_run(client, &owner, gd, pod, req).await {
                events
                    .emit(
                        &pod.object_ref(&()),
                        true,
                        "FailedCreatePreDeleteHookRun",
                        &msg,
                    )
                    .await;
                ledger.record(FAILED_SCALE, "FailedCreatePreDeleteHookRun", msg);
            }
        }
    }

    for (pod_name, req) in &plan.post_hooks {
        let Some(pod) = by_name.get(pod_name) else {
            continue;
        };
        ledger.writes.other += 1;
        match create_hook_run(client, &owner, gd, pod, req).await {
            Ok(()) => {
                ledger
                    .succeeded(
                        "SuccessfulCreatePostHookRun",
                        &format!("create HookRun {} for Pod {pod_name}", req.name),
                    )
                    .await
            }
            Err(msg) => {
                ledger
                    .failed(FAILED_UPDATE, "FailedCreatePostHookRun", msg)
                    .await
            }
        }
    }

    if !plan.stale_hook_runs.is_empty() {
        let runs: Api<HookRun> = Api::namespaced(client.clone(), &ns);
        for run in &plan.stale_hook_runs {
            ledger.writes.other += 1;
            if let Err(e) = runs.delete(run, &DeleteParams::default()).await
                && !is_not_found(&e)
            {
                tracing::warn!(hookrun = %run, error = %describe(&e), "could not delete a finished HookRun");
            }
        }
    }

    for note in &plan.notes {
        events
            .emit(&ledger.gd_ref, note.warning, note.reason, &note.message)
            .await;
    }

    // Status last, carrying what failed above. A failure that persists keeps its condition's
    // transition time, so a retry that fails the same way writes no status (and so does not
    // trigger itself through the watch).
    let Ledger {
        mut writes,
        failures,
        ..
    } = ledger;
    let mut status = plan.status;
    let previous = gd
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    for (condition, reason, message) in failures {
        match status.conditions.iter_mut().find(|c| c.type_ == condition) {
            Some(c) if c.message.split("; ").any(|m| m == message) => {}
            Some(c) => c.message = format!("{}; {message}", c.message),
            None => status.conditions.push(status::condition(
                previous, condition, "True", reason, message, now,
            )),
        }
    }
    if gd.status.as_ref() != Some(&status) {
        let api: Api<GameDeployment> = Api::namespaced(client.clone(), &ns);
        let body = serde_json::json!({ "status": status });
        writes.other += 1;
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(|source| super::Error::Status {
                name: name.clone(),
                source,
            })?;
    }
    Ok(writes)
}

async fn write_pod(api: &Api<Pod>, name: &str, w: &PodWrite) -> Result<(), kube::Error> {
    let patch = Patch::Strategic(w.to_patch());
    let params = PatchParams::default();
    match w.endpoint {
        gamedeploy_core::inplace::Endpoint::Pod => {
            api.patch(name, &params, &patch).await.map(|_| ())
        }
        gamedeploy_core::inplace::Endpoint::PodStatus => {
            api.patch_status(name, &params, &patch).await.map(|_| ())
        }
    }
}

async fn create_hook_run(
    client: &kube::Client,
    owner: &Owner,
    gd: &GameDeployment,
    pod: &Pod,
    req: &HookRunRequest,
) -> Result<(), String> {
    let templates: Api<HookTemplate> = Api::namespaced(client.clone(), &owner.namespace);
    let strategy = hooks::strategy_field(req.kind);
    let template = templates.get(&req.template).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => format!(
            "HookTemplate {} does not exist in namespace {}: create it, or fix \
             {strategy}.hook.templateName",
            req.template, owner.namespace
        ),
        other => format!(
            "HookTemplate {} cannot be read: {}",
            req.template,
            describe(&other)
        ),
    })?;
    let configured = match req.kind {
        HookKind::PreInplace => &gd.spec.pre_inplace_update_strategy,
        HookKind::PreDelete => &gd.spec.pre_delete_update_strategy,
        HookKind::PostInplace => &gd.spec.post_inplace_update_strategy,
    };
    let extra: BTreeMap<String, String> = configured
        .as_ref()
        .and_then(|s| s.hook.as_ref())
        .map(|h| {
            h.args
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let labels = pod.labels();
    let revision = labels
        .get(names::LABEL_REVISION)
        .cloned()
        .unwrap_or_default();
    let instance = labels
        .get(names::LABEL_INSTANCE_ID)
        .cloned()
        .unwrap_or_default();
    let run = hooks::build(owner, &template, req, &extra, &revision, &instance)
        .map_err(|e| e.to_string())?;
    let runs: Api<HookRun> = Api::namespaced(client.clone(), &owner.namespace);
    match runs.create(&PostParams::default(), &run).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(format!("creating HookRun {}: {}", req.name, describe(&e))),
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
            without_suffix(&describe(&e), name)
        };
        assert_eq!(said("gd-x-b4c5d"), said("gd-x-zz9q2"));
        assert_eq!(
            said("gd-x-b4c5d"),
            "Pod \"gd-x-\" is invalid: spec.containers[0].image: Required value"
        );
    }
}
