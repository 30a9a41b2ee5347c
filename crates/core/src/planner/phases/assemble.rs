//! The last step of a plan: the phases' decisions put in the order the executor must follow,
//! each write with the events and failure handling the original gives it. It decides nothing
//! itself: every object it writes was chosen by a phase; it only orders them and says what a
//! failure means.

use std::collections::{BTreeMap, HashMap};

use super::super::canary::StepRun;
use super::super::effect::{
    ApiErrorKind, Effect, EventNote, HookRunToCreate, OnFailure, Regarding, Report, Write,
};
use super::super::hooks;
use super::super::plan::{Decisions, DeleteReason, Plan, PlanInput};
use super::super::pods::Owner;
use super::super::scale;
use crate::api::HookStep;
use crate::inplace::{Action, EventType, HookKind, HookRunRequest, PodView};
use crate::names;

/// The decisions put in the order the executor must follow (revisions before the pods that
/// reference them, each pod's checkpoint before what depends on it, the status last), each
/// write with the events and failure handling the original gives it.
pub fn into_plan(world: &PlanInput, views: &[&PodView], d: Decisions) -> Plan {
    let gd = world.gd;
    let gd_name = gd.metadata.name.clone().unwrap_or_default();
    let owner = Owner {
        name: gd_name.clone(),
        namespace: gd.metadata.namespace.clone().unwrap_or_default(),
        uid: gd.metadata.uid.clone().unwrap_or_default(),
    };
    // By name, built on the first lookup: a reconcile that acts on nothing builds nothing, and
    // one whose thousand machines act finds each pod at once instead of scanning them all.
    let by_name: std::cell::OnceCell<HashMap<&str, &PodView>> = std::cell::OnceCell::new();
    let view = |name: &str| {
        by_name
            .get_or_init(|| views.iter().map(|p| (p.name.as_str(), *p)).collect())
            .get(name)
            .copied()
    };
    let report = |condition, reason, prefix: String, event| {
        OnFailure::reported(Report {
            condition,
            reason,
            prefix,
            event,
        })
    };
    let mut effects = Vec::new();

    if let Some(revs) = &d.revisions {
        if let Some(rev) = &revs.create {
            let on_failure = report(
                names::CONDITION_FAILED_SCALE,
                names::EVENT_FAILED_CREATE_REVISION,
                format!("creating revision {}: ", revs.update),
                None,
            );
            effects.push(Effect::CreateRevision(Write::new(
                rev.clone(),
                on_failure.tolerating(ApiErrorKind::AlreadyExists),
            )));
        }
        for old in &revs.prune {
            let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
            effects.push(Effect::DeleteRevision(Write::new(old.clone(), on_failure)));
        }
    }

    // Creations in batches of 1, 2, 4, ...; the first failure stops the rest.
    let mut created = d.create.into_iter();
    for (batch, size) in scale::slow_start_batches(created.len())
        .into_iter()
        .enumerate()
    {
        for pod in created.by_ref().take(size) {
            let what = format!(
                "create Pod {} in GameDeployment {gd_name}",
                pod.metadata.name.as_deref().unwrap_or_default()
            );
            // Without the pod's random name: the failure reads the same on every attempt, so
            // an unchanged condition is not rewritten and the events form one series.
            let on_failure = report(
                names::CONDITION_FAILED_SCALE,
                names::EVENT_FAILED_CREATE,
                format!("create Pod in GameDeployment {gd_name} failed: "),
                Some(Regarding::GameDeployment),
            );
            let write = Write::new(pod, on_failure)
                .on_success(EventNote::normal(
                    names::EVENT_SUCCESSFUL_CREATE,
                    format!("{what} successful"),
                ))
                .gating(CHAIN_CREATE);
            effects.push(Effect::CreatePod { pod: write, batch });
        }
    }

    for (name, why) in d.delete {
        let Some(pod) = view(&name) else { continue };
        let (ok, failed, condition, detail) = match &why {
            DeleteReason::Recreate(why) => (
                names::EVENT_SUCCESSFUL_RECREATE,
                names::EVENT_FAILED_RECREATE,
                names::CONDITION_FAILED_UPDATE,
                format!(" to recreate it ({why})"),
            ),
            DeleteReason::Requested => (
                names::EVENT_SUCCESSFUL_DELETE,
                names::EVENT_FAILED_DELETE,
                names::CONDITION_FAILED_SCALE,
                " (scaleStrategy.podsToDelete)".into(),
            ),
            DeleteReason::ScaleDown => (
                names::EVENT_SUCCESSFUL_DELETE,
                names::EVENT_FAILED_DELETE,
                names::CONDITION_FAILED_SCALE,
                String::new(),
            ),
        };
        let what = format!("delete Pod {name}{detail}");
        let on_failure = report(
            condition,
            failed,
            format!("{what} failed: "),
            Some(Regarding::GameDeployment),
        );
        let write = Write::new(name, on_failure.tolerating(ApiErrorKind::NotFound))
            .on_success(EventNote::normal(ok, what));
        effects.push(Effect::DeletePod {
            pod: write,
            uid: pod.uid.clone(),
        });
    }

    for (name, outcome) in d.machines {
        let Some(pod) = view(&name) else { continue };
        // What follows a pod's checkpoint write depends on it: a failure stops the rest.
        let chain = format!("in-place/{name}");
        for action in outcome.actions {
            effects.push(match action {
                Action::WritePod(w) => {
                    let on_failure = report(
                        names::CONDITION_FAILED_UPDATE,
                        names::EVENT_FAILED_INPLACE,
                        format!("update Pod {name} in place failed: "),
                        Some(Regarding::GameDeployment),
                    );
                    Effect::WritePod {
                        pod: name.clone(),
                        write: Write::new(*w, on_failure.retrying_conflicts()).gating(&chain),
                    }
                }
                Action::CreateHookRun(req) => {
                    let run = hook_run(world, &owner, pod, &req);
                    let on_failure = report(
                        names::CONDITION_FAILED_UPDATE,
                        names::EVENT_FAILED_CREATE_PRE_INPLACE_HOOKRUN,
                        run.failure_prefix(),
                        Some(Regarding::Pod(name.clone())),
                    );
                    let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
                    Effect::CreateHookRun(write.in_chain(&chain))
                }
                Action::Event {
                    r#type,
                    reason,
                    message,
                } => Effect::Event {
                    note: EventNote {
                        regarding: Regarding::Pod(name.clone()),
                        warning: r#type == EventType::Warning,
                        reason,
                        message,
                    },
                    chain: Some(chain.clone()),
                },
            });
        }
    }

    for (name, w) in d.hot_patches {
        let what = format!("hot-patch Pod {name}");
        let on_failure = report(
            names::CONDITION_FAILED_UPDATE,
            names::EVENT_FAILED_HOTPATCH,
            format!("{what} failed: "),
            Some(Regarding::GameDeployment),
        );
        let write = Write::new(w, on_failure.retrying_conflicts()).on_success(EventNote::normal(
            names::EVENT_SUCCESSFUL_HOTPATCH,
            format!("{what} successful"),
        ));
        effects.push(Effect::WritePod { pod: name, write });
    }

    for (name, w) in d.release_gates {
        let on_failure = OnFailure::retried().tolerating(ApiErrorKind::NotFound);
        effects.push(Effect::WritePod {
            pod: name,
            write: Write::new(w, on_failure),
        });
    }

    // Pods waiting for their preDelete hook: marked as the original marks them, then the
    // HookRun the hook operator will run (not without the mark).
    for (name, create, mark) in d.pre_delete {
        let Some(pod) = view(&name) else { continue };
        let chain = format!("pre-delete/{name}");
        if let Some(w) = mark {
            effects.push(Effect::WritePod {
                pod: name.clone(),
                write: Write::new(w, OnFailure::retried()).gating(&chain),
            });
        }
        if let Some(req) = create {
            let run = hook_run(world, &owner, pod, &req);
            let on_failure = report(
                names::CONDITION_FAILED_SCALE,
                names::EVENT_FAILED_CREATE_PRE_DELETE_HOOKRUN,
                run.failure_prefix(),
                Some(Regarding::Pod(name.clone())),
            );
            let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
            effects.push(Effect::CreateHookRun(write.in_chain(&chain)));
        }
    }

    for (name, req) in d.post_hooks {
        let Some(pod) = view(&name) else { continue };
        let run = hook_run(world, &owner, pod, &req);
        let on_failure = report(
            names::CONDITION_FAILED_UPDATE,
            names::EVENT_FAILED_CREATE_POST_HOOKRUN,
            run.failure_prefix(),
            Some(Regarding::GameDeployment),
        );
        let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists)).on_success(
            EventNote::normal(
                names::EVENT_SUCCESSFUL_CREATE_POST_HOOKRUN,
                format!("create HookRun {} for Pod {name}", req.name),
            ),
        );
        effects.push(Effect::CreateHookRun(write));
    }

    if let Some(step) = &d.canary_run {
        let run = canary_hook_run(world, &owner, step);
        let on_failure = report(
            names::CONDITION_FAILED_UPDATE,
            names::EVENT_FAILED_CREATE_CANARY_HOOKRUN,
            run.failure_prefix(),
            Some(Regarding::GameDeployment),
        );
        let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
        effects.push(Effect::CreateHookRun(write));
    }

    for run in d.terminate_hook_runs {
        let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
        effects.push(Effect::TerminateHookRun(Write::new(run, on_failure)));
    }

    if d.pause_updates {
        let version = gd.metadata.resource_version.clone().unwrap_or_default();
        effects.push(Effect::PauseUpdates(Write::new(
            version,
            OnFailure::retried().retrying_conflicts(),
        )));
    }

    for run in d.stale_hook_runs {
        let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
        effects.push(Effect::DeleteHookRun(Write::new(run, on_failure)));
    }

    effects.extend(
        d.notes
            .into_iter()
            .map(|note| Effect::Event { note, chain: None }),
    );
    effects.push(Effect::WriteStatus(d.status));
    Plan {
        effects,
        requeue_at: d.requeue_at,
    }
}

