//! Phase 5, update: which pods move to the update revision now (partition and
//! maxUnavailable), and how: the in-place machine's next step, a recreate, or a hot patch.
//! Pods the scale phase deletes are left out. It exists to keep "which pods, how" in one
//! place, with the readiness-gate release of the pods it leaves alone (which depends on what
//! it just decided for each pod). It may not run preDelete or postInplace hooks or hold back
//! deletions (that is [`super::gates`]), and it starts nothing in a reconcile that scales or
//! while paused (machines already running still advance).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use super::revisions::Revisions;
use super::scale::Scaled;
use crate::api::{HookPhase, InfeasibleResizePolicy, UpdateStrategyType};
use crate::inplace::{
    self, Decoded, Endpoint, Input, MachineStep, PodView, PodWrite, State, Target,
};
use crate::names;
use crate::planner::model::{ConditionReport, DeleteReason, EventNote, PlanInput, SortedPods};
use crate::planner::rules::budget::{RolloutTargets, rollout_targets};
use crate::planner::rules::limits::Resolved;
use crate::planner::rules::resize_fit::fits_some_node;
use crate::planner::rules::template_diff::{NotInPlace, in_place_target};

/// The update decisions of this reconcile.
#[derive(Default)]
pub struct Updated {
    /// In-place machine outcomes, by pod name (only those with something to do or say).
    pub machines: Vec<(String, MachineStep)>,
    /// Hot patches to write, by pod name.
    pub hot_patches: Vec<(String, PodWrite)>,
    /// `InPlaceUpdateReady=True` for pods no update holds (new pods, pods an update left):
    /// every pod carries the readiness gate, so without this it would never become Ready.
    pub release_gates: Vec<(String, PodWrite)>,
    /// Pods to recreate (before the preDelete gate).
    pub recreate: Vec<(String, DeleteReason)>,
    pub problems: Vec<ConditionReport>,
    /// Pods whose in-place machine waits on its preInplace hook, with the hook's phase.
    pub waiting: Vec<(String, HookPhase)>,
    pub notes: Vec<EventNote>,
}

/// Where one pod's turn in [`update`] began: how long each list of [`Updated`] was.
#[derive(Clone, Copy)]
struct Turn {
    recreate: usize,
    hot_patches: usize,
    machines: usize,
}

impl Updated {
    fn turn(&self) -> Turn {
        Turn {
            recreate: self.recreate.len(),
            hot_patches: self.hot_patches.len(),
            machines: self.machines.len(),
        }
    }

    /// Whether the pod whose turn began at `turn` is being recreated or hot-patched, or its
    /// machine writes or holds it. Each pod adds only its own entries, so they are the ones
    /// after `turn`: no scan of every pod's (quadratic over 10,000 pods).
    fn busy_since(&self, turn: Turn) -> bool {
        self.recreate.len() > turn.recreate
            || self.hot_patches.len() > turn.hot_patches
            || self.machines[turn.machines..].iter().any(|(_, o)| {
                o.writes().next().is_some()
                    || !matches!(o.state, None | Some(State::Ready | State::Abandoned))
            })
    }
}

