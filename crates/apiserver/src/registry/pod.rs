//! Pods: kube-apiserver's `pkg/registry/core/pod` strategy (defaults, validation, the status,
//! resize and graceful-deletion rules) and the `binding` subresource.

use std::collections::{BTreeMap, BTreeSet};

use kube_quantity::ParsedQuantity;

use serde_json::{Value, json};

use crate::errors::{ApiError, Cause, duplicate, forbidden_field, invalid_value, required};
use crate::resources::ResourceDesc;
use crate::selectors::dns_label_errors;
use crate::store::{EventType, Store};

use super::context::{RequestContext, Subresource};
use super::decode::parse_object;
use super::object::{bump_generation, key, meta_mut, str_at};
use super::read::get;

/// Defaults kube-apiserver applies to every pod it decodes (`SetDefaults_Pod` and friends),
/// so stored pods look like real ones and re-sent pods compare equal.
pub fn default_pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        spec.entry(k).or_insert(v);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let tag = image.rsplit('/').next().unwrap_or("");
                let latest =
                    !image.contains('@') && (!tag.contains(':') || tag.ends_with(":latest"));
                c.entry("imagePullPolicy").or_insert(json!(if latest {
                    "Always"
                } else {
                    "IfNotPresent"
                }));
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                c.entry("resources").or_insert(json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

/// A resource quantity as kube compares it ("1" == "1000m"); `None` when absent or unparsable.
fn quantity(v: Option<&Value>) -> Option<ParsedQuantity> {
    v.and_then(Value::as_str)
        .and_then(|s| ParsedQuantity::try_from(s).ok())
}

/// `qos.ComputePodQOS`, over the cpu and memory of regular and init containers: no positive
/// request or limit is BestEffort; cpu and memory limits on every container, with requests equal
/// to limits, is Guaranteed; anything else Burstable. A request left unset takes its limit, as
/// kube's defaulting does. (kube compares the pod's sums; as no request may exceed its limit,
/// the sums are equal exactly when each container's are.)
pub fn pod_qos(obj: &Value) -> &'static str {
    let cs: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| obj.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let zero = ParsedQuantity::try_from("0").ok();
    let positive = |q: Option<ParsedQuantity>| q.filter(|q| Some(q) > zero.as_ref());
    let mut any = false;
    let mut guaranteed = !cs.is_empty();
    for c in cs {
        for r in ["cpu", "memory"] {
            let lim = positive(quantity(c.pointer(&format!("/resources/limits/{r}"))));
            let req = c
                .pointer(&format!("/resources/requests/{r}"))
                .map_or(lim.clone(), |q| positive(quantity(Some(q))));
            any |= lim.is_some() || req.is_some();
            guaranteed &= lim.is_some() && lim == req;
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `ValidatePod` / `ValidatePodUpdate` (`ValidatePodResize` for a write through `pods/resize`),
/// reduced to containers and the spec's mutability.
pub fn validate(obj: &Value, old: Option<&Value>, sub: Subresource, causes: &mut Vec<Cause>) {
    // `podStatusStrategy.ValidateUpdate` checks the status only: the spec was just copied from
    // the stored pod, so re-validating it could only refuse a kubelet for an older pod's spec.
    if sub == Subresource::Status {
        return;
    }
    let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
    match containers {
        None => causes.push(required("spec.containers", "")),
        Some(cs) if cs.is_empty() => causes.push(required("spec.containers", "")),
        Some(_) => {
            let mut names = BTreeSet::new();
            validate_containers(obj, "containers", &mut names, causes);
            validate_containers(obj, "initContainers", &mut names, causes);
        }
    }
    match old {
        Some(old) if sub == Subresource::Resize => resize_rules(obj, old, causes),
        Some(old) => pod_update_rules(obj, old, causes),
        None => {}
    }
}

/// `validateContainers` / `validateInitContainers`: each container has a DNS-1123 label for
/// a name and an image; names are unique across regular and init containers (regular ones are
/// checked first, so a clash is reported on the init container).
fn validate_containers(
    obj: &Value,
    list: &str,
    names: &mut BTreeSet<String>,
    causes: &mut Vec<Cause>,
) {
    let Some(cs) = obj
        .pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, c) in cs.iter().enumerate() {
        let path = format!("spec.{list}[{i}]");
        let name = str_at(c, "/name");
        if name.is_empty() {
            causes.push(required(&format!("{path}.name"), ""));
        } else {
            for msg in dns_label_errors(name) {
                causes.push(invalid_value(&format!("{path}.name"), &json!(name), msg));
            }
        }
        if !names.insert(name.to_string()) {
            causes.push(duplicate(&format!("{path}.name"), &json!(name)));
        }
        if str_at(c, "/image").is_empty() {
            causes.push(required(&format!("{path}.image"), ""));
        }
        for r in ["cpu", "memory"] {
            let req = c.pointer(&format!("/resources/requests/{r}"));
            let lim = c.pointer(&format!("/resources/limits/{r}"));
            if let (Some(rq), Some(lq)) = (quantity(req), quantity(lim))
                && rq > lq
            {
                causes.push(invalid_value(
                    &format!("{path}.resources.requests"),
                    req.unwrap_or(&Value::Null),
                    &format!(
                        "must be less than or equal to {r} limit of {}",
                        str_at(c, &format!("/resources/limits/{r}"))
                    ),
                ));
            }
        }
    }
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds, tolerations and
/// terminationGracePeriodSeconds may change in a pod spec.
fn pod_update_rules(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let mask = |v: &Value| -> Value {
        let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut s {
            for k in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "schedulingGates",
            ] {
                m.remove(k);
            }
            for l in ["containers", "initContainers"] {
                if let Some(cs) = m.get_mut(l).and_then(Value::as_array_mut) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        s
    };
    if mask(new) != mask(old) {
        causes.push(forbidden_field(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

/// What a container may change through `pods/resize`: its resources and resize policy.
const RESIZE_FIELDS: [&str; 2] = ["resources", "resizePolicy"];

/// The containers of `list` in `new` when they are those of `old`, same names in the same
/// order (a resize may not add, remove, rename or reorder them).
fn same_containers<'a>(new: &'a Value, old: &Value, list: &str) -> Option<&'a Vec<Value>> {
    let ptr = format!("/spec/{list}");
    let empty = Vec::new();
    let o = old
        .pointer(&ptr)
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    new.pointer(&ptr).and_then(Value::as_array).filter(|n| {
        n.len() == o.len() && n.iter().zip(o).all(|(a, b)| a.get("name") == b.get("name"))
    })
}

/// Whether `pod` has no containers in `list`.
fn no_containers(pod: &Value, list: &str) -> bool {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// podResizeStrategy.PrepareForUpdate (`dropNonResizeUpdates`): everything comes from the
/// stored pod but each container's resources and resizePolicy, and the request's metadata
/// without its labels, annotations, finalizers and ownerReferences (`ResetObjectMetaForStatus`).
/// A request that adds, removes, renames or reorders containers is kept as sent, for
/// validation to refuse.
pub fn prepare_resize_update(new: &mut Value, old: &Value) {
    let mut merged = old.clone();
    for list in ["containers", "initContainers"] {
        let sent = match same_containers(new, old, list) {
            Some(sent) => sent,
            None if no_containers(new, list) && no_containers(old, list) => continue,
            None => return,
        };
        let Some(cs) = merged
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (c, s) in cs.iter_mut().zip(sent) {
            if let Value::Object(c) = c {
                for f in RESIZE_FIELDS {
                    match s.get(f) {
                        Some(v) => c.insert(f.into(), v.clone()),
                        None => c.remove(f),
                    };
                }
            }
        }
    }
    let mut m = new.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Value::Object(m) = &mut m {
        for f in [
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "deletionTimestamp",
            "generation",
        ] {
            match old.pointer(&format!("/metadata/{f}")) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
    }
    merged["metadata"] = m;
    *new = merged;
}

/// A container's `requests` or `limits` as a name → value map (absent, null and `{}` alike,
/// as kube's semantic equality treats nil and empty lists).
fn resource_list<'a>(c: &'a Value, kind: &str) -> BTreeMap<&'a str, &'a Value> {
    c.pointer(&format!("/resources/{kind}"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// `dropCPUMemoryResourcesFromContainer`: the container with its cpu and memory taken from the
/// stored one (and a list the stored one lacks dropped), so that what is left to compare is
/// everything a resize may not change.
fn without_cpu_memory_changes(c: &Value, stored: &Value) -> Value {
    let mut out = c.clone();
    let mut resources = serde_json::Map::new();
    for kind in ["limits", "requests"] {
        let old = resource_list(stored, kind);
        if old.is_empty() {
            continue;
        }
        let mut list: serde_json::Map<String, Value> = resource_list(c, kind)
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "cpu" | "memory"))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for r in ["cpu", "memory"] {
            if let Some(v) = old.get(r) {
                list.insert(r.into(), (*v).clone());
            }
        }
        resources.insert(kind.into(), Value::Object(list));
    }
    out["resources"] = Value::Object(resources);
    out
}

/// Two containers equal as kube's semantic equality sees them: resource lists compared as
/// maps whether absent or empty.
fn same_container(a: &Value, b: &Value) -> bool {
    let strip = |c: &Value| {
        let mut c = c.clone();
        if let Some(m) = c.as_object_mut() {
            m.remove("resources");
        }
        c
    };
    strip(a) == strip(b)
        && ["limits", "requests"].iter().all(|k| {
            let (x, y) = (resource_list(a, k), resource_list(b, k));
            x.len() == y.len()
                && x.iter().all(|(n, v)| {
                    y.get(n).is_some_and(|w| {
                        quantity(Some(v))
                            .zip(quantity(Some(w)))
                            .map_or(v == w, |(p, q)| p == q)
                    })
                })
        })
}

/// `validateContainerResize` (1.35): requests and limits may change but not be removed. (1.33
/// and 1.34 also refused a memory-limit decrease under a `NotRequired` policy; 1.35 allows it.)
fn container_resize_rules(new: &Value, old: &Value, path: &str, causes: &mut Vec<Cause>) {
    for (kind, what) in [
        ("requests", "resource requests"),
        ("limits", "resource limits"),
    ] {
        let after = resource_list(new, kind);
        if resource_list(old, kind)
            .keys()
            .any(|k| !after.contains_key(k))
        {
            causes.push(forbidden_field(
                &format!("{path}.resources.{kind}"),
                &format!("{what} cannot be removed"),
            ));
        }
    }
}

/// `isPodResizeRequestSupported`: the first running container's status must report its
/// `resources`, which a kubelet that can resize does.
fn node_supports_resize(pod: &Value) -> bool {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|ss| ss.iter().find(|s| s.pointer("/state/running").is_some()))
        .is_none_or(|s| s.get("resources").is_some())
}

/// `ValidatePodResize` (1.35): the pod can be resized at all, keeps its QoS class, and only the
/// cpu and memory of its containers (and of its sidecar init containers) change, none removed.
fn resize_rules(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let pod_level = |p: &Value| {
        !resource_list(&p["spec"], "requests").is_empty()
            || !resource_list(&p["spec"], "limits").is_empty()
    };
    let refusal = if pod_level(old) || pod_level(new) {
        Some("pods with pod-level resources cannot be resized")
    } else if old
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        Some("static pods cannot be resized")
    } else if str_at(old, "/spec/os/name") == "windows" {
        Some("windows pods cannot be resized")
    } else {
        None
    };
    if let Some(msg) = refusal {
        // kube-apiserver returns this refusal alone, dropping the spec's other errors.
        causes.clear();
        causes.push(forbidden_field("", msg));
        return;
    }
    let empty = Vec::new();
    let inits = match same_containers(new, old, "initContainers") {
        None if no_containers(new, "initContainers") && no_containers(old, "initContainers") => {
            Some(&empty)
        }
        inits => inits,
    };
    if !container_list_rules(new, old, causes) {
        return;
    }
    let (Some(cs), Some(inits)) = (same_containers(new, old, "containers"), inits) else {
        return;
    };
    let stored_qos = match str_at(old, "/status/qosClass") {
        "" => pod_qos(old),
        q => q,
    };
    if stored_qos != pod_qos(new) {
        causes.push(invalid_value(
            "spec",
            &json!(str_at(new, "/status/qosClass")),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    if !node_supports_resize(old) {
        causes.push(forbidden_field(
            "spec",
            "Pod running on node without support for resize",
        ));
    }
    let stored = |list: &str| {
        old.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .unwrap_or(&empty)
    };
    let (old_cs, old_inits) = (stored("containers"), stored("initContainers"));
    let sidecar = |c: &Value| str_at(c, "/restartPolicy") == "Always";
    for (i, (n, o)) in inits.iter().zip(old_inits).enumerate() {
        if sidecar(o) {
            container_resize_rules(n, o, &format!("spec.initContainers[{i}]"), causes);
        }
    }
    for (i, (n, o)) in cs.iter().zip(old_cs).enumerate() {
        container_resize_rules(n, o, &format!("spec.containers[{i}]"), causes);
    }
    for (n, o) in cs.iter().zip(old_cs) {
        if !same_container(&without_cpu_memory_changes(n, o), o) {
            causes.push(forbidden_field("spec", ONLY_CPU_MEMORY));
        }
    }
    for (n, o) in inits.iter().zip(old_inits) {
        if sidecar(o) && !same_container(&without_cpu_memory_changes(n, o), o) {
            causes.push(forbidden_field(
                "spec",
                "only cpu and memory resources for sidecar containers are mutable",
            ));
        } else if !sidecar(o) && !same_container(n, o) {
            causes.push(forbidden_field(
                "spec",
                "resources for non-sidecar init containers are immutable",
            ));
        }
    }
}

/// `ValidatePodResize`'s refusal of added, removed, renamed or reordered containers, with its
/// messages; true when both lists name the same containers in the same order.
fn container_list_rules(new: &Value, old: &Value, causes: &mut Vec<Cause>) -> bool {
    let before = causes.len();
    let empty = Vec::new();
    for list in ["containers", "initContainers"] {
        let ptr = format!("/spec/{list}");
        let (n, o) = [new, old]
            .map(|p| p.pointer(&ptr).and_then(Value::as_array).unwrap_or(&empty))
            .into();
        if n.len() != o.len() {
            causes.push(forbidden_field(
                &format!("spec.{list}"),
                "containers may not be added or removed on resize",
            ));
            continue;
        }
        for (i, (a, b)) in n.iter().zip(o).enumerate() {
            if a.get("name") != b.get("name") {
                causes.push(forbidden_field(
                    &format!("spec.{list}[{i}].name"),
                    "containers may not be renamed or reordered on resize",
                ));
            }
        }
    }
    causes.len() == before
}

/// `ValidatePodResize`'s refusal of any other change through `pods/resize`.
const ONLY_CPU_MEMORY: &str = "only cpu and memory resources are mutable";

/// `preserveOldObservedGeneration`: a status write that leaves `observedGeneration` unset (in
/// the status or in a condition of a type the stored pod has) keeps the stored value.
fn preserve_observed_generation(new: &mut Value, old: &Value) {
    let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    let unset = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0) == 0;
    if unset(status.get("observedGeneration"))
        && let Some(g) = old.pointer("/status/observedGeneration")
    {
        status.insert("observedGeneration".into(), g.clone());
    }
    let mut stored: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for c in old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        stored
            .entry(str_at(c, "/type"))
            .or_default()
            .push(c.get("observedGeneration").unwrap_or(&Value::Null));
    }
    for c in status
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let kept = stored
            .get_mut(str_at(c, "/type"))
            .and_then(|gs| (!gs.is_empty()).then(|| gs.remove(0)));
        if unset(c.get("observedGeneration"))
            && let Some(g) = kept.filter(|g| !unset(Some(g)))
            && let Value::Object(c) = c
        {
            c.insert("observedGeneration".into(), g.clone());
        }
    }
}

/// podStatusStrategy.PrepareForUpdate: spec, deletionTimestamp and ownerReferences come from
/// the stored pod; labels, annotations and finalizers from the request; an unset
/// `observedGeneration` keeps the stored one.
pub fn prepare_status_update(new: &mut Value, old: &Value) {
    preserve_observed_generation(new, old);
    new["spec"] = old.get("spec").cloned().unwrap_or(Value::Null);
    let m = meta_mut(new);
    match old.pointer("/metadata/ownerReferences") {
        Some(o) => m.insert("ownerReferences".into(), o.clone()),
        None => m.remove("ownerReferences"),
    };
    if new
        .pointer("/status/qosClass")
        .is_none_or(|q| q.as_str() == Some(""))
        && let Some(q) = old.pointer("/status/qosClass")
        && new.get("status").is_some_and(Value::is_object)
    {
        new["status"]["qosClass"] = q.clone();
    }
}

/// Graceful deletion: `rest.BeforeDelete` with `podStrategy.CheckGracefulDelete`. A pod that
/// was never scheduled or has finished goes at once. Returns whether `obj` changed and whether
/// a grace period is pending.
pub fn graceful_delete(
    ctx: &RequestContext,
    desc: &ResourceDesc,
    obj: &mut Value,
    requested: Option<i64>,
) -> (bool, bool) {
    let mut changed = false;
    let mut grace = requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(0);
    if str_at(obj, "/spec/nodeName").is_empty() {
        grace = 0;
    }
    if matches!(str_at(obj, "/status/phase"), "Failed" | "Succeeded") {
        grace = 0;
    }
    if grace < 0 {
        grace = 1;
    }
    let current = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    // rest.BeforeDelete: a first graceful delete, or a shorter grace period than the one
    // pending, moves deletionTimestamp to now+grace (generation bumps on the first).
    let shorten = deleting && current.is_some_and(|c| grace < c);
    if (!deleting && grace > 0) || shorten {
        if !deleting {
            bump_generation(desc, obj);
        }
        let when = jiff::Timestamp::from_second(ctx.now_secs + grace)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|_| ctx.now.clone());
        let m = meta_mut(obj);
        m.insert("deletionTimestamp".into(), json!(when));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        changed = true;
    }
    let pending = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0);
    (changed, pending)
}

/// `pods/binding`: what the scheduler posts to assign a node (`BindingREST.Create`).
pub fn bind(
    st: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let b = parse_object(body)?;
    let node = b
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            name,
            &[required("target.name", "")],
        ));
    }
    let pod = get(st, desc, ns, name)?;
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            "pod is being deleted, cannot be assigned to a host",
        ));
    }
    let current = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !current.is_empty() {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!("pod {name} is already assigned to node {current:?}"),
        ));
    }
    let mut new = (*pod).clone();
    new["spec"]["nodeName"] = json!(node);
    if let Some(c) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        c.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
    }
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ctx.now});
    match new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        Some(c) => c.push(cond),
        None => new["status"]["conditions"] = json!([cond]),
    }
    // Bypass the spec-immutability rule the way the binding registry writes directly.
    let gr = desc.gr();
    let k = key(desc, ns, name);
    if !ctx.dry_run {
        st.put(&gr, k, new, EventType::Modified);
    }
    Ok((
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}})
    }

    #[test]
    fn qos_compares_quantities_and_takes_unset_requests_from_limits() {
        let limits = json!({"cpu": "1", "memory": "1Gi"});
        let same = pod(json!({"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": limits}));
        assert_eq!(pod_qos(&same), "Guaranteed");
        assert_eq!(pod_qos(&pod(json!({"limits": limits}))), "Guaranteed");
        let below = pod(json!({"requests": {"cpu": "500m"}, "limits": limits}));
        assert_eq!(pod_qos(&below), "Burstable");
        assert_eq!(
            pod_qos(&pod(json!({"requests": {"cpu": "0"}}))),
            "BestEffort"
        );
        assert_eq!(pod_qos(&pod(json!({}))), "BestEffort");
    }

    #[test]
    fn a_request_above_its_limit_is_refused_across_quantity_formats() {
        let refused = |req: &str, lim: &str| {
            let mut causes = Vec::new();
            let p = pod(json!({"requests": {"memory": req}, "limits": {"memory": lim}}));
            validate(&p, None, Subresource::Main, &mut causes);
            !causes.is_empty()
        };
        assert!(refused("1Gi", "1000M"));
        assert!(!refused("1000M", "1Gi"));
        assert!(!refused("1Gi", "1073741824"));
        assert!(refused("1025Mi", "1Gi"));
        assert!(!refused("512Mi", "0.5Gi"));
    }

    #[test]
    fn a_resize_keeps_all_but_container_resources_and_resize_policy() {
        let old = json!({"metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i:1", "resources": {}}]},
            "status": {"phase": "Running"}});
        let mut new = json!({"metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "c", "image": "i:2",
                "resources": {"requests": {"cpu": "1"}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]}]},
            "status": {"phase": "Failed"}});
        prepare_resize_update(&mut new, &old);
        assert_eq!(new["spec"]["containers"][0]["image"], "i:1");
        assert_eq!(
            new["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(
            new["spec"]["containers"][0]["resizePolicy"][0]["resourceName"],
            "cpu"
        );
        assert_eq!(new["status"]["phase"], "Running");
        assert_eq!(new["metadata"]["labels"]["a"], "1");
        assert_eq!(new["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn a_resize_that_renames_a_container_is_kept_for_validation_to_refuse() {
        let old = pod(json!({}));
        let mut new =
            json!({"spec": {"containers": [{"name": "d", "image": "i", "resources": {}}]}});
        prepare_resize_update(&mut new, &old);
        assert_eq!(new["spec"]["containers"][0]["name"], "d");
        let mut causes = Vec::new();
        resize_rules(&new, &old, &mut causes);
        assert_eq!(
            causes,
            vec![forbidden_field(
                "spec.containers[0].name",
                "containers may not be renamed or reordered on resize"
            )]
        );
        let mut added = old.clone();
        added["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "e", "image": "i"}));
        let mut causes = Vec::new();
        resize_rules(&added, &old, &mut causes);
        assert_eq!(
            causes,
            vec![forbidden_field(
                "spec.containers",
                "containers may not be added or removed on resize"
            )]
        );
    }

    /// A status write validates no spec (`ValidatePodStatusUpdate`): a kubelet is never refused
    /// for a spec the stored pod already has, whatever today's spec rules say of it.
    #[test]
    fn a_status_write_does_not_validate_the_spec() {
        let stored = pod(json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}));
        let mut causes = Vec::new();
        validate(&stored, Some(&stored), Subresource::Status, &mut causes);
        assert_eq!(causes, vec![]);
        validate(&stored, Some(&stored), Subresource::Main, &mut causes);
        assert!(!causes.is_empty(), "the main resource does refuse it");
    }
}
