//! Phase 4, scale: the pods to create (built from their revision's stored template) and the
//! pods to delete (scale-down and `scaleStrategy.podsToDelete`, with surge). It exists to keep
//! the replica count apart from updates; it may not hold deletions back (the preDelete gate
//! does, in [`super::gates`], for every deletion alike) nor touch the pods it keeps.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use super::revisions::Revisions;
use crate::inplace::PodView;
use crate::names;
use crate::planner::model::{ConditionReport, DeleteReason, Owner, PlanInput};
use crate::planner::rules::limits::Resolved;
use crate::planner::rules::replicas::{ReplicaInput, replica_diff};
use crate::planner::rules::{new_pods, pod_index};

/// The scale decisions of this reconcile.
#[derive(Default)]
pub struct Scaled {
    pub create: Vec<Pod>,
    /// Before the preDelete gate.
    pub delete: Vec<(String, DeleteReason)>,
    pub problems: Vec<ConditionReport>,
}

impl Scaled {
    /// Whether this reconcile scales (then it starts no updates, as in the original).
    pub fn scaling(&self) -> bool {
        !self.create.is_empty() || !self.delete.is_empty()
    }
}

/// Decides what scaling `world`'s GameDeployment takes now.
pub fn scale(
    world: &PlanInput,
    resolved: &Resolved,
    owner: &Owner,
    views: &[&PodView],
    revisions: &Revisions,
    suffix: &mut dyn FnMut() -> String,
) -> Scaled {
    let gd = world.gd;
    let mut out = Scaled {
        create: Vec::new(),
        delete: Vec::new(),
        problems: Vec::new(),
    };
    let pods_to_delete = gd
        .spec
        .scale_strategy
        .as_ref()
        .map(|s| s.pods_to_delete.clone())
        .unwrap_or_default();
    let cost_descending = gd
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::ANNOTATION_DELETION_COST_SORT))
        .is_some_and(|v| v == "descend");
    let scale_plan = replica_diff(
        &ReplicaInput {
            name: &owner.name,
            pods: views,
            replicas: resolved.limits.replicas,
            partition: resolved.limits.partition,
            max_surge: resolved.max_surge,
            update_revision: &revisions.update,
            current_revision: &revisions.current,
            pods_to_delete: &pods_to_delete,
            node_costs: world.node_costs,
            cost_descending,
            create_batch: resolved.create_batch,
            min_ready_seconds: resolved.limits.min_ready_seconds,
            now: world.now,
        },
        suffix,
    );
    let index_problem = |message: String| ConditionReport {
        condition: names::CONDITION_FAILED_SCALE,
        reason: names::REASON_INVALID_POD_INDEX_RANGE,
        message,
    };
    let mut creates = scale_plan.create.as_slice();
    let mut indices = Vec::new();
    if !creates.is_empty() {
        match pod_index::range(gd.metadata.annotations.as_ref(), resolved.limits.replicas) {
            Ok(None) => {}
            Ok(Some(range)) => {
                indices = pod_index::free(range, views, creates.len());
                if indices.len() < creates.len() {
                    out.problems.push(index_problem(format!(
                        "cannot create {} pods: only {} indices of {} to {} are free (terminating pods still hold theirs)",
                        creates.len(),
                        indices.len(),
                        range.start,
                        range.end - 1
                    )));
                    creates = &creates[..indices.len()];
                }
            }
            Err(e) => {
                out.problems.push(index_problem(e.to_string()));
                creates = &[];
            }
        }
    }
    // Decoded once per revision, not once per pod: a scale-up creates up to 500 pods from one.
    let mut decoded: BTreeMap<&str, Option<PodTemplateSpec>> = BTreeMap::new();
    for (i, new) in creates.iter().enumerate() {
        let template = decoded
            .entry(new.revision.as_str())
            .or_insert_with(|| decode_template(revisions, &new.revision));
        match template {
            Some(t) => {
                let mut pod = new_pods::build(owner, t, new, resolved.readiness_gate);
                if let Some(&at) = indices.get(i) {
                    pod_index::stamp(&mut pod, at);
                }
                out.create.push(pod);
            }
            None => out.problems.push(ConditionReport {
                condition: names::CONDITION_FAILED_SCALE,
                reason: names::REASON_MISSING_REVISION,
                message: format!(
                    "cannot create {}: revision {} has no readable template",
                    new.name, new.revision
                ),
            }),
        }
    }
    let requested: BTreeSet<&str> = pods_to_delete.iter().map(String::as_str).collect();
    for name in &scale_plan.delete {
        let reason = if requested.contains(name.as_str()) {
            DeleteReason::Requested
        } else {
            DeleteReason::ScaleDown
        };
        out.delete.push((name.clone(), reason));
    }
    out
}

#[cfg(test)]
thread_local! {
    /// How many stored templates this thread's plans decoded into a `PodTemplateSpec`.
    pub(crate) static TEMPLATE_DECODES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The stored template of `revision`, decoded; `None` when there is none or it does not read.
fn decode_template(revisions: &Revisions, revision: &str) -> Option<PodTemplateSpec> {
    #[cfg(test)]
    TEMPLATE_DECODES.with(|n| n.set(n.get() + 1));
    let stored = revisions.plan.templates.get(revision)?;
    serde_json::from_value(stored.clone()).ok()
}
