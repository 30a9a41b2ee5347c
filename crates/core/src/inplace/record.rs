//! The persisted machine: what the annotation `tkex.tencent.com/inplace-update-state` holds,
//! and its codec. The codec never fails loudly: a missing, foreign or garbage value is a
//! [`Decoded`] variant the machine knows how to treat.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::resources::ContainerResources;
use super::state::State;
use crate::{SmallMap, StrMap, names};

/// Version written by this operator. Bump it when a field's meaning changes; add a
/// migration in [`decode`] for the old one.
pub const RECORD_VERSION: u32 = 1;

/// One container as it was when the images were patched: completion is "a new instance of
/// this container runs and is ready", which works for same-digest retags too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default)]
    pub restart_count: i32,
}

/// The durable checkpoint of one pod's in-place update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Schema version of this JSON.
    pub version: u32,
    /// Last checkpoint written (a persisted state).
    pub state: State,
    /// Target ControllerRevision name/hash.
    pub revision: String,
    /// Images this update sets, by container name (only containers that change). Under an
    /// ordered `inPlaceUpdateStrategy.policy`, the containers patched so far: each patch adds
    /// one, with its snapshot in `containers`.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub images: SmallMap<String, String>,
    /// When the scheduler picked the pod (start of the per-pod deadline).
    pub started_at: Timestamp,
    /// When `InPlaceUpdateReady=False` was written; the grace period counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unready_since: Option<Timestamp>,
    /// When the images were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched_at: Option<Timestamp>,
    /// Changed containers as they were just before the image patch.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub containers: SmallMap<String, ContainerSnapshot>,
    /// cpu/memory this update resizes to, by container (only containers whose spec differed
    /// when the record was made). Whether the resize was sent is read from the pod spec, since
    /// `pods/resize` cannot carry this annotation.
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub resources: SmallMap<String, ContainerResources>,
    /// Containers the resize restarts (a changed resource with `resizePolicy`
    /// `RestartContainer`): the resize is complete once they are ready again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resize_restarts: Vec<String>,
    /// Name of the preInplaceUpdateStrategy HookRun, while one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_run: Option<String>,
    /// Retry counter (forced `Pending`); part of the HookRun name so a retry runs a fresh hook.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The GameDeployment generation whose `retry: true` started this attempt: the hook is
    /// retried at most once per generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_retry_generation: Option<i64>,
    /// Machine-readable cause of `Failed`, or of the last refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail for `kubectl describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Record {
    /// A fresh record for a pod picked for `revision` at `now`.
    pub fn start(revision: &str, now: Timestamp) -> Self {
        Record {
            version: RECORD_VERSION,
            state: State::Pending,
            revision: revision.to_string(),
            images: SmallMap::new(),
            started_at: now,
            unready_since: None,
            patched_at: None,
            containers: SmallMap::new(),
            resources: SmallMap::new(),
            resize_restarts: Vec::new(),
            hook_run: None,
            attempt: 0,
            hook_retry_generation: None,
            reason: None,
            message: None,
        }
    }
}

/// What the annotation held.
// Most cached pods hold a `Valid` record (every pod that was ever updated): boxing it to shrink
// the rare variants would add an allocation to each of them.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// No annotation: no machine has run on this pod.
    Missing,
    /// A record this operator understands (possibly migrated from an older format).
    Valid(Record),
    /// Written by a newer operator: leave the pod alone rather than misread it.
    Unsupported { version: u32 },
    /// Not a record at all.
    Corrupt { error: String },
}

/// Encodes a record as the annotation value.
pub fn encode(record: &Record) -> String {
    // Serializing plain strings, numbers and maps cannot fail; fall back to a marker that
    // decodes as Corrupt rather than panicking if that ever changes.
    serde_json::to_string(record).unwrap_or_else(|e| format!("unencodable record: {e}"))
}

/// Reads the machine from a pod's annotations.
pub fn decode(annotations: &impl StrMap) -> Decoded {
    match annotations.get_str(crate::names::ANNOTATION_STATE) {
        Some(raw) => decode_value(raw),
        None => match annotations.get_str(names::ANNOTATION_LEGACY_STATE) {
            Some(raw) => decode_legacy(raw, annotations.get_str(names::ANNOTATION_LEGACY_GRACE)),
            None => Decoded::Missing,
        },
    }
}

fn decode_value(raw: &str) -> Decoded {
    let value: serde_json::Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            return Decoded::Corrupt {
                error: format!("not JSON: {e}"),
            };
        }
    };
    let Some(version) = value.get("version") else {
        return Decoded::Corrupt {
            error: "no \"version\" field".into(),
        };
    };
    let Some(version) = version.as_u64().and_then(|v| u32::try_from(v).ok()) else {
        return Decoded::Corrupt {
            error: format!("\"version\" is not a number: {version}"),
        };
    };
    if version > RECORD_VERSION {
        return Decoded::Unsupported { version };
    }
    if version == 0 {
        return Decoded::Corrupt {
            error: "version 0 was never written".into(),
        };
    }
    match serde_json::from_value::<Record>(value) {
        Ok(r) if !r.state.is_persisted() => Decoded::Corrupt {
            error: format!("state {} is never persisted", r.state),
        },
        Ok(r) => Decoded::Valid(r),
        Err(e) => Decoded::Corrupt {
            error: e.to_string(),
        },
    }
}

