//! Nodes with capacity: binding on requests, and in-place resizes (`NodeRuntime::sync` only).

use super::*;
use crate::container_runtime::plus;
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn t(secs: i64) -> Timestamp {
    plus(
        "2026-01-01T00:00:00Z".parse().unwrap(),
        SignedDuration::from_secs(secs),
    )
}

/// A pod with one container `c` and the given `resources` (and `resizePolicy`).
fn pod(name: &str, node: Option<&str>, resources: Value, policy: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "generation": 1},
        "spec": {"nodeName": node, "containers": [
            {"name": "c", "image": "game:1", "resources": resources, "resizePolicy": policy}]},
    }))
    .unwrap()
}

fn cpu(request: &str) -> Value {
    json!({"requests": {"cpu": request, "memory": "1Gi"}, "limits": {"cpu": request, "memory": "1Gi"}})
}

/// Several pods on the kubelet's nodes, stored as the API server would store them.
struct Cluster {
    rt: NodeRuntime,
    cfg: KubeletConfig,
    node: NodeConfig,
    pods: BTreeMap<String, Pod>,
}

impl Cluster {
    fn new(cfg: &str, pods: Vec<Pod>) -> Self {
        Cluster {
            rt: NodeRuntime::default(),
            cfg: serde_saphyr::from_str(cfg).unwrap(),
            node: NodeConfig::default(),
            pods: pods
                .into_iter()
                .map(|p| (p.metadata.name.clone().unwrap(), p))
                .collect(),
        }
    }

    /// Syncs every pod at `secs` in name order and stores what the kubelet did.
    fn at(&mut self, secs: i64) {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            let d = self
                .rt
                .sync(&self.pods[&name], &self.cfg, &self.node, t(secs));
            let p = self.pods.get_mut(&name).unwrap();
            if let Some(node) = d.bind {
                p.spec.as_mut().unwrap().node_name = Some(node);
                let s = p.status.get_or_insert_with(Default::default);
                let conditions = s.conditions.get_or_insert_with(Vec::new);
                conditions.retain(|c| c.type_ != "PodScheduled");
                conditions.push(PodCondition {
                    type_: "PodScheduled".into(),
                    status: "True".into(),
                    ..PodCondition::default()
                });
            }
            if let Some(s) = d.status {
                p.status = Some(s);
            }
        }
    }

    fn delete(&mut self, name: &str) {
        let p = self.pods.remove(name).unwrap();
        self.rt.forget(p.metadata.uid.as_deref().unwrap());
    }

    fn node_of(&self, name: &str) -> Option<&str> {
        self.pods[name].spec.as_ref()?.node_name.as_deref()
    }

    fn condition(&self, name: &str, type_: &str) -> Option<PodCondition> {
        let s = self.pods[name].status.as_ref()?;
        s.conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == type_)
            .cloned()
    }

    fn container(&self, name: &str) -> ContainerStatus {
        self.pods[name]
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0]
            .clone()
    }

    /// `containerStatuses[0].resources.limits.cpu` as reported.
    fn applied_cpu(&self, name: &str) -> String {
        let r = self.container(name).resources.unwrap();
        r.limits.unwrap()["cpu"].0.clone()
    }

    fn resize(&mut self, name: &str, resources: Value) {
        let p = self.pods.get_mut(name).unwrap();
        p.spec.as_mut().unwrap().containers[0].resources =
            Some(serde_json::from_value(resources).unwrap());
        *p.metadata.generation.get_or_insert(0) += 1;
    }
}

const THREE_NODES: &str = "nodes: {count: 3, cpu: \"4\", memory: 8Gi, pods: 110}";

#[test]
fn first_fit_fills_the_first_node_before_the_next() {
    let pods = (1..=3)
        .map(|i| pod(&format!("p{i}"), None, cpu("2"), json!(null)))
        .collect();
    let mut c = Cluster::new(THREE_NODES, pods);
    c.at(0);
    assert_eq!(
        ["p1", "p2", "p3"].map(|p| c.node_of(p).unwrap().to_string()),
        ["sim-node", "sim-node", "sim-node-2"]
    );
}

#[test]
fn spread_binds_to_the_least_requested_node() {
    let pods = (1..=3)
        .map(|i| pod(&format!("p{i}"), None, cpu("1"), json!(null)))
        .collect();
    let mut c = Cluster::new(&format!("{THREE_NODES}\nbinding: Spread"), pods);
    c.at(0);
    assert_eq!(
        ["p1", "p2", "p3"].map(|p| c.node_of(p).unwrap().to_string()),
        ["sim-node", "sim-node-2", "sim-node-3"]
    );
}

