//! Whether moving a pod from one template revision to another can happen in place, and what
//! it writes. Container images (plus template labels and annotations) may change in place, as
//! in the Go original, and so may the cpu/memory requests and limits of existing containers
//! when the API server serves `pods/resize` (Kubernetes 1.33+), as long as the pod's QoS class
//! stays (kube-apiserver refuses a resize that changes it) and `resizePolicy` does not change
//! (immutable). Anything else needs a new pod, which the original refused and we do by
//! recreating the pod (with an event saying why).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::inplace::{ContainerResources, QosClass, RESIZABLE, Target, qos_class};

/// Why a template change needs a new pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotInPlace {
    #[error(
        "{path} changed; only container images, container cpu/memory requests and limits, \
         labels and annotations can change in place"
    )]
    Changed {
        /// JSON path of the first change that cannot be made in place.
        path: String,
    },
    #[error(
        "{path} changed and the API server does not serve pods/resize (Kubernetes < 1.33), so \
         container resources cannot change in place"
    )]
    NoResize { path: String },
    #[error(
        "{path} changed the pod's QoS class from {from} to {to}, which a running pod cannot \
         change"
    )]
    QosChanged {
        path: String,
        from: QosClass,
        to: QosClass,
    },
}

impl NotInPlace {
    pub(crate) fn changed(path: impl Into<String>) -> Self {
        NotInPlace::Changed { path: path.into() }
    }

    /// JSON path of the change.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &str {
        match self {
            NotInPlace::Changed { path }
            | NotInPlace::NoResize { path }
            | NotInPlace::QosChanged { path, .. } => path,
        }
    }
}

/// The in-place target for moving a pod from template `old` to template `new`, or why that
/// needs a new pod. `resize` says whether the API server serves `pods/resize`. The target's
/// resources list the containers whose cpu/memory the move changes; between identical templates
/// (a pod's own revision) every container, so a resize in flight can be taken back.
pub(crate) fn in_place_target(
    old: &Value,
    new: &Value,
    revision: &str,
    resize: bool,
) -> Result<Target, NotInPlace> {
    let spec = |v: &Value| v.get("spec").cloned().unwrap_or(Value::Null);
    let (mut old_spec, mut new_spec) = (spec(old), spec(new));
    let images = take_images(&mut old_spec).zip(take_images(&mut new_spec));
    let Some((_, new_images)) = images.filter(|(o, n)| o.keys().eq(n.keys())) else {
        return Err(NotInPlace::changed("spec.containers"));
    };
    let old_res = take_resources(&mut old_spec);
    let new_res = take_resources(&mut new_spec);
    if let Some(path) = first_difference(&old_spec, &new_spec, "spec") {
        return Err(NotInPlace::changed(path));
    }
    let resources = resource_changes(&old_res, &new_res, old == new)?;
    if !resources.is_empty() && old != new {
        let first = new_res.iter().find(|(_, n, _)| resources.contains_key(n));
        let path = format!("spec.containers[{}].resources", first.map_or(0, |f| f.0));
        if !resize {
            return Err(NotInPlace::NoResize { path });
        }
        let (from, to) = (qos(&old_spec, &old_res), qos(&new_spec, &new_res));
        if from != to {
            return Err(NotInPlace::QosChanged { path, from, to });
        }
    }
    let mut container_order: Vec<(usize, String)> = new_images
        .iter()
        .map(|(k, (i, _))| (*i, k.clone()))
        .collect();
    container_order.sort();
    Ok(Target {
        revision: revision.to_string(),
        container_order: container_order.into_iter().map(|(_, k)| k).collect(),
        images: new_images
            .into_iter()
            .map(|(k, (_, image))| (k, image))
            .collect(),
        labels: string_map(new, "labels"),
        annotations: string_map(new, "annotations"),
        restart_on_resize: restart_policies(&new_spec, &resources),
        resources,
    })
}

/// One container's `resources` object, taken out of the spec, by position: its name and the
/// whole object (every resource, every field).
type TakenResources = Vec<(usize, String, Value)>;

/// Removes each container's `resources` (the rest of the spec must then be equal).
fn take_resources(spec: &mut Value) -> TakenResources {
    let containers = spec.get_mut("containers").and_then(Value::as_array_mut);
    let mut out = Vec::new();
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let Some(c) = c.as_object_mut() else { continue };
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let name = name.to_string();
        out.push((i, name, c.remove("resources").unwrap_or(Value::Null)));
    }
    out
}

