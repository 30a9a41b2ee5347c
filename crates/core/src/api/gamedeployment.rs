//! `GameDeployment` (`tkex.tencent.com/v1alpha1`): spec, status and the effective-default accessors
//! the controller reads instead of repeating the defaults.
//!
//! Field names and JSON shapes follow the Go `bcs-gamedeployment-operator` so that existing
//! objects and scripts keep working, plus the fields of bk-bcs's newer types (kourse
//! `pkg/apis/tkex/v1alpha1`: `OnDelete`, percentage partitions in canary steps,
//! `scaleStrategy.createBatch`, `disableReadinessGate`). The one addition of our own is
//! `updateStrategy.inPlaceUpdateStrategy.deadlineSeconds`.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hook::{HookPhase, HookStep};
use super::schema;

/// Replicas when `spec.replicas` is unset (the original's `+kubebuilder:default=1`).
pub const DEFAULT_REPLICAS: i32 = 1;
/// Pods kept on old revisions when `updateStrategy.partition` is unset.
pub const DEFAULT_PARTITION: i32 = 0;
/// The original operator's `DefaultGameDeploymentMaxUnavailable` (its README says 25%; the code wins).
pub const DEFAULT_MAX_UNAVAILABLE: &str = "20%";
/// Extra pods during an update when `updateStrategy.maxSurge` is unset.
pub const DEFAULT_MAX_SURGE: i32 = 0;
/// Seconds between marking a pod unready and swapping its images.
pub const DEFAULT_GRACE_PERIOD_SECONDS: i32 = 0;
/// Non-live ControllerRevisions kept when `revisionHistoryLimit` is unset.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// The newer API's `scaleStrategy.createBatch` default: every missing pod in one wave.
pub const DEFAULT_CREATE_BATCH: &str = "100%";

/// The template labels must carry every `matchLabels` entry, or the operator would create pods it
/// cannot see and keep creating more.
const RULE_SELECTOR_MATCHES_TEMPLATE: &str = "!has(self.selector.matchLabels) || (has(self.template.metadata) && has(self.template.metadata.labels) && self.selector.matchLabels.all(k, k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k]))";
/// As Deployment's validation: a progress deadline must be longer than `minReadySeconds`.
const RULE_PROGRESS_DEADLINE_AFTER_MIN_READY: &str = "!has(self.progressDeadlineSeconds) || self.progressDeadlineSeconds > (has(self.minReadySeconds) ? self.minReadySeconds : 0)";
const RULE_SELECTOR_NOT_EMPTY: &str = "(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)";

// Int-or-string values are tested for string-ness with `string(x) == x`, which under CEL's
// heterogeneous equality holds exactly for strings. `type(x) == string` would read better but
// kube-cel (used by the tests to evaluate these rules) cannot evaluate `type()`.

/// A non-negative int32 (the operator reads these as `i32`), or a percentage such as "20%".
macro_rules! int_or_percent_rule {
    ($f:literal) => {
        concat!(
            "!has(self.",
            $f,
            ") || (string(self.",
            $f,
            ") == self.",
            $f,
            " ? self.",
            $f,
            ".matches('^[0-9]+%$') : self.",
            $f,
            " >= 0 && self.",
            $f,
            " <= 2147483647)"
        )
    };
}

/// A zero budget, written either as 0 or as a zero percentage.
macro_rules! is_zero {
    ($f:literal) => {
        concat!(
            "(string(self.",
            $f,
            ") == self.",
            $f,
            " ? self.",
            $f,
            ".matches('^0+%$') : self.",
            $f,
            " == 0)"
        )
    };
}

/// Absent fields are treated as their defaults (maxUnavailable "20%", maxSurge 0), which is what
/// the apiserver fills in before CEL runs.
const RULE_BUDGET_NOT_BOTH_ZERO: &str = concat!(
    "!has(self.maxUnavailable) || !",
    is_zero!("maxUnavailable"),
    " || (has(self.maxSurge) && !",
    is_zero!("maxSurge"),
    ")"
);

