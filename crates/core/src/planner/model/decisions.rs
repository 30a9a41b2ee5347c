//! What the phases decide, by kind, before the assemble phase puts it in the executor's
//! order: one field per kind of write, so a decision nobody assembles does not compile.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::effect::EventNote;
use crate::api::{GameDeploymentStatus, HookStep};
use crate::inplace::{HookRunRequest, MachineStep, PodWrite};

/// Why a pod is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeleteReason {
    ScaleDown,
    /// Named in `scaleStrategy.podsToDelete`.
    Requested,
    /// RollingUpdate, or an in-place update whose change cannot be applied in place.
    Recreate(String),
}

/// The decisions of one reconcile, by kind, before they are put in order as effects.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decisions {
    pub(crate) revisions: Option<RevisionPlan>,
    pub(crate) create: Vec<Pod>,
    pub(crate) delete: Vec<(String, DeleteReason)>,
    /// In-place machine outcomes, by pod name (only those with something to do or say).
    pub(crate) machines: Vec<(String, MachineStep)>,
    /// Hot patches to write, by pod name.
    pub(crate) hot_patches: Vec<(String, PodWrite)>,
    /// `InPlaceUpdateReady=True` for pods no update holds (new pods, pods an update left):
    /// every pod carries the readiness gate, so without this it would never become Ready.
    pub(crate) release_gates: Vec<(String, PodWrite)>,
    /// Pods whose deletion waits for their preDelete hook: the HookRun to create, if it is
    /// not there yet, and the write marking the pod, if it is not marked yet.
    pub(crate) pre_delete: Vec<(String, Option<HookRunRequest>, Option<PodWrite>)>,
    /// PostInplace HookRuns to create, by pod name.
    pub(crate) post_hooks: Vec<(String, HookRunRequest)>,
    /// Pod HookRuns whose pod is gone or on another revision, and canary HookRuns of another
    /// revision.
    pub(crate) stale_hook_runs: Vec<String>,
    /// The HookRun the current canary hook step needs.
    pub(crate) canary_run: Option<StepRun>,
    /// Canary HookRuns another step or attempt superseded, still running.
    pub(crate) terminate_hook_runs: Vec<String>,
    /// Set `updateStrategy.paused: true` (a canary pause without duration, a failed hook step).
    pub(crate) pause_updates: bool,
    pub(crate) notes: Vec<EventNote>,
    pub(crate) status: GameDeploymentStatus,
    /// When to reconcile again even if nothing changes.
    pub(crate) requeue_at: Option<Timestamp>,
}

/// What to do with ControllerRevisions this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RevisionPlan {
    /// Name of the update revision.
    pub(crate) update: String,
    /// The revision to create, when the template is new.
    pub(crate) create: Option<ControllerRevision>,
    /// The collision count to record in status.
    pub(crate) collision_count: Option<i32>,
    /// Revisions to delete (beyond the history limit and unused).
    pub(crate) prune: Vec<String>,
    /// Template by revision name, for every known revision (the new one included).
    pub(crate) templates: BTreeMap<String, Value>,
    /// Revision names, oldest first.
    pub(crate) order: Vec<String>,
}

/// The HookRun a hook step needs, not there yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepRun {
    pub(crate) name: String,
    /// The revision, the step's index, and the hash of the steps it is made for (its labels).
    pub(crate) revision: String,
    pub(crate) index: usize,
    pub(crate) hash: String,
    pub(crate) hook: HookStep,
}
