//! How the simulated node behaves: the `kubelet:` block of a scenario file. Per-image settings
//! override the node-wide delays, can make an image fail, or make a tag resolve to another
//! tag's digest. `setImage` steps replace image entries mid-run. [`NodeConfig`] is who the
//! node is (name and address), which does not change during a run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// The node this kubelet runs as.
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

/// Node-wide delays plus per-image overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
    }
}

/// How one image behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Rejects `sameDigestAs` cycles and self-references, which have no digest.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
