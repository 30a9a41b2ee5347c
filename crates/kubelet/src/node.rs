//! The kubelet's IO edge: watches pods through a `kube::Client`, feeds each change to the
//! pure [`NodeRuntime::sync`] (`pod_sync.rs`), and executes the decision (bind, report status, delete). It
//! sleeps until the earliest time a pod wants to be looked at again, on tokio time, so under
//! a paused tokio clock with [`gamedeploy_clock::TokioClock`] long waits cost no real time.
//!
//! It uses nothing but the Kubernetes API, so it runs against the embedded server or a real
//! one. Binding goes through the real `pods/binding` subresource (what the scheduler posts);
//! status goes to `pods/status` as a strategic merge patch whose `metadata.resourceVersion` is
//! a precondition, so a status computed from a stale cache gets `409` and is recomputed once
//! the watch delivers the newer pod, never overwriting a condition the operator just wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::watch;

use super::config::{KubeletConfig, NodeConfig, NodesConfig};
use super::container_runtime::NodeRuntime;
use super::pod_sync::SyncActions;
use super::status::api_time;
use super::watched_pod::WatchedPod;
use gamedeploy_clock::SharedClock;

/// Field manager (and user agent in request accounting) of the kubelet's writes.
pub const FIELD_MANAGER: &str = "kubelet";
/// Wait before retrying a write that failed for a reason other than a conflict.
const RETRY: Duration = Duration::from_secs(1);
/// After this long without a newer pod version, a pod held back by a stale cache is synced
/// anyway (a lost watch event must not stall it).
const STALE_LIMIT: Duration = Duration::from_secs(5);

/// Why the kubelet stopped.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("cannot register node {node:?} with the API server: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

type Key = (String, String);

/// Runs the node until `shutdown` resolves, then hands back its runtime so a restarted
/// kubelet finds its containers still running. Config updates (a scenario's `setImage`)
/// arrive on `config`; every pod is re-synced when it changes. Transient API errors are
/// logged and retried; only failing to register the node ends it early.
pub async fn run(
    client: kube::Client,
    node: NodeConfig,
    clock: SharedClock,
    mut config: watch::Receiver<KubeletConfig>,
    mut runtime: NodeRuntime,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeRuntime, KubeletError> {
    let first = config.borrow().clone();
    for index in 0..first.node_count() {
        register(
            &client,
            &node.nth(index),
            first.node_size(index),
            clock.now(),
        )
        .await?;
    }
    let (store, writer) = reflector::store();
    let stream = watcher(
        Api::<WatchedPod>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer);
    tokio::pin!(stream);
    tokio::pin!(shutdown);
    let mut sync_loop = SyncLoop {
        client,
        node,
        clock,
        store,
        config: config.borrow().clone(),
        wakes: BTreeMap::new(),
        dirty: BTreeSet::new(),
        stale: BTreeMap::new(),
        deleting: BTreeSet::new(),
        waiting: BTreeSet::new(),
    };
    let mut config_open = true;
    loop {
        sync_loop.sync_due(&mut runtime).await;
        let sleep = sync_loop.next_wake();
        tokio::select! {
            () = &mut shutdown => return Ok(runtime),
            event = stream.next() => match event {
                Some(Ok(e)) => sync_loop.observe(e, &mut runtime),
                Some(Err(e)) => tracing::warn!(node = %sync_loop.node.name, "pod watch: {e}"),
                None => return Ok(runtime),
            },
            changed = config.changed(), if config_open => match changed {
                Ok(()) => {
                    sync_loop.config = config.borrow_and_update().clone();
                    sync_loop.dirty.extend(sync_loop.store.state().iter().map(|p| key(p)));
                }
                Err(_) => config_open = false,
            },
            () = sleep_for(sleep) => {}
        }
    }
}

async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn key(p: &WatchedPod) -> Key {
    let p = p.pod();
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    )
}

