//! Which effects of a plan may be sent at once: a run of consecutive effects that each concern
//! one pod (its writes, and the HookRuns and events of its chain), split into lanes. A lane
//! holds everything about one pod and everything of one chain, in plan order; different lanes
//! touch different pods and different chains, so nothing one lane sends depends on another.
//!
//! Everything else (revisions, creations, deletions, the HookRuns and events of no chain, the
//! status) ends the run: what those depend on, the planner put before them.

use std::collections::HashMap;

use gamedeploy_core::inplace::PodWrite;
use gamedeploy_core::planner::model::{Effect, EventNote, HookRunToCreate, Write};

/// One effect of a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Step<'p> {
    Write(Request<'p>),
    /// An event of a pod's chain: sent when the steps before it are settled.
    Event {
        note: &'p EventNote,
        chain: &'p str,
    },
}

/// A write of a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Request<'p> {
    /// A patch of `pod`, or of its status or resize subresource.
    Pod {
        pod: &'p str,
        write: &'p Write<PodWrite>,
    },
    /// A HookRun of a pod's chain (its pre-inplace or preDelete hook).
    HookRun(&'p Write<HookRunToCreate>),
}

impl<'p> Step<'p> {
    /// The chain the step belongs to, if any.
    pub(super) fn chain(&self) -> Option<&'p str> {
        match *self {
            Step::Write(Request::Pod { write, .. }) => write.chain.as_deref(),
            Step::Write(Request::HookRun(w)) => w.chain.as_deref(),
            Step::Event { chain, .. } => Some(chain),
        }
    }
}

/// What a lane is keyed by: a pod it writes, or a chain it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'p> {
    Pod(&'p str),
    Chain(&'p str),
}

/// Consecutive effects about single pods, in plan order, and the lanes they run in.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Segment<'p> {
    pub steps: Vec<Step<'p>>,
    /// Indices into `steps`; each lane in plan order, the lanes in the order of their first
    /// step.
    pub lanes: Vec<Vec<usize>>,
}

impl<'p> Segment<'p> {
    /// The segment `effects` starts with: empty when their first effect is not about one pod.
    /// It ends before the first effect that is not, and before one that would join two lanes
    /// (a pod written by one chain and then by another): that one starts the next segment, so
    /// each pod's writes keep their order.
    pub(super) fn starting(effects: &'p [Effect]) -> Segment<'p> {
        let mut segment = Segment::default();
        let mut lane_of: HashMap<Key<'p>, usize> = HashMap::new();
        for effect in effects {
            let Some((step, pod, chain)) = step(effect) else {
                break;
            };
            let keys: Vec<Key<'p>> = [pod.map(Key::Pod), chain.map(Key::Chain)]
                .into_iter()
                .flatten()
                .collect();
            let mut lanes = keys.iter().filter_map(|k| lane_of.get(k).copied());
            let lane = match (lanes.next(), lanes.next()) {
                (Some(a), Some(b)) if a != b => break,
                (Some(a), _) => a,
                (None, _) => {
                    segment.lanes.push(Vec::new());
                    segment.lanes.len() - 1
                }
            };
            for k in keys {
                lane_of.insert(k, lane);
            }
            segment.lanes[lane].push(segment.steps.len());
            segment.steps.push(step);
        }
        segment
    }
}

/// `effect` as a step, with the pod it writes and its chain; `None` if it is not about one pod.
fn step(effect: &Effect) -> Option<(Step<'_>, Option<&str>, Option<&str>)> {
    match effect {
        Effect::WritePod { pod, write } => Some((
            Step::Write(Request::Pod { pod, write }),
            Some(pod),
            write.chain.as_deref(),
        )),
        Effect::CreateHookRun(w) => {
            let chain = w.chain.as_deref()?;
            Some((Step::Write(Request::HookRun(w)), None, Some(chain)))
        }
        Effect::Event {
            note,
            chain: Some(chain),
        } => Some((Step::Event { note, chain }, None, Some(chain))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gamedeploy_core::api::GameDeploymentStatus;
    use gamedeploy_core::inplace::Endpoint;
    use gamedeploy_core::planner::model::{OnFailure, Regarding};

    fn write(pod: &str, chain: Option<&str>) -> Effect {
        let mut write = Write {
            object: PodWrite::new(Endpoint::Pod, None),
            on_success: None,
            on_failure: OnFailure {
                tolerated: None,
                conflict_retries: false,
                consequence: gamedeploy_core::planner::model::Consequence::Logged,
            },
            chain: None,
            gates_chain: false,
        };
        if let Some(c) = chain {
            write.chain = Some(c.to_string());
            write.gates_chain = true;
        }
        Effect::WritePod {
            pod: pod.to_string(),
            write,
        }
    }

    fn event(chain: &str) -> Effect {
        Effect::Event {
            note: EventNote {
                regarding: Regarding::GameDeployment,
                warning: false,
                reason: "R".into(),
                message: "m".into(),
            },
            chain: Some(chain.to_string()),
        }
    }

    #[test]
    fn each_pods_writes_and_chain_share_a_lane_and_other_pods_get_their_own() {
        let effects = vec![
            write("a", Some("in-place/a")),
            event("in-place/a"),
            write("b", Some("in-place/b")),
            // Released by another phase, unchained: still after a's checkpoint.
            write("a", None),
            write("c", None),
            event("in-place/b"),
            Effect::WriteStatus(GameDeploymentStatus::default()),
        ];
        let s = Segment::starting(&effects);
        assert_eq!(s.steps.len(), 6, "the status ends the segment");
        assert_eq!(s.lanes, vec![vec![0, 1, 3], vec![2, 5], vec![4]]);
        assert!(Segment::starting(&effects[6..]).steps.is_empty());
    }

    #[test]
    fn a_pod_claimed_by_two_lanes_starts_the_next_segment() {
        let effects = vec![
            write("a", None),
            event("pre-delete/a"),
            // Joins the lane of pod a and the lane of chain pre-delete/a: not at once.
            write("a", Some("pre-delete/a")),
            write("b", None),
        ];
        let s = Segment::starting(&effects);
        assert_eq!(s.lanes, vec![vec![0], vec![1]]);
        let rest = Segment::starting(&effects[2..]);
        assert_eq!(rest.lanes, vec![vec![0], vec![1]]);
    }
}
