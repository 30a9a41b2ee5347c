//! The node's container runtime, as memory: what runs for every pod the node has seen, and
//! how it moves on by itself over time. Pure: `(memory, pod spec, config, now) -> memory'`.
//! It knows nothing of how it is reported; `status.rs` renders it and `pod_sync.rs` decides
//! what the kubelet writes.
//!
//! Each container of each pod (by UID) walks `Creating -> Running`, with the detours a real
//! node takes: a pull that fails and is retried with back-off, a process that exits and is
//! restarted with back-off, and a kill-and-recreate when its spec image changes. Times are
//! absolute, so a late call first replays every transition due in between, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{PodSpec, PodStatus, ResourceRequirements};

use super::config::{ImageFailure, KubeletConfig};
use super::ids;
use super::resources::{self, Amounts};

/// How long a crash-looping container runs before it exits.
pub const CRASH_AFTER: SignedDuration = SignedDuration::from_secs(1);
/// How long `ErrImagePull` is shown before it turns into `ImagePullBackOff`.
pub const PULL_ERROR_SHOWN: SignedDuration = SignedDuration::from_secs(1);
/// First back-off after a failure; it doubles per consecutive failure up to [`MAX_BACKOFF`]
/// (kubelet's container and image back-off).
pub const INITIAL_BACKOFF: SignedDuration = SignedDuration::from_secs(10);
pub const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(300);

/// The runtime of one node: what runs for every pod it has seen, by pod UID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRuntime {
    pods: BTreeMap<String, PodRuntime>,
    /// Pods bound to a node (by UID) whose containers have not been seen yet: their requests
    /// count on that node from the binding on.
    bound: BTreeMap<String, (String, Amounts)>,
}

/// What runs for one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRuntime {
    /// The node it runs on.
    pub node: String,
    pub pod_ip: Ipv4Addr,
    pub start_time: Timestamp,
    /// By container name.
    pub containers: BTreeMap<String, ContainerRuntime>,
    pub resize: Resize,
}

/// Where the pod's latest resize stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Resize {
    /// Nothing to do: what is allocated is applied.
    #[default]
    Idle,
    /// Admitted (allocated); applied to the running containers at `until`.
    InProgress { until: Timestamp },
    /// Not admitted: `PodResizePending` with this reason and message.
    Pending {
        reason: PendingReason,
        message: String,
    },
}

/// Why a resize waits, as the `PodResizePending` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingReason {
    /// Fits the node's allocatable, not what is free now: retried as capacity frees.
    Deferred,
    /// Can never fit the node.
    Infeasible,
}

/// One container slot of a pod across all the instances created for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRuntime {
    /// The image of the current instance, or of the one being started.
    pub image: String,
    /// Instances created so far; each gets a new container ID.
    pub instances: u32,
    pub phase: ContainerPhase,
    /// The instance that ran before the current one, for `lastState`.
    pub last_exit: Option<Exit>,
    /// Consecutive failures (pulls or crashes), for the back-off.
    pub failures: u32,
    /// The admitted cpu and memory (`allocatedResources` holds its requests).
    pub allocated: ResourceRequirements,
    /// What the current instance runs with (`resources`); a new instance starts with
    /// `allocated`, never with a spec the node has not admitted.
    pub applied: ResourceRequirements,
}

/// Where a container slot stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerPhase {
    /// Pulling and creating; the instance runs at `until`.
    Creating { until: Timestamp },
    /// The pull failed at `failed_at`; it is tried again at `retry_at`.
    PullFailed {
        failed_at: Timestamp,
        retry_at: Timestamp,
    },
    /// An instance runs; ready from `ready_at` (never when `None`), exits at `crash_at`.
    Running {
        instance: Instance,
        ready_at: Option<Timestamp>,
        crash_at: Option<Timestamp>,
    },
    /// The instance exited with an error; a new one starts at `retry_at`.
    CrashBackOff { retry_at: Timestamp },
}

/// A created container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub container_id: String,
    /// Fixed when the instance starts: a later `sameDigestAs` change does not alter it.
    pub image_id: String,
    pub started_at: Timestamp,
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub instance: Instance,
    pub image: String,
    pub exit_code: i32,
    pub reason: String,
    pub finished_at: Timestamp,
}

impl ContainerRuntime {
    /// `restartCount`: every instance after the first is a restart, whatever caused it.
    pub fn restart_count(&self) -> i32 {
        i32::try_from(self.instances.saturating_sub(1)).unwrap_or(i32::MAX)
    }

    pub fn is_ready(&self, now: Timestamp) -> bool {
        matches!(&self.phase, ContainerPhase::Running { ready_at: Some(r), .. } if *r <= now)
    }

