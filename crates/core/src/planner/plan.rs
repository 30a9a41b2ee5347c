//! One reconcile of one GameDeployment, decided: observe → **plan** → act → status. The plan
//! is a pure function of the GameDeployment, its pods, its ControllerRevisions, the HookRun
//! phases and the clock; the runtime edge executes it. Nothing here can touch a pod: a bad spec
//! produces a condition and no pod changes at all.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::adopt;
use super::effect::{
    ApiErrorKind, Effect, EventNote, HookRunToCreate, OnFailure, Regarding, Report, Write,
};
use super::hooks::{self, HookRunView};
use super::pods::{self, Owner};
use super::predelete;
use super::revision::{NotInPlace, RevisionPlan, in_place_target, plan_revisions};
use super::rollout::{self, RolloutPlan};
use super::scale::{self, ScaleInput};
use super::spec::{Resolved, resolve};
use super::status::{self, ConditionReport};
use crate::api::{
    GameDeployment, GameDeploymentStatus, HookCondition, HookTemplate, UpdateStrategyType,
};
use crate::inplace::{
    self, Action, Decoded, Endpoint, EventType, HookKind, HookPhase, HookRunRequest, Input,
    Outcome, PodView, PodWrite, State, Target,
};
use crate::names;

/// What one reconcile observed.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// HookTemplates of the GameDeployment's namespace, by name (from the cache).
    pub hook_templates: &'a BTreeMap<String, Arc<HookTemplate>>,
    pub gd: &'a GameDeployment,
    /// Pods this GameDeployment owns, shared with the reflector cache (never copied).
    pub pods: &'a [Arc<Pod>],
    pub revisions: &'a [ControllerRevision],
    /// HookRuns this GameDeployment owns, by name.
    pub hook_runs: &'a BTreeMap<String, HookRunView>,
    /// Node deletion cost by node name.
    pub node_costs: &'a BTreeMap<String, i64>,
    pub now: Timestamp,
}

/// Why a pod is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteReason {
    ScaleDown,
    /// Named in `scaleStrategy.podsToDelete`.
    Requested,
    /// RollingUpdate, or an in-place update whose change cannot be applied in place.
    Recreate(String),
}

/// One reconcile decided: what to write, in order, and when to look again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Revisions, pods, HookRuns, events, and last the status: see [`Effect`].
    pub effects: Vec<Effect>,
    /// When to reconcile again even if nothing changes.
    pub requeue_at: Option<Timestamp>,
}

impl Plan {
    /// The status the plan writes (before the failures of its writes are merged in).
    pub fn status(&self) -> Option<&GameDeploymentStatus> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::WriteStatus(s) => Some(s),
            _ => None,
        })
    }
}

/// The decisions of one reconcile, by kind, before they are put in order as effects.
#[derive(Debug, Clone, Default, PartialEq)]
struct Decisions {
    revisions: Option<RevisionPlan>,
    create: Vec<Pod>,
    delete: Vec<(String, DeleteReason)>,
    /// In-place machine outcomes, by pod name (only those with something to do or say).
    machines: Vec<(String, Outcome)>,
    /// Hot patches to write, by pod name.
    hot_patches: Vec<(String, PodWrite)>,
    /// `InPlaceUpdateReady=True` for pods no update holds (new pods, pods an update left):
    /// every pod carries the readiness gate, so without this it would never become Ready.
    release_gates: Vec<(String, PodWrite)>,
    /// Pods whose deletion waits for their preDelete hook: the HookRun to create, if it is
    /// not there yet, and the write marking the pod, if it is not marked yet.
    pre_delete: Vec<(String, Option<HookRunRequest>, Option<PodWrite>)>,
    /// PostInplace HookRuns to create, by pod name.
    post_hooks: Vec<(String, HookRunRequest)>,
    /// Pod HookRuns whose pod is gone or on another revision.
    stale_hook_runs: Vec<String>,
    notes: Vec<EventNote>,
    status: GameDeploymentStatus,
    /// When to reconcile again even if nothing changes.
    requeue_at: Option<Timestamp>,
}

/// Plans one reconcile. `suffix` yields random pod-name suffixes (injected for replay).
pub fn plan(world: &PlanInput, suffix: &mut dyn FnMut() -> String) -> Plan {
    match decide(world, suffix) {
        Ok((decisions, views)) => into_plan(world, &views, decisions),
        Err(refused) => refused,
    }
}

