//! Scenarios run end to end: the real operator, the embedded API server and the simulated
//! kubelet on virtual time. Outcomes are asserted, and the invariants of the in-place state
//! machine are recomputed from the report's history, including under operator crashes at
//! every single operator write.

use std::collections::{BTreeMap, BTreeSet};

use gamedeploy_simulator::report::Report;
use gamedeploy_simulator::scenario::{Step, StepAction};

#[path = "support/sim.rs"]
mod sim;
use sim::{Rollout, restarts, scenario, simulate, update_revision};

/// The seed's outcome: five of eight pods restarted once on the new image, three untouched,
/// same pods (names and UIDs), all ready.
fn assert_seed_outcome(r: &Report, ctx: &str) {
    assert!(r.settled, "{ctx}: did not settle");
    assert_eq!(r.pods.len(), 8, "{ctx}");
    let counts = restarts(r);
    let restarted = counts.values().filter(|n| **n == 1).count();
    assert_eq!(restarted, 5, "{ctx}: {counts:?}");
    assert!(
        restarts(r).values().all(|n| *n <= 1),
        "{ctx}: a container restarted twice: {:?}",
        restarts(r)
    );
    for p in &r.pods {
        assert!(p.ready, "{ctx}: {} not ready", p.name);
        let image = &p.containers[0].image;
        let restarted = p.containers[0].restart_count == 1;
        assert_eq!(
            image == "python:latest",
            restarted,
            "{ctx}: {} runs {image}",
            p.name
        );
    }
    let status = &r.game_deployments[0].status;
    assert_eq!(
        (
            status["updatedReplicas"].as_i64(),
            status["updatedReadyReplicas"].as_i64()
        ),
        (Some(5), Some(5)),
        "{ctx}"
    );
    let violations = sim::violations(
        r,
        Rollout {
            replicas: 8,
            partition: 3,
            max_unavailable: 2,
            grace_seconds: 30.0,
        },
    );
    assert!(violations.is_empty(), "{ctx}: {violations:#?}");
}

#[test]
fn the_seed_session_restarts_five_pods_once_in_place() {
    let r = simulate(&scenario("seed-inplace-update.yaml"));
    assert_seed_outcome(&r, "seed");
    // The same pods from start to end: a UID never changes.
    let uids: BTreeSet<&str> = r.history.iter().map(|h| h.uid.as_str()).collect();
    assert_eq!(uids.len(), 8);
}

#[test]
fn an_in_place_update_costs_three_pod_writes_and_no_pod_gets() {
    let r = simulate(&scenario("seed-inplace-update.yaml"));
    let update = update_revision(&r);
    let mut writes: BTreeMap<&str, usize> = BTreeMap::new();
    for h in r
        .history
        .iter()
        .filter(|h| h.client == "operator" && h.t >= 20.0)
    {
        *writes.entry(h.pod.as_str()).or_default() += 1;
    }
    let updated: Vec<&str> = r
        .pods
        .iter()
        .filter(|p| p.revision.as_deref() == Some(update.as_str()))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(updated.len(), 5);
    for pod in updated {
        assert_eq!(
            writes.get(pod),
            Some(&3),
            "{pod}: operator pod writes during its update"
        );
    }
    let gets: u64 = r
        .api_requests
        .iter()
        .filter(|a| a.client == "operator" && a.resource == "pods" && a.verb == "get")
        .map(|a| a.count)
        .sum();
    assert_eq!(gets, 0, "the operator reads pods from its watch cache only");
}

/// Kill the operator right after its N-th write, for every N the uninterrupted run makes, and
/// check the outcome and every invariant each time.
#[test]
fn a_crash_after_any_operator_write_changes_nothing() {
    let base = scenario("seed-inplace-update.yaml");
    let clean = simulate(&base);
    let total = clean
        .history
        .iter()
        .filter(|h| h.client == "operator")
        .count();
    assert!(total > 20, "the seed run makes {total} operator pod writes");
    for n in 1..=total as u32 {
        let mut s = base.clone();
        s.steps.insert(
            0,
            Step {
                at: std::time::Duration::ZERO,
                action: StepAction::CrashOperatorAfterWrites(n),
            },
        );
        let r = simulate(&s);
        assert_eq!(r.operator_restarts, 1, "crash after write {n} happened");
        assert_seed_outcome(&r, &format!("crash after operator write {n}"));
    }
}

/// Seeded 409s, 500s and dropped watches on every operator request, plus a restart mid-rollout,
/// over many seeds: same outcome, no invariant broken.
#[test]
fn api_faults_over_many_seeds_change_nothing() {
    let base = scenario("seed-with-faults.yaml");
    for seed in 1..=12 {
        let mut s = base.clone();
        if let Some(f) = s.faults.as_mut() {
            f.seed = seed;
        }
        let r = simulate(&s);
        assert!(r.faults_injected > 0, "seed {seed}: no fault was injected");
        assert_eq!(r.operator_restarts, 1);
        assert_seed_outcome(&r, &format!("fault seed {seed}"));
    }
}

/// `file` under 50 seeds of API faults (409s, 500s, dropped watches), each with an operator
/// crash after a seeded write: every run settles and breaks no invariant, faults were injected
/// and at least 40 runs crashed the operator.
fn fifty_chaos_seeds(file: &str) {
    use gamedeploy_simulator::chaos::run_seeds;
    let summary = run_seeds(&scenario(file), 1..=50, 2, &|_| {}).unwrap();
    assert_eq!(summary.runs.len(), 50);
    assert!(summary.ok(), "{}", summary.render(file));
    let faults: u64 = summary.runs.iter().map(|r| r.faults_injected).sum();
    let crashed = summary
        .runs
        .iter()
        .filter(|r| r.operator_restarts > 0)
        .count();
    assert!(faults > 50, "{faults} faults injected");
    assert!(
        crashed >= 40,
        "only {crashed} of 50 runs crashed the operator"
    );
}

/// `gamedeploy simulate --fault-seeds 1..50` of the seed scenario: every run settles with the
/// seed's outcome and breaks no invariant.
#[test]
fn fifty_chaos_seeds_of_the_seed_scenario_break_no_invariant() {
    fifty_chaos_seeds("seed-inplace-update.yaml");
}

/// The hook-gated rollout (`pre-inplace-drain-hook.yaml`) under the same chaos: the HookRun
/// controller's writes meet the faults and the crashes, and no pod is restarted twice, grace
/// is kept, UIDs stay.
#[test]
fn fifty_chaos_seeds_of_a_hook_gated_rollout_break_no_invariant() {
    fifty_chaos_seeds("pre-inplace-drain-hook.yaml");
}

/// The three-step canary (`canary-steps.yaml`) under the same chaos: a crash or a lost write
/// between a step's completion and its status write only repeats the decision, so every run
/// still settles with every pod updated once.
#[test]
fn fifty_chaos_seeds_of_a_canary_break_no_invariant() {
    fifty_chaos_seeds("canary-steps.yaml");
}

/// In-place resize (`resize-image-and-cpu.yaml`: resize, then image, behind one grace period)
/// under the same chaos: a crash after the resize write resumes from the pod spec, and no pod
/// restarts more than once or leaves its UID.
#[test]
fn fifty_chaos_seeds_of_an_in_place_resize_break_no_invariant() {
    fifty_chaos_seeds("resize-image-and-cpu.yaml");
}