/// Decides the updates of this reconcile.
pub fn update(
    world: &PlanInput,
    resolved: &Resolved,
    observed: &SortedPods,
    revisions: &Revisions,
    scaled: &Scaled,
) -> Updated {
    let views = &observed.views;
    let update = &revisions.update;
    let mut out = Updated::default();
    let deleting: BTreeSet<&str> = scaled.delete.iter().map(|(n, _)| n.as_str()).collect();
    // Without deletions (the common case) every pod remains: no copies of 10,000 views. Views
    // and records come from one pass, so each pod meets its own record.
    let (remaining, records): (Cow<[&PodView]>, Cow<[&Decoded]>) = if deleting.is_empty() {
        (Cow::Borrowed(views), Cow::Borrowed(&observed.records))
    } else {
        let (views, records): (Vec<_>, Vec<_>) = observed.remaining(&deleting).unzip();
        (Cow::Owned(views), Cow::Owned(records))
    };
    // OnDelete chooses no pod: a pod moves only when the user deletes it and the scale phase
    // creates its replacement from the update revision. No budget to work out either.
    let mut rollout = if resolved.strategy == UpdateStrategyType::OnDelete {
        RolloutTargets::default()
    } else {
        let in_flight = in_flight(&remaining, &records, update, resolved);
        rollout_targets(&remaining, update, &in_flight, resolved.limits, world.now)
    };
    if scaled.scaling() || resolved.paused {
        // The original skips updates in a sync that scaled, and a pause stops new updates;
        // machines already running still advance, so no pod is left unready.
        rollout.start_none();
    }
    let templates = &revisions.plan.templates;
    let new_template = templates.get(update).cloned().unwrap_or(Value::Null);
    // The difference between two templates is the same for every pod on the same revision:
    // compute it once per revision, not once per pod.
    let mut diffs: BTreeMap<&str, Result<Target, NotInPlace>> = BTreeMap::new();
    // A pod not (or no longer) chosen keeps its own revision's target: one per revision too.
    let mut own_targets: BTreeMap<&str, Option<Target>> = BTreeMap::new();
    let moving_to = (update.as_str(), &new_template);
    for (i, (pod, &record)) in remaining.iter().zip(records.iter()).enumerate() {
        let own = pod.revision.as_deref().unwrap_or_default();
        let chosen = rollout.of(i);
        let wants_update = own == update || chosen.target;
        let may_start = chosen.may_start;
        let diff = &*diffs
            .entry(own)
            .or_insert_with(|| revision_diff(own, revisions, &new_template, world));
        let turn = out.turn();
        match resolved.strategy {
            // OnDelete starts nothing (above); an in-place update begun under another strategy
            // still finishes, or is called off if it has not patched the pod yet.
            UpdateStrategyType::InplaceUpdate | UpdateStrategyType::OnDelete => {
                if infeasible(world, resolved, (pod, record), moving_to, &mut out) {
                    continue;
                }
                // Borrowed: the 10,000 pods of one revision share their target.
                let target: Cow<Target> = match (diff, wants_update) {
                    (Ok(t), true) => Cow::Borrowed(t),
                    (Err(why), true) if own != update => {
                        if may_start {
                            out.recreate
                                .push((pod.name.clone(), DeleteReason::Recreate(why.to_string())));
                        }
                        continue;
                    }
                    // Not (or no longer) chosen: the pod's own revision, which calls off a
                    // machine that has not patched anything yet.
                    _ => match own_targets
                        .entry(own)
                        .or_insert_with(|| own_target(own, templates, world.resize_supported))
                    {
                        Some(t) => Cow::Borrowed(&*t),
                        None => Cow::Owned(running_target(pod)),
                    },
                };
                if let Some(phase) = step_machine(
                    world,
                    resolved,
                    (pod, record),
                    &target,
                    may_start,
                    &mut out.machines,
                    &mut out.problems,
                ) {
                    out.waiting.push((pod.name.clone(), phase));
                }
            }
            UpdateStrategyType::RollingUpdate => {
                if may_start && own != update && wants_update {
                    out.recreate.push((
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
                    Err(why) => out.problems.push(ConditionReport {
                        condition: names::CONDITION_FAILED_UPDATE,
                        reason: names::EVENT_FAILED_HOTPATCH,
                        message: format!("pod {}: {why}", pod.name),
                    }),
                }
            }
            UpdateStrategyType::HotPatchUpdate => {}
        }
        if let Some(w) = release_gate(pod, record, out.busy_since(turn), world.now) {
            out.release_gates.push((pod.name.clone(), w));
        }
    }

    out
}

/// Per pod, whether its update is under way towards `update`: a machine working towards it,
/// or (hot patch) a patch the kubelet has not applied yet. Such pods keep their place and their
/// share of the budget. An infeasible resize held by `infeasibleResizePolicy: Hold` (`hold`) is
/// given up for this revision, like an abandoned update.
fn in_flight(
    remaining: &[&PodView],
    records: &[&Decoded],
    update: &str,
    resolved: &Resolved,
) -> Vec<bool> {
    let hold = resolved.policy.infeasible_resize == InfeasibleResizePolicy::Hold;
    let hot_patch = resolved.strategy == UpdateStrategyType::HotPatchUpdate;
    remaining
        .iter()
        .zip(records)
        .map(|(p, d)| {
            let machine = match d {
                // The state first: settled pods are decided without comparing revision names.
                Decoded::Valid(r) => {
                    let given_up = matches!(r.state, State::Ready | State::Abandoned)
                        || (hold && r.state == State::ResizeInfeasible);
                    !given_up && r.revision == update
                }
                _ => false,
            };
            machine || (hot_patch && hot_patch_pending(p, update))
        })
        .collect()
}

/// What moving a pod from revision `own` to `update` takes in place, or why it cannot be done
/// in place (then the pod is recreated).
fn revision_diff(
    own: &str,
    revisions: &Revisions,
    new_template: &Value,
    world: &PlanInput,
) -> Result<Target, NotInPlace> {
    let (templates, update) = (&revisions.plan.templates, revisions.update.as_str());
    let resize = world.resize_supported;
    match templates.get(own) {
        Some(old) => in_place_target(old, new_template, update, resize),
        None if own == update => in_place_target(new_template, new_template, update, resize),
        None if own.is_empty() => Err(NotInPlace::changed(format!(
            "revision (none: the pod has no {} label)",
            names::LABEL_REVISION
        ))),
        None => Err(NotInPlace::changed(format!(
            "revision {own} (no longer stored)"
        ))),
    }
}

/// A pod whose resize to `update` (with template `new_template`) its node found infeasible:
/// reports `FailedUpdate`, and under `infeasibleResizePolicy: Recreate` recreates it when some
/// schedulable node could hold the pod at the update revision (else it is held, and the report
/// says why). Returns whether the pod is recreated. The pod already counts against
/// maxUnavailable (its machine is in flight), so recreating it takes no more of the budget.
fn infeasible(
    world: &PlanInput,
    resolved: &Resolved,
    (pod, record): (&PodView, &Decoded),
    (update, new_template): (&str, &Value),
    out: &mut Updated,
) -> bool {
    let Decoded::Valid(r) = record else {
        return false;
    };
    if r.state != State::ResizeInfeasible || r.revision != update || pod.deleting {
        return false;
    }
    let what = r
        .message
        .clone()
        .unwrap_or_else(|| format!("pod {}", pod.name));
    let (message, recreate) = match resolved.policy.infeasible_resize {
        InfeasibleResizePolicy::Hold => (
            format!("{what}; infeasibleResizePolicy Hold keeps the pod as it is"),
            None,
        ),
        InfeasibleResizePolicy::Recreate if fits_some_node(new_template, world.nodes) => (
            format!("{what}; infeasibleResizePolicy Recreate recreates the pod"),
            Some(format!(
                "its in-place resize is infeasible on node {} (infeasibleResizePolicy Recreate)",
                pod.node_name.as_deref().unwrap_or("(none)")
            )),
        ),
        InfeasibleResizePolicy::Recreate => (
            format!(
                "{what}; no schedulable node's allocatable can fit the pod's requests, so it is \
                 held rather than recreated into Pending"
            ),
            None,
        ),
    };
    out.problems.push(ConditionReport {
        condition: names::CONDITION_FAILED_UPDATE,
        reason: names::EVENT_RESIZE_INFEASIBLE,
        message,
    });
    match recreate {
        Some(why) => {
            out.recreate
                .push((pod.name.clone(), DeleteReason::Recreate(why)));
            true
        }
        None => false,
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread's plans ran the in-place machine (not its fast path).
    pub(crate) static MACHINE_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Steps one pod's in-place machine; returns the hook phase when the pod waits on its hook.
fn step_machine(
    world: &PlanInput,
    resolved: &Resolved,
    (pod, record): (&PodView, &Decoded),
    target: &Target,
    may_start: bool,
    machines: &mut Vec<(String, MachineStep)>,
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
    let input = Input {
        pod,
        target,
        policy: &resolved.policy,
        hook,
        selected: may_start,
        now: world.now,
    };
    // A settled pod's step is known without running the machine (`inplace::at_rest`).
    let outcome = inplace::at_rest(&input, record).unwrap_or_else(|| {
        #[cfg(test)]
        MACHINE_STEPS.with(|n| n.set(n.get() + 1));
        inplace::advance(&input, record)
    });
    if outcome.state == Some(State::Failed) || outcome.state == Some(State::Unknown) {
        // The checkpoint this step writes says why, when it is the step that failed the pod.
        let written = outcome
            .writes()
            .filter_map(|w| w.checkpoint.as_ref())
            .last();
        let detail = match (written, record) {
            (Some(r), _) => r.message.clone().or_else(|| r.reason.clone()),
            (None, Decoded::Valid(r)) => r.message.clone().or_else(|| r.reason.clone()),
            (None, _) => Some("its in-place update state is unreadable".into()),
        }
        .unwrap_or_default();
        problems.push(ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::REASON_INPLACE_UPDATE_FAILED,
            message: format!("pod {}: {detail}", pod.name),
        });
    }
    if outcome.state == Some(State::ResizeInfeasible)
        && let Some(r) = outcome
            .writes()
            .filter_map(|w| w.checkpoint.as_ref())
            .last()
    {
        // The step that found it infeasible; later reconciles report it from the record.
        problems.push(ConditionReport {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::EVENT_RESIZE_INFEASIBLE,
            message: r.message.clone().unwrap_or_default(),
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
            reason: names::REASON_PRE_INPLACE_HOOK_FAILED,
            message: format!(
                "pod {}: preInplaceUpdateStrategy HookRun {name} is {phase}; force Pending to \
                 retry it or Unready to bypass it (annotation {})",
                pod.name,
                names::ANNOTATION_FORCE
            ),
        });
    }
    if !outcome.actions.is_empty() || outcome.wake_at.is_some() {
        machines.push((pod.name.clone(), outcome));
    }
    waiting
}

/// The target that keeps the pods of `revision` where they are, from its template.
fn own_target(revision: &str, templates: &BTreeMap<String, Value>, resize: bool) -> Option<Target> {
    templates
        .get(revision)
        .and_then(|t| in_place_target(t, t, revision, resize).ok())
}

/// A pod's own target when its revision's template is gone: the images it is specified to run.
fn running_target(pod: &PodView) -> Target {
    Target {
        revision: pod.revision.clone().unwrap_or_default(),
        images: pod
            .spec_images
            .iter()
            .map(|(c, i)| (c.clone(), i.clone()))
            .collect(),
        ..Default::default()
    }
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

/// Whether `pod` was hot-patched to `update` and the kubelet has not applied it yet
/// ([`crate::inplace::observe::unapplied_hot_patch`], derived with the view).
fn hot_patch_pending(pod: &PodView, update: &str) -> bool {
    pod.revision.as_deref() == Some(update) && pod.unapplied_hot_patch.as_deref() == Some(update)
}

/// The write that sets `InPlaceUpdateReady=True` on a pod no in-place update holds, if it
/// needs one. Pods being deleted or written this reconcile are left for the next one.
fn release_gate(pod: &PodView, record: &Decoded, busy: bool, now: Timestamp) -> Option<PodWrite> {
    if pod.deleting || pod.in_place_ready == Some(true) {
        return None;
    }
    let settled = match record {
        Decoded::Missing => true,
        Decoded::Valid(r) => matches!(r.state, State::Ready | State::Abandoned),
        Decoded::Unsupported { .. } | Decoded::Corrupt { .. } => false,
    };
    if !settled {
        return None;
    }
    if busy {
        return None;
    }
    // No resourceVersion precondition: a new pod's status is being written by its kubelet at
    // this very moment, and the version it was decided on was stale nearly every time (47
    // conflicts in a 100-pod scale-up). What the decision rests on cannot have changed: only
    // this operator writes in-place records, one instance leads at a time, and it waits for
    // its own writes to reach its cache (`expectations`) before deciding again.
    let mut w = PodWrite::new(Endpoint::PodStatus, None);
    w.condition = Some(inplace::ConditionWrite {
        ready: true,
        reason: "NoInPlaceUpdate".into(),
        message: "no in-place update holds the pod".into(),
        last_transition_time: now,
    });
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::ContainerView;

    fn patched(image_id: &str, started_at: &str) -> PodView {
        let state = serde_json::json!({"revision": "r2", "updateTimestamp": "2026-01-01T00:00:10Z",
            "lastContainerStatuses": {"python": {"imageID": "sha256:old"}}});
        let mut view = PodView {
            name: "p".into(),
            revision: Some("r2".into()),
            annotations: [(
                names::ANNOTATION_HOTPATCH_STATE.to_string(),
                state.to_string(),
            )]
            .into_iter()
            .collect(),
            containers: [(
                "python".to_string(),
                ContainerView {
                    image_id: Some(image_id.into()),
                    started_at: Some(started_at.parse().unwrap()),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        // As `PodView::from_pod` derives it.
        view.unapplied_hot_patch =
            crate::inplace::observe::unapplied_hot_patch(&view.annotations, &view.containers);
        view
    }

    #[test]
    fn a_hot_patch_is_pending_until_the_container_runs_another_image_or_restarts() {
        assert!(hot_patch_pending(
            &patched("sha256:old", "2026-01-01T00:00:00Z"),
            "r2"
        ));
        assert!(!hot_patch_pending(
            &patched("sha256:new", "2026-01-01T00:00:00Z"),
            "r2"
        ));
        // Same digest under a new tag: the restart shows it was applied.
        assert!(!hot_patch_pending(
            &patched("sha256:old", "2026-01-01T00:00:11Z"),
            "r2"
        ));
        // A patch to another revision is not this update.
        assert!(!hot_patch_pending(
            &patched("sha256:old", "2026-01-01T00:00:00Z"),
            "r3"
        ));
        assert!(!hot_patch_pending(&PodView::default(), "r2"));
    }
}
