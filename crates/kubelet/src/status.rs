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
    ContainerPhase, ContainerRuntime, Exit, PULL_ERROR_SHOWN, PodRuntime,
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

/// The full status to report for `pod`.
pub fn render(pod: &Pod, runtime: &PodRuntime, node: &NodeConfig, now: Timestamp) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
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
    set_condition(
        &mut conditions,
        "PodReadyToStartContainers",
        true,
        None,
        now,
    );
    set_condition(&mut conditions, "Initialized", true, None, now);
    let containers_not_ready = (!unready.is_empty()).then(|| {
        (
            "ContainersNotReady".to_string(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    });
    set_condition(
        &mut conditions,
        "ContainersReady",
        containers_not_ready.is_none(),
        containers_not_ready.clone(),
        now,
    );
    let ready_problem = containers_not_ready.or_else(|| gates_not_ready(pod, &conditions));
    set_condition(
        &mut conditions,
        "Ready",
        ready_problem.is_none(),
        ready_problem,
        now,
    );
    status.conditions = Some(conditions);
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

/// Updates (in place, keeping list order) or appends a condition. `lastTransitionTime` moves
/// only when the status flips.
fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &str,
    ok: bool,
    problem: Option<(String, String)>,
    now: Timestamp,
) {
    let status = if ok { "True" } else { "False" }.to_string();
    let (reason, message) = problem.map_or((None, None), |(r, m)| (Some(r), Some(m)));
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(api_time(now));
            }
            c.status = status;
            c.reason = reason;
            c.message = message;
        }
        None => conditions.push(PodCondition {
            type_: type_.to_string(),
            status,
            reason,
            message,
            last_transition_time: Some(api_time(now)),
            ..PodCondition::default()
        }),
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
    ContainerStatus {
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
