//! A deterministic replay harness for the in-place state machine: one pod, the simulated
//! kubelet's pure core (`crates/kubelet/src/pod_sync.rs`), a HookRun phase, a virtual clock,
//! and the scenario steps of a `fixtures/fsm/*.yaml` file. Every decision goes through
//! `gamedeploy_core::inplace::advance`, every write is applied by [`StoredPod`] with the few
//! API-server rules the machine relies on, and the result is a trace that insta snapshots.

use std::collections::{BTreeMap, BTreeSet};

use gamedeploy_core::api::HookPhase;
use gamedeploy_core::inplace::table::Node;
use gamedeploy_core::inplace::{
    Action, CONDITION_POD_RESIZE_PENDING, ContainerResources, Decoded, Endpoint, Input,
    MachineStep, PodView, PodWrite, Policy, State, Target, Trigger, advance, decode,
};
use gamedeploy_core::names;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;
use simulated_kubelet::status::api_time;
use simulated_kubelet::{ImageConfig, KubeletConfig, NodeConfig, NodeRuntime};

// ----- fixture format ---------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    pub name: String,
    #[serde(default)]
    pub policy: Policy,
    pub pod: PodSpec,
    pub target: Target,
    /// The simulated kubelet's behaviour (`crates/kubelet/src/config.rs`).
    #[serde(default)]
    pub kubelet: KubeletConfig,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Virtual seconds to run.
    pub until: u64,
    #[serde(default)]
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    pub name: String,
    pub revision: String,
    pub images: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Initial `InPlaceUpdateReady` (default True: a settled pod).
    #[serde(default)]
    pub in_place_ready: Option<bool>,
    /// `resources` per container, as in a pod spec.
    #[serde(default)]
    pub resources: BTreeMap<String, serde_json::Value>,
    /// `resizePolicy` per container, as in a pod spec.
    #[serde(default)]
    pub resize_policy: BTreeMap<String, serde_json::Value>,
}

/// One scripted event; exactly one field besides `at` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    pub at: u64,
    /// The scheduler picks the pod (or stops picking it with `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<bool>,
    /// The GameDeployment's target for this pod changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The HookRun's phase changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookPhase>,
    /// A user sets the force annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<String>,
    /// A user (or anything) sets an annotation to a raw value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotate: Option<BTreeMap<String, String>>,
    /// Someone sets `InPlaceUpdateReady` to this value behind the operator's back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_in_place_ready: Option<bool>,
    /// The operator dies: `beforeWrite` (its next decision is lost entirely) or `afterWrite`
    /// (only the first write of its next decision lands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<Crash>,
    /// The operator's next decision is made on the pod as it was before the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_cache: Option<bool>,
    /// Change how kubelet treats an image from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_image: Option<BTreeMap<String, ImageConfig>>,
    /// The node's kubelet stops (true) or resumes (false) acting on spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_paused: Option<bool>,
    /// The kubelet reports `PodResizePending` with this reason (`Deferred`, `Infeasible`) for
    /// the current generation (pause the kubelet first, or its next status replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_pending: Option<String>,
    /// The API server refuses (true) or accepts again (false) writes to `pods/resize`, as it
    /// refuses a resize its validation rejects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_resize: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Crash {
    BeforeWrite,
    AfterWrite,
}

/// Outcomes a fixture asserts beyond its snapshot.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    pub state: Option<State>,
    #[serde(default)]
    pub images: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub in_place_ready: Option<bool>,
    /// Restarts per container over the whole run.
    #[serde(default)]
    pub restarts: Option<BTreeMap<String, i32>>,
    /// Pod writes by the operator over the whole run.
    #[serde(default)]
    pub pod_writes: Option<usize>,
}

// ----- trace --------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub t: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionTrace>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionTrace {
    pub transitions: Vec<String>,
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<String>,
    /// What happened to the actions (crash, conflict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Final {
    pub state: Option<State>,
    pub revision: Option<String>,
    pub images: BTreeMap<String, String>,
    pub in_place_ready: Option<bool>,
    pub restarts: BTreeMap<String, i32>,
    pub pod_writes: usize,
    pub hook_runs_created: BTreeSet<String>,
    /// The spec's cpu/memory per container (absent for pods without any).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ContainerResources>,
    /// `PodResizePending` reason at the end, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize_pending: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub name: String,
    pub entries: Vec<Entry>,
    #[serde(rename = "final")]
    pub end: Final,
    #[serde(skip)]
    pub edges: BTreeSet<(Node, State, Trigger)>,
    #[serde(skip)]
    pub violations: Vec<String>,
}

