//! What one reconcile does, as one ordered list of finished writes and events. The executor
//! (`crates/operator/src/execute.rs`) runs them in order and decides nothing: each write
//! carries the event its success raises and what its failure means, judged by the
//! planner's `rules/outcome.rs`.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;

use crate::api::{GameDeploymentStatus, HookRun};
use crate::inplace::PodWrite;

/// One reconcile decided: what to write, in order, and when to look again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Revisions, pods, HookRuns, events, and last the status: see [`Effect`].
    pub effects: Vec<Effect>,
    /// When to reconcile again even if nothing changes.
    pub requeue_at: Option<Timestamp>,
}

impl Plan {
    /// The status the plan writes (before the failures of its writes are merged in).
    pub fn status(&self) -> Option<&GameDeploymentStatus> {
        self.effects.iter().rev().find_map(|e| match e {
            Effect::WriteStatus(s) => Some(s),
            _ => None,
        })
    }
}

/// One thing the executor does. Order matters for safety: revisions before the pods that
/// reference them, a pod's checkpoint before what follows it, the status last.
// A plan holds one effect per write and is consumed once: boxing pods and revisions would
// cost an allocation each for no measurable gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    CreateRevision(Write<ControllerRevision>),
    /// Prunes a revision no pod uses, by name.
    DeleteRevision(Write<String>),
    /// Creates a pod; consecutive creations with the same `batch` are sent at once (slow start).
    CreatePod {
        pod: Write<Pod>,
        batch: usize,
    },
    /// Deletes a pod; `uid` makes sure a pod recreated under the same name is left alone.
    DeletePod {
        pod: Write<String>,
        uid: Option<String>,
    },
    /// Patches a pod (or its status) named `pod`.
    WritePod {
        pod: String,
        write: Write<PodWrite>,
    },
    CreateHookRun(Write<HookRunToCreate>),
    /// Deletes a HookRun whose pod is gone or has moved on, by name.
    DeleteHookRun(Write<String>),
    /// Stops a HookRun (`spec.terminate: true`) superseded by another canary step, by name.
    TerminateHookRun(Write<String>),
    /// Sets the GameDeployment's `spec.updateStrategy.paused` to true, if the object is still
    /// at this `resourceVersion` (so a user's resume in between is not undone): a canary pause
    /// without duration or a failed canary hook step stops the rollout.
    PauseUpdates(Write<String>),
    /// An event; skipped when a failure stopped its `chain` (see [`Write::chain`]).
    Event {
        note: EventNote,
        chain: Option<String>,
    },
    /// The status, written last if it changed, with the failures of the writes before it
    /// merged in by `outcome::status_after` (in `rules/`).
    WriteStatus(GameDeploymentStatus),
}

/// A HookRun to create, or why it cannot be built (a missing HookTemplate, a template argument
/// without value): reported as a failed creation, so the reconcile retries.
#[derive(Debug, Clone, PartialEq)]
pub enum HookRunToCreate {
    Ready(Box<HookRun>),
    Unbuildable { name: String, why: String },
}

impl HookRunToCreate {
    /// The start of the failure message: the API's error follows it; an unbuildable run's
    /// `why` says it all.
    pub(crate) fn failure_prefix(&self) -> String {
        match self {
            HookRunToCreate::Ready(run) => format!(
                "creating HookRun {}: ",
                run.metadata.name.as_deref().unwrap_or_default()
            ),
            HookRunToCreate::Unbuildable { .. } => String::new(),
        }
    }
}

/// One API write with what its outcome means.
#[derive(Debug, Clone, PartialEq)]
pub struct Write<T> {
    pub object: T,
    /// The event a success raises.
    pub on_success: Option<EventNote>,
    pub on_failure: OnFailure,
    /// The sequence this write belongs to (a pod's checkpoint and what follows it, the pods a
    /// reconcile creates): skipped once a gating write of it failed (see `rules/outcome.rs`).
    pub chain: Option<String>,
    /// Whether the rest of the chain depends on this write, so that its failure stops it.
    pub gates_chain: bool,
}

impl<T> Write<T> {
    /// A write whose failure is `on_failure`, raising no event when it succeeds.
    pub(crate) fn new(object: T, on_failure: OnFailure) -> Self {
        Write {
            object,
            on_success: None,
            on_failure,
            chain: None,
            gates_chain: false,
        }
    }

    pub(crate) fn on_success(mut self, note: EventNote) -> Self {
        self.on_success = Some(note);
        self
    }

    /// Part of `chain`: skipped once a gating write of it failed.
    pub(crate) fn in_chain(mut self, chain: &str) -> Self {
        self.chain = Some(chain.to_string());
        self
    }

    /// Part of `chain`, and the rest of it depends on this write.
    pub(crate) fn gating(mut self, chain: &str) -> Self {
        self.gates_chain = true;
        self.in_chain(chain)
    }
}

/// What a failed write means; judged by `outcome::judge` (in `rules/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnFailure {
    /// An error that means the work is done: a delete that finds nothing (quiet), a create
    /// that finds the object already there (a success).
    pub tolerated: Option<ApiErrorKind>,
    /// A conflict only means the cache was stale: retried, not reported.
    pub conflict_retries: bool,
    pub consequence: Consequence,
}

/// What a failure (not tolerated) leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consequence {
    /// Logged only: clean-up the next reconcile repeats.
    Logged,
    /// Counted, so the reconcile retries soon; nothing for users to fix.
    Retried,
    /// Counted, and reported as a status condition and (if `event`) a Warning event.
    Reported(Report),
}

/// How a failure is reported: condition type and reason, and the message before the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub condition: &'static str,
    pub reason: &'static str,
    /// The message is this followed by the error.
    pub prefix: String,
    /// Where the Warning event goes, if there is one.
    pub event: Option<Regarding>,
}

impl OnFailure {
    /// Logged only.
    pub(crate) fn logged() -> Self {
        OnFailure {
            tolerated: None,
            conflict_retries: false,
            consequence: Consequence::Logged,
        }
    }

    /// Counted and retried soon.
    pub(crate) fn retried() -> Self {
        OnFailure {
            consequence: Consequence::Retried,
            ..OnFailure::logged()
        }
    }

    /// Reported as a condition and, if `event`, a Warning event.
    pub(crate) fn reported(report: Report) -> Self {
        OnFailure {
            consequence: Consequence::Reported(report),
            ..OnFailure::logged()
        }
    }

    pub(crate) fn tolerating(mut self, kind: ApiErrorKind) -> Self {
        self.tolerated = Some(kind);
        self
    }

    pub(crate) fn retrying_conflicts(mut self) -> Self {
        self.conflict_retries = true;
        self
    }
}

/// The kinds of API error a write's outcome depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    NotFound,
    AlreadyExists,
    /// A 409 that is not AlreadyExists: the object changed since it was read.
    Conflict,
    Other,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regarding {
    GameDeployment,
    Pod(String),
}

/// An event the reconcile raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    pub regarding: Regarding,
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl EventNote {
    /// A Normal event on the GameDeployment.
    pub(crate) fn normal(reason: &str, message: String) -> Self {
        EventNote {
            regarding: Regarding::GameDeployment,
            warning: false,
            reason: reason.to_string(),
            message,
        }
    }

    /// A Warning event on the GameDeployment.
    pub(crate) fn warning(reason: &str, message: String) -> Self {
        EventNote {
            warning: true,
            ..EventNote::normal(reason, message)
        }
    }
}