/// The cpu/memory each container moves to, for the containers whose cpu/memory changes (every
/// container when `all`); an error for a change to anything else in `resources`.
fn resource_changes(
    old: &TakenResources,
    new: &TakenResources,
    all: bool,
) -> Result<BTreeMap<String, ContainerResources>, NotInPlace> {
    let mut out = BTreeMap::new();
    for ((i, name, before), (_, _, after)) in old.iter().zip(new) {
        let path = format!("spec.containers[{i}].resources");
        if let Some(path) = first_difference(&not_resizable(before), &not_resizable(after), &path) {
            return Err(NotInPlace::changed(path));
        }
        let (b, a) = (
            ContainerResources::from_json(Some(before)),
            ContainerResources::from_json(Some(after)),
        );
        if all || !a.same_as(&b) {
            out.insert(name.clone(), a);
        }
    }
    Ok(out)
}

/// A `resources` object without the cpu/memory requests and limits (what a resize may change),
/// with `requests` and `limits` always present, so a difference is named down to the resource.
fn not_resizable(resources: &Value) -> Value {
    let mut r = match resources {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    for field in ["requests", "limits"] {
        let mut m = r
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for name in RESIZABLE {
            m.remove(name);
        }
        r.insert(field.to_string(), Value::Object(m));
    }
    Value::Object(r)
}

/// The QoS class of a template whose containers' resources were taken out into `taken`.
fn qos(spec: &Value, taken: &TakenResources) -> QosClass {
    let init = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| ContainerResources::from_json(c.get("resources")));
    let main = taken
        .iter()
        .map(|(_, _, r)| ContainerResources::from_json(Some(r)));
    let all: Vec<ContainerResources> = main.chain(init).collect();
    qos_class(&all)
}

/// For each container in `resources`, the resources whose `resizePolicy` is
/// `RestartContainer` (an absent entry is `NotRequired`).
fn restart_policies(
    spec: &Value,
    resources: &BTreeMap<String, ContainerResources>,
) -> BTreeMap<String, BTreeSet<String>> {
    let containers = spec.get("containers").and_then(Value::as_array);
    containers
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            resources.get(name)?;
            let restart: BTreeSet<String> = c
                .get("resizePolicy")?
                .as_array()?
                .iter()
                .filter(|p| p["restartPolicy"] == "RestartContainer")
                .filter_map(|p| Some(p["resourceName"].as_str()?.to_string()))
                .collect();
            (!restart.is_empty()).then(|| (name.to_string(), restart))
        })
        .collect()
}

/// Removes each container's image, returning name -> (index, image); `None` when the
/// containers are not a list of named objects.
fn take_images(spec: &mut Value) -> Option<BTreeMap<String, (usize, String)>> {
    let containers = spec.get_mut("containers")?.as_array_mut()?;
    let mut out = BTreeMap::new();
    for (i, c) in containers.iter_mut().enumerate() {
        let c = c.as_object_mut()?;
        let name = c.get("name")?.as_str()?.to_string();
        let image = c
            .remove("image")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.insert(name, (i, image));
    }
    Some(out)
}

fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                first_difference(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &format!("{path}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

fn string_map(template: &Value, field: &str) -> BTreeMap<String, String> {
    template
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::planner::testing::two_container_template as template;

    #[test]
    fn an_image_change_is_in_place() {
        let mut new = template("python:latest");
        new["metadata"]["annotations"] = json!({"owner": "ops"});
        let t = in_place_target(&template("python:3.9"), &new, "r2", true).unwrap();
        assert_eq!(t.images["python"], "python:latest");
        assert_eq!(t.images["sidecar"], "envoy:1");
        assert_eq!(t.labels["app"], "game");
        assert_eq!(t.annotations["owner"], "ops");
    }

    /// An ordered `inPlaceUpdateStrategy.policy` follows the pod spec, not the names.
    #[test]
    fn the_target_lists_containers_in_spec_order() {
        let reversed = |image: &str| {
            let mut t = template(image);
            t["spec"]["containers"].as_array_mut().unwrap().reverse();
            t
        };
        let t = in_place_target(
            &reversed("python:3.9"),
            &reversed("python:latest"),
            "r2",
            true,
        )
        .unwrap();
        assert_eq!(t.container_order, vec!["sidecar", "python"]);
    }

    #[test]
    fn anything_else_needs_a_new_pod_and_says_where() {
        let old = template("python:3.9");
        let mut env = template("python:latest");
        env["spec"]["containers"][0]["env"] = json!([{"name": "X", "value": "1"}]);
        assert_eq!(
            in_place_target(&old, &env, "r2", true).unwrap_err().path(),
            "spec.containers[0].env"
        );
        let mut added = template("python:3.9");
        added["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "new", "image": "x"}));
        assert_eq!(
            in_place_target(&old, &added, "r2", true)
                .unwrap_err()
                .path(),
            "spec.containers"
        );
        let mut init = template("python:3.9");
        init["spec"]["initContainers"] = json!([{"name": "i", "image": "busybox"}]);
        assert_eq!(
            in_place_target(&old, &init, "r2", true).unwrap_err().path(),
            "spec.initContainers"
        );
        let garbage = json!({"spec": {"containers": "nope"}});
        assert!(in_place_target(&old, &garbage, "r2", true).is_err());
    }

    /// `template` with `resources` (and optionally `resizePolicy`) on the python container.
    fn sized(image: &str, resources: Value) -> Value {
        let mut t = template(image);
        t["spec"]["containers"][0]["resources"] = resources;
        t
    }

    fn burstable(cpu: &str) -> Value {
        json!({"requests": {"cpu": cpu, "memory": "256Mi"}, "limits": {"memory": "512Mi"}})
    }

    #[test]
    fn a_cpu_change_is_in_place_and_lists_only_the_changed_container() {
        let t = in_place_target(
            &sized("python:3.9", burstable("500m")),
            &sized("python:3.9", burstable("1")),
            "r2",
            true,
        )
        .unwrap();
        assert_eq!(t.resources.keys().collect::<Vec<_>>(), ["python"]);
        assert_eq!(t.resources["python"].requests["cpu"], "1");
        assert_eq!(t.resources["python"].limits["memory"], "512Mi");
        assert!(t.restart_on_resize.is_empty());
    }

    #[test]
    fn images_and_resources_change_together_in_place() {
        let t = in_place_target(
            &sized("python:3.9", burstable("500m")),
            &sized("python:latest", burstable("1")),
            "r2",
            true,
        )
        .unwrap();
        assert_eq!(t.images["python"], "python:latest");
        assert!(t.resources.contains_key("python"));
    }

    #[test]
    fn the_same_quantity_spelled_differently_is_no_change() {
        let t = in_place_target(
            &sized("python:3.9", burstable("1")),
            &sized("python:latest", burstable("1000m")),
            "r2",
            true,
        )
        .unwrap();
        assert!(t.resources.is_empty(), "1 == 1000m: nothing to resize");
    }

    /// A pod's own revision lists every container, so a resize in flight can be taken back.
    #[test]
    fn a_pods_own_revision_lists_every_containers_resources() {
        let own = sized("python:3.9", burstable("1"));
        let t = in_place_target(&own, &own, "r1", true).unwrap();
        assert_eq!(
            t.resources.keys().collect::<Vec<_>>(),
            ["python", "sidecar"]
        );
    }

    #[test]
    fn restart_container_policy_is_carried_for_changed_containers() {
        let policy = json!([{"resourceName": "memory", "restartPolicy": "RestartContainer"},
                            {"resourceName": "cpu", "restartPolicy": "NotRequired"}]);
        let mut old = sized("python:3.9", burstable("500m"));
        old["spec"]["containers"][0]["resizePolicy"] = policy.clone();
        let mut new = sized("python:3.9", burstable("1"));
        new["spec"]["containers"][0]["resizePolicy"] = policy;
        let t = in_place_target(&old, &new, "r2", true).unwrap();
        assert_eq!(
            t.restart_on_resize["python"].iter().collect::<Vec<_>>(),
            ["memory"]
        );
    }

    #[test]
    fn a_resize_policy_change_recreates() {
        let old = sized("python:3.9", burstable("500m"));
        let mut new = sized("python:3.9", burstable("1"));
        new["spec"]["containers"][0]["resizePolicy"] =
            json!([{"resourceName": "cpu", "restartPolicy": "RestartContainer"}]);
        let err = in_place_target(&old, &new, "r2", true).unwrap_err();
        assert_eq!(err.path(), "spec.containers[0].resizePolicy");
    }

    #[test]
    fn a_resource_other_than_cpu_or_memory_recreates() {
        let old = sized("python:3.9", burstable("500m"));
        let mut r = burstable("1");
        r["requests"]["ephemeral-storage"] = json!("1Gi");
        let err = in_place_target(&old, &sized("python:3.9", r), "r2", true).unwrap_err();
        assert_eq!(
            err.path(),
            "spec.containers[0].resources.requests.ephemeral-storage"
        );
    }

    #[test]
    fn a_qos_class_change_recreates() {
        let err = in_place_target(
            &template("python:3.9"),
            &sized("python:3.9", burstable("1")),
            "r2",
            true,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            NotInPlace::QosChanged {
                from: QosClass::BestEffort,
                to: QosClass::Burstable,
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("QoS class from BestEffort to Burstable")
        );
    }

    #[test]
    fn without_pods_resize_a_resource_change_recreates_and_says_why() {
        let err = in_place_target(
            &sized("python:3.9", burstable("500m")),
            &sized("python:3.9", burstable("1")),
            "r2",
            false,
        )
        .unwrap_err();
        assert_eq!(err.path(), "spec.containers[0].resources");
        assert!(
            err.to_string()
                .contains("does not serve pods/resize (Kubernetes < 1.33)")
        );
        // An image change alone still goes in place.
        assert!(
            in_place_target(
                &sized("python:3.9", burstable("1")),
                &sized("python:latest", burstable("1")),
                "r2",
                false
            )
            .is_ok()
        );
    }
}
