use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::*;
use crate::api::{GameDeployment, UpdateStrategyType};
use crate::inplace::{Action, Endpoint, State};
use crate::names;
use crate::planner::model::{DeleteReason, Effect};
use crate::planner::testing::{now, seed};

/// The decisions for `world`; for a refused spec, the refusal's events and status.
pub(super) fn decided(world: &PlanInput) -> Decisions {
    match decide(world, &mut suffixes()) {
        Ok((d, _)) => d,
        Err(plan) => Decisions {
            status: plan.status().cloned().unwrap(),
            notes: plan
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Event { note, .. } => Some(note.clone()),
                    _ => None,
                })
                .collect(),
            ..Decisions::default()
        },
    }
}

#[test]
fn a_first_sync_creates_the_revision_then_pods_in_slow_start_batches_then_the_status() {
    let plan = plan(&PlanInput::for_test(&seed()), &mut suffixes());
    let kinds: Vec<String> = plan
        .effects
        .iter()
        .map(|e| match e {
            Effect::CreateRevision(_) => "revision".to_string(),
            Effect::CreatePod { batch, .. } => format!("pod{batch}"),
            Effect::WriteStatus(_) => "status".to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "revision", "pod0", "pod1", "pod1", "pod2", "pod2", "pod2", "pod2", "pod3", "status"
        ]
    );
}

pub(super) fn suffixes() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("p{n:04}")
    }
}

/// Runs a plan and returns it with the pods it created made Running and Ready.
pub(super) fn first_sync(gd: &GameDeployment) -> (Decisions, Vec<Pod>, Vec<ControllerRevision>) {
    let plan = decided(&PlanInput::for_test(gd));
    let pods = plan.create.iter().cloned().map(running).collect();
    let revs = plan
        .revisions
        .as_ref()
        .and_then(|r| r.create.clone())
        .into_iter()
        .collect();
    (plan, pods, revs)
}

pub(super) fn running(mut pod: Pod) -> Pod {
    let images: Vec<(String, String)> = pod
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect();
    pod.spec.as_mut().unwrap().node_name = Some("node-1".into());
    pod.status = Some(
        serde_json::from_value(serde_json::json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "InPlaceUpdateReady", "status": "True"}
            ],
            "containerStatuses": images.iter().map(|(n, i)| serde_json::json!({
                "name": n, "image": i, "imageID": format!("sha256:{i}"), "containerID": format!("c-{n}-1"),
                "restartCount": 0, "ready": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
            })).collect::<Vec<_>>()
        }))
        .unwrap(),
    );
    pod
}

pub(super) fn plan_with(
    gd: &GameDeployment,
    pods: &[Pod],
    revs: &[ControllerRevision],
) -> Decisions {
    let pods: Vec<Arc<CachedPod>> = pods.iter().cloned().map(|p| Arc::new(p.into())).collect();
    decided(&PlanInput {
        pods: &pods,
        revisions: revs,
        ..PlanInput::for_test(gd)
    })
}

#[test]
fn a_new_game_deployment_gets_a_revision_and_eight_pods() {
    let (plan, pods, revs) = first_sync(&seed());
    assert_eq!(revs.len(), 1);
    assert_eq!(pods.len(), 8);
    let names: BTreeSet<_> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert!(names.iter().all(|n| n.starts_with("test-gamedeployment-")));
    assert_eq!(
        plan.status.update_revision,
        revs[0].metadata.name.clone().unwrap()
    );
    assert!(plan.machines.is_empty() && plan.delete.is_empty());
}

#[test]
fn an_image_change_starts_two_in_place_updates_and_nothing_else() {
    let (_, pods, revs) = first_sync(&seed());
    let mut gd = seed();
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert!(
        plan.create.is_empty() && plan.delete.is_empty(),
        "in place: no pod created or deleted"
    );
    assert!(
        plan.revisions.as_ref().unwrap().create.is_some(),
        "a second revision"
    );
    let started: Vec<&String> = plan
        .machines
        .iter()
        .filter(|(_, o)| o.state == Some(State::Unready))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(started.len(), 2, "maxUnavailable 20% of 8 rounds up to 2");
    for (_, o) in &plan.machines {
        let w = o.writes().next().unwrap();
        assert_eq!(w.endpoint, Endpoint::PodStatus);
        assert_eq!(
            w.checkpoint.as_ref().unwrap().revision,
            plan.status.update_revision
        );
    }
}