/// Desired state of a GameDeployment.
// Several printer columns share `type_ = "integer"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "tkex.tencent.com",
    version = "v1alpha1",
    kind = "GameDeployment",
    plural = "gamedeployments",
    singular = "gamedeployment",
    shortname = "gd",
    namespaced,
    status = "GameDeploymentStatus",
    derive = "PartialEq",
    doc = "A set of interchangeable game-server pods updated by rolling, in-place or hot-patch updates.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(
        name = "DESIRED",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired pods"
    ),
    printcolumn(
        name = "UPDATED",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Pods on the update revision"
    ),
    printcolumn(
        name = "UPDATED_READY",
        type_ = "integer",
        json_path = ".status.updatedReadyReplicas",
        description = "Ready pods on the update revision"
    ),
    printcolumn(
        name = "READY",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready pods"
    ),
    printcolumn(
        name = "TOTAL",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Pods owned, including those waiting on a pre-delete hook"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(RULE_SELECTOR_NOT_EMPTY).field_path(".selector").message("spec.selector is empty and would match no pods: set spec.selector.matchLabels to labels of spec.template.metadata.labels"))]
#[x_kube(validation = Rule::new(RULE_SELECTOR_MATCHES_TEMPLATE).field_path(".selector").message("spec.selector.matchLabels must be a subset of spec.template.metadata.labels (same keys and values), or the pods created would not be selected"))]
#[x_kube(validation = Rule::new(RULE_PROGRESS_DEADLINE_AFTER_MIN_READY).field_path(".progressDeadlineSeconds").message("spec.progressDeadlineSeconds must be greater than minReadySeconds (as for a Deployment): a pod cannot count as available, and so as progress, before minReadySeconds have passed"))]
#[serde(rename_all = "camelCase")]
pub struct GameDeploymentSpec {
    /// Desired number of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = DEFAULT_REPLICAS))]
    pub replicas: Option<i32>,

    #[schemars(schema_with = "schema::label_selector")]
    pub selector: LabelSelector,

    #[schemars(schema_with = "schema::pod_template")]
    pub template: PodTemplateSpec,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_strategy: Option<ScaleStrategy>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub update_strategy: Option<UpdateStrategy>,

    /// Hook that must succeed before a pod is deleted (scale-down, podsToDelete, rolling update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_delete_update_strategy: Option<HookUpdateStrategy>,

    /// Hook that must succeed before a pod is updated in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_inplace_update_strategy: Option<HookUpdateStrategy>,

    /// Hook run after a pod was updated in place; it gates nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_inplace_update_strategy: Option<HookUpdateStrategy>,

    /// Old ControllerRevisions kept for rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = DEFAULT_REVISION_HISTORY_LIMIT))]
    pub revision_history_limit: Option<i32>,

    /// Seconds a pod must be ready before it counts as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,

    /// Seconds without progress (paused time not counted) after which the `Progressing`
    /// condition turns False with reason `ProgressDeadlineExceeded`. Unset: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub progress_deadline_seconds: Option<i32>,
    /// Newer API: new pods get no `InPlaceUpdateReady` readiness gate, so an in-place update
    /// cannot take them out of service (the grace period is then only a wait).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_readiness_gate: bool,
}

/// How scaling picks pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new(int_or_percent_rule!("createBatch")).field_path(".createBatch").message("scaleStrategy.createBatch must be a positive integer or a percentage such as \"25%\""))]
#[x_kube(validation = Rule::new(concat!("!has(self.createBatch) || !", is_zero!("createBatch"))).field_path(".createBatch").message("scaleStrategy.createBatch is zero, so no pod could ever be created: make it positive"))]
#[serde(rename_all = "camelCase")]
pub struct ScaleStrategy {
    /// Pods to delete first (still gated by the pre-delete hook); replacements are created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods_to_delete: Vec<String>,

    /// Newer API: the most pods created in one wave (integer or percentage of replicas, rounded
    /// up); the next wave waits until the pods not Ready are fewer than the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_CREATE_BATCH))]
    pub create_batch: Option<IntOrString>,
}

/// How pods are moved to a new template revision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum UpdateStrategyType {
    /// Delete old pods and create new ones.
    #[default]
    RollingUpdate,
    /// Swap container images in the existing pods, with a readiness-gate flip and grace period.
    InplaceUpdate,
    /// Swap images without restarting containers (needs the BCS-customised kubelet).
    HotPatchUpdate,
    /// Newer API: touch no pod; a pod the user deletes comes back at the update revision.
    OnDelete,
}