// ----- the API server ------------------------------------------------------------------------

/// The one pod as the API server stores it, with only the write rules the machine relies on:
/// every accepted write bumps `metadata.resourceVersion`; a write preconditioned on an older
/// one is refused with 409; `pods/status` replaces the status and leaves the spec alone.
struct StoredPod {
    pod: Pod,
    rv: u64,
}

impl StoredPod {
    fn bump(&mut self) {
        self.rv += 1;
        self.pod.metadata.resource_version = Some(self.rv.to_string());
    }

    fn check_precondition(&self, rv: Option<&String>) -> Result<(), String> {
        match rv {
            Some(rv) if *rv != self.rv.to_string() => Err(format!(
                "409 Conflict: resourceVersion {rv} is stale (now {})",
                self.rv
            )),
            _ => Ok(()),
        }
    }

    /// The kubelet's `pods/status` write: its status is complete (it carries conditions it
    /// does not own as stored), so it replaces the stored one.
    fn write_status(&mut self, status: PodStatus) {
        self.pod.status = Some(status);
        self.bump();
    }

    /// Strategic merge of one condition: conditions merge by `type`.
    fn merge_condition(&mut self, condition: PodCondition) {
        let conditions = self
            .pod
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new);
        match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
            Some(c) => *c = condition,
            None => conditions.push(condition),
        }
    }

    /// Strategic merge of container images: containers merge by `name`.
    fn merge_image(&mut self, container: &str, image: &str) {
        let spec = self.pod.spec.get_or_insert_with(Default::default);
        if let Some(c) = spec.containers.iter_mut().find(|c| c.name == container) {
            c.image = Some(image.to_string());
        }
    }

    /// Strategic merge of a container's `resources` patch (`pods/resize`): each request and
    /// limit set, `null` removes it.
    fn merge_resources(&mut self, container: &str, patch: &serde_json::Value) {
        let spec = self.pod.spec.get_or_insert_with(Default::default);
        let Some(c) = spec.containers.iter_mut().find(|c| c.name == container) else {
            return;
        };
        let mut current = serde_json::to_value(c.resources.clone().unwrap_or_default()).unwrap();
        for field in ["requests", "limits"] {
            let Some(changes) = patch.get(field).and_then(|v| v.as_object()) else {
                continue;
            };
            let map = current
                .as_object_mut()
                .unwrap()
                .entry(field)
                .or_insert_with(|| json!({}));
            if map.is_null() {
                *map = json!({});
            }
            for (k, v) in changes {
                let map = map.as_object_mut().unwrap();
                if v.is_null() {
                    map.remove(k);
                } else {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        c.resources = Some(serde_json::from_value(current).unwrap());
    }

    /// A spec change: `metadata.generation` moves on.
    fn next_generation(&mut self) {
        let g = self.pod.metadata.generation.unwrap_or(1);
        self.pod.metadata.generation = Some(g + 1);
    }

    fn labels(&mut self) -> &mut BTreeMap<String, String> {
        self.pod.metadata.labels.get_or_insert_with(BTreeMap::new)
    }

    fn annotations(&mut self) -> &mut BTreeMap<String, String> {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
    }
}

fn in_place_ready_condition(
    ready: bool,
    reason: &str,
    message: &str,
    at: Timestamp,
) -> PodCondition {
    PodCondition {
        type_: names::CONDITION_INPLACE_READY.into(),
        status: if ready { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: Some(api_time(at)),
        ..PodCondition::default()
    }
}

// ----- the kubelet ---------------------------------------------------------------------------

/// The trace starts with the pod's containers running and ready, whatever the fixture's
/// delays: the kubelet has run the pod since this long before the trace's zero.
const KUBELET_RAN_BEFORE: SignedDuration = SignedDuration::from_secs(3600);

/// One trace line per container whose reported state or readiness changed.
fn describe_kubelet(old: &PodStatus, new: &PodStatus) -> Vec<String> {
    let statuses = |s: &PodStatus| s.container_statuses.clone().unwrap_or_default();
    let old = statuses(old);
    statuses(new)
        .iter()
        .filter_map(|n| {
            let o = old.iter().find(|o| o.name == n.name);
            let mut parts = Vec::new();
            if o.map(|o| &o.state) != Some(&n.state) {
                parts.push(describe_state(n));
            }
            let last_exit =
                |c: &ContainerStatus| c.last_state.as_ref().and_then(|l| l.terminated.clone());
            if let Some(t) = last_exit(n).filter(|t| o.and_then(last_exit).as_ref() != Some(t)) {
                parts.push(format!(
                    "{} exited {} ({})",
                    short_id(t.container_id.as_deref().unwrap_or_default()),
                    t.exit_code,
                    t.reason.unwrap_or_default()
                ));
            }
            if o.is_some_and(|o| o.ready != n.ready) {
                parts.push(if n.ready { "ready" } else { "not ready" }.into());
            }
            (!parts.is_empty()).then(|| format!("{}: {}", n.name, parts.join("; ")))
        })
        .collect()
}

fn describe_state(c: &ContainerStatus) -> String {
    let state = c.state.clone().unwrap_or_default();
    match (state.running, state.waiting, state.terminated) {
        (Some(_), _, _) => format!(
            "running {} as {} (restartCount {})",
            c.image,
            short_id(c.container_id.as_deref().unwrap_or_default()),
            c.restart_count
        ),
        (None, Some(w), _) => {
            let reason = w.reason.unwrap_or_default();
            match w.message {
                Some(m) => format!("{reason}: {m}"),
                None => format!("{reason} {}", c.image),
            }
        }
        (None, None, _) => format!("terminated ({})", c.image),
    }
}

/// A container ID cut to 12 digits, as `docker ps` shows it.
fn short_id(id: &str) -> String {
    match id.split_once("://") {
        Some((scheme, hex)) => format!("{scheme}://{}", &hex[..hex.len().min(12)]),
        None => id.to_string(),
    }
}

// ----- the run ------------------------------------------------------------------------------

pub struct Sim {
    fixture: Fixture,
    epoch: Timestamp,
    now: u64,
    stored: StoredPod,
    /// The pod as it was before the operator's last write, for `staleCache`.
    previous_pod: Pod,
    kubelet: NodeRuntime,
    kubelet_config: KubeletConfig,
    node: NodeConfig,
    /// When the kubelet asked to look at the pod again.
    kubelet_wake: Option<u64>,
    target: Target,
    selected: bool,
    /// Phase per created HookRun; `hook` steps set the newest one.
    hook_runs: BTreeMap<String, HookPhase>,
    last_hook: Option<String>,
    kubelet_paused: bool,
    refuse_resize: bool,
    /// Last decision state recorded in the trace, to keep re-derivations out of it.
    last_state: Option<State>,
    crash: Option<Crash>,
    stale: bool,
    writes: usize,
    entries: Vec<Entry>,
    edges: BTreeSet<(Node, State, Trigger)>,
    violations: Vec<String>,
    /// When InPlaceUpdateReady last became False, for the grace invariant.
    unready_since: Option<u64>,
    /// Crash injection by write index (for the crash sweep), 1-based.
    crash_at_write: Option<(usize, Crash)>,
    /// The machine's requested wake-up.
    wake: Option<u64>,
}

impl Sim {
    pub fn new(fixture: Fixture) -> Self {
        let epoch: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let node = NodeConfig {
            host_ip: "192.0.2.10".parse().unwrap(),
            ..NodeConfig::default()
        };
        let in_place_ready = fixture.pod.in_place_ready.unwrap_or(true);
        let containers: Vec<_> = fixture
            .pod
            .images
            .iter()
            .map(|(name, image)| {
                let mut c = json!({"name": name, "image": image});
                if let Some(r) = fixture.pod.resources.get(name) {
                    c["resources"] = r.clone();
                }
                if let Some(p) = fixture.pod.resize_policy.get(name) {
                    c["resizePolicy"] = p.clone();
                }
                c
            })
            .collect();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": fixture.pod.name,
                "namespace": "default",
                "uid": format!("uid-{}", fixture.pod.name),
                "resourceVersion": "1",
                "generation": 1,
                "labels": {names::LABEL_REVISION: fixture.pod.revision},
                "annotations": fixture.pod.annotations,
            },
            "spec": {
                "nodeName": node.name,
                "readinessGates": [{"conditionType": names::CONDITION_INPLACE_READY}],
                "containers": containers,
            },
            // Kept by the kubelet when it first sees the pod, like a restarted kubelet does.
            "status": {"podIP": "10.0.0.7"},
        }))
        .unwrap();
        let mut stored = StoredPod { pod, rv: 1 };
        let ran_since = epoch - KUBELET_RAN_BEFORE;
        stored.merge_condition(in_place_ready_condition(
            in_place_ready,
            "Fixture",
            "as the fixture starts",
            ran_since,
        ));
        let unready_since = (!in_place_ready).then_some(0);
        let mut sim = Sim {
            target: fixture.target.clone(),
            kubelet_config: fixture.kubelet.clone(),
            fixture,
            epoch,
            now: 0,
            previous_pod: stored.pod.clone(),
            stored,
            kubelet: NodeRuntime::default(),
            node,
            kubelet_wake: None,
            selected: false,
            hook_runs: BTreeMap::new(),
            last_hook: None,
            kubelet_paused: false,
            refuse_resize: false,
            last_state: None,
            crash: None,
            stale: false,
            writes: 0,
            entries: Vec::new(),
            edges: BTreeSet::new(),
            violations: Vec::new(),
            unready_since,
            crash_at_write: None,
            wake: None,
        };
        sim.run_kubelet_until_epoch(ran_since);
        sim.previous_pod = sim.stored.pod.clone();
        sim
    }

    /// Injects a crash at the n-th operator write (1-based).
    pub fn crash_at_write(mut self, n: usize, crash: Crash) -> Self {
        self.crash_at_write = Some((n, crash));
        self
    }

    fn ts(&self, secs: u64) -> Timestamp {
        self.epoch + SignedDuration::from_secs(secs as i64)
    }

    fn secs(&self, t: Timestamp) -> u64 {
        t.duration_since(self.epoch).as_secs().max(0) as u64
    }

    fn fmt_t(secs: u64) -> String {
        format!("{secs}s")
    }

    /// Runs the kubelet from `since` to just before the trace's zero, untraced.
    fn run_kubelet_until_epoch(&mut self, since: Timestamp) {
        let mut at = since;
        loop {
            let d = self
                .kubelet
                .sync(&self.stored.pod, &self.kubelet_config, &self.node, at);
            if let Some(status) = d.status {
                self.stored.write_status(status);
            }
            match d.wake_at {
                Some(w) if w > at && w < self.epoch => at = w,
                _ => break,
            }
        }
    }

    /// One kubelet sync of the stored pod at `self.now`; returns trace lines.
    fn kubelet(&mut self) -> Vec<String> {
        if self.kubelet_paused {
            return Vec::new();
        }
        let now = self.ts(self.now);
        let d = self
            .kubelet
            .sync(&self.stored.pod, &self.kubelet_config, &self.node, now);
        assert!(
            d.bind.is_none() && !d.delete,
            "the pod is bound and alive: {d:?}"
        );
        self.kubelet_wake = d.wake_at.map(|t| self.secs(t));
        let Some(status) = d.status else {
            return Vec::new();
        };
        let log = describe_kubelet(
            self.stored
                .pod
                .status
                .as_ref()
                .unwrap_or(&PodStatus::default()),
            &status,
        );
        self.stored.write_status(status);
        log
    }

    fn next_kubelet_time(&self) -> Option<u64> {
        if self.kubelet_paused {
            return None;
        }
        self.kubelet_wake
    }

    fn apply_step(&mut self, step: &Step) {
        if let Some(s) = step.select {
            self.selected = s;
        }
        if let Some(t) = &step.target {
            self.target = t.clone();
        }
        if let (Some(h), Some(name)) = (step.hook, &self.last_hook) {
            self.hook_runs.insert(name.clone(), h);
        }
        if let Some(p) = step.kubelet_paused {
            self.kubelet_paused = p;
        }
        if let Some(r) = step.refuse_resize {
            self.refuse_resize = r;
        }
        if let Some(f) = &step.force {
            self.stored
                .annotations()
                .insert(names::ANNOTATION_FORCE.into(), f.clone());
            self.stored.bump();
        }
        if let Some(a) = &step.annotate {
            self.stored.annotations().extend(a.clone());
            self.stored.bump();
        }
        if let Some(r) = step.set_in_place_ready {
            self.set_in_place_ready(in_place_ready_condition(
                r,
                "Manual",
                "set behind the operator's back",
                self.ts(self.now),
            ));
            self.stored.bump();
        }
        if let Some(c) = step.crash {
            self.crash = Some(c);
        }
        if step.stale_cache == Some(true) {
            self.stale = true;
        }
        if let Some(images) = &step.kubelet_image {
            self.kubelet_config.set_images(images);
        }
        if let Some(reason) = &step.resize_pending {
            let generation = self.stored.pod.metadata.generation;
            let status = self.stored.pod.status.get_or_insert_with(Default::default);
            status.observed_generation = generation;
            self.stored.merge_condition(PodCondition {
                type_: CONDITION_POD_RESIZE_PENDING.into(),
                status: "True".into(),
                reason: Some(reason.clone()),
                message: Some(format!(
                    "Node didn't have enough capacity: cpu, requested: 64000, capacity: 4000 ({reason})"
                )),
                ..PodCondition::default()
            });
            self.stored.bump();
        }
    }

    fn in_place_ready(&self) -> Option<bool> {
        PodView::from_pod(&self.stored.pod).in_place_ready
    }

    /// Stores the condition and tracks, for the grace invariant, when it became False.
    fn set_in_place_ready(&mut self, condition: PodCondition) {
        let ready = condition.status == "True";
        if self.in_place_ready() != Some(ready) {
            self.unready_since = (!ready).then_some(self.now);
        }
        self.stored.merge_condition(condition);
    }

    /// Applies one operator write as the API server would; `Err` is the API answer.
    fn apply_write(&mut self, w: &PodWrite, forced_patch: bool) -> Result<(), String> {
        self.stored.check_precondition(w.precondition.as_ref())?;
        if self.refuse_resize && w.endpoint == Endpoint::PodResize {
            return Err("422 Unprocessable Entity: the resize is refused".into());
        }
        self.previous_pod = self.stored.pod.clone();
        if !w.resources.is_empty() {
            if w.endpoint != Endpoint::PodResize {
                self.violations
                    .push("resources written outside pods/resize".into());
            }
            for (c, patch) in &w.resources {
                self.stored.merge_resources(c, patch);
            }
            self.stored.next_generation();
        }
        if w.endpoint == Endpoint::PodResize
            && (w.checkpoint.is_some() || !w.labels.is_empty() || !w.annotations.is_empty())
        {
            self.violations
                .push("metadata written through pods/resize (it keeps none)".into());
        }
        if !w.images.is_empty() {
            if w.endpoint != Endpoint::Pod {
                self.violations
                    .push("images written through pods/status".into());
            }
            // Invariant 3: images change only after gracePeriodSeconds unready.
            let grace = self.fixture.policy.grace_period_seconds.max(0) as u64;
            let ok = match self.unready_since {
                Some(since) => self.now >= since + grace,
                None => false,
            };
            if !ok && !forced_patch {
                self.violations.push(format!(
                    "t={}: images patched without {grace}s unready (unready since {:?})",
                    self.now, self.unready_since
                ));
            }
            let spec_images = PodView::from_pod(&self.stored.pod).spec_images;
            for (c, image) in &w.images {
                if spec_images.get(c) == Some(image) {
                    self.violations.push(format!(
                        "t={}: container {c} patched to the image it has",
                        self.now
                    ));
                }
                self.stored.merge_image(c, image);
            }
            self.stored.next_generation();
        }
        if let Some(c) = &w.condition {
            if w.endpoint != Endpoint::PodStatus {
                self.violations
                    .push("condition written through the pod endpoint".into());
            }
            self.set_in_place_ready(in_place_ready_condition(
                c.ready,
                &c.reason,
                &c.message,
                c.last_transition_time,
            ));
        }
        self.stored.labels().extend(w.labels.clone());
        for (k, v) in &w.annotations {
            match v {
                Some(v) => self.stored.annotations().insert(k.clone(), v.clone()),
                None => self.stored.annotations().remove(k),
            };
        }
        if let Some(r) = &w.checkpoint {
            self.stored.annotations().insert(
                names::ANNOTATION_STATE.into(),
                gamedeploy_core::inplace::encode(r),
            );
        }
        self.stored.bump();
        Ok(())
    }

    fn reconcile(&mut self) -> bool {
        let view = PodView::from_pod(if std::mem::take(&mut self.stale) {
            &self.previous_pod
        } else {
            &self.stored.pod
        });
        let target = self.target.clone();
        let policy = self.fixture.policy.clone();
        let record_hook = match decode(&view.annotations) {
            Decoded::Valid(r) => r.hook_run,
            _ => None,
        };
        let hook = record_hook
            .as_ref()
            .and_then(|n| self.hook_runs.get(n).copied());
        let input = Input {
            pod: &view,
            target: &target,
            policy: &policy,
            hook,
            selected: self.selected,
            now: self.ts(self.now),
        };
        let out: MachineStep = advance(&input, &decode(&view.annotations));
        for tr in &out.transitions {
            self.edges.insert((tr.from, tr.to, tr.trigger));
        }
        for a in &out.actions {
            if let Action::Event {
                reason, message, ..
            } = a
                && reason == "UntabledTransition"
            {
                self.violations.push(message.clone());
            }
        }
        let forced_patch = out
            .transitions
            .iter()
            .any(|t| t.trigger == Trigger::Forced && t.to == State::ImagePatched);
        let mut executed = None;
        let mut changed = false;
        let mut crash = self.crash.take();
        for (i, a) in out.actions.iter().enumerate() {
            if let Action::WritePod(_) = a
                && let Some((n, c)) = self.crash_at_write
                && self.writes + 1 == n
            {
                crash = Some(c);
                self.crash_at_write = None;
            }
            match (crash, a) {
                (Some(Crash::BeforeWrite), _) => {
                    executed = Some(format!("operator crashed before action {}", i + 1));
                    break;
                }
                (Some(Crash::AfterWrite), _) if i > 0 && executed.is_some() => break,
                _ => {}
            }
            match a {
                Action::WritePod(w) => {
                    self.writes += 1;
                    if let Err(e) = self.apply_write(w, forced_patch) {
                        executed = Some(e);
                        break;
                    }
                    changed = true;
                    if crash == Some(Crash::AfterWrite) {
                        executed = Some(format!("operator crashed after action {}", i + 1));
                    }
                }
                Action::CreateHookRun(h) => {
                    if !self.hook_runs.contains_key(&h.name) {
                        self.hook_runs.insert(h.name.clone(), HookPhase::Pending);
                        self.last_hook = Some(h.name.clone());
                        changed = true;
                    }
                    if crash == Some(Crash::AfterWrite) && executed.is_none() {
                        executed = Some(format!("operator crashed after action {}", i + 1));
                    }
                }
                Action::Event { .. } => {}
            }
        }
        let crashed = executed
            .as_deref()
            .is_some_and(|e| e.starts_with("operator crashed"));
        if crash.is_some() && executed.is_none() {
            // No action to lose: the crash hits the next decision instead.
            self.crash = crash;
        }
        let derived_only = out.transitions.iter().all(|t| {
            matches!(
                t.trigger,
                Trigger::UnreadyObserved
                    | Trigger::RestartObserved
                    | Trigger::ResizeRequested
                    | Trigger::GraceElapsed
                    | Trigger::Deferred
            )
        });
        let news = !out.actions.is_empty()
            || executed.is_some()
            || out.state != self.last_state
            || !derived_only;
        if news && (!out.transitions.is_empty() || !out.actions.is_empty()) {
            self.last_state = out.state;
            self.entries.push(Entry {
                t: Self::fmt_t(self.now),
                step: None,
                kubelet: None,
                decision: Some(DecisionTrace {
                    transitions: out
                        .transitions
                        .iter()
                        .map(|t| format!("{} -> {} ({})", node(t.from), t.to, t.trigger))
                        .collect(),
                    state: out.state,
                    actions: out.actions.clone(),
                    wake_at: out.wake_at.map(|w| Self::fmt_t(self.secs(w))),
                    executed,
                }),
            });
        }
        self.wake = out.wake_at.map(|w| self.secs(w));
        // A restarted operator lists everything and decides again at once.
        changed || crashed
    }

    pub fn run(mut self) -> Trace {
        let mut steps = self.fixture.steps.clone();
        steps.sort_by_key(|s| s.at);
        let mut steps = steps.into_iter().peekable();
        let until = self.fixture.until;
        loop {
            // Everything due now: steps, kubelet, then decisions until quiet.
            while let Some(s) = steps.next_if(|s| s.at <= self.now) {
                self.apply_step(&s);
                self.entries.push(Entry {
                    t: Self::fmt_t(self.now),
                    step: Some(s),
                    kubelet: None,
                    decision: None,
                });
            }
            for line in self.kubelet() {
                self.entries.push(Entry {
                    t: Self::fmt_t(self.now),
                    step: None,
                    kubelet: Some(line),
                    decision: None,
                });
            }
            let mut rounds = 0;
            while self.reconcile() && rounds < 20 {
                rounds += 1;
                for line in self.kubelet() {
                    self.entries.push(Entry {
                        t: Self::fmt_t(self.now),
                        step: None,
                        kubelet: Some(line),
                        decision: None,
                    });
                }
            }
            if rounds >= 20 {
                self.violations
                    .push(format!("t={}: decisions did not settle", self.now));
            }
            let next = [
                steps.peek().map(|s| s.at),
                self.next_kubelet_time(),
                self.wake,
            ]
            .into_iter()
            .flatten()
            .filter(|t| *t > self.now)
            .min();
            match next {
                Some(t) if t <= until => self.now = t,
                _ => break,
            }
        }
        let pod = PodView::from_pod(&self.stored.pod);
        let state = match decode(&pod.annotations) {
            Decoded::Valid(r) => Some(r.state),
            Decoded::Missing => None,
            _ => Some(State::Unknown),
        };
        let resize_pending = pod
            .resize
            .as_ref()
            .and_then(|r| r.pending.as_ref())
            .map(|p| p.reason.clone());
        let end = Final {
            resources: pod.spec_resources.clone().into_iter().collect(),
            resize_pending,
            state,
            revision: pod.revision,
            images: pod.spec_images.into_iter().collect(),
            in_place_ready: pod.in_place_ready,
            restarts: pod
                .containers
                .into_iter()
                .map(|(n, c)| (n, c.restart_count))
                .collect(),
            pod_writes: self.writes,
            hook_runs_created: self.hook_runs.keys().cloned().collect(),
        };
        if let Some(e) = &self.fixture.expect {
            check_expect(e, &end, &mut self.violations);
        }
        Trace {
            name: self.fixture.name.clone(),
            entries: self.entries,
            end,
            edges: self.edges,
            violations: self.violations,
        }
    }
}

