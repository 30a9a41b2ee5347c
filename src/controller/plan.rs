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
use serde_json::Value;

use super::pods::{self, Owner};
use super::revision::{NotInPlace, RevisionPlan, in_place_target, plan_revisions};
use super::rollout::{self, RolloutPlan};
use super::scale::{self, ScaleInput};
use super::spec::{Resolved, resolve};
use super::status::{self, FAILED_SCALE, FAILED_UPDATE, Problem};
use crate::api::{GameDeployment, GameDeploymentStatus, UpdateStrategyType};
use crate::inplace::{
    self, Decoded, Endpoint, HookPhase, Input, Outcome, PodView, PodWrite, State, Target,
};
use crate::names;

/// Annotation the original writes on hot-patched pods (read by BCS's customised kubelet).
pub const HOTPATCH_CONTAINER: &str = "io.kubernetes.hotpatch.container";
/// Annotation recording a hot patch (same JSON shape as the original's).
pub const HOTPATCH_STATE: &str = "hotpatch-update-state";

/// What one reconcile observed.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    pub gd: &'a GameDeployment,
    /// Pods this GameDeployment owns, shared with the reflector cache (never copied).
    pub pods: &'a [Arc<Pod>],
    pub revisions: &'a [ControllerRevision],
    /// HookRun phase by HookRun name.
    pub hook_runs: &'a BTreeMap<String, HookPhase>,
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

/// An event on the GameDeployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The decisions of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub revisions: Option<RevisionPlan>,
    pub create: Vec<Pod>,
    pub delete: Vec<(String, DeleteReason)>,
    /// In-place machine outcomes, by pod name (only those with something to do or say).
    pub machines: Vec<(String, Outcome)>,
    /// Hot patches to write, by pod name.
    pub hot_patches: Vec<(String, PodWrite)>,
    /// `InPlaceUpdateReady=True` for pods no update holds (new pods, pods an update left):
    /// every pod carries the readiness gate, so without this it would never become Ready.
    pub release_gates: Vec<(String, PodWrite)>,
    pub notes: Vec<Note>,
    pub status: GameDeploymentStatus,
    /// When to reconcile again even if nothing changes.
    pub requeue_at: Option<Timestamp>,
}

