//! The names of the machine: its states and the triggers that move it. These names are a
//! contract: they appear in the pod annotation, in `kubectl annotate` force requests and in
//! `states/transitions.yaml`.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

/// Where one pod's in-place update stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    EnumIter,
    IntoStaticStr,
)]
pub enum State {
    /// Chosen for update; nothing written yet. Lives only in memory.
    Pending,
    /// Waiting for the preInplaceUpdateStrategy HookRun to succeed. Persisted.
    HookCheck,
    /// `InPlaceUpdateReady=False` written; not yet seen back from the watch. Persisted.
    Unready,
    /// Unready observed; waiting out `gracePeriodSeconds` from the durable `unreadySince`.
    /// Derived from a persisted `Unready` plus the observed condition.
    GracefulWait,
    /// New images (and template metadata, revision label) written to the pod. Persisted.
    ImagePatched,
    /// Kubelet is replacing the changed containers. Derived from container statuses.
    Restarting,
    /// Every changed container runs a new instance and is ready; `InPlaceUpdateReady=True`.
    /// Persisted.
    Ready,
    /// The update did not complete (pull failure, crash loop, deadline, unreadable state).
    /// Persisted; counts as unavailable; left by a new revision, by a force, or by recovery.
    Failed,
    /// A user abandoned the update; readiness restored, the pod is not retried for this
    /// revision unless forced back to `Pending`. Persisted.
    Abandoned,
    /// The state annotation could not be read (garbage or a version from a newer operator).
    /// Derived; never written.
    Unknown,
    /// Ordered `inPlaceUpdateStrategy.policy` only: the containers patched so far reached the
    /// policy's bar (ready for `OrderedReady`, running the new image for `OrderedUpdated`) and
    /// more changed containers remain; the next one is patched at once. Derived from a
    /// persisted `ImagePatched` (whose record lists the containers patched so far) plus
    /// container statuses.
    ContainerUpdated,
    /// Resize only, no container restarts: the record for the target revision (desired
    /// resources, revision label, template metadata) is written; readiness is untouched.
    /// Persisted.
    Resizing,
    /// The resize was sent through `pods/resize`: the pod spec's cpu/memory are the target's
    /// and the kubelet is applying them. Derived from the spec (a resize carries no metadata).
    ResizeApplying,
    /// The kubelet reports `PodResizePending` with reason `Deferred`: the node cannot fit the
    /// resize now but might later. Derived; bounded by the deadline.
    ResizeDeferred,
    /// The kubelet reports `PodResizePending` with reason `Infeasible`: the node can never fit
    /// it. Readiness restored; `infeasibleResizePolicy` decides (Recreate or Hold). Persisted.
    ResizeInfeasible,
}

impl State {
    /// States written into the pod annotation (the others are derived or in memory).
    pub fn is_persisted(self) -> bool {
        matches!(
            self,
            State::HookCheck
                | State::Unready
                | State::ImagePatched
                | State::Ready
                | State::Failed
                | State::Abandoned
                | State::Resizing
                | State::ResizeInfeasible
        )
    }

    /// States in which the machine has nothing left to do for its revision.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Ready | State::Failed | State::Abandoned | State::ResizeInfeasible
        )
    }
}

/// Why the machine moved.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    EnumIter,
    IntoStaticStr,
)]
pub enum Trigger {
    /// The scheduler picked the pod for the update revision.
    Selected,
    /// Only template metadata changed: one pod write, no restart, no readiness flip.
    MetadataOnly,
    /// A preInplaceUpdateStrategy hook is configured.
    HookConfigured,
    /// No hook is configured.
    NoHook,
    /// The HookRun reached `Successful`.
    HookSucceeded,
    /// The HookRun reached `Failed`, `Error` or `Inconclusive`.
    HookFailed,
    /// `preInplaceUpdateStrategy.retry` runs a hook that did not succeed again.
    HookRetried,
    /// The watch shows `InPlaceUpdateReady=False`.
    UnreadyObserved,
    /// Someone set `InPlaceUpdateReady` back while we needed it False; reassert it and
    /// restart the grace period, since Services may have re-added the pod.
    ReadinessRestored,
    /// `gracePeriodSeconds` have passed since `unreadySince`.
    GraceElapsed,
    /// A changed container is being replaced by kubelet.
    RestartObserved,
    /// Every changed container runs a new, ready instance.
    Completed,
    /// A changed container cannot pull its image.
    ImagePullFailed,
    /// A changed container crash-loops.
    CrashLoop,
    /// The per-pod deadline passed.
    DeadlineExceeded,
    /// The target revision changed (new revision, or rollback after images were patched).
    Retargeted,
    /// The target went back to the pod's revision before any image was patched.
    RolledBack,
    /// A user forced this transition with the force annotation.
    Forced,
    /// The state annotation is garbage.
    CorruptState,
    /// Ordered policy: every container patched so far reached the policy's bar.
    ContainerProgressed,
    /// Ordered policy: the next changed container, in pod-spec order, gets its new image.
    NextContainer,
    /// Only cpu/memory change and no changed resource restarts its container: resize without a
    /// readiness flip or grace period.
    ResizeOnly,
    /// The resize was sent (the pod spec carries the target's cpu/memory).
    ResizeRequested,
    /// The kubelet applied the resize: observedGeneration caught up, no resize condition, and
    /// every container's status resources equal its spec's.
    Resized,
    /// `PodResizePending` with reason `Deferred`.
    Deferred,
    /// `PodResizePending` with reason `Infeasible`.
    Infeasible,
}
