//! Revisions of the pod template as ControllerRevisions: their hashed names, what they store,
//! and which to create and prune (kube's revision history, as the original keeps it).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

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

#[cfg(test)]
mod tests;
