//! How many pods to create or delete, and which: the original's `calculateDiffs` and
//! `choosePodsToDelete`, as pure functions. Pod names come from an injected source of suffixes
//! so runs can be replayed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::budget::{ReadyBy, is_available_by};
use super::order::active_pods;
use crate::inplace::PodView;
use crate::names;

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPod {
    pub name: String,
    /// The instance id (the name's random suffix), also a label.
    pub instance_id: String,
    /// Revision to create it from.
    pub revision: String,
}

/// What the replica count decision reads.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaInput<'a> {
    pub name: &'a str,
    pub pods: &'a [&'a PodView],
    pub replicas: i32,
    pub partition: i32,
    /// Extra pods allowed while an update is in progress.
    pub max_surge: i32,
    pub update_revision: &'a str,
    /// Revision of the old pods to create when the partition keeps some on it.
    pub current_revision: &'a str,
    pub pods_to_delete: &'a [String],
    /// Node name -> node deletion cost.
    pub node_costs: &'a BTreeMap<String, i64>,
    /// Sort pod deletion costs descending instead of ascending.
    pub cost_descending: bool,
    /// `scaleStrategy.createBatch`: the most pods not Ready at once that creation may leave;
    /// `None` creates every missing pod at once.
    pub create_batch: Option<i32>,
    /// A new pod counts toward ending the surge once available (ready this long).
    pub min_ready_seconds: i64,
    pub now: Timestamp,
}

/// The pods to create and to delete for the replica count.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ReplicaDiff {
    pub create: Vec<NewPod>,
    /// Pod names to delete, in order.
    pub delete: Vec<String>,
}

/// The most pods one plan creates; the next reconcile creates more. kube's ReplicaSet
/// controller bounds a sync the same way (`burstReplicas`, 500). Without it a schema-valid
/// `replicas: 2147483647` planned two billion pods in one go and the operator ran out of memory.
pub(crate) const MAX_CREATES_PER_PLAN: i32 = 500;

/// Decides what to create and delete. `suffix` yields candidate 5-character suffixes; names
/// already taken (by any pod, terminating ones included) are skipped.
pub(crate) fn replica_diff(
    input: &ReplicaInput,
    suffix: &mut dyn FnMut() -> String,
) -> ReplicaDiff {
    let mut plan = ReplicaDiff::default();

    // Pods named in podsToDelete go first; their replacements are created below.
    let named: BTreeSet<&str> = input.pods_to_delete.iter().map(String::as_str).collect();
    let live = || input.pods.iter().copied().filter(|p| !p.deleting);
    if !named.is_empty() {
        plan.delete.extend(
            live()
                .filter(|p| named.contains(p.name.as_str()))
                .map(|p| p.name.clone()),
        );
    }
    // The pods that remain, walked again only when some are deleted (no copies otherwise).
    let remaining = || live().filter(|p| !named.contains(p.name.as_str()));

    // Surge covers only the new pods not yet available: once `replicas - partition` pods run
    // the update revision and serve, the old pods beyond `replicas` are surplus and scale down
    // (old first). Counting unavailable new pods as missing keeps maxUnavailable 0 honest.
    let ready_by = ReadyBy::new(input.min_ready_seconds, input.now);
    let (mut kept, mut old, mut new) = (0i32, 0i32, 0i32);
    for p in remaining() {
        kept += 1;
        if p.revision.as_deref() != Some(input.update_revision) {
            old += 1;
        } else if is_available_by(p, ready_by) {
            new += 1;
        }
    }
    let updating = old > 0 && input.current_revision != input.update_revision;
    let replicas = input.replicas.max(0);
    let missing_new = (replicas - input.partition.clamp(0, replicas) - new).max(0);
    let surge = if updating {
        input.max_surge.clamp(0, old).min(missing_new)
    } else {
        0
    };
    let desired = input.replicas.max(0) + surge;
    let diff = desired - kept;

    if diff > 0 {
        let mut taken: BTreeSet<String> = input.pods.iter().map(|p| p.name.clone()).collect();
        // Keep `partition` pods on the old revision: create old ones first while short of it.
        let mut old_needed = (input.partition.min(input.replicas) - old).max(0);
        for _ in 0..diff
            .min(MAX_CREATES_PER_PLAN)
            .min(wave_room(input, remaining()))
        {
            let (name, id) = fresh_name(input.name, &mut taken, suffix);
            let revision = if old_needed > 0 && input.current_revision != input.update_revision {
                old_needed -= 1;
                input.current_revision
            } else {
                input.update_revision
            };
            plan.create.push(NewPod {
                name,
                instance_id: id,
                revision: revision.to_string(),
            });
        }
    } else if diff < 0 {
        // The deletion order is worked out only here, when something is deleted.
        let mut victims: Vec<&PodView> = remaining().collect();
        victims.sort_by(|a, b| deletion_order(a, b, input));
        plan.delete.extend(
            victims
                .iter()
                .take((-diff) as usize)
                .map(|p| p.name.clone()),
        );
    }
    plan
}

