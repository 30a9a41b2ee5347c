//! Each screen of `gamedeploy status` pinned as a snapshot (`src/status/snapshots/`), from
//! objects written the way the operator and kubelet write them.

use super::*;
use gamedeploy_core::inplace::{ContainerSnapshot, encode};
use serde_json::{Value, json};

const NOW: &str = "2026-01-01T00:10:00Z";
const UID: &str = "0b6f6c1e-gd";
const OLD: &str = "test-gamedeployment-3165439387";
const NEW: &str = "test-gamedeployment-1870229925";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `NOW` minus `secs`, as the API writes times.
fn ago(secs: i64) -> String {
    now()
        .checked_sub(SignedDuration::from_secs(secs))
        .unwrap()
        .to_string()
}

fn gd(spec_extra: Value, status: Value) -> StoredGameDeployment {
    let mut spec = json!({
        "replicas": 8,
        "selector": {"matchLabels": {"app": "test-gamedeployment"}},
        "template": {"metadata": {"labels": {"app": "test-gamedeployment"}},
                     "spec": {"containers": [{"name": "python", "image": "python:latest"}]}},
        "updateStrategy": {"type": "InplaceUpdate", "partition": 3,
                           "inPlaceUpdateStrategy": {"gracePeriodSeconds": 30}}
    });
    merge(&mut spec, spec_extra);
    StoredGameDeployment::from_json(
        &json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "metadata": {"name": "test-gamedeployment", "namespace": "default", "uid": UID,
                         "generation": 2, "creationTimestamp": ago(600)},
            "spec": spec,
            "status": status,
        })
        .to_string(),
    )
    .unwrap()
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn rolling_status() -> Value {
    json!({"observedGeneration": 2, "replicas": 8, "readyReplicas": 5, "availableReplicas": 5,
           "updatedReplicas": 4, "updatedReadyReplicas": 2,
           "currentRevision": OLD, "updateRevision": NEW,
           "conditions": [{"type": "Progressing", "status": "True", "reason": "Updating",
                           "message": "updating pods", "lastTransitionTime": ago(60)}]})
}

/// A pod of the GameDeployment on `revision`, its one container started as `container_id`.
struct PodSpec {
    suffix: &'static str,
    revision: &'static str,
    record: Option<Record>,
    raw_state: Option<&'static str>,
    in_place_ready: Option<(bool, i64)>,
    container: Value,
}

fn at_rest(suffix: &'static str, revision: &'static str) -> PodSpec {
    PodSpec {
        suffix,
        revision,
        record: None,
        raw_state: None,
        in_place_ready: Some((true, 590)),
        container: running("c-0", true, 0),
    }
}

fn running(id: &str, ready: bool, restarts: i32) -> Value {
    json!({"name": "python", "image": "python:3.9", "imageID": "sha256:39", "containerID": id,
           "ready": ready, "restartCount": restarts,
           "state": {"running": {"startedAt": ago(590)}}})
}

fn pod(p: PodSpec) -> Pod {
    let mut annotations = serde_json::Map::new();
    if let Some(r) = &p.record {
        annotations.insert(names::ANNOTATION_STATE.into(), json!(encode(r)));
    }
    if let Some(raw) = p.raw_state {
        annotations.insert(names::ANNOTATION_STATE.into(), json!(raw));
    }
    let mut conditions = vec![];
    if let Some((ok, since)) = p.in_place_ready {
        conditions.push(json!({"type": "InPlaceUpdateReady",
            "status": if ok { "True" } else { "False" }, "lastTransitionTime": ago(since)}));
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("test-gamedeployment-{}", p.suffix),
            "namespace": "default",
            "labels": {"app": "test-gamedeployment", names::LABEL_REVISION: p.revision},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "tkex.tencent.com/v1alpha1",
                "kind": "GameDeployment", "name": "test-gamedeployment", "uid": UID,
                "controller": true}],
            "creationTimestamp": ago(600),
        },
        "spec": {"containers": [{"name": "python", "image": "python:3.9"}]},
        "status": {"phase": "Running", "conditions": conditions,
                   "containerStatuses": [p.container]},
    }))
    .unwrap()
}

fn record(state: State, started: i64) -> Record {
    let mut r = Record::start(
        NEW,
        now()
            .checked_sub(SignedDuration::from_secs(started))
            .unwrap(),
    );
    r.state = state;
    r.images.insert("python".into(), "python:latest".into());
    r
}

fn at(secs: i64) -> Option<Timestamp> {
    now().checked_sub(SignedDuration::from_secs(secs)).ok()
}

fn patched(r: &mut Record, unready: i64, patched: i64) {
    r.unready_since = at(unready);
    r.patched_at = at(patched);
    r.containers.insert(
        "python".into(),
        ContainerSnapshot {
            container_id: Some("c-0".into()),
            image_id: Some("sha256:39".into()),
            restart_count: 0,
        },
    );
}

