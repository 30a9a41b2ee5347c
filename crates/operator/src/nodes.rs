//! The node cache: what reconciles read of nodes (deletion costs, schedulability, cpu/memory
//! allocatable), derived once per node event rather than from every node on every reconcile.
//! A reconcile takes both maps as shared `Arc`s; an event changes one entry.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::runtime::watcher;

use crate::watch::Listed;
use gamedeploy_core::planner::model::NodeFacts;
use gamedeploy_core::planner::rules::replicas;

/// Deletion costs and facts by node name, as one reconcile reads them.
#[derive(Debug, Default, Clone)]
pub struct NodeMaps {
    /// Nodes' deletion costs; a node without one (or with one that is not an integer) is
    /// not here.
    pub costs: Arc<BTreeMap<String, i64>>,
    pub facts: Arc<BTreeMap<String, NodeFacts>>,
}

impl NodeMaps {
    fn put(&mut self, name: String, cost: Option<i64>, facts: NodeFacts) {
        let costs = Arc::make_mut(&mut self.costs);
        match cost {
            Some(c) => costs.insert(name.clone(), c),
            None => costs.remove(&name),
        };
        Arc::make_mut(&mut self.facts).insert(name, facts);
    }

    fn remove(&mut self, name: &str) {
        Arc::make_mut(&mut self.costs).remove(name);
        Arc::make_mut(&mut self.facts).remove(name);
    }
}

#[derive(Default)]
struct Nodes {
    current: NodeMaps,
    /// What the relist under way has listed.
    relisted: NodeMaps,
    /// Unparsable deletion costs already warned about, by (node, value).
    warned: BTreeSet<(String, String)>,
}

impl Nodes {
    /// The node's cost, warning once per node and value about one that is not an integer.
    fn cost(&mut self, node: &Node, name: &str) -> Option<i64> {
        match replicas::node_cost(node.metadata.annotations.as_ref()) {
            Ok(cost) => cost,
            Err(e) => {
                if self.warned.insert((name.to_owned(), e.value.clone())) {
                    tracing::warn!(node = %name, "{e}; the node counts as having no cost");
                }
                None
            }
        }
    }

    fn derive(&mut self, node: &Node) -> (String, Option<i64>, NodeFacts) {
        let name = node.name_any();
        let cost = self.cost(node, &name);
        (name, cost, facts(node))
    }
}

/// A node's schedulability and the cpu/memory of its `status.allocatable`.
fn facts(node: &Node) -> NodeFacts {
    let schedulable = !node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let allocatable = (node.status.as_ref())
        .and_then(|s| s.allocatable.as_ref())
        .into_iter()
        .flatten()
        .filter(|(k, _)| gamedeploy_core::inplace::RESIZABLE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    NodeFacts {
        schedulable,
        allocatable,
    }
}

/// The node cache, shared; cloning shares it.
#[derive(Clone, Default)]
pub struct SharedNodes {
    nodes: Arc<Mutex<Nodes>>,
    listed: Listed,
}

impl SharedNodes {
    fn lock(&self) -> MutexGuard<'_, Nodes> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The costs and facts as they are now.
    pub fn read(&self) -> NodeMaps {
        self.lock().current.clone()
    }

    /// Resolves once the first list of nodes is in.
    pub fn wait_until_ready(&self) -> impl Future<Output = ()> + Send + 'static {
        self.listed.wait()
    }

    /// Applies one watch event.
    pub fn apply(&self, event: &watcher::Event<Node>) {
        let mut nodes = self.lock();
        match event {
            watcher::Event::Apply(node) => {
                let (name, cost, facts) = nodes.derive(node);
                nodes.current.put(name, cost, facts);
            }
            watcher::Event::Delete(node) => nodes.current.remove(&node.name_any()),
            watcher::Event::Init => nodes.relisted = NodeMaps::default(),
            watcher::Event::InitApply(node) => {
                let (name, cost, facts) = nodes.derive(node);
                nodes.relisted.put(name, cost, facts);
            }
            watcher::Event::InitDone => {
                nodes.current = std::mem::take(&mut nodes.relisted);
                drop(nodes);
                self.listed.set();
            }
        }
    }

    /// `watch`, applying each event to the cache as it passes.
    pub fn reflect<S>(
        &self,
        watch: S,
    ) -> impl Stream<Item = watcher::Result<watcher::Event<Node>>> + Send + use<S>
    where
        S: Stream<Item = watcher::Result<watcher::Event<Node>>> + Send,
    {
        let nodes = self.clone();
        watch.inspect(move |event| {
            if let Ok(event) = event {
                nodes.apply(event);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cost: Option<&str>, unschedulable: bool) -> Node {
        let annotations = match cost {
            Some(c) => json!({"io.tencent.bcs.dev/node-deletion-cost": c}),
            None => json!({}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .unwrap()
    }

    #[test]
    fn each_node_event_changes_its_own_entries_and_a_relist_replaces_them_all() {
        let nodes = SharedNodes::default();
        nodes.apply(&watcher::Event::Init);
        nodes.apply(&watcher::Event::InitApply(node("a", Some("10"), false)));
        assert!(
            nodes.read().facts.is_empty(),
            "nothing until the list is done"
        );
        nodes.apply(&watcher::Event::InitDone);
        let read = nodes.read();
        assert_eq!(*read.costs, BTreeMap::from([("a".to_string(), 10)]));
        let facts = &read.facts["a"];
        assert!(facts.schedulable);
        // Only what a resize needs: cpu and memory.
        let allocatable: Vec<_> = facts.allocatable.keys().map(String::as_str).collect();
        assert_eq!(allocatable, ["cpu", "memory"]);
        // A reconcile holding the maps keeps what it read.
        nodes.apply(&watcher::Event::Apply(node(
            "b",
            Some("not a number"),
            true,
        )));
        nodes.apply(&watcher::Event::Apply(node("a", None, false)));
        assert_eq!(read.costs.len(), 1);
        let now = nodes.read();
        assert!(
            now.costs.is_empty(),
            "no cost, or one that is not an integer"
        );
        assert!(!now.facts["b"].schedulable);
        nodes.apply(&watcher::Event::Delete(node("b", None, true)));
        assert_eq!(nodes.read().facts.keys().collect::<Vec<_>>(), ["a"]);
        // A relist without a node: it is gone.
        nodes.apply(&watcher::Event::Init);
        nodes.apply(&watcher::Event::InitDone);
        assert!(nodes.read().facts.is_empty());
    }
}
