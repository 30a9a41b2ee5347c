//! The planner's side of in-place cpu/memory resize: the budget and partition it shares with
//! image updates, a server without `pods/resize`, a pod resized by someone else, and
//! `infeasibleResizePolicy` (Recreate, Hold, and Recreate when no node could hold the pod).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::tests::{decided, first_sync, plan_with};
use super::*;
use crate::api::{GameDeployment, InPlaceUpdateStrategy, InfeasibleResizePolicy};
use crate::inplace::{Endpoint, Record, State, encode};
use crate::names;
use crate::planner::model::{CachedPod, DeleteReason, NodeFacts};
use crate::planner::testing::{now, seed};

fn cpu(request: &str) -> Option<ResourceRequirements> {
    Some(ResourceRequirements {
        requests: Some(BTreeMap::from([(
            "cpu".to_string(),
            Quantity(request.to_string()),
        )])),
        ..Default::default()
    })
}

/// The seed (8 pods, maxUnavailable 2) with `request` cpu on its container.
fn sized(request: &str) -> GameDeployment {
    let mut gd = seed();
    gd.spec.template.spec.as_mut().unwrap().containers[0].resources = cpu(request);
    gd
}

fn with_policy(mut gd: GameDeployment, policy: InfeasibleResizePolicy) -> GameDeployment {
    let strategy = gd.spec.update_strategy.get_or_insert_default();
    let in_place = strategy
        .in_place_update_strategy
        .get_or_insert_with(InPlaceUpdateStrategy::default);
    in_place.infeasible_resize_policy = Some(policy);
    gd
}

#[test]
fn a_cpu_raise_resizes_within_the_budget_without_a_readiness_flip() {
    let (_, pods, revs) = first_sync(&sized("500m"));
    let plan = plan_with(&sized("1"), &pods, &revs);
    assert!(plan.delete.is_empty(), "{:?}", plan.delete);
    assert_eq!(
        plan.machines.len(),
        2,
        "maxUnavailable 20% of 8 rounds up to 2"
    );
    for (_, step) in &plan.machines {
        assert_eq!(step.state, Some(State::Resizing));
        let w = step.writes().next().unwrap();
        assert_eq!(w.endpoint, Endpoint::Pod);
        assert!(w.condition.is_none(), "no readiness flip");
    }
}

/// A partition keeps pods on their revision for a resize as for an image.
#[test]
fn a_resize_respects_the_partition() {
    let mut gd = sized("500m");
    gd.spec.update_strategy.get_or_insert_default().partition = Some(IntOrString::Int(7));
    let (_, pods, revs) = first_sync(&gd);
    let mut next = sized("1");
    next.spec.update_strategy = gd.spec.update_strategy.clone();
    let plan = plan_with(&next, &pods, &revs);
    assert_eq!(plan.machines.len(), 1, "8 replicas, partition 7");
}

#[test]
fn without_pods_resize_a_cpu_change_recreates_and_says_why() {
    let (_, pods, revs) = first_sync(&sized("500m"));
    let gd = sized("1");
    let cached: Vec<Arc<CachedPod>> = pods.iter().cloned().map(|p| Arc::new(p.into())).collect();
    let plan = decided(&PlanInput {
        pods: &cached,
        revisions: &revs,
        resize_supported: false,
        ..PlanInput::for_test(&gd)
    });
    assert!(plan.machines.is_empty());
    assert_eq!(plan.delete.len(), 2);
    assert!(plan.delete.iter().all(|(_, r)| matches!(r,
        DeleteReason::Recreate(why) if why.contains("does not serve pods/resize (Kubernetes < 1.33)"))));
}

