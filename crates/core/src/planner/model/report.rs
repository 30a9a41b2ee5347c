//! Something that went wrong, reported as a status condition: a problem a phase found, or a
//! write of the plan that failed (merged into the status by `outcome::status_after`).

/// Something that went wrong during a reconcile, reported as a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionReport {
    /// `FailedScale` or `FailedUpdate`.
    pub condition: &'static str,
    pub reason: &'static str,
    pub message: String,
}
