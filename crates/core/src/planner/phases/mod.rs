//! One reconcile, phase by phase. [`super::plan::plan`] runs them in this order, each taking
//! what it needs (the observed world and earlier phases' typed results) and returning its
//! decisions; no phase re-reads or changes what an earlier one decided.
//!
//! 1. [`spec`]: the spec resolved and its selector checked, or the plan that refuses it.
//! 2. [`revisions`]: the update and current revisions, the revision to create, those to prune.
//! 3. [`canary`]: where the canary steps stand, the partition they allow, their HookRuns.
//! 4. [`scale`]: the pods to create and to delete for the replica count.
//! 5. [`update`]: the pods that move now, and how (in-place step, recreate, hot patch), and
//!    the readiness gates of the pods left alone.
//! 6. [`gates`]: the preDelete gate on every deletion, postInplace HookRuns, stale HookRuns.
//! 7. [`status`]: the status, its conditions and hook lists, and when to look again.
//!
//! Then [`assemble`] puts the decisions in the order the executor must follow, as effects.

pub mod assemble;
pub mod canary;
pub mod gates;
pub mod revisions;
pub mod scale;
pub mod spec;
pub mod status;
pub mod update;

use std::collections::BTreeSet;
use std::sync::Arc;

use super::cached_pod::CachedPod;
use super::order::sort_by_name;
use crate::inplace::{Decoded, PodView};

/// The pods as every phase reads them: borrowed from the cache, where each pod's view and
/// decoded state annotation were derived once, when the watch delivered it (no per-reconcile
/// copies or JSON parsing).
pub struct Observed<'a> {
    /// Pod views sorted by name: caches hand pods out in no particular order, and the same
    /// world must give the same plan (writes, events and condition messages in the same order
    /// on every run).
    pub views: Vec<&'a PodView>,
    /// Each pod's decoded state annotation, index for index with `views`: the scheduler, the
    /// machine, the readiness gate, the status and the post hooks all read it.
    pub records: Vec<&'a Decoded>,
}

impl<'a> Observed<'a> {
    pub fn new(pods: &'a [Arc<CachedPod>]) -> Self {
        let mut sorted: Vec<&CachedPod> = pods.iter().map(|p| p.as_ref()).collect();
        sort_by_name(&mut sorted, |p| &p.view().name);
        Observed {
            views: sorted.iter().map(|p| p.view()).collect(),
            records: sorted.iter().map(|p| p.record()).collect(),
        }
    }

    /// The pods (with their records) not in `deleting`, in order.
    pub fn remaining<'s>(
        &'s self,
        deleting: &'s BTreeSet<&str>,
    ) -> impl Iterator<Item = (&'a PodView, &'a Decoded)> + 's {
        self.views
            .iter()
            .zip(&self.records)
            .filter(|(p, _)| !deleting.contains(p.name.as_str()))
            .map(|(p, r)| (*p, *r))
    }
}
