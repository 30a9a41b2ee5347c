//! The operator's Prometheus metrics and its readiness, kept at the edge: the controller and
//! the executor update them as they act, so the pure core never learns that anyone watches.
//! Names keep the Go operator's `bkbcs_gamedeployment_` prefix, and its names where they mean
//! the same (`replicas`, `ready_replicas`, `reconcile_duration_seconds`, ...), so existing
//! dashboards keep working; what the original did not have gets a new name under the prefix.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use gamedeploy_core::api::{GameDeploymentCondition, GameDeploymentStatus};
use gamedeploy_core::inplace::{Record, State};

/// The prefix of every metric, as the Go operator named them.
pub const PREFIX: &str = "bkbcs_gamedeployment";

/// One GameDeployment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct GdLabels {
    pub namespace: String,
    pub name: String,
}

/// One GameDeployment's pods in one in-place machine state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MachineLabels {
    pub namespace: String,
    pub name: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// What a plan read (`bkbcs_gamedeployment_plans_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFrom {
    /// The roster's tally of a GameDeployment whose pods are all settled: no pod read.
    Tally,
    /// Every pod of the GameDeployment.
    Pods,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabels {
    from: &'static str,
}

impl From<PlanFrom> for PlanLabels {
    fn from(from: PlanFrom) -> Self {
        let from = match from {
            PlanFrom::Tally => "tally",
            PlanFrom::Pods => "pods",
        };
        PlanLabels { from }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    verb: &'static str,
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Why a reconcile counts as failed, for `reconcile_errors_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A write was refused or failed; the reconcile retries with back-off.
    WriteFailed,
    /// The status write failed.
    StatusWrite,
    /// A cache closed, or the object had no name.
    Internal,
    /// Leadership was lost mid-reconcile; its remaining writes were not sent.
    NotLeader,
}

impl ErrorKind {
    fn label(self) -> &'static str {
        match self {
            ErrorKind::WriteFailed => "write_failed",
            ErrorKind::StatusWrite => "status_write",
            ErrorKind::Internal => "internal",
            ErrorKind::NotLeader => "not_leader",
        }
    }
}

/// Where this process stands, for `/readyz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Not connected to the cluster yet.
    #[default]
    Starting,
    /// Waiting for the lease, held by someone else (or by no one a moment ago).
    Standby { holder: Option<String> },
    /// Running the controller; `leader` is false without leader election.
    Active { leader: bool, synced: bool },
}

/// The metrics of one operator process, and its registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_errors: Family<KindLabels, Counter>,
    reconcile_duration: Histograms<StatusLabels>,
    desired: Family<GdLabels, Gauge>,
    replicas: Family<GdLabels, Gauge>,
    ready: Family<GdLabels, Gauge>,
    available: Family<GdLabels, Gauge>,
    updated: Family<GdLabels, Gauge>,
    updated_ready: Family<GdLabels, Gauge>,
    /// 1 while the `Progressing` condition says `ProgressDeadlineExceeded`, else 0.
    deadline_exceeded: Family<GdLabels, Gauge>,
    inplace_duration: Histograms<PhaseLabels>,
    resize_duration: Histogram,
    resize_outcomes: Family<OutcomeLabels, Counter>,
    machines: Family<MachineLabels, Gauge>,
    api_writes: Family<WriteLabels, Counter>,
    plans: Family<PlanLabels, Counter>,
    leader: Gauge,
    role: Mutex<Role>,
    /// GameDeployments with series.
    seen: Mutex<BTreeSet<GdLabels>>,
}