/// The VPA (InPlaceOrRecreate) resized a pod at the current revision: it is left alone.
#[test]
fn a_pod_resized_by_someone_else_at_its_revision_is_not_reverted() {
    let gd = sized("500m");
    let (_, mut pods, revs) = first_sync(&gd);
    for pod in &mut pods {
        pod.spec.as_mut().unwrap().containers[0].resources = cpu("2");
    }
    let plan = plan_with(&gd, &pods, &revs);
    assert!(plan.machines.is_empty(), "{:?}", plan.machines);
    assert!(plan.delete.is_empty());
}

/// A pod at the update revision whose record says its resize is infeasible on node-1.
fn infeasible(gd: &GameDeployment, nodes: &BTreeMap<String, NodeFacts>) -> (Decisions, String) {
    let (_, mut pods, revs) = first_sync(&sized("500m"));
    let update = decided(&PlanInput {
        revisions: &revs,
        ..PlanInput::for_test(gd)
    })
    .status
    .update_revision;
    let pod: &mut Pod = &mut pods[0];
    let name = pod.metadata.name.clone().unwrap();
    let mut r = Record::start(&update, now());
    r.state = State::ResizeInfeasible;
    r.reason = Some(names::EVENT_RESIZE_INFEASIBLE.into());
    r.message = Some("pod p: resize of container python is infeasible on node node-1".into());
    let meta = &mut pod.metadata;
    meta.labels
        .get_or_insert_default()
        .insert(names::LABEL_REVISION.into(), update.clone());
    meta.annotations
        .get_or_insert_default()
        .insert(names::ANNOTATION_STATE.into(), encode(&r));
    let cached: Vec<Arc<CachedPod>> = pods.iter().cloned().map(|p| Arc::new(p.into())).collect();
    let plan = decided(&PlanInput {
        pods: &cached,
        revisions: &revs,
        nodes,
        ..PlanInput::for_test(gd)
    });
    (plan, name)
}

fn failed_update(plan: &Decisions) -> (String, String) {
    let c = plan
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_UPDATE)
        .expect("a FailedUpdate condition");
    (c.reason.clone(), c.message.clone())
}

fn node(cpu: &str) -> BTreeMap<String, NodeFacts> {
    let facts = NodeFacts {
        schedulable: true,
        allocatable: [
            ("cpu".to_string(), cpu.to_string()),
            ("memory".to_string(), "8Gi".to_string()),
        ]
        .into(),
    };
    [("node-2".to_string(), facts)].into()
}

#[test]
fn an_infeasible_resize_is_recreated_when_a_node_could_hold_the_pod() {
    let gd = with_policy(sized("64"), InfeasibleResizePolicy::Recreate);
    let (plan, name) = infeasible(&gd, &node("128"));
    assert!(
        plan.delete.iter().any(|(n, r)| *n == name
            && matches!(r, DeleteReason::Recreate(why) if why.contains("infeasible on node node-1"))),
        "{:?}",
        plan.delete
    );
    let (reason, message) = failed_update(&plan);
    assert_eq!(reason, "ResizeInfeasible");
    assert!(message.contains("Recreate"), "{message}");
}

#[test]
fn an_infeasible_resize_is_held_when_no_node_could_hold_the_pod() {
    let gd = with_policy(sized("64"), InfeasibleResizePolicy::Recreate);
    let (plan, name) = infeasible(&gd, &node("4"));
    assert!(
        !plan.delete.iter().any(|(n, _)| *n == name),
        "never recreated into Pending"
    );
    let (reason, message) = failed_update(&plan);
    assert_eq!(reason, "ResizeInfeasible");
    assert!(message.contains("no schedulable node"), "{message}");
}

#[test]
fn an_infeasible_resize_under_hold_keeps_the_pod() {
    let gd = with_policy(sized("64"), InfeasibleResizePolicy::Hold);
    let (plan, name) = infeasible(&gd, &node("128"));
    assert!(!plan.delete.iter().any(|(n, _)| *n == name));
    let (reason, message) = failed_update(&plan);
    assert_eq!(reason, "ResizeInfeasible");
    assert!(message.contains("Hold"), "{message}");
}
