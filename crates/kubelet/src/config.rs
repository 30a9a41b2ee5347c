//! How the simulated node behaves: the `kubelet:` block of a scenario file. Per-image settings
//! override the node-wide delays, can make an image fail, or make a tag resolve to another
//! tag's digest. `setImage` steps replace image entries mid-run. [`NodeConfig`] is who the
//! node is (name and address), which does not change during a run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube_quantity::ParsedQuantity;
use serde::{Deserialize, Serialize};

/// Who the first node is; node `k` (1-based, `k > 1`) of a multi-node kubelet is named
/// `{name}-{k}` with the `k-1`-th address after `host_ip` ([`NodeConfig::nth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub host_ip: Ipv4Addr,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "sim-node".into(),
            host_ip: Ipv4Addr::new(172, 18, 0, 2),
        }
    }
}

impl NodeConfig {
    /// The identity of node `index` (0-based): node 0 is `self`, so a one-node cluster keeps
    /// today's name and address.
    pub fn nth(&self, index: u32) -> NodeConfig {
        if index == 0 {
            return self.clone();
        }
        NodeConfig {
            name: format!("{}-{}", self.name, index + 1),
            host_ip: Ipv4Addr::from(u32::from(self.host_ip).wrapping_add(index)),
        }
    }
}

/// How many nodes run and what each can hold (every node alike), as `status.allocatable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodesConfig {
    #[serde(default = "one_node")]
    pub count: u32,
    /// Allocatable CPU per node, a Kubernetes quantity ("4", "3500m").
    #[serde(default = "default_cpu")]
    pub cpu: Quantity,
    /// Allocatable memory per node, a Kubernetes quantity ("8Gi").
    #[serde(default = "default_memory")]
    pub memory: Quantity,
    /// Pods per node (kubelet's `maxPods`).
    #[serde(default = "default_pods")]
    pub pods: u32,
}

fn one_node() -> u32 {
    1
}
fn default_cpu() -> Quantity {
    Quantity("1k".into())
}
fn default_memory() -> Quantity {
    Quantity("4Ti".into())
}
/// The size of the pod address range (`ids::pod_ip`): no node can run more pods than that, so
/// the default never constrains a scenario that ran before nodes had a pod limit.
fn default_pods() -> u32 {
    65_534
}

impl Default for NodesConfig {
    fn default() -> Self {
        NodesConfig {
            count: one_node(),
            cpu: default_cpu(),
            memory: default_memory(),
            pods: default_pods(),
        }
    }
}

impl NodesConfig {
    fn is_default(&self) -> bool {
        *self == NodesConfig::default()
    }