/// Registers the node with a `Ready` condition and its capacity, as kubelet does on start
/// (capacity and allocatable are equal: nothing is reserved for the system).
async fn register(
    client: &kube::Client,
    node: &NodeConfig,
    size: &NodesConfig,
    now: Timestamp,
) -> Result<(), KubeletError> {
    let err = |source| KubeletError::Register {
        node: node.name.clone(),
        source,
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let object: Node = serde_json::from_value(json!({
        "metadata": {"name": node.name, "labels": {
            "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"}},
        "spec": {},
    }))
    .unwrap_or_default();
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match nodes.create(&pp, &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => return Err(err(e)),
    }
    let t = api_time(now);
    let resources = json!({"cpu": size.cpu, "memory": size.memory, "pods": size.pods.to_string()});
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": t, "lastTransitionTime": t}],
        "addresses": [{"type": "InternalIP", "address": node.host_ip.to_string()},
                      {"type": "Hostname", "address": node.name}],
    }});
    nodes
        .patch_status(&node.name, &patch_params(), &Patch::Merge(status))
        .await
        .map_err(err)?;
    Ok(())
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// The kubelet's sync loop: what it must remember between watch events to sync each pod
/// when it changes or when it asked to be looked at again, and not to repeat a write.
struct SyncLoop {
    client: kube::Client,
    node: NodeConfig,
    clock: SharedClock,
    /// The pods as [`WatchedPod`]s: only what the kubelet reads is decoded and kept.
    store: Store<WatchedPod>,
    config: KubeletConfig,
    /// When each pod wants to be synced again.
    wakes: BTreeMap<Key, Timestamp>,
    /// Pods to sync now.
    dirty: BTreeSet<Key>,
    /// Pods written (or refused with 409) against this resourceVersion: syncing them again
    /// before the watch brings a newer one would only repeat the write.
    stale: BTreeMap<Key, (String, tokio::time::Instant)>,
    /// UIDs whose final DELETE was accepted.
    deleting: BTreeSet<String>,
    /// Pods waiting for room on a node (unschedulable, or a deferred resize): synced again
    /// whenever a pod leaves or shrinks.
    waiting: BTreeSet<Key>,
}

