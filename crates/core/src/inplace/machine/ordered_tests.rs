//! `inPlaceUpdateStrategy.policy`: changed containers patched one at a time, in pod-spec order,
//! and resumed from the record after an operator restart.

use super::test_api::{apply, t};
use super::*;
use crate::inplace::observe::ContainerView;
use crate::inplace::record::decode;

/// Spec order is `game`, then `agent` (not alphabetical), both at version 1.
fn pod() -> PodView {
    let mut p = PodView {
        name: "gd-abcde".into(),
        resource_version: Some("1".into()),
        revision: Some("r1".into()),
        in_place_ready: Some(true),
        ..Default::default()
    };
    for name in ["game", "agent"] {
        p.spec_images.insert(name.into(), format!("{name}:1"));
        p.containers.insert(
            name.into(),
            ContainerView {
                image: format!("{name}:1"),
                container_id: Some(format!("{name}-1")),
                running: true,
                ready: true,
                ..Default::default()
            },
        );
    }
    p
}

fn target() -> Target {
    Target {
        revision: "r2".into(),
        images: [
            ("game".to_string(), "game:2".to_string()),
            ("agent".to_string(), "agent:2".to_string()),
        ]
        .into(),
        container_order: vec!["game".into(), "agent".into()],
        ..Default::default()
    }
}

fn decide(pod: &PodView, update_policy: InPlaceUpdatePolicy, now: Timestamp) -> MachineStep {
    let policy = Policy {
        update_policy,
        ..Default::default()
    };
    decide_with(pod, &policy, now)
}

/// One step of `pod`'s machine towards [`target`] under `policy`, selected, at `now`.
fn decide_with(pod: &PodView, policy: &Policy, now: Timestamp) -> MachineStep {
    advance(
        &Input {
            pod,
            target: &target(),
            policy,
            hook: None,
            selected: true,
            now,
        },
        &decode(&pod.annotations),
    )
}

/// Kubelet runs a new instance of `name` on its spec image.
fn restarted(pod: &mut PodView, name: &str, ready: bool) {
    let image = pod.spec_images.get(name).unwrap().clone();
    let c = pod.containers.get_mut(name).unwrap();
    c.container_id = Some(format!("{image}-new"));
    c.image = image;
    c.restart_count += 1;
    c.ready = ready;
}

/// Takes the pod through unready and grace 0 to its first image patch.
fn first_patch(policy: InPlaceUpdatePolicy) -> (PodView, MachineStep) {
    let mut p = pod();
    let unready = decide(&p, policy, t(0));
    assert_eq!(unready.state, Some(State::Unready));
    apply(&mut p, &unready);
    let patch = decide(&p, policy, t(1));
    assert_eq!(patch.state, Some(State::ImagePatched));
    (p, patch)
}

fn patched_images(step: &MachineStep) -> Vec<(String, String)> {
    let w = step.writes().next().expect("a write");
    w.images
        .iter()
        .map(|(n, i)| (n.clone(), i.clone()))
        .collect()
}

fn image(name: &str, image: &str) -> (String, String) {
    (name.to_string(), image.to_string())
}

#[test]
fn ordered_ready_writes_the_second_image_only_after_the_first_is_ready() {
    let policy = InPlaceUpdatePolicy::OrderedReady;
    let (mut p, patch) = first_patch(policy);
    assert_eq!(patched_images(&patch), vec![image("game", "game:2")]);
    apply(&mut p, &patch);

    let untouched = decide(&p, policy, t(2));
    assert_eq!(untouched.writes().count(), 0);
    restarted(&mut p, "game", false);
    let starting = decide(&p, policy, t(3));
    assert_eq!(starting.state, Some(State::Restarting));
    assert_eq!(starting.writes().count(), 0, "not before game is ready");

    p.containers.get_mut("game").unwrap().ready = true;
    let next = decide(&p, policy, t(4));
    let taken: Vec<Trigger> = next.transitions.iter().map(|t| t.trigger).collect();
    assert_eq!(
        taken,
        vec![
            Trigger::RestartObserved,
            Trigger::ContainerProgressed,
            Trigger::NextContainer
        ]
    );
    assert_eq!(next.state, Some(State::ImagePatched));
    assert_eq!(patched_images(&next), vec![image("agent", "agent:2")]);
    let record = next.writes().next().unwrap().checkpoint.clone().unwrap();
    assert_eq!(
        record.images.len(),
        2,
        "the record lists both patched containers"
    );
    assert_eq!(
        record
            .containers
            .get("game")
            .unwrap()
            .container_id
            .as_deref(),
        Some("game-1"),
        "game is still judged against its instance from before its own patch"
    );
    apply(&mut p, &next);

    restarted(&mut p, "agent", true);
    let done = decide(&p, policy, t(5));
    assert_eq!(done.state, Some(State::Ready));
    assert_eq!(
        done.transitions.last().map(|t| t.trigger),
        Some(Trigger::Completed)
    );
    assert!(done.writes().all(|w| w.images.is_empty()));
}

