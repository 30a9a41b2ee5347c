//! Forcing a machine: which requests the operator accepts, and what it does with them. The
//! machine and `gamedeploy force` (through `check_force`, beside the machine) both judge a
//! request here, so the command line can refuse exactly what the operator would refuse, with
//! the same words, before anything is written.

use super::state::State;
use super::table::{TableError, table};
use crate::names;

/// A forcible edge the operator will take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forced {
    pub from: State,
    pub to: State,
}

/// Why a force request is refused. The messages are the operator's Warning event
/// (`InPlaceUpdateForceRefused`), so they say what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForceRefused {
    #[error("{annotation}={raw:?} is not a state; states are {states}", annotation = names::ANNOTATION_FORCE, states = list(&all_states()))]
    NotAState { raw: String },
    #[error("cannot force {to}: no in-place update has run on this pod")]
    NoMachine { to: State },
    #[error(
        "cannot force {from} -> {to}: not a forcible transition; from {from} you may force {allowed}",
        allowed = if allowed.is_empty() { "nothing".to_string() } else { list(allowed) }
    )]
    NotForcible {
        from: State,
        to: State,
        allowed: Vec<State>,
    },
    /// The operator never decides for a pod that is being deleted, so it would drop the request.
    #[error("the pod is being deleted; the operator no longer updates it")]
    Deleting,
    /// An operator defect (the compiled-in table is broken); the operator ignores the request.
    #[error("{0}")]
    Table(String),
}

fn all_states() -> Vec<State> {
    <State as strum::IntoEnumIterator>::iter().collect()
}

fn list(states: &[State]) -> String {
    states
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges the request `raw` (the force annotation's value) against a machine in `current`
/// (`None`: no machine has run on the pod), as the operator does.
pub(super) fn check(current: Option<State>, raw: &str) -> Result<Forced, ForceRefused> {
    let table = table().map_err(|e: &TableError| ForceRefused::Table(e.to_string()))?;
    let Ok(to) = raw.trim().parse::<State>() else {
        return Err(ForceRefused::NotAState {
            raw: raw.to_string(),
        });
    };
    let Some(from) = current else {
        return Err(ForceRefused::NoMachine { to });
    };
    if table.forcible(from, to) {
        Ok(Forced { from, to })
    } else {
        Err(ForceRefused::NotForcible {
            from,
            to,
            allowed: table.forcible_from(from),
        })
    }
}

impl Forced {
    /// What the operator does with this force, in one sentence for the user who asked. Kept
    /// beside the checks because it describes what `Run::forced` in the machine carries out.
    pub fn consequence(&self) -> String {
        let Forced { from, to } = *self;
        match to {
            State::Pending if from == State::HookCheck => {
                "The operator will start the update over \
                 with a fresh preInplace HookRun as soon as partition and maxUnavailable allow."
                    .into()
            }
            State::Pending => "The operator will start the update over as a new attempt, with a \
                 fresh deadline, as soon as partition and maxUnavailable allow."
                .into(),
            State::Unready => "The operator will skip the preInplace hook and mark the pod \
                 unready now; the grace period starts then."
                .into(),
            State::ImagePatched => "The operator will write the new images now, without waiting \
                 out the rest of the grace period; the changed containers then restart."
                .into(),
            State::Ready => format!(
                "The operator will accept the pod as updated and set {}=True without waiting \
                 for its containers.",
                names::CONDITION_INPLACE_READY
            ),
            State::Abandoned => "The operator will give the update up and restore the pod's \
                 readiness; it will not retry this revision on the pod unless you force Pending."
                .into(),
            other => format!("The operator will move the pod from {from} to {other}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::table::Node;

    #[test]
    fn refusals_name_what_is_allowed() {
        let e = check(Some(State::GracefulWait), "Ready").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot force GracefulWait -> Ready: not a forcible transition; from GracefulWait you may force ImagePatched, Abandoned"
        );
        let e = check(Some(State::Unready), "Ready").unwrap_err();
        assert!(e.to_string().ends_with("you may force nothing"), "{e}");
        let e = check(None, "Ready").unwrap_err();
        assert_eq!(e, ForceRefused::NoMachine { to: State::Ready });
        let e = check(Some(State::Failed), "Banana").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tkex.tencent.com/inplace-update-force=\"Banana\" is not a state; states are Pending, HookCheck"),
            "{e}"
        );
    }

    #[test]
    fn every_forcible_edge_is_accepted_and_explained() {
        let t = table().unwrap();
        for e in t.transitions.iter().filter(|e| e.forcible) {
            let Node::State(from) = e.from else {
                panic!("a forcible edge from the start")
            };
            let forced = check(Some(from), &format!(" {} ", e.to)).unwrap();
            assert_eq!(forced, Forced { from, to: e.to });
            assert!(
                !forced.consequence().contains(" to "),
                "{from} -> {}: a specific sentence, not the fallback",
                e.to
            );
        }
    }
}
