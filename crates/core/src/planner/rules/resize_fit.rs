//! Whether a pod whose in-place resize its node reports `Infeasible` may be recreated
//! (`infeasibleResizePolicy: Recreate`): only when some schedulable node's allocatable cpu and
//! memory could hold the new pod's requests, so a pod is never recreated into `Pending` for
//! ever. The requests are counted as the scheduler counts them (kube's
//! `resource.PodRequests`): the sum over the containers, or the largest init container if
//! that is more; a missing request defaults to its limit. Amounts are summed as integers (cpu
//! in millicores rounded up, as `MilliValue` does; memory in bytes): kube_quantity 0.9's `Add`
//! mixes formats wrongly.

use std::collections::BTreeMap;

use kube_quantity::ParsedQuantity;
use serde_json::Value;

use crate::inplace::{ContainerResources, RESIZABLE};
use crate::planner::model::NodeFacts;

/// Some schedulable node in `nodes` has the allocatable cpu and memory `template` requests.
pub(crate) fn fits_some_node(template: &Value, nodes: &BTreeMap<String, NodeFacts>) -> bool {
    let wanted = requests(template);
    nodes.values().filter(|n| n.schedulable).any(|n| {
        wanted.iter().all(|(resource, want)| {
            n.allocatable
                .get(*resource)
                .and_then(|a| units(resource, a))
                .is_some_and(|have| have >= *want)
        })
    })
}

/// `q` as an integer: millicores for cpu, bytes for memory.
fn units(resource: &str, q: &str) -> Option<i128> {
    let parsed = ParsedQuantity::try_from(q).ok()?;
    if resource == "cpu" {
        parsed
            .to_bytes_f64()
            .map(|cores| (cores * 1000.0).ceil() as i128)
    } else {
        parsed.to_bytes_i128()
    }
}

/// The pod's effective cpu and memory requests (resources it requests none of are absent).
fn requests(template: &Value) -> Vec<(&'static str, i128)> {
    let of = |field: &str| -> Vec<ContainerResources> {
        template["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| ContainerResources::from_json(c.get("resources")))
            .collect()
    };
    let (containers, init) = (of("containers"), of("initContainers"));
    let request = |c: &ContainerResources, r: &str| {
        c.requests
            .get(r)
            .or_else(|| c.limits.get(r))
            .and_then(|q| units(r, q))
    };
    RESIZABLE
        .into_iter()
        .filter_map(|r| {
            let sum = containers
                .iter()
                .filter_map(|c| request(c, r))
                .reduce(|a, b| a + b);
            let init = init.iter().filter_map(|c| request(c, r)).max();
            let total = match (sum, init) {
                (Some(s), Some(i)) => Some(s.max(i)),
                (s, i) => s.or(i),
            };
            total.map(|t| (r, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(cpu: &str, memory: &str, schedulable: bool) -> NodeFacts {
        NodeFacts {
            schedulable,
            allocatable: [
                ("cpu".to_string(), cpu.to_string()),
                ("memory".to_string(), memory.to_string()),
            ]
            .into(),
        }
    }

    fn pod(cpu: &str) -> Value {
        json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "500m"}}}
        ]}})
    }

    #[test]
    fn a_pod_fits_a_node_whose_allocatable_holds_the_sum_of_its_requests() {
        let nodes = [("n1".to_string(), node("4", "8Gi", true))].into();
        assert!(
            fits_some_node(&pod("3500m"), &nodes),
            "3.5 + 0.5 (limit) = 4"
        );
        assert!(!fits_some_node(&pod("3600m"), &nodes));
    }

    #[test]
    fn a_cordoned_node_or_no_node_fits_nothing() {
        let cordoned = [("n1".to_string(), node("64", "64Gi", false))].into();
        assert!(!fits_some_node(&pod("1"), &cordoned));
        assert!(!fits_some_node(&pod("1"), &BTreeMap::new()));
    }

    #[test]
    fn an_init_container_larger_than_the_sum_counts() {
        let mut p = pod("1");
        p["spec"]["initContainers"] =
            json!([{"name": "i", "resources": {"requests": {"cpu": "6"}}}]);
        let nodes = [("n1".to_string(), node("4", "8Gi", true))].into();
        assert!(!fits_some_node(&p, &nodes));
    }
}
