//! **Where a pod's in-place update state changes.** [`advance`] is a pure function from what
//! the operator observes (pod, target revision, strategy, hook result, clock) to the next
//! state and the actions that get it there. It keeps no memory between calls: everything it
//! needs is in the pod (the state annotation, which the caller passes decoded, and what
//! kubelet reports), which is what makes an operator restart resume exactly where the last
//! one stopped. [`observed_state`] and [`check_force`] run the same code without deciding.
//!
//! One call takes as many transitions as it can without new information and stops at the
//! first write, because the next decision needs to see that write come back through the
//! watch. That is also why a checkpoint always travels in the same write as its side effect.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::action::{
    Action, ConditionWrite, Endpoint, EventType, HookKind, HookRunRequest, PodWrite, attempt_name,
    retry_due,
};
use super::completion::{Progress, RestartFailure, progress, runs_new_instance};
use super::force::{self, ForceRefused, Forced};
use super::observe::{PodView, RESIZE_DEFERRED, RESIZE_INFEASIBLE};
use super::record::{ContainerSnapshot, Decoded, RECORD_VERSION, Record};
use super::resources::ContainerResources;
use super::state::{State, Trigger};
use super::table::{Node, WriteKind, table};
use crate::api::{HookPhase, InPlaceUpdatePolicy, InfeasibleResizePolicy};
use crate::{SmallMap, names};

/// What the GameDeployment wants this pod to become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The revision (ControllerRevision name) written to the pod's revision label.
    pub revision: String,
    /// Image per container name, for every container of the template.
    pub images: BTreeMap<String, String>,
    /// Template labels to set on the pod with the image patch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Template annotations to set on the pod with the image patch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Container names in pod-spec order: the order of an ordered `inPlaceUpdateStrategy.policy`
    /// (containers not listed follow, by name). Read from fixtures, never serialized.
    #[serde(default, skip_serializing)]
    pub container_order: Vec<String>,
    /// cpu/memory requests and limits to resize to, by container: the containers whose
    /// resources the revision changes (every container for a pod's own revision, so a resize
    /// in flight can be taken back). A container not listed keeps what its spec says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ContainerResources>,
    /// By container, the resources whose `resizePolicy` is `RestartContainer`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restart_on_resize: BTreeMap<String, BTreeSet<String>>,
}

/// The parts of `updateStrategy` the machine obeys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub grace_period_seconds: i64,
    /// Per-pod deadline from selection; `None` means no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<i64>,
    /// preInplaceUpdateStrategy hook template, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_template: Option<String>,
    /// The GameDeployment generation while `preInplaceUpdateStrategy.retry` is true: a pod whose
    /// hook did not succeed runs it again, once per generation (so the flag needs no writing
    /// back: set it, or touch the spec again, to retry again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_retry_generation: Option<i64>,
    /// `inPlaceUpdateStrategy.policy`: changed containers all at once, or one at a time.
    #[serde(default, skip_serializing_if = "is_disordered")]
    pub update_policy: InPlaceUpdatePolicy,
    /// `inPlaceUpdateStrategy.infeasibleResizePolicy`: what an `Infeasible` resize leads to.
    #[serde(default, skip_serializing_if = "is_recreate")]
    pub infeasible_resize: InfeasibleResizePolicy,
}

fn is_recreate(p: &InfeasibleResizePolicy) -> bool {
    *p == InfeasibleResizePolicy::Recreate
}

fn is_disordered(p: &InPlaceUpdatePolicy) -> bool {
    *p == InPlaceUpdatePolicy::DisOrdered
}

/// Everything one decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub pod: &'a PodView,
    pub target: &'a Target,
    pub policy: &'a Policy,
    /// Phase of the HookRun named in the pod's record (the HookRun API's own type), `None` if
    /// it is not in the cache.
    pub hook: Option<HookPhase>,
    /// The scheduler allows a new update to start on this pod now (budget and partition).
    /// Machines already running advance regardless.
    pub selected: bool,
    pub now: Timestamp,
}

/// One edge taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Node,
    pub to: State,
    pub trigger: Trigger,
}

/// What one call of [`advance`] decided for a pod (not to be confused with
/// `planner::rules::outcome`, which judges the result of an API write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineStep {
    pub transitions: Vec<Transition>,
    /// Current state after the transitions (`None`: no machine on this pod).
    pub state: Option<State>,
    pub actions: Vec<Action>,
    /// When to look again even if nothing changes (grace end, deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<Timestamp>,
}

impl MachineStep {
    /// Writes this decision costs.
    pub fn writes(&self) -> impl Iterator<Item = &PodWrite> {
        self.actions.iter().filter_map(Action::as_write)
    }
}

/// Guards against a defect looping forever; real chains are at most a handful of edges.
const MAX_TRANSITIONS: usize = 16;

/// Decides the next step of one pod's in-place update. `decoded` is the pod's state annotation
/// decoded: the planner's cache keeps it decoded and drops it from the view, so it is passed
/// here and never read from `input.pod` (for a view built from a whole pod, pass
/// `decode(&pod.annotations)`).
pub fn advance<'a>(input: &'a Input<'a>, decoded: &'a Decoded) -> MachineStep {
    let mut run = Run::new(input);
    if input.pod.deleting {
        return run.finish();
    }
    run.load(decoded);
    if run.state != Some(State::Unknown) {
        run.derive();
        run.force();
        while !run.stopped && run.transitions.len() < MAX_TRANSITIONS && run.decide() {
            run.derive();
        }
    }
    run.finish()
}

