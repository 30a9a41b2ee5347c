//! What a plan costs, counted (never timed): the in-place machine runs only for pods it has
//! something to do for, and a stored template is decoded once per revision, not once per pod.

use super::tests::{first_sync, plan_with};
use crate::names;
use crate::planner::phases::scale::TEMPLATE_DECODES;
use crate::planner::phases::update::MACHINE_STEPS;
use crate::planner::testing::seed;

fn steps() -> usize {
    MACHINE_STEPS.with(|n| n.get())
}

fn decodes() -> usize {
    TEMPLATE_DECODES.with(|n| n.get())
}

#[test]
fn a_no_op_plan_runs_no_machine_and_one_changed_pod_runs_one() {
    let mut gd = seed();
    gd.spec.replicas = Some(300);
    let before = decodes();
    let (first, mut pods, revs) = first_sync(&gd);
    assert_eq!(first.create.len(), 300);
    assert_eq!(
        decodes() - before,
        1,
        "300 pods from one revision: one decode"
    );

    let before = (steps(), decodes());
    let plan = plan_with(&gd, &pods, &revs);
    assert!(plan.machines.is_empty() && plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(
        (steps(), decodes()),
        before,
        "300 settled pods: no machine step"
    );

    // A force request on one pod: that pod's machine runs, and only that one.
    pods[7]
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(names::ANNOTATION_FORCE.to_string(), "Abandoned".to_string());
    let before = steps();
    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(steps() - before, 1);
    assert_eq!(plan.machines.len(), 1);
}
