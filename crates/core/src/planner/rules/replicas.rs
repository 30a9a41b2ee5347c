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
    let live: Vec<&PodView> = input.pods.iter().filter(|p| !p.deleting).copied().collect();
    let mut plan = ReplicaDiff::default();

    // Pods named in podsToDelete go first; their replacements are created below.
    let named: BTreeSet<&str> = input.pods_to_delete.iter().map(String::as_str).collect();
    plan.delete.extend(
        live.iter()
            .filter(|p| named.contains(p.name.as_str()))
            .map(|p| p.name.clone()),
    );
    let remaining: Vec<&PodView> = live
        .iter()
        .copied()
        .filter(|p| !named.contains(p.name.as_str()))
        .collect();

    let old = remaining
        .iter()
        .filter(|p| p.revision.as_deref() != Some(input.update_revision))
        .count() as i32;
    let updating = old > 0 && input.current_revision != input.update_revision;
    // Surge covers only the new pods not yet available: once `replicas - partition` pods run
    // the update revision and serve, the old pods beyond `replicas` are surplus and scale down
    // (old first). Counting unavailable new pods as missing keeps maxUnavailable 0 honest.
    let ready_by = ReadyBy::new(input.min_ready_seconds, input.now);
    let new = remaining
        .iter()
        .filter(|p| p.revision.as_deref() == Some(input.update_revision))
        .filter(|p| is_available_by(p, ready_by))
        .count() as i32;
    let replicas = input.replicas.max(0);
    let missing_new = (replicas - input.partition.clamp(0, replicas) - new).max(0);
    let surge = if updating {
        input.max_surge.clamp(0, old).min(missing_new)
    } else {
        0
    };
    let desired = input.replicas.max(0) + surge;
    let diff = desired - remaining.len() as i32;

    if diff > 0 {
        let mut taken: BTreeSet<String> = input.pods.iter().map(|p| p.name.clone()).collect();
        // Keep `partition` pods on the old revision: create old ones first while short of it.
        let mut old_needed = (input.partition.min(input.replicas) - old).max(0);
        for _ in 0..diff.min(MAX_CREATES_PER_PLAN) {
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
        let mut victims = remaining;
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
mod tests {
    use super::*;

    fn pod(name: &str, rev: &str) -> PodView {
        PodView {
            name: name.into(),
            revision: Some(rev.into()),
            node_name: Some("n1".into()),
            phase: Some("Running".into()),
            ready: true,
            ready_since: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        }
    }

    fn suffixes(list: &[&str]) -> impl FnMut() -> String {
        let mut it: Vec<String> = list.iter().rev().map(|s| s.to_string()).collect();
        move || it.pop().expect("enough suffixes")
    }

    fn input<'a>(
        pods: &'a [&'a PodView],
        replicas: i32,
        costs: &'a BTreeMap<String, i64>,
    ) -> ReplicaInput<'a> {
        ReplicaInput {
            name: "gd",
            pods,
            replicas,
            partition: 0,
            max_surge: 0,
            update_revision: "r2",
            current_revision: "r2",
            pods_to_delete: &[],
            node_costs: costs,
            cost_descending: false,
            min_ready_seconds: 0,
            now: "2026-01-02T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn creates_with_unique_names() {
        let pods = [pod("gd-aaaaa", "r2")];
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let p = replica_diff(
            &input(&pods, 3, &costs),
            &mut suffixes(&["aaaaa", "bbbbb", "ccccc"]),
        );
        let names: Vec<&str> = p.create.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gd-bbbbb", "gd-ccccc"], "a taken suffix is skipped");
        assert_eq!(p.create[0].instance_id, "bbbbb");
    }

    /// A schema-valid `replicas: 2147483647` planned two billion pods in one plan.
    #[test]
    fn one_plan_creates_at_most_a_burst() {
        let costs = BTreeMap::new();
        let mut n = 0u64;
        let p = replica_diff(&input(&[], i32::MAX, &costs), &mut || {
            n += 1;
            format!("{n:x}")
        });
        assert_eq!(p.create.len(), MAX_CREATES_PER_PLAN as usize);
    }

    #[test]
    fn scale_up_during_a_partitioned_update_creates_old_pods_first() {
        let pods = [pod("gd-a", "r2"), pod("gd-b", "r1")];
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let mut i = input(&pods, 5, &costs);
        i.partition = 3;
        i.current_revision = "r1";
        let p = replica_diff(&i, &mut suffixes(&["c", "d", "e"]));
        let revs: Vec<&str> = p.create.iter().map(|c| c.revision.as_str()).collect();
        assert_eq!(revs, ["r1", "r1", "r2"]);
    }

    #[test]
    fn scale_down_removes_old_revisions_first_then_by_cost() {
        let mut pods = [
            pod("gd-new1", "r2"),
            pod("gd-old1", "r1"),
            pod("gd-new2", "r2"),
            pod("gd-new3", "r2"),
        ];
        pods[2]
            .annotations
            .insert(names::ANNOTATION_POD_DELETION_COST.into(), "-5".into());
        pods[3]
            .annotations
            .insert(names::ANNOTATION_POD_DELETION_COST.into(), "10".into());
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let p = replica_diff(&input(&pods, 1, &costs), &mut suffixes(&[]));
        assert_eq!(p.delete, ["gd-old1", "gd-new2", "gd-new3"]);
        let mut desc = input(&pods, 2, &costs);
        desc.cost_descending = true;
        assert_eq!(
            replica_diff(&desc, &mut suffixes(&[])).delete,
            ["gd-old1", "gd-new3"]
        );
    }

    #[test]
    fn scale_down_takes_pods_on_the_cheapest_node_first_and_unknown_nodes_last() {
        let on = |name: &str, node: &str| PodView {
            node_name: Some(node.into()),
            ..pod(name, "r2")
        };
        let pods = [
            on("gd-plain", "plain"),
            on("gd-dear", "dear"),
            on("gd-cheap", "cheap"),
            on("gd-negative", "negative"),
        ];
        let costs: BTreeMap<String, i64> = [("dear", 100), ("cheap", 1), ("negative", -3)]
            .map(|(n, c)| (n.to_string(), c))
            .into();
        let pods: Vec<&PodView> = pods.iter().collect();
        let p = replica_diff(&input(&pods, 1, &costs), &mut suffixes(&[]));
        assert_eq!(p.delete, ["gd-negative", "gd-cheap", "gd-dear"]);
    }

    #[test]
    fn node_costs_are_integers_or_reported() {
        let with = |v: &str| -> BTreeMap<String, String> {
            [(
                names::ANNOTATION_NODE_DELETION_COST.to_string(),
                v.to_string(),
            )]
            .into()
        };
        assert_eq!(node_cost(None), Ok(None));
        assert_eq!(node_cost(Some(&BTreeMap::new())), Ok(None));
        assert_eq!(node_cost(Some(&with(" -7 "))), Ok(Some(-7)));
        let err = node_cost(Some(&with("cheap"))).unwrap_err();
        assert_eq!(err.value, "cheap");
        assert!(
            err.to_string()
                .contains(names::ANNOTATION_NODE_DELETION_COST)
        );
    }

    #[test]
    fn pods_to_delete_go_first_and_are_replaced() {
        let pods = [pod("gd-a", "r2"), pod("gd-b", "r2")];
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let mut i = input(&pods, 2, &costs);
        let doomed = vec!["gd-b".to_string(), "gd-not-mine".to_string()];
        i.pods_to_delete = &doomed;
        let p = replica_diff(&i, &mut suffixes(&["c"]));
        assert_eq!(p.delete, ["gd-b"]);
        assert_eq!(p.create.len(), 1);
    }

    #[test]
    fn surge_only_while_updating_and_capped_by_old_pods() {
        let pods = [pod("gd-a", "r1"), pod("gd-b", "r2")];
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let mut i = input(&pods, 2, &costs);
        i.current_revision = "r1";
        i.max_surge = 5;
        assert_eq!(
            replica_diff(&i, &mut suffixes(&["c"])).create.len(),
            1,
            "surge capped at 1 old pod"
        );
        i.current_revision = "r2";
        assert!(replica_diff(&i, &mut suffixes(&[])).create.is_empty());
    }

    /// maxSurge 2, 8 replicas: once all 8 new pods exist, the 2 old surge-era pods are surplus.
    #[test]
    fn surge_ends_when_enough_pods_run_the_update_revision() {
        let mut pods: Vec<PodView> = (0..8).map(|i| pod(&format!("gd-new{i}"), "r2")).collect();
        pods.push(pod("gd-old1", "r1"));
        pods.push(pod("gd-old2", "r1"));
        let costs = BTreeMap::new();
        let pods: Vec<&PodView> = pods.iter().collect();
        let mut i = input(&pods, 8, &costs);
        i.current_revision = "r1";
        i.max_surge = 2;
        let p = replica_diff(&i, &mut suffixes(&[]));
        assert_eq!(
            (p.create.len(), p.delete),
            (0, vec!["gd-old1".to_string(), "gd-old2".into()])
        );
        // The partition does not shield surplus pods: scale-down takes old revisions first.
        i.partition = 2;
        let p = replica_diff(&i, &mut suffixes(&[]));
        assert_eq!(
            p.delete,
            ["gd-old1", "gd-old2"],
            "8 replicas: still two too many"
        );
        i.replicas = 10;
        assert_eq!(replica_diff(&i, &mut suffixes(&[])), ReplicaDiff::default());
        // A new pod that is not ready yet still needs its surge slot: no old pod goes.
        let mut not_ready = pods[7].clone();
        not_ready.ready = false;
        let mut starting = pods.clone();
        starting[7] = &not_ready;
        let i = ReplicaInput {
            pods: &starting,
            replicas: 8,
            partition: 0,
            ..i
        };
        assert_eq!(replica_diff(&i, &mut suffixes(&[])).delete, ["gd-old1"]);
    }

    #[test]
    fn batches_double() {
        assert_eq!(slow_start_batches(0), Vec::<usize>::new());
        assert_eq!(slow_start_batches(8), [1, 2, 4, 1]);
    }
}
