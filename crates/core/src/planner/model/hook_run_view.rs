//! What the planner reads of a HookRun the GameDeployment owns.

use std::collections::BTreeMap;

use crate::api::{HookPhase, HookRun};

/// What the controller needs of one HookRun it owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRunView {
    /// `None` until the hook operator has looked at it (as good as Pending).
    pub phase: Option<HookPhase>,
    pub labels: BTreeMap<String, String>,
    /// `spec.terminate` is set: asked to stop, not yet stopped.
    pub terminate: bool,
}

impl HookRunView {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn from_hook_run(run: &HookRun) -> Self {
        HookRunView {
            phase: run.status.as_ref().and_then(|s| s.phase),
            labels: run.metadata.labels.clone().unwrap_or_default(),
            terminate: run.spec.terminate,
        }
    }
}
