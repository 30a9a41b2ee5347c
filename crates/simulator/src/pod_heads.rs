//! The parts of a stored pod the runner reads on every change of the API server's feed: what
//! the settle check reads ([`SettleHead`]) and what a history entry records ([`HistoryHead`]).
//!
//! A 1,000-pod rollout stores tens of thousands of pod changes. Decoding each as a whole `Pod`
//! built its managedFields, annotations, defaulted spec fields and full status only to read a
//! handful of them. These types decode just those: serde's derive skips any other field as
//! `IgnoredAny`, which walks it without allocating, and of the label and annotation maps only
//! the entries read are kept ([`kept_entries`]). Each turns into a `Pod` holding only those
//! fields, for the same functions that read listed pods, so both read alike.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use gamedeploy_core::names;
use simulated_kubelet::watched_pod::{ContainerHead, containers};

/// The part of a pod the settle check ([`super::settle::pod_busy`]) reads: whether it is
/// terminating and its state record.
#[derive(Deserialize)]
pub struct SettleHead {
    metadata: Option<SettleMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettleMeta {
    deletion_timestamp: Option<Time>,
    /// The annotations the state record is decoded from (`inplace::decode`).
    #[serde(default, deserialize_with = "state_annotations")]
    annotations: Option<BTreeMap<String, String>>,
}

fn state_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    kept_entries(
        d,
        &[
            names::ANNOTATION_STATE,
            names::ANNOTATION_LEGACY_STATE,
            names::ANNOTATION_LEGACY_GRACE,
        ],
    )
}

impl SettleHead {
    pub fn into_pod(self) -> Pod {
        let m = self.metadata;
        Pod {
            metadata: ObjectMeta {
                deletion_timestamp: m.as_ref().and_then(|m| m.deletion_timestamp.clone()),
                annotations: m.and_then(|m| m.annotations),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }
}

/// The part of a pod a history entry ([`super::report::HistoryEntry::from_pod`]) records: its
/// name, uid, revision label and deletion; each container's name, image, resources and
/// resize policy; the conditions' types and statuses; each container's restart count.
#[derive(Deserialize)]
pub struct HistoryHead {
    metadata: Option<HistoryMeta>,
    spec: Option<HistorySpec>,
    status: Option<HistoryStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryMeta {
    name: Option<String>,
    uid: Option<String>,
    deletion_timestamp: Option<Time>,
    #[serde(default, deserialize_with = "revision_label")]
    labels: Option<BTreeMap<String, String>>,
}

fn revision_label<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    kept_entries(d, &[names::LABEL_REVISION])
}

#[derive(Deserialize)]
struct HistorySpec {
    containers: Option<Vec<ContainerHead>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryStatus {
    conditions: Option<Vec<HistoryCondition>>,
    container_statuses: Option<Vec<HistoryRestarts>>,
}

#[derive(Deserialize)]
struct HistoryCondition {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryRestarts {
    name: Option<String>,
    restart_count: Option<i32>,
}

impl HistoryHead {
    pub fn into_pod(self) -> Pod {
        let (name, uid, deletion_timestamp, labels) = self
            .metadata
            .map(|m| (m.name, m.uid, m.deletion_timestamp, m.labels))
            .unwrap_or_default();
        let containers = self.spec.map(|s| containers(s.containers));
        let status = self.status.map(|s| PodStatus {
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| PodCondition {
                        type_: c.type_.unwrap_or_default(),
                        status: c.status.unwrap_or_default(),
                        ..PodCondition::default()
                    })
                    .collect()
            }),
            container_statuses: s.container_statuses.map(|cs| {
                cs.into_iter()
                    .map(|c| ContainerStatus {
                        name: c.name.unwrap_or_default(),
                        restart_count: c.restart_count.unwrap_or_default(),
                        ..ContainerStatus::default()
                    })
                    .collect()
            }),
            ..PodStatus::default()
        });
        Pod {
            metadata: ObjectMeta {
                name,
                uid,
                deletion_timestamp,
                labels,
                ..ObjectMeta::default()
            },
            spec: containers.map(|containers| PodSpec {
                containers,
                ..PodSpec::default()
            }),
            status,
        }
    }
}

/// A string map (labels, annotations) with only the entries under `keys`: the others are
/// skipped without allocating their key or value. `None` for an absent or `null` map, as
/// `ObjectMeta`'s decoder reads it.
fn kept_entries<'de, D: Deserializer<'de>>(
    d: D,
    keys: &'static [&'static str],
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_option(OptionalKept(keys))
}

/// `null` or a map, keeping the entries of `keys`.
struct OptionalKept(&'static [&'static str]);

impl<'de> Visitor<'de> for OptionalKept {
    type Value = Option<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(Kept(self.0)).map(Some)
    }
}

struct Kept(&'static [&'static str]);

impl<'de> Visitor<'de> for Kept {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(key) = map.next_key_seed(KeyOf(self.0))? {
            match key {
                Some(key) => {
                    kept.insert(key.to_string(), map.next_value::<String>()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// A map key: which of `keys` it is, if any, read without allocating.
struct KeyOf(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyOf {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().copied().find(|k| *k == v))
    }
}

#[cfg(test)]
mod tests;
