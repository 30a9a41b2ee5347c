//! A deterministic replay harness for the in-place state machine: one pod, a tiny kubelet,
//! a HookRun phase, a virtual clock, and the scenario steps of a `fixtures/fsm/*.yaml` file.
//! Every decision goes through `gamedeploy_core::inplace::advance`, every write is applied the way
//! kube-apiserver would (strategic merge of labels, annotations, images, the condition; a
//! stale resourceVersion is a 409), and the result is a trace that insta snapshots.

use std::collections::{BTreeMap, BTreeSet};

use gamedeploy_core::inplace::table::Node;
use gamedeploy_core::inplace::{
    Action, ContainerView, Decoded, Endpoint, HookPhase, Input, Outcome, PodView, PodWrite, Policy,
    State, Target, Trigger, advance, decode,
};
use gamedeploy_core::names;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

// ----- fixture format ---------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    pub name: String,
    #[serde(default)]
    pub policy: Policy,
    pub pod: PodSpec,
    pub target: Target,
    #[serde(default)]
    pub kubelet: KubeletSpec,
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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletSpec {
    /// Seconds from a spec image change to the new container running.
    #[serde(default = "one")]
    pub start_seconds: u64,
    /// Seconds from running to ready.
    #[serde(default = "one")]
    pub ready_seconds: u64,
    #[serde(default)]
    pub images: BTreeMap<String, ImageSpec>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    /// `ImagePullBackOff` or `CrashLoopBackOff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
    /// A tag that resolves to the same digest as another image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_digest_as: Option<String>,
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
    pub kubelet_image: Option<BTreeMap<String, ImageSpec>>,
    /// The node's kubelet stops (true) or resumes (false) acting on spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_paused: Option<bool>,
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

// ----- kubelet model ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Phase {
    /// Running an instance; ready once `ready_at` has passed.
    Running { ready_at: u64 },
    /// Replacing the instance; the new one runs at `until`.
    Starting { until: u64 },
    /// Cannot start: `ImagePullBackOff` or `CrashLoopBackOff`; tries again at `retry_at`.
    BackOff { reason: String, retry_at: u64 },
}

