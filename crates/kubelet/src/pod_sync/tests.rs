use super::*;
use crate::container_runtime::plus;
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition};
use serde_json::json;
use std::collections::BTreeMap;

const T0: &str = "2026-01-01T00:00:00Z";

fn t(secs: i64) -> Timestamp {
    plus(T0.parse().unwrap(), SignedDuration::from_secs(secs))
}

fn pod(uid: &str, containers: &[(&str, &str)], gate: bool) -> Pod {
    let containers: Vec<_> = containers
        .iter()
        .map(|(n, i)| json!({"name": n, "image": i}))
        .collect();
    let mut spec = json!({"nodeName": "sim-node", "containers": containers});
    if gate {
        spec["readinessGates"] = json!([{"conditionType": "InPlaceUpdateReady"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("gd-{uid}"), "namespace": "default", "uid": uid},
        "spec": spec,
    }))
    .unwrap()
}

/// One pod on one node; every reported status is stored as the API server would.
struct Node {
    rt: NodeRuntime,
    cfg: KubeletConfig,
    node: NodeConfig,
    pod: Pod,
}

impl Node {
    fn new(pod: Pod, cfg: &str) -> Self {
        Node {
            rt: NodeRuntime::default(),
            cfg: serde_saphyr::from_str(cfg).unwrap(),
            node: NodeConfig::default(),
            pod,
        }
    }

    fn at(&mut self, secs: i64) -> SyncActions {
        let d = self.rt.sync(&self.pod, &self.cfg, &self.node, t(secs));
        if let Some(s) = &d.status {
            self.pod.status = Some(s.clone());
        }
        d
    }

    fn status(&self) -> &PodStatus {
        self.pod.status.as_ref().unwrap()
    }

