//! Well-known names shared with the original bcs-gamedeployment-operator and with users' scripts.
//! One place, so the controller, the state machine and the CRDs cannot drift apart.

/// API group of every custom resource we serve.
pub const GROUP: &str = "tkex.tencent.com";
/// API version of every custom resource we serve.
pub const VERSION: &str = "v1alpha1";

/// Pod label naming the ControllerRevision the pod was created from or updated to.
pub const LABEL_REVISION: &str = "controller-revision-hash";
/// Pod label holding the 5-character suffix of the pod name (the original's instance id).
pub const LABEL_INSTANCE_ID: &str = "tkex.bkbcs.tencent.com/gamedeployment-instance-id";

/// Pod annotation holding the in-place update state machine (versioned JSON).
pub const ANNOTATION_STATE: &str = "tkex.tencent.com/inplace-update-state";
/// Pod annotation a user sets to force the machine into a state; consumed by the operator.
pub const ANNOTATION_FORCE: &str = "tkex.tencent.com/inplace-update-force";

/// Readiness gate and pod condition type flipped around an in-place update.
pub const CONDITION_INPLACE_READY: &str = "InPlaceUpdateReady";