#[derive(Debug, Clone)]
struct Container {
    image: String,
    phase: Phase,
    instance: u32,
    restarts: i32,
    started_at: u64,
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
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
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

// ----- the run ------------------------------------------------------------------------------

pub struct Sim {
    fixture: Fixture,
    epoch: Timestamp,
    now: u64,
    pod: PodView,
    previous_pod: PodView,
    rv: u64,
    containers: BTreeMap<String, Container>,
    target: Target,
    selected: bool,
    /// Phase per created HookRun; `hook` steps set the newest one.
    hook_runs: BTreeMap<String, HookPhase>,
    last_hook: Option<String>,
    kubelet_paused: bool,
    /// Last decision state recorded in the trace, to keep re-derivations out of it.
    last_state: Option<State>,
    crash: Option<Crash>,
    stale: bool,
    images: BTreeMap<String, ImageSpec>,
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
        let mut containers = BTreeMap::new();
        let mut statuses = BTreeMap::new();
        for (i, (name, image)) in fixture.pod.images.iter().enumerate() {
            let c = Container {
                image: image.clone(),
                phase: Phase::Running { ready_at: 0 },
                instance: 1,
                restarts: 0,
                started_at: 0,
            };
            let _ = i;
            containers.insert(name.clone(), c);
            statuses.insert(name.clone(), ContainerView::default());
        }
        let mut labels = BTreeMap::new();
        labels.insert(
            names::LABEL_REVISION.to_string(),
            fixture.pod.revision.clone(),
        );
        let pod = PodView {
            name: fixture.pod.name.clone(),
            namespace: "default".into(),
            resource_version: Some("1".into()),
            revision: Some(fixture.pod.revision.clone()),
            labels,
            annotations: fixture.pod.annotations.clone(),
            spec_images: fixture.pod.images.clone(),
            containers: statuses,
            in_place_ready: Some(fixture.pod.in_place_ready.unwrap_or(true)),
            pod_ip: Some("10.0.0.7".into()),
            host_ip: Some("192.0.2.10".into()),
            deleting: false,
            ..Default::default()
        };
        let unready_since = (pod.in_place_ready == Some(false)).then_some(0);
        let mut sim = Sim {
            target: fixture.target.clone(),
            images: fixture.kubelet.images.clone(),
            fixture,
            epoch,
            now: 0,
            previous_pod: pod.clone(),
            pod,
            rv: 1,
            containers,
            selected: false,
            hook_runs: BTreeMap::new(),
            last_hook: None,
            kubelet_paused: false,
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
        sim.sync_status();
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

    fn fmt_t(secs: u64) -> String {
        format!("{secs}s")
    }

    fn digest(&self, image: &str) -> String {
        let base = self
            .images
            .get(image)
            .and_then(|s| s.same_digest_as.clone())
            .unwrap_or_else(|| image.to_string());
        let h = base.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        format!("sha256:{:016x}", h)
    }

    fn bump(&mut self) {
        self.rv += 1;
        self.pod.resource_version = Some(self.rv.to_string());
    }

    /// Recomputes container statuses from the kubelet model; returns readiness changes.
    fn sync_status(&mut self) -> Vec<String> {
        let mut statuses = BTreeMap::new();
        for (name, c) in &self.containers {
            let mut v = ContainerView {
                image: c.image.clone(),
                image_id: Some(self.digest(&c.image)),
                container_id: Some(format!("containerd://{name}-{}", c.instance)),
                restart_count: c.restarts,
                ..Default::default()
            };
            match &c.phase {
                Phase::Running { ready_at } => {
                    v.running = true;
                    v.ready = self.now >= *ready_at;
                    v.started_at = Some(self.ts(c.started_at));
                }
                Phase::Starting { .. } => {
                    v.waiting_reason = Some("ContainerCreating".into());
                }
                Phase::BackOff { reason, .. } => {
                    v.waiting_reason = Some(reason.clone());
                    if reason != "CrashLoopBackOff" {
                        v.container_id = None;
                        v.image_id = None;
                    }
                }
            }
            statuses.insert(name.clone(), v);
        }
        let mut log = Vec::new();
        for (name, v) in &statuses {
            let was = self.pod.containers.get(name).is_some_and(|o| o.ready);
            if v.ready && !was && self.now > 0 {
                log.push(format!("{name}: instance ready"));
            }
        }
        if statuses != self.pod.containers {
            self.pod.containers = statuses;
            self.bump();
        }
        log
    }

    /// Advances the kubelet model to `self.now`; returns log lines.
    fn kubelet(&mut self) -> Vec<String> {
        let mut log = Vec::new();
        if self.kubelet_paused {
            return log;
        }
        let now = self.now;
        let start = self.fixture.kubelet.start_seconds;
        let ready = self.fixture.kubelet.ready_seconds;
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            let spec_image = self.pod.spec_images.get(&name).cloned().unwrap_or_default();
            let fail = self.images.get(&spec_image).and_then(|s| s.fail.clone());
            let c = self.containers.get_mut(&name).unwrap();
            // A spec image change kills the running instance, as kubelet does on a hash change.
            if c.image != spec_image {
                c.image = spec_image.clone();
                c.phase = Phase::Starting { until: now + start };
                log.push(format!(
                    "{name}: spec image is now {spec_image}; killing the running instance"
                ));
            }
            match c.phase.clone() {
                Phase::Starting { until } if now >= until => match fail.as_deref() {
                    Some("ImagePullBackOff") => {
                        c.phase = Phase::BackOff {
                            reason: "ImagePullBackOff".into(),
                            retry_at: now + 10,
                        };
                        log.push(format!("{name}: cannot pull {}: ImagePullBackOff", c.image));
                    }
                    Some(_) => {
                        c.instance += 1;
                        c.restarts += 1;
                        c.phase = Phase::BackOff {
                            reason: "CrashLoopBackOff".into(),
                            retry_at: now + 10,
                        };
                        log.push(format!(
                            "{name}: instance {} crashed: CrashLoopBackOff",
                            c.instance
                        ));
                    }
                    None => {
                        c.instance += 1;
                        c.restarts += 1;
                        c.started_at = now;
                        c.phase = Phase::Running {
                            ready_at: now + ready,
                        };
                        log.push(format!(
                            "{name}: instance {} running {} (restartCount {})",
                            c.instance, c.image, c.restarts
                        ));
                    }
                },
                Phase::BackOff { retry_at, .. } if now >= retry_at => {
                    c.phase = Phase::Starting { until: now + start };
                    log.push(format!("{name}: retrying {}", c.image));
                }
                _ => {}
            }
        }
        log.extend(self.sync_status());
        log
    }

