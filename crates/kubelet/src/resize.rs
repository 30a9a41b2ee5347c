//! In-place resize of a bound pod's cpu and memory, as kubelet 1.35 handles it: a spec that
//! differs from what is allocated is admitted against the node (the pod's own allocation
//! counts as free), allocated, and applied after the node's `resizeSeconds`; or it waits as
//! `Deferred` (fits the allocatable, not what is free now) or `Infeasible` (never fits).
//! Each container's `resizePolicy` decides whether a change restarts it. Pure.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

use super::config::{KubeletConfig, NodesConfig};
use super::container_runtime::{
    ContainerPhase, ContainerRuntime, NodeRuntime, PendingReason, Resize, plus, restart,
};
use super::resources::{self, Amounts};

impl NodeRuntime {
    /// Moves pod `uid`'s resize on at `now`: applies a resize whose time has come, and admits
    /// (or defers, or refuses) a spec that differs from the allocation. True when the pod's
    /// allocation shrank, so pods waiting for room should be looked at again.
    pub fn resize(
        &mut self,
        uid: &str,
        spec: &PodSpec,
        config: &KubeletConfig,
        size: &NodesConfig,
        now: Timestamp,
    ) -> bool {
        let Some(node) = self.pod(uid).map(|p| p.node.clone()) else {
            return false;
        };
        let (others, _) = self.usage(&node, Some(uid));
        let Some(pod) = self.pod_mut(uid) else {
            return false;
        };
        if let Resize::InProgress { until } = pod.resize
            && until <= now
            && apply(pod.containers.values_mut(), config)
        {
            pod.resize = Resize::Idle;
        }
        let desired: Vec<(&Container, ResourceRequirements)> = spec
            .containers
            .iter()
            .map(|c| (c, resources::of_container(c)))
            .filter(|(c, _)| pod.containers.contains_key(&c.name))
            .collect();
        let changed = desired.iter().any(|(c, d)| {
            pod.containers
                .get(&c.name)
                .is_some_and(|slot| !resources::same(d, &slot.allocated))
        });
        if !changed {
            if matches!(pod.resize, Resize::Pending { .. }) {
                pod.resize = Resize::Idle;
            }
            return false;
        }
        let wanted = desired
            .iter()
            .map(|(_, d)| resources::requested(d))
            .fold(Amounts::default(), |a, b| a + b);
        let allocatable = resources::allocatable(size);
        if let Some(pending) = refusal(wanted, others, allocatable) {
            pod.resize = pending;
            return false;
        }
        let before = pod.allocated();
        for (c, d) in desired {
            let Some(slot) = pod
                .containers
                .get_mut(&c.name)
                .filter(|slot| !resources::same(&d, &slot.allocated))
            else {
                continue;
            };
            let restarts = ["cpu", "memory"]
                .iter()
                .any(|r| restarts_for(c, r) && changes_what_runs(&slot.allocated, &d, r));
            slot.allocated = d;
            if restarts {
                let image = slot.image.clone();
                restart(slot, uid, &c.name, &image, config, now);
            }
        }
        pod.resize = Resize::InProgress {
            until: plus(now, config.resize_after()),
        };
        let after = pod.allocated();
        after.cpu_milli < before.cpu_milli || after.memory < before.memory
    }
}

/// Why a resize to `wanted` cannot be admitted now, with kubelet's messages: memory is
/// named first when the allocatable cannot hold it (`canResizePod`), cpu first when what is
/// free cannot (the admission predicate's first insufficient resource).
fn refusal(wanted: Amounts, others: Amounts, allocatable: Amounts) -> Option<Resize> {
    let over = wanted.exceeding(&allocatable);
    if let Some((resource, requested, capacity)) = over.last() {
        return Some(Resize::Pending {
            reason: PendingReason::Infeasible,
            message: format!(
                "Node didn't have enough capacity: {resource}, requested: {requested}, capacity: {capacity}"
            ),
        });
    }
    let room = allocatable - others;
    let (resource, requested, _) = *wanted.exceeding(&room).first()?;
    let (used, capacity) = if resource == "cpu" {
        (others.cpu_milli, allocatable.cpu_milli)
    } else {
        (others.memory, allocatable.memory)
    };
    Some(Resize::Pending {
        reason: PendingReason::Deferred,
        message: format!(
            "Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"
        ),
    })
}

/// The container's `resizePolicy` for `resource` is `RestartContainer` (absent means
/// `NotRequired`).
fn restarts_for(c: &Container, resource: &str) -> bool {
    c.resize_policy
        .iter()
        .flatten()
        .any(|p| p.resource_name == resource && p.restart_policy == "RestartContainer")
}

/// Whether the change of `resource` reaches the running container (`computePodResizeAction`):
/// cpu request (shares) and limit (quota) do, memory only through its limit; a memory request
/// is bookkeeping of the node.
fn changes_what_runs(
    from: &ResourceRequirements,
    to: &ResourceRequirements,
    resource: &str,
) -> bool {
    if resource == "cpu" {
        return resources::differs(from, to, "cpu");
    }
    let limit = |r: &ResourceRequirements| {
        r.limits
            .as_ref()
            .and_then(|m| m.get("memory"))
            .map(|q| resources::value("memory", q))
    };
    limit(from) != limit(to)
}

/// Applies the allocation to every running container; a `NotRequired` memory-limit decrease
/// below what the container uses (`memoryUsage` of its image) is not applied, and the resize
/// stays in progress (the documented best-effort OOM guard). False when something is held.
fn apply<'a>(
    containers: impl Iterator<Item = &'a mut ContainerRuntime>,
    config: &KubeletConfig,
) -> bool {
    let mut done = true;
    for c in containers {
        let running = matches!(c.phase, ContainerPhase::Running { .. });
        let usage = config.memory_usage(&c.image);
        let limit_after = c
            .allocated
            .limits
            .as_ref()
            .and_then(|m| m.get("memory"))
            .map(|q| resources::value("memory", q));
        let guarded = running
            && resources::memory_limit_decreases(&c.applied, &c.allocated)
            && limit_after.is_some_and(|l| usage > l);
        if guarded {
            done = false;
        } else {
            c.applied = c.allocated.clone();
        }
    }
    done
}
