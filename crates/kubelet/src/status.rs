//! Renders a pod's container runtime (`container_runtime.rs`) as the `PodStatus` kubelet
//! reports: container statuses, phase, conditions and addresses. Starts from the stored status so that whatever the kubelet does
//! not own (readiness-gate conditions such as `InPlaceUpdateReady`, `qosClass`) is carried
//! over untouched, and keeps condition order and `lastTransitionTime` stable so that an
//! unchanged pod renders exactly as stored and costs no write.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::config::NodeConfig;
use super::container_runtime::{
    ContainerPhase, ContainerRuntime, Exit, PULL_ERROR_SHOWN, PendingReason, PodRuntime, Resize,
};

/// Conditions the kubelet computes, in the order it appends them.
pub const OWNED_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

/// API timestamps have whole seconds; truncating here keeps a re-render equal to what the
/// server stored.
pub fn api_time(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// The status of a pod no node has room for: `PodScheduled=False`, reason `Unschedulable`,
/// with the scheduler's message.
pub fn unschedulable(pod: &Pod, message: String, now: Timestamp) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
    let mut conditions = status.conditions.take().unwrap_or_default();
    let condition = Condition {
        type_: "PodScheduled",
        ok: false,
        problem: Some(("Unschedulable".into(), message)),
        // The scheduler records the generation it judged (CalculatePodConditionObservedGeneration).
        generation: pod.metadata.generation,
    };
    condition.set(&mut conditions, now);
    status.conditions = Some(conditions);
    status.phase = Some("Pending".into());
    status
}

/// The full status to report for `pod`.
pub fn render(pod: &Pod, runtime: &PodRuntime, node: &NodeConfig, now: Timestamp) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
    let generation = pod.metadata.generation;
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec_containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[]);
    let statuses: Vec<ContainerStatus> = spec_containers
        .iter()
        .filter_map(|c| {
            let rt = runtime.containers.get(&c.name)?;
            Some(container_status(
                &c.name,
                rt,
                &format!("{pod_name}_{namespace}({uid})"),
                now,
            ))
        })
        .collect();
    let unready: Vec<&str> = spec_containers
        .iter()
        .filter(|c| {
            !runtime
                .containers
                .get(&c.name)
                .is_some_and(|r| r.is_ready(now))
        })
        .map(|c| c.name.as_str())
        .collect();
    status.phase = Some(phase(&statuses).to_string());
    let mut conditions = status.conditions.take().unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
        // Pods created with a node already set never went through the binding.
        set_condition(&mut conditions, "PodScheduled", true, None, now);
    }
    let owned = |type_, ok, problem| Condition {
        type_,
        ok,
        problem,
        generation,
    };
    owned("PodReadyToStartContainers", true, None).set(&mut conditions, now);
    owned("Initialized", true, None).set(&mut conditions, now);
    let containers_not_ready = (!unready.is_empty()).then(|| {
        (
            "ContainersNotReady".to_string(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    });
    owned(
        "ContainersReady",
        containers_not_ready.is_none(),
        containers_not_ready.clone(),
    )
    .set(&mut conditions, now);
    let ready_problem = containers_not_ready.or_else(|| gates_not_ready(pod, &conditions));
    owned("Ready", ready_problem.is_none(), ready_problem).set(&mut conditions, now);
    resize_conditions(&mut conditions, &runtime.resize, generation, now);
    status.conditions = Some(conditions);
    if generation.is_some() {
        status.observed_generation = generation;
    }
    status.container_statuses = Some(statuses);
    let pod_ip = runtime.pod_ip.to_string();
    let host_ip = node.host_ip.to_string();
    status.pod_ips = Some(vec![PodIP { ip: pod_ip.clone() }]);
    status.pod_ip = Some(pod_ip);
    status.host_ips = Some(vec![HostIP {
        ip: host_ip.clone(),
    }]);
    status.host_ip = Some(host_ip);
    status.start_time = Some(api_time(runtime.start_time));
    status
}

/// `Ready` also needs every readiness gate's condition present and True; the messages are
/// kubelet's.
fn gates_not_ready(pod: &Pod, conditions: &[PodCondition]) -> Option<(String, String)> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    let messages: Vec<String> = gates
        .iter()
        .filter_map(
            |g| match conditions.iter().find(|c| c.type_ == g.condition_type) {
                None => Some(format!(
                    "corresponding condition of pod readiness gate {:?} does not exist.",
                    g.condition_type
                )),
                Some(c) if c.status != "True" => Some(format!(
                    "the status of pod readiness gate {:?} is not \"True\", but {}",
                    g.condition_type, c.status
                )),
                Some(_) => None,
            },
        )
        .collect();
    (!messages.is_empty()).then(|| ("ReadinessGatesNotReady".to_string(), messages.join(", ")))
}

/// A condition the kubelet sets: type, whether it holds, (reason, message) when it does not
/// (or for the resize conditions, always), and the pod generation it reflects.
struct Condition {
    type_: &'static str,
    ok: bool,
    problem: Option<(String, String)>,
    /// `observedGeneration`, set (as kubelet 1.35 does) when the pod has a generation.
    generation: Option<i64>,
}

