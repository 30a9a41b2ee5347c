//! The seed's in-place update session replayed through the pure parts of the simulation: the
//! kubelet's runtime model reports every pod, a scripted stand-in for the operator does what
//! the state machine does (unready, wait the grace period, patch the image, ready again, two
//! pods at a time), the report's history is checked against the invariants, and the tables
//! read like the seed's `kubectl get` output.

use std::collections::BTreeMap;
use std::time::Duration;

use gamedeploy_core::api::GameDeployment;
use gamedeploy_simulator::invariants::{self, Invariant, Params};
use gamedeploy_simulator::kubectl_table;
use gamedeploy_simulator::report::{HistoryEntry, PodEntry};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use serde_json::json;
use simulated_kubelet::{KubeletConfig, NodeConfig, NodeRuntime};

const NAMES: [&str; 8] = [
    "49m5l", "57rrt", "7wr7h", "cbk77", "n58hm", "n8ld6", "r78df", "wzxm7",
];
/// Updated in this order, two at a time (partition 3 keeps the other three).
const UPDATE: [&str; 5] = ["r78df", "wzxm7", "49m5l", "n8ld6", "n58hm"];
const GRACE: i64 = 30;

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn new_pod(suffix: &str, created: i64) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("test-gamedeployment-{suffix}"), "namespace": "default",
            "uid": format!("uid-{suffix}"), "creationTimestamp": at(created).to_string(),
            "labels": {"controller-revision-hash": "gd-1"}},
        "spec": {"nodeName": "sim-node",
            "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": [{"name": "python", "image": "python:3.9"}]},
        "status": {"conditions": [{"type": "InPlaceUpdateReady", "status": "True"}]}
    }))
    .unwrap()
}

fn set_gate(pod: &mut Pod, ok: bool, now: Timestamp) {
    let conditions = pod
        .status
        .get_or_insert_default()
        .conditions
        .get_or_insert_default();
    conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
    conditions.push(PodCondition {
        type_: "InPlaceUpdateReady".into(),
        status: if ok { "True" } else { "False" }.into(),
        last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        ..PodCondition::default()
    });
}

struct Run {
    pods: BTreeMap<String, Pod>,
    history: Vec<HistoryEntry>,
    snapshots: Vec<String>,
}

/// Runs second by second to `end`; `patch_grace` is how long the stand-in operator waits
/// between unready and the image patch.
fn run(end: i64, patch_grace: i64) -> Run {
    let mut pods: BTreeMap<String, Pod> = NAMES
        .iter()
        .map(|n| (n.to_string(), new_pod(n, if *n == "wzxm7" { 1 } else { 0 })))
        .collect();
    let mut kubelet = NodeRuntime::default();
    let config = KubeletConfig::default();
    let node = NodeConfig::default();
    let mut history = Vec::new();
    let mut snapshots = Vec::new();
    let mut gd: GameDeployment = serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
        "metadata": {"name": "test-gamedeployment", "creationTimestamp": at(-21).to_string()},
        "spec": {"replicas": 8, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
        "status": {"replicas": 8}
    }))
    .unwrap();
    // (pod, when it was marked unready)
    let mut in_flight: Vec<(&str, i64)> = Vec::new();
    let mut queue = UPDATE.iter();
    for s in 0..=end {
        let now = at(s);
        let mut operator_writes: Vec<&str> = Vec::new();
        if s >= 20 {
            // Finish updates whose new container is ready; then start new ones, two at a time.
            in_flight.retain(|(name, since)| {
                let pod = pods.get_mut(*name).unwrap();
                let status = pod.status.as_ref().unwrap();
                let c = &status.container_statuses.as_ref().unwrap()[0];
                let patched = pod.spec.as_ref().unwrap().containers[0].image.as_deref()
                    == Some("python:latest");
                if !patched && s - since >= patch_grace {
                    pod.spec.as_mut().unwrap().containers[0].image = Some("python:latest".into());
                    pod.metadata
                        .labels
                        .as_mut()
                        .unwrap()
                        .insert("controller-revision-hash".into(), "gd-2".into());
                    operator_writes.push(name);
                } else if patched && c.ready && c.restart_count == 1 {
                    set_gate(pod, true, now);
                    operator_writes.push(name);
                    return false;
                }
                true
            });
            while in_flight.len() < 2 {
                let Some(name) = queue.next() else { break };
                set_gate(pods.get_mut(*name).unwrap(), false, now);
                operator_writes.push(name);
                in_flight.push((name, s));
            }
        }
        for name in operator_writes {
            history.push(HistoryEntry::from_pod(
                s as f64,
                "operator",
                &pods[name],
                false,
            ));
        }
        for (name, pod) in pods.iter_mut() {
            let d = kubelet.sync(pod, &config, &node, now);
            assert!(d.bind.is_none() && !d.delete, "{name}");
            if let Some(status) = d.status {
                pod.status = Some(status);
                history.push(HistoryEntry::from_pod(s as f64, "kubelet", pod, false));
            }
        }
        let list: Vec<Pod> = pods.values().cloned().collect();
        let status = gd.status.as_mut().unwrap();
        status.ready_replicas = list.iter().filter(|p| PodEntry::from_pod(p).ready).count() as i32;
        let updated: Vec<&Pod> = list
            .iter()
            .filter(|p| PodEntry::from_pod(p).revision.as_deref() == Some("gd-2"))
            .collect();
        status.updated_replicas = updated.len() as i32;
        status.updated_ready_replicas = updated
            .iter()
            .filter(|p| PodEntry::from_pod(p).ready)
            .count() as i32;
        if [9, 486].contains(&s) {
            snapshots.push(kubectl_table::snapshot(
                Duration::from_secs(s as u64),
                now,
                &list,
                &[gd.clone().into()],
            ));
        }
    }
    Run {
        pods,
        history,
        snapshots,
    }
}