impl SyncLoop {
    fn observe(&mut self, event: watcher::Event<WatchedPod>, runtime: &mut NodeRuntime) {
        match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                self.dirty.insert(key(&p));
            }
            watcher::Event::Delete(p) => {
                let k = key(&p);
                self.wakes.remove(&k);
                self.stale.remove(&k);
                self.waiting.remove(&k);
                self.dirty.append(&mut self.waiting.clone());
                if let Some(uid) = p.pod().metadata.uid.as_deref() {
                    runtime.forget(uid);
                    self.deleting.remove(uid);
                }
            }
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                // A relist may have missed deletions: drop what is no longer there.
                let pods = self.store.state();
                let live: BTreeSet<String> = pods
                    .iter()
                    .filter_map(|p| p.pod().metadata.uid.clone())
                    .collect();
                let gone: Vec<String> = runtime
                    .uids()
                    .filter(|u| !live.contains(*u))
                    .map(String::from)
                    .collect();
                for uid in gone {
                    runtime.forget(&uid);
                }
                self.dirty.extend(pods.iter().map(|p| key(p)));
            }
        }
    }

    fn next_wake(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.wakes
            .values()
            .min()
            .map(|t| now.duration_until(*t).try_into().unwrap_or(Duration::ZERO))
    }

    async fn sync_due(&mut self, runtime: &mut NodeRuntime) {
        let now = self.clock.now();
        let due: Vec<Key> = self
            .wakes
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.wakes.remove(&k);
            self.dirty.insert(k);
        }
        // A sync that frees room marks the pods waiting for it dirty again.
        while !self.dirty.is_empty() {
            for k in std::mem::take(&mut self.dirty) {
                self.sync(k, runtime).await;
            }
        }
    }

    async fn sync(&mut self, k: Key, runtime: &mut NodeRuntime) {
        let Some(watched) = self.store.get(&ObjectRef::new(&k.1).within(&k.0)) else {
            return;
        };
        let pod = watched.pod();
        let rv = pod.metadata.resource_version.clone().unwrap_or_default();
        if let Some((stale_rv, since)) = self.stale.get(&k) {
            if *stale_rv == rv && since.elapsed() < STALE_LIMIT {
                self.wake_in(&k, STALE_LIMIT);
                return;
            }
            self.stale.remove(&k);
        }
        let now = self.clock.now();
        let decision = runtime.sync(pod, &self.config, &self.node, now);
        if decision.waits_for_room {
            self.waiting.insert(k.clone());
        } else {
            self.waiting.remove(&k);
        }
        if decision.frees_room {
            self.dirty.extend(self.waiting.iter().cloned());
        }
        self.wakes.remove(&k);
        if let Some(t) = decision.wake_at {
            self.wakes.insert(k.clone(), t);
        }
        if let Err(e) = self.execute(&k, pod, &rv, decision).await {
            tracing::warn!(node = %self.node.name, pod = %format!("{}/{}", k.0, k.1), "{e}");
            self.wake_in(&k, RETRY);
        }
    }

    fn wake_in(&mut self, k: &Key, d: Duration) {
        let at = self
            .clock
            .now()
            .saturating_add(jiff::SignedDuration::try_from(d).unwrap_or_default())
            .unwrap_or_else(|_| self.clock.now());
        let slot = self.wakes.entry(k.clone()).or_insert(at);
        *slot = (*slot).min(at);
    }

    async fn execute(
        &mut self,
        k: &Key,
        pod: &Pod,
        rv: &str,
        d: SyncActions,
    ) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &k.0);
        if let Some(node) = &d.bind {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": k.1, "namespace": k.0},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            match api
                .create_subresource::<_, serde_json::Value>("binding", &k.1, &pp, &binding)
                .await
            {
                // Someone else bound it (or it is going away): the watch shows what happened.
                Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => {}
                other => {
                    other?;
                }
            }
        }
        if d.delete {
            let Some(uid) = pod.metadata.uid.clone() else {
                return Ok(());
            };
            if self.deleting.contains(&uid) {
                return Ok(());
            }
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&k.1, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => {}
                Err(e) => return Err(e),
            }
            self.deleting.insert(uid);
        }
        if let Some(status) = d.status {
            let patch = status_patch(pod, status, rv);
            let result = api
                .patch_status(&k.1, &patch_params(), &Patch::Strategic(patch))
                .await;
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_conflict() => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            }
            // Either way the next sync needs the pod's next version.
            self.stale
                .insert(k.clone(), (rv.to_string(), tokio::time::Instant::now()));
        }
        Ok(())
    }
}

/// The strategic merge patch of `pod`'s status to `status` over `rv`. Conditions merge by
/// `type`, so one the kubelet no longer reports (`PodResizeInProgress` once a resize is
/// applied, `PodResizePending` once it fits) is deleted explicitly, as the real kubelet's
/// status manager does with the two-way patch it computes.
fn status_patch(
    pod: &Pod,
    status: k8s_openapi::api::core::v1::PodStatus,
    rv: &str,
) -> serde_json::Value {
    let reported: BTreeSet<&str> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    let dropped: Vec<serde_json::Value> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| !reported.contains(c.type_.as_str()))
        .map(|c| json!({"type": c.type_, "$patch": "delete"}))
        .collect();
    let mut patch = json!({"metadata": {"resourceVersion": rv}, "status": status});
    let mut conditions = patch["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // A condition that turned True drops its reason and message: a merge would keep the old
    // ones ("Ready: True, reason ContainersNotReady"), so they are removed by name.
    for c in conditions.iter_mut().filter_map(|c| c.as_object_mut()) {
        for field in ["reason", "message"] {
            c.entry(field).or_insert(serde_json::Value::Null);
        }
    }
    if !conditions.is_empty() || !dropped.is_empty() {
        patch["status"]["conditions"] = conditions.into_iter().chain(dropped).collect();
    }
    patch
}