impl Condition {
    /// Updates (in place, keeping list order) or appends the condition. `lastTransitionTime`
    /// moves only when the status flips.
    fn set(self, conditions: &mut Vec<PodCondition>, now: Timestamp) {
        let status = if self.ok { "True" } else { "False" }.to_string();
        let (reason, message) = self
            .problem
            .map_or((None, None), |(r, m)| (Some(r), Some(m)));
        match conditions.iter_mut().find(|c| c.type_ == self.type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(api_time(now));
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
                if self.generation.is_some() {
                    c.observed_generation = self.generation;
                }
            }
            None => conditions.push(PodCondition {
                type_: self.type_.to_string(),
                status,
                reason,
                message,
                last_transition_time: Some(api_time(now)),
                observed_generation: self.generation,
                ..PodCondition::default()
            }),
        }
    }
}

fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &'static str,
    ok: bool,
    problem: Option<(String, String)>,
    now: Timestamp,
) {
    Condition {
        type_,
        ok,
        problem,
        generation: None,
    }
    .set(conditions, now);
}

/// `PodResizePending` (reason `Deferred` or `Infeasible`) or `PodResizeInProgress`, both
/// status True, present only while they hold (kubelet's status manager removes them).
fn resize_conditions(
    conditions: &mut Vec<PodCondition>,
    resize: &Resize,
    generation: Option<i64>,
    now: Timestamp,
) {
    let (pending, in_progress) = match resize {
        Resize::Idle => (None, false),
        Resize::InProgress { .. } => (None, true),
        Resize::Pending { reason, message } => {
            let reason = match reason {
                PendingReason::Deferred => "Deferred",
                PendingReason::Infeasible => "Infeasible",
            };
            (Some((reason.to_string(), message.clone())), false)
        }
    };
    conditions.retain(|c| {
        (c.type_ != "PodResizePending" || pending.is_some())
            && (c.type_ != "PodResizeInProgress" || in_progress)
    });
    if let Some(problem) = pending {
        // A different reason or message is a new condition, with a new transition time.
        conditions.retain(|c| {
            c.type_ != "PodResizePending"
                || (c.reason.as_ref(), c.message.as_ref()) == (Some(&problem.0), Some(&problem.1))
        });
        Condition {
            type_: "PodResizePending",
            ok: true,
            problem: Some(problem),
            generation,
        }
        .set(conditions, now);
    }
    if in_progress {
        Condition {
            type_: "PodResizeInProgress",
            ok: true,
            problem: None,
            generation,
        }
        .set(conditions, now);
    }
}

/// kubelet's `getPhase` for `restartPolicy: Always`: a container waiting for its first start
/// keeps the pod Pending; one that ran before counts as started.
fn phase(statuses: &[ContainerStatus]) -> &'static str {
    let (mut waiting, mut started) = (0, 0);
    for s in statuses {
        let st = s.state.as_ref();
        let has_run = s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some());
        if st.is_some_and(|st| st.running.is_some() || st.terminated.is_some()) || has_run {
            started += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting == 0 && started > 0 {
        "Running"
    } else {
        "Pending"
    }
}

fn container_status(
    name: &str,
    c: &ContainerRuntime,
    pod_ref: &str,
    now: Timestamp,
) -> ContainerStatus {
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ContainerState::default()
    };
    let (state, instance) = match &c.phase {
        ContainerPhase::Creating { .. } => (waiting("ContainerCreating", None), None),
        ContainerPhase::PullFailed { failed_at, .. } => {
            let shown = failed_at
                .saturating_add(PULL_ERROR_SHOWN)
                .unwrap_or(*failed_at);
            let state = if now < shown {
                waiting(
                    "ErrImagePull",
                    Some(format!(
                        "failed to pull and unpack image {:?}: not found",
                        c.image
                    )),
                )
            } else {
                waiting(
                    "ImagePullBackOff",
                    Some(format!("Back-off pulling image {:?}", c.image)),
                )
            };
            (state, None)
        }
        ContainerPhase::Running { instance, .. } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(api_time(instance.started_at)),
                }),
                ..ContainerState::default()
            },
            Some(instance),
        ),
        ContainerPhase::CrashBackOff { retry_at } => {
            let exited = c.last_exit.as_ref();
            let delay = exited.map_or(0, |e| retry_at.as_second() - e.finished_at.as_second());
            (
                waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {delay}s restarting failed container={name} pod={pod_ref}"
                    )),
                ),
                exited.map(|e| &e.instance),
            )
        }
    };
    let running = matches!(c.phase, ContainerPhase::Running { .. });
    // As kubelet's `convertToAPIContainerStatuses`: every container reports what it runs with
    // (`resources: {}` when it sets none: kube-apiserver refuses a resize of a pod whose
    // running container reports nothing), and its admitted requests when it has any.
    ContainerStatus {
        allocated_resources: c.allocated.requests.clone(),
        resources: Some(c.applied.clone()),
        name: name.to_string(),
        image: c.image.clone(),
        image_id: instance.map(|i| i.image_id.clone()).unwrap_or_default(),
        container_id: instance.map(|i| i.container_id.clone()),
        restart_count: c.restart_count(),
        ready: c.is_ready(now),
        started: Some(running),
        state: Some(state),
        last_state: Some(c.last_exit.as_ref().map(terminated).unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

fn terminated(e: &Exit) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(e.instance.container_id.clone()),
            exit_code: e.exit_code,
            reason: Some(e.reason.clone()),
            started_at: Some(api_time(e.instance.started_at)),
            finished_at: Some(api_time(e.finished_at)),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}