/// The chain of this reconcile's pod creations (slow start: a failure stops the rest).
const CHAIN_CREATE: &str = "create-pods";

/// The HookRun `request` asks for on `pod`, built from its HookTemplate (read from the cache
/// before planning) with the arguments of the strategy that asked, or why it cannot be.
fn hook_run(
    world: &PlanInput,
    owner: &Owner,
    pod: &PodView,
    request: &HookRunRequest,
) -> HookRunToCreate {
    let spec = &world.gd.spec;
    let configured = match request.kind {
        HookKind::PreInplace => spec.pre_inplace_update_strategy.as_ref(),
        HookKind::PreDelete => spec.pre_delete_update_strategy.as_ref(),
        HookKind::PostInplace => spec.post_inplace_update_strategy.as_ref(),
        // Built by `canary_hook_run`, from its step.
        HookKind::CanaryStep => None,
    };
    let hook = configured.and_then(|s| s.hook.as_ref());
    let label = |key: &str| pod.labels.get(key).cloned().unwrap_or_default();
    let identity = hooks::pod_identity(
        &label(names::LABEL_REVISION),
        &label(names::LABEL_POD_INSTANCE_ID),
    );
    build_hook_run(world, owner, request, hook, identity)
}

/// The HookRun a canary hook step needs: the step's arguments, labelled with the step.
fn canary_hook_run(world: &PlanInput, owner: &Owner, step: &StepRun) -> HookRunToCreate {
    let request = HookRunRequest {
        name: step.name.clone(),
        template: step.hook.template_name.clone(),
        args: BTreeMap::new(),
        kind: HookKind::CanaryStep,
        retry_generation: None,
    };
    let identity = [
        (names::LABEL_HOOKRUN_REVISION, step.revision.clone()),
        (
            names::LABEL_HOOKRUN_CANARY_STEP_INDEX,
            step.index.to_string(),
        ),
        (names::LABEL_HOOKRUN_CANARY_STEP_HASH, step.hash.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    build_hook_run(world, owner, &request, Some(&step.hook), identity)
}

/// The HookRun for `request` from its HookTemplate, with `hook`'s arguments, or why it cannot
/// be built.
fn build_hook_run(
    world: &PlanInput,
    owner: &Owner,
    request: &HookRunRequest,
    hook: Option<&HookStep>,
    identity: BTreeMap<String, String>,
) -> HookRunToCreate {
    let unbuildable = |why: String| HookRunToCreate::Unbuildable {
        name: request.name.clone(),
        why,
    };
    let Some(template) = world.hook_templates.get(&request.template) else {
        return unbuildable(format!(
            "HookTemplate {} does not exist in namespace {}: create it, or fix \
             {}.hook.templateName",
            request.template,
            owner.namespace,
            hooks::strategy_field(request.kind)
        ));
    };
    let extra: BTreeMap<String, String> = hook
        .map(|h| {
            h.args
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    match hooks::build(owner, template, request, &extra, identity) {
        Ok(run) => HookRunToCreate::Ready(Box::new(run)),
        Err(e) => unbuildable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::plan::tests::{now, seed};

    #[test]
    fn a_missing_hook_template_is_an_unbuildable_run_that_says_what_to_fix() {
        let mut gd = seed();
        gd.metadata.namespace = Some("default".into());
        let world = PlanInput {
            gd: &gd,
            pods: &[],
            revisions: &[],
            hook_runs: &BTreeMap::new(),
            hook_templates: &BTreeMap::new(),
            node_costs: &BTreeMap::new(),
            now: now(),
        };
        let owner = Owner {
            name: "gd".into(),
            namespace: "default".into(),
            uid: "u".into(),
        };
        let request = HookRunRequest {
            name: "run".into(),
            template: "canary-check".into(),
            args: BTreeMap::new(),
            kind: HookKind::PreInplace,
            retry_generation: None,
        };
        let run = hook_run(&world, &owner, &PodView::default(), &request);
        let HookRunToCreate::Unbuildable { why, .. } = &run else {
            panic!("no template, no run");
        };
        assert_eq!(
            why,
            "HookTemplate canary-check does not exist in namespace default: create it, or fix \
             preInplaceUpdateStrategy.hook.templateName"
        );
        assert_eq!(run.failure_prefix(), "");
    }
}