#[test]
fn ordered_updated_moves_on_once_the_first_runs_its_new_image() {
    let policy = InPlaceUpdatePolicy::OrderedUpdated;
    let (mut p, patch) = first_patch(policy);
    assert_eq!(patched_images(&patch), vec![image("game", "game:2")]);
    apply(&mut p, &patch);
    // A new instance of the new image that has not started yet is not "running it".
    let mut creating = p.clone();
    restarted(&mut creating, "game", false);
    let c = creating.containers.get_mut("game").unwrap();
    c.running = false;
    c.waiting_reason = Some("ContainerCreating".into());
    assert_eq!(decide(&creating, policy, t(2)).writes().count(), 0);

    restarted(&mut p, "game", false);
    let next = decide(&p, policy, t(3));
    assert_eq!(patched_images(&next), vec![image("agent", "agent:2")]);
    apply(&mut p, &next);
    restarted(&mut p, "agent", true);
    let waiting = decide(&p, policy, t(4));
    assert_eq!(waiting.state, Some(State::Restarting));
    assert_eq!(waiting.writes().count(), 0, "Ready needs game ready too");
    p.containers.get_mut("game").unwrap().ready = true;
    assert_eq!(decide(&p, policy, t(5)).state, Some(State::Ready));
}

/// The machine keeps nothing between calls: a restarted operator decodes the pod's record and
/// advances from it. Between containers it patches the second, never the first again; after
/// the second patch it patches nothing.
#[test]
fn a_restart_between_containers_resumes_with_the_next_one() {
    let policy = InPlaceUpdatePolicy::OrderedReady;
    let (mut p, patch) = first_patch(policy);
    apply(&mut p, &patch);
    restarted(&mut p, "game", true);
    let Decoded::Valid(record) = decode(&p.annotations) else {
        panic!("the checkpoint decodes");
    };
    assert_eq!(record.state, State::ImagePatched);
    assert_eq!(record.images.keys().collect::<Vec<_>>(), vec!["game"]);

    // Crash before the next write lands: the pod still shows only the first checkpoint, so
    // the restarted operator decides the second container's patch.
    let next = decide(&p, policy, t(10));
    assert_eq!(patched_images(&next), vec![image("agent", "agent:2")]);
    // Crash after it lands: nothing is patched twice, and completion follows.
    apply(&mut p, &next);
    let resumed = decide(&p, policy, t(12));
    assert_eq!(resumed.state, Some(State::Restarting));
    assert_eq!(resumed.writes().count(), 0);
    restarted(&mut p, "agent", true);
    assert_eq!(decide(&p, policy, t(13)).state, Some(State::Ready));
}

#[test]
fn disordered_patches_every_changed_container_at_once() {
    let (_, patch) = first_patch(InPlaceUpdatePolicy::DisOrdered);
    assert_eq!(
        patched_images(&patch),
        vec![image("agent", "agent:2"), image("game", "game:2")]
    );
    // The default policy adds nothing to a serialized Policy (fixtures, snapshots).
    let json = serde_json::to_string(&Policy::default()).unwrap();
    assert!(!json.contains("updatePolicy"), "{json}");
}

/// Past the deadline the next container is not patched: the pod fails instead.
#[test]
fn the_deadline_stops_an_ordered_update_between_containers() {
    let policy = Policy {
        update_policy: InPlaceUpdatePolicy::OrderedReady,
        deadline_seconds: Some(60),
        ..Default::default()
    };
    let run = |pod: &PodView, now| decide_with(pod, &policy, now);
    let mut p = pod();
    let unready = run(&p, t(0));
    apply(&mut p, &unready);
    let patch = run(&p, t(1));
    apply(&mut p, &patch);
    restarted(&mut p, "game", true);
    let late = run(&p, t(61));
    assert_eq!(late.state, Some(State::Failed));
    assert!(late.writes().all(|w| w.images.is_empty()));
}