/// Update policy. Defaulted to `{}` so that its own defaults apply when it is omitted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new(int_or_percent_rule!("partition")).field_path(".partition").message("updateStrategy.partition must be a non-negative integer or a percentage such as \"10%\""))]
#[x_kube(validation = Rule::new(int_or_percent_rule!("maxUnavailable")).field_path(".maxUnavailable").message("updateStrategy.maxUnavailable must be a non-negative integer or a percentage such as \"20%\""))]
#[x_kube(validation = Rule::new(int_or_percent_rule!("maxSurge")).field_path(".maxSurge").message("updateStrategy.maxSurge must be a non-negative integer or a percentage such as \"25%\""))]
#[x_kube(validation = Rule::new(RULE_BUDGET_NOT_BOTH_ZERO).field_path(".maxUnavailable").message("updateStrategy.maxUnavailable and maxSurge are both zero, so no pod could ever be updated: make one of them positive"))]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "RollingUpdate"))]
    pub type_: Option<UpdateStrategyType>,

    /// Pods (or percentage of replicas, rounded up) kept on old revisions. Ignored while canary
    /// steps exist: the current step's partition applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_PARTITION))]
    pub partition: Option<IntOrString>,

    /// Pods that may be unavailable at once during an update (integer or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_MAX_UNAVAILABLE))]
    pub max_unavailable: Option<IntOrString>,

    /// Extra pods created during an update (integer or percentage, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_MAX_SURGE))]
    pub max_surge: Option<IntOrString>,

    /// Stops pod updates; scaling continues. The operator sets it to true at a canary pause
    /// without duration or a failed canary hook step, and never back to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub in_place_update_strategy: Option<InPlaceUpdateStrategy>,

    /// Automatic step-by-step canary; replaces `partition` while steps remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

/// Timing of one in-place update.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.deadlineSeconds) || self.deadlineSeconds > (has(self.gracePeriodSeconds) ? self.gracePeriodSeconds : 0)").field_path(".deadlineSeconds").message("inPlaceUpdateStrategy.deadlineSeconds must be greater than gracePeriodSeconds: the deadline starts when the pod is chosen and has to cover the grace period plus the image swap"))]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdateStrategy {
    /// Seconds between marking the pod unready and swapping its images, so traffic can drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = DEFAULT_GRACE_PERIOD_SECONDS))]
    pub grace_period_seconds: Option<i32>,

    /// gamedeploy extension: seconds, counted from when the pod is chosen, after which its in-place
    /// update is marked Failed. Unset means no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub deadline_seconds: Option<i32>,

    /// Newer API: the order in which a pod's changed containers get their new images.
    /// `DisOrdered` patches them all at once; `OrderedReady` patches them one at a time in
    /// pod-spec order, each after the previous one runs a ready new instance; `OrderedUpdated`
    /// moves on once the previous one runs its new image (started, not necessarily ready).
    /// Unset means `DisOrdered` (no schema default, so stored objects stay as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<InPlaceUpdatePolicy>,

    /// gamedeploy extension: what happens to a pod whose in-place CPU/memory resize the kubelet
    /// reports `Infeasible` (the node can never fit it). `Recreate` deletes the pod within the
    /// update budget so a new one is created at the update revision (only when some node's
    /// allocatable could hold it); `Hold` leaves the pod as it is, not retried for this
    /// revision. Either way the GameDeployment gets a `FailedUpdate` condition with reason
    /// `ResizeInfeasible`. Unset means `Recreate` (no schema default, so stored objects stay as
    /// written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infeasible_resize_policy: Option<InfeasibleResizePolicy>,
}

