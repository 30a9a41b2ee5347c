//! FSM traces from `fixtures/fsm/*.yaml`, snapshotted with insta; the write budget; crash
//! replay from every write; and the two-way check between code and `states/`.

#[path = "support/fsm_sim.rs"]
mod sim;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use gamedeploy_core::inplace::table::{Node, table};
use gamedeploy_core::inplace::{State, Trigger};
use sim::{Crash, Sim, Trace, load};

fn fixture(name: &str) -> sim::Fixture {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/fsm")
            .join(name),
    )
}

#[test]
fn fixtures_trace_as_snapshotted_and_cover_the_table() {
    let exercised: Mutex<BTreeSet<(Node, State, Trigger)>> = Mutex::new(BTreeSet::new());
    insta::glob!(env!("CARGO_MANIFEST_DIR"), "fixtures/fsm/*.yaml", |path| {
        let trace = Sim::new(load(path)).run();
        assert!(
            trace.violations.is_empty(),
            "{}: {:#?}",
            path.display(),
            trace.violations
        );
        exercised
            .lock()
            .unwrap()
            .extend(trace.edges.iter().copied());
        insta::with_settings!({ info => &trace.name, omit_expression => true }, {
            insta::assert_yaml_snapshot!(trace);
        });
    });
    let exercised = exercised.into_inner().unwrap();
    let table = table().expect("states/transitions.yaml");
    let missing: Vec<String> = table
        .transitions
        .iter()
        .filter(|e| !exercised.contains(&(e.from, e.to, e.trigger)))
        .map(|e| format!("{:?} -> {} ({})", e.from, e.to, e.trigger))
        .collect();
    assert!(
        missing.is_empty(),
        "table edges no fixture exercises: {missing:#?}"
    );
}

/// `fixture` runs clean to Ready with exactly `writes` pod writes and `restarts` restarts.
fn assert_costs(name: &str, writes: usize, restarts: i32) -> Trace {
    let trace = Sim::new(fixture(name)).run();
    assert!(
        trace.violations.is_empty(),
        "{name}: {:#?}",
        trace.violations
    );
    assert_eq!(trace.end.state, Some(State::Ready), "{name}");
    assert_eq!(trace.end.pod_writes, writes, "{name}: pod writes");
    assert_eq!(trace.end.restarts.values().sum::<i32>(), restarts, "{name}");
    trace
}

#[test]
fn happy_path_costs_three_pod_writes_with_or_without_grace() {
    for name in ["seed-grace-30.yaml", "grace-0.yaml"] {
        assert_costs(name, 3, 1);
    }
}

/// Issue 26's write budget: a resize-only update (no image, no RestartContainer resize) costs at
/// most 3 pod writes, one with an image change at most 4; a NotRequired resize never flips
/// readiness and restarts nothing.
#[test]
fn resize_write_budget_is_three_alone_and_four_with_an_image() {
    for (name, budget, restarts) in [
        ("resize-memory-restart.yaml", 3, 1),
        ("resize-image-and-restarting-cpu.yaml", 4, 2),
    ] {
        assert_costs(name, budget, restarts);
    }
    let no_flip = assert_costs("resize-cpu-no-restart.yaml", 3, 0);
    let flipped = no_flip.entries.iter().any(|e| {
        e.decision.as_ref().is_some_and(|d| {
            d.actions.iter().any(|a| {
                a.as_write()
                    .and_then(|w| w.condition.as_ref())
                    .is_some_and(|c| !c.ready)
            })
        })
    });
    assert!(
        !flipped,
        "a NotRequired resize never takes the pod out of endpoints"
    );
}

#[test]
fn hook_path_costs_one_more_write() {
    let trace = Sim::new(fixture("hook-success.yaml")).run();
    assert_eq!(trace.end.pod_writes, 4);
}

/// Kill the operator at every write of a run, before and after the write lands, and check the
/// pod ends exactly as in the uninterrupted run: same state, images, revision, readiness, and
/// each container restarted the same number of times.
#[test]
fn a_crash_at_any_write_converges_to_the_same_pod() {
    for name in [
        "seed-grace-30.yaml",
        "hook-success.yaml",
        "image-pull-failure.yaml",
        "ordered-ready.yaml",
        "ordered-updated.yaml",
        "resize-cpu-no-restart.yaml",
        "resize-memory-restart.yaml",
        "resize-image-and-restarting-cpu.yaml",
        "resize-infeasible-rollback.yaml",
        "resize-rollback-mid-resize.yaml",
    ] {
        let base = Sim::new(fixture(name)).run();
        assert!(base.violations.is_empty(), "{name}: {:#?}", base.violations);
        for n in 1..=base.end.pod_writes {
            for crash in [Crash::BeforeWrite, Crash::AfterWrite] {
                let t = Sim::new(fixture(name)).crash_at_write(n, crash).run();
                let ctx = format!("{name}, crash {crash:?} at write {n}");
                assert!(t.violations.is_empty(), "{ctx}: {:#?}", t.violations);
                assert_eq!(t.end.state, base.end.state, "{ctx}");
                assert_eq!(t.end.images, base.end.images, "{ctx}");
                assert_eq!(t.end.revision, base.end.revision, "{ctx}");
                assert_eq!(t.end.in_place_ready, base.end.in_place_ready, "{ctx}");
                assert_eq!(
                    t.end.restarts, base.end.restarts,
                    "{ctx}: a container restarted twice"
                );
                assert_eq!(t.end.hook_runs_created, base.end.hook_runs_created, "{ctx}");
                assert_eq!(t.end.resources, base.end.resources, "{ctx}");
            }
        }
    }
}

#[test]
fn the_diagram_in_states_readme_is_current() {
    let table = table().expect("table");
    let rendered = format!(
        "{}\n```mermaid\n{}```\n\n## Transitions\n\n{}",
        README_HEAD,
        table.mermaid(),
        table.markdown()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("states/README.md");
    if std::env::var_os("GAMEDEPLOY_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "states/README.md is out of date with states/transitions.yaml; regenerate it with \
         `GAMEDEPLOY_BLESS=1 cargo test --test fsm the_diagram`"
    );
}

const README_HEAD: &str = "# The in-place update state machine

Generated from `transitions.yaml` by `GAMEDEPLOY_BLESS=1 cargo test --test fsm the_diagram`
(also printed by `gamedeploy states`). Do not edit by hand; edit `transitions.yaml`.

Persisted states are written in the pod annotation `tkex.tencent.com/inplace-update-state`;
derived states are recomputed from what the watch shows (`GracefulWait` from a persisted
`Unready` plus the observed condition, `Restarting` from container statuses), so a restarted
operator resumes without a write. Force a transition with
`kubectl annotate pod NAME tkex.tencent.com/inplace-update-force=STATE`; only edges marked
forcible are accepted.
";
