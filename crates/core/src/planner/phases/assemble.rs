//! The last step of a plan: the phases' decisions put in the order the executor must follow,
//! each write with the events and failure handling the original gives it. It decides nothing
//! itself: every object it writes was chosen by a phase; it only orders them and says what a
//! failure means.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::api::{GameDeploymentStatus, HookStep};
use crate::inplace::{Action, EventType, HookKind, HookRunRequest, MachineStep, PodView, PodWrite};
use crate::names;
use crate::planner::model::{
    ApiErrorKind, Decisions, DeleteReason, Effect, EventNote, HookRunToCreate, OnFailure, Owner,
    Plan, PlanInput, Regarding, Report, RevisionPlan, StepRun, Write, find_by_name,
};
use crate::planner::rules::{hookruns, replicas};

/// The decisions put in the order the executor must follow (revisions before the pods that
/// reference them, each pod's checkpoint before what depends on it, the status last): one
/// function per kind of decision, in that order. Every field is named, so a decision nobody
/// assembles does not compile.
pub fn into_plan(world: &PlanInput, views: &[&PodView], d: Decisions) -> Plan {
    let Decisions {
        revisions,
        create,
        delete,
        machines,
        hot_patches,
        release_gates,
        pre_delete,
        post_hooks,
        stale_hook_runs,
        canary_run,
        terminate_hook_runs,
        pause_updates,
        notes,
        status,
        requeue_at,
    } = d;
    let mut a = Assembly::new(world, views);
    a.revisions(revisions);
    a.create_pods(create);
    a.delete_pods(delete);
    a.machines(machines);
    a.hot_patches(hot_patches);
    a.release_gates(release_gates);
    a.pre_delete_hooks(pre_delete);
    a.post_inplace_hooks(post_hooks);
    a.canary_hook_run(canary_run);
    a.terminate_hook_runs(terminate_hook_runs);
    a.pause_updates(pause_updates);
    a.delete_hook_runs(stale_hook_runs);
    a.events(notes);
    a.status(status);
    Plan {
        effects: a.effects,
        requeue_at,
    }
}

/// The effects of one plan, appended to kind by kind.
struct Assembly<'w, 'a> {
    world: &'w PlanInput<'a>,
    owner: Owner,
    views: &'w [&'a PodView],
    effects: Vec<Effect>,
}

/// A failure reported as `condition` with `reason`, its message `prefix` and the error, and
/// (with `event`) a Warning event.
fn report(
    condition: &'static str,
    reason: &'static str,
    prefix: String,
    event: Option<Regarding>,
) -> OnFailure {
    OnFailure::reported(Report {
        condition,
        reason,
        prefix,
        event,
    })
}

