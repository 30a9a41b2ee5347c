//! Phase 7, status: the status and its conditions, the hook-wait lists, and when to look
//! again. It exists so the status is computed once, last, from what was observed and what
//! the earlier phases decided (their problems and hook waits); it decides nothing itself.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::revisions::Revisions;
use crate::api::{GameDeploymentStatus, HookCondition, HookPhase, UpdateStrategyType};
use crate::inplace::{Decoded, MachineStep, State};
use crate::planner::model::{ConditionReport, PlanInput, SortedPods};
use crate::planner::rules::adoption;
use crate::planner::rules::canary_steps::Canary;
use crate::planner::rules::conditions;
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

/// The status to write and when to reconcile again even if nothing changes.
pub fn status(
    world: &PlanInput,
    observed: &SortedPods,
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
    let views = &observed.views;
    let update = &revisions.update;
    let previous = gd.status.as_ref();
    let mut out = conditions::compute(&conditions::StatusInput {
        generation: gd.metadata.generation,
        pods: views,
        replicas: resolved.limits.replicas,
        partition: resolved.limits.partition,
        paused: resolved.paused,
        update_revision: update,
        revisions: &revisions.plan.order,
        collision_count: revisions.plan.collision_count,
        label_selector: adoption::label_selector(gd),
        min_ready_seconds: resolved.limits.min_ready_seconds,
        abandoned: observed
            .records
            .iter()
            .filter(|d| {
                matches!(d, Decoded::Valid(r) if r.revision == *update && r.state == State::Abandoned)
            })
            .count() as i32,
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
    // Under OnDelete the controller moves no pod: waiting for the user is not a stall.
    let deadline_seconds = gd
        .spec
        .progress_deadline_seconds()
        .filter(|_| resolved.strategy != UpdateStrategyType::OnDelete)
        .map(i64::from);
    let deadline = progress_deadline::apply(
        &mut out,
        &progress_deadline::DeadlineInput {
            deadline_seconds,
            previous,
            // Without a deadline nothing reads it: no pass over the machines.
            machines_moved: deadline_seconds.is_some()
                && machines_moved(observed, machines, update),
            now: world.now,
        },
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
    let requeue_at = machines
        .iter()
        .filter_map(|(_, o)| o.wake_at)
        .chain(availability)
        .chain(canary.wake_at)
        .chain(deadline)
        .min();
    (out, requeue_at)
}

/// Whether a pod's machine wrote a new checkpoint in this reconcile: progress the counts may
/// not show yet (a pod taken out of endpoints, its images patched).
fn machines_moved(observed: &SortedPods, machines: &[(String, MachineStep)], update: &str) -> bool {
    machines.iter().any(|(pod, step)| {
        observed
            .views
            .binary_search_by(|v| v.name.as_str().cmp(pod))
            .is_ok_and(|i| progress_deadline::machine_moved(observed.records[i], step, update))
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
