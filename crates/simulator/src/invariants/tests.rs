use super::*;

fn params() -> Params {
    Params {
        max_unavailable: 2,
        replicas: 4,
        partition: 2,
        grace_seconds: 30.0,
        update_revision: "gd-2".into(),
        operator: "operator".into(),
    }
}

/// A settled pod on revision gd-1.
fn entry(t: f64, pod: &str) -> HistoryEntry {
    HistoryEntry {
        t,
        pod: pod.into(),
        client: "kubelet".into(),
        uid: format!("uid-{pod}"),
        revision: Some("gd-1".into()),
        ready: true,
        in_place_update_ready: Some(true),
        images: BTreeMap::from([
            ("app".to_string(), "python:3.9".to_string()),
            ("side".to_string(), "envoy:1".to_string()),
        ]),
        restart_counts: BTreeMap::from([("app".to_string(), 0), ("side".to_string(), 0)]),
        resources: BTreeMap::from([("app".to_string(), resources("500m", &["memory"]))]),
        terminating: false,
        deleted: false,
    }
}

/// The history of one good in-place update of `pod` starting at `t0`: unready, images
/// patched after `wait` seconds, restart, ready again.
fn update(pod: &str, t0: f64, wait: f64) -> Vec<HistoryEntry> {
    let mut h = vec![entry(0.0, pod)];
    let mut e = entry(t0, pod);
    e.client = "operator".into();
    e.in_place_update_ready = Some(false);
    h.push(e.clone());
    e.client = "kubelet".into();
    e.ready = false;
    e.t = t0 + 0.5;
    h.push(e.clone());
    e.client = "operator".into();
    e.t = t0 + wait;
    e.images.insert("app".into(), "python:latest".into());
    e.revision = Some("gd-2".into());
    h.push(e.clone());
    e.client = "kubelet".into();
    e.t = t0 + wait + 2.0;
    e.restart_counts.insert("app".into(), 1);
    h.push(e.clone());
    e.client = "operator".into();
    e.t = t0 + wait + 3.0;
    e.in_place_update_ready = Some(true);
    h.push(e.clone());
    e.client = "kubelet".into();
    e.ready = true;
    h.push(e);
    h
}

fn kinds(v: &[Violation]) -> Vec<Invariant> {
    v.iter().map(|v| v.invariant).collect()
}

#[test]
fn a_correct_rolling_in_place_update_has_no_violations() {
    let mut h = update("a", 10.0, 30.0);
    h.extend(update("b", 10.0, 31.0));
    h.push(entry(0.0, "c"));
    h.push(entry(0.0, "d"));
    assert_eq!(check(&h, &params()), vec![]);
}

#[test]
fn too_many_unavailable_pods_are_caught_once_per_episode() {
    let mut h = update("a", 10.0, 30.0);
    h.extend(update("b", 10.0, 30.0));
    h.extend(update("c", 20.0, 30.0));
    let v = check(&h, &params());
    assert_eq!(
        kinds(&v),
        vec![Invariant::MaxUnavailable, Invariant::Partition]
    );
    assert_eq!(v[0].t, 20.0);
    assert!(
        v[0].message.starts_with(
            "3 pods unavailable because of the operator, maxUnavailable is 2: a, b, c"
        ),
        "{}",
        v[0].message
    );
    assert_eq!(v[1].t, 50.0);
    assert!(
        v[1].message
            .contains("3 pods on revision gd-2 but replicas 4 - partition 2 allows 2")
    );
}

#[test]
fn pods_deleted_by_the_operator_count_as_unavailable_but_not_when_a_user_deletes_them() {
    let mut h: Vec<HistoryEntry> = ["a", "b", "c"].iter().map(|p| entry(0.0, p)).collect();
    for p in ["a", "b", "c"] {
        let mut e = entry(5.0, p);
        e.client = "scenario".into();
        e.terminating = true;
        h.push(e);
    }
    assert_eq!(check(&h, &params()), vec![]);
    for e in h.iter_mut().filter(|e| e.terminating) {
        e.client = "operator".into();
    }
    assert_eq!(
        kinds(&check(&h, &params())),
        vec![Invariant::MaxUnavailable]
    );
}

#[test]
fn images_patched_before_the_grace_period_are_caught() {
    let v = check(&update("a", 10.0, 29.0), &params());
    assert_eq!(kinds(&v), vec![Invariant::GracePeriod]);
    assert_eq!((v[0].t, v[0].pod.as_deref()), (39.0, Some("a")));
    assert_eq!(
        v[0].message,
        "images patched after 29s unready, gracePeriodSeconds is 30"
    );
    // Without ever being marked unready.
    let mut h = vec![entry(0.0, "a")];
    let mut e = entry(5.0, "a");
    e.client = "operator".into();
    e.images.insert("app".into(), "python:latest".into());
    h.push(e);
    let v = check(&h, &params());
    assert_eq!(kinds(&v), vec![Invariant::GracePeriod]);
    assert!(v[0].message.contains("not marked unready"));
    // A user patching a pod directly is not the operator's doing, and grace 0 needs no wait.
    h[1].client = "scenario".into();
    assert_eq!(check(&h, &params()), vec![]);
    h[1].client = "operator".into();
    let no_grace = Params {
        grace_seconds: 0.0,
        ..params()
    };
    assert_eq!(check(&h, &no_grace), vec![]);
}

