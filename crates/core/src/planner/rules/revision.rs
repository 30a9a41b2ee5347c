//! Revisions of the pod template: their names, and whether moving a pod from one to another can
//! happen in place. Like the Go original, only container images (plus template labels and
//! annotations) may change in place; anything else needs a new pod, which the original refused
//! and we do by recreating the pod (with an event saying why).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use crate::inplace::Target;
use crate::planner::model::{Owner, RevisionPlan};

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels, no look-alike digits.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable hash of a pod template (and the collision count, which changes the name when two
/// templates collide), encoded like Kubernetes' ControllerRevision hashes.
pub(crate) fn revision_hash(template: &Value, collision_count: Option<i32>) -> String {
    // serde_json's Map is ordered by key, so the canonical text is stable across runs.
    let mut text = template.to_string();
    if let Some(c) = collision_count {
        text.push_str(&c.to_string());
    }
    let mut hash: u32 = 0x811c9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x01000193);
    }
    hash.to_string()
        .bytes()
        .map(|d| SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The ControllerRevision name for a GameDeployment and hash: `<name>-<hash>`.
pub(crate) fn revision_name(game_deployment: &str, hash: &str) -> String {
    format!("{game_deployment}-{hash}")
}

/// What a ControllerRevision stores, as the original does: the template, marked to replace.
pub(crate) fn revision_data(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(obj) = t.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a ControllerRevision stores, if it holds one.
pub fn revision_template(rev: &ControllerRevision) -> Option<Value> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    Some(t)
}

/// Finds or creates the update revision for `template` and prunes old ones, keeping the
/// revisions pods still use plus `history_limit` others.
pub(crate) fn plan_revisions(
    owner: &Owner,
    template: &Value,
    existing: &[ControllerRevision],
    collision_count: Option<i32>,
    in_use: &BTreeSet<&str>,
    history_limit: i32,
) -> RevisionPlan {
    let mut sorted: Vec<&ControllerRevision> = existing.iter().collect();
    sorted.sort_by_key(|r| (r.revision, r.metadata.name.clone()));
    let templates: BTreeMap<String, Value> = sorted
        .iter()
        .filter_map(|r| Some((r.metadata.name.clone()?, revision_template(r)?)))
        .collect();
    let mut order: Vec<String> = sorted
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let mut plan = RevisionPlan {
        update: String::new(),
        create: None,
        collision_count,
        prune: Vec::new(),
        templates,
        order: Vec::new(),
    };
    // A template equal to an existing revision's (a rollback) reuses that revision.
    if let Some((name, _)) = plan.templates.iter().find(|(_, t)| *t == template) {
        plan.update = name.clone();
    } else {
        let mut count = collision_count;
        let name = loop {
            let name = revision_name(&owner.name, &revision_hash(template, count));
            if !plan.templates.contains_key(&name) && !order.contains(&name) {
                break name;
            }
            // Same name, different template: a hash collision; the count changes the name.
            count = Some(count.unwrap_or(0) + 1);
        };
        plan.collision_count = count;
        let next = sorted.last().map_or(1, |r| r.revision + 1);
        plan.create = Some(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(owner.namespace.clone()),
                labels: template
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| serde_json::from_value(l.clone()).ok()),
                owner_references: Some(vec![owner.reference()]),
                ..Default::default()
            },
            data: Some(RawExtension(revision_data(template))),
            revision: next,
        });
        plan.templates.insert(name.clone(), template.clone());
        order.push(name.clone());
        plan.update = name;
    }
    let keep_extra = history_limit.max(0) as usize;
    let unused: Vec<&String> = order
        .iter()
        .filter(|n| **n != plan.update && !in_use.contains(n.as_str()))
        .collect();
    if unused.len() > keep_extra {
        plan.prune = unused[..unused.len() - keep_extra]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    plan.order = order;
    plan
}

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
            Ok(Target {
                revision: revision.to_string(),
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

    fn template(image: &str) -> Value {
        json!({
            "metadata": {"labels": {"app": "game"}},
            "spec": {"containers": [
                {"name": "python", "image": image, "command": ["python", "-m", "http.server"]},
                {"name": "sidecar", "image": "envoy:1"}
            ]}
        })
    }

    #[test]
    fn hashes_are_stable_safe_and_sensitive() {
        let h = revision_hash(&template("python:3.9"), None);
        assert_eq!(h, revision_hash(&template("python:3.9"), None));
        assert_ne!(h, revision_hash(&template("python:latest"), None));
        assert_ne!(h, revision_hash(&template("python:3.9"), Some(1)));
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{h}");
        assert_eq!(
            revision_name("test-gamedeployment", &h),
            format!("test-gamedeployment-{h}")
        );
    }

    fn owner() -> Owner {
        Owner {
            name: "gd".into(),
            namespace: "default".into(),
            uid: "u1".into(),
        }
    }

    #[test]
    fn a_new_template_gets_a_revision_and_an_old_one_is_reused() {
        let first = plan_revisions(
            &owner(),
            &template("python:3.9"),
            &[],
            None,
            &BTreeSet::new(),
            10,
        );
        let r1 = first.create.clone().expect("created");
        assert_eq!(r1.revision, 1);
        assert_eq!(revision_template(&r1).unwrap(), template("python:3.9"));
        let second = plan_revisions(
            &owner(),
            &template("python:latest"),
            std::slice::from_ref(&r1),
            None,
            &BTreeSet::new(),
            10,
        );
        let r2 = second.create.clone().expect("created");
        assert_eq!(r2.revision, 2);
        assert_eq!(second.order, [first.update.clone(), second.update.clone()]);
        // Rolling back to the first template reuses its revision.
        let back = plan_revisions(
            &owner(),
            &template("python:3.9"),
            &[r1, r2],
            None,
            &BTreeSet::new(),
            10,
        );
        assert!(back.create.is_none());
        assert_eq!(back.update, first.update);
    }

    #[test]
    fn a_hash_collision_bumps_the_count() {
        let first = plan_revisions(
            &owner(),
            &template("python:3.9"),
            &[],
            None,
            &BTreeSet::new(),
            10,
        );
        let mut squatter = first.create.clone().unwrap();
        squatter.data = Some(RawExtension(revision_data(&json!({"other": true}))));
        let p = plan_revisions(
            &owner(),
            &template("python:3.9"),
            &[squatter],
            None,
            &BTreeSet::new(),
            10,
        );
        assert_eq!(p.collision_count, Some(1));
        assert_ne!(p.update, first.update);
    }

    #[test]
    fn pruning_keeps_used_revisions_and_the_history_limit() {
        let mut revs = Vec::new();
        for i in 0..5 {
            let p = plan_revisions(
                &owner(),
                &template(&format!("img:{i}")),
                &revs,
                None,
                &BTreeSet::new(),
                10,
            );
            revs.push(p.create.unwrap());
        }
        let names: Vec<String> = revs
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        let in_use: BTreeSet<&str> = [names[0].as_str()].into();
        let p = plan_revisions(&owner(), &template("img:4"), &revs, None, &in_use, 1);
        assert_eq!(p.update, names[4]);
        assert_eq!(
            p.prune,
            [names[1].clone(), names[2].clone()],
            "keeps used r0, update r4 and one more"
        );
    }

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