    /// At least one node, and sizes that are quantities; `at` is where the pool is written.
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.count == 0 {
            return Err(ConfigError {
                path: format!("{at}.count"),
                problem: "there must be at least one node".into(),
            });
        }
        for (field, q) in [("cpu", &self.cpu), ("memory", &self.memory)] {
            if let Err(e) = ParsedQuantity::try_from(q) {
                return Err(ConfigError {
                    path: format!("{at}.{field}"),
                    problem: format!(
                        "{:?} is not a Kubernetes quantity ({e}); write it as \"4\", \"3500m\" or \"8Gi\"",
                        q.0
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Which node an unbound pod goes to, among those its requests fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Binding {
    /// The first node, in name order, with room.
    #[default]
    FirstFit,
    /// The node with the most room left (the scheduler's `LeastAllocated` score).
    Spread,
}

impl Binding {
    fn is_default(&self) -> bool {
        *self == Binding::default()
    }
}

/// Node-wide delays plus per-image overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletConfig {
    /// Seconds from a container (re)start until it runs.
    #[serde(default = "one")]
    pub start_seconds: u64,
    /// Seconds from running until ready.
    #[serde(default = "one")]
    pub ready_seconds: u64,
    /// Per image reference (exactly as written in the pod spec).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, ImageConfig>,
    /// The nodes and their allocatable resources. Read when the kubelet starts.
    #[serde(default, skip_serializing_if = "NodesConfig::is_default")]
    pub nodes: NodesConfig,
    /// Node pools of different sizes, instead of `nodes` (one pool): nodes are numbered
    /// through the pools in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<NodesConfig>,
    #[serde(default, skip_serializing_if = "Binding::is_default")]
    pub binding: Binding,
    /// Seconds an admitted resize takes to be applied (`PodResizeInProgress` meanwhile).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub resize_seconds: u64,
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

fn one() -> u64 {
    1
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            start_seconds: 1,
            ready_seconds: 1,
            images: BTreeMap::new(),
            nodes: NodesConfig::default(),
            node_pools: Vec::new(),
            binding: Binding::default(),
            resize_seconds: 1,
        }
    }
}

/// How one image behaves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<ImageFailure>,
    /// Another reference whose digest this one resolves to (a re-tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_digest_as: Option<String>,
    /// Memory a running container of this image uses; a `NotRequired` resize that lowers the
    /// memory limit below it is held in progress. None uses nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_usage: Option<Quantity>,
}

/// The ways an image can fail, named by the waiting reason kubelet ends up reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFailure {
    /// The container starts, exits with an error after a moment, and is restarted with
    /// exponential back-off.
    CrashLoopBackOff,
    /// The image cannot be pulled; the pull is retried with exponential back-off.
    ImagePullBackOff,
}

/// A problem in a [`KubeletConfig`], with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    pub path: String,
    pub problem: String,
}

impl KubeletConfig {
    fn image(&self, image: &str) -> Option<&ImageConfig> {
        self.images.get(image)
    }

    /// Time from a (re)start until the container runs.
    pub fn start_after(&self, image: &str) -> SignedDuration {
        let s = self
            .image(image)
            .and_then(|i| i.start_seconds)
            .unwrap_or(self.start_seconds);
        secs(s)
    }

    /// Time from running until ready.
    pub fn ready_after(&self, image: &str) -> SignedDuration {
        let s = self
            .image(image)
            .and_then(|i| i.ready_seconds)
            .unwrap_or(self.ready_seconds);
        secs(s)
    }

    /// Bytes a running container of `image` uses (`memoryUsage`), 0 when not set.
    pub fn memory_usage(&self, image: &str) -> i128 {
        self.image(image)
            .and_then(|i| i.memory_usage.as_ref())
            .and_then(|q| ParsedQuantity::try_from(q).ok())
            .and_then(|q| q.to_bytes_i128())
            .unwrap_or(0)
    }

    pub fn failure(&self, image: &str) -> Option<ImageFailure> {
        self.image(image).and_then(|i| i.fail)
    }