/// The decisions of one reconcile, with the pod views they were made from; or the plan that
/// refuses the spec.
fn decide(
    world: &PlanInput,
    suffix: &mut dyn FnMut() -> String,
) -> Result<(Decisions, Vec<PodView>), Plan> {
    let gd = world.gd;
    let mut views: Vec<PodView> = world.pods.iter().map(|p| PodView::from_pod(p)).collect();
    // Caches hand pods out in no particular order: sort, so the same world gives the same plan
    // (writes, events and condition messages in the same order on every run).
    views.sort_by(|a, b| a.name.cmp(&b.name));
    let resolved = match resolve(&gd.spec)
        .map_err(|e| e.to_string())
        .and_then(|r| check_selector(gd).map(|()| r))
    {
        Ok(r) => r,
        Err(message) => return Err(refuse(world, &views, message)),
    };
    let owner = Owner {
        name: gd.metadata.name.clone().unwrap_or_default(),
        namespace: gd.metadata.namespace.clone().unwrap_or_default(),
        uid: gd.metadata.uid.clone().unwrap_or_default(),
    };
    let template = serde_json::to_value(&gd.spec.template).unwrap_or(Value::Null);
    let in_use: BTreeSet<String> = views.iter().filter_map(|p| p.revision.clone()).collect();
    let previous = gd.status.as_ref();
    let revisions = plan_revisions(
        &owner,
        &template,
        world.revisions,
        previous.and_then(|s| s.collision_count),
        &in_use,
        gd.spec.revision_history_limit(),
    );
    let update = revisions.update.clone();
    let current = revisions
        .order
        .iter()
        .find(|r| {
            views
                .iter()
                .any(|p| !p.deleting && p.revision.as_deref() == Some(r.as_str()))
        })
        .cloned()
        .unwrap_or_else(|| update.clone());

    let mut out = Decisions::default();
    let mut problems = Vec::new();
    let mut waits = HookWaits::default();

    // --- scale ---------------------------------------------------------------------------
    let pods_to_delete = gd
        .spec
        .scale_strategy
        .as_ref()
        .map(|s| s.pods_to_delete.clone())
        .unwrap_or_default();
    let cost_descending = gd
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::ANNOTATION_DELETION_COST_SORT))
        .is_some_and(|v| v == "descend");
    let scale_plan = scale::plan(
        &ScaleInput {
            name: &owner.name,
            pods: &views,
            replicas: resolved.limits.replicas,
            partition: resolved.limits.partition,
            max_surge: resolved.max_surge,
            update_revision: &update,
            current_revision: &current,
            pods_to_delete: &pods_to_delete,
            node_costs: world.node_costs,
            cost_descending,
            min_ready_seconds: resolved.limits.min_ready_seconds,
            now: world.now,
        },
        suffix,
    );
    for new in &scale_plan.create {
        match revisions
            .templates
            .get(&new.revision)
            .map(|t| serde_json::from_value::<PodTemplateSpec>(t.clone()))
        {
            Some(Ok(t)) => out.create.push(pods::build(&owner, &t, new)),
            _ => problems.push(ConditionReport {
                condition: names::CONDITION_FAILED_SCALE,
                reason: names::REASON_MISSING_REVISION.into(),
                message: format!(
                    "cannot create {}: revision {} has no readable template",
                    new.name, new.revision
                ),
            }),
        }
    }
    let requested: BTreeSet<&str> = pods_to_delete.iter().map(String::as_str).collect();
    for name in &scale_plan.delete {
        let reason = if requested.contains(name.as_str()) {
            DeleteReason::Requested
        } else {
            DeleteReason::ScaleDown
        };
        out.delete.push((name.clone(), reason));
    }
    let scaling = !out.create.is_empty() || !out.delete.is_empty();

    // --- update --------------------------------------------------------------------------
    let deleting: BTreeSet<&str> = out.delete.iter().map(|(n, _)| n.as_str()).collect();
    // Without deletions (the common case) every pod remains: no copies of 10,000 views.
    let remaining: Cow<[PodView]> = if deleting.is_empty() {
        Cow::Borrowed(&views)
    } else {
        Cow::Owned(
            views
                .iter()
                .filter(|p| !deleting.contains(p.name.as_str()))
                .cloned()
                .collect(),
        )
    };
    // Each pod's state annotation, decoded once for this reconcile: the scheduler, the
    // machine, the readiness gate, the status and the post hooks all read it (decoding is
    // JSON parsing).
    let all_records: Vec<Decoded> = views
        .iter()
        .map(|p| inplace::decode(&p.annotations))
        .collect();
    let records: Vec<&Decoded> = views
        .iter()
        .zip(&all_records)
        .filter(|(p, _)| !deleting.contains(p.name.as_str()))
        .map(|(_, r)| r)
        .collect();
    let in_flight: BTreeSet<String> = remaining
        .iter()
        .zip(&records)
        .filter(|(_, d)| match d {
            Decoded::Valid(r) => {
                r.revision == update && !matches!(r.state, State::Ready | State::Abandoned)
            }
            _ => false,
        })
        .map(|(p, _)| p.name.clone())
        .collect();
    let mut rollout: RolloutPlan =
        rollout::plan(&remaining, &update, &in_flight, resolved.limits, world.now);
    if scaling || resolved.paused {
        // The original skips updates in a sync that scaled, and a pause stops new updates;
        // machines already running still advance, so no pod is left unready.
        rollout.may_start.clear();
    }
    let targets: BTreeSet<&str> = rollout.targets.iter().map(String::as_str).collect();
    let new_template = revisions
        .templates
        .get(&update)
        .cloned()
        .unwrap_or(Value::Null);
    // The difference between two templates is the same for every pod on the same revision:
    // compute it once per revision, not once per pod.
    let mut diffs: BTreeMap<&str, Result<Target, NotInPlace>> = BTreeMap::new();
    for (pod, &record) in remaining.iter().zip(&records) {
        let own = pod.revision.as_deref().unwrap_or_default();
        let wants_update = own == update || targets.contains(pod.name.as_str());
        let may_start = rollout.may_start.contains(&pod.name);
        let diff = diffs
            .entry(own)
            .or_insert_with(|| revision_diff(own, &revisions.templates, &new_template, &update));
        match resolved.strategy {
            UpdateStrategyType::InplaceUpdate => {
                let target = match (diff, wants_update) {
                    (Ok(t), true) => t.clone(),
                    (Err(why), true) if own != update => {
                        if may_start {
                            out.delete
                                .push((pod.name.clone(), DeleteReason::Recreate(why.to_string())));
                        }
                        continue;
                    }
                    // Not (or no longer) chosen: the pod's own revision, which calls off a
                    // machine that has not patched anything yet.
                    _ => own_target(pod, &revisions.templates),
                };
                if let Some(phase) = step_machine(
                    world,
                    &resolved,
                    (pod, record),
                    &target,
                    may_start,
                    &mut out,
                    &mut problems,
                ) {
                    waits.pre_inplace.push((pod.name.clone(), phase));
                }
            }
            UpdateStrategyType::RollingUpdate => {
                if may_start && own != update && wants_update {
                    out.delete.push((
                        pod.name.clone(),
                        DeleteReason::Recreate("RollingUpdate".into()),
                    ));
                }
            }
            UpdateStrategyType::HotPatchUpdate if may_start && own != update && wants_update => {
                match diff {
                    Ok(t) => out
                        .hot_patches
                        .push((pod.name.clone(), hot_patch(pod, t, world.now))),
                    Err(why) => problems.push(ConditionReport {
                        condition: names::CONDITION_FAILED_UPDATE,
                        reason: names::EVENT_FAILED_HOTPATCH.into(),
                        message: format!("pod {}: {why}", pod.name),
                    }),
                }
            }
            UpdateStrategyType::HotPatchUpdate => {}
        }
        if let Some(w) = release_gate(pod, record, &out, world.now) {
            out.release_gates.push((pod.name.clone(), w));
        }
    }

    // Canary steps are not run yet: say so once per spec change rather than ignore them.
    let steps = gd
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.canary.as_ref())
        .map_or(0, |c| c.steps.len());
    if steps > 0 && previous.map(|s| s.observed_generation) != gd.metadata.generation {
        out.notes.push(EventNote::warning(
            names::EVENT_CANARY_STEPS_NOT_SUPPORTED,
            format!(
                "updateStrategy.canary has {steps} steps, which this operator does not run yet: \
                 updateStrategy.partition applies instead (set it to stage the rollout by hand)"
            ),
        ));
    }

    // --- preDelete hooks ------------------------------------------------------------------
    // Last, so every deletion (scale-down, podsToDelete, recreate) passes the same gate. A held
    // pod stays out of update planning above, as in the original.
    gate_deletions(world, &views, &mut out, &mut problems, &mut waits);
    post_hooks(world, &views, &all_records, &mut out, &mut waits);
    out.stale_hook_runs = hooks::stale(world.hook_runs, &views);

    // --- status --------------------------------------------------------------------------
    out.status = status::compute(&status::StatusInput {
        generation: gd.metadata.generation,
        pods: &views,
        replicas: resolved.limits.replicas,
        partition: resolved.limits.partition,
        paused: resolved.paused,
        update_revision: &update,
        revisions: &revisions.order,
        collision_count: revisions.collision_count,
        label_selector: label_selector(gd),
        min_ready_seconds: resolved.limits.min_ready_seconds,
        abandoned: all_records
            .iter()
            .filter(|d| {
                matches!(d, Decoded::Valid(r) if r.revision == update && r.state == State::Abandoned)
            })
            .count() as i32,
        problems: &problems,
        previous,
        now: world.now,
    });
    let held = |list: Option<&Vec<HookCondition>>, now_waiting: &[(String, HookPhase)]| {
        hook_conditions(list.map_or(&[][..], Vec::as_slice), now_waiting, world.now)
    };
    out.status.pre_inplace_hook_condition = held(
        previous.map(|s| &s.pre_inplace_hook_condition),
        &waits.pre_inplace,
    );
    out.status.pre_delete_hook_condition = held(
        previous.map(|s| &s.pre_delete_hook_condition),
        &waits.pre_delete,
    );
    out.status.post_inplace_hook_condition = held(
        previous.map(|s| &s.post_inplace_hook_condition),
        &waits.post_inplace,
    );
    let availability = views
        .iter()
        .filter(|p| p.ready)
        .filter_map(|p| {
            p.ready_since?
                .checked_add(SignedDuration::from_secs(resolved.limits.min_ready_seconds))
                .ok()
        })
        .filter(|t| *t > world.now);
    out.requeue_at = out
        .machines
        .iter()
        .filter_map(|(_, o)| o.wake_at)
        .chain(availability)
        .min();
    out.revisions = Some(revisions);
    Ok((out, views))
}