#[test]
fn the_seed_session_reads_like_kubectl_and_keeps_every_invariant() {
    let r = run(486, GRACE);
    assert_eq!(
        r.snapshots[0],
        "\
[t=9s] $ kubectl get pods
NAME                        READY   STATUS    RESTARTS   AGE
test-gamedeployment-49m5l   1/1     Running   0          9s
test-gamedeployment-57rrt   1/1     Running   0          9s
test-gamedeployment-7wr7h   1/1     Running   0          9s
test-gamedeployment-cbk77   1/1     Running   0          9s
test-gamedeployment-n58hm   1/1     Running   0          9s
test-gamedeployment-n8ld6   1/1     Running   0          9s
test-gamedeployment-r78df   1/1     Running   0          9s
test-gamedeployment-wzxm7   1/1     Running   0          8s

[t=9s] $ kubectl get gamedeployment
NAME                  DESIRED   UPDATED   UPDATED_READY   READY   TOTAL   AGE
test-gamedeployment   8         0         0               8       8       30s
"
    );
    assert_eq!(
        r.snapshots[1],
        "\
[t=8m6s] $ kubectl get pods
NAME                        READY   STATUS    RESTARTS   AGE
test-gamedeployment-49m5l   1/1     Running   1          8m6s
test-gamedeployment-57rrt   1/1     Running   0          8m6s
test-gamedeployment-7wr7h   1/1     Running   0          8m6s
test-gamedeployment-cbk77   1/1     Running   0          8m6s
test-gamedeployment-n58hm   1/1     Running   1          8m6s
test-gamedeployment-n8ld6   1/1     Running   1          8m6s
test-gamedeployment-r78df   1/1     Running   1          8m6s
test-gamedeployment-wzxm7   1/1     Running   1          8m5s

[t=8m6s] $ kubectl get gamedeployment
NAME                  DESIRED   UPDATED   UPDATED_READY   READY   TOTAL   AGE
test-gamedeployment   8         5         5               8       8       8m27s
"
    );
    let params = Params {
        max_unavailable: 2,
        replicas: 8,
        partition: 3,
        grace_seconds: GRACE as f64,
        update_revision: "gd-2".into(),
        operator: "operator".into(),
    };
    assert_eq!(invariants::check(&r.history, &params), vec![]);
    // Pods keep their UID and IP through the update.
    for (name, pod) in &r.pods {
        assert_eq!(
            pod.metadata.uid.as_deref(),
            Some(format!("uid-{name}").as_str())
        );
    }
    let ips: std::collections::BTreeSet<_> = r
        .pods
        .values()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone())
        .collect();
    assert_eq!(ips.len(), 8);
}

#[test]
fn an_impatient_operator_is_caught_by_the_invariants() {
    let r = run(200, GRACE - 10);
    let params = Params {
        max_unavailable: 1,
        replicas: 8,
        partition: 3,
        grace_seconds: GRACE as f64,
        update_revision: "gd-2".into(),
        operator: "operator".into(),
    };
    let found: std::collections::BTreeSet<Invariant> = invariants::check(&r.history, &params)
        .iter()
        .map(|v| v.invariant)
        .collect();
    assert_eq!(
        found,
        [Invariant::GracePeriod, Invariant::MaxUnavailable]
            .into_iter()
            .collect()
    );
}