/// The state of `pod`'s machine as the operator sees it before deciding anything: the
/// record's state, what the watch shows of it (`GracefulWait`, `Restarting`), `Unknown` for
/// a record it cannot read, or `Failed` for an unreadable one on a pod held unready (the
/// operator fails it). `None`: no machine. What `gamedeploy status` shows and what a force is
/// judged against, computed by the same code as [`advance`] so they cannot disagree.
/// `decoded` is the pod's state annotation, decoded, as for [`advance`].
pub fn observed_state(pod: &PodView, decoded: &Decoded, now: Timestamp) -> Option<State> {
    let (target, policy) = (Target::default(), Policy::default());
    let input = Input {
        pod,
        target: &target,
        policy: &policy,
        hook: None,
        selected: false,
        now,
    };
    let mut run = Run::new(&input);
    run.load(decoded);
    if run.state != Some(State::Unknown) {
        run.derive();
    }
    run.state
}

/// Judges the force request `raw` for `pod` as the operator would on its next look at it
/// (`decoded` as for [`advance`]; `now` matters only to an unreadable record, which the
/// operator turns into `Failed`).
pub fn check_force(
    pod: &PodView,
    decoded: &Decoded,
    raw: &str,
    now: Timestamp,
) -> Result<Forced, ForceRefused> {
    if pod.deleting {
        return Err(ForceRefused::Deleting);
    }
    force::check(observed_state(pod, decoded, now), raw)
}

struct Run<'a> {
    input: &'a Input<'a>,
    state: Option<State>,
    /// Borrowed from the decoded annotation until a transition changes it: most pods of a
    /// reconcile have nothing to do, and copying 10,000 records cost more than deciding.
    record: Option<Cow<'a, Record>>,
    transitions: Vec<Transition>,
    actions: Vec<Action>,
    /// A write went out: stop until it is observed.
    stopped: bool,
    /// A force request is present and must be removed by this run's write.
    consume_force: bool,
}

impl<'a> Run<'a> {
    fn new(input: &'a Input<'a>) -> Self {
        Run {
            input,
            state: None,
            record: None,
            transitions: Vec::new(),
            actions: Vec::new(),
            stopped: false,
            consume_force: false,
        }
    }