/// Pods waiting on a hook in this reconcile, with the hook's phase.
#[derive(Default)]
struct HookWaits {
    pre_inplace: Vec<(String, HookPhase)>,
    pre_delete: Vec<(String, HookPhase)>,
    post_inplace: Vec<(String, HookPhase)>,
}

/// The status list the original keeps of pods waiting on a hook (`preInplaceHookCondition`,
/// `preDeleteHookCondition`): one entry per waiting pod, its start time kept from before.
fn hook_conditions(
    previous: &[HookCondition],
    waiting: &[(String, HookPhase)],
    now: Timestamp,
) -> Vec<HookCondition> {
    waiting
        .iter()
        .map(|(pod, phase)| HookCondition {
            pod_name: pod.clone(),
            start_time: previous
                .iter()
                .find(|c| &c.pod_name == pod)
                .map_or(Time(now), |c| c.start_time.clone()),
            phase: *phase,
        })
        .collect()
}

/// The postInplace hook (`postInplaceUpdateStrategy`): once a pod's in-place update to its
/// revision has completed, a HookRun reports on it; it gates nothing. Level-based: the run's
/// existence is the record that it was started, so it is kept until the pod moves on to
/// another revision or goes (then [`hooks::stale`] removes it), and the status lists the pod
/// until the run has succeeded.
fn post_hooks(
    world: &PlanInput,
    views: &[PodView],
    records: &[Decoded],
    out: &mut Decisions,
    waits: &mut HookWaits,
) {
    let Some(template) = world
        .gd
        .spec
        .post_inplace_update_strategy
        .as_ref()
        .and_then(|s| s.hook.as_ref())
        .map(|h| h.template_name.as_str())
    else {
        return;
    };
    for (pod, record) in views.iter().zip(records).filter(|(p, _)| !p.deleting) {
        let Decoded::Valid(r) = record else {
            continue;
        };
        if r.state != State::Ready
            || r.patched_at.is_none()
            || pod.revision.as_deref() != Some(r.revision.as_str())
        {
            continue;
        }
        let name = format!(
            "postinplace-{}-{}-{template}",
            r.revision,
            pod.instance_id()
        );
        match world.hook_runs.get(&name).map(|run| run.phase) {
            Some(Some(HookPhase::Successful)) => {}
            Some(phase) => waits
                .post_inplace
                .push((pod.name.clone(), phase.unwrap_or(HookPhase::Pending))),
            None => {
                waits
                    .post_inplace
                    .push((pod.name.clone(), HookPhase::Pending));
                out.post_hooks.push((
                    pod.name.clone(),
                    HookRunRequest {
                        name,
                        template: template.to_string(),
                        args: inplace::pod_hook_args(pod),
                        kind: HookKind::PostInplace,
                    },
                ));
            }
        }
    }
}