    /// The next moment this container changes on its own.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.phase {
            ContainerPhase::Creating { until } => Some(*until),
            ContainerPhase::PullFailed {
                failed_at,
                retry_at,
            } => Some(
                shown_until(*failed_at)
                    .filter(|t| *t > now)
                    .unwrap_or(*retry_at),
            ),
            ContainerPhase::Running {
                ready_at, crash_at, ..
            } => [ready_at.filter(|t| *t > now), *crash_at]
                .into_iter()
                .flatten()
                .min(),
            ContainerPhase::CrashBackOff { retry_at } => Some(*retry_at),
        }
    }
}

fn shown_until(failed_at: Timestamp) -> Option<Timestamp> {
    failed_at.checked_add(PULL_ERROR_SHOWN).ok()
}

/// Back-off after `failures` consecutive failures: 10 s, 20 s, 40 s … capped at 300 s.
pub fn backoff(failures: u32) -> SignedDuration {
    let exp = failures.saturating_sub(1).min(16);
    let secs = INITIAL_BACKOFF.as_secs().saturating_mul(1 << exp);
    SignedDuration::from_secs(secs.min(MAX_BACKOFF.as_secs()))
}

/// `t + d`, or `t` where that is out of range.
pub fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}

impl NodeRuntime {
    pub fn pod(&self, uid: &str) -> Option<&PodRuntime> {
        self.pods.get(uid)
    }

    /// Drops a pod whose object is gone: its containers are removed with it.
    pub fn forget(&mut self, uid: &str) {
        self.pods.remove(uid);
        self.bound.remove(uid);
    }

    pub(crate) fn pod_mut(&mut self, uid: &str) -> Option<&mut PodRuntime> {
        self.pods.get_mut(uid)
    }

    /// Records a binding: `requests` count on `node` until the pod's containers are seen.
    pub fn record_binding(&mut self, uid: &str, node: &str, requests: Amounts) {
        self.bound
            .insert(uid.to_string(), (node.to_string(), requests));
    }

    /// What is allocated on `node` to pods other than `except`, and how many pods it holds.
    pub fn usage(&self, node: &str, except: Option<&str>) -> (Amounts, u32) {
        let running = self
            .pods
            .iter()
            .filter(|(uid, p)| p.node == node && Some(uid.as_str()) != except)
            .map(|(_, p)| p.allocated());
        let bound = self
            .bound
            .iter()
            .filter(|(uid, (n, _))| {
                n == node && Some(uid.as_str()) != except && !self.pods.contains_key(*uid)
            })
            .map(|(_, (_, r))| *r);
        running
            .chain(bound)
            .fold((Amounts::default(), 0), |(sum, n), r| (sum + r, n + 1))
    }

    /// UIDs of the pods the node runs.
    pub fn uids(&self) -> impl Iterator<Item = &str> {
        self.pods.keys().map(String::as_str)
    }

    /// Brings the runtime of pod `uid` to `now` against its spec: on first sight the pod gets
    /// the IP and start time `stored` shows (a restarted kubelet finds its pods as they were)
    /// or new ones; containers gone from the spec are removed; each container replays what
    /// was due and is re-created if its spec image changed. `None` when no pod IP is free.
    pub fn advance_pod(
        &mut self,
        uid: &str,
        node: &str,
        spec: &PodSpec,
        stored: Option<&PodStatus>,
        config: &KubeletConfig,
        now: Timestamp,
    ) -> Option<&mut PodRuntime> {
        if !self.pods.contains_key(uid) {
            let in_use: BTreeSet<Ipv4Addr> = self.pods.values().map(|p| p.pod_ip).collect();
            let stored_ip = stored
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse().ok())
                .filter(|ip| !in_use.contains(ip));
            let pod_ip = stored_ip.or_else(|| ids::pod_ip(uid, &in_use))?;
            let start_time = stored
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
                .unwrap_or(now);
            self.pods.insert(
                uid.to_string(),
                PodRuntime {
                    node: node.to_string(),
                    pod_ip,
                    start_time,
                    containers: BTreeMap::new(),
                    resize: Resize::Idle,
                },
            );
            self.bound.remove(uid);
        }
        let runtime = self.pods.get_mut(uid)?;
        runtime
            .containers
            .retain(|name, _| spec.containers.iter().any(|c| &c.name == name));
        for c in &spec.containers {
            let image = c.image.clone().unwrap_or_default();
            let slot = runtime.containers.entry(c.name.clone()).or_insert_with(|| {
                // Admitted at binding (the binding chose a node it fits).
                let admitted = resources::of_container(c);
                ContainerRuntime {
                    image: image.clone(),
                    instances: 0,
                    phase: ContainerPhase::Creating {
                        until: plus(now, config.start_after(&image)),
                    },
                    last_exit: None,
                    failures: 0,
                    allocated: admitted.clone(),
                    applied: admitted,
                }
            });
            advance(slot, uid, &c.name, &image, config, now);
        }
        Some(runtime)
    }
}