#[test]
fn a_pod_that_fits_nowhere_is_unschedulable_until_a_pod_leaves() {
    let cfg = "nodes: {count: 2, cpu: \"2\", memory: 8Gi, pods: 1}";
    let mut c = Cluster::new(
        cfg,
        vec![
            pod("a", None, cpu("2"), json!(null)),
            pod("b", None, cpu("1"), json!(null)),
            pod("c", None, cpu("1"), json!(null)),
        ],
    );
    c.at(0);
    assert_eq!(
        (c.node_of("a"), c.node_of("b")),
        (Some("sim-node"), Some("sim-node-2"))
    );
    let cond = c.condition("c", "PodScheduled").unwrap();
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.observed_generation
        ),
        ("False", Some("Unschedulable"), Some(1))
    );
    assert_eq!(
        cond.message.as_deref(),
        Some("0/2 nodes are available: 1 Insufficient cpu, 2 Too many pods.")
    );
    c.delete("a");
    c.at(1);
    assert_eq!(c.node_of("c"), Some("sim-node"));
}

#[test]
fn nodes_are_numbered_after_the_first_and_pods_without_requests_fit_anywhere() {
    let node = NodeConfig::default();
    assert_eq!(node.nth(0), node);
    assert_eq!(node.nth(2).name, "sim-node-3");
    assert_eq!(node.nth(2).host_ip.to_string(), "172.18.0.4");
    let mut c = Cluster::new("{}", vec![pod("a", None, json!(null), json!(null))]);
    c.at(0);
    c.at(3);
    assert_eq!(c.node_of("a"), Some("sim-node"));
    // Without cpu or memory the container runs with `resources: {}` and has nothing admitted.
    let s = c.container("a");
    assert_eq!(
        (s.resources, s.allocated_resources),
        (Some(Default::default()), None)
    );
}

/// One running pod `p` on a 4-cpu node, with `policy`, ready at 2 s.
fn running(policy: Value) -> Cluster {
    let mut c = Cluster::new(
        "nodes: {cpu: \"4\", memory: 8Gi}\nresizeSeconds: 3",
        vec![pod("p", Some("sim-node"), cpu("1"), policy)],
    );
    c.at(0);
    c.at(2);
    assert!(c.container("p").ready);
    c
}

#[test]
fn a_not_required_resize_is_in_progress_then_applied_in_the_same_container() {
    let mut c = running(json!(null));
    let before = c.container("p");
    assert_eq!(before.allocated_resources.as_ref().unwrap()["cpu"].0, "1");
    c.resize("p", cpu("2"));
    c.at(5);
    let during = c.container("p");
    assert_eq!(during.allocated_resources.unwrap()["cpu"].0, "2");
    assert_eq!(c.applied_cpu("p"), "1");
    let cond = c.condition("p", "PodResizeInProgress").unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.observed_generation),
        ("True", Some(2))
    );
    assert_eq!(
        c.pods["p"].status.as_ref().unwrap().observed_generation,
        Some(2)
    );
    c.at(8);
    assert_eq!(c.applied_cpu("p"), "2");
    assert!(c.condition("p", "PodResizeInProgress").is_none());
    let after = c.container("p");
    assert_eq!(
        (after.container_id, after.restart_count, after.ready),
        (before.container_id, 0, true)
    );
}