/// What to do with a pod whose in-place resize can never fit its node
/// (`inPlaceUpdateStrategy.infeasibleResizePolicy`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum InfeasibleResizePolicy {
    /// Delete the pod (within maxUnavailable) so it is created again at the update revision.
    #[default]
    Recreate,
    /// Leave the pod as it is; it is not retried for this revision.
    Hold,
}

/// Per-container ordering of an in-place update (`inPlaceUpdateStrategy.policy`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum InPlaceUpdatePolicy {
    /// Every changed container is patched at once.
    #[default]
    DisOrdered,
    /// One container at a time, in pod-spec order; the next after the previous one is Ready.
    OrderedReady,
    /// One container at a time, in pod-spec order; the next once the previous one runs its
    /// new image (started, not necessarily ready).
    OrderedUpdated,
}

/// Ordered canary steps.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
}

/// One canary step: move the partition, pause, or run a hook.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.partition) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.hook) ? 1 : 0) == 1").message("a canary step is exactly one of partition, pause or hook"))]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Pods (or a percentage of replicas, rounded as `updateStrategy.partition`) kept on older
    /// revisions from this step on; the step is done once the others are updated, ready and
    /// available.
    // Checked by OpenAPI rather than CEL: the apiserver prices a regex over an int-or-string
    // inside the unbounded steps list as if both filled the request, and would refuse the CRD.
    // `pattern` applies to strings only, `minimum` and `maximum` to integers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "^[0-9]+%$", "minimum" = 0, "maximum" = i32::MAX))]
    pub partition: Option<IntOrString>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<CanaryPause>,

    /// HookRun that must succeed to pass this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookStep>,
}

/// A canary pause: timed, or until the user sets `paused: false`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryPause {
    /// Seconds to wait; unset waits for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub duration: Option<i32>,
}

/// A hook gate around pod deletion or in-place update.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookUpdateStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookStep>,

    /// Set to true to re-run completed, unsuccessful hooks; the operator resets it to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
}

/// Observed state, written by the operator through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameDeploymentStatus {
    /// Generation last acted on.
    #[serde(default)]
    pub observed_generation: i64,
    /// Owned active pods, including pods waiting on a pre-delete hook.
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub available_replicas: i32,
    /// Pods labelled with `updateRevision`.
    #[serde(default)]
    pub updated_replicas: i32,
    #[serde(default)]
    pub updated_ready_replicas: i32,
    /// Revision the template currently hashes to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub update_revision: String,
    /// The revision the pods not yet updated run: the oldest revision (by ControllerRevision
    /// number) a pod not being deleted still runs; `updateRevision` once every pod runs it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_revision: String,
    /// Bumped on ControllerRevision name collisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<GameDeploymentCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    /// Selector in string form, for the scale subresource (HPA).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
    /// Canary step in progress; equal to the step count when all are done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// Hash of the canary steps; a change restarts them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_step_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_delete_hook_condition: Vec<HookCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_inplace_hook_condition: Vec<HookCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_inplace_hook_condition: Vec<HookCondition>,
}

/// A condition on the GameDeployment (types `FailedScale`, `FailedUpdate`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameDeploymentCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// `Progressing` only, while `spec.progressDeadlineSeconds` is set: when a pod last made
    /// progress (as Deployment's `lastUpdateTime`); the deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl GameDeploymentCondition {
    /// `Progressing=False` with reason `ProgressDeadlineExceeded`: the rollout stopped making
    /// progress for `spec.progressDeadlineSeconds` (as a Deployment says it).
    pub fn is_progress_deadline_exceeded(&self) -> bool {
        self.type_ == crate::names::CONDITION_PROGRESSING
            && self.status == "False"
            && self.reason == crate::names::REASON_PROGRESS_DEADLINE_EXCEEDED
    }
}

/// Why updates are paused.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum PauseReason {
    /// A canary pause step was reached.
    PausedByCanaryPauseStep,
    /// A canary hook step did not succeed.
    PausedByStepBasedHook,
}

/// A reason updates are paused, and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    pub reason: PauseReason,
    /// When the pause began; timed canary pauses count from here.
    pub start_time: Time,
}

/// Canary progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Stable revision the canary started from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Recorded for compatibility; the original never read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_start_time: Option<Time>,
    /// HookRun of the current hook step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_step_hook_run: String,
}

