//! Every name users and scripts see: labels, annotations, condition types and reasons, event
//! reasons. Many are shared with the original bcs-gamedeployment-operator, so they are part of
//! the drop-in contract. One place, so the planner, the state machine, the executor and
//! README.md ("Names users and scripts see", checked by the test below) cannot drift apart.

// ----- API ---------------------------------------------------------------------------------
// The group and version of every custom resource we serve.

/// API group of every custom resource we serve.
pub const GROUP: &str = "tkex.tencent.com";
/// API version of every custom resource we serve.
pub const VERSION: &str = "v1alpha1";

// ----- Labels ------------------------------------------------------------------------------
// On pods the operator creates, and on the HookRuns it creates for them.

/// Pod label naming the ControllerRevision the pod was created from or updated to.
pub const LABEL_REVISION: &str = "controller-revision-hash";
/// Pod label holding the 5-character suffix of the pod name (the original's instance id).
pub const LABEL_POD_INSTANCE_ID: &str = "tkex.bkbcs.tencent.com/gamedeployment-instance-id";
/// HookRun label: the kind of hook step (`pre-inplace-step`, `pre-delete-step`, ...).
pub const LABEL_HOOKRUN_TYPE: &str = "hookrun-type";
/// HookRun label: the revision of the pod the run is for.
pub const LABEL_HOOKRUN_REVISION: &str = "workload-revision";
/// HookRun label: the instance id of the pod the run is for (the pod's is
/// [`LABEL_POD_INSTANCE_ID`]; the original names the two differently).
pub const LABEL_HOOKRUN_INSTANCE_ID: &str = "instance-id";
/// HookRun label (gamedeploy): the GameDeployment generation in which `retry: true` made this
/// run, so an unsuccessful hook is retried once per generation without writing the spec back.
pub const LABEL_HOOKRUN_RETRY_GENERATION: &str = "tkex.tencent.com/hook-retry-generation";
/// HookRun label: the canary step a `canary-step` run is for (its index in the steps).
pub const LABEL_HOOKRUN_CANARY_STEP_INDEX: &str = "canary-step-index";
/// HookRun label (gamedeploy): the `currentStepHash` of the steps a canary run was made for,
/// so a run made before the steps were edited is never taken for the current step's.
pub const LABEL_HOOKRUN_CANARY_STEP_HASH: &str = "tkex.tencent.com/canary-step-hash";

// ----- Annotations -------------------------------------------------------------------------
// On pods, nodes and GameDeployments; written by the operator or set by users.

/// Pod annotation holding the in-place update state machine (versioned JSON).
pub const ANNOTATION_STATE: &str = "tkex.tencent.com/inplace-update-state";
/// Pod annotation a user sets to force the machine into a state; consumed by the operator.
pub const ANNOTATION_FORCE: &str = "tkex.tencent.com/inplace-update-force";
/// Pod annotation of the Go original's in-place state, read to finish its updates.
pub const ANNOTATION_LEGACY_STATE: &str = "inplace-update-state";
/// Pod annotation of the Go original's grace period, read with [`ANNOTATION_LEGACY_STATE`].
pub const ANNOTATION_LEGACY_GRACE: &str = "inplace-update-grace";
/// Pod annotation the original writes on hot-patched pods (read by BCS's customised kubelet).
pub const ANNOTATION_HOTPATCH_CONTAINER: &str = "io.kubernetes.hotpatch.container";
/// Pod annotation recording a hot patch (same JSON shape as the original's).
pub const ANNOTATION_HOTPATCH_STATE: &str = "hotpatch-update-state";
/// Pod annotation marking a pod whose deletion waits for its preDelete hook (as the original).
pub const ANNOTATION_POD_DELETING: &str = "io.tencent.bcs.dev/game-pod-deleting";
/// Pod annotation: Kubernetes' deletion cost, the lower deleted first on scale-down.
pub const ANNOTATION_POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// GameDeployment annotation: `descend` deletes the highest-cost pods first.
pub const ANNOTATION_DELETION_COST_SORT: &str = "io.tencent.bcs.dev/pod-deletion-cost-sort-method";
/// GameDeployment annotation copied onto each new ControllerRevision, as Deployment copies it
/// onto its ReplicaSets: `kubectl gamedeploy history` shows it as CHANGE-CAUSE.
pub const ANNOTATION_CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// Node annotation: the deletion cost of every pod on the node.
pub const ANNOTATION_NODE_DELETION_COST: &str = "io.tencent.bcs.dev/node-deletion-cost";
/// GameDeployment annotation: `"true"` gives each new pod an index (see `planner::rules::pod_index`).
pub const ANNOTATION_INDEX_ON: &str = "tkex.bkbcs.tencent.com/gamedeployment-index-on";
/// GameDeployment annotation: the index range, `{"podStartIndex":a,"podEndIndex":b}`.
pub const ANNOTATION_INDEX_RANGE: &str = "tkex.bkbcs.tencent.com/gamedeployment-index-range";
/// Pod annotation: the pod's index.
pub const ANNOTATION_POD_INDEX: &str = "tkex.bkbcs.tencent.com/gamedeployment-index-id";
/// HookRun annotation: the HookTemplate it was made from.
pub const ANNOTATION_HOOK_TEMPLATE: &str = "tkex.tencent.com/hook-template";
/// HookRun annotation: a hash of that template's spec when the run was made.
pub const ANNOTATION_HOOK_TEMPLATE_HASH: &str = "tkex.tencent.com/hook-template-hash";
/// Container env: the pod's index.
pub const ENV_POD_INDEX: &str = "POD_INDEX";

