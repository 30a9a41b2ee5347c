//! Phase 2, revisions: the update revision (created if the template is new), the revisions to
//! prune, and the current revision. It exists so that every later phase works from the same
//! two revision names and stored templates; it decides nothing about pods.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::names;
use crate::planner::model::{Owner, PlanInput, RevisionPlan};
use crate::planner::rules::pod_revisions::PodRevisions;
use crate::planner::rules::revision_history::plan_revisions;

/// The revisions of this reconcile.
pub struct Revisions {
    /// What to create and prune, the stored templates, and the revision order.
    pub plan: RevisionPlan,
    /// The revision the template says pods should be on.
    pub update: String,
    /// The oldest revision a live pod is on (the update revision when none is).
    pub current: String,
}

/// The revisions of `world`'s GameDeployment, given the revisions its pods are on.
pub fn revisions(world: &PlanInput, owner: &Owner, on: &PodRevisions) -> Revisions {
    let gd = world.gd;
    let template = serde_json::to_value(&gd.spec.template).unwrap_or(Value::Null);
    let in_use: BTreeSet<&str> = on.any.iter().copied().collect();
    let mut plan = plan_revisions(
        owner,
        &template,
        world.revisions,
        gd.status.as_ref().and_then(|s| s.collision_count),
        &in_use,
        gd.spec.revision_history_limit(),
    );
    // As Deployment does for its ReplicaSets: the revision remembers why it was made.
    let cause = gd
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::ANNOTATION_CHANGE_CAUSE));
    if let (Some(created), Some(cause)) = (plan.create.as_mut(), cause) {
        created
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(names::ANNOTATION_CHANGE_CAUSE.to_string(), cause.clone());
    }
    let update = plan.update.clone();
    let current = on.current(&plan.order, &update);
    Revisions {
        plan,
        update,
        current,
    }
}
