//! The plan from the roster's tally (`planner/settled.rs`) is the plan pod by pod.
//! `plan_settled` checks this itself in debug builds whenever the tally answers; these worlds make it answer
//! often, and decline where it must, over strategies, budgets, minReadySeconds, pauses,
//! canary steps, deadlines and statuses written before.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use k8s_openapi::api::apps::v1::ControllerRevision;

use super::tests::{first_sync, plan_with, suffixes};
use super::*;
use crate::api::{CanaryStep, CanaryStrategy, GameDeployment, UpdateStrategyType};
use crate::names;
use crate::planner::model::Tally;
use crate::planner::testing::{now, seed};

/// A GameDeployment drawn from `rng`: the knobs the plan of settled pods reads.
fn spec(rng: &mut fastrand::Rng) -> GameDeployment {
    let mut gd = seed();
    gd.spec.replicas = Some(rng.i32(0..6));
    gd.spec.min_ready_seconds = [None, Some(0), Some(30), Some(3600)][rng.usize(..4)];
    gd.spec.progress_deadline_seconds = [None, Some(60)][rng.usize(..2)];
    let strategy = gd.spec.update_strategy.get_or_insert_default();
    strategy.type_ = Some(
        [
            UpdateStrategyType::InplaceUpdate,
            UpdateStrategyType::RollingUpdate,
            UpdateStrategyType::HotPatchUpdate,
            UpdateStrategyType::OnDelete,
        ][rng.usize(..4)]
        .clone(),
    );
    strategy.paused = rng.u8(..4) == 0;
    strategy.partition = rng.bool().then(|| IntOrString::Int(rng.i32(0..6)));
    if rng.u8(..3) == 0 {
        strategy.canary = Some(CanaryStrategy {
            steps: vec![CanaryStep {
                partition: Some(IntOrString::Int(1)),
                ..Default::default()
            }],
        });
    }
    gd
}

/// One change of the kind a watch brings, to one of `pods`, or none.
fn disturb(rng: &mut fastrand::Rng, gd: &mut GameDeployment, pods: &mut Vec<Pod>) {
    let i = rng.usize(..pods.len().max(1));
    let Some(pod) = pods.get_mut(i) else {
        return;
    };
    let annotations = pod.metadata.annotations.get_or_insert_default();
    let conditions = (pod.status.as_mut()).and_then(|s| s.conditions.as_mut());
    match rng.u8(..8) {
        0 => {
            pods.remove(i);
        }
        1 => {
            let force = names::ANNOTATION_FORCE.to_string();
            annotations.insert(force, "Pending".into());
        }
        2 => {
            let c = conditions.and_then(|c| c.iter_mut().find(|c| c.type_ == "Ready"));
            c.into_iter().for_each(|c| c.status = "False".into());
        }
        3 => {
            let template = &mut gd.spec.template;
            let containers = template.spec.as_mut().map(|s| &mut s.containers);
            containers
                .into_iter()
                .flatten()
                .for_each(|c| c.image = Some("python:3.12".into()));
        }
        4 => {
            // Irrelevant to the plan: what the bench's touch does.
            annotations.insert("bench/touched".into(), rng.u32(..).to_string());
        }
        _ => {}
    }
}

fn new_image(gd: &mut GameDeployment) {
    let containers = gd.spec.template.spec.as_mut().map(|s| &mut s.containers);
    (containers.into_iter().flatten()).for_each(|c| c.image = Some("python:3.12".into()));
}

/// A rollout stopped where it stands: a new template, and the first `moved` pods on its
/// revision (labelled as an update leaves them).
fn rolled(
    gd: &mut GameDeployment,
    pods: &mut [Pod],
    revisions: &mut Vec<ControllerRevision>,
    moved: usize,
) {
    new_image(gd);
    let decided = plan_with(gd, pods, revisions);
    let Some(new) = decided.revisions.and_then(|r| r.create) else {
        return;
    };
    let name = new.metadata.name.clone().unwrap_or_default();
    revisions.push(new);
    for pod in pods.iter_mut().take(moved) {
        let labels = pod.metadata.labels.get_or_insert_default();
        labels.insert(names::LABEL_REVISION.into(), name.clone());
    }
}

#[test]
fn the_plan_from_the_tally_is_the_plan_pod_by_pod() {
    let (mut answered, mut declined, mut partitioned) = (0, 0, 0);
    for seed in 0..1000 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut gd = spec(&mut rng);
        let (first, mut pods, mut revisions) = first_sync(&gd);
        // The status as the first sync wrote it, or as the world settled since.
        if rng.bool() {
            gd.status = Some(first.status.clone());
        }
        if rng.bool() {
            let moved = rng.usize(..=pods.len());
            rolled(&mut gd, &mut pods, &mut revisions, moved);
            // Mostly a rollout the partition stopped there.
            if rng.u8(..3) > 0 {
                let kept = IntOrString::Int((pods.len() - moved) as i32);
                gd.spec.update_strategy.get_or_insert_default().partition = Some(kept);
            }
        }
        disturb(&mut rng, &mut gd, &mut pods);
        let cached: Vec<Arc<CachedPod>> = pods.into_iter().map(|p| Arc::new(p.into())).collect();
        let mut tally = Tally::default();
        for pod in &cached {
            tally.count(pod, 1);
        }
        let Some(settled) = tally.settled() else {
            declined += 1;
            continue;
        };
        // Each round plans at a later time, from the status the round before wrote.
        for at in [0, 1_000, 4_000] {
            let world = PlanInput {
                pods: &cached,
                revisions: &revisions,
                now: now() + jiff::SignedDuration::from_secs(at),
                ..PlanInput::for_test(&gd)
            };
            let Some(from_tally) = plan_settled(&world, &settled) else {
                declined += 1;
                continue;
            };
            answered += 1;
            partitioned += usize::from(settled.revisions.len() > 1);
            // Debug builds compare the two in `plan_settled`; spelled out here too, so the
            // test checks it in any build.
            assert_eq!(
                from_tally,
                plan(&world, &mut suffixes()),
                "seed {seed}, {at} s later"
            );
            if let Some(status) = from_tally.status() {
                gd.status = Some(status.clone());
            }
        }
    }
    let seen =
        format!("{answered} answered ({partitioned} over two revisions), {declined} declined");
    eprintln!("{seen}");
    assert!(
        answered > 800 && declined > 800 && partitioned > 50,
        "{seen}"
    );
}