/// Keeps back the deletions whose preDelete hook has not succeeded yet.
fn gate_deletions(
    world: &PlanInput,
    views: &[PodView],
    out: &mut Decisions,
    problems: &mut Vec<ConditionReport>,
    waits: &mut HookWaits,
) {
    let template = world
        .gd
        .spec
        .pre_delete_update_strategy
        .as_ref()
        .and_then(|s| s.hook.as_ref())
        .map(|h| h.template_name.as_str());
    let mut kept = Vec::new();
    for (name, why) in std::mem::take(&mut out.delete) {
        let Some(pod) = views.iter().find(|p| p.name == name) else {
            continue;
        };
        match predelete::check(pod, template, world.hook_runs) {
            predelete::Verdict::Delete => kept.push((name, why)),
            predelete::Verdict::Wait {
                create,
                mark,
                stuck,
            } => {
                let phase = template
                    .and_then(|t| world.hook_runs.get(&predelete::hook_run_name(pod, t)))
                    .and_then(|r| r.phase)
                    .unwrap_or(HookPhase::Pending);
                waits.pre_delete.push((name.clone(), phase));
                let mark = mark.then(|| {
                    let mut w = PodWrite::new(Endpoint::Pod, None);
                    w.annotations
                        .insert(names::ANNOTATION_POD_DELETING.into(), Some("true".into()));
                    w
                });
                if let Some(message) = stuck {
                    problems.push(ConditionReport {
                        condition: match why {
                            DeleteReason::Recreate(_) => names::CONDITION_FAILED_UPDATE,
                            _ => names::CONDITION_FAILED_SCALE,
                        },
                        reason: names::REASON_PRE_DELETE_HOOK_FAILED.into(),
                        message,
                    });
                }
                if create.is_some() || mark.is_some() {
                    out.pre_delete.push((name, create, mark));
                }
            }
        }
    }
    out.delete = kept;
}

/// What moving a pod from revision `own` to `update` takes in place, or why it cannot be done
/// in place (then the pod is recreated).
fn revision_diff(
    own: &str,
    templates: &BTreeMap<String, Value>,
    new_template: &Value,
    update: &str,
) -> Result<Target, NotInPlace> {
    match templates.get(own) {
        Some(old) => in_place_target(old, new_template, update),
        None if own == update => in_place_target(new_template, new_template, update),
        None if own.is_empty() => Err(NotInPlace {
            path: format!(
                "revision (none: the pod has no {} label)",
                names::LABEL_REVISION
            ),
        }),
        None => Err(NotInPlace {
            path: format!("revision {own} (no longer stored)"),
        }),
    }
}

/// Steps one pod's in-place machine; returns the hook phase when the pod waits on its hook.
fn step_machine(
    world: &PlanInput,
    resolved: &Resolved,
    (pod, record): (&PodView, &Decoded),
    target: &Target,
    may_start: bool,
    out: &mut Decisions,
    problems: &mut Vec<ConditionReport>,
) -> Option<HookPhase> {
    let hook_run = match record {
        Decoded::Valid(r) => r
            .hook_run
            .as_ref()
            .and_then(|n| Some((world.hook_runs.get(n)?.phase?, n.clone()))),
        _ => None,
    };
    let hook = hook_run.as_ref().map(|(phase, _)| *phase);
    let outcome = inplace::advance_decoded(
        &Input {
            pod,
            target,
            policy: &resolved.policy,
            hook,
            selected: may_start,
            now: world.now,
        },
        record,
    );
    if outcome.state == Some(State::Failed) || outcome.state == Some(State::Unknown) {
        let detail = match record {
            Decoded::Valid(r) => r
                .message
                .clone()
                .unwrap_or_else(|| r.reason.clone().unwrap_or_default()),
            _ => "its in-place update state is unreadable".into(),
        };
        problems.push(ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::REASON_INPLACE_UPDATE_FAILED.into(),
            message: format!("pod {}: {detail}", pod.name),
        });
    }
    let waiting = (outcome.state == Some(State::HookCheck))
        .then(|| hook_run.as_ref().map_or(HookPhase::Pending, |(p, _)| *p));
    // A completed, unsuccessful hook holds its pod for good (as in the original): say so in
    // the status for as long as it does, not only in the one event.
    if let (Some(State::HookCheck), Some((phase, name))) = (outcome.state, &hook_run)
        && phase.is_completed()
        && *phase != HookPhase::Successful
    {
        problems.push(ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::REASON_PRE_INPLACE_HOOK_FAILED.into(),
            message: format!(
                "pod {}: preInplaceUpdateStrategy HookRun {name} is {phase}; force Pending to \
                 retry it or Unready to bypass it (annotation {})",
                pod.name,
                names::ANNOTATION_FORCE
            ),
        });
    }
    if !outcome.actions.is_empty() || outcome.wake_at.is_some() {
        out.machines.push((pod.name.clone(), outcome));
    }
    waiting
}