    /// The reference whose digest `image` has, following `sameDigestAs` links. A cycle (which
    /// [`KubeletConfig::validate`] rejects) stops at the first repeated reference.
    pub fn resolve_digest_source<'a>(&'a self, image: &'a str) -> &'a str {
        let mut seen = BTreeSet::new();
        let mut current = image;
        while seen.insert(current) {
            match self
                .image(current)
                .and_then(|i| i.same_digest_as.as_deref())
            {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    /// Replaces the settings of the given images (a scenario's `setImage` step).
    pub fn set_images(&mut self, images: &BTreeMap<String, ImageConfig>) {
        for (name, cfg) in images {
            self.images.insert(name.clone(), cfg.clone());
        }
    }

    /// Time an admitted resize takes to be applied.
    pub fn resize_after(&self) -> SignedDuration {
        secs(self.resize_seconds)
    }

    /// The node pools: `nodePools`, or `nodes` as the only one.
    pub fn pools(&self) -> &[NodesConfig] {
        if self.node_pools.is_empty() {
            std::slice::from_ref(&self.nodes)
        } else {
            &self.node_pools
        }
    }

    /// How many nodes run, over all pools.
    pub fn node_count(&self) -> u32 {
        self.pools()
            .iter()
            .fold(0u32, |n, p| n.saturating_add(p.count))
    }

    /// The size of node `index` (0-based; the pools' nodes follow each other).
    pub fn node_size(&self, index: u32) -> &NodesConfig {
        let mut first = 0u32;
        for pool in self.pools() {
            first = first.saturating_add(pool.count);
            if index < first {
                return pool;
            }
        }
        self.pools().last().unwrap_or(&self.nodes)
    }

    /// Rejects `sameDigestAs` cycles and self-references, which have no digest, node sizes
    /// that are not quantities, a cluster without nodes, and `nodes` beside `nodePools`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.node_pools.is_empty() && !self.nodes.is_default() {
            return Err(ConfigError {
                path: "nodePools".into(),
                problem: "set either nodes (one pool) or nodePools, not both".into(),
            });
        }
        let pools = self.pools().iter().enumerate();
        for (i, pool) in pools {
            let at = if self.node_pools.is_empty() {
                "nodes".to_string()
            } else {
                format!("nodePools[{i}]")
            };
            pool.validate(&at)?;
        }
        for name in self.images.keys() {
            let mut chain = vec![name.as_str()];
            let mut current = name.as_str();
            while let Some(next) = self
                .image(current)
                .and_then(|i| i.same_digest_as.as_deref())
            {
                if chain.contains(&next) {
                    chain.push(next);
                    return Err(ConfigError {
                        path: format!("images[{name:?}].sameDigestAs"),
                        problem: format!(
                            "digest references form a cycle ({}); one of them must name an image of its own",
                            chain.join(" -> ")
                        ),
                    });
                }
                chain.push(next);
                current = next;
            }
        }
        Ok(())
    }
}

fn secs(s: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> KubeletConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_are_one_second_each() {
        let c = config("{}");
        assert_eq!(c, KubeletConfig::default());
        assert_eq!(c.start_after("x"), SignedDuration::from_secs(1));
        assert_eq!(c.ready_after("x"), SignedDuration::from_secs(1));
    }

    #[test]
    fn per_image_settings_override_the_node() {
        let c = config(
            "startSeconds: 3\nreadySeconds: 4\nimages:\n  \"python:latest\": { startSeconds: 2 }\n  \"game:broken\": { fail: CrashLoopBackOff }\n",
        );
        assert_eq!(c.start_after("python:latest"), SignedDuration::from_secs(2));
        assert_eq!(c.ready_after("python:latest"), SignedDuration::from_secs(4));
        assert_eq!(c.start_after("other"), SignedDuration::from_secs(3));
        assert_eq!(
            c.failure("game:broken"),
            Some(ImageFailure::CrashLoopBackOff)
        );
        assert_eq!(c.failure("python:latest"), None);
    }

    #[test]
    fn unknown_fields_and_failures_are_rejected() {
        assert!(serde_saphyr::from_str::<KubeletConfig>("startSecond: 1").is_err());
        assert!(serde_saphyr::from_str::<KubeletConfig>("images: {a: {fail: OOMKilled}}").is_err());
    }

    #[test]
    fn same_digest_follows_chains_and_rejects_cycles() {
        let c = config("images: {a: {sameDigestAs: b}, b: {sameDigestAs: c}}");
        assert_eq!(c.resolve_digest_source("a"), "c");
        assert_eq!(c.resolve_digest_source("z"), "z");
        c.validate().unwrap();
        let bad = config("images: {a: {sameDigestAs: b}, b: {sameDigestAs: a}}");
        let err = bad.validate().unwrap_err();
        assert_eq!(err.path, "images[\"a\"].sameDigestAs");
        assert!(err.problem.contains("a -> b -> a"), "{err}");
        // Still terminates when asked anyway.
        assert_eq!(bad.resolve_digest_source("a"), "a");
    }

    #[test]
    fn set_images_replaces_entries() {
        let mut c = config("images: {a: {fail: ImagePullBackOff}}");
        c.set_images(&BTreeMap::from([("a".to_string(), ImageConfig::default())]));
        assert_eq!(c.failure("a"), None);
    }
}
