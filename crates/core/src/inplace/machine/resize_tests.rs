//! In-place cpu/memory resize: the no-flip path, the restarting path (resize first, images
//! once it is applied), deferred and infeasible, retarget and rollback mid-resize, and the
//! derivations a restarted operator resumes from.

use super::test_api::{apply, settled_pod, t};
use super::*;
use crate::inplace::observe::{ResizePending, ResizeStatus};
use crate::inplace::record::decode;

fn cpu(request: &str) -> ContainerResources {
    ContainerResources {
        requests: [("cpu".to_string(), request.to_string())].into(),
        limits: BTreeMap::new(),
    }
}

/// One container `app` at revision r1, 500m cpu, applied, on node `n1`.
fn pod() -> PodView {
    let mut p = PodView {
        resource_version: Some("1".into()),
        node_name: Some("n1".into()),
        resize: Some(Box::new(ResizeStatus {
            generation: Some(1),
            observed_generation: Some(1),
            ..Default::default()
        })),
        ..settled_pod()
    };
    p.spec_resources.insert("app".into(), cpu("500m"));
    if let Some(app) = p.containers.get_mut("app") {
        app.resources = Some(cpu("500m"));
    }
    p
}

/// Revision `revision`: image `image`, `request` cpu, restarting on a cpu change if `restart`.
fn target(revision: &str, image: &str, request: &str, restart: bool) -> Target {
    let mut t = Target {
        revision: revision.into(),
        images: [("app".to_string(), image.to_string())].into(),
        resources: [("app".to_string(), cpu(request))].into(),
        ..Default::default()
    };
    if restart {
        t.restart_on_resize
            .insert("app".into(), ["cpu".to_string()].into());
    }
    t
}

fn decide(pod: &PodView, target: &Target, now: Timestamp) -> MachineStep {
    let policy = Policy {
        grace_period_seconds: 10,
        deadline_seconds: Some(600),
        ..Default::default()
    };
    advance(
        &Input {
            pod,
            target,
            policy: &policy,
            hook: None,
            selected: true,
            now,
        },
        &decode(&pod.annotations),
    )
}

/// The kubelet applies the spec's resources (restarting `app` if `restart`).
fn kubelet_applies(pod: &mut PodView, restart: bool) {
    let want = pod.resources_of("app");
    let c = pod.containers.get_mut("app").unwrap();
    c.resources = Some(want);
    if restart {
        c.restart_count += 1;
        c.container_id = Some(format!("c{}", c.restart_count + 1));
    }
    let r = pod.resize.as_mut().unwrap();
    r.observed_generation = r.generation;
    r.pending = None;
    r.in_progress = false;
}

fn pending(pod: &mut PodView, reason: &str) {
    let r = pod.resize.as_mut().unwrap();
    r.observed_generation = r.generation;
    r.pending = Some(ResizePending {
        reason: reason.into(),
        message: "Node didn't have enough capacity: cpu, requested: 64000, capacity: 4000".into(),
    });
}

/// Decides and has the API server take the write.
fn step(pod: &mut PodView, target: &Target, now: Timestamp) {
    let step = decide(pod, target, now);
    apply(pod, &step);
}

fn triggers(step: &MachineStep) -> Vec<Trigger> {
    step.transitions.iter().map(|t| t.trigger).collect()
}

fn warnings(step: &MachineStep) -> Vec<(String, String)> {
    step.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event {
                r#type: EventType::Warning,
                reason,
                message,
            } => Some((reason.clone(), message.clone())),
            _ => None,
        })
        .collect()
}

/// Resize-only, no restart: record, resize, ready — three writes, readiness never flipped,
/// no grace period.
#[test]
fn a_resize_without_restart_costs_three_writes_and_never_flips_readiness() {
    let target = target("r2", "app:1", "1", false);
    let mut p = pod();
    let mut writes = 0;
    let record = decide(&p, &target, t(0));
    assert_eq!(record.state, Some(State::Resizing));
    assert_eq!(triggers(&record), [Trigger::Selected, Trigger::ResizeOnly]);
    let w = record.writes().next().unwrap();
    assert_eq!(w.endpoint, Endpoint::Pod);
    assert_eq!(w.labels[names::LABEL_REVISION], "r2");
    assert!(w.condition.is_none(), "readiness untouched");
    apply(&mut p, &record);
    writes += 1;

    let resize = decide(&p, &target, t(1));
    assert_eq!(resize.state, Some(State::ResizeApplying));
    assert_eq!(triggers(&resize), [Trigger::ResizeRequested]);
    let w = resize.writes().next().unwrap();
    assert_eq!(w.endpoint, Endpoint::PodResize);
    assert_eq!(w.resources["app"]["requests"]["cpu"], "1");
    apply(&mut p, &resize);
    writes += 1;

    let waiting = decide(&p, &target, t(2));
    assert_eq!(waiting.state, Some(State::ResizeApplying));
    assert_eq!(
        waiting.writes().count(),
        0,
        "the kubelet has not applied it yet"
    );

    kubelet_applies(&mut p, false);
    let ready = decide(&p, &target, t(3));
    assert_eq!(ready.state, Some(State::Ready));
    assert_eq!(
        triggers(&ready),
        [Trigger::ResizeRequested, Trigger::Resized]
    );
    let w = ready.writes().next().unwrap();
    assert_eq!(w.endpoint, Endpoint::PodStatus);
    assert!(w.condition.is_none(), "the condition stayed True");
    apply(&mut p, &ready);
    writes += 1;
    assert_eq!(writes, 3);
    assert_eq!(p.in_place_ready, Some(true));
    assert_eq!(decide(&p, &target, t(4)).actions, []);
}