    fn next_kubelet_time(&self) -> Option<u64> {
        if self.kubelet_paused {
            return None;
        }
        self.containers
            .values()
            .filter_map(|c| match c.phase {
                Phase::Running { ready_at } if ready_at > self.now => Some(ready_at),
                Phase::Starting { until } => Some(until.max(self.now)),
                Phase::BackOff { retry_at, .. } => Some(retry_at.max(self.now)),
                _ => None,
            })
            .min()
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
        if let Some(f) = &step.force {
            self.pod
                .annotations
                .insert(names::ANNOTATION_FORCE.into(), f.clone());
            self.bump();
        }
        if let Some(a) = &step.annotate {
            self.pod.annotations.extend(a.clone());
            self.bump();
        }
        if let Some(r) = step.set_in_place_ready {
            self.set_condition(r);
            self.bump();
        }
        if let Some(c) = step.crash {
            self.crash = Some(c);
        }
        if step.stale_cache == Some(true) {
            self.stale = true;
        }
        if let Some(images) = &step.kubelet_image {
            self.images.extend(images.clone());
        }
    }

    fn set_condition(&mut self, ready: bool) {
        if self.pod.in_place_ready != Some(ready) {
            self.unready_since = (!ready).then_some(self.now);
        }
        self.pod.in_place_ready = Some(ready);
    }

    /// Applies one write as the API server would; `Err` is the API answer.
    fn apply_write(&mut self, w: &PodWrite, forced_patch: bool) -> Result<(), String> {
        if let Some(rv) = &w.precondition
            && Some(rv) != self.pod.resource_version.as_ref()
        {
            return Err(format!(
                "409 Conflict: resourceVersion {rv} is stale (now {})",
                self.rv
            ));
        }
        self.previous_pod = self.pod.clone();
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
            for (c, image) in &w.images {
                let old = self.pod.spec_images.get(c);
                if old.is_some_and(|o| o == image) {
                    self.violations.push(format!(
                        "t={}: container {c} patched to the image it has",
                        self.now
                    ));
                }
                self.pod.spec_images.insert(c.clone(), image.clone());
            }
        }
        if let Some(c) = &w.condition {
            if w.endpoint != Endpoint::PodStatus {
                self.violations
                    .push("condition written through the pod endpoint".into());
            }
            self.set_condition(c.ready);
        }
        for (k, v) in &w.labels {
            self.pod.labels.insert(k.clone(), v.clone());
        }
        self.pod.revision = self.pod.labels.get(names::LABEL_REVISION).cloned();
        for (k, v) in &w.annotations {
            match v {
                Some(v) => self.pod.annotations.insert(k.clone(), v.clone()),
                None => self.pod.annotations.remove(k),
            };
        }
        if let Some(r) = &w.checkpoint {
            self.pod.annotations.insert(
                names::ANNOTATION_STATE.into(),
                gamedeploy_core::inplace::encode(r),
            );
        }
        self.bump();
        Ok(())
    }

    fn reconcile(&mut self) -> bool {
        let view = if std::mem::take(&mut self.stale) {
            self.previous_pod.clone()
        } else {
            self.pod.clone()
        };
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
        let out: Outcome = advance(&input);
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
                Trigger::UnreadyObserved | Trigger::RestartObserved
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
                decision: Some(Decision {
                    transitions: out
                        .transitions
                        .iter()
                        .map(|t| format!("{} -> {} ({})", node(t.from), t.to, t.trigger))
                        .collect(),
                    state: out.state,
                    actions: out.actions.clone(),
                    wake_at: out
                        .wake_at
                        .map(|w| Self::fmt_t(w.duration_since(self.epoch).as_secs() as u64)),
                    executed,
                }),
            });
        }
        self.wake = out
            .wake_at
            .map(|w| w.duration_since(self.epoch).as_secs() as u64);
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
        let state = match decode(&self.pod.annotations) {
            Decoded::Valid(r) => Some(r.state),
            Decoded::Missing => None,
            _ => Some(State::Unknown),
        };
        let end = Final {
            state,
            revision: self.pod.revision.clone(),
            images: self.pod.spec_images.clone(),
            in_place_ready: self.pod.in_place_ready,
            restarts: self
                .containers
                .iter()
                .map(|(n, c)| (n.clone(), c.restarts))
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