#[test]
fn a_change_that_cannot_be_applied_in_place_recreates_the_pod() {
    let (_, pods, revs) = first_sync(&seed());
    let mut gd = seed();
    let c = &mut gd.spec.template.spec.as_mut().unwrap().containers[0];
    c.image = Some("python:latest".into());
    c.args = Some(vec!["--bind".into(), "0.0.0.0".into()]);
    let plan = plan_with(&gd, &pods, &revs);
    let recreated: Vec<&DeleteReason> = plan.delete.iter().map(|(_, r)| r).collect();
    assert_eq!(recreated.len(), 2);
    assert!(
        matches!(recreated[0], DeleteReason::Recreate(why) if why.contains("spec.containers[0].args"))
    );
    assert!(plan.machines.is_empty());
}

#[test]
fn a_pod_whose_revision_is_gone_is_recreated_not_stuck() {
    // The original failed the in-place update for ever once the pod's old revision had
    // been pruned; without it there is nothing to diff, so the pod is recreated.
    let (_, pods, _) = first_sync(&seed());
    let mut gd = seed();
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &[]);
    assert_eq!(plan.delete.len(), 2);
    assert!(
        plan.delete.iter().all(
            |(_, r)| matches!(r, DeleteReason::Recreate(why) if why.contains("no longer stored"))
        ),
        "{:?}",
        plan.delete
    );
    assert!(plan.machines.is_empty());
}

#[test]
fn rolling_update_deletes_within_the_budget() {
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::RollingUpdate);
    let (_, pods, revs) = first_sync(&gd);
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(plan.delete.len(), 2);
    assert!(
        plan.delete
            .iter()
            .all(|(_, r)| *r == DeleteReason::Recreate("RollingUpdate".into()))
    );
}

#[test]
fn hot_patch_writes_images_without_a_readiness_flip() {
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::HotPatchUpdate);
    let (_, pods, revs) = first_sync(&gd);
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(plan.hot_patches.len(), 2);
    let (_, w) = &plan.hot_patches[0];
    assert_eq!(w.images["python"], "python:latest");
    assert!(w.condition.is_none());
    assert_eq!(
        w.annotations[names::ANNOTATION_HOTPATCH_CONTAINER].as_deref(),
        Some("true")
    );
}

#[test]
fn hot_patch_records_only_the_changed_containers_like_the_original() {
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().type_ = Some(UpdateStrategyType::HotPatchUpdate);
    let containers = &mut gd.spec.template.spec.as_mut().unwrap().containers;
    let mut sidecar = containers[0].clone();
    sidecar.name = "sidecar".into();
    sidecar.image = Some("busybox:1".into());
    containers.push(sidecar);
    let (_, mut pods, revs) = first_sync(&gd);
    // A marker a pod already carries is kept, as the original only adds a missing one.
    for pod in &mut pods {
        pod.metadata
            .annotations
            .get_or_insert_default()
            .insert(names::ANNOTATION_HOTPATCH_CONTAINER.into(), "python".into());
    }
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(plan.hot_patches.len(), 2);
    for (_, w) in &plan.hot_patches {
        assert_eq!(w.images.keys().collect::<Vec<_>>(), ["python"]);
        let state: Value = serde_json::from_str(
            w.annotations[names::ANNOTATION_HOTPATCH_STATE]
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        let last = state["lastContainerStatuses"].as_object().unwrap();
        assert_eq!(last.keys().collect::<Vec<_>>(), ["python"], "{state}");
        assert_eq!(last["python"]["imageID"], "sha256:python:3.9");
        assert_eq!(
            w.annotations.get(names::ANNOTATION_HOTPATCH_CONTAINER),
            None,
            "marker overwritten"
        );
    }
}

#[test]
fn a_selector_that_misses_the_template_touches_nothing() {
    let (_, pods, revs) = first_sync(&seed());
    let mut gd = seed();
    gd.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert!(plan.create.is_empty() && plan.delete.is_empty() && plan.machines.is_empty());
    let c = plan
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_SCALE)
        .unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(c.message.contains("app=other"), "{}", c.message);
    assert!(plan.notes[0].warning);
}

/// An object whose spec does not decode: one Warning event and a status over the pods it
/// controls, with the field to fix; nothing else.
#[test]
fn an_undecodable_spec_is_reported_over_the_pods_it_owns_and_touches_none() {
    let (first, pods, _) = first_sync(&seed());
    let mut text = serde_json::to_value(seed()).unwrap();
    text["spec"]["replicas"] = serde_json::json!(1_099_511_627_776_i64);
    text["status"] = serde_json::to_value(&first.status).unwrap();
    let crate::api::StoredGameDeployment::Undecodable(u) =
        crate::api::StoredGameDeployment::from_json(&text.to_string()).unwrap()
    else {
        panic!("decoded")
    };
    let pods: Vec<Arc<CachedPod>> = pods.into_iter().map(|p| Arc::new(p.into())).collect();
    let plan = plan_undecodable(&u, &pods, now());
    let [
        Effect::Event { note, chain: None },
        Effect::WriteStatus(status),
    ] = plan.effects.as_slice()
    else {
        panic!("{:?}", plan.effects)
    };
    assert!(note.warning);
    assert_eq!(note.reason, names::EVENT_INVALID_SPEC);
    assert_eq!(note.message, u.reason);
    assert!(
        note.message.starts_with("cannot read spec.replicas: "),
        "{}",
        note.message
    );
    assert_eq!(status.replicas, 8);
    assert_eq!(status.label_selector, first.status.label_selector);
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_SCALE)
        .unwrap();
    assert_eq!(
        (c.reason.as_str(), c.message.as_str()),
        ("InvalidSpec", note.message.as_str())
    );
    assert_eq!(plan.requeue_at, None);
}