    fn pod(&self) -> &'a PodView {
        self.input.pod
    }

    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn target(&self) -> &'a Target {
        self.input.target
    }

    fn at_target_revision(&self) -> bool {
        self.pod().revision.as_deref() == Some(self.target().revision.as_str())
    }

    fn event(&mut self, r#type: EventType, reason: &str, message: String) {
        self.actions.push(Action::event(r#type, reason, message));
    }

    // ----- reading ----------------------------------------------------------------------

    fn load(&mut self, decoded: &'a Decoded) {
        match decoded {
            Decoded::Missing => {}
            Decoded::Valid(r) => {
                self.state = Some(r.state);
                self.record = Some(Cow::Borrowed(r));
            }
            Decoded::Unsupported { version } => {
                self.state = Some(State::Unknown);
                self.event(
                    EventType::Warning,
                    names::EVENT_UNSUPPORTED_INPLACE_STATE,
                    format!(
                        "{} has version {version}, newer than this operator understands ({}); \
                         the pod is left alone: upgrade the operator, or delete the annotation \
                         to start over",
                        names::ANNOTATION_STATE,
                        RECORD_VERSION
                    ),
                );
            }
            Decoded::Corrupt { error } => {
                self.state = Some(State::Unknown);
                self.corrupt(error);
            }
        }
    }

    /// An unreadable record on a pod that is being updated (or held unready) becomes an
    /// explicit failure a user can retry; on a pod at rest it is only reported.
    fn corrupt(&mut self, error: &str) {
        let message = format!(
            "annotation {} is unreadable ({error}); force Pending with annotation {} to retry the update",
            names::ANNOTATION_STATE,
            names::ANNOTATION_FORCE
        );
        self.event(
            EventType::Warning,
            names::EVENT_INVALID_INPLACE_STATE,
            message.clone(),
        );
        let needs_attention =
            self.pod().is_marked_unready() || (self.input.selected && !self.at_target_revision());
        if !needs_attention {
            return;
        }
        let mut r = Record::start(&self.target().revision, self.now());
        r.unready_since = self.pod().is_marked_unready().then(|| self.now());
        self.record = Some(Cow::Owned(r));
        self.fail(Trigger::CorruptState, "CorruptState", message);
    }

    /// Transitions that only record what the watch shows; they never write.
    fn derive(&mut self) {
        loop {
            let next = match self.state {
                Some(State::Unready) if self.pod().is_marked_unready() => {
                    Some((State::GracefulWait, Trigger::UnreadyObserved))
                }
                Some(State::ImagePatched)
                    if self.record.as_ref().is_some_and(|r| {
                        !r.containers.is_empty()
                            && !matches!(self.container_progress(r), Overall::Untouched)
                    }) =>
                {
                    Some((State::Restarting, Trigger::RestartObserved))
                }
                Some(State::Restarting) if self.step_reached() => {
                    Some((State::ContainerUpdated, Trigger::ContainerProgressed))
                }
                // `pods/resize` carries no checkpoint: the spec says whether it was sent.
                Some(State::Resizing) if self.resize_sent() => {
                    Some((State::ResizeApplying, Trigger::ResizeRequested))
                }
                Some(State::GracefulWait) if self.resize_sent() => {
                    Some((State::ResizeApplying, Trigger::GraceElapsed))
                }
                Some(State::ResizeApplying)
                    if self.pod().resize_pending(RESIZE_DEFERRED).is_some() =>
                {
                    Some((State::ResizeDeferred, Trigger::Deferred))
                }
                _ => None,
            };
            match next {
                Some((to, trigger)) => self.go(to, trigger),
                None => return,
            }
        }
    }

    // ----- forcing ----------------------------------------------------------------------

    fn force(&mut self) {
        let Some(raw) = self.pod().annotations.get(names::ANNOTATION_FORCE) else {
            return;
        };
        self.consume_force = true;
        match force::check(self.state, raw) {
            Ok(Forced { from, to }) => self.forced(from, to),
            // A broken table is reported by `go` on every transition; nothing to add here.
            Err(ForceRefused::Table(_)) => {}
            Err(refusal) => self.event(
                EventType::Warning,
                names::EVENT_INPLACE_FORCE_REFUSED,
                refusal.to_string(),
            ),
        }
    }

    fn forced(&mut self, from: State, to: State) {
        self.event(
            EventType::Normal,
            names::EVENT_INPLACE_FORCED,
            format!(
                "{from} -> {to} forced by annotation {}",
                names::ANNOTATION_FORCE
            ),
        );
        match to {
            State::Pending => {
                let old = self.record.take().map(Cow::into_owned);
                let mut r = Record::start(&self.target().revision, self.now());
                if let Some(old) = old {
                    r.attempt = old.attempt + 1;
                    // A forced retry does not renew `retry: true`'s one retry per generation.
                    r.hook_retry_generation = old.hook_retry_generation;
                    if old.revision == r.revision {
                        // A retry keeps the instances from before the first patch, so completion
                        // is still judged against them, but counts crashes from now on: a
                        // crash loop that already failed the last attempt does not fail this one.
                        r.containers = old.containers;
                        for (name, snap) in r.containers.iter_mut() {
                            if let Some(c) = self.input.pod.containers.get(name) {
                                snap.restart_count = c.restart_count;
                            }
                        }
                        r.patched_at = old.patched_at;
                    }
                    if self.pod().is_marked_unready() {
                        r.unready_since = old.unready_since;
                    }
                }
                self.record = Some(Cow::Owned(r));
                self.go(State::Pending, Trigger::Forced);
            }
            State::Unready => self.make_unready(Trigger::Forced, false),
            State::ImagePatched => self.patch_images(Trigger::Forced),
            State::Ready => self.complete(Trigger::Forced, "forced by annotation".into()),
            State::Abandoned => {
                self.restore_readiness(State::Abandoned, Trigger::Forced, names::REASON_ABANDONED)
            }
            // The table lists no other forcible targets; `go` would report a defect.
            other => self.go(other, Trigger::Forced),
        }
    }

    // ----- deciding ---------------------------------------------------------------------

    /// Takes at most one transition; returns whether to keep going.
    fn decide(&mut self) -> bool {
        let Some(state) = self.state else {
            return self.maybe_start();
        };
        match state {
            State::Ready | State::Abandoned => self.maybe_start(),
            State::Unknown => false,
            State::Pending => {
                self.start_update();
                !self.stopped
            }
            _ => self.in_flight(state),
        }
    }

    fn maybe_start(&mut self) -> bool {
        if !self.input.selected || self.at_target_revision() {
            return false;
        }
        if let Some(r) = &self.record
            && r.state == State::Abandoned
            && r.revision == self.target().revision
        {
            return false;
        }
        self.record = Some(Cow::Owned(Record::start(
            &self.target().revision,
            self.now(),
        )));
        self.go(State::Pending, Trigger::Selected);
        true
    }

    fn changed_containers(&self) -> BTreeMap<String, String> {
        let spec = &self.pod().spec_images;
        self.target()
            .images
            .iter()
            .filter(|(name, image)| spec.get(*name) != Some(*image))
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect()
    }

    fn start_update(&mut self) {
        let retry_has_snapshot = self
            .record
            .as_ref()
            .is_some_and(|r| !r.containers.is_empty());
        self.note_resize();
        let images = !self.changed_containers().is_empty() || retry_has_snapshot;
        let (resize, restarts) = self.record.as_ref().map_or((false, false), |r| {
            (!r.resources.is_empty(), !r.resize_restarts.is_empty())
        });
        if !images && !resize {
            self.metadata_only();
        } else if !images && !restarts {
            self.resize_only();
        } else if let Some(template) = self.input.policy.hook_template.clone() {
            self.start_hook(&template);
        } else {
            self.make_unready(Trigger::NoHook, true);
        }
    }

    fn in_flight(&mut self, state: State) -> bool {
        let Some(record) = self.record.clone() else {
            return false;
        };
        if record.revision != self.target().revision {
            return self.retarget(state);
        }
        // In Unready the condition was overwritten: reassert first; the deadline is checked
        // from GracefulWait on the next decision.
        if let Some(deadline) = self.deadline(&record)
            && self.now() >= deadline
            && !matches!(
                state,
                State::Failed | State::Unready | State::ResizeInfeasible
            )
        {
            let waited = self.now().duration_since(record.started_at).as_secs();
            self.fail(
                Trigger::DeadlineExceeded,
                "DeadlineExceeded",
                format!(
                    "in-place update to {} not complete after {waited}s in {state}",
                    record.revision
                ),
            );
            return false;
        }
        match state {
            State::HookCheck => self.hook_check(&record),
            State::Unready => {
                // The record is visible but the condition is not False: someone restored it.
                self.make_unready(Trigger::ReadinessRestored, false);
                false
            }
            State::GracefulWait => {
                if !self.pod().is_marked_unready() {
                    self.make_unready(Trigger::ReadinessRestored, false);
                } else if self.grace_end(&record).is_none_or(|end| self.now() >= end) {
                    if record.resources.is_empty() {
                        self.patch_images(Trigger::GraceElapsed);
                    } else {
                        // Resources first, images once the resize is applied: kubernetes
                        // #127356 (a container restarted for its new image before its pod's
                        // cgroup was resized failed to start on cgroup v1).
                        self.send_resize(&record, Trigger::GraceElapsed);
                    }
                }
                false
            }
            State::Resizing => {
                self.send_resize(&record, Trigger::ResizeRequested);
                false
            }
            State::ResizeApplying => {
                self.resize_progress(&record);
                false
            }
            State::ResizeDeferred | State::ResizeInfeasible => false,
            State::ImagePatched | State::Restarting => {
                match self.container_progress(&record) {
                    Overall::Failed(trigger, detail) => {
                        let reason = if trigger == Trigger::CrashLoop {
                            "CrashLoop"
                        } else {
                            "ImagePullFailed"
                        };
                        self.fail(trigger, reason, detail);
                    }
                    Overall::Done if record.containers.is_empty() => {
                        self.complete(Trigger::Completed, "no container needed a restart".into())
                    }
                    Overall::Done => self.complete(
                        Trigger::Completed,
                        "every changed container restarted".into(),
                    ),
                    Overall::Restarting | Overall::Untouched => {}
                }
                false
            }
            State::ContainerUpdated => {
                self.patch_images(Trigger::NextContainer);
                false
            }
            State::Failed => {
                if record.patched_at.is_some()
                    && !self.containers_remain()
                    && matches!(self.container_progress(&record), Overall::Done)
                {
                    self.complete(Trigger::Completed, "containers recovered".into());
                }
                false
            }
            State::Pending | State::Ready | State::Abandoned | State::Unknown => false,
        }
    }

    /// The target is no longer the record's revision.
    fn retarget(&mut self, state: State) -> bool {
        let resizing = matches!(
            state,
            State::Resizing
                | State::ResizeApplying
                | State::ResizeDeferred
                | State::ResizeInfeasible
        );
        // A resize already in the spec is not undone by a readiness restore: it is resized
        // back, toward the target, like a new revision.
        if self.at_target_revision() && !(resizing && self.resize_wanted()) {
            // Back to the pod's own revision before any image was written: nothing to undo
            // but readiness.
            self.restore_readiness(State::Ready, Trigger::RolledBack, names::REASON_ROLLED_BACK);
            return false;
        }
        let unready = self.pod().is_marked_unready();
        let old = self.record.take().map(Cow::into_owned);
        let mut r = Record::start(&self.target().revision, self.now());
        if let Some(old) = &old {
            // Containers still restarting for the superseded revision are judged against
            // their original instance if the new revision leaves their image alone.
            r.containers = old.containers.clone();
            r.patched_at = old.patched_at;
        }
        if unready && state != State::HookCheck {
            // The pod stays out of endpoints; the grace keeps counting from when it left.
            r.state = State::Unready;
            r.unready_since = old.and_then(|o| o.unready_since).or(Some(self.now()));
            self.record = Some(Cow::Owned(r));
            self.note_resize();
            self.go(State::GracefulWait, Trigger::Retargeted);
        } else {
            self.record = Some(Cow::Owned(r));
            self.go(State::Pending, Trigger::Retargeted);
        }
        true
    }

    fn hook_check(&mut self, record: &Record) -> bool {
        match self.input.hook {
            Some(HookPhase::Successful) => {
                self.make_unready(Trigger::HookSucceeded, false);
            }
            Some(
                phase @ (HookPhase::Failed
                | HookPhase::Error
                | HookPhase::Inconclusive
                | HookPhase::Terminated),
            ) => {
                if let Some(generation) = retry_due(
                    self.input.policy.hook_retry_generation,
                    record.hook_retry_generation,
                ) {
                    self.retry_hook(record, phase, generation);
                    return true;
                }
                let reason = format!("Hook{phase}");
                if record.reason.as_deref() != Some(reason.as_str()) {
                    let message = format!(
                        "preInplaceUpdate HookRun {} is {phase}; the pod waits here. Force Pending \
                         to run the hook again, Unready to bypass it, or Abandoned to give up",
                        record.hook_run.as_deref().unwrap_or("?")
                    );
                    let mut r = record.clone();
                    r.reason = Some(reason);
                    r.message = Some(message.clone());
                    self.record = Some(Cow::Owned(r));
                    self.event(
                        EventType::Warning,
                        names::EVENT_FAILED_PRE_INPLACE_HOOK,
                        message,
                    );
                    self.go(State::HookCheck, Trigger::HookFailed);
                    self.write_checkpoint(Endpoint::Pod, None);
                }
            }
            Some(HookPhase::Pending | HookPhase::Running) => {}
            None => {
                // Not in the cache: created by a run that crashed, or lost. Creation is
                // idempotent (AlreadyExists is success), so ask again.
                if let Some(req) = self.hook_request(record) {
                    self.actions.push(Action::CreateHookRun(req));
                }
            }
        }
        false
    }

    /// `retry: true`: the hook runs again as a fresh HookRun (a new attempt), once for this
    /// generation of the GameDeployment.
    fn retry_hook(&mut self, record: &Record, phase: HookPhase, generation: i64) {
        let mut r = Record::start(&self.target().revision, self.now());
        r.attempt = record.attempt + 1;
        r.hook_retry_generation = Some(generation);
        self.record = Some(Cow::Owned(r));
        self.event(
            EventType::Normal,
            names::EVENT_PRE_INPLACE_HOOK_RETRIED,
            format!(
                "preInplaceUpdate HookRun {} is {phase}; preInplaceUpdateStrategy.retry runs the \
                 hook again (generation {generation})",
                record.hook_run.as_deref().unwrap_or("?")
            ),
        );
        self.go(State::Pending, Trigger::HookRetried);
    }

    // ----- moves with writes --------------------------------------------------------------

    fn metadata_only(&mut self) {
        let w = self.template_write();
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            r.patched_at = Some(self.input.now);
        }
        self.go(State::Ready, Trigger::MetadataOnly);
        self.emit(w);
        self.event(
            EventType::Normal,
            names::EVENT_SUCCESSFUL_INPLACE,
            format!(
                "revision {}: only metadata changed, no container restarted",
                self.target().revision
            ),
        );
    }

    /// Only cpu/memory change and nothing restarts: the record (desired resources), revision
    /// label and template metadata in one pod write; readiness is left alone.
    fn resize_only(&mut self) {
        let w = self.template_write();
        self.go(State::Resizing, Trigger::ResizeOnly);
        self.emit(w);
    }

    /// Sends the record's resources through `pods/resize`.
    fn send_resize(&mut self, record: &Record, trigger: Trigger) {
        let mut w = PodWrite::new(Endpoint::PodResize, self.pod().resource_version.clone());
        w.resources = record
            .resources
            .iter()
            .map(|(name, want)| {
                (
                    name.clone(),
                    want.patch_from(&self.pod().resources_of(name)),
                )
            })
            .collect();
        self.go(State::ResizeApplying, trigger);
        self.emit(w);
    }

    /// In `ResizeApplying`: infeasible, applied, or still applying.
    fn resize_progress(&mut self, record: &Record) {
        if let Some(pending) = self.pod().resize_pending(RESIZE_INFEASIBLE) {
            let message = pending.message.clone();
            self.infeasible(record, &message);
        } else if self.pod().resize_complete(record.resize_restarts.iter()) {
            if self.changed_containers().is_empty() {
                self.resized();
            } else {
                self.patch_images(Trigger::Resized);
            }
        }
    }

    /// The resize is applied and no image changes: record Ready and the template's metadata
    /// through `pods/status` (which keeps metadata changes), readiness restored if it was
    /// taken.
    fn resized(&mut self) {
        let mut w = self.template_write();
        w.endpoint = Endpoint::PodStatus;
        if self.pod().is_marked_unready() {
            w.condition = Some(self.ready_condition(State::Ready, names::CONDITION_INPLACE_READY));
        }
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            r.reason = None;
            r.message = None;
        }
        let revision = self.target().revision.clone();
        w.resized = true;
        self.go(State::Ready, Trigger::Resized);
        self.emit(w);
        self.event(
            EventType::Normal,
            names::EVENT_INPLACE_READY,
            format!("pod runs revision {revision}; cpu/memory resized in place"),
        );
    }

    /// `PodResizePending/Infeasible`: readiness restored if it was taken, one Warning event
    /// naming the pod, the containers and the node; the planner applies
    /// `infeasibleResizePolicy`.
    fn infeasible(&mut self, record: &Record, kubelet: &str) {
        let pod = self.pod();
        let containers: Vec<String> = record
            .resources
            .iter()
            .map(|(name, r)| format!("container {name} ({})", describe(r)))
            .collect();
        let node = pod.node_name.as_deref().unwrap_or("(unscheduled)");
        let message = format!(
            "pod {}: resize of {} is infeasible on node {node}: {kubelet}",
            pod.name,
            containers.join(", ")
        );
        let mut w = PodWrite::new(Endpoint::PodStatus, pod.resource_version.clone());
        if pod.is_marked_unready() {
            w.condition =
                Some(self.ready_condition(State::ResizeInfeasible, names::EVENT_RESIZE_INFEASIBLE));
        }
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            r.reason = Some(names::EVENT_RESIZE_INFEASIBLE.to_string());
            r.message = Some(message.clone());
        }
        self.go(State::ResizeInfeasible, Trigger::Infeasible);
        self.emit(w);
        self.event(EventType::Warning, names::EVENT_RESIZE_INFEASIBLE, message);
    }

    fn start_hook(&mut self, template: &str) {
        let Some(mut r) = self.record.as_deref().cloned() else {
            return;
        };
        let base = HookKind::PreInplace.run_name(&r.revision, self.pod().instance_id(), template);
        r.hook_run = Some(attempt_name(&base, r.attempt));
        self.record = Some(Cow::Owned(r.clone()));
        self.go(State::HookCheck, Trigger::HookConfigured);
        self.write_checkpoint(Endpoint::Pod, None);
        if let Some(req) = self.hook_request(&r) {
            self.actions.push(Action::CreateHookRun(req));
        }
    }

    fn hook_request(&self, r: &Record) -> Option<HookRunRequest> {
        let template = self.input.policy.hook_template.clone()?;
        let mut args = super::action::pod_hook_args(self.pod());
        for (i, name) in self.changed_containers().keys().enumerate() {
            args.insert(format!("ModifiedContainer[{i}]"), name.clone());
        }
        Some(HookRunRequest {
            name: r.hook_run.clone()?,
            template,
            args,
            kind: HookKind::PreInplace,
            retry_generation: None,
        })
    }

    /// Writes `InPlaceUpdateReady=False` with the checkpoint. `keep_since` carries the
    /// original unready time when the pod has been continuously unready.
    fn make_unready(&mut self, trigger: Trigger, keep_since: bool) {
        let now = self.now();
        let marked = self.pod().is_marked_unready();
        let Some(r) = self.record.as_mut().map(Cow::to_mut) else {
            return;
        };
        let since = match r.unready_since {
            Some(t) if marked && (keep_since || trigger == Trigger::Forced) => t,
            _ => now,
        };
        r.unready_since = Some(since);
        r.reason = None;
        r.message = None;
        let grace = self.input.policy.grace_period_seconds;
        let message = format!(
            "in-place update to revision {}: out of Service endpoints for {grace}s before containers restart",
            self.target().revision
        );
        self.go(State::Unready, trigger);
        self.write_checkpoint(
            Endpoint::PodStatus,
            Some(ConditionWrite {
                ready: false,
                reason: names::REASON_START_INPLACE_UPDATE.into(),
                message,
                last_transition_time: since,
            }),
        );
    }

    fn patch_images(&mut self, trigger: Trigger) {
        let changed = self.next_batch();
        let now = self.now();
        let pod = self.pod();
        let waited = self
            .record
            .as_ref()
            .and_then(|r| r.unready_since)
            .map(|t| now.duration_since(t).as_secs())
            .unwrap_or(0);
        let Some(r) = self.record.as_mut().map(Cow::to_mut) else {
            return;
        };
        let mut snapshot: SmallMap<String, ContainerSnapshot> = SmallMap::new();
        for name in changed.keys() {
            let before = pod.containers.get(name).map(|c| ContainerSnapshot {
                container_id: c.container_id.clone(),
                image_id: c.image_id.clone(),
                restart_count: c.restart_count,
            });
            snapshot.insert(name.clone(), before.unwrap_or_default());
        }
        // A retry of the same revision keeps the snapshot of containers patched earlier.
        for (name, old) in std::mem::take(&mut r.containers) {
            snapshot.entry(name.clone()).or_insert(old);
            if let Some(img) = self.input.target.images.get(&name) {
                r.images.entry(name).or_insert_with(|| img.clone());
            }
        }
        r.images.extend(changed.clone());
        r.containers = snapshot;
        r.patched_at = Some(now);
        let summary: Vec<String> = changed.iter().map(|(n, i)| format!("{n}={i}")).collect();
        let mut w = self.template_write();
        w.images = changed;
        w.resized = trigger == Trigger::Resized;
        self.go(State::ImagePatched, trigger);
        self.emit(w);
        self.event(
            EventType::Normal,
            names::EVENT_SUCCESSFUL_INPLACE,
            if summary.is_empty() {
                format!(
                    "revision {}: images already in the spec; waiting for containers after {waited}s out of endpoints",
                    self.target().revision
                )
            } else {
                format!(
                    "revision {}: set {} after {waited}s out of endpoints",
                    self.target().revision,
                    summary.join(", ")
                )
            },
        );
    }

    fn complete(&mut self, trigger: Trigger, why: String) {
        let revision = self
            .record
            .as_ref()
            .map(|r| r.revision.clone())
            .unwrap_or_default();
        self.restore_readiness(State::Ready, trigger, names::CONDITION_INPLACE_READY);
        self.event(
            EventType::Normal,
            names::EVENT_INPLACE_READY,
            format!("pod runs revision {revision} and is back in Service endpoints ({why})"),
        );
    }

    /// Ends the machine with `InPlaceUpdateReady=True`.
    fn restore_readiness(&mut self, to: State, trigger: Trigger, reason: &str) {
        let revision = self.pod().revision.clone().unwrap_or_default();
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            if trigger == Trigger::RolledBack {
                r.revision = revision;
            }
            r.reason =
                (to != State::Ready || trigger == Trigger::RolledBack).then(|| reason.to_string());
            r.message = None;
        }
        self.go(to, trigger);
        let condition = self.ready_condition(to, reason);
        self.write_checkpoint(Endpoint::PodStatus, Some(condition));
    }

    /// `InPlaceUpdateReady=True`, for a machine ending in `to`.
    fn ready_condition(&self, to: State, reason: &str) -> ConditionWrite {
        ConditionWrite {
            ready: true,
            reason: reason.to_string(),
            message: format!("in-place update {to}"),
            last_transition_time: self.now(),
        }
    }

    fn fail(&mut self, trigger: Trigger, reason: &str, message: String) {
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            r.reason = Some(reason.to_string());
            r.message = Some(message.clone());
        }
        self.event(EventType::Warning, names::EVENT_FAILED_INPLACE, message);
        self.go(State::Failed, trigger);
        self.write_checkpoint(Endpoint::Pod, None);
    }

    // ----- helpers ------------------------------------------------------------------------

    /// A pod write moving the pod's metadata to the target template: revision label,
    /// template labels and annotations.
    fn template_write(&self) -> PodWrite {
        let mut w = PodWrite::new(Endpoint::Pod, self.pod().resource_version.clone());
        w.labels = self.target().labels.clone();
        w.labels.insert(
            names::LABEL_REVISION.to_string(),
            self.target().revision.clone(),
        );
        w.annotations = self
            .target()
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        w
    }

    /// The target's cpu/memory for the containers whose spec differs from it.
    fn resize_changes(&self) -> SmallMap<String, ContainerResources> {
        self.target()
            .resources
            .iter()
            .filter(|(name, want)| !want.same_as(&self.pod().resources_of(name)))
            .map(|(name, want)| (name.clone(), want.clone()))
            .collect()
    }

    /// The target asks for cpu/memory the spec does not have.
    fn resize_wanted(&self) -> bool {
        !self.resize_changes().is_empty()
    }

    /// Writes into the record what this update resizes, and which containers that restarts
    /// (a changed resource whose `resizePolicy` is `RestartContainer`).
    fn note_resize(&mut self) {
        let changes = self.resize_changes();
        let restarts: Vec<String> = changes
            .iter()
            .filter(|(name, want)| {
                let restart = self.target().restart_on_resize.get(*name);
                want.changed_from(&self.pod().resources_of(name))
                    .iter()
                    .any(|res| restart.is_some_and(|set| set.contains(*res)))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if let Some(r) = self.record.as_mut().map(Cow::to_mut) {
            r.resources = changes;
            r.resize_restarts = restarts;
        }
    }

    /// The record's resize is in the pod spec (sent, or a restarted operator finds it sent).
    fn resize_sent(&self) -> bool {
        let Some(r) = self.record.as_deref() else {
            return false;
        };
        !r.resources.is_empty()
            && r.resources
                .iter()
                .all(|(name, want)| want.same_as(&self.pod().resources_of(name)))
    }

    fn ordered(&self) -> bool {
        self.input.policy.update_policy != InPlaceUpdatePolicy::DisOrdered
    }

    /// An ordered policy still has changed containers to patch (their spec image is not the
    /// target's). Always false for `DisOrdered`, which patches every one at once.
    fn containers_remain(&self) -> bool {
        self.ordered() && !self.changed_containers().is_empty()
    }

    /// The containers the next image patch writes: every changed one, or under an ordered
    /// policy the first changed one in pod-spec order. What is already patched is read from
    /// the pod spec, so a restarted operator neither patches a container twice nor skips one.
    fn next_batch(&self) -> BTreeMap<String, String> {
        let mut changed = self.changed_containers();
        if !self.ordered() {
            return changed;
        }
        let first = self
            .target()
            .container_order
            .iter()
            .find(|name| changed.contains_key(*name))
            .or_else(|| changed.keys().next())
            .cloned();
        match first.and_then(|name| changed.remove_entry(&name)) {
            Some((name, image)) => [(name, image)].into(),
            None => BTreeMap::new(),
        }
    }

    /// Under an ordered policy, whether every container patched so far has reached the
    /// policy's bar while more remain, for the update the record is for and within the
    /// deadline (past it, the in-flight state fails instead).
    fn step_reached(&self) -> bool {
        let Some(r) = self.record.as_deref() else {
            return false;
        };
        if r.containers.is_empty()
            || r.revision != self.target().revision
            || !self.containers_remain()
            || self.deadline(r).is_some_and(|d| self.now() >= d)
        {
            return false;
        }
        let pod = self.pod();
        r.containers.iter().all(|(name, before)| {
            let now = pod.containers.get(name);
            match self.input.policy.update_policy {
                InPlaceUpdatePolicy::OrderedUpdated => runs_new_instance(before, now),
                _ => progress(before, now) == Progress::Done,
            }
        })
    }

    fn grace_end(&self, r: &Record) -> Option<Timestamp> {
        let grace = SignedDuration::from_secs(self.input.policy.grace_period_seconds.max(0));
        r.unready_since.and_then(|t| t.checked_add(grace).ok())
    }

    fn deadline(&self, r: &Record) -> Option<Timestamp> {
        let secs = self.input.policy.deadline_seconds?;
        r.started_at
            .checked_add(SignedDuration::from_secs(secs.max(0)))
            .ok()
    }

    fn container_progress(&self, r: &Record) -> Overall {
        let mut overall = Overall::Done;
        let mut any_touched = false;
        for (name, before) in &r.containers {
            match progress(before, self.pod().containers.get(name)) {
                Progress::Failed { trigger, detail } => {
                    let t = match trigger {
                        RestartFailure::ImagePull => Trigger::ImagePullFailed,
                        RestartFailure::CrashLoop => Trigger::CrashLoop,
                    };
                    return Overall::Failed(t, format!("container {name}: {detail}"));
                }
                Progress::Done => any_touched = true,
                Progress::Restarting => {
                    any_touched = true;
                    overall = Overall::Restarting;
                }
                Progress::Untouched => {
                    if overall == Overall::Done {
                        overall = Overall::Untouched;
                    }
                }
            }
        }
        if overall == Overall::Untouched && any_touched {
            Overall::Restarting
        } else {
            overall
        }
    }

    /// Records a transition, refusing (loudly, without panicking) one the table lacks.
    fn go(&mut self, to: State, trigger: Trigger) {
        let from = self.state.map_or(Node::Start, Node::State);
        let listed = table()
            .ok()
            .and_then(|t| t.edge(from, to, trigger))
            .is_some();
        if !listed {
            tracing::error!(?from, %to, %trigger, "transition missing from states/transitions.yaml");
            self.event(
                EventType::Warning,
                names::EVENT_UNTABLED_TRANSITION,
                format!("operator defect: {from:?} -> {to} on {trigger} is not in the transition table; not taken"),
            );
            self.stopped = true;
            return;
        }
        self.transitions.push(Transition { from, to, trigger });
        self.state = Some(to);
        if let Some(r) = self.record.as_mut().map(Cow::to_mut)
            && to.is_persisted()
        {
            r.state = to;
        }
    }

    fn write_checkpoint(&mut self, endpoint: Endpoint, condition: Option<ConditionWrite>) {
        let mut w = PodWrite::new(endpoint, self.pod().resource_version.clone());
        w.condition = condition;
        self.emit(w);
    }

    /// Emits a write carrying the current checkpoint; a write ends the run.
    fn emit(&mut self, mut w: PodWrite) {
        if self.stopped {
            return;
        }
        if w.endpoint == Endpoint::PodResize {
            // No metadata through pods/resize: a pending force removal goes out in `finish`.
            self.actions.push(Action::WritePod(Box::new(w)));
            self.stopped = true;
            return;
        }
        w.checkpoint = self.record.as_deref().cloned();
        if std::mem::take(&mut self.consume_force) {
            w.annotations
                .insert(names::ANNOTATION_FORCE.to_string(), None);
        }
        self.actions.push(Action::WritePod(Box::new(w)));
        self.stopped = true;
    }

    fn finish(mut self) -> MachineStep {
        if self.consume_force {
            // The request was refused, or changed nothing: remove it so it is not re-read.
            let mut w = PodWrite::new(Endpoint::Pod, self.pod().resource_version.clone());
            w.annotations
                .insert(names::ANNOTATION_FORCE.to_string(), None);
            self.actions.push(Action::WritePod(Box::new(w)));
        }
        let wake_at = self.wake_at();
        debug_assert!(self.check_writes_match_table());
        MachineStep {
            transitions: self.transitions,
            state: self.state,
            actions: self.actions,
            wake_at,
        }
    }

    fn wake_at(&self) -> Option<Timestamp> {
        let r = self.record.as_ref()?;
        let state = self.state?;
        let mut times = Vec::new();
        if state == State::GracefulWait {
            times.extend(self.grace_end(r));
        }
        if !state.is_terminal() && state != State::Unknown {
            times.extend(self.deadline(r));
        }
        times.into_iter().filter(|t| *t > self.now()).min()
    }

    /// The last transition's write matches the table's write kind.
    fn check_writes_match_table(&self) -> bool {
        let Some(last) = self.transitions.last() else {
            return true;
        };
        let Ok(t) = table() else { return true };
        let Some(edge) = t.edge(last.from, last.to, last.trigger) else {
            return true;
        };
        let written = self
            .actions
            .iter()
            .filter_map(Action::as_write)
            .find(|w| w.checkpoint.is_some());
        match (edge.write, written) {
            (WriteKind::None, None) => true,
            (WriteKind::Pod, Some(w)) => w.endpoint == Endpoint::Pod,
            (WriteKind::Status, Some(w)) => w.endpoint == Endpoint::PodStatus,
            // A resize carries no checkpoint; derived on a later look, it writes nothing.
            (WriteKind::Resize, None) => true,
            _ => false,
        }
    }
}

/// `cpu=1, memory=1Gi` requests, then limits: what a resize asks for, for messages.
fn describe(r: &ContainerResources) -> String {
    let part = |label: &str, m: &BTreeMap<String, String>| {
        let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (!items.is_empty()).then(|| format!("{label} {}", items.join(", ")))
    };
    let parts: Vec<String> = [part("requests", &r.requests), part("limits", &r.limits)]
        .into_iter()
        .flatten()
        .collect();
    parts.join("; ")
}

/// Progress of all changed containers together.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Overall {
    Untouched,
    Restarting,
    Done,
    Failed(Trigger, String),
}