// ----- Condition types and reasons ---------------------------------------------------------
// Conditions on pods and in the GameDeployment status. A FailedScale or FailedUpdate
// condition's reason is the event reason of the failure it reports (see below).

/// Readiness gate and pod condition type flipped around an in-place update.
pub const CONDITION_INPLACE_READY: &str = "InPlaceUpdateReady";
/// GameDeployment condition: creating or deleting pods failed, or the spec was refused.
pub const CONDITION_FAILED_SCALE: &str = "FailedScale";
/// GameDeployment condition: updating a pod failed, or a hook holds it.
pub const CONDITION_FAILED_UPDATE: &str = "FailedUpdate";
/// GameDeployment condition: how far the rollout has come.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// HookRun condition (kstatus): True once the run is Successful.
pub const CONDITION_READY: &str = "Ready";
/// HookRun condition (kstatus): True once nothing more will be measured, whatever the outcome.
pub const CONDITION_COMPLETED: &str = "Completed";
/// Progressing reason: updates are paused.
pub const REASON_PAUSED: &str = "Paused";
/// Progressing reason: pods whose update was abandoned by force hold the rollout.
pub const REASON_UPDATE_ABANDONED: &str = "UpdateAbandoned";
/// Progressing reason: pods are being updated.
pub const REASON_UPDATING: &str = "Updating";
/// Progressing reason: every pod the partition allows is updated.
pub const REASON_PARTITION_REACHED: &str = "PartitionReached";
/// Progressing reason: every pod runs the update revision.
pub const REASON_COMPLETE: &str = "Complete";
/// FailedScale reason: a revision to create pods from has no readable template.
pub const REASON_MISSING_REVISION: &str = "MissingRevision";
/// FailedUpdate reason: a pod's in-place update failed or its state is unreadable.
pub const REASON_INPLACE_UPDATE_FAILED: &str = "InPlaceUpdateFailed";
/// FailedUpdate reason: a completed, unsuccessful preInplace hook holds a pod.
pub const REASON_PRE_INPLACE_HOOK_FAILED: &str = "PreInplaceHookFailed";
/// FailedScale or FailedUpdate reason: a completed, unsuccessful preDelete hook holds a pod.
pub const REASON_PRE_DELETE_HOOK_FAILED: &str = "PreDeleteHookFailed";
/// InPlaceUpdateReady reason on a pod no in-place update holds.
pub const REASON_NO_INPLACE_UPDATE: &str = "NoInPlaceUpdate";
/// InPlaceUpdateReady reason while an in-place update holds the pod out of endpoints.
pub const REASON_START_INPLACE_UPDATE: &str = "StartInPlaceUpdate";
/// InPlaceUpdateReady reason (and state record reason) after a user abandoned the update.
pub const REASON_ABANDONED: &str = "Abandoned";
/// InPlaceUpdateReady reason (and state record reason) after the update was rolled back.
pub const REASON_ROLLED_BACK: &str = "RolledBack";
/// `FailedScale` reason: the pod index range is invalid, too small for `replicas`, or full.
pub const REASON_INVALID_POD_INDEX_RANGE: &str = "InvalidPodIndexRange";
/// Progressing=False: no pod made progress within spec.progressDeadlineSeconds.
pub const REASON_PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