/// A pod waiting on a hook, and the hook's last phase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookCondition {
    pub pod_name: String,
    /// When the hook was started for this pod.
    pub start_time: Time,
    pub phase: HookPhase,
}

/// A budget field (partition, maxUnavailable, maxSurge, createBatch) holds neither a
/// non-negative integer nor a percentage. The CRD rejects such values; this shows up for objects
/// that bypassed it.
#[derive(Debug, thiserror::Error)]
#[error("spec.{field} is {value:?}: use a non-negative integer or a percentage such as \"20%\"")]
pub struct InvalidIntOrPercent {
    /// JSON path of the field inside `spec`.
    pub field: &'static str,
    /// The offending value as written.
    pub value: String,
}

/// Integer, or percentage of `total`, from an IntOrString budget field.
fn scaled(
    value: &IntOrString,
    total: i32,
    round_up: bool,
    field: &'static str,
) -> Result<i32, InvalidIntOrPercent> {
    let invalid = || InvalidIntOrPercent {
        field,
        value: match value {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::String(s) => s.clone(),
        },
    };
    match value {
        IntOrString::Int(i) if *i >= 0 => Ok(*i),
        IntOrString::Int(_) => Err(invalid()),
        IntOrString::String(s) => {
            let digits = s.strip_suffix('%').ok_or_else(invalid)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let percent: i64 = digits.parse().map_err(|_| invalid())?;
            // A long enough percentage overflows: a clear error, never a panic.
            let product = i64::from(total.max(0))
                .checked_mul(percent)
                .ok_or_else(invalid)?;
            let scaled = product / 100 + i64::from(round_up && product % 100 != 0);
            i32::try_from(scaled).map_err(|_| invalid())
        }
    }
}

/// A partition for `replicas` pods, rounded as OpenKruise CloneSet does
/// (`CalculatePartitionReplicas`): an integer as written; a percentage rounds up, so any
/// percentage above 0% keeps at least one pod back, but one below 100% of more than one pod
/// lets at least one pod through, and none exceeds `replicas`.
fn partition_of(
    value: &IntOrString,
    replicas: i32,
    field: &'static str,
) -> Result<i32, InvalidIntOrPercent> {
    let kept = scaled(value, replicas, true, field)?;
    Ok(match value {
        IntOrString::Int(_) => kept,
        IntOrString::String(_) => {
            let replicas = replicas.max(0);
            // The percentage itself: `scaled` of 100 is the number written before the '%'.
            let below_all = scaled(value, 100, true, field)? < 100;
            if below_all && replicas > 1 && kept >= replicas {
                replicas - 1
            } else {
                kept.min(replicas)
            }
        }
    })
}

impl CanaryStep {
    /// The pods this step keeps back for `replicas`, if it is a partition step; percentages
    /// round as `updateStrategy.partition`'s.
    pub fn partition_for(&self, replicas: i32) -> Option<Result<i32, InvalidIntOrPercent>> {
        self.partition
            .as_ref()
            .map(|p| partition_of(p, replicas, "updateStrategy.canary.steps[].partition"))
    }
}

