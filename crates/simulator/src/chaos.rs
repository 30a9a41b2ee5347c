//! Chaos runs: one scenario under many seeds of API faults (409, 500, latency, dropped watches)
//! and an operator crash at a random write, each run checked against every invariant
//! (`gamedeploy simulate --fault-seeds 1..1000 SCENARIO`).
//!
//! A seed fixes everything that varies: the faults' random choices and the write after which
//! the operator dies, so any run can be replayed alone with `--fault-seeds N..N`.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::Duration;

use gamedeploy_core::api::GameDeploymentSpec;
use gamedeploy_core::planner::rules::limits::resolve;
use serde::Serialize;

use crate::invariants::{self, Params, Violation};
use crate::report::Report;
use crate::runner::{self, SimError};
use crate::scenario::{Faults, Scenario, Step, StepAction};

/// Faults for a scenario that declares none: the rates `fixtures/scenarios/seed-with-faults.yaml`
/// uses, plus a little latency.
const DEFAULT_FAULTS: Faults = Faults {
    seed: 0,
    conflict_rate: 0.1,
    error_rate: 0.05,
    latency: Some(Duration::from_millis(20)),
    drop_watch_every: Some(Duration::from_secs(30)),
};

/// What one seed did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedRun {
    pub seed: u64,
    /// The operator was killed right after this write (none if the clean run made no write).
    pub crash_after: Option<u64>,
    pub settled: bool,
    pub faults_injected: u64,
    pub operator_restarts: u32,
    pub violations: Vec<Violation>,
}

impl SeedRun {
    pub fn ok(&self) -> bool {
        self.settled && self.violations.is_empty()
    }

    /// One line per way this run failed, each with the command that replays it; empty when it
    /// passed. Printed as the run ends and again in the summary.
    pub fn failures(&self, scenario_path: &str) -> String {
        let seed = self.seed;
        let replay = format!("gamedeploy simulate {scenario_path} --fault-seeds {seed}..{seed}");
        let mut out = String::new();
        if !self.settled {
            out.push_str(&format!("  seed {seed}: did not settle ({replay})\n"));
        }
        for v in &self.violations {
            let pod = v
                .pod
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  seed {seed}: t={}s {}{pod}: {} ({replay})\n",
                v.t, v.invariant, v.message
            ));
        }
        out
    }
}

/// Every seed's run, in seed order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub scenario: String,
    pub runs: Vec<SeedRun>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.runs.iter().all(SeedRun::ok)
    }

    /// The summary as printed: totals, then one line per failed run with how to replay it.
    pub fn render(&self, scenario_path: &str) -> String {
        let runs = self.runs.len();
        let settled = self.runs.iter().filter(|r| r.settled).count();
        let faults: u64 = self.runs.iter().map(|r| r.faults_injected).sum();
        let crashes: u32 = self.runs.iter().map(|r| r.operator_restarts).sum();
        let violations: usize = self.runs.iter().map(|r| r.violations.len()).sum();
        let mut out = format!(
            "{}: {runs} runs, {settled} settled, {faults} faults injected, {crashes} operator restarts, {violations} invariant violations\n",
            self.scenario
        );
        for r in &self.runs {
            out.push_str(&r.failures(scenario_path));
        }
        out
    }
}

/// `base` as seed `seed` runs it: the scenario's faults (or [`DEFAULT_FAULTS`]) with this
/// seed, and a crash after a write chosen by the seed among the `clean_writes` the run makes
/// without faults.
pub fn seeded(base: &Scenario, seed: u64, clean_writes: u64) -> (Scenario, Option<u64>) {
    let mut s = base.clone();
    let mut faults = s.faults.take().unwrap_or(DEFAULT_FAULTS);
    faults.seed = seed;
    s.faults = Some(faults);
    let crash_after = (clean_writes > 0).then(|| {
        let mut rng = fastrand::Rng::with_seed(seed);
        rng.u64(1..=clean_writes)
    });
    if let Some(n) = crash_after {
        s.steps.insert(
            0,
            Step {
                at: Duration::ZERO,
                action: StepAction::CrashOperatorAfterWrites(u32::try_from(n).unwrap_or(u32::MAX)),
            },
        );
    }
    (s, crash_after)
}

/// The invariants' parameters from what the run ended with: the first GameDeployment's spec
/// resolved as the operator resolves it, and its update revision.
pub fn params(report: &Report) -> Result<Params, String> {
    let gd = report
        .game_deployments
        .first()
        .ok_or("the scenario creates no GameDeployment, so there is nothing to check")?;
    let spec: GameDeploymentSpec = serde_json::from_value(gd.spec.clone())
        .map_err(|e| format!("GameDeployment {}: cannot read its spec: {e}", gd.name))?;
    let resolved = resolve(&spec).map_err(|e| format!("GameDeployment {}: {e}", gd.name))?;
    let count = |n: i32| u32::try_from(n.max(0)).unwrap_or(0);
    Ok(Params {
        max_unavailable: count(resolved.limits.max_unavailable),
        replicas: count(resolved.limits.replicas),
        partition: count(resolved.limits.partition),
        grace_seconds: resolved.policy.grace_period_seconds as f64,
        update_revision: gd.status["updateRevision"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        operator: runner::OPERATOR.to_string(),
    })
}

/// One run on its own paused single-threaded runtime, as `gamedeploy simulate` runs.
fn simulate(scenario: &Scenario) -> Result<Report, SimError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| SimError::Setup(format!("cannot start the simulation runtime: {e}")))?
        .block_on(runner::run(scenario, &mut |_| {}))
}