#[test]
fn double_restarts_and_restarted_bystanders_are_caught() {
    let mut h = update("a", 10.0, 30.0);
    let last = h.len() - 1;
    h[last].restart_counts.insert("app".into(), 2);
    let v = check(&h, &params());
    assert_eq!(kinds(&v), vec![Invariant::RestartOnce]);
    assert_eq!(
        v[0].message,
        "container app restarted 2 times for revision gd-2, expected 1"
    );
    let mut h = update("a", 10.0, 30.0);
    h[last].restart_counts.insert("side".into(), 1);
    let v = check(&h, &params());
    assert_eq!(
        v[0].message,
        "container side restarted 1 times for revision gd-2, expected 0"
    );
    // Never restarted at all although reported ready.
    let mut h = update("a", 10.0, 30.0);
    for e in &mut h {
        e.restart_counts.insert("app".into(), 0);
    }
    assert_eq!(kinds(&check(&h, &params())), vec![Invariant::RestartOnce]);
}

#[test]
fn an_unfinished_update_is_not_judged_on_restarts() {
    let mut h = update("a", 10.0, 30.0);
    h.truncate(h.len() - 2);
    let last = h.len() - 1;
    h[last].restart_counts.insert("app".into(), 5);
    assert_eq!(check(&h, &params()), vec![]);
}

#[test]
fn uid_changes_are_caught_unless_the_pod_was_deleted() {
    let mut h = vec![entry(0.0, "a")];
    let mut e = entry(10.0, "a");
    e.uid = "other".into();
    h.push(e.clone());
    let v = check(&h, &params());
    assert_eq!(kinds(&v), vec![Invariant::UidStable]);
    assert_eq!(
        v[0].message,
        "UID changed from uid-a to other without the pod being deleted"
    );
    let mut gone = entry(5.0, "a");
    gone.deleted = true;
    h.insert(1, gone);
    assert_eq!(check(&h, &params()), vec![]);
}

#[test]
fn violations_serialize_with_camel_case_names() {
    let v = check(&update("a", 10.0, 1.0), &params());
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json[0]["invariant"], "gracePeriod");
    assert_eq!(Invariant::MaxUnavailable.to_string(), "maxUnavailable");
}

fn resources(cpu: &str, restart_on_resize: &[&str]) -> ContainerResources {
    ContainerResources {
        values: BTreeMap::from([
            ("requests.cpu".to_string(), cpu.to_string()),
            ("requests.memory".to_string(), "256Mi".to_string()),
        ]),
        restart_on_resize: restart_on_resize.iter().map(|r| r.to_string()).collect(),
    }
}

/// `pod` resized by the operator at 10 s (cpu to `cpu`, with `restart_on_resize`), then its
/// `app` container restarted at 12 s.
fn resized_then_restarted(cpu_restarts: bool) -> Vec<HistoryEntry> {
    let restart: &[&str] = if cpu_restarts {
        &["cpu", "memory"]
    } else {
        &["memory"]
    };
    let mut first = entry(0.0, "p");
    first
        .resources
        .insert("app".into(), resources("500m", restart));
    let mut e = first.clone();
    e.t = 10.0;
    e.client = "operator".into();
    e.resources.insert("app".into(), resources("1", restart));
    let mut restarted = e.clone();
    restarted.t = 12.0;
    restarted.client = "kubelet".into();
    restarted.restart_counts.insert("app".into(), 1);
    vec![first, e, restarted]
}

#[test]
fn a_restart_after_a_not_required_resize_is_a_violation() {
    let v = check(&resized_then_restarted(false), &params());
    assert_eq!(kinds(&v), vec![Invariant::NoRestartOnResize]);
    assert_eq!(v[0].pod.as_deref(), Some("p"));
    assert!(v[0].message.contains("container app"), "{}", v[0].message);
}

#[test]
fn a_restart_container_resize_may_restart() {
    assert_eq!(check(&resized_then_restarted(true), &params()), vec![]);
}

#[test]
fn an_image_change_after_a_resize_may_restart() {
    let mut h = resized_then_restarted(false);
    h[2].images.insert("app".into(), "python:latest".into());
    h[2].client = "operator".into();
    let mut restarted = h[2].clone();
    restarted.t = 13.0;
    restarted.client = "kubelet".into();
    h[2].restart_counts.insert("app".into(), 0);
    h.push(restarted);
    let v = check(&h, &params());
    assert!(!kinds(&v).contains(&Invariant::NoRestartOnResize), "{v:?}");
}