fn reconcile_buckets() -> Histogram {
    // 1 ms to about 16 s: a no-op reconcile of 10,000 pods takes ~300 ms.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn inplace_buckets() -> Histogram {
    // 0.5 s to about 68 min: grace periods are seconds to minutes, image pulls up to many.
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_buckets),
            desired: Family::default(),
            replicas: Family::default(),
            ready: Family::default(),
            available: Family::default(),
            updated: Family::default(),
            updated_ready: Family::default(),
            deadline_exceeded: Family::default(),
            inplace_duration: Family::new_with_constructor(inplace_buckets),
            resize_duration: inplace_buckets(),
            resize_outcomes: Family::default(),
            machines: Family::default(),
            api_writes: Family::default(),
            plans: Family::default(),
            leader: Gauge::default(),
            role: Mutex::new(Role::Starting),
            seen: Mutex::default(),
        };
        let r = &mut m.registry;
        let name = |n: &str| format!("{PREFIX}_{n}");
        r.register(
            name("reconciles"),
            "Reconciles of GameDeployments run",
            m.reconciles.clone(),
        );
        r.register(
            name("reconcile_errors"),
            "Reconciles that did not finish cleanly, by kind (write_failed, status_write, internal, not_leader)",
            m.reconcile_errors.clone(),
        );
        r.register(
            name("reconcile_duration_seconds"),
            "How long one reconcile took, by status (success, failure)",
            m.reconcile_duration.clone(),
        );
        for (n, help, family) in [
            ("desired_replicas", "spec.replicas", &m.desired),
            ("replicas", "status.replicas", &m.replicas),
            ("ready_replicas", "status.readyReplicas", &m.ready),
            (
                "available_replicas",
                "status.availableReplicas",
                &m.available,
            ),
            ("updated_replicas", "status.updatedReplicas", &m.updated),
            (
                "updated_ready_replicas",
                "status.updatedReadyReplicas",
                &m.updated_ready,
            ),
        ] {
            r.register(
                name(n),
                format!("{help} of the GameDeployment, as last written"),
                family.clone(),
            );
        }
        r.register(
            name("progress_deadline_exceeded"),
            "1 while the GameDeployment's Progressing condition is False with reason ProgressDeadlineExceeded (spec.progressDeadlineSeconds passed without progress), else 0",
            m.deadline_exceeded.clone(),
        );
        r.register(
            name("inplace_update_duration_seconds"),
            "Per-pod in-place update time, by phase: unready_to_patched (grace and hooks), patched_to_ready (container restart until ready), total (picked for update until ready)",
            m.inplace_duration.clone(),
        );
        r.register(
            name("inplace_resize_duration_seconds"),
            "Per-pod in-place cpu/memory resize time, from the pod's pick for update until the kubelet applied the resize",
            m.resize_duration.clone(),
        );
        r.register(
            name("inplace_resize_outcomes"),
            "In-place cpu/memory resizes by how they ended: applied, infeasible (PodResizePending/Infeasible), failed (deadline or other failure)",
            m.resize_outcomes.clone(),
        );
        r.register(
            name("inplace_machines"),
            "Pods of a GameDeployment by in-place update state (from the pod's state annotation)",
            m.machines.clone(),
        );
        r.register(
            name("api_writes"),
            "API writes sent by the operator, by verb and resource",
            m.api_writes.clone(),
        );
        r.register(
            name("plans"),
            "Plans made, by what they read: tally (a GameDeployment whose pods are all settled, planned from the roster's counts without reading a pod) or pods (every pod read)",
            m.plans.clone(),
        );
        r.register(
            name("leader"),
            "1 while this process holds the leader lease (or runs without leader election)",
            m.leader.clone(),
        );
        let version: Family<VersionLabels, Gauge> = Family::default();
        version
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register(name("operator_version"), "The operator's version", version);
        m
    }

    /// The registry as OpenMetrics text, what `/metrics` serves.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One reconcile finished after `took`; `error` says why it did not finish cleanly.
    pub fn reconciled(&self, took: Duration, error: Option<ErrorKind>) {
        self.reconciles.inc();
        let status = if error.is_some() {
            "failure"
        } else {
            "success"
        };
        self.reconcile_duration
            .get_or_create(&StatusLabels { status })
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            self.reconcile_errors
                .get_or_create(&KindLabels { kind: kind.label() })
                .inc();
        }
    }

    /// A plan was made from `from`.
    pub fn planned(&self, from: PlanFrom) {
        self.plans.get_or_create(&from.into()).inc();
    }

    /// How many plans were made from `from` so far.
    pub fn plans(&self, from: PlanFrom) -> u64 {
        self.plans.get_or_create(&from.into()).get()
    }

    /// An API write is about to be sent.
    pub fn write_sent(&self, verb: &'static str, resource: &'static str) {
        self.api_writes
            .get_or_create(&WriteLabels { verb, resource })
            .inc();
    }

    /// The status columns of one GameDeployment, as the operator last wrote them.
    pub fn status(&self, gd: &GdLabels, desired: i32, status: &GameDeploymentStatus) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(gd.clone());
        }
        for (family, value) in [
            (&self.desired, desired),
            (&self.replicas, status.replicas),
            (&self.ready, status.ready_replicas),
            (&self.available, status.available_replicas),
            (&self.updated, status.updated_replicas),
            (&self.updated_ready, status.updated_ready_replicas),
            (
                &self.deadline_exceeded,
                i32::from(deadline_exceeded(status)),
            ),
        ] {
            family.get_or_create(gd).set(i64::from(value));
        }
    }

    /// How many of a GameDeployment's pods are in each state (every state is set, zeros
    /// included, so a state that empties reads 0 rather than its last count).
    pub fn machines(&self, gd: &GdLabels, counts: &std::collections::BTreeMap<State, i64>) {
        use strum::IntoEnumIterator;
        for state in State::iter() {
            self.machines
                .get_or_create(&machine_labels(gd, state))
                .set(counts.get(&state).copied().unwrap_or(0));
        }
    }

    /// A GameDeployment is gone: its series go too, or dashboards would show it for ever.
    pub fn forget(&self, gd: &GdLabels) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(gd);
        }
        use strum::IntoEnumIterator;
        for family in [
            &self.desired,
            &self.replicas,
            &self.ready,
            &self.available,
            &self.updated,
            &self.updated_ready,
            &self.deadline_exceeded,
        ] {
            family.remove(gd);
        }
        for state in State::iter() {
            self.machines.remove(&machine_labels(gd, state));
        }
    }

    /// The GameDeployments with series, for pruning after a relist.
    pub fn known(&self) -> Vec<GdLabels> {
        self.seen
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A pod's in-place update reached `Ready` at `now` with this record: its phases are
    /// read from the timestamps the machine wrote into the annotation on the way.
    pub fn inplace_ready(&self, record: &Record, now: Timestamp) {
        let seconds =
            |from: Timestamp, to: Timestamp| to.duration_since(from).as_secs_f64().max(0.0);
        let observe = |phase: &'static str, v: f64| {
            self.inplace_duration
                .get_or_create(&PhaseLabels { phase })
                .observe(v);
        };
        if let (Some(unready), Some(patched)) = (record.unready_since, record.patched_at) {
            observe("unready_to_patched", seconds(unready, patched));
        }
        if let Some(patched) = record.patched_at {
            observe("patched_to_ready", seconds(patched, now));
        }
        observe("total", seconds(record.started_at, now));
    }

    /// A pod write carrying `record` succeeded at `now`: counts a resize's outcome, and its
    /// duration once applied (`resized`: the write that follows the kubelet applying it).
    pub fn resize_written(&self, record: &Record, resized: bool, now: Timestamp) {
        if record.resources.is_empty() {
            return;
        }
        let outcome = match record.state {
            _ if resized => "applied",
            State::ResizeInfeasible => "infeasible",
            // Images are patched only once the resize is applied: a failure after that is the
            // image's, and the resize was already counted as applied.
            State::Failed if record.patched_at.is_none() => "failed",
            _ => return,
        };
        if resized {
            let took = now.duration_since(record.started_at).as_secs_f64();
            self.resize_duration.observe(took.max(0.0));
        }
        self.resize_outcomes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Whether this process leads (always true without leader election).
    pub fn set_role(&self, role: Role) {
        let leading = matches!(role, Role::Active { .. });
        self.leader.set(i64::from(leading));
        *self.role.lock().unwrap_or_else(|e| e.into_inner()) = role;
    }

    /// The caches of the running controller have all listed once (or, `false`, it stopped).
    pub fn set_synced(&self, synced: bool) {
        let mut role = self.role.lock().unwrap_or_else(|e| e.into_inner());
        if let Role::Active { synced: s, .. } = &mut *role {
            *s = synced;
        }
    }

    pub fn role(&self) -> Role {
        self.role.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What `/readyz` answers: ready, and a line saying which role and why.
    pub fn readiness(&self) -> (bool, String) {
        match self.role() {
            Role::Starting => (false, "starting: the cluster has not answered yet".into()),
            Role::Standby { holder: Some(h) } => {
                (true, format!("standby: the lease is held by {h}"))
            }
            Role::Standby { holder: None } => (true, "standby: waiting for the lease".into()),
            Role::Active {
                leader: true,
                synced: true,
            } => (true, "leader: caches synced".into()),
            Role::Active {
                leader: true,
                synced: false,
            } => (false, "leader: caches not synced yet".into()),
            Role::Active {
                leader: false,
                synced: true,
            } => (true, "running (no leader election): caches synced".into()),
            Role::Active {
                leader: false,
                synced: false,
            } => (
                false,
                "running (no leader election): caches not synced yet".into(),
            ),
        }
    }
}

/// Whether `status` reports the rollout stuck past `spec.progressDeadlineSeconds`.
fn deadline_exceeded(status: &GameDeploymentStatus) -> bool {
    status
        .conditions
        .iter()
        .any(GameDeploymentCondition::is_progress_deadline_exceeded)
}

fn machine_labels(gd: &GdLabels, state: State) -> MachineLabels {
    MachineLabels {
        namespace: gd.namespace.clone(),
        name: gd.name.clone(),
        state: state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gamedeploy_core::names;

    fn gd() -> GdLabels {
        GdLabels {
            namespace: "games".into(),
            name: "squad".into(),
        }
    }

    #[test]
    fn every_metric_is_rendered_under_the_go_operators_prefix() {
        let m = Metrics::new();
        m.reconciled(Duration::from_millis(20), None);
        m.reconciled(Duration::from_millis(30), Some(ErrorKind::WriteFailed));
        m.write_sent("patch", "pods/status");
        m.set_role(Role::Active {
            leader: true,
            synced: true,
        });
        let status = GameDeploymentStatus {
            replicas: 8,
            ready_replicas: 7,
            updated_replicas: 5,
            updated_ready_replicas: 4,
            ..Default::default()
        };
        m.status(&gd(), 8, &status);
        let text = m.render();
        for line in [
            "bkbcs_gamedeployment_reconciles_total 2",
            r#"bkbcs_gamedeployment_reconcile_errors_total{kind="write_failed"} 1"#,
            r#"bkbcs_gamedeployment_reconcile_duration_seconds_count{status="success"} 1"#,
            r#"bkbcs_gamedeployment_reconcile_duration_seconds_count{status="failure"} 1"#,
            r#"bkbcs_gamedeployment_desired_replicas{namespace="games",name="squad"} 8"#,
            r#"bkbcs_gamedeployment_replicas{namespace="games",name="squad"} 8"#,
            r#"bkbcs_gamedeployment_ready_replicas{namespace="games",name="squad"} 7"#,
            r#"bkbcs_gamedeployment_updated_replicas{namespace="games",name="squad"} 5"#,
            r#"bkbcs_gamedeployment_updated_ready_replicas{namespace="games",name="squad"} 4"#,
            r#"bkbcs_gamedeployment_progress_deadline_exceeded{namespace="games",name="squad"} 0"#,
            r#"bkbcs_gamedeployment_api_writes_total{verb="patch",resource="pods/status"} 1"#,
            "bkbcs_gamedeployment_leader 1",
            "# TYPE bkbcs_gamedeployment_reconcile_duration_seconds histogram",
            "# TYPE bkbcs_gamedeployment_replicas gauge",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(text.contains(r#"bkbcs_gamedeployment_operator_version{version=""#));
    }

    #[test]
    fn a_rollout_past_its_deadline_reads_1_until_it_progresses() {
        let m = Metrics::new();
        let mut status = GameDeploymentStatus {
            conditions: vec![GameDeploymentCondition {
                type_: names::CONDITION_PROGRESSING.into(),
                status: "False".into(),
                reason: names::REASON_PROGRESS_DEADLINE_EXCEEDED.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let line = |v: i32| {
            format!(
                r#"bkbcs_gamedeployment_progress_deadline_exceeded{{namespace="games",name="squad"}} {v}"#
            )
        };
        m.status(&gd(), 3, &status);
        assert!(m.render().lines().any(|l| l == line(1)), "{}", m.render());
        status.conditions[0].status = "True".into();
        status.conditions[0].reason = names::REASON_UPDATING.into();
        m.status(&gd(), 3, &status);
        assert!(m.render().lines().any(|l| l == line(0)), "{}", m.render());
    }

    #[test]
    fn a_deleted_game_deployment_leaves_no_series() {
        let m = Metrics::new();
        m.status(&gd(), 3, &GameDeploymentStatus::default());
        m.machines(&gd(), &[(State::Ready, 3)].into());
        assert!(m.render().contains(r#"state="Ready"} 3"#));
        assert_eq!(m.known(), vec![gd()]);
        m.forget(&gd());
        let text = m.render();
        assert!(!text.contains("squad"), "{text}");
        assert!(m.known().is_empty());
    }

    #[test]
    fn resize_outcomes_and_duration_are_counted_from_the_written_record() {
        let m = Metrics::new();
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let mut r = Record::start("rev-2", t("2026-01-01T00:00:00Z"));
        m.resize_written(&r, true, t("2026-01-01T00:00:05Z"));
        r.resources.insert("app".into(), Default::default());
        r.state = State::Ready;
        m.resize_written(&r, true, t("2026-01-01T00:00:05Z"));
        r.state = State::ResizeInfeasible;
        m.resize_written(&r, false, t("2026-01-01T00:00:06Z"));
        r.state = State::Resizing;
        m.resize_written(&r, false, t("2026-01-01T00:00:06Z"));
        assert!(
            !m.render().contains(r#"outcome="failed""#),
            "{}",
            m.render()
        );
        r.state = State::Failed;
        m.resize_written(&r, false, t("2026-01-01T00:00:07Z"));
        // A failure after the images were patched is not the resize's.
        r.patched_at = Some(t("2026-01-01T00:00:06Z"));
        m.resize_written(&r, false, t("2026-01-01T00:00:08Z"));
        let text = m.render();
        for line in [
            r#"bkbcs_gamedeployment_inplace_resize_outcomes_total{outcome="applied"} 1"#,
            r#"bkbcs_gamedeployment_inplace_resize_outcomes_total{outcome="infeasible"} 1"#,
            r#"bkbcs_gamedeployment_inplace_resize_outcomes_total{outcome="failed"} 1"#,
            "bkbcs_gamedeployment_inplace_resize_duration_seconds_sum 5.0",
            "bkbcs_gamedeployment_inplace_resize_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn in_place_phases_come_from_the_records_timestamps() {
        let m = Metrics::new();
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let mut r = Record::start("rev-2", t("2026-01-01T00:00:00Z"));
        r.unready_since = Some(t("2026-01-01T00:00:01Z"));
        r.patched_at = Some(t("2026-01-01T00:00:31Z"));
        m.inplace_ready(&r, t("2026-01-01T00:00:41Z"));
        let text = m.render();
        for line in [
            r#"bkbcs_gamedeployment_inplace_update_duration_seconds_sum{phase="unready_to_patched"} 30.0"#,
            r#"bkbcs_gamedeployment_inplace_update_duration_seconds_sum{phase="patched_to_ready"} 10.0"#,
            r#"bkbcs_gamedeployment_inplace_update_duration_seconds_sum{phase="total"} 41.0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn readiness_names_the_role() {
        let m = Metrics::new();
        assert!(!m.readiness().0);
        m.set_role(Role::Standby {
            holder: Some("pod-a".into()),
        });
        assert_eq!(
            m.readiness(),
            (true, "standby: the lease is held by pod-a".into())
        );
        assert!(
            m.render()
                .lines()
                .any(|l| l == "bkbcs_gamedeployment_leader 0")
        );
        m.set_role(Role::Active {
            leader: true,
            synced: false,
        });
        assert!(!m.readiness().0);
        m.set_synced(true);
        assert_eq!(m.readiness(), (true, "leader: caches synced".into()));
    }
}