/// The Go operator's state: `{revision, updateTimestamp, lastContainerStatuses{name:{imageID}}}`,
/// with `inplace-update-grace` present while it waited out the grace period.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyState {
    revision: String,
    update_timestamp: Timestamp,
    #[serde(default)]
    last_container_statuses: BTreeMap<String, LegacyContainer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyContainer {
    #[serde(default, rename = "imageID")]
    image_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyGrace {
    #[serde(default)]
    container_images: BTreeMap<String, String>,
}

fn decode_legacy(raw: &str, grace: Option<&str>) -> Decoded {
    let legacy: LegacyState = match serde_json::from_str(raw) {
        Ok(l) => l,
        Err(e) => {
            return Decoded::Corrupt {
                error: format!("legacy {}: {e}", names::ANNOTATION_LEGACY_STATE),
            };
        }
    };
    let mut record = Record::start(&legacy.revision, legacy.update_timestamp);
    record.unready_since = Some(legacy.update_timestamp);
    match grace {
        // Still in the original's grace period: images not written yet.
        Some(g) => {
            let g: LegacyGrace = match serde_json::from_str(g) {
                Ok(g) => g,
                Err(e) => {
                    return Decoded::Corrupt {
                        error: format!("legacy {}: {e}", names::ANNOTATION_LEGACY_GRACE),
                    };
                }
            };
            record.state = State::Unready;
            record.images = g.container_images.into_iter().collect();
        }
        // Images written; the original compared imageIDs. Without container IDs we can only
        // know the old digest, so completion falls back to "imageID changed" for these.
        None => {
            record.state = State::ImagePatched;
            record.patched_at = Some(legacy.update_timestamp);
            record.containers = legacy
                .last_container_statuses
                .into_iter()
                .map(|(name, c)| {
                    (
                        name,
                        ContainerSnapshot {
                            container_id: None,
                            image_id: c.image_id,
                            restart_count: 0,
                        },
                    )
                })
                .collect();
        }
    }
    Decoded::Valid(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> SmallMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sample() -> Record {
        let mut r = Record::start("gd-abc", "2026-01-01T00:00:00Z".parse().unwrap());
        r.state = State::ImagePatched;
        r.images.insert("python".into(), "python:latest".into());
        r.unready_since = Some("2026-01-01T00:00:01Z".parse().unwrap());
        r.patched_at = Some("2026-01-01T00:00:31Z".parse().unwrap());
        r.containers.insert(
            "python".into(),
            ContainerSnapshot {
                container_id: Some("c1".into()),
                image_id: Some("sha256:1".into()),
                restart_count: 0,
            },
        );
        r
    }

    #[test]
    fn round_trips() {
        let r = sample();
        let a = ann(&[(crate::names::ANNOTATION_STATE, &encode(&r))]);
        assert_eq!(decode(&a), Decoded::Valid(r));
    }

    #[test]
    fn encoding_is_stable_camel_case_json() {
        let json = encode(&sample());
        assert!(
            json.starts_with("{\"version\":1,\"state\":\"ImagePatched\",\"revision\":\"gd-abc\""),
            "{json}"
        );
        assert!(
            json.contains("\"unreadySince\":\"2026-01-01T00:00:01Z\""),
            "{json}"
        );
        assert!(
            !json.contains("hookRun"),
            "empty fields are omitted: {json}"
        );
    }

    #[test]
    fn missing_is_not_an_error() {
        assert_eq!(decode(&SmallMap::new()), Decoded::Missing);
    }

    #[test]
    fn newer_versions_are_left_alone() {
        let a = ann(&[(
            crate::names::ANNOTATION_STATE,
            r#"{"version":7,"state":"Warp"}"#,
        )]);
        assert_eq!(decode(&a), Decoded::Unsupported { version: 7 });
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for raw in [
            "",
            "{",
            "null",
            "[]",
            "42",
            r#"{"version":"one"}"#,
            r#"{"version":1}"#,
            r#"{"version":1,"state":"Banana","revision":"x","startedAt":"2026-01-01T00:00:00Z"}"#,
            r#"{"version":1,"state":"Pending","revision":"x","startedAt":"2026-01-01T00:00:00Z"}"#,
            r#"{"version":0}"#,
            "\u{0}\u{ffff}",
        ] {
            let a = ann(&[(crate::names::ANNOTATION_STATE, raw)]);
            assert!(
                matches!(decode(&a), Decoded::Corrupt { .. }),
                "{raw:?} -> {:?}",
                decode(&a)
            );
        }
    }

    #[test]
    fn legacy_grace_is_resumed_as_unready() {
        let a = ann(&[
            (
                names::ANNOTATION_LEGACY_STATE,
                r#"{"revision":"gd-2","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"python":{"imageID":"sha256:1"}}}"#,
            ),
            (
                names::ANNOTATION_LEGACY_GRACE,
                r#"{"revision":"gd-2","containerImages":{"python":"python:latest"},"graceSeconds":30}"#,
            ),
        ]);
        let Decoded::Valid(r) = decode(&a) else {
            panic!("{:?}", decode(&a))
        };
        assert_eq!(r.state, State::Unready);
        assert_eq!(
            r.unready_since,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(r.images.get("python").unwrap(), "python:latest");
    }

    #[test]
    fn legacy_patched_is_resumed_as_image_patched() {
        let a = ann(&[(
            names::ANNOTATION_LEGACY_STATE,
            r#"{"revision":"gd-2","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"python":{"imageID":"sha256:1"}}}"#,
        )]);
        let Decoded::Valid(r) = decode(&a) else {
            panic!()
        };
        assert_eq!(r.state, State::ImagePatched);
        assert_eq!(
            r.containers.get("python").unwrap().image_id.as_deref(),
            Some("sha256:1")
        );
    }
}