/// Runs `base` once clean (to count its writes), then once per seed on `jobs` threads;
/// `progress` is told of each finished run.
pub fn run_seeds(
    base: &Scenario,
    seeds: RangeInclusive<u64>,
    jobs: usize,
    progress: &(dyn Fn(&SeedRun) + Sync),
) -> Result<Summary, SimError> {
    let mut clean = base.clone();
    clean.faults = None;
    let clean_writes = simulate(&clean)?.operator_writes;
    let next = Mutex::new(seeds.clone());
    let runs = Mutex::new(Vec::new());
    let failure: Mutex<Option<SimError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(seed) = next.lock().ok().and_then(|mut n| n.next()) else {
                        return;
                    };
                    let (scenario, crash_after) = seeded(base, seed, clean_writes);
                    let report = match simulate(&scenario) {
                        Ok(r) => r,
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    };
                    let violations = match params(&report) {
                        Ok(p) => invariants::check(&report.history, &p),
                        Err(_) => Vec::new(),
                    };
                    let run = SeedRun {
                        seed,
                        crash_after,
                        settled: report.settled,
                        faults_injected: report.faults_injected,
                        operator_restarts: report.operator_restarts,
                        violations,
                    };
                    progress(&run);
                    if let Ok(mut r) = runs.lock() {
                        r.push(run);
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut runs = runs.into_inner().unwrap_or_default();
    runs.sort_by_key(|r| r.seed);
    Ok(Summary {
        scenario: base.name.clone(),
        runs,
    })
}

/// `A..B` (inclusive, as the flag reads) or a single seed `A`.
pub fn parse_seeds(text: &str) -> Result<RangeInclusive<u64>, String> {
    let number = |s: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            format!("--fault-seeds {text}: {s:?} is not a seed number; write A..B, such as 1..1000")
        })
    };
    let (from, to) = match text.split_once("..") {
        Some((a, b)) => (number(a)?, number(b.trim_start_matches('='))?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if from > to {
        return Err(format!(
            "--fault-seeds {text}: the range is empty; write A..B with A <= B"
        ));
    }
    Ok(from..=to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Invariant;

    fn base() -> Scenario {
        let yaml = "name: t\napply: []\nsteps:\n  - at: 5s\n    restartOperator: true\nuntil: {settled: true, timeout: 1m}\n";
        crate::scenario::parse(yaml, std::path::Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn seeds_parse_as_inclusive_ranges_with_clear_errors() {
        assert_eq!(parse_seeds("1..1000"), Ok(1..=1000));
        assert_eq!(parse_seeds("1..=3"), Ok(1..=3));
        assert_eq!(parse_seeds("7"), Ok(7..=7));
        assert!(parse_seeds("5..2").unwrap_err().contains("empty"));
        assert!(
            parse_seeds("a..b")
                .unwrap_err()
                .contains("not a seed number")
        );
    }

    #[test]
    fn a_seed_fixes_the_faults_and_the_crash_and_keeps_the_steps() {
        let (a, crash_a) = seeded(&base(), 42, 30);
        let (b, crash_b) = seeded(&base(), 42, 30);
        assert_eq!((&a, crash_a), (&b, crash_b), "replayable");
        let n = crash_a.unwrap();
        assert!((1..=30).contains(&n));
        assert_eq!(a.faults.as_ref().unwrap().seed, 42);
        assert_eq!(
            a.faults.as_ref().unwrap().conflict_rate,
            DEFAULT_FAULTS.conflict_rate
        );
        assert_eq!(
            a.steps[0].action,
            StepAction::CrashOperatorAfterWrites(n as u32)
        );
        assert_eq!(a.steps[1..], base().steps[..]);
        let crashes: std::collections::BTreeSet<u64> =
            (1..=200).filter_map(|s| seeded(&base(), s, 30).1).collect();
        assert!(
            crashes.len() > 20,
            "seeds spread the crash over the writes: {crashes:?}"
        );
        assert_eq!(seeded(&base(), 1, 0).1, None, "no write, no crash");
    }

    #[test]
    fn the_summary_names_each_failed_seed_and_how_to_replay_it() {
        let run = |seed, settled, violations: Vec<Violation>| SeedRun {
            seed,
            crash_after: Some(3),
            settled,
            faults_injected: 10,
            operator_restarts: 1,
            violations,
        };
        let summary = Summary {
            scenario: "seed".into(),
            runs: vec![
                run(1, true, vec![]),
                run(2, false, vec![]),
                run(
                    3,
                    true,
                    vec![Violation {
                        t: 42.5,
                        invariant: Invariant::GracePeriod,
                        pod: Some("p-1".into()),
                        message: "patched after 10s".into(),
                    }],
                ),
            ],
        };
        assert!(!summary.ok());
        assert_eq!(
            summary.render("s.yaml"),
            "seed: 3 runs, 2 settled, 30 faults injected, 3 operator restarts, 1 invariant violations\n\
             \x20 seed 2: did not settle (gamedeploy simulate s.yaml --fault-seeds 2..2)\n\
             \x20 seed 3: t=42.5s gracePeriod p-1: patched after 10s (gamedeploy simulate s.yaml --fault-seeds 3..3)\n"
        );
    }
}