/// The seed mid-rollout: three pods kept by the partition, two updated, one in its grace
/// period, one restarting, one whose new image cannot be pulled.
fn mid_rollout() -> RolloutSnapshot {
    let mut ready = record(State::Ready, 120);
    patched(&mut ready, 115, 80);
    let mut unready = record(State::Unready, 12);
    unready.unready_since = at(12);
    let mut restarting = record(State::ImagePatched, 50);
    patched(&mut restarting, 45, 5);
    let mut failed = record(State::Failed, 300);
    patched(&mut failed, 295, 260);
    failed.reason = Some("ImagePullFailed".into());
    failed.message = Some(
        "container python: image python:latset cannot be pulled: ImagePullBackOff (Back-off pulling image \"python:latset\")"
            .into(),
    );
    let pods = vec![
        at_rest("2bx9z", OLD),
        at_rest("4kq7d", OLD),
        at_rest("8m2lp", OLD),
        PodSpec {
            record: Some(ready.clone()),
            in_place_ready: Some((true, 75)),
            container: running("c-1", true, 1),
            ..at_rest("b7xw2", NEW)
        },
        PodSpec {
            record: Some(ready),
            in_place_ready: Some((true, 75)),
            container: running("c-1", true, 1),
            ..at_rest("h5v9c", NEW)
        },
        PodSpec {
            record: Some(unready),
            in_place_ready: Some((false, 12)),
            ..at_rest("r78df", OLD)
        },
        PodSpec {
            record: Some(restarting),
            in_place_ready: Some((false, 45)),
            container: json!({"name": "python", "image": "python:latest", "imageID": "",
                "containerID": "c-0", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}),
            ..at_rest("t2n6s", NEW)
        },
        PodSpec {
            record: Some(failed),
            in_place_ready: Some((false, 295)),
            container: json!({"name": "python", "image": "python:latset", "imageID": "",
                "containerID": "c-0", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff"}}}),
            ..at_rest("zq4mf", NEW)
        },
    ];
    RolloutSnapshot {
        gd: gd(json!({}), rolling_status()),
        pods: pods.into_iter().map(pod).collect(),
        hook_runs: BTreeMap::new(),
    }
}

fn assert_fits(text: &str) {
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }
}

#[test]
fn a_rollout_in_progress() {
    let text = render(&mid_rollout(), now(), 80);
    assert_fits(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn a_settled_rollout_has_no_optional_columns() {
    let mut status = rolling_status();
    merge(
        &mut status,
        json!({"updatedReplicas": 0, "updatedReadyReplicas": 0, "readyReplicas": 8,
               "currentRevision": NEW, "updateRevision": NEW,
               "conditions": [{"type": "Progressing", "status": "True", "reason": "Complete"}]}),
    );
    let observed = RolloutSnapshot {
        gd: gd(json!({}), status),
        pods: ["2bx9z", "4kq7d"]
            .into_iter()
            .map(|s| pod(at_rest(s, NEW)))
            .collect(),
        hook_runs: BTreeMap::new(),
    };
    let text = render(&observed, now(), 80);
    assert_fits(&text);
    insta::assert_snapshot!(text);
}

/// A paused canary whose hook failed: the hook column, the problems, the step index.
#[test]
fn a_failed_hook_and_problem_conditions() {
    let mut hooked = record(State::HookCheck, 40);
    hooked.hook_run = Some("test-gamedeployment-r78df-pre-inplace-1870229925-0".into());
    hooked.reason = Some("PreInplaceHookFailed".into());
    let mut waiting = record(State::HookCheck, 10);
    waiting.hook_run = Some("test-gamedeployment-t2n6s-pre-inplace-1870229925-0".into());
    let mut status = rolling_status();
    merge(
        &mut status,
        json!({"observedGeneration": 1, "currentStepIndex": 1, "conditions": [
            {"type": "FailedUpdate", "status": "True", "reason": "PreInplaceHookFailed",
             "message": "preInplace HookRun test-gamedeployment-r78df-pre-inplace-1870229925-0 is Failed; pod test-gamedeployment-r78df waits"},
            {"type": "Progressing", "status": "True", "reason": "Paused"}]}),
    );
    let observed = RolloutSnapshot {
        gd: gd(
            json!({"updateStrategy": {"paused": true, "canary": {"steps": [{"partition": 6}, {"pause": {}}, {"partition": 0}]}}}),
            status,
        ),
        pods: vec![
            pod(PodSpec {
                record: Some(hooked),
                ..at_rest("r78df", OLD)
            }),
            pod(PodSpec {
                record: Some(waiting),
                ..at_rest("t2n6s", OLD)
            }),
            // Another controller's pod matching the selector is not this rollout's.
            {
                let mut p = pod(at_rest("other", OLD));
                p.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".into();
                p
            },
        ],
        hook_runs: BTreeMap::from([(
            "test-gamedeployment-r78df-pre-inplace-1870229925-0".to_string(),
            Some(HookPhase::Failed),
        )]),
    };
    let text = render(&observed, now(), 80);
    assert_fits(&text);
    insta::assert_snapshot!(text);
}

/// A spec the operator cannot decode, and a pod whose record is garbage or from the future.
#[test]
fn unreadable_objects_are_shown_not_fatal() {
    let stored = StoredGameDeployment::from_json(
        &json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "metadata": {"name": "test-gamedeployment", "namespace": "games", "uid": UID},
            "spec": {"replicas": 1_099_511_627_776_i64},
        })
        .to_string(),
    )
    .unwrap();
    let observed = RolloutSnapshot {
        gd: stored,
        pods: vec![
            pod(PodSpec {
                raw_state: Some("{not json"),
                in_place_ready: Some((false, 30)),
                ..at_rest("r78df", OLD)
            }),
            pod(PodSpec {
                raw_state: Some(r#"{"version":9,"state":"Warp"}"#),
                ..at_rest("t2n6s", OLD)
            }),
        ],
        hook_runs: BTreeMap::new(),
    };
    let text = render(&observed, now(), 80);
    assert_fits(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn long_names_are_shortened_to_fit() {
    let mut observed = mid_rollout();
    for p in &mut observed.pods {
        let name = p.metadata.name.take().unwrap();
        p.metadata.name =
            Some(name.replace("test-gamedeployment", "a-very-long-game-server-fleet-name"));
    }
    let text = render(&observed, now(), 80);
    assert_fits(&text);
    assert!(text.contains("…-game-server-fleet-name-r78df  "), "{text}");
    assert!(
        text.contains("- a-very-long-game-server-fleet-name-zq4mf ImagePullFailed"),
        "the whole name is below the table: {text}"
    );
    let narrow = render(&observed, now(), 40);
    assert!(narrow.lines().all(|l| l.chars().count() <= 40), "{narrow}");
}

#[test]
fn no_pods_says_so() {
    let observed = RolloutSnapshot {
        gd: gd(json!({}), json!(null)),
        pods: vec![],
        hook_runs: BTreeMap::new(),
    };
    let text = render(&observed, now(), 80);
    assert!(text.contains("revisions  none yet"), "{text}");
    assert!(text.ends_with("No pods.\n"), "{text}");
}

/// Resize states: one sending its resize, one the node defers (the kubelet's reason and the
/// node shown), one infeasible (the recorded reason, naming pod, container and node).
#[test]
fn resizes_show_their_state_and_a_pending_ones_reason_and_node() {
    let resources = |cpu: &str| {
        let r = gamedeploy_core::inplace::ContainerResources {
            requests: [("cpu".to_string(), cpu.to_string())].into(),
            limits: BTreeMap::new(),
        };
        [("python".to_string(), r)].into_iter().collect()
    };
    let mut sending = record(State::Resizing, 20);
    sending.images.clear();
    sending.resources = resources("1");
    let mut deferred = sending.clone();
    deferred.started_at = at(40).unwrap();
    let mut infeasible = record(State::ResizeInfeasible, 60);
    infeasible.images.clear();
    infeasible.resources = resources("64");
    infeasible.reason = Some("ResizeInfeasible".into());
    infeasible.message = Some(
        "pod test-gamedeployment-k3p9x: resize of container python (requests cpu=64) is \
         infeasible on node sim-node-2: Node didn't have enough capacity: cpu, requested: \
         64000, capacity: 4000"
            .into(),
    );
    let with = |record: Record, suffix: &'static str| PodSpec {
        record: Some(record),
        ..at_rest(suffix, NEW)
    };
    let mut pods: Vec<Pod> = [
        with(sending, "a1b2c"),
        with(deferred, "d3f4g"),
        with(infeasible, "k3p9x"),
    ]
    .into_iter()
    .map(pod)
    .collect();
    let cpu = |pod: &mut Pod, q: &str| {
        let spec = pod.spec.as_mut().unwrap();
        spec.node_name = Some("sim-node-2".into());
        spec.containers[0].resources = serde_json::from_value(json!({"requests": {"cpu": q}})).ok();
    };
    cpu(&mut pods[0], "500m");
    cpu(&mut pods[1], "1");
    cpu(&mut pods[2], "64");
    let pending = serde_json::from_value(json!({"type": "PodResizePending", "status": "True",
        "reason": "Deferred", "lastTransitionTime": ago(30),
        "message": "Node didn't have enough resource: cpu, requested: 1000, used: 3500, capacity: 4000"}))
    .unwrap();
    let conditions = pods[1]
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap();
    conditions.push(pending);
    let snapshot = RolloutSnapshot {
        gd: gd(json!({}), rolling_status()),
        pods,
        hook_runs: BTreeMap::new(),
    };
    let text = render(&snapshot, now(), 80);
    assert_fits(&text);
    assert!(text.contains("ResizeDeferred"), "{text}");
    assert!(text.contains("sim-node-2"), "{text}");
    insta::assert_snapshot!(text);
}