    fn container(&self, name: &str) -> &ContainerStatus {
        self.status()
            .container_statuses
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    fn waiting(&self, name: &str) -> Option<String> {
        self.container(name)
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
    }

    fn condition(&self, type_: &str) -> PodCondition {
        self.status()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
            .clone()
    }

    fn set_image(&mut self, container: &str, image: &str) {
        let spec = self.pod.spec.as_mut().unwrap();
        let c = spec
            .containers
            .iter_mut()
            .find(|c| c.name == container)
            .unwrap();
        c.image = Some(image.into());
    }

    fn set_gate(&mut self, ok: bool) {
        let conditions = self
            .pod
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap();
        conditions.retain(|c| c.type_ != "InPlaceUpdateReady");
        conditions.push(PodCondition {
            type_: "InPlaceUpdateReady".into(),
            status: if ok { "True" } else { "False" }.into(),
            reason: Some("Operator".into()),
            ..PodCondition::default()
        });
    }
}

#[test]
fn binds_unbound_pods_and_ignores_other_nodes() {
    let mut p = pod("u1", &[("c", "img")], false);
    p.spec.as_mut().unwrap().node_name = None;
    let mut rt = NodeRuntime::default();
    let cfg = KubeletConfig::default();
    let node = NodeConfig::default();
    let d = rt.sync(&p, &cfg, &node, t(0));
    assert_eq!(d.bind.as_deref(), Some("sim-node"));
    assert_eq!((d.status, d.wake_at), (None, None));
    p.spec.as_mut().unwrap().node_name = Some("other".into());
    assert_eq!(rt.sync(&p, &cfg, &node, t(0)), SyncActions::default());
    assert_eq!(rt.uids().count(), 0);
    p.spec.as_mut().unwrap().node_name = None;
    p.metadata.deletion_timestamp = Some(status::api_time(t(5)));
    assert!(rt.sync(&p, &cfg, &node, t(0)).bind.is_none());
}

#[test]
fn containers_start_then_become_ready_with_per_image_delays() {
    let mut n = Node::new(
        pod("u1", &[("c", "slow:1")], false),
        "startSeconds: 2\nreadySeconds: 3\nimages: {\"slow:1\": {startSeconds: 5}}",
    );
    let d = n.at(0);
    assert_eq!(d.wake_at, Some(t(5)));
    assert_eq!(n.waiting("c").as_deref(), Some("ContainerCreating"));
    assert_eq!(n.status().phase.as_deref(), Some("Pending"));
    assert_eq!(n.condition("Ready").status, "False");
    assert_eq!(n.at(4).status, None, "nothing changes before the start");
    assert_eq!(n.at(5).wake_at, Some(t(8)));
    let c = n.container("c");
    assert!(c.state.as_ref().unwrap().running.is_some());
    assert_eq!(
        (c.ready, c.started, c.restart_count),
        (false, Some(true), 0)
    );
    assert!(
        c.container_id
            .as_ref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(c.image_id.starts_with("docker-pullable://slow@sha256:"));
    assert_eq!(n.status().phase.as_deref(), Some("Running"));
    assert_eq!(
        n.condition("ContainersReady").reason.as_deref(),
        Some("ContainersNotReady")
    );
    assert_eq!(
        n.condition("ContainersReady").message.as_deref(),
        Some("containers with unready status: [c]")
    );
    assert_eq!(n.at(8).wake_at, None);
    assert!(n.container("c").ready);
    for ty in [
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        assert_eq!(n.condition(ty).status, "True", "{ty}");
    }
    assert_eq!(
        n.condition("Ready").last_transition_time,
        Some(status::api_time(t(8)))
    );
    assert_eq!(
        n.condition("Initialized").last_transition_time,
        Some(status::api_time(t(0)))
    );
    assert_eq!(n.status().start_time, Some(status::api_time(t(0))));
    assert_eq!(n.status().host_ip.as_deref(), Some("172.18.0.2"));
    assert_eq!(
        n.at(100),
        SyncActions::default(),
        "a settled pod costs no write"
    );
}

#[test]
fn ready_needs_every_readiness_gate_and_keeps_foreign_conditions() {
    let mut n = Node::new(pod("u1", &[("c", "img")], true), "{}");
    n.at(0);
    n.at(2);
    assert!(n.container("c").ready);
    let ready = n.condition("Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some(
            "corresponding condition of pod readiness gate \"InPlaceUpdateReady\" does not exist."
        )
    );
    n.set_gate(false);
    n.at(3);
    assert_eq!(
        n.condition("Ready").message.as_deref(),
        Some("the status of pod readiness gate \"InPlaceUpdateReady\" is not \"True\", but False")
    );
    n.set_gate(true);
    n.at(4);
    assert_eq!(n.condition("Ready").status, "True");
    assert_eq!(
        n.condition("Ready").last_transition_time,
        Some(status::api_time(t(4)))
    );
    // The operator's condition is reported back untouched.
    assert_eq!(
        n.condition("InPlaceUpdateReady").reason.as_deref(),
        Some("Operator")
    );
    n.set_gate(false);
    n.at(5);
    assert_eq!(n.condition("Ready").status, "False");
    assert_eq!(n.condition("InPlaceUpdateReady").status, "False");
    assert_eq!(
        n.condition("ContainersReady").last_transition_time,
        Some(status::api_time(t(2)))
    );
}

#[test]
fn an_image_change_restarts_exactly_that_container() {
    let mut n = Node::new(
        pod(
            "u1",
            &[("app", "python:3.9"), ("sidecar", "envoy:1")],
            false,
        ),
        "{}",
    );
    n.at(0);
    n.at(2);
    let before_app = n.container("app").clone();
    let before_side = n.container("sidecar").clone();
    let ip = n.status().pod_ip.clone();
    n.set_image("app", "python:latest");
    n.at(30);
    assert_eq!(n.waiting("app").as_deref(), Some("ContainerCreating"));
    assert_eq!(
        n.status().phase.as_deref(),
        Some("Running"),
        "a restart is not Pending"
    );
    let last = n
        .container("app")
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (last.exit_code, last.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert_eq!(last.container_id, before_app.container_id);
    assert_eq!(n.condition("Ready").status, "False");
    n.at(31);
    n.at(32);
    let app = n.container("app");
    assert!(app.ready);
    assert_eq!(app.restart_count, 1);
    assert_eq!(app.image, "python:latest");
    assert_ne!(app.container_id, before_app.container_id);
    assert_ne!(app.image_id, before_app.image_id);
    assert_eq!(
        n.container("sidecar"),
        &before_side,
        "the other container is untouched"
    );
    assert_eq!(n.status().pod_ip, ip);
    assert_eq!(n.pod.metadata.uid.as_deref(), Some("u1"));
    assert_eq!(n.status().start_time, Some(status::api_time(t(0))));
    assert_eq!(n.condition("Ready").status, "True");
}

#[test]
fn a_retag_with_the_same_digest_restarts_with_the_same_image_id() {
    let mut n = Node::new(
        pod("u1", &[("app", "python:3.9")], false),
        "images: {\"python:retag\": {sameDigestAs: \"python:3.9\"}}",
    );
    n.at(0);
    n.at(2);
    let before = n.container("app").clone();
    n.set_image("app", "python:retag");
    n.at(10);
    n.at(12);
    let after = n.container("app");
    assert!(after.ready);
    assert_eq!(after.image_id, before.image_id);
    assert_ne!(after.container_id, before.container_id);
    assert_eq!(after.restart_count, 1);
}

#[test]
fn image_pull_failures_back_off_and_recover_when_the_image_is_fixed() {
    let mut n = Node::new(
        pod("u1", &[("app", "game:missing")], false),
        "startSeconds: 2\nimages: {\"game:missing\": {fail: ImagePullBackOff}}",
    );
    n.at(0);
    assert_eq!(n.at(2).wake_at, Some(t(3)));
    assert_eq!(n.waiting("app").as_deref(), Some("ErrImagePull"));
    assert_eq!(n.container("app").image_id, "");
    assert_eq!(n.container("app").container_id, None);
    assert_eq!(n.at(3).wake_at, Some(t(12)), "first retry after 10s");
    assert_eq!(n.waiting("app").as_deref(), Some("ImagePullBackOff"));
    assert_eq!(n.status().phase.as_deref(), Some("Pending"));
    assert_eq!(n.at(12).wake_at, Some(t(13)));
    assert_eq!(n.waiting("app").as_deref(), Some("ErrImagePull"));
    assert_eq!(n.at(13).wake_at, Some(t(32)), "second retry after 20s");
    // The image gets pushed: the next retry pulls it.
    n.cfg.set_images(&BTreeMap::from([(
        "game:missing".to_string(),
        Default::default(),
    )]));
    assert_eq!(n.at(32).wake_at, Some(t(34)));
    assert_eq!(n.waiting("app").as_deref(), Some("ContainerCreating"));
    n.at(34);
    n.at(35);
    let c = n.container("app");
    assert!(c.ready);
    assert_eq!(
        c.restart_count, 0,
        "an image that never ran was never restarted"
    );
}

#[test]
fn crash_loops_back_off_exponentially_up_to_five_minutes() {
    let mut n = Node::new(
        pod("u1", &[("app", "game:broken")], false),
        "images: {\"game:broken\": {fail: CrashLoopBackOff}}",
    );
    n.at(0);
    assert_eq!(n.at(1).wake_at, Some(t(2)), "runs for a moment");
    assert!(!n.container("app").ready);
    assert_eq!(n.at(2).wake_at, Some(t(12)));
    assert_eq!(n.waiting("app").as_deref(), Some("CrashLoopBackOff"));
    let c = n.container("app");
    let last = c.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert_eq!(c.restart_count, 0);
    assert!(
        c.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .message
            .as_ref()
            .unwrap()
            .starts_with("back-off 10s restarting failed container=app pod=gd-u1_default(u1)")
    );
    assert_eq!(n.status().phase.as_deref(), Some("Running"));
    n.at(12);
    assert_eq!(n.container("app").restart_count, 1);
    assert!(n.container("app").state.as_ref().unwrap().running.is_some());
    assert_eq!(n.at(13).wake_at, Some(t(33)), "then 20s");
    // A late look replays every crash and restart due in between.
    n.at(1000);
    // Restarts at 12, 33, 74, 155, 316, 617, 918: each after 1s of running plus the
    // back-off (10, 20, 40, 80, 160, 300, 300 s).
    assert_eq!(n.container("app").restart_count, 7);
    assert_eq!(n.waiting("app").as_deref(), Some("CrashLoopBackOff"));
}

#[test]
fn pods_are_deleted_once_their_grace_period_is_over() {
    let mut n = Node::new(pod("u1", &[("c", "img")], false), "{}");
    n.at(0);
    n.at(2);
    n.pod.metadata.deletion_timestamp = Some(status::api_time(t(40)));
    n.pod.metadata.deletion_grace_period_seconds = Some(30);
    let d = n.at(10);
    assert!(!d.delete);
    assert_eq!(d.wake_at, Some(t(40)));
    assert!(n.at(40).delete);
    n.pod.metadata.deletion_grace_period_seconds = Some(0);
    n.pod.metadata.deletion_timestamp = Some(status::api_time(t(99)));
    assert!(n.at(11).delete, "grace 0 deletes at once");
}

#[test]
fn pod_ips_are_stable_and_distinct_per_pod() {
    let cfg = KubeletConfig::default();
    let node = NodeConfig::default();
    let mut rt = NodeRuntime::default();
    let a = pod("u1", &[("c", "img")], false);
    let b = pod("u2", &[("c", "img")], false);
    let ip = |d: SyncActions| d.status.unwrap().pod_ip.unwrap();
    let ip_a = ip(rt.sync(&a, &cfg, &node, t(0)));
    let ip_b = ip(rt.sync(&b, &cfg, &node, t(0)));
    assert_ne!(ip_a, ip_b);
    assert_eq!(ip(rt.sync(&a, &cfg, &node, t(5))), ip_a);
    assert!(ip_a.starts_with("10.244."));
    rt.forget("u1");
    assert!(rt.pod("u1").is_none());
    assert!(rt.pod("u2").is_some());
}