impl PodRuntime {
    /// The next moment the pod changes on its own: a container, or a resize being applied.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        let resize = match self.resize {
            Resize::InProgress { until } => Some(until),
            _ => None,
        };
        self.containers
            .values()
            .filter_map(|c| c.next_change(now))
            .chain(resize)
            .min()
    }

    /// The sum of the admitted requests of its containers.
    pub fn allocated(&self) -> Amounts {
        self.containers
            .values()
            .map(|c| resources::requested(&c.allocated))
            .fold(Amounts::default(), |a, b| a + b)
    }
}

/// Brings one container slot to `now`: first every transition due by then, in time order,
/// then (if the spec image differs) the kill and re-create a spec change causes.
fn advance(
    c: &mut ContainerRuntime,
    uid: &str,
    name: &str,
    spec_image: &str,
    config: &KubeletConfig,
    now: Timestamp,
) {
    settle(c, uid, name, config, now);
    if c.image != spec_image {
        restart(c, uid, name, spec_image, config, now);
    }
}

/// Kills the current instance (if one runs) and creates a new one with `image` and the
/// allocated resources: what an image change or a `RestartContainer` resize does.
pub fn restart(
    c: &mut ContainerRuntime,
    uid: &str,
    name: &str,
    image: &str,
    config: &KubeletConfig,
    now: Timestamp,
) {
    if let ContainerPhase::Running { instance, .. } = &c.phase {
        c.last_exit = Some(Exit {
            instance: instance.clone(),
            image: c.image.clone(),
            exit_code: 0,
            reason: "Completed".into(),
            finished_at: now,
        });
    }
    c.image = image.to_string();
    c.failures = 0;
    c.applied = c.allocated.clone();
    c.phase = ContainerPhase::Creating {
        until: plus(now, config.start_after(&c.image)),
    };
    settle(c, uid, name, config, now);
}

fn settle(c: &mut ContainerRuntime, uid: &str, name: &str, config: &KubeletConfig, now: Timestamp) {
    loop {
        if c.is_ready(now) {
            c.failures = 0;
        }
        match c.phase.clone() {
            ContainerPhase::Creating { until } if until <= now => {
                if config.failure(&c.image) == Some(ImageFailure::ImagePullBackOff) {
                    fail_pull(c, until);
                } else {
                    start_instance(c, uid, name, config, until);
                }
            }
            ContainerPhase::PullFailed { retry_at, .. } if retry_at <= now => {
                if config.failure(&c.image) == Some(ImageFailure::ImagePullBackOff) {
                    fail_pull(c, retry_at);
                } else {
                    c.phase = ContainerPhase::Creating {
                        until: plus(retry_at, config.start_after(&c.image)),
                    };
                }
            }
            ContainerPhase::Running {
                instance,
                crash_at: Some(at),
                ..
            } if at <= now => {
                c.failures += 1;
                c.last_exit = Some(Exit {
                    instance,
                    image: c.image.clone(),
                    exit_code: 1,
                    reason: "Error".into(),
                    finished_at: at,
                });
                c.phase = ContainerPhase::CrashBackOff {
                    retry_at: plus(at, backoff(c.failures)),
                };
            }
            // The image is on the node already: the new instance starts at once.
            ContainerPhase::CrashBackOff { retry_at } if retry_at <= now => {
                start_instance(c, uid, name, config, retry_at);
            }
            _ => return,
        }
    }
}

fn fail_pull(c: &mut ContainerRuntime, at: Timestamp) {
    c.failures += 1;
    c.phase = ContainerPhase::PullFailed {
        failed_at: at,
        retry_at: plus(at, backoff(c.failures)),
    };
}

fn start_instance(
    c: &mut ContainerRuntime,
    uid: &str,
    name: &str,
    config: &KubeletConfig,
    at: Timestamp,
) {
    let instance = Instance {
        container_id: ids::container_id(uid, name, c.instances),
        image_id: ids::image_id(config, &c.image),
        started_at: at,
    };
    c.instances += 1;
    let crashes = config.failure(&c.image) == Some(ImageFailure::CrashLoopBackOff);
    c.phase = ContainerPhase::Running {
        instance,
        ready_at: (!crashes).then(|| plus(at, config.ready_after(&c.image))),
        crash_at: crashes.then(|| plus(at, CRASH_AFTER)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_ten_seconds_up_to_five_minutes() {
        assert_eq!(
            (1..=7).map(|n| backoff(n).as_secs()).collect::<Vec<_>>(),
            vec![10, 20, 40, 80, 160, 300, 300]
        );
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
