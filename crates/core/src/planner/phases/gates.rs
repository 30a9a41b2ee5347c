//! Phase 6, gates: the hooks around the pods' lifecycle. Every deletion decided by the scale
//! and update phases passes the preDelete hook here, last, so scale-down, podsToDelete and
//! recreates are gated alike; postInplace HookRuns are started for pods whose in-place update
//! completed; HookRuns whose pod is gone or moved on are cleaned up. It exists so that no
//! pod is deleted before its hook succeeded; it may not add deletions or pick pods to update.

use crate::api::HookPhase;
use crate::inplace::{self, Decoded, Endpoint, HookKind, HookRunRequest, PodView, PodWrite, State};
use crate::names;
use crate::planner::model::{ConditionReport, DeleteReason, PlanInput, SortedPods, find_by_name};
use crate::planner::rules::hookruns;
use crate::planner::rules::predelete::{self, DeletionGate, DeletionVerdict};

/// The hook decisions of this reconcile.
#[derive(Default)]
pub struct Gated {
    /// The deletions whose preDelete hook let them through.
    pub delete: Vec<(String, DeleteReason)>,
    /// Pods whose deletion waits for their preDelete hook: the HookRun to create, if it is
    /// not there yet, and the write marking the pod, if it is not marked yet.
    pub pre_delete: Vec<(String, Option<HookRunRequest>, Option<PodWrite>)>,
    /// PostInplace HookRuns to create, by pod name.
    pub post_hooks: Vec<(String, HookRunRequest)>,
    /// Pod HookRuns whose pod is gone or on another revision.
    pub stale_hook_runs: Vec<String>,
    pub problems: Vec<ConditionReport>,
    /// Pods waiting on their preDelete hook, with the hook's phase.
    pub pre_delete_waiting: Vec<(String, HookPhase)>,
    /// Pods waiting on their postInplace hook, with the hook's phase.
    pub post_inplace_waiting: Vec<(String, HookPhase)>,
}

/// Passes `deletions` (scale's, then update's) through the preDelete gate and decides the
/// postInplace and stale HookRuns.
pub fn gates(
    world: &PlanInput,
    observed: &SortedPods,
    deletions: Vec<(String, DeleteReason)>,
) -> Gated {
    let mut out = Gated::default();
    gate_deletions(world, &observed.views, deletions, &mut out);
    post_hooks(world, &observed.views, &observed.records, &mut out);
    out.stale_hook_runs = hookruns::stale(world.hook_runs, &observed.views);
    out
}

/// The postInplace hook (`postInplaceUpdateStrategy`): once a pod's in-place update to its
/// revision has completed, a HookRun reports on it; it gates nothing. Level-based: the run's
/// existence is the record that it was started, so it is kept until the pod moves on to
/// another revision or goes (then [`hookruns::stale`] removes it), and the status lists the pod
/// until the run has succeeded.
fn post_hooks(world: &PlanInput, views: &[&PodView], records: &[&Decoded], out: &mut Gated) {
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
        let name = HookKind::PostInplace.run_name(&r.revision, pod.instance_id(), template);
        match world.hook_runs.get(&name).map(|run| run.phase) {
            Some(Some(HookPhase::Successful)) => {}
            Some(phase) => out
                .post_inplace_waiting
                .push((pod.name.clone(), phase.unwrap_or(HookPhase::Pending))),
            None => {
                out.post_inplace_waiting
                    .push((pod.name.clone(), HookPhase::Pending));
                out.post_hooks.push((
                    pod.name.clone(),
                    HookRunRequest {
                        name,
                        template: template.to_string(),
                        args: inplace::pod_hook_args(pod),
                        kind: HookKind::PostInplace,
                        retry_generation: None,
                    },
                ));
            }
        }
    }
}

/// Keeps back the deletions whose preDelete hook has not succeeded yet.
fn gate_deletions(
    world: &PlanInput,
    views: &[&PodView],
    deletions: Vec<(String, DeleteReason)>,
    out: &mut Gated,
) {
    let strategy = world.gd.spec.pre_delete_update_strategy.as_ref();
    let gate = strategy
        .and_then(|s| s.hook.as_ref())
        .map(|h| DeletionGate {
            template: &h.template_name,
            retry_generation: hookruns::retry_generation(world.gd, strategy),
        });
    let mut kept = Vec::new();
    for (name, why) in deletions {
        // A binary search: a scale-down of thousands finds each pod at once, and deleting
        // one pod of 10,000 indexes none.
        let Some(pod) = find_by_name(views, &name) else {
            continue;
        };
        match predelete::check(pod, gate, world.hook_runs) {
            DeletionVerdict::Delete => kept.push((name, why)),
            DeletionVerdict::Wait {
                create,
                mark,
                stuck,
                phase,
            } => {
                out.pre_delete_waiting.push((name.clone(), phase));
                let mark = mark.then(|| {
                    let mut w = PodWrite::new(Endpoint::Pod, None);
                    w.annotations
                        .insert(names::ANNOTATION_POD_DELETING.into(), Some("true".into()));
                    w
                });
                if let Some(message) = stuck {
                    out.problems.push(ConditionReport {
                        condition: match why {
                            DeleteReason::Recreate(_) => names::CONDITION_FAILED_UPDATE,
                            _ => names::CONDITION_FAILED_SCALE,
                        },
                        reason: names::REASON_PRE_DELETE_HOOK_FAILED,
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
