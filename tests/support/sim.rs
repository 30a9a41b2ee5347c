//! Running scenario files in tests, and reading their reports: shared by the scenario tests
//! and the crash/fault sweeps.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gamedeploy_core::inplace::{self, Decoded};
use gamedeploy_simulator::invariants::{Params, Violation, check};
use gamedeploy_simulator::report::Report;
use gamedeploy_simulator::runner::run;
use gamedeploy_simulator::scenario::{Scenario, Until, load};
use serde_json::{Value, json};

/// A scenario of `fixtures/scenarios/`.
pub fn scenario(name: &str) -> Scenario {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/scenarios")
            .join(name),
    )
    .unwrap()
}

/// Runs a scenario on a paused current-thread runtime, as `gamedeploy simulate` does.
pub fn simulate(s: &Scenario) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(run(s, &mut |_| {})).unwrap()
}

/// The same scenario stopped at `t`: later steps dropped, no waiting for it to settle. For
/// looking at the middle of a run.
pub fn until(s: &Scenario, t: Duration) -> Scenario {
    let mut s = s.clone();
    s.steps.retain(|step| step.at < t);
    s.until = Until {
        settled: false,
        timeout: t,
        ..s.until
    };
    s
}

/// Restarts summed over each pod's containers, by pod name.
pub fn restarts(r: &Report) -> BTreeMap<String, i32> {
    r.pods
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.containers.iter().map(|c| c.restart_count).sum(),
            )
        })
        .collect()
}

/// The first GameDeployment's status field `key` as an integer.
pub fn status_int(r: &Report, key: &str) -> i64 {
    r.game_deployments[0].status[key].as_i64().unwrap_or(0)
}

/// The first GameDeployment's condition of `type_`, if set: (reason, message).
pub fn condition(r: &Report, type_: &str) -> Option<(String, String)> {
    r.game_deployments[0].status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// The revision the first GameDeployment updates to.
pub fn update_revision(r: &Report) -> String {
    r.game_deployments[0].status["updateRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The settings of the rollout a history is judged against, named where a test states them.
#[derive(Debug, Clone, Copy)]
pub struct Rollout {
    pub replicas: u32,
    pub partition: u32,
    pub max_unavailable: u32,
    pub grace_seconds: f64,
}

/// Invariant violations of the history, for a rollout with these settings.
pub fn violations(r: &Report, rollout: Rollout) -> Vec<Violation> {
    let Rollout {
        replicas,
        partition,
        max_unavailable,
        grace_seconds,
    } = rollout;
    check(
        &r.history,
        &Params {
            max_unavailable,
            replicas,
            partition,
            grace_seconds,
            update_revision: update_revision(r),
            operator: "operator".into(),
        },
    )
}

/// Over the whole history: the most pods alive at once (not terminating) and the fewest of
/// them ready after `from` seconds.
pub fn pod_extremes(r: &Report, from: f64) -> (usize, usize) {
    let mut alive: BTreeMap<&str, bool> = BTreeMap::new();
    let (mut most, mut fewest_ready) = (0, usize::MAX);
    for h in &r.history {
        if h.deleted || h.terminating {
            alive.remove(h.pod.as_str());
        } else {
            alive.insert(&h.pod, h.ready);
        }
        most = most.max(alive.len());
        if h.t > from {
            fewest_ready = fewest_ready.min(alive.values().filter(|r| **r).count());
        }
    }
    (most, fewest_ready)
}

/// The final state, for snapshots: what `kubectl get` would show plus each pod's machine
/// state and the events by reason. Times and UIDs are left out; names, revisions and counts
/// are deterministic for a scenario.
pub fn final_state(r: &Report) -> Value {
    let gd = &r.game_deployments[0].status;
    let conditions: Vec<Value> = gd["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"type": c["type"], "status": c["status"], "reason": c["reason"], "message": c["message"]}))
                .collect()
        })
        .unwrap_or_default();
    let pods: Vec<Value> = r
        .pods
        .iter()
        .map(|p| {
            let state = match inplace::decode(&p.annotations) {
                Decoded::Valid(rec) => rec.state.to_string(),
                Decoded::Missing => "-".into(),
                other => format!("{other:?}"),
            };
            let images: Vec<String> = p
                .containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image))
                .collect();
            let mut pod = json!({
                "name": p.name,
                "revision": p.revision,
                "ready": p.ready,
                "images": images.join(","),
                "restarts": p.containers.iter().map(|c| c.restart_count).sum::<i32>(),
                "state": state,
            });
            // Only pods that run with cpu/memory say so, so older snapshots stay as they were.
            let resources: BTreeMap<&str, &BTreeMap<String, String>> = p
                .containers
                .iter()
                .filter(|c| !c.resources.is_empty())
                .map(|c| (c.name.as_str(), &c.resources))
                .collect();
            if !resources.is_empty() {
                pod["resources"] = json!(resources);
            }
            pod
        })
        .collect();
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    for e in &r.events {
        *events
            .entry(format!("{} {}", e.type_, e.reason))
            .or_default() += 1;
    }
    json!({
        "settled": r.settled,
        "gameDeployment": {
            "replicas": gd["replicas"],
            "readyReplicas": gd["readyReplicas"],
            "availableReplicas": gd["availableReplicas"],
            "updatedReplicas": gd["updatedReplicas"],
            "updatedReadyReplicas": gd["updatedReadyReplicas"],
            "updateRevision": gd["updateRevision"],
            "currentRevision": gd["currentRevision"],
            "conditions": conditions,
        },
        "pods": pods,
        "events": events,
    })
}