/// After each write a fresh operator resumes from the record and the pod spec alone.
#[test]
fn a_restarted_operator_resumes_a_resize_from_record_and_spec() {
    let target = target("r2", "app:1", "1", false);
    let mut p = pod();
    step(&mut p, &target, t(0));
    let decoded = decode(&p.annotations);
    assert_eq!(observed_state(&p, &decoded, t(1)), Some(State::Resizing));
    step(&mut p, &target, t(1));
    let decoded = decode(&p.annotations);
    assert_eq!(
        observed_state(&p, &decoded, t(2)),
        Some(State::ResizeApplying),
        "derived from the spec: the resize wrote no annotation"
    );
    let again = decide(&p, &target, t(2));
    assert_eq!(again.writes().count(), 0, "the resize is not sent twice");
}

/// Image plus a RestartContainer resize: one grace period, the resize first, the images once
/// it is applied, at most four writes.
#[test]
fn image_and_restarting_resize_resize_first_then_images_in_four_writes() {
    let target = target("r2", "app:2", "1", true);
    let mut p = pod();
    let unready = decide(&p, &target, t(0));
    assert_eq!(unready.state, Some(State::Unready));
    apply(&mut p, &unready);
    assert_eq!(decide(&p, &target, t(5)).writes().count(), 0, "grace");
    let resize = decide(&p, &target, t(10));
    assert_eq!(resize.state, Some(State::ResizeApplying));
    assert_eq!(
        resize.transitions.last().unwrap().trigger,
        Trigger::GraceElapsed
    );
    let w = resize.writes().next().unwrap();
    assert_eq!(w.endpoint, Endpoint::PodResize);
    assert!(
        w.images.is_empty(),
        "images only after the resize is applied"
    );
    apply(&mut p, &resize);
    assert_eq!(decide(&p, &target, t(11)).writes().count(), 0);
    kubelet_applies(&mut p, true);
    let images = decide(&p, &target, t(12));
    assert_eq!(images.state, Some(State::ImagePatched));
    assert_eq!(images.transitions.last().unwrap().trigger, Trigger::Resized);
    assert_eq!(images.writes().next().unwrap().images["app"], "app:2");
    apply(&mut p, &images);
    let c = p.containers.get_mut("app").unwrap();
    c.image = "app:2".into();
    c.container_id = Some("c-new".into());
    c.restart_count += 1;
    let ready = decide(&p, &target, t(13));
    assert_eq!(ready.state, Some(State::Ready));
    apply(&mut p, &ready);
    assert_eq!(p.in_place_ready, Some(true));
    // Unready, resize, images, ready.
    assert_eq!(p.resource_version.as_deref(), Some("5"));
}

/// A RestartContainer resize without an image: unready, grace, resize, then Ready through
/// pods/status with the revision label.
#[test]
fn a_restarting_resize_without_image_ends_through_pods_status() {
    let target = target("r2", "app:1", "1", true);
    let mut p = pod();
    step(&mut p, &target, t(0));
    step(&mut p, &target, t(10));
    kubelet_applies(&mut p, true);
    let ready = decide(&p, &target, t(11));
    assert_eq!(ready.state, Some(State::Ready));
    let w = ready.writes().next().unwrap();
    assert_eq!(w.endpoint, Endpoint::PodStatus);
    assert_eq!(w.labels[names::LABEL_REVISION], "r2");
    assert!(w.condition.as_ref().is_some_and(|c| c.ready));
}

#[test]
fn a_deferred_resize_waits_and_fails_at_the_deadline() {
    let target = target("r2", "app:1", "1", false);
    let mut p = pod();
    step(&mut p, &target, t(0));
    step(&mut p, &target, t(1));
    pending(&mut p, RESIZE_DEFERRED);
    let deferred = decide(&p, &target, t(2));
    assert_eq!(deferred.state, Some(State::ResizeDeferred));
    assert_eq!(deferred.writes().count(), 0);
    assert_eq!(deferred.wake_at, Some(t(600)));
    let failed = decide(&p, &target, t(600));
    assert_eq!(failed.state, Some(State::Failed));
    assert_eq!(
        failed.transitions.last().unwrap().trigger,
        Trigger::DeadlineExceeded
    );
}

