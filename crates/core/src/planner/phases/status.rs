//! Phase 7, status: the status and its conditions, the hook-wait lists, and when to look
//! again. It exists so the status is computed once, last, from what was observed and what
//! the earlier phases decided (their problems and hook waits); it decides nothing itself.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::revisions::Revisions;
use crate::api::{GameDeploymentStatus, HookCondition, HookPhase, UpdateStrategyType};
use crate::inplace::{Decoded, MachineStep, PodView, State};
use crate::planner::model::{ConditionReport, PlanInput, SortedPods, position_by_name};
use crate::planner::rules::adoption;
use crate::planner::rules::canary_steps::Canary;
use crate::planner::rules::conditions::{self, Counts};
use crate::planner::rules::limits::Resolved;
use crate::planner::rules::progress_deadline;

/// Pods waiting on a hook in this reconcile, with the hook's phase.
pub struct HookWaits<'a> {
    pub pre_inplace: &'a [(String, HookPhase)],
    pub pre_delete: &'a [(String, HookPhase)],
    pub post_inplace: &'a [(String, HookPhase)],
}

/// What the earlier phases decided that the status reports.
pub struct Decided<'a> {
    pub resolved: &'a Resolved,
    pub revisions: &'a Revisions,
    /// Every phase's problems, in phase order.
    pub problems: &'a [ConditionReport],
    pub waits: HookWaits<'a>,
    pub machines: &'a [(String, MachineStep)],
    pub canary: &'a Canary,
}

/// What the status reads of the pods: worked out from every pod ([`PodFacts::observed`]) or,
/// for a GameDeployment whose pods are all settled, from the roster's tally of them
/// (`planner::settled`).
pub struct PodFacts {
    pub counts: Counts,
    /// Pods whose update to the update revision was given up by force.
    pub abandoned: i32,
    /// The first time after now that a Ready pod becomes available.
    pub next_available: Option<Timestamp>,
    /// Whether a pod's machine wrote a new checkpoint in this reconcile (read only under a
    /// progress deadline).
    pub machines_moved: bool,
}

impl PodFacts {
    /// The facts of `observed`, one pass each; `counts` are its [`Counts`], made once per plan.
    pub fn observed(
        world: &PlanInput,
        observed: &SortedPods,
        decided: &Decided,
        counts: Counts,
    ) -> Self {
        let update = &decided.revisions.update;
        let wait = SignedDuration::from_secs(decided.resolved.limits.min_ready_seconds);
        PodFacts {
            counts,
            abandoned: (observed.records.iter())
                .filter(|d| {
                    matches!(d, Decoded::Valid(r) if r.state == State::Abandoned && r.revision == *update)
                })
                .count() as i32,
            next_available: next_available(&observed.views, wait, world.now),
            // Without a deadline nothing reads it: no pass over the machines.
            machines_moved: deadline_seconds(world, decided.resolved).is_some()
                && machines_moved(observed, decided.machines, update),
        }
    }
}

/// `progressDeadlineSeconds`, where it applies: under OnDelete the controller moves no pod, so
/// waiting for the user is not a stall.
fn deadline_seconds(world: &PlanInput, resolved: &Resolved) -> Option<i64> {
    (world.gd.spec.progress_deadline_seconds())
        .filter(|_| resolved.strategy != UpdateStrategyType::OnDelete)
        .map(i64::from)
}

/// The status to write and when to reconcile again even if nothing changes.
pub fn status(
    world: &PlanInput,
    pods: &PodFacts,
    decided: &Decided,
) -> (GameDeploymentStatus, Option<Timestamp>) {
    let Decided {
        resolved,
        revisions,
        problems,
        waits,
        machines,
        canary,
    } = decided;
    let gd = world.gd;
    let update = &revisions.update;
    let previous = gd.status.as_ref();
    let mut out = conditions::compute(&conditions::StatusInput {
        generation: gd.metadata.generation,
        counts: pods.counts,
        replicas: resolved.limits.replicas,
        partition: resolved.limits.partition,
        paused: resolved.paused,
        update_revision: update,
        current_revision: &revisions.current,
        collision_count: revisions.plan.collision_count,
        label_selector: adoption::label_selector(gd),
        abandoned: pods.abandoned,
        problems,
        previous,
        now: world.now,
    });
    let held = |list: Option<&Vec<HookCondition>>, now_waiting: &[(String, HookPhase)]| {
        hook_conditions(list.map_or(&[][..], Vec::as_slice), now_waiting, world.now)
    };
    out.pre_inplace_hook_condition = held(
        previous.map(|s| &s.pre_inplace_hook_condition),
        waits.pre_inplace,
    );
    out.pre_delete_hook_condition = held(
        previous.map(|s| &s.pre_delete_hook_condition),
        waits.pre_delete,
    );
    out.post_inplace_hook_condition = held(
        previous.map(|s| &s.post_inplace_hook_condition),
        waits.post_inplace,
    );
    out.current_step_index = canary.current_step_index;
    out.current_step_hash = canary.current_step_hash.clone();
    out.canary = canary.status.clone();
    out.pause_conditions = canary.pause_conditions.clone();
    let deadline = progress_deadline::apply(
        &mut out,
        &progress_deadline::DeadlineInput {
            deadline_seconds: deadline_seconds(world, resolved),
            previous,
            machines_moved: pods.machines_moved,
            now: world.now,
        },
    );
    let requeue_at = machines
        .iter()
        .filter_map(|(_, o)| o.wake_at)
        .chain(pods.next_available)
        .chain(canary.wake_at)
        .chain(deadline)
        .min();
    (out, requeue_at)
}