impl GameDeploymentSpec {
    /// Desired pods, with the schema default.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(DEFAULT_REPLICAS)
    }

    /// Update strategy type, with the schema default (the original fails every update on an
    /// empty type; we never see one).
    pub fn update_strategy_type(&self) -> UpdateStrategyType {
        self.update_strategy
            .as_ref()
            .and_then(|u| u.type_.clone())
            .unwrap_or_default()
    }

    /// Whether the user (or a canary pause) stopped pod updates.
    pub fn paused(&self) -> bool {
        self.update_strategy.as_ref().is_some_and(|u| u.paused)
    }

    /// Pods to keep on old revisions for `replicas`; percentages round as CloneSet's (see
    /// [`partition_of`]).
    pub fn partition(&self, replicas: i32) -> Result<i32, InvalidIntOrPercent> {
        match self
            .update_strategy
            .as_ref()
            .and_then(|u| u.partition.as_ref())
        {
            Some(p) => partition_of(p, replicas, "updateStrategy.partition"),
            None => Ok(DEFAULT_PARTITION),
        }
    }

    /// Extra pods allowed during an update for `replicas`; percentages round up.
    pub fn max_surge(&self, replicas: i32) -> Result<i32, InvalidIntOrPercent> {
        match self
            .update_strategy
            .as_ref()
            .and_then(|u| u.max_surge.as_ref())
        {
            Some(s) => scaled(s, replicas, true, "updateStrategy.maxSurge"),
            None => Ok(DEFAULT_MAX_SURGE),
        }
    }

    /// Pods that may be unavailable at once for `replicas`. Percentages round up, or down when
    /// `maxSurge` is positive, as in the original.
    pub fn max_unavailable(&self, replicas: i32) -> Result<i32, InvalidIntOrPercent> {
        let round_up = self.max_surge(replicas)? == 0;
        let default = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_owned());
        let value = self
            .update_strategy
            .as_ref()
            .and_then(|u| u.max_unavailable.as_ref())
            .unwrap_or(&default);
        scaled(value, replicas, round_up, "updateStrategy.maxUnavailable")
    }

    /// The most pods created in one wave for `replicas` (percentages round up), or `None` when
    /// `scaleStrategy.createBatch` is unset: then creation is not held back at all.
    pub fn create_batch(&self, replicas: i32) -> Result<Option<i32>, InvalidIntOrPercent> {
        self.scale_strategy
            .as_ref()
            .and_then(|s| s.create_batch.as_ref())
            .map(|b| scaled(b, replicas, true, "scaleStrategy.createBatch"))
            .transpose()
    }

    /// Seconds between marking a pod unready and swapping its images.
    pub fn grace_period_seconds(&self) -> i32 {
        self.in_place_update_strategy()
            .and_then(|s| s.grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS)
    }

    /// `inPlaceUpdateStrategy.policy`, defaulted.
    pub fn in_place_update_policy(&self) -> InPlaceUpdatePolicy {
        self.in_place_update_strategy()
            .and_then(|s| s.policy)
            .unwrap_or_default()
    }

    /// `inPlaceUpdateStrategy.infeasibleResizePolicy`, defaulted.
    pub fn infeasible_resize_policy(&self) -> InfeasibleResizePolicy {
        self.in_place_update_strategy()
            .and_then(|s| s.infeasible_resize_policy)
            .unwrap_or_default()
    }

    /// Per-pod deadline for one in-place update, if any.
    pub fn deadline_seconds(&self) -> Option<i32> {
        self.in_place_update_strategy()
            .and_then(|s| s.deadline_seconds)
    }

    /// Canary steps; empty when the canary is not used.
    pub fn canary_steps(&self) -> &[CanaryStep] {
        self.update_strategy
            .as_ref()
            .and_then(|u| u.canary.as_ref())
            .map_or(&[], |c| c.steps.as_slice())
    }

    /// ControllerRevisions kept beyond the live ones.
    pub fn revision_history_limit(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
    }

    /// Seconds a pod must be ready before it is available.
    pub fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// Seconds without progress before the rollout is reported stuck; `None`: no deadline.
    pub fn progress_deadline_seconds(&self) -> Option<i32> {
        self.progress_deadline_seconds
    }

    fn in_place_update_strategy(&self) -> Option<&InPlaceUpdateStrategy> {
        self.update_strategy
            .as_ref()
            .and_then(|u| u.in_place_update_strategy.as_ref())
    }
}

/// The seed's GameDeployment (`deploy/examples/inplace-update.yaml`) as the API server would
/// hand it out (uid, namespace, generation set): the common starting point of unit tests.
#[cfg(test)]
pub(crate) fn seed_example() -> GameDeployment {
    let text = include_str!("../../../../deploy/examples/inplace-update.yaml");
    let mut gd: GameDeployment = serde_saphyr::from_str(text).expect("the seed example parses");
    gd.metadata.uid = Some("gd-uid".into());
    gd.metadata.namespace = Some("default".into());
    gd.metadata.generation = Some(1);
    gd
}

#[cfg(test)]
mod tests;
