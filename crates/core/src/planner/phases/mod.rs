//! One reconcile, phase by phase. [`super::plan::plan`] runs them in this order, each taking
//! what it needs (the observed world and earlier phases' typed results) and returning its
//! decisions; no phase re-reads or changes what an earlier one decided.
//!
//! 1. [`spec`]: the spec resolved and its selector checked, or the plan that refuses it.
//! 2. [`revisions`]: the update and current revisions, the revision to create, those to prune.
//! 3. [`scale`]: the pods to create and to delete for the replica count.
//! 4. [`update`]: the pods that move now, and how (in-place step, recreate, hot patch), and
//!    the readiness gates of the pods left alone.
//! 5. [`gates`]: the preDelete gate on every deletion, postInplace HookRuns, stale HookRuns.
//! 6. [`status`]: the status, its conditions and hook lists, and when to look again.
//!
//! Then [`assemble`] puts the decisions in the order the executor must follow, as effects.

pub mod assemble;
pub mod gates;
pub mod revisions;
pub mod scale;
pub mod spec;
pub mod status;
pub mod update;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::inplace::{self, Decoded, PodView};

/// The pods as every phase reads them, computed once per reconcile.
pub struct Observed {
    /// Pod views sorted by name: caches hand pods out in no particular order, and the same
    /// world must give the same plan (writes, events and condition messages in the same order
    /// on every run).
    pub views: Vec<PodView>,
    /// Each pod's state annotation, decoded once (decoding is JSON parsing), index for index
    /// with `views`: the scheduler, the machine, the readiness gate, the status and the post
    /// hooks all read it.
    pub records: Vec<Decoded>,
}

impl Observed {
    pub fn new(pods: &[Arc<Pod>]) -> Self {
        let mut views: Vec<PodView> = pods.iter().map(|p| PodView::from_pod(p)).collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        let records = views
            .iter()
            .map(|p| inplace::decode(&p.annotations))
            .collect();
        Observed { views, records }
    }

    /// The pods (with their records) not in `deleting`, in order.
    pub fn remaining<'a>(
        &'a self,
        deleting: &'a BTreeSet<&str>,
    ) -> impl Iterator<Item = (&'a PodView, &'a Decoded)> + 'a {
        self.views
            .iter()
            .zip(&self.records)
            .filter(|(p, _)| !deleting.contains(p.name.as_str()))
    }
}