/// How many pods this plan may create under `createBatch`: creation comes in waves of at most
/// that many pods, and a wave is under way while pods (kept ones, not being deleted) are not
/// Ready, so the next pods are created as earlier ones become Ready, as CloneSet's
/// `scaleStrategy.maxUnavailable` holds scale-ups back.
fn wave_room<'p>(input: &ReplicaInput, remaining: impl Iterator<Item = &'p PodView>) -> i32 {
    match input.create_batch {
        None => i32::MAX,
        Some(batch) => {
            let unready = remaining.filter(|p| !p.ready).count() as i32;
            (batch.max(1) - unready).max(0)
        }
    }
}

fn fresh_name(
    base: &str,
    taken: &mut BTreeSet<String>,
    suffix: &mut dyn FnMut() -> String,
) -> (String, String) {
    loop {
        let id = suffix();
        let name = format!("{base}-{id}");
        if taken.insert(name.clone()) {
            return (name, id);
        }
    }
}

/// Old revisions first, then the active-pods order, then node cost, then pod deletion cost
/// (pods without a cost last).
fn deletion_order(a: &PodView, b: &PodView, input: &ReplicaInput) -> Ordering {
    let is_new = |p: &PodView| p.revision.as_deref() == Some(input.update_revision);
    let node_cost = |p: &PodView| {
        p.node_name
            .as_ref()
            .and_then(|n| input.node_costs.get(n))
            .copied()
    };
    let pod_cost = |p: &PodView| {
        p.annotations
            .get(names::ANNOTATION_POD_DELETION_COST)
            .and_then(|c| parse_cost(c).ok())
    };
    is_new(a)
        .cmp(&is_new(b))
        .then_with(|| active_pods(a, b))
        .then_with(|| missing_last(node_cost(a), node_cost(b), false))
        .then_with(|| missing_last(pod_cost(a), pod_cost(b), input.cost_descending))
}

/// A deletion-cost annotation that is not an integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{annotation} {value:?} is not an integer")]
pub struct BadCost {
    pub annotation: &'static str,
    pub value: String,
}

fn parse_cost(value: &str) -> Result<i64, std::num::ParseIntError> {
    value.trim().parse()
}

/// A node's deletion cost from its annotations: `None` without the annotation, an error for a
/// value that is not an integer (the node then counts as having none).
pub fn node_cost(annotations: Option<&BTreeMap<String, String>>) -> Result<Option<i64>, BadCost> {
    annotations
        .and_then(|a| a.get(names::ANNOTATION_NODE_DELETION_COST))
        .map(|v| {
            parse_cost(v).map_err(|_| BadCost {
                annotation: names::ANNOTATION_NODE_DELETION_COST,
                value: v.clone(),
            })
        })
        .transpose()
}

fn missing_last(a: Option<i64>, b: Option<i64>, descending: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if descending => y.cmp(&x),
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Creation batches of 1, 2, 4, ... as the original (and ReplicaSets) use: a failing create
/// stops the rest, so a bad template costs one failed call, not hundreds.
pub(crate) fn slow_start_batches(total: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let (mut left, mut size) = (total, 1usize);
    while left > 0 {
        let n = size.min(left);
        batches.push(n);
        left -= n;
        size *= 2;
    }
    batches
}

#[cfg(test)]
mod tests;
