//! Whether moving a pod from one template revision to another can happen in place, and what
//! it writes. Like the Go original, only container images (plus template labels and
//! annotations) may change in place; anything else needs a new pod, which the original refused
//! and we do by recreating the pod (with an event saying why).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::inplace::Target;

/// Why a template change needs a new pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} changed; only container images, labels and annotations can change in place")]
pub(crate) struct NotInPlace {
    /// JSON path of the first change that is not an image.
    pub path: String,
}

/// The in-place target for moving a pod from template `old` to template `new`, or why that
/// needs a new pod.
pub(crate) fn in_place_target(
    old: &Value,
    new: &Value,
    revision: &str,
) -> Result<Target, NotInPlace> {
    let spec = |v: &Value| v.get("spec").cloned().unwrap_or(Value::Null);
    let (mut old_spec, mut new_spec) = (spec(old), spec(new));
    let images = take_images(&mut old_spec).zip(take_images(&mut new_spec));
    match images {
        Some((old_images, new_images)) if old_images.keys().eq(new_images.keys()) => {
            if let Some(path) = first_difference(&old_spec, &new_spec, "spec") {
                return Err(NotInPlace { path });
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
            })
        }
        _ => Err(NotInPlace {
            path: "spec.containers".into(),
        }),
    }
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
        let t = in_place_target(&template("python:3.9"), &new, "r2").unwrap();
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
        let t = in_place_target(&reversed("python:3.9"), &reversed("python:latest"), "r2").unwrap();
        assert_eq!(t.container_order, vec!["sidecar", "python"]);
    }

    #[test]
    fn anything_else_needs_a_new_pod_and_says_where() {
        let old = template("python:3.9");
        let mut env = template("python:latest");
        env["spec"]["containers"][0]["env"] = json!([{"name": "X", "value": "1"}]);
        assert_eq!(
            in_place_target(&old, &env, "r2").unwrap_err().path,
            "spec.containers[0].env"
        );
        let mut added = template("python:3.9");
        added["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "new", "image": "x"}));
        assert_eq!(
            in_place_target(&old, &added, "r2").unwrap_err().path,
            "spec.containers"
        );
        let mut init = template("python:3.9");
        init["spec"]["initContainers"] = json!([{"name": "i", "image": "busybox"}]);
        assert_eq!(
            in_place_target(&old, &init, "r2").unwrap_err().path,
            "spec.initContainers"
        );
        let garbage = json!({"spec": {"containers": "nope"}});
        assert!(in_place_target(&old, &garbage, "r2").is_err());
    }
}