// ----- Event reasons -----------------------------------------------------------------------
// Events on the GameDeployment and its pods (`kubectl describe`); most as the original names them.

/// The spec was refused (also the FailedScale reason): nothing is touched.
pub const EVENT_INVALID_SPEC: &str = "InvalidSpec";
/// The canary moved to another step (the original's text: "Set Step Index to N").
pub const EVENT_SET_STEP_INDEX: &str = "SetStepIndex";
/// The canary reached a pause without `duration`: it waits for `updateStrategy.paused: false`.
pub const EVENT_CANARY_PAUSED: &str = "CanaryPaused";
/// A canary hook step ended unsuccessfully: the rollout is paused (also the FailedUpdate reason).
pub const EVENT_CANARY_HOOK_FAILED: &str = "CanaryHookFailed";
/// A paused, failed canary hook step runs again after the user resumed.
pub const EVENT_CANARY_HOOK_RETRIED: &str = "CanaryHookRetried";
/// A canary step's HookRun could not be created.
pub const EVENT_FAILED_CREATE_CANARY_HOOKRUN: &str = "FailedCreateCanaryHookRun";
/// A ControllerRevision could not be created.
pub const EVENT_FAILED_CREATE_REVISION: &str = "FailedCreateRevision";
/// A pod was created.
pub const EVENT_SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
/// A pod could not be created.
pub const EVENT_FAILED_CREATE: &str = "FailedCreate";
/// A pod was deleted on scale-down or by `scaleStrategy.podsToDelete`.
pub const EVENT_SUCCESSFUL_DELETE: &str = "SuccessfulDelete";
/// A pod could not be deleted on scale-down or by `scaleStrategy.podsToDelete`.
pub const EVENT_FAILED_DELETE: &str = "FailedDelete";
/// A pod was deleted to be recreated on the update revision.
pub const EVENT_SUCCESSFUL_RECREATE: &str = "SuccessfulUpdatePodReCreate";
/// A pod could not be deleted to be recreated.
pub const EVENT_FAILED_RECREATE: &str = "FailedUpdatePodReCreate";
/// An in-place update step was written to a pod.
pub const EVENT_SUCCESSFUL_INPLACE: &str = "SuccessfulUpdatePodInPlace";
/// An in-place update failed, or its write was refused.
pub const EVENT_FAILED_INPLACE: &str = "FailedUpdatePodInPlace";
/// A pod's in-place resize can never fit its node (also the `FailedUpdate` reason).
pub const EVENT_RESIZE_INFEASIBLE: &str = "ResizeInfeasible";
/// A pod finished its in-place update and is back in Service endpoints.
pub const EVENT_INPLACE_READY: &str = "InPlaceUpdateReady";
/// A user forced a pod's machine into another state.
pub const EVENT_INPLACE_FORCED: &str = "InPlaceUpdateForced";
/// A user's force annotation was refused.
pub const EVENT_INPLACE_FORCE_REFUSED: &str = "InPlaceUpdateForceRefused";
/// A pod's state annotation is unreadable.
pub const EVENT_INVALID_INPLACE_STATE: &str = "InvalidInPlaceUpdateState";
/// A pod's state annotation has a version newer than this operator understands.
pub const EVENT_UNSUPPORTED_INPLACE_STATE: &str = "UnsupportedInPlaceUpdateState";
/// Operator defect: a transition missing from `states/transitions.yaml` was refused.
pub const EVENT_UNTABLED_TRANSITION: &str = "UntabledTransition";
/// A pod's preInplace hook completed unsuccessfully.
pub const EVENT_FAILED_PRE_INPLACE_HOOK: &str = "FailedPreInplaceHook";
/// `preInplaceUpdateStrategy.retry` runs a pod's failed hook again.
pub const EVENT_PRE_INPLACE_HOOK_RETRIED: &str = "PreInplaceHookRetried";
/// A pod's preInplace HookRun could not be created.
pub const EVENT_FAILED_CREATE_PRE_INPLACE_HOOKRUN: &str = "FailedCreatePreInplaceHookRun";
/// A pod's preDelete HookRun could not be created.
pub const EVENT_FAILED_CREATE_PRE_DELETE_HOOKRUN: &str = "FailedCreatePreDeleteHookRun";
/// A pod's postInplace HookRun was created.
pub const EVENT_SUCCESSFUL_CREATE_POST_HOOKRUN: &str = "SuccessfulCreatePostHookRun";
/// A pod's postInplace HookRun could not be created.
pub const EVENT_FAILED_CREATE_POST_HOOKRUN: &str = "FailedCreatePostHookRun";
/// A pod was hot-patched.
pub const EVENT_SUCCESSFUL_HOTPATCH: &str = "SuccessfulUpdatePodHotPatch";
/// A pod could not be hot-patched.
pub const EVENT_FAILED_HOTPATCH: &str = "FailedUpdatePodHotPatch";
/// An orphan pod matching the selector was adopted.
pub const EVENT_SUCCESSFUL_ADOPT: &str = "SuccessfulAdopt";
/// An orphan pod could not be adopted.
pub const EVENT_FAILED_ADOPT: &str = "FailedAdopt";
/// A pod no longer matching the selector was released.
pub const EVENT_SUCCESSFUL_RELEASE: &str = "SuccessfulRelease";
/// A pod could not be released.
pub const EVENT_FAILED_RELEASE: &str = "FailedRelease";
/// A HookRun ended Successful (Normal), on the HookRun.
pub const EVENT_HOOKRUN_SUCCESSFUL: &str = "HookRunSuccessful";
/// A HookRun ended Failed, Error, Inconclusive or Terminated (Warning), on the HookRun; the
/// note names the metric and the limit.
pub const EVENT_HOOKRUN_UNSUCCESSFUL: &str = "HookRunUnsuccessful";
/// A HookRun's spec cannot run (a broken condition, a missing argument), on the HookRun.
pub const EVENT_HOOKRUN_INVALID: &str = "InvalidHookRun";
/// A HookTemplate's runs could not start (a condition over its limits, a duplicated argument),
/// on the HookTemplate, when it is applied.
pub const EVENT_HOOKTEMPLATE_INVALID: &str = "InvalidHookTemplate";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `(constant, value)` of every name above, read from this file's source.
    fn constants() -> Vec<(String, String)> {
        include_str!("names.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter_map(|l| {
                let (name, rest) = l.split_once(": &str = \"")?;
                Some((name.to_string(), rest.strip_suffix("\";")?.to_string()))
            })
            .collect()
    }

    /// The code spans in the first cell of every table row of README's "Names users and
    /// scripts see" section (a cell may pair names: `` `SuccessfulCreate` / `FailedCreate` ``).
    fn readme_names() -> BTreeSet<String> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Names users and scripts see\n")
            .nth(1)
            .expect("README.md has a section \"Names users and scripts see\"");
        let section = section.split("\n## ").next().unwrap_or_default();
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once(" |").map(|(cell, _)| cell))
            .flat_map(|cell| cell.split('`').step_by(2).map(str::to_string))
            .filter(|name| !name.trim_matches([' ', '/']).is_empty())
            .collect()
    }

    #[test]
    fn readme_lists_exactly_the_names_defined_here() {
        let constants = constants();
        assert!(constants.len() > 40, "the source parser found the names");
        let values: BTreeSet<String> = constants.iter().map(|(_, v)| v.clone()).collect();
        let readme = readme_names();
        let undocumented: Vec<_> = constants
            .iter()
            .filter(|(_, v)| !readme.contains(v))
            .collect();
        assert!(
            undocumented.is_empty(),
            "missing from README.md: {undocumented:?}"
        );
        let unknown: Vec<_> = readme.difference(&values).collect();
        assert!(
            unknown.is_empty(),
            "README.md lists names that names.rs does not define: {unknown:?}"
        );
    }
}