/// The write that sets `InPlaceUpdateReady=True` on a pod no in-place update holds, if it
/// needs one. Pods being deleted or written this reconcile are left for the next one.
fn release_gate(
    pod: &PodView,
    record: &Decoded,
    out: &Decisions,
    now: Timestamp,
) -> Option<PodWrite> {
    if pod.deleting || pod.in_place_ready == Some(true) {
        return None;
    }
    let settled = match record {
        Decoded::Missing => true,
        Decoded::Valid(r) => matches!(r.state, State::Ready | State::Abandoned),
        Decoded::Unsupported { .. } | Decoded::Corrupt { .. } => false,
    };
    let busy = out.delete.iter().any(|(n, _)| *n == pod.name)
        || out.hot_patches.iter().any(|(n, _)| *n == pod.name)
        || out.machines.iter().any(|(n, o)| {
            *n == pod.name
                && (o.writes().next().is_some()
                    || !matches!(o.state, None | Some(State::Ready | State::Abandoned)))
        });
    if !settled || busy {
        return None;
    }
    let mut w = PodWrite::new(Endpoint::PodStatus, pod.resource_version.clone());
    w.condition = Some(inplace::ConditionWrite {
        ready: true,
        reason: "NoInPlaceUpdate".into(),
        message: "no in-place update holds the pod".into(),
        last_transition_time: now,
    });
    Some(w)
}

/// The target that keeps a pod where it is.
fn own_target(pod: &PodView, templates: &BTreeMap<String, Value>) -> Target {
    let revision = pod.revision.clone().unwrap_or_default();
    templates
        .get(&revision)
        .and_then(|t| in_place_target(t, t, &revision).ok())
        .unwrap_or_else(|| Target {
            revision,
            images: pod.spec_images.clone(),
            ..Default::default()
        })
}

/// The original's hot patch: images and revision label at once, marked for BCS's kubelet.
/// As in the original, `lastContainerStatuses` records only the containers whose image
/// changes (and that report a status), and an existing marker value is kept.
fn hot_patch(pod: &PodView, target: &Target, now: Timestamp) -> PodWrite {
    let mut w = PodWrite::new(Endpoint::Pod, pod.resource_version.clone());
    w.images = target
        .images
        .iter()
        .filter(|(c, i)| pod.spec_images.get(*c) != Some(*i))
        .map(|(c, i)| (c.clone(), i.clone()))
        .collect();
    w.labels = target.labels.clone();
    w.labels
        .insert(names::LABEL_REVISION.into(), target.revision.clone());
    let last: BTreeMap<&String, Value> = pod
        .containers
        .iter()
        .filter(|(n, _)| w.images.contains_key(*n))
        .map(|(n, c)| {
            (
                n,
                serde_json::json!({"imageID": c.image_id.clone().unwrap_or_default()}),
            )
        })
        .collect();
    let state = serde_json::json!({"revision": target.revision, "updateTimestamp": now.to_string(), "lastContainerStatuses": last});
    w.annotations.insert(
        names::ANNOTATION_HOTPATCH_STATE.into(),
        Some(state.to_string()),
    );
    if !pod
        .annotations
        .contains_key(names::ANNOTATION_HOTPATCH_CONTAINER)
    {
        w.annotations.insert(
            names::ANNOTATION_HOTPATCH_CONTAINER.into(),
            Some("true".into()),
        );
    }
    w.annotations.extend(
        target
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone()))),
    );
    w
}