#[test]
fn pods_no_update_holds_get_their_readiness_gate_released_once() {
    let (_, mut pods, revs) = first_sync(&seed());
    for p in pods.iter_mut() {
        let conditions = p.status.as_mut().unwrap().conditions.as_mut().unwrap();
        conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
    }
    // One pod's update failed: its gate stays closed.
    let failed = crate::inplace::Record {
        state: State::Failed,
        ..crate::inplace::Record::start("r0", now())
    };
    pods[0].metadata.annotations = Some(
        [(
            names::ANNOTATION_STATE.to_string(),
            crate::inplace::encode(&failed),
        )]
        .into(),
    );
    let plan = plan_with(&seed(), &pods, &revs);
    assert_eq!(plan.release_gates.len(), 7);
    let (_, w) = &plan.release_gates[0];
    assert_eq!(w.endpoint, Endpoint::PodStatus);
    assert!(w.condition.as_ref().unwrap().ready);
    assert!(w.checkpoint.is_none());
    assert!(
        !plan
            .release_gates
            .iter()
            .any(|(n, _)| Some(n) == pods[0].metadata.name.as_ref())
    );
}

/// An adopted pod carries the selector's labels but no revision label: it is an old pod,
/// deleted first on scale-down and replaced (no stored template to update it in place from).
#[test]
fn an_adopted_pod_without_a_revision_is_old_and_gets_replaced() {
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().partition = Some(IntOrString::Int(0));
    let (_, mut pods, revs) = first_sync(&gd);
    let mut adopted = pods[0].clone();
    adopted.metadata.name = Some("adopted".into());
    let labels = adopted.metadata.labels.as_mut().unwrap();
    labels.remove(names::LABEL_REVISION);
    labels.remove(names::LABEL_POD_INSTANCE_ID);
    pods.push(adopted);

    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(plan.delete, [("adopted".into(), DeleteReason::ScaleDown)]);
    assert_eq!(plan.status.replicas, 9);
    assert_eq!(plan.status.updated_replicas, 8);

    pods.remove(1);
    let plan = plan_with(&gd, &pods, &revs);
    assert!(plan.create.is_empty());
    match plan.delete.as_slice() {
        [(name, DeleteReason::Recreate(why))] => {
            assert_eq!(name, "adopted");
            assert!(why.contains("no controller-revision-hash"), "{why}");
        }
        other => panic!("expected the adopted pod recreated, got {other:?}"),
    }
    assert_eq!(plan.status.updated_replicas, 7);
    assert!(plan.release_gates.iter().all(|(n, _)| n != "adopted"));
}

#[test]
fn pause_stops_new_updates() {
    let (_, pods, revs) = first_sync(&seed());
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().paused = true;
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert!(
        plan.machines
            .iter()
            .all(|(_, o)| !o.actions.iter().any(|a| matches!(a, Action::WritePod(_))))
    );
    assert!(plan.status.conditions.iter().any(|c| c.reason == "Paused"));
}