fn node(n: Node) -> String {
    match n {
        Node::Start => "[*]".into(),
        Node::State(s) => s.to_string(),
    }
}

fn check_expect(e: &Expect, end: &Final, v: &mut Vec<String>) {
    let mut check = |what: &str, ok: bool, want: String, got: String| {
        if !ok {
            v.push(format!("expected {what} {want}, got {got}"));
        }
    };
    if let Some(s) = e.state {
        check(
            "state",
            end.state == Some(s),
            format!("{s:?}"),
            format!("{:?}", end.state),
        );
    }
    if let Some(i) = &e.images {
        check(
            "images",
            &end.images == i,
            format!("{i:?}"),
            format!("{:?}", end.images),
        );
    }
    if let Some(r) = &e.revision {
        check(
            "revision",
            end.revision.as_ref() == Some(r),
            r.clone(),
            format!("{:?}", end.revision),
        );
    }
    if let Some(r) = e.in_place_ready {
        check(
            "inPlaceReady",
            end.in_place_ready == Some(r),
            r.to_string(),
            format!("{:?}", end.in_place_ready),
        );
    }
    if let Some(r) = &e.restarts {
        check(
            "restarts",
            &end.restarts == r,
            format!("{r:?}"),
            format!("{:?}", end.restarts),
        );
    }
    if let Some(w) = e.pod_writes {
        check(
            "pod writes",
            end.pod_writes == w,
            w.to_string(),
            end.pod_writes.to_string(),
        );
    }
}

pub fn load(path: &std::path::Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