/// A selector the controller can use safely: non-empty and matching the template labels
/// (otherwise it would create pods it cannot see, for ever).
fn check_selector(gd: &GameDeployment) -> Result<(), String> {
    adopt::selector_of(gd)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The selector as a query string, for the scale subresource (`matchLabels` alone when the
/// selector is unusable: the status of a refused spec still names what it has).
fn label_selector(gd: &GameDeployment) -> String {
    match adopt::Selector::new(&gd.spec.selector) {
        Ok(s) => s.to_query(),
        Err(_) => gd
            .spec
            .selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// A plan that touches nothing and says why.
fn refuse(world: &PlanInput, views: &[PodView], message: String) -> Plan {
    let gd = world.gd;
    let problems = [ConditionReport {
        condition: names::CONDITION_FAILED_SCALE,
        reason: names::EVENT_INVALID_SPEC.into(),
        message: message.clone(),
    }];
    let previous = gd.status.as_ref();
    let update = previous
        .map(|s| s.update_revision.clone())
        .unwrap_or_default();
    let order: Vec<String> = previous
        .map(|s| vec![s.current_revision.clone()])
        .unwrap_or_default();
    let status = status::compute(&status::StatusInput {
        generation: gd.metadata.generation,
        pods: views,
        replicas: gd.spec.replicas(),
        partition: 0,
        paused: false,
        update_revision: &update,
        revisions: &order,
        collision_count: previous.and_then(|s| s.collision_count),
        label_selector: label_selector(gd),
        min_ready_seconds: 0,
        abandoned: 0,
        problems: &problems,
        previous,
        now: world.now,
    });
    Plan {
        effects: vec![
            Effect::Event {
                note: EventNote::warning(names::EVENT_INVALID_SPEC, message),
                chain: None,
            },
            Effect::WriteStatus(status),
        ],
        requeue_at: None,
    }
}

/// The decisions put in the order the executor must follow (revisions before the pods that
/// reference them, each pod's checkpoint before what depends on it, the status last), each
/// write with the events and failure handling the original gives it.
fn into_plan(world: &PlanInput, views: &[PodView], d: Decisions) -> Plan {
    let gd = world.gd;
    let gd_name = gd.metadata.name.clone().unwrap_or_default();
    let owner = Owner {
        name: gd_name.clone(),
        namespace: gd.metadata.namespace.clone().unwrap_or_default(),
        uid: gd.metadata.uid.clone().unwrap_or_default(),
    };
    let view = |name: &str| views.iter().find(|p| p.name == name);
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
            let on_failure = report(
                names::CONDITION_FAILED_SCALE,
                names::EVENT_FAILED_CREATE,
                format!("{what} failed: "),
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

/// The HookRun `request` asks for, built from its HookTemplate (read from the cache before
/// planning), or why it cannot be.
fn hook_run(
    world: &PlanInput,
    owner: &Owner,
    pod: &PodView,
    request: &HookRunRequest,
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
    let spec = &world.gd.spec;
    let configured = match request.kind {
        HookKind::PreInplace => &spec.pre_inplace_update_strategy,
        HookKind::PreDelete => &spec.pre_delete_update_strategy,
        HookKind::PostInplace => &spec.post_inplace_update_strategy,
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
    let label = |key: &str| pod.labels.get(key).cloned().unwrap_or_default();
    match hooks::build(
        owner,
        template,
        request,
        &extra,
        &label(names::LABEL_REVISION),
        &label(names::LABEL_POD_INSTANCE_ID),
    ) {
        Ok(run) => HookRunToCreate::Ready(Box::new(run)),
        Err(e) => unbuildable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::{Action, Endpoint};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn seed() -> GameDeployment {
        crate::api::seed_example()
    }

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    /// The decisions for `world`; for a refused spec, the refusal's events and status.
    fn decided(world: &PlanInput) -> Decisions {
        match decide(world, &mut suffixes()) {
            Ok((d, _)) => d,
            Err(plan) => Decisions {
                status: plan.status().cloned().unwrap(),
                notes: plan
                    .effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Event { note, .. } => Some(note.clone()),
                        _ => None,
                    })
                    .collect(),
                ..Decisions::default()
            },
        }
    }

    #[test]
    fn a_first_sync_creates_the_revision_then_pods_in_slow_start_batches_then_the_status() {
        let world = PlanInput {
            gd: &seed(),
            pods: &[],
            revisions: &[],
            hook_runs: &BTreeMap::new(),
            hook_templates: &BTreeMap::new(),
            node_costs: &BTreeMap::new(),
            now: now(),
        };
        let plan = plan(&world, &mut suffixes());
        let kinds: Vec<String> = plan
            .effects
            .iter()
            .map(|e| match e {
                Effect::CreateRevision(_) => "revision".to_string(),
                Effect::CreatePod { batch, .. } => format!("pod{batch}"),
                Effect::WriteStatus(_) => "status".to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "revision", "pod0", "pod1", "pod1", "pod2", "pod2", "pod2", "pod2", "pod3",
                "status"
            ]
        );
    }

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

    fn suffixes() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("p{n:04}")
        }
    }

    /// Runs a plan and returns it with the pods it created made Running and Ready.
    fn first_sync(gd: &GameDeployment) -> (Decisions, Vec<Pod>, Vec<ControllerRevision>) {
        let hooks = BTreeMap::new();
        let costs = BTreeMap::new();
        let world = PlanInput {
            gd,
            pods: &[],
            revisions: &[],
            hook_runs: &hooks,
            hook_templates: &BTreeMap::new(),
            node_costs: &costs,
            now: now(),
        };
        let plan = decided(&world);
        let pods = plan.create.iter().cloned().map(running).collect();
        let revs = plan
            .revisions
            .as_ref()
            .and_then(|r| r.create.clone())
            .into_iter()
            .collect();
        (plan, pods, revs)
    }

    fn running(mut pod: Pod) -> Pod {
        let images: Vec<(String, String)> = pod
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect();
        pod.spec.as_mut().unwrap().node_name = Some("node-1".into());
        pod.status = Some(
            serde_json::from_value(serde_json::json!({
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "InPlaceUpdateReady", "status": "True"}
                ],
                "containerStatuses": images.iter().map(|(n, i)| serde_json::json!({
                    "name": n, "image": i, "imageID": format!("sha256:{i}"), "containerID": format!("c-{n}-1"),
                    "restartCount": 0, "ready": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                })).collect::<Vec<_>>()
            }))
            .unwrap(),
        );
        pod
    }

    fn plan_with(gd: &GameDeployment, pods: &[Pod], revs: &[ControllerRevision]) -> Decisions {
        let pods: Vec<Arc<Pod>> = pods.iter().cloned().map(Arc::new).collect();
        let pods = pods.as_slice();
        let hooks = BTreeMap::new();
        let costs = BTreeMap::new();
        let world = PlanInput {
            gd,
            pods,
            revisions: revs,
            hook_runs: &hooks,
            hook_templates: &BTreeMap::new(),
            node_costs: &costs,
            now: now(),
        };
        decided(&world)
    }

    #[test]
    fn a_new_game_deployment_gets_a_revision_and_eight_pods() {
        let (plan, pods, revs) = first_sync(&seed());
        assert_eq!(revs.len(), 1);
        assert_eq!(pods.len(), 8);
        let names: BTreeSet<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names.len(), 8);
        assert!(names.iter().all(|n| n.starts_with("test-gamedeployment-")));
        assert_eq!(
            plan.status.update_revision,
            revs[0].metadata.name.clone().unwrap()
        );
        assert!(plan.machines.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn an_image_change_starts_two_in_place_updates_and_nothing_else() {
        let (_, pods, revs) = first_sync(&seed());
        let mut gd = seed();
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert!(
            plan.create.is_empty() && plan.delete.is_empty(),
            "in place: no pod created or deleted"
        );
        assert!(
            plan.revisions.as_ref().unwrap().create.is_some(),
            "a second revision"
        );
        let started: Vec<&String> = plan
            .machines
            .iter()
            .filter(|(_, o)| o.state == Some(State::Unready))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(started.len(), 2, "maxUnavailable 20% of 8 rounds up to 2");
        for (_, o) in &plan.machines {
            let w = o.writes().next().unwrap();
            assert_eq!(w.endpoint, Endpoint::PodStatus);
            assert_eq!(
                w.checkpoint.as_ref().unwrap().revision,
                plan.status.update_revision
            );
        }
    }

    #[test]
    fn a_change_that_cannot_be_applied_in_place_recreates_the_pod() {
        let (_, pods, revs) = first_sync(&seed());
        let mut gd = seed();
        let c = &mut gd.spec.template.spec.as_mut().unwrap().containers[0];
        c.image = Some("python:latest".into());
        c.args = Some(vec!["--bind".into(), "0.0.0.0".into()]);
        let plan = plan_with(&gd, &pods, &revs);
        let recreated: Vec<&DeleteReason> = plan.delete.iter().map(|(_, r)| r).collect();
        assert_eq!(recreated.len(), 2);
        assert!(
            matches!(recreated[0], DeleteReason::Recreate(why) if why.contains("spec.containers[0].args"))
        );
        assert!(plan.machines.is_empty());
    }

    #[test]
    fn a_pod_whose_revision_is_gone_is_recreated_not_stuck() {
        // The original failed the in-place update for ever once the pod's old revision had
        // been pruned; without it there is nothing to diff, so the pod is recreated.
        let (_, pods, _) = first_sync(&seed());
        let mut gd = seed();
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &[]);
        assert_eq!(plan.delete.len(), 2);
        assert!(
            plan.delete
                .iter()
                .all(|(_, r)| matches!(r, DeleteReason::Recreate(why) if why.contains("no longer stored"))),
            "{:?}",
            plan.delete
        );
        assert!(plan.machines.is_empty());
    }

    #[test]
    fn rolling_update_deletes_within_the_budget() {
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::RollingUpdate);
        let (_, pods, revs) = first_sync(&gd);
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert_eq!(plan.delete.len(), 2);
        assert!(
            plan.delete
                .iter()
                .all(|(_, r)| *r == DeleteReason::Recreate("RollingUpdate".into()))
        );
    }

    #[test]
    fn hot_patch_writes_images_without_a_readiness_flip() {
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::HotPatchUpdate);
        let (_, pods, revs) = first_sync(&gd);
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert_eq!(plan.hot_patches.len(), 2);
        let (_, w) = &plan.hot_patches[0];
        assert_eq!(w.images["python"], "python:latest");
        assert!(w.condition.is_none());
        assert_eq!(
            w.annotations[names::ANNOTATION_HOTPATCH_CONTAINER].as_deref(),
            Some("true")
        );
    }

    #[test]
    fn hot_patch_records_only_the_changed_containers_like_the_original() {
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::HotPatchUpdate);
        let containers = &mut gd.spec.template.spec.as_mut().unwrap().containers;
        let mut sidecar = containers[0].clone();
        sidecar.name = "sidecar".into();
        sidecar.image = Some("busybox:1".into());
        containers.push(sidecar);
        let (_, mut pods, revs) = first_sync(&gd);
        // A marker a pod already carries is kept, as the original only adds a missing one.
        for pod in &mut pods {
            pod.metadata
                .annotations
                .get_or_insert_default()
                .insert(names::ANNOTATION_HOTPATCH_CONTAINER.into(), "python".into());
        }
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert_eq!(plan.hot_patches.len(), 2);
        for (_, w) in &plan.hot_patches {
            assert_eq!(w.images.keys().collect::<Vec<_>>(), ["python"]);
            let state: Value = serde_json::from_str(
                w.annotations[names::ANNOTATION_HOTPATCH_STATE]
                    .as_deref()
                    .unwrap(),
            )
            .unwrap();
            let last = state["lastContainerStatuses"].as_object().unwrap();
            assert_eq!(last.keys().collect::<Vec<_>>(), ["python"], "{state}");
            assert_eq!(last["python"]["imageID"], "sha256:python:3.9");
            assert_eq!(
                w.annotations.get(names::ANNOTATION_HOTPATCH_CONTAINER),
                None,
                "marker overwritten"
            );
        }
    }

    #[test]
    fn a_selector_that_misses_the_template_touches_nothing() {
        let (_, pods, revs) = first_sync(&seed());
        let mut gd = seed();
        gd.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert!(plan.create.is_empty() && plan.delete.is_empty() && plan.machines.is_empty());
        let c = plan
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == names::CONDITION_FAILED_SCALE)
            .unwrap();
        assert_eq!(c.reason, "InvalidSpec");
        assert!(c.message.contains("app=other"), "{}", c.message);
        assert!(plan.notes[0].warning);
    }

    #[test]
    fn pods_no_update_holds_get_their_readiness_gate_released_once() {
        let (_, mut pods, revs) = first_sync(&seed());
        for p in pods.iter_mut() {
            let conditions = p.status.as_mut().unwrap().conditions.as_mut().unwrap();
            conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
        }
        // One pod's update failed: its gate stays closed.
        let failed = crate::inplace::Record {
            state: State::Failed,
            ..crate::inplace::Record::start("r0", now())
        };
        pods[0].metadata.annotations = Some(
            [(
                names::ANNOTATION_STATE.to_string(),
                crate::inplace::encode(&failed),
            )]
            .into(),
        );
        let plan = plan_with(&seed(), &pods, &revs);
        assert_eq!(plan.release_gates.len(), 7);
        let (_, w) = &plan.release_gates[0];
        assert_eq!(w.endpoint, Endpoint::PodStatus);
        assert!(w.condition.as_ref().unwrap().ready);
        assert!(w.checkpoint.is_none());
        assert!(
            !plan
                .release_gates
                .iter()
                .any(|(n, _)| Some(n) == pods[0].metadata.name.as_ref())
        );
    }

    /// An adopted pod carries the selector's labels but no revision label: it is an old pod,
    /// deleted first on scale-down and replaced (no stored template to update it in place from).
    #[test]
    fn an_adopted_pod_without_a_revision_is_old_and_gets_replaced() {
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().partition = Some(IntOrString::Int(0));
        let (_, mut pods, revs) = first_sync(&gd);
        let mut adopted = pods[0].clone();
        adopted.metadata.name = Some("adopted".into());
        let labels = adopted.metadata.labels.as_mut().unwrap();
        labels.remove(names::LABEL_REVISION);
        labels.remove(names::LABEL_POD_INSTANCE_ID);
        pods.push(adopted);

        let plan = plan_with(&gd, &pods, &revs);
        assert_eq!(plan.delete, [("adopted".into(), DeleteReason::ScaleDown)]);
        assert_eq!(plan.status.replicas, 9);
        assert_eq!(plan.status.updated_replicas, 8);

        pods.remove(1);
        let plan = plan_with(&gd, &pods, &revs);
        assert!(plan.create.is_empty());
        match plan.delete.as_slice() {
            [(name, DeleteReason::Recreate(why))] => {
                assert_eq!(name, "adopted");
                assert!(why.contains("no controller-revision-hash"), "{why}");
            }
            other => panic!("expected the adopted pod recreated, got {other:?}"),
        }
        assert_eq!(plan.status.updated_replicas, 7);
        assert!(plan.release_gates.iter().all(|(n, _)| n != "adopted"));
    }

    #[test]
    fn pause_stops_new_updates() {
        let (_, pods, revs) = first_sync(&seed());
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().paused = true;
        gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
        let plan = plan_with(&gd, &pods, &revs);
        assert!(
            plan.machines
                .iter()
                .all(|(_, o)| !o.actions.iter().any(|a| matches!(a, Action::WritePod(_))))
        );
        assert!(plan.status.conditions.iter().any(|c| c.reason == "Paused"));
    }

    #[test]
    fn a_match_expressions_selector_works_and_is_published_for_the_scale_subresource() {
        let mut gd = seed();
        gd.spec.selector = serde_json::from_value(serde_json::json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["test-gamedeployment"]}]}))
        .unwrap();
        let (plan, _, _) = first_sync(&gd);
        assert_eq!(plan.create.len(), 8);
        assert_eq!(plan.status.label_selector, "app in (test-gamedeployment)");
        gd.spec.selector = serde_json::from_value(serde_json::json!({"matchExpressions": [
            {"key": "app", "operator": "NotIn", "values": ["test-gamedeployment"]}]}))
        .unwrap();
        let (plan, _, _) = first_sync(&gd);
        assert!(
            plan.create.is_empty(),
            "a selector that misses the template creates nothing"
        );
        assert!(
            plan.notes[0]
                .message
                .contains("requires app notin (test-gamedeployment)")
        );
    }

    #[test]
    fn canary_steps_are_reported_once_per_generation_not_silently_ignored() {
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().canary = Some(
            serde_json::from_value(serde_json::json!({"steps": [{"partition": 6}, {"pause": {}}]}))
                .unwrap(),
        );
        let (_, pods, revs) = first_sync(&gd);
        let plan = plan_with(&gd, &pods, &revs);
        let note = plan
            .notes
            .iter()
            .find(|n| n.reason == "CanaryStepsNotSupported")
            .expect("a warning");
        assert!(note.warning);
        assert!(note.message.contains("has 2 steps"), "{}", note.message);
        gd.status = Some(plan.status);
        let again = plan_with(&gd, &pods, &revs);
        assert!(again.notes.is_empty(), "only once per spec change");
    }

    #[test]
    fn a_pause_still_releases_readiness_gates() {
        // The original (and OpenKruise #892) skipped the readiness refresh while paused, so
        // pods created during a pause never became Ready.
        let (_, mut pods, revs) = first_sync(&seed());
        for p in pods.iter_mut() {
            let conditions = p.status.as_mut().unwrap().conditions.as_mut().unwrap();
            conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
        }
        let mut gd = seed();
        gd.spec.update_strategy.as_mut().unwrap().paused = true;
        let plan = plan_with(&gd, &pods, &revs);
        assert_eq!(plan.release_gates.len(), 8);
    }
}
