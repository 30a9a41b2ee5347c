//! Executes a plan. Order matters for safety: revisions before the pods that reference them,
//! each pod's checkpoint write before the side effects that follow it (a HookRun, an event),
//! and status last, with whatever went wrong on the way added as conditions.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};

use super::events::Events;
use crate::api::{GameDeployment, GameDeploymentCondition, HookRun, HookTemplate};
use crate::controller::hooks;
use crate::controller::plan::{DeleteReason, Plan};
use crate::controller::pods::Owner;
use crate::controller::scale::slow_start_batches;
use crate::controller::status::{FAILED_SCALE, FAILED_UPDATE};
use crate::inplace::{Action, EventType, HookRunRequest, PodWrite};
use crate::names;

/// API writes made, for budgets and reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    pub pods: usize,
    pub other: usize,
    /// Writes that failed (conflicts included): nothing else may trigger the next reconcile,
    /// so the caller retries soon.
    pub failed: usize,
}

/// Runs `plan` for `gd`; returns the writes made.
pub async fn execute(
    client: &kube::Client,
    events: &Events,
    gd: &GameDeployment,
    pods: &[Arc<Pod>],
    plan: Plan,
    now: jiff::Timestamp,
) -> Result<Writes, super::Error> {
    let (Some(ns), Some(name)) = (gd.namespace(), gd.metadata.name.clone()) else {
        return Err(super::Error::Unnamed);
    };
    let gd_ref = gd.object_ref(&());
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let by_name: BTreeMap<String, &Pod> = pods.iter().map(|p| (p.name_any(), p.as_ref())).collect();
    let mut writes = Writes::default();
    let mut failures: Vec<(&'static str, &'static str, String)> = Vec::new();

    // Revisions first: new pods reference them.
    if let Some(revs) = &plan.revisions {
        let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
        if let Some(rev) = &revs.create {
            writes.other += 1;
            if let Err(e) = api.create(&PostParams::default(), rev).await
                && !is_already_exists(&e)
            {
                writes.failed += 1;
                failures.push((
                    FAILED_SCALE,
                    "FailedCreateRevision",
                    format!("creating revision {}: {e}", revs.update),
                ));
            }
        }
        for old in &revs.prune {
            writes.other += 1;
            if let Err(e) = api.delete(old, &DeleteParams::default()).await
                && !is_not_found(&e)
            {
                tracing::warn!(revision = %old, error = %e, "could not prune revision");
            }
        }
    }

    // Creations in batches of 1, 2, 4, ...; the first failure stops the rest.
    let mut created = plan.create.iter();
    'batches: for size in slow_start_batches(plan.create.len()) {
        let batch: Vec<&Pod> = created.by_ref().take(size).collect();
        writes.pods += batch.len();
        let params = PostParams::default();
        let results = join_all(batch.iter().map(|p| pod_api.create(&params, p))).await;
        for (pod, r) in batch.iter().zip(results) {
            let pod_name = pod.name_any();
            match r {
                Ok(_) => {
                    events
                        .emit(
                            &gd_ref,
                            false,
                            "SuccessfulCreate",
                            &format!("create Pod {pod_name} in GameDeployment {name} successful"),
                        )
                        .await
                }
                Err(e) => {
                    writes.failed += 1;
                    let msg = format!("create Pod {pod_name} in GameDeployment {name} failed: {e}");
                    events.emit(&gd_ref, true, "FailedCreate", &msg).await;
                    failures.push((FAILED_SCALE, "FailedCreate", msg));
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
        writes.pods += 1;
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
        match pod_api.delete(pod_name, &params).await {
            Ok(_) => {
                events
                    .emit(
                        &gd_ref,
                        false,
                        ok_reason,
                        &format!("delete Pod {pod_name}{detail}"),
                    )
                    .await
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                writes.failed += 1;
                let msg = format!("delete Pod {pod_name}{detail} failed: {e}");
                events.emit(&gd_ref, true, fail_reason, &msg).await;
                let condition = if matches!(why, DeleteReason::Recreate(_)) {
                    FAILED_UPDATE
                } else {
                    FAILED_SCALE
                };
                failures.push((condition, fail_reason, msg));
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
        let pod_ref = pod_reference(pod);
        for action in &outcome.actions {
            match action {
                Action::WritePod(w) => {
                    writes.pods += 1;
                    if let Err(e) = write_pod(&pod_api, pod_name, w).await {
                        writes.failed += 1;
                        // Stop this pod's actions: what follows depends on the checkpoint.
                        // A 409 means the cache was stale; the watch brings the fresh pod.
                        if !is_conflict(&e) {
                            failures.push((
                                FAILED_UPDATE,
                                "FailedUpdatePodInPlace",
                                format!("pod {pod_name}: {e}"),
                            ));
                            events
                                .emit(
                                    &gd_ref,
                                    true,
                                    "FailedUpdatePodInPlace",
                                    &format!("update Pod {pod_name} in place failed: {e}"),
                                )
                                .await;
                        }
                        break;
                    }
                }
                Action::CreateHookRun(req) => {
                    writes.other += 1;
                    if let Err(msg) = create_hook_run(client, &owner, gd, pod, req).await {
                        writes.failed += 1;
                        events
                            .emit(&pod_ref, true, "FailedCreatePreInplaceHookRun", &msg)
                            .await;
                        failures.push((FAILED_UPDATE, "FailedCreatePreInplaceHookRun", msg));
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
        writes.pods += 1;
        match write_pod(&pod_api, pod_name, w).await {
            Ok(()) => {
                events
                    .emit(
                        &gd_ref,
                        false,
                        "SuccessfulUpdatePodHotPatch",
                        &format!("hot-patch Pod {pod_name} successful"),
                    )
                    .await
            }
            Err(e) if is_conflict(&e) => writes.failed += 1,
            Err(e) => {
                writes.failed += 1;
                let msg = format!("hot-patch Pod {pod_name} failed: {e}");
                events
                    .emit(&gd_ref, true, "FailedUpdatePodHotPatch", &msg)
                    .await;
                failures.push((FAILED_UPDATE, "FailedUpdatePodHotPatch", msg));
            }
        }
    }

    for (pod_name, w) in &plan.release_gates {
        writes.pods += 1;
        if let Err(e) = write_pod(&pod_api, pod_name, w).await
            && !is_not_found(&e)
        {
            writes.failed += 1;
            tracing::debug!(pod = %pod_name, error = %e, "could not set InPlaceUpdateReady");
        }
    }

    for note in &plan.notes {
        events
            .emit(&gd_ref, note.warning, note.reason, &note.message)
            .await;
    }

    // Status last, carrying what failed above.
    let mut status = plan.status;
    for (condition, reason, message) in failures {
        match status.conditions.iter_mut().find(|c| c.type_ == condition) {
            Some(c) => c.message = format!("{}; {message}", c.message),
            None => status.conditions.push(GameDeploymentCondition {
                type_: condition.to_string(),
                status: "True".into(),
                last_transition_time: Some(Time(now)),
                reason: reason.to_string(),
                message,
            }),
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
        crate::inplace::Endpoint::Pod => api.patch(name, &params, &patch).await.map(|_| ()),
        crate::inplace::Endpoint::PodStatus => {
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
    let template = templates.get(&req.template).await.map_err(|e| {
        format!(
            "preInplaceUpdateStrategy HookTemplate {} cannot be read: {e}",
            req.template
        )
    })?;
    let extra: BTreeMap<String, String> = gd
        .spec
        .pre_inplace_update_strategy
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
        Err(e) => Err(format!("creating HookRun {}: {e}", req.name)),
    }
}

fn pod_reference(pod: &Pod) -> ObjectReference {
    pod.object_ref(&())
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

fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}