#[cfg(test)]
#[path = "machine/ordered_tests.rs"]
mod ordered_tests;
#[cfg(test)]
#[path = "machine/test_api.rs"]
pub(super) mod test_api;

#[cfg(test)]
#[path = "machine/resize_tests.rs"]
mod resize_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::record::{decode, encode};

    fn t(s: u64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + s as i64).unwrap()
    }

    fn pod() -> PodView {
        super::test_api::settled_pod()
    }

    fn target() -> Target {
        Target {
            revision: "r2".into(),
            images: [("app".to_string(), "app:2".to_string())].into(),
            ..Default::default()
        }
    }

    fn decide(pod: &PodView, selected: bool, now: Timestamp) -> MachineStep {
        let policy = Policy {
            grace_period_seconds: 30,
            ..Default::default()
        };
        advance(
            &Input {
                pod,
                target: &target(),
                policy: &policy,
                hook: None,
                selected,
                now,
            },
            &decode(&pod.annotations),
        )
    }

    #[test]
    fn an_unselected_pod_gets_no_machine() {
        let out = decide(&pod(), false, t(0));
        assert_eq!(out.state, None);
        assert!(out.actions.is_empty());
    }

    #[test]
    fn a_dying_pod_is_never_written() {
        let mut p = pod();
        p.deleting = true;
        p.annotations
            .insert(names::ANNOTATION_FORCE.into(), "Ready".into());
        assert!(decide(&p, true, t(0)).actions.is_empty());
    }

    #[test]
    fn grace_wakes_exactly_when_due_and_not_before() {
        let first = decide(&pod(), true, t(0));
        let write = first.writes().next().expect("unready write").clone();
        assert_eq!(write.endpoint, Endpoint::PodStatus);
        let mut p = pod();
        p.in_place_ready = Some(false);
        p.annotations.insert(
            names::ANNOTATION_STATE.into(),
            encode(&write.checkpoint.unwrap()),
        );
        let waiting = decide(&p, true, t(29));
        assert_eq!(waiting.state, Some(State::GracefulWait));
        assert_eq!(waiting.wake_at, Some(t(30)));
        assert_eq!(waiting.writes().count(), 0);
        let due = decide(&p, true, t(30));
        assert_eq!(due.state, Some(State::ImagePatched));
        let patch = due.writes().next().unwrap();
        assert_eq!(patch.images["app"], "app:2");
        assert_eq!(patch.labels[names::LABEL_REVISION], "r2");
        assert_eq!(patch.precondition.as_deref(), Some("5"));
    }

    /// A Terminated HookRun (the engine's phase for a run stopped before an outcome) is not a
    /// success: the pod stays in HookCheck and is told why, as for Failed.
    #[test]
    fn a_terminated_hook_holds_the_pod_like_a_failed_one() {
        let policy = Policy {
            hook_template: Some("drain".into()),
            ..Default::default()
        };
        let run = |pod: &PodView, hook, now| {
            advance(
                &Input {
                    pod,
                    target: &target(),
                    policy: &policy,
                    hook,
                    selected: true,
                    now,
                },
                &decode(&pod.annotations),
            )
        };
        let first = run(&pod(), None, t(0));
        assert_eq!(first.state, Some(State::HookCheck));
        let checkpoint = first.writes().next().unwrap().checkpoint.clone().unwrap();
        let mut p = pod();
        p.annotations
            .insert(names::ANNOTATION_STATE.into(), encode(&checkpoint));
        let held = run(&p, Some(HookPhase::Terminated), t(5));
        assert_eq!(held.state, Some(State::HookCheck));
        let write = held.writes().next().expect("the reason is recorded");
        assert!(write.images.is_empty(), "no image is written");
        let reason = write.checkpoint.as_ref().unwrap().reason.as_deref();
        assert_eq!(reason, Some("HookTerminated"));
    }

    #[test]
    fn a_dying_pod_is_refused() {
        let pod = PodView {
            deleting: true,
            ..Default::default()
        };
        assert_eq!(
            check_force(&pod, &Decoded::Missing, "Ready", Timestamp::UNIX_EPOCH),
            Err(ForceRefused::Deleting)
        );
    }
}