/// Infeasible is never a silent wait: one Warning naming pod, container and node; once.
#[test]
fn an_infeasible_resize_is_recorded_once_with_pod_container_and_node() {
    let target = target("r2", "app:1", "64", false);
    let mut p = pod();
    step(&mut p, &target, t(0));
    step(&mut p, &target, t(1));
    pending(&mut p, RESIZE_INFEASIBLE);
    let step = decide(&p, &target, t(2));
    assert_eq!(step.state, Some(State::ResizeInfeasible));
    let events = warnings(&step);
    assert_eq!(events.len(), 1);
    let (reason, message) = &events[0];
    assert_eq!(reason, "ResizeInfeasible");
    for part in ["gd-abcde", "container app", "node n1"] {
        assert!(message.contains(part), "{message} names {part}");
    }
    apply(&mut p, &step);
    let again = decide(&p, &target, t(700));
    assert_eq!(again.actions, [], "no second event, no deadline failure");
    assert_eq!(again.state, Some(State::ResizeInfeasible));
}

/// On the restarting path an infeasible resize gives readiness back: no pod is left unready.
#[test]
fn an_infeasible_restarting_resize_restores_readiness() {
    let target = target("r2", "app:1", "64", true);
    let mut p = pod();
    step(&mut p, &target, t(0));
    assert_eq!(p.in_place_ready, Some(false));
    step(&mut p, &target, t(10));
    pending(&mut p, RESIZE_INFEASIBLE);
    let step = decide(&p, &target, t(11));
    assert_eq!(step.state, Some(State::ResizeInfeasible));
    apply(&mut p, &step);
    assert_eq!(p.in_place_ready, Some(true));
}

/// A rollback while the kubelet applies a no-flip resize resizes back to the old revision.
#[test]
fn a_rollback_mid_resize_resizes_back() {
    let forward = target("r2", "app:1", "1", false);
    let mut p = pod();
    step(&mut p, &forward, t(0));
    step(&mut p, &forward, t(1));
    let back = target("r1", "app:1", "500m", false);
    let step = decide(&p, &back, t(2));
    assert_eq!(
        triggers(&step),
        [
            Trigger::ResizeRequested,
            Trigger::Retargeted,
            Trigger::ResizeOnly
        ]
    );
    assert_eq!(step.state, Some(State::Resizing));
    apply(&mut p, &step);
    assert_eq!(p.revision.as_deref(), Some("r1"));
    let resize = decide(&p, &back, t(3));
    assert_eq!(
        resize.writes().next().unwrap().resources["app"]["requests"]["cpu"],
        "500m"
    );
}

/// A rollback of an infeasible restarting resize (label still r1): the spec is resized back.
#[test]
fn a_rollback_of_an_infeasible_resize_resizes_the_spec_back() {
    let forward = target("r2", "app:1", "64", true);
    let mut p = pod();
    step(&mut p, &forward, t(0));
    step(&mut p, &forward, t(10));
    pending(&mut p, RESIZE_INFEASIBLE);
    step(&mut p, &forward, t(11));
    let own = target("r1", "app:1", "500m", true);
    let step = decide(&p, &own, t(12));
    assert_eq!(step.transitions[0].trigger, Trigger::Retargeted);
    assert_ne!(step.state, Some(State::Ready), "not a readiness restore");
}

/// A new template during a restarting resize: the pod stays unready and is resized again.
#[test]
fn a_new_revision_during_a_restarting_resize_resizes_again() {
    let mut p = pod();
    let first = target("r2", "app:1", "1", true);
    step(&mut p, &first, t(0));
    step(&mut p, &first, t(10));
    let second = target("r3", "app:1", "2", true);
    let step = decide(&p, &second, t(11));
    assert_eq!(
        step.transitions
            .iter()
            .map(|t| (t.to, t.trigger))
            .collect::<Vec<_>>(),
        [
            (State::GracefulWait, Trigger::UnreadyObserved),
            (State::ResizeApplying, Trigger::GraceElapsed),
            (State::GracefulWait, Trigger::Retargeted),
            (State::ResizeApplying, Trigger::GraceElapsed),
        ]
    );
    assert_eq!(
        step.writes().next().unwrap().resources["app"]["requests"]["cpu"],
        "2"
    );
    assert_eq!(p.in_place_ready, Some(false));
}

/// A pod at its target revision whose resources someone else changed (the VPA) is left alone.
#[test]
fn a_pod_at_its_revision_is_not_resized_back() {
    let mut p = pod();
    p.spec_resources.insert("app".into(), cpu("2"));
    let own = target("r1", "app:1", "500m", false);
    assert_eq!(decide(&p, &own, t(0)).actions, []);
}