/// Plans one reconcile. `suffix` yields random pod-name suffixes (injected for replay).
pub fn plan(world: &World, suffix: &mut dyn FnMut() -> String) -> Plan {
    let gd = world.gd;
    let views: Vec<PodView> = world.pods.iter().map(|p| PodView::from_pod(p)).collect();
    let resolved = match resolve(&gd.spec)
        .map_err(|e| e.to_string())
        .and_then(|r| check_selector(gd).map(|()| r))
    {
        Ok(r) => r,
        Err(message) => return refuse(world, &views, message),
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

    let mut out = Plan {
        revisions: None,
        create: Vec::new(),
        delete: Vec::new(),
        machines: Vec::new(),
        hot_patches: Vec::new(),
        release_gates: Vec::new(),
        notes: Vec::new(),
        status: GameDeploymentStatus::default(),
        requeue_at: None,
    };
    let mut problems = Vec::new();

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
        .and_then(|a| a.get(scale::DELETION_COST_SORT))
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
            _ => problems.push(Problem {
                condition: FAILED_SCALE,
                reason: "MissingRevision".into(),
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
    // machine and the readiness gate all read it (decoding is JSON parsing).
    let records: Vec<Decoded> = remaining
        .iter()
        .map(|p| inplace::decode(&p.annotations))
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
    for (pod, record) in remaining.iter().zip(&records) {
        let own = pod.revision.as_deref().unwrap_or_default();
        let wants_update = own == update || targets.contains(pod.name.as_str());
        let may_start = rollout.may_start.contains(&pod.name);
        let old_template = revisions.templates.get(own);
        let diff: Result<Target, NotInPlace> = match old_template {
            Some(old) => in_place_target(old, &new_template, &update),
            None if own == update => in_place_target(&new_template, &new_template, &update),
            None => Err(NotInPlace {
                path: format!("revision {own} (no longer stored)"),
            }),
        };
        match resolved.strategy {
            UpdateStrategyType::InplaceUpdate => {
                let target = match (&diff, wants_update) {
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
                step_machine(
                    world,
                    &resolved,
                    (pod, record),
                    &target,
                    may_start,
                    &mut out,
                    &mut problems,
                );
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
                match &diff {
                    Ok(t) => out
                        .hot_patches
                        .push((pod.name.clone(), hot_patch(pod, t, world.now))),
                    Err(why) => problems.push(Problem {
                        condition: FAILED_UPDATE,
                        reason: "FailedUpdatePodHotPatch".into(),
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

    // --- status --------------------------------------------------------------------------
    out.status = status::compute(&status::Observed {
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
        problems: &problems,
        previous,
        now: world.now,
    });
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
    out
}

fn step_machine(
    world: &World,
    resolved: &Resolved,
    (pod, record): (&PodView, &Decoded),
    target: &Target,
    may_start: bool,
    out: &mut Plan,
    problems: &mut Vec<Problem>,
) {
    let hook = match record {
        Decoded::Valid(r) => r
            .hook_run
            .as_ref()
            .and_then(|n| world.hook_runs.get(n).copied()),
        _ => None,
    };
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
        problems.push(Problem {
            condition: FAILED_UPDATE,
            reason: "InPlaceUpdateFailed".into(),
            message: format!("pod {}: {detail}", pod.name),
        });
    }
    if !outcome.actions.is_empty() || outcome.wake_at.is_some() {
        out.machines.push((pod.name.clone(), outcome));
    }
}

/// The write that sets `InPlaceUpdateReady=True` on a pod no in-place update holds, if it
/// needs one. Pods being deleted or written this reconcile are left for the next one.
fn release_gate(pod: &PodView, record: &Decoded, out: &Plan, now: Timestamp) -> Option<PodWrite> {
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
        .map(|(n, c)| {
            (
                n,
                serde_json::json!({"imageID": c.image_id.clone().unwrap_or_default()}),
            )
        })
        .collect();
    let state = serde_json::json!({"revision": target.revision, "updateTimestamp": now.to_string(), "lastContainerStatuses": last});
    w.annotations
        .insert(HOTPATCH_STATE.into(), Some(state.to_string()));
    w.annotations
        .insert(HOTPATCH_CONTAINER.into(), Some("true".into()));
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
    let selector = &gd.spec.selector;
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    if match_labels.is_empty()
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(
            "spec.selector is empty and would match no pods; set spec.selector.matchLabels".into(),
        );
    }
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err("spec.selector.matchExpressions is not supported yet; use matchLabels".into());
    }
    let labels = gd
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    match match_labels
        .iter()
        .find(|(k, v)| labels.get(*k) != Some(*v))
    {
        Some((k, v)) => Err(format!(
            "spec.selector requires {k}={v} but spec.template.metadata.labels does not have it"
        )),
        None => Ok(()),
    }
}

/// `matchLabels` as a selector string, for the scale subresource.
fn label_selector(gd: &GameDeployment) -> String {
    gd.spec
        .selector
        .match_labels
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A plan that touches nothing and says why.
fn refuse(world: &World, views: &[PodView], message: String) -> Plan {
    let gd = world.gd;
    let problems = [Problem {
        condition: FAILED_SCALE,
        reason: "InvalidSpec".into(),
        message: message.clone(),
    }];
    let previous = gd.status.as_ref();
    let update = previous
        .map(|s| s.update_revision.clone())
        .unwrap_or_default();
    let order: Vec<String> = previous
        .map(|s| vec![s.current_revision.clone()])
        .unwrap_or_default();
    let status = status::compute(&status::Observed {
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
        problems: &problems,
        previous,
        now: world.now,
    });
    Plan {
        revisions: None,
        create: Vec::new(),
        delete: Vec::new(),
        machines: Vec::new(),
        hot_patches: Vec::new(),
        release_gates: Vec::new(),
        notes: vec![Note {
            warning: true,
            reason: "InvalidSpec",
            message,
        }],
        status,
        requeue_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::{Action, Endpoint};

    fn seed() -> GameDeployment {
        let text = include_str!("../../deploy/examples/inplace-update.yaml");
        let mut gd: GameDeployment = serde_saphyr::from_str(text).unwrap();
        gd.metadata.uid = Some("gd-uid".into());
        gd.metadata.generation = Some(1);
        gd
    }

    fn now() -> Timestamp {
        "2026-01-01T00:10:00Z".parse().unwrap()
    }

    fn suffixes() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("p{n:04}")
        }
    }

    /// Runs a plan and returns it with the pods it created made Running and Ready.
    fn first_sync(gd: &GameDeployment) -> (Plan, Vec<Pod>, Vec<ControllerRevision>) {
        let hooks = BTreeMap::new();
        let costs = BTreeMap::new();
        let world = World {
            gd,
            pods: &[],
            revisions: &[],
            hook_runs: &hooks,
            node_costs: &costs,
            now: now(),
        };
        let plan = plan(&world, &mut suffixes());
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

    fn plan_with(gd: &GameDeployment, pods: &[Pod], revs: &[ControllerRevision]) -> Plan {
        let pods: Vec<Arc<Pod>> = pods.iter().cloned().map(Arc::new).collect();
        let pods = pods.as_slice();
        let hooks = BTreeMap::new();
        let costs = BTreeMap::new();
        let world = World {
            gd,
            pods,
            revisions: revs,
            hook_runs: &hooks,
            node_costs: &costs,
            now: now(),
        };
        plan(&world, &mut suffixes())
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
        assert_eq!(w.annotations[HOTPATCH_CONTAINER].as_deref(), Some("true"));
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
            .find(|c| c.type_ == FAILED_SCALE)
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
}
