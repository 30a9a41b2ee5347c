use jiff::Timestamp;
use strum::IntoEnumIterator;

use super::*;
use crate::api::HookPhase;
use crate::inplace::machine::test_api::settled_pod;
use crate::inplace::machine::{Policy, Target, advance};
use crate::inplace::observe::PodView;
use crate::inplace::record::Record;

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn pod(
    deleting: bool,
    force: Option<&str>,
    revision: Option<&str>,
    ready: Option<bool>,
) -> PodView {
    let mut p = PodView {
        revision: revision.map(Into::into),
        deleting,
        in_place_ready: ready,
        ..settled_pod()
    };
    if let Some(f) = force {
        p.annotations
            .insert(names::ANNOTATION_FORCE.into(), f.into());
    }
    p
}

/// Every record the machine can load: none, unreadable ones, and one per state and revision.
fn records() -> Vec<Decoded> {
    let mut out = vec![
        Decoded::Missing,
        Decoded::Unsupported { version: 99 },
        Decoded::Corrupt {
            error: "garbage".into(),
        },
    ];
    for state in State::iter() {
        for revision in ["r1", "r2"] {
            out.push(Decoded::Valid(Record {
                state,
                unready_since: Some("2026-01-01T00:09:00Z".parse().unwrap()),
                ..Record::start(revision, "2026-01-01T00:00:00Z".parse().unwrap())
            }));
        }
    }
    out
}

/// Over every state the machine has (and a missing or unreadable record), with and without a
/// force request, selected or not, on or off the target revision, marked unready or not, being
/// deleted or not: whenever the fast path answers, its answer is the full step's.
#[test]
fn the_fast_path_answers_exactly_what_the_machine_would() {
    let target = Target {
        revision: "r2".into(),
        images: [("app".to_string(), "app:2".to_string())].into(),
        ..Default::default()
    };
    let policy = Policy {
        grace_period_seconds: 30,
        deadline_seconds: Some(60),
        ..Default::default()
    };
    let (mut answered, mut compared) = (0, 0);
    for decoded in records() {
        for deleting in [false, true] {
            for force in [None, Some("Pending"), Some("Ready"), Some("nonsense")] {
                for revision in [None, Some("r1"), Some("r2")] {
                    for ready in [None, Some(true), Some(false)] {
                        for selected in [false, true] {
                            for hook in [None, Some(HookPhase::Successful)] {
                                let pod = pod(deleting, force, revision, ready);
                                let input = Input {
                                    pod: &pod,
                                    target: &target,
                                    policy: &policy,
                                    hook,
                                    selected,
                                    now: now(),
                                };
                                compared += 1;
                                if let Some(fast) = at_rest(&input, &decoded) {
                                    answered += 1;
                                    assert_eq!(
                                        fast,
                                        advance(&input, &decoded),
                                        "{decoded:?} deleting={deleting} force={force:?} \
                                         revision={revision:?} ready={ready:?} selected={selected}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(answered > compared / 10, "{answered} of {compared}");
}

/// The settled pods of a no-op reconcile all take the fast path.
#[test]
fn settled_pods_take_the_fast_path() {
    let target = Target {
        revision: "r1".into(),
        ..Default::default()
    };
    let policy = Policy::default();
    let settled = pod(false, None, Some("r1"), Some(true));
    for (decoded, state) in [
        (Decoded::Missing, None),
        (
            Decoded::Valid(Record {
                state: State::Ready,
                ..Record::start("r1", now())
            }),
            Some(State::Ready),
        ),
    ] {
        for selected in [false, true] {
            let input = Input {
                pod: &settled,
                target: &target,
                policy: &policy,
                hook: None,
                selected,
                now: now(),
            };
            let step = at_rest(&input, &decoded).expect("at rest");
            assert_eq!(step.state, state);
        }
    }
}
