//! What the planner's unit tests share: the seed example, a pod template, the instant they
//! plan at, and [`PlanInput`]s built from them, so each test spells out only what it observes.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use super::model::{HookRunView, NodeFacts, PlanInput};
use crate::api::{GameDeployment, HookTemplate};

/// The seed example, the starting point of the planner's unit tests.
pub(crate) fn seed() -> GameDeployment {
    crate::api::seed_example()
}

/// A pod template with two containers, the first running `image`: what the revision and
/// template-diff tests compare.
pub(crate) fn two_container_template(image: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"labels": {"app": "game"}},
        "spec": {"containers": [
            {"name": "python", "image": image, "command": ["python", "-m", "http.server"]},
            {"name": "sidecar", "image": "envoy:1"}
        ]}
    })
}

/// The instant the planner's unit tests plan at.
pub(crate) fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

static NO_HOOK_RUNS: BTreeMap<String, HookRunView> = BTreeMap::new();
static NO_HOOK_TEMPLATES: BTreeMap<String, Arc<HookTemplate>> = BTreeMap::new();
static NO_NODE_COSTS: BTreeMap<String, i64> = BTreeMap::new();
static NO_NODES: BTreeMap<String, NodeFacts> = BTreeMap::new();

impl<'a> PlanInput<'a> {
    /// `gd` as a first sync sees it at [`now`]: no pods, revisions, HookRuns, HookTemplates or
    /// node costs. Tests set what they observe with struct update syntax.
    pub(crate) fn for_test(gd: &'a GameDeployment) -> Self {
        PlanInput {
            hook_templates: &NO_HOOK_TEMPLATES,
            gd,
            pods: &[],
            revisions: &[],
            hook_runs: &NO_HOOK_RUNS,
            node_costs: &NO_NODE_COSTS,
            resize_supported: true,
            nodes: &NO_NODES,
            now: now(),
        }
    }
}
