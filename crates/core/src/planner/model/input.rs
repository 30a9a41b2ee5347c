//! What one reconcile observed: the planner's only input besides the clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;

use super::cached_pod::CachedPod;
use super::hook_run_view::HookRunView;
use crate::api::{GameDeployment, HookTemplate};

/// What the operator knows of a Node: whether pods may be scheduled on it and its
/// `status.allocatable` (cpu and memory as written). Read only to decide whether a pod whose
/// in-place resize is infeasible may be recreated: only if some node could hold it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeFacts {
    /// Not cordoned (`spec.unschedulable` unset or false).
    pub schedulable: bool,
    /// `status.allocatable` cpu and memory.
    pub allocatable: BTreeMap<String, String>,
}

/// What one reconcile observed.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// HookTemplates of the GameDeployment's namespace, by name (from the cache).
    pub hook_templates: &'a BTreeMap<String, Arc<HookTemplate>>,
    pub gd: &'a GameDeployment,
    /// Pods this GameDeployment owns, shared with the reflector cache (never copied), each
    /// with its view and decoded state annotation derived when the watch delivered it.
    pub pods: &'a [Arc<CachedPod>],
    pub revisions: &'a [ControllerRevision],
    /// HookRuns this GameDeployment owns, by name.
    pub hook_runs: &'a BTreeMap<String, HookRunView>,
    /// Node deletion cost by node name.
    pub node_costs: &'a BTreeMap<String, i64>,
    /// The API server serves `pods/resize` (Kubernetes 1.33+; found once at operator start):
    /// without it a cpu/memory change recreates the pod.
    pub resize_supported: bool,
    /// Nodes by name (cpu/memory allocatable, schedulability).
    pub nodes: &'a BTreeMap<String, NodeFacts>,
    pub now: Timestamp,
}