#[test]
fn a_match_expressions_selector_works_and_is_published_for_the_scale_subresource() {
    let mut gd = seed();
    gd.spec.selector = serde_json::from_value(serde_json::json!({"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["test-gamedeployment"]}]}))
    .unwrap();
    let (plan, _, _) = first_sync(&gd);
    assert_eq!(plan.create.len(), 8);
    assert_eq!(plan.status.label_selector, "app in (test-gamedeployment)");
    gd.spec.selector = serde_json::from_value(serde_json::json!({"matchExpressions": [
        {"key": "app", "operator": "NotIn", "values": ["test-gamedeployment"]}]}))
    .unwrap();
    let (plan, _, _) = first_sync(&gd);
    assert!(
        plan.create.is_empty(),
        "a selector that misses the template creates nothing"
    );
    assert!(
        plan.notes[0]
            .message
            .contains("requires app notin (test-gamedeployment)")
    );
}

#[test]
fn canary_steps_replace_the_partition_and_their_position_is_in_the_status() {
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().canary = Some(
        serde_json::from_value(serde_json::json!({"steps": [{"partition": 7}, {"pause": {}}]}))
            .unwrap(),
    );
    let (first, pods, revs) = first_sync(&gd);
    assert_eq!(
        first.status.current_step_index,
        Some(2),
        "creation skips the steps"
    );
    gd.status = Some(first.status);
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    let started = plan
        .machines
        .iter()
        .filter(|(_, o)| o.state == Some(State::Unready))
        .count();
    assert_eq!(
        started, 1,
        "partition 7 of the first step, not the spec's 3"
    );
    assert_eq!(plan.status.current_step_index, Some(0));
    assert!(plan.notes.iter().any(|n| n.reason == "SetStepIndex"));
    assert!(!plan.notes.iter().any(|n| n.warning), "{:?}", plan.notes);
}

#[test]
fn a_pause_still_releases_readiness_gates() {
    // The original (and OpenKruise #892) skipped the readiness refresh while paused, so
    // pods created during a pause never became Ready.
    let (_, mut pods, revs) = first_sync(&seed());
    for p in pods.iter_mut() {
        let conditions = p.status.as_mut().unwrap().conditions.as_mut().unwrap();
        conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
    }
    let mut gd = seed();
    gd.spec.update_strategy.as_mut().unwrap().paused = true;
    let plan = plan_with(&gd, &pods, &revs);
    assert_eq!(plan.release_gates.len(), 8);
}

/// OnDelete: a new template starts no update (no machine, recreate or hot patch), even with a
/// partition and surge that would let one through; a pod that is gone comes back from the
/// update revision, and `currentRevision` stays the revision the untouched pods run.
#[test]
fn on_delete_touches_no_pod_and_recreates_a_missing_one_from_the_update_revision() {
    let mut gd = seed();
    let (_, pods, mut revs) = first_sync(&gd);
    let old = revs[0].metadata.name.clone().unwrap();
    let strategy = gd.spec.update_strategy.as_mut().unwrap();
    strategy.type_ = Some(UpdateStrategyType::OnDelete);
    strategy.max_surge = Some(IntOrString::Int(2));
    gd.spec.template.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
    let plan = plan_with(&gd, &pods, &revs);
    assert!(plan.delete.is_empty() && plan.create.is_empty() && plan.hot_patches.is_empty());
    assert!(
        plan.machines
            .iter()
            .all(|(_, m)| m.writes().next().is_none()),
        "{:?}",
        plan.machines
    );
    assert_eq!(plan.status.current_revision, old);
    revs.extend(plan.revisions.and_then(|r| r.create));
    let update = plan.status.update_revision.clone();
    assert_ne!(update, old);
    let plan = plan_with(&gd, &pods[1..], &revs);
    assert_eq!(plan.create.len(), 1);
    let labels = plan.create[0].metadata.labels.as_ref().unwrap();
    assert_eq!(labels[names::LABEL_REVISION], update);
    assert!(plan.delete.is_empty());
}

#[test]
fn disable_readiness_gate_creates_pods_without_the_gate() {
    let mut gd = seed();
    let (_, pods, _) = first_sync(&gd);
    assert!(
        pods.iter()
            .all(|p| p.spec.as_ref().unwrap().readiness_gates.is_some())
    );
    gd.spec.disable_readiness_gate = true;
    let (_, pods, _) = first_sync(&gd);
    assert_eq!(pods.len(), 8);
    assert!(
        pods.iter()
            .all(|p| p.spec.as_ref().unwrap().readiness_gates.is_none())
    );
}

/// createBatch 3 of the seed's 8: the first sync creates three pods, not eight.
#[test]
fn create_batch_bounds_the_first_wave() {
    let mut gd = seed();
    gd.spec.scale_strategy = Some(crate::api::ScaleStrategy {
        create_batch: Some(IntOrString::String("30%".into())),
        ..Default::default()
    });
    let (plan, _, _) = first_sync(&gd);
    assert_eq!(plan.create.len(), 3, "30% of 8 rounds up to 3");
}

#[test]
fn a_new_revision_keeps_the_change_cause_of_the_template_change() {
    let mut gd = seed();
    gd.metadata.annotations = Some(
        [(
            names::ANNOTATION_CHANGE_CAUSE.to_string(),
            "kubectl set image python=python:latest".to_string(),
        )]
        .into(),
    );
    let p = plan(&PlanInput::for_test(&gd), &mut suffixes());
    let causes: Vec<Option<&String>> = p
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::CreateRevision(r) => Some(
                r.object
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(names::ANNOTATION_CHANGE_CAUSE)),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        causes,
        [Some(&"kubectl set image python=python:latest".to_string())]
    );
}
