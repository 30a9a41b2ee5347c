//! The machine's step for a pod at rest, without running the machine: what [`advance`]
//! returns for a settled pod, known from a few fields. A no-op reconcile of 10,000 settled
//! pods stepped 10,000 machines that each loaded, derived, decided nothing and finished
//! (14 % of the plan's instructions); the planner asks here first.
//!
//! [`advance`]: super::advance

use super::machine::{Input, MachineStep};
use super::record::Decoded;
use super::state::State;
use crate::names;

/// The step [`super::advance`] would return for `input` and `decoded`, when the machine
/// provably has nothing to do: no transition, no action, no wake-up. `None`: run the machine.
///
/// At rest means: a pod being deleted (the machine never writes one), or a pod with no record
/// or a `Ready`/`Abandoned` one (nothing derives from those), no force request (a force is
/// judged and consumed by a write), and no update to start (not selected, already on the
/// target revision, or an update to the target abandoned). `Ready` and `Abandoned` are
/// terminal, so no deadline wakes them either.
pub fn at_rest(input: &Input, decoded: &Decoded) -> Option<MachineStep> {
    let step = |state| MachineStep {
        transitions: Vec::new(),
        state,
        actions: Vec::new(),
        wake_at: None,
    };
    let pod = input.pod;
    if pod.deleting {
        return Some(step(None));
    }
    if pod.annotations.contains_key(names::ANNOTATION_FORCE) {
        return None;
    }
    let target = input.target.revision.as_str();
    let stays = !input.selected || pod.revision.as_deref() == Some(target);
    match decoded {
        Decoded::Missing if stays => Some(step(None)),
        Decoded::Valid(r) if r.state == State::Ready && stays => Some(step(Some(State::Ready))),
        Decoded::Valid(r) if r.state == State::Abandoned && (stays || r.revision == target) => {
            Some(step(Some(State::Abandoned)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
