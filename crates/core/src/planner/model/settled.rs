//! Settled pods, tallied as watch events arrive. A GameDeployment at rest (every pod Running,
//! Ready, released by its readiness gate, no in-place update under way) is
//! what a fleet is nearly all the time, and what most reconciles find: a pod's annotation or
//! status changed, or a timer fired. For such a GameDeployment the plan needs no pod, only how
//! many there are on each revision and when the last became Ready; the roster keeps that tally
//! per controller (`roster.rs`), so the plan (`planner::settled`) costs the same for 10 pods
//! as for 10,000.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use jiff::Timestamp;

use super::cached_pod::CachedPod;
use crate::inplace::{Decoded, State};
use crate::names;

/// What a settled pod adds to its tally: its revision and when it became Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledPod<'a> {
    pub revision: &'a str,
    pub ready_since: Option<Timestamp>,
}

/// The pod as a settled pod, or `None` when the plan may have something to do or say about
/// it: it is being deleted; not Running, Ready and released by the `InPlaceUpdateReady` gate;
/// without a revision label; asked to force its machine; waiting for a hot patch; or its
/// in-place record is anything but absent or `Ready` (a machine under way, an update abandoned
/// or failed, a record that does not read).
pub fn settled(pod: &CachedPod) -> Option<SettledPod<'_>> {
    let view = pod.view();
    let at_rest = !view.deleting
        && view.ready
        && view.phase.as_deref() == Some("Running")
        && view.in_place_ready == Some(true)
        && view.unapplied_hot_patch.is_none()
        && !view.annotations.contains_key(names::ANNOTATION_FORCE);
    let record_at_rest = match pod.decoded() {
        Decoded::Missing => true,
        Decoded::Valid(r) => r.state == State::Ready,
        Decoded::Unsupported { .. } | Decoded::Corrupt { .. } => false,
    };
    (at_rest && record_at_rest).then_some(())?;
    Some(SettledPod {
        revision: view.revision.as_deref()?,
        ready_since: view.ready_since,
    })
}

/// A controller's pods, tallied: kept by adding and taking out one pod at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pods: i64,
    unsettled: i64,
    /// Settled pods per revision.
    revisions: BTreeMap<String, i64>,
    /// Settled pods per Ready transition time: a multiset, so the latest survives removals.
    ready_since: BTreeMap<Timestamp, i64>,
    /// Settled pods Ready without a transition time.
    ready_since_unknown: i64,
}

/// Adds `by` to the count at `key`, dropping it at zero.
pub(super) fn bump<K: Ord>(map: &mut BTreeMap<K, i64>, key: K, by: i64) {
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            *e.get_mut() += by;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Entry::Vacant(e) => {
            e.insert(by);
        }
    }
}

impl Tally {
    /// Counts `pod` in, `by` times (-1 to take it out).
    pub fn count(&mut self, pod: &CachedPod, by: i64) {
        self.pods += by;
        let Some(s) = settled(pod) else {
            self.unsettled += by;
            return;
        };
        match self.revisions.get_mut(s.revision) {
            // No key copied for the pods of a revision already counted (all but the first).
            Some(n) if *n + by != 0 => *n += by,
            _ => bump(&mut self.revisions, s.revision.to_owned(), by),
        }
        match s.ready_since {
            Some(t) => bump(&mut self.ready_since, t, by),
            None => self.ready_since_unknown += by,
        }
    }

    /// The tally as a plan reads it: `Some` when every pod is settled.
    pub fn settled(&self) -> Option<Settled> {
        if self.unsettled != 0 {
            return None;
        }
        let count = |n: &i64| i32::try_from(*n).ok();
        Some(Settled {
            revisions: (self.revisions.iter())
                .map(|(r, n)| Some((r.clone(), count(n)?)))
                .collect::<Option<_>>()?,
            pods: count(&self.pods)?,
            latest_ready: self.ready_since.last_key_value().map(|(t, _)| *t),
            ready_since_unknown: self.ready_since_unknown > 0,
        })
    }
}

/// A controller whose pods are all settled: what its plan reads instead of the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// How many pods are on each revision (a revision or two: the update revision, and the
    /// one a partition keeps pods on).
    pub revisions: BTreeMap<String, i32>,
    /// How many pods (all of them settled).
    pub pods: i32,
    /// The latest Ready transition of a pod.
    pub latest_ready: Option<Timestamp>,
    /// Whether some pod is Ready without a transition time.
    pub ready_since_unknown: bool,
}
