//! Binding: which node an unbound pod goes to, on its requests and the nodes' allocatable,
//! as a scheduler with only the resource-fit filter would choose. Pure.

use std::collections::BTreeMap;

use super::config::{Binding, KubeletConfig, NodeConfig};
use super::container_runtime::NodeRuntime;
use super::resources::{self, Amounts};

impl NodeRuntime {
    /// The node for pod `uid` requesting `requests` (an earlier binding of it not counted),
    /// or the scheduler-style reason none fits ("0/3 nodes are available: 3 Insufficient cpu.").
    pub fn place(
        &self,
        uid: &str,
        requests: Amounts,
        config: &KubeletConfig,
        first: &NodeConfig,
    ) -> Result<String, String> {
        let mut reasons: BTreeMap<&'static str, u32> = BTreeMap::new();
        let mut best: Option<(i128, String)> = None;
        for index in 0..config.node_count() {
            let name = first.nth(index).name;
            let size = config.node_size(index);
            let allocatable = resources::allocatable(size);
            let (used, pods) = self.usage(&name, Some(uid));
            let mut misfits = Vec::new();
            if pods >= size.pods {
                misfits.push("Too many pods");
            }
            for (resource, _, _) in (used + requests).exceeding(&allocatable) {
                misfits.push(if resource == "cpu" {
                    "Insufficient cpu"
                } else {
                    "Insufficient memory"
                });
            }
            if !misfits.is_empty() {
                for m in misfits {
                    *reasons.entry(m).or_default() += 1;
                }
                continue;
            }
            match config.binding {
                Binding::FirstFit => return Ok(name),
                Binding::Spread => {
                    let score = least_allocated(used + requests, allocatable);
                    if best.as_ref().is_none_or(|(s, _)| score > *s) {
                        best = Some((score, name));
                    }
                }
            }
        }
        if let Some((_, name)) = best {
            return Ok(name);
        }
        let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        Err(format!(
            "0/{} nodes are available: {}.",
            config.node_count(),
            parts.join(", ")
        ))
    }
}

/// The scheduler's `LeastAllocated` score (0-100): the mean free share of cpu and memory
/// once the pod is on the node.
fn least_allocated(requested: Amounts, allocatable: Amounts) -> i128 {
    let free = |req: i128, cap: i128| {
        if cap <= 0 {
            0
        } else {
            (cap - req).max(0) * 100 / cap
        }
    };
    (free(requested.cpu_milli, allocatable.cpu_milli) + free(requested.memory, allocatable.memory))
        / 2
}