/// The first time after `now` a Ready pod of `views` becomes available (Ready for `wait`).
fn next_available(views: &[&PodView], wait: SignedDuration, now: Timestamp) -> Option<Timestamp> {
    let ready_since = views
        .iter()
        .filter(|p| p.ready)
        .filter_map(|p| p.ready_since);
    match now.checked_sub(wait) {
        // `since + wait > now` is `since > now - wait`: one addition, not one per pod. Adding is
        // monotonic, so when the earliest such `since` overflows, every later one does too.
        Ok(cutoff) => ready_since
            .filter(|since| *since > cutoff)
            .min()
            .and_then(|since| since.checked_add(wait).ok()),
        Err(_) => next_available_by_pod(ready_since, wait, now),
    }
}

/// [`next_available`] pod by pod: for a `wait` so long `now - wait` is out of range.
fn next_available_by_pod(
    ready_since: impl Iterator<Item = Timestamp>,
    wait: SignedDuration,
    now: Timestamp,
) -> Option<Timestamp> {
    ready_since
        .filter_map(|since| since.checked_add(wait).ok())
        .filter(|t| *t > now)
        .min()
}

/// Whether a pod's machine wrote a new checkpoint in this reconcile: progress the counts may
/// not show yet (a pod taken out of endpoints, its images patched).
fn machines_moved(observed: &SortedPods, machines: &[(String, MachineStep)], update: &str) -> bool {
    machines.iter().any(|(pod, step)| {
        position_by_name(&observed.views, pod)
            .is_some_and(|i| progress_deadline::machine_moved(observed.records[i], step, update))
    })
}

/// The status list the original keeps of pods waiting on a hook (`preInplaceHookCondition`,
/// `preDeleteHookCondition`): one entry per waiting pod, its start time kept from before.
fn hook_conditions(
    previous: &[HookCondition],
    waiting: &[(String, HookPhase)],
    now: Timestamp,
) -> Vec<HookCondition> {
    // By name once, not a scan per waiting pod: thousands may wait on one preDelete hook.
    let started: HashMap<&str, &Time> = previous
        .iter()
        .map(|c| (c.pod_name.as_str(), &c.start_time))
        .collect();
    waiting
        .iter()
        .map(|(pod, phase)| HookCondition {
            pod_name: pod.clone(),
            start_time: started.get(pod.as_str()).map_or(Time(now), |&t| t.clone()),
            phase: *phase,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over Ready times around `now` and waits up to the ends of the timestamp range, the
    /// one-addition answer is the pod-by-pod one.
    #[test]
    fn the_next_availability_is_the_pod_by_pod_one() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let offsets = [-7200, -601, -600, -599, -30, -1, 0, 1, 30, 3600];
        let sinces: Vec<Timestamp> = offsets
            .iter()
            .map(|s| now + SignedDuration::from_secs(*s))
            .chain([Timestamp::MIN, Timestamp::MAX])
            .collect();
        let waits = [
            0,
            1,
            30,
            600,
            7200,
            i64::from(i32::MAX),
            400_000_000_000,
            -5,
        ];
        for wait in waits.map(SignedDuration::from_secs) {
            for n in 0..sinces.len() {
                let views: Vec<PodView> = (sinces[n..].iter().chain(&sinces[..n]))
                    .enumerate()
                    .map(|(i, since)| PodView {
                        name: format!("p{i}"),
                        ready: i % 4 != 3,
                        ready_since: (i % 5 != 4).then_some(*since),
                        ..Default::default()
                    })
                    .collect();
                let refs: Vec<&PodView> = views.iter().collect();
                let by_pod = next_available_by_pod(
                    refs.iter()
                        .filter(|p| p.ready)
                        .filter_map(|p| p.ready_since),
                    wait,
                    now,
                );
                assert_eq!(next_available(&refs, wait, now), by_pod, "wait {wait:?}");
            }
        }
    }
}
