//! The CPU and memory of a container as an in-place resize sees them: what a template or a pod
//! spec asks for, what the kubelet reports it applied, compared as quantities (`1` equals
//! `1000m`), and the pod QoS class they imply, computed as kube does
//! (pkg/apis/core/helper/qos: only cpu and memory count; a missing request defaults to its
//! limit).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The resources a resize may change (`pods/resize` refuses any other).
pub const RESIZABLE: [&str; 2] = ["cpu", "memory"];

/// The cpu/memory requests and limits of one container, as written (quantity strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerResources {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

/// A pod's quality-of-service class (`status.qosClass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl ContainerResources {
    /// The cpu/memory part of a container's `resources` object (JSON, as in a template or a
    /// pod); other resources are left out.
    pub fn from_json(resources: Option<&Value>) -> Self {
        let pick = |field: &str| -> BTreeMap<String, String> {
            let Some(m) = resources
                .and_then(|r| r.get(field))
                .and_then(Value::as_object)
            else {
                return BTreeMap::new();
            };
            m.iter()
                .filter(|(k, _)| RESIZABLE.contains(&k.as_str()))
                .filter_map(|(k, v)| Some((k.clone(), quantity_text(v)?)))
                .collect()
        };
        ContainerResources {
            requests: pick("requests"),
            limits: pick("limits"),
        }
    }

    /// The cpu/memory part of a typed `ResourceRequirements` (a pod spec's, or the resources
    /// a container status reports applied).
    pub fn from_requirements(r: Option<&ResourceRequirements>) -> Self {
        let pick = |m: Option<&BTreeMap<String, Quantity>>| -> BTreeMap<String, String> {
            m.into_iter()
                .flatten()
                .filter(|(k, _)| RESIZABLE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect()
        };
        ContainerResources {
            requests: pick(r.and_then(|r| r.requests.as_ref())),
            limits: pick(r.and_then(|r| r.limits.as_ref())),
        }
    }

    /// Equal as quantities: `1` and `1000m`, `1Gi` and `1024Mi` are the same.
    pub fn same_as(&self, other: &ContainerResources) -> bool {
        same_quantities(&self.requests, &other.requests)
            && same_quantities(&self.limits, &other.limits)
    }

    /// The resources among cpu and memory whose request or limit differs from `other`'s.
    pub fn changed_from(&self, other: &ContainerResources) -> Vec<&'static str> {
        RESIZABLE
            .into_iter()
            .filter(|r| {
                !same_quantity(self.requests.get(*r), other.requests.get(*r))
                    || !same_quantity(self.limits.get(*r), other.limits.get(*r))
            })
            .collect()
    }

    /// The strategic merge patch of a container's `resources` that turns `current` into
    /// these: each request and limit set, and `null` for one `current` has and these lack
    /// (`requests` or `limits` left out when neither side has any).
    pub fn patch_from(&self, current: &ContainerResources) -> Value {
        let field = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
            let mut m: serde_json::Map<String, Value> = want
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            for k in have.keys().filter(|k| !want.contains_key(*k)) {
                m.insert(k.clone(), Value::Null);
            }
            Value::Object(m)
        };
        let mut patch = serde_json::Map::new();
        for (name, want, have) in [
            ("requests", &self.requests, &current.requests),
            ("limits", &self.limits, &current.limits),
        ] {
            if !(want.is_empty() && have.is_empty()) {
                patch.insert(name.to_string(), field(want, have));
            }
        }
        Value::Object(patch)
    }

    /// The effective request of `resource`: the request, or the limit when no request is set
    /// (the API server's defaulting).
    fn request(&self, resource: &str) -> Option<&String> {
        self.requests
            .get(resource)
            .or_else(|| self.limits.get(resource))
    }
}

fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse(q: &str) -> Option<ParsedQuantity> {
    ParsedQuantity::try_from(q).ok()
}

/// Two optional quantities are the same amount (unparseable ones compare as text).
pub fn same_quantity(a: Option<&String>, b: Option<&String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (parse(a), parse(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

fn same_quantities(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.keys()
        .chain(b.keys())
        .all(|k| same_quantity(a.get(k), b.get(k)))
}

/// The quantity, when it is a positive amount (`ComputePodQOS` ignores zero and unparseable
/// ones).
fn positive(q: Option<&String>) -> Option<&String> {
    q.filter(|q| {
        parse(q)
            .and_then(|p| p.to_bytes_f64())
            .is_some_and(|v| v > 0.0)
    })
}

/// The QoS class of a pod whose containers (init containers included) have `containers`, as
/// kube's `ComputePodQOS` over cpu and memory: only positive requests and limits count.
pub fn qos_class<'a>(containers: impl IntoIterator<Item = &'a ContainerResources>) -> QosClass {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        for r in RESIZABLE {
            let (request, limit) = (positive(c.request(r)), positive(c.limits.get(r)));
            any |= request.is_some() || limit.is_some();
            if limit.is_none() || !same_quantity(request, limit) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> ContainerResources {
        ContainerResources::from_json(Some(&v))
    }

    #[test]
    fn quantities_compare_by_amount_not_spelling() {
        let a = res(json!({"requests": {"cpu": "1", "memory": "1Gi"}}));
        let b = res(json!({"requests": {"cpu": "1000m", "memory": "1024Mi"}}));
        assert!(a.same_as(&b));
        let c = res(json!({"requests": {"cpu": "1500m", "memory": "1Gi"}}));
        assert!(!a.same_as(&c));
        assert_eq!(c.changed_from(&a), vec!["cpu"]);
    }

    #[test]
    fn a_patch_sets_what_is_wanted_and_removes_what_is_not() {
        let want = res(json!({"requests": {"cpu": "1"}}));
        let have = res(json!({"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}));
        assert_eq!(
            want.patch_from(&have),
            json!({"requests": {"cpu": "1"}, "limits": {"cpu": null}})
        );
        let no_limits = res(json!({"requests": {"cpu": "500m"}}));
        assert_eq!(
            want.patch_from(&no_limits),
            json!({"requests": {"cpu": "1"}})
        );
    }

    #[test]
    fn only_cpu_and_memory_are_read() {
        let a = res(json!({"requests": {"cpu": "1", "ephemeral-storage": "1Gi"}}));
        assert_eq!(a.requests.keys().collect::<Vec<_>>(), ["cpu"]);
    }

    #[test]
    fn qos_is_computed_as_kube_does() {
        let best = res(json!({}));
        let guaranteed = res(json!({"limits": {"cpu": "1", "memory": "1Gi"}}));
        let explicit = res(
            json!({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
        );
        let burstable = res(json!({"requests": {"cpu": "500m"}}));
        assert_eq!(qos_class([&best]), QosClass::BestEffort);
        assert_eq!(qos_class([&guaranteed]), QosClass::Guaranteed);
        assert_eq!(qos_class([&explicit]), QosClass::Guaranteed);
        assert_eq!(qos_class([&burstable]), QosClass::Burstable);
        assert_eq!(qos_class([&guaranteed, &best]), QosClass::Burstable);
        // Zero amounts count as unset, as in the API server's `pod_qos`.
        let zero = res(json!({"requests": {"cpu": "0"}, "limits": {"memory": "0"}}));
        assert_eq!(qos_class([&zero]), QosClass::BestEffort);
        let other = res(json!({"requests": {"ephemeral-storage": "1Gi"}}));
        assert_eq!(qos_class([&other]), QosClass::BestEffort);
    }
}
