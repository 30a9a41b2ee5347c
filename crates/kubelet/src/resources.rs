//! CPU and memory as the node counts them: a container's `resources` reduced to the two
//! resources the kubelet admits and resizes, and sums of requests in kubelet's units
//! (millicores, bytes). Quantities are parsed with `kube_quantity`, never by hand.

use std::collections::BTreeMap;
use std::ops::{Add, Sub};

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;

use super::config::NodesConfig;

/// The resources the kubelet admits and resizes.
pub const RESIZABLE: [&str; 2] = ["cpu", "memory"];

/// Requests in kubelet's units: CPU in millicores (rounded up, as `MilliValue`), memory in
/// bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cpu_milli: i128,
    pub memory: i128,
}

impl Add for Amounts {
    type Output = Amounts;
    fn add(self, o: Amounts) -> Amounts {
        Amounts {
            cpu_milli: self.cpu_milli + o.cpu_milli,
            memory: self.memory + o.memory,
        }
    }
}

impl Sub for Amounts {
    type Output = Amounts;
    fn sub(self, o: Amounts) -> Amounts {
        Amounts {
            cpu_milli: self.cpu_milli - o.cpu_milli,
            memory: self.memory - o.memory,
        }
    }
}

impl Amounts {
    /// The resources of `self` that exceed `room`, CPU first (the order kubelet reports them).
    pub fn exceeding(&self, room: &Amounts) -> Vec<(&'static str, i128, i128)> {
        let mut over = Vec::new();
        if self.cpu_milli > room.cpu_milli {
            over.push(("cpu", self.cpu_milli, room.cpu_milli));
        }
        if self.memory > room.memory {
            over.push(("memory", self.memory, room.memory));
        }
        over
    }
}

/// `q` in kubelet's unit for `resource`; an unparsable quantity (the API server rejects them)
/// counts as zero.
pub fn value(resource: &str, q: &Quantity) -> i128 {
    let Ok(parsed) = ParsedQuantity::try_from(q) else {
        return 0;
    };
    if resource == "cpu" {
        // Whole millicores, rounded up as resource.Quantity.MilliValue does.
        parsed
            .to_bytes_f64()
            .map_or(0, |cores| (cores * 1000.0).ceil() as i128)
    } else {
        parsed.to_bytes_i128().unwrap_or(0)
    }
}

/// The node's allocatable resources.
pub fn allocatable(nodes: &NodesConfig) -> Amounts {
    Amounts {
        cpu_milli: value("cpu", &nodes.cpu),
        memory: value("memory", &nodes.memory),
    }
}

/// A container's cpu and memory requests and limits, nothing else; requests default to the
/// limits where only those are set (as API defaulting does).
pub fn of_container(c: &Container) -> ResourceRequirements {
    let r = c.resources.as_ref();
    let pick = |list: Option<&BTreeMap<String, Quantity>>| {
        let picked: BTreeMap<String, Quantity> = list
            .into_iter()
            .flatten()
            .filter(|(k, _)| RESIZABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!picked.is_empty()).then_some(picked)
    };
    let limits = pick(r.and_then(|r| r.limits.as_ref()));
    let mut requests = pick(r.and_then(|r| r.requests.as_ref())).unwrap_or_default();
    for (k, v) in limits.iter().flatten() {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
    ResourceRequirements {
        requests: (!requests.is_empty()).then_some(requests),
        limits,
        ..ResourceRequirements::default()
    }
}

/// Requests of one container's resources, in kubelet's units.
pub fn requested(r: &ResourceRequirements) -> Amounts {
    let get = |name: &str| {
        r.requests
            .as_ref()
            .and_then(|m| m.get(name))
            .map_or(0, |q| value(name, q))
    };
    Amounts {
        cpu_milli: get("cpu"),
        memory: get("memory"),
    }
}

/// The sum of the spec's container requests.
pub fn pod_requests(spec: &PodSpec) -> Amounts {
    spec.containers
        .iter()
        .map(|c| requested(&of_container(c)))
        .fold(Amounts::default(), Add::add)
}

/// Whether `resource`'s entry differs between `a` and `b` in `list` ("1" equals "1000m").
pub fn differs(a: &ResourceRequirements, b: &ResourceRequirements, resource: &str) -> bool {
    let entry = |r: &ResourceRequirements, requests: bool| {
        let list = if requests { &r.requests } else { &r.limits };
        list.as_ref()
            .and_then(|m| m.get(resource))
            .map(|q| value(resource, q))
    };
    entry(a, true) != entry(b, true) || entry(a, false) != entry(b, false)
}

/// Whether `a` and `b` ask for the same cpu and memory.
pub fn same(a: &ResourceRequirements, b: &ResourceRequirements) -> bool {
    RESIZABLE.iter().all(|r| !differs(a, b, r))
}

/// Whether the memory limit goes down from `from` to `to`.
pub fn memory_limit_decreases(from: &ResourceRequirements, to: &ResourceRequirements) -> bool {
    let limit = |r: &ResourceRequirements| {
        r.limits
            .as_ref()
            .and_then(|m| m.get("memory"))
            .map(|q| value("memory", q))
    };
    matches!((limit(from), limit(to)), (Some(a), Some(b)) if b < a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn cpu_in_rounded_up_millicores_and_memory_in_bytes() {
        assert_eq!(value("cpu", &q("1")), 1000);
        assert_eq!(value("cpu", &q("250m")), 250);
        assert_eq!(value("cpu", &q("0.0005")), 1);
        assert_eq!(value("memory", &q("1Gi")), 1 << 30);
        assert_eq!(value("memory", &q("1G")), 1_000_000_000);
    }

    #[test]
    fn requests_default_to_limits_and_compare_as_quantities() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}}
        }))
        .unwrap();
        let r = of_container(&c);
        assert_eq!(
            requested(&r),
            Amounts {
                cpu_milli: 1000,
                memory: 1 << 30
            }
        );
        assert!(!r.limits.as_ref().unwrap().contains_key("nvidia.com/gpu"));
        let mut milli = r.clone();
        milli
            .limits
            .as_mut()
            .unwrap()
            .insert("cpu".into(), q("1000m"));
        milli
            .requests
            .as_mut()
            .unwrap()
            .insert("cpu".into(), q("1000m"));
        assert!(same(&r, &milli));
        assert!(memory_limit_decreases(
            &r,
            &ResourceRequirements {
                limits: Some(BTreeMap::from([("memory".into(), q("512Mi"))])),
                ..ResourceRequirements::default()
            }
        ));
    }
}