impl<'w, 'a> Assembly<'w, 'a> {
    fn new(world: &'w PlanInput<'a>, views: &'w [&'a PodView]) -> Self {
        Assembly {
            world,
            owner: Owner::of(world.gd),
            views,
            effects: Vec::new(),
        }
    }

    /// The pod named `name`, if it was observed: a binary search of the views (sorted by
    /// name), so one whose thousand machines act finds each pod at once, and a reconcile that
    /// acts on one pod indexes none of the others.
    fn view(&self, name: &str) -> Option<&'a PodView> {
        find_by_name(self.views, name)
    }

    fn revisions(&mut self, revisions: Option<RevisionPlan>) {
        let Some(revs) = revisions else { return };
        if let Some(rev) = revs.create {
            let on_failure = report(
                names::CONDITION_FAILED_SCALE,
                names::EVENT_FAILED_CREATE_REVISION,
                format!("creating revision {}: ", revs.update),
                None,
            );
            self.effects.push(Effect::CreateRevision(Write::new(
                rev,
                on_failure.tolerating(ApiErrorKind::AlreadyExists),
            )));
        }
        for old in revs.prune {
            let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
            self.effects
                .push(Effect::DeleteRevision(Write::new(old, on_failure)));
        }
    }

    /// Creations in batches of 1, 2, 4, ...; the first failure stops the rest.
    fn create_pods(&mut self, create: Vec<Pod>) {
        let gd_name = &self.owner.name;
        let mut created = create.into_iter();
        for (batch, size) in replicas::slow_start_batches(created.len())
            .into_iter()
            .enumerate()
        {
            for pod in created.by_ref().take(size) {
                let what = format!(
                    "create Pod {} in GameDeployment {gd_name}",
                    pod.metadata.name.as_deref().unwrap_or_default()
                );
                // Without the pod's random name: the failure reads the same on every attempt,
                // so an unchanged condition is not rewritten and the events form one series.
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
                self.effects.push(Effect::CreatePod { pod: write, batch });
            }
        }
    }

    fn delete_pods(&mut self, delete: Vec<(String, DeleteReason)>) {
        for (name, why) in delete {
            let Some(pod) = self.view(&name) else {
                continue;
            };
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
            self.effects.push(Effect::DeletePod {
                pod: write,
                uid: pod.uid.clone(),
            });
        }
    }

    fn machines(&mut self, machines: Vec<(String, MachineStep)>) {
        for (name, outcome) in machines {
            let Some(pod) = self.view(&name) else {
                continue;
            };
            // What follows a pod's checkpoint write depends on it: a failure stops the rest.
            let chain = format!("in-place/{name}");
            for action in outcome.actions {
                let effect = self.machine_action(&name, pod, &chain, action);
                self.effects.push(effect);
            }
        }
    }

    /// One action of `pod`'s in-place machine, in the pod's `chain`.
    fn machine_action(&self, name: &str, pod: &PodView, chain: &str, action: Action) -> Effect {
        match action {
            Action::WritePod(w) => {
                let on_failure = report(
                    names::CONDITION_FAILED_UPDATE,
                    names::EVENT_FAILED_INPLACE,
                    format!("update Pod {name} in place failed: "),
                    Some(Regarding::GameDeployment),
                );
                Effect::WritePod {
                    pod: name.to_string(),
                    write: Write::new(*w, on_failure.retrying_conflicts()).gating(chain),
                }
            }
            Action::CreateHookRun(req) => {
                let run = hook_run(self.world, &self.owner, pod, &req);
                let on_failure = report(
                    names::CONDITION_FAILED_UPDATE,
                    names::EVENT_FAILED_CREATE_PRE_INPLACE_HOOKRUN,
                    run.failure_prefix(),
                    Some(Regarding::Pod(name.to_string())),
                );
                let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
                Effect::CreateHookRun(write.in_chain(chain))
            }
            Action::Event {
                r#type,
                reason,
                message,
            } => Effect::Event {
                note: EventNote {
                    regarding: Regarding::Pod(name.to_string()),
                    warning: r#type == EventType::Warning,
                    reason,
                    message,
                },
                chain: Some(chain.to_string()),
            },
        }
    }

    fn hot_patches(&mut self, hot_patches: Vec<(String, PodWrite)>) {
        for (name, w) in hot_patches {
            let what = format!("hot-patch Pod {name}");
            let on_failure = report(
                names::CONDITION_FAILED_UPDATE,
                names::EVENT_FAILED_HOTPATCH,
                format!("{what} failed: "),
                Some(Regarding::GameDeployment),
            );
            let write =
                Write::new(w, on_failure.retrying_conflicts()).on_success(EventNote::normal(
                    names::EVENT_SUCCESSFUL_HOTPATCH,
                    format!("{what} successful"),
                ));
            self.effects.push(Effect::WritePod { pod: name, write });
        }
    }

    fn release_gates(&mut self, release_gates: Vec<(String, PodWrite)>) {
        for (name, w) in release_gates {
            let on_failure = OnFailure::retried().tolerating(ApiErrorKind::NotFound);
            self.effects.push(Effect::WritePod {
                pod: name,
                write: Write::new(w, on_failure),
            });
        }
    }

    /// Pods waiting for their preDelete hook: marked as the original marks them, then the
    /// HookRun the hook operator will run (not without the mark).
    fn pre_delete_hooks(
        &mut self,
        pre_delete: Vec<(String, Option<HookRunRequest>, Option<PodWrite>)>,
    ) {
        for (name, create, mark) in pre_delete {
            let Some(pod) = self.view(&name) else {
                continue;
            };
            let chain = format!("pre-delete/{name}");
            if let Some(w) = mark {
                self.effects.push(Effect::WritePod {
                    pod: name.clone(),
                    write: Write::new(w, OnFailure::retried()).gating(&chain),
                });
            }
            if let Some(req) = create {
                let run = hook_run(self.world, &self.owner, pod, &req);
                let on_failure = report(
                    names::CONDITION_FAILED_SCALE,
                    names::EVENT_FAILED_CREATE_PRE_DELETE_HOOKRUN,
                    run.failure_prefix(),
                    Some(Regarding::Pod(name.clone())),
                );
                let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
                self.effects
                    .push(Effect::CreateHookRun(write.in_chain(&chain)));
            }
        }
    }

    fn post_inplace_hooks(&mut self, post_hooks: Vec<(String, HookRunRequest)>) {
        for (name, req) in post_hooks {
            let Some(pod) = self.view(&name) else {
                continue;
            };
            let run = hook_run(self.world, &self.owner, pod, &req);
            let on_failure = report(
                names::CONDITION_FAILED_UPDATE,
                names::EVENT_FAILED_CREATE_POST_HOOKRUN,
                run.failure_prefix(),
                Some(Regarding::GameDeployment),
            );
            let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists))
                .on_success(EventNote::normal(
                    names::EVENT_SUCCESSFUL_CREATE_POST_HOOKRUN,
                    format!("create HookRun {} for Pod {name}", req.name),
                ));
            self.effects.push(Effect::CreateHookRun(write));
        }
    }

    fn canary_hook_run(&mut self, canary_run: Option<StepRun>) {
        let Some(step) = canary_run else { return };
        let run = canary_hook_run(self.world, &self.owner, &step);
        let on_failure = report(
            names::CONDITION_FAILED_UPDATE,
            names::EVENT_FAILED_CREATE_CANARY_HOOKRUN,
            run.failure_prefix(),
            Some(Regarding::GameDeployment),
        );
        let write = Write::new(run, on_failure.tolerating(ApiErrorKind::AlreadyExists));
        self.effects.push(Effect::CreateHookRun(write));
    }

    fn terminate_hook_runs(&mut self, runs: Vec<String>) {
        for run in runs {
            let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
            self.effects
                .push(Effect::TerminateHookRun(Write::new(run, on_failure)));
        }
    }

    fn pause_updates(&mut self, pause: bool) {
        if !pause {
            return;
        }
        let gd = self.world.gd;
        let version = gd.metadata.resource_version.clone().unwrap_or_default();
        self.effects.push(Effect::PauseUpdates(Write::new(
            version,
            OnFailure::retried().retrying_conflicts(),
        )));
    }

    fn delete_hook_runs(&mut self, runs: Vec<String>) {
        for run in runs {
            let on_failure = OnFailure::logged().tolerating(ApiErrorKind::NotFound);
            self.effects
                .push(Effect::DeleteHookRun(Write::new(run, on_failure)));
        }
    }

    fn events(&mut self, notes: Vec<EventNote>) {
        self.effects.extend(
            notes
                .into_iter()
                .map(|note| Effect::Event { note, chain: None }),
        );
    }

    /// The status, last: it reports the failures of the writes before it.
    fn status(&mut self, status: GameDeploymentStatus) {
        self.effects.push(Effect::WriteStatus(status));
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
    let identity = hookruns::pod_identity(
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
            hookruns::strategy_field(request.kind)
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
    match hookruns::build(owner, template, request, &extra, identity) {
        Ok(run) => HookRunToCreate::Ready(Box::new(run)),
        Err(e) => unbuildable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::testing::seed;

    #[test]
    fn a_missing_hook_template_is_an_unbuildable_run_that_says_what_to_fix() {
        let mut gd = seed();
        gd.metadata.namespace = Some("default".into());
        let world = PlanInput::for_test(&gd);
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