#[test]
fn a_restart_container_resize_restarts_that_container_with_the_new_resources() {
    let mut c = running(json!([{"resourceName": "cpu", "restartPolicy": "RestartContainer"}]));
    let before = c.container("p");
    c.resize("p", cpu("2"));
    c.at(5);
    assert_eq!(c.applied_cpu("p"), "2");
    c.at(6);
    let after = c.container("p");
    assert_eq!(after.restart_count, 1);
    assert_ne!(after.container_id, before.container_id);
    // A memory-request-only change reaches no running container: no restart.
    let mut m = running(json!([{"resourceName": "memory", "restartPolicy": "RestartContainer"}]));
    m.resize("p", json!({"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}));
    m.at(5);
    assert_eq!(m.container("p").restart_count, 0);
}

#[test]
fn a_resize_beyond_the_allocatable_is_infeasible_and_keeps_what_runs() {
    let mut c = running(json!(null));
    c.resize("p", cpu("5"));
    c.at(5);
    let cond = c.condition("p", "PodResizePending").unwrap();
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.message.as_deref()
        ),
        (
            "True",
            Some("Infeasible"),
            Some("Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000")
        )
    );
    assert_eq!(c.container("p").allocated_resources.unwrap()["cpu"].0, "1");
    assert_eq!(c.applied_cpu("p"), "1");
    // Asking for what fits again clears it.
    c.resize("p", cpu("1"));
    c.at(6);
    assert!(c.condition("p", "PodResizePending").is_none());
}

/// `p` (1 cpu) asks for 3 cpus on a 4-cpu node where `other` holds 2: deferred.
fn deferred() -> Cluster {
    let mut c = Cluster::new(
        "nodes: {cpu: \"4\", memory: 8Gi}",
        vec![
            pod("other", Some("sim-node"), cpu("2"), json!(null)),
            pod("p", Some("sim-node"), cpu("1"), json!(null)),
        ],
    );
    c.at(0);
    c.resize("p", cpu("3"));
    c
}

#[test]
fn a_deferred_resize_is_applied_once_another_pod_leaves() {
    let mut c = deferred();
    c.at(2);
    let cond = c.condition("p", "PodResizePending").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Deferred"));
    assert_eq!(
        cond.message.as_deref(),
        Some("Node didn't have enough resource: cpu, requested: 3000, used: 2000, capacity: 4000")
    );
    c.delete("other");
    c.at(3);
    assert!(c.condition("p", "PodResizePending").is_none());
    assert!(c.condition("p", "PodResizeInProgress").is_some());
    c.at(4);
    assert_eq!(c.applied_cpu("p"), "3");
}

#[test]
fn a_deferred_pod_and_a_shrink_tell_the_edge_to_retry() {
    let mut c = deferred();
    let d = c.rt.sync(&c.pods["p"], &c.cfg, &c.node, t(1));
    assert!(d.waits_for_room && !d.frees_room);
    c.resize("other", cpu("1"));
    let d = c.rt.sync(&c.pods["other"], &c.cfg, &c.node, t(1));
    assert!(d.frees_room && !d.waits_for_room);
}

#[test]
fn a_not_required_memory_limit_decrease_below_usage_stays_in_progress() {
    let mut c = Cluster::new(
        "nodes: {cpu: \"4\", memory: 8Gi}\nimages: {\"game:1\": {memoryUsage: 700Mi}}",
        vec![pod("p", Some("sim-node"), cpu("1"), json!(null))],
    );
    c.at(0);
    c.at(2);
    let lower = |mem: &str| json!({"requests": {"cpu": "1", "memory": mem}, "limits": {"cpu": "1", "memory": mem}});
    c.resize("p", lower("512Mi"));
    c.at(3);
    c.at(10);
    assert!(c.condition("p", "PodResizeInProgress").is_some());
    assert_eq!(
        c.container("p").resources.unwrap().limits.unwrap()["memory"].0,
        "1Gi"
    );
    c.resize("p", lower("768Mi"));
    c.at(11);
    c.at(12);
    assert!(c.condition("p", "PodResizeInProgress").is_none());
    assert_eq!(
        c.container("p").resources.unwrap().limits.unwrap()["memory"].0,
        "768Mi"
    );
    assert_eq!(c.container("p").restart_count, 0);
}

#[test]
fn an_image_restart_during_a_pending_resize_starts_with_the_allocated_resources() {
    let mut c = running(json!(null));
    c.resize("p", cpu("5"));
    c.pods
        .get_mut("p")
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("game:2".into());
    c.at(5);
    c.at(7);
    let s = c.container("p");
    assert_eq!((s.restart_count, s.image.as_str()), (1, "game:2"));
    assert_eq!(c.applied_cpu("p"), "1");
    assert!(c.condition("p", "PodResizePending").is_some());
}

/// Two pools: a pod too big for the small node goes to the big one, and a resize the small node
/// can never hold is Infeasible there while the big node could hold it.
#[test]
fn node_pools_size_each_node() {
    let cfg =
        "nodePools: [{count: 1, cpu: \"4\", memory: 8Gi}, {count: 1, cpu: \"64\", memory: 64Gi}]";
    let mut c = Cluster::new(
        cfg,
        vec![
            pod("big", None, cpu("8"), json!(null)),
            pod("small", None, cpu("1"), json!(null)),
        ],
    );
    assert_eq!(
        (c.cfg.node_count(), c.cfg.node_size(1).cpu.0.as_str()),
        (2, "64")
    );
    c.at(0);
    assert_eq!(
        (c.node_of("big"), c.node_of("small")),
        (Some("sim-node-2"), Some("sim-node"))
    );
    c.at(3);
    c.resize("small", cpu("6"));
    c.at(4);
    let pending = c.condition("small", "PodResizePending").unwrap();
    assert_eq!(pending.reason.as_deref(), Some("Infeasible"));
    assert_eq!(
        pending.message.as_deref(),
        Some("Node didn't have enough capacity: cpu, requested: 6000, capacity: 4000")
    );
}
