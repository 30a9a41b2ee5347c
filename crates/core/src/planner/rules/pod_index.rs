//! The pod index, as in the original: with the GameDeployment annotations
//! `tkex.bkbcs.tencent.com/gamedeployment-index-on: "true"` and
//! `tkex.bkbcs.tencent.com/gamedeployment-index-range: '{"podStartIndex":a,"podEndIndex":b}'`,
//! each new pod gets the lowest index in `[a, b)` no live pod holds, in the pod annotation
//! `tkex.bkbcs.tencent.com/gamedeployment-index-id` and in env `POD_INDEX` of every container.
//! Game servers use it as a stable shard or server number.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{EnvVar, Pod};

use crate::inplace::PodView;
use crate::names;

/// The indices pods may take: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRange {
    pub start: u32,
    pub end: u32,
}

/// Why no index can be given; the scale stops with a `FailedScale` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error(
        "annotation {annotation} is {value:?}, which is not a range: give it as {{\"podStartIndex\":0,\"podEndIndex\":100}} with 0 <= podStartIndex < podEndIndex"
    )]
    Invalid {
        annotation: &'static str,
        value: String,
    },
    #[error(
        "spec.replicas {replicas} is more than the {size} indices of annotation {annotation} ({start} to {last}): widen the range or scale down"
    )]
    TooManyReplicas {
        annotation: &'static str,
        replicas: i32,
        size: u32,
        start: u32,
        last: u32,
    },
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeJson {
    pod_start_index: i64,
    pod_end_index: i64,
}

/// The GameDeployment's index range, if indexing is on.
pub fn range(
    annotations: Option<&BTreeMap<String, String>>,
    replicas: i32,
) -> Result<Option<IndexRange>, IndexError> {
    let Some(a) = annotations.filter(|a| {
        a.get(names::ANNOTATION_INDEX_ON)
            .is_some_and(|v| v == "true")
    }) else {
        return Ok(None);
    };
    let value = a
        .get(names::ANNOTATION_INDEX_RANGE)
        .cloned()
        .unwrap_or_default();
    let invalid = || IndexError::Invalid {
        annotation: names::ANNOTATION_INDEX_RANGE,
        value: value.clone(),
    };
    let parsed: RangeJson = serde_json::from_str(&value).map_err(|_| invalid())?;
    let (Ok(start), Ok(end)) = (
        u32::try_from(parsed.pod_start_index),
        u32::try_from(parsed.pod_end_index),
    ) else {
        return Err(invalid());
    };
    if start >= end {
        return Err(invalid());
    }
    if i64::from(replicas) > i64::from(end - start) {
        return Err(IndexError::TooManyReplicas {
            annotation: names::ANNOTATION_INDEX_RANGE,
            replicas,
            size: end - start,
            start,
            last: end - 1,
        });
    }
    Ok(Some(IndexRange { start, end }))
}

/// The lowest `n` indices of `range` that no pod of `pods` holds (fewer if the range is full).
pub fn free(range: IndexRange, pods: &[&PodView], n: usize) -> Vec<u32> {
    let held: BTreeSet<u32> = pods
        .iter()
        .filter_map(|p| p.annotations.get(names::ANNOTATION_POD_INDEX)?.parse().ok())
        .collect();
    (range.start..range.end)
        .filter(|i| !held.contains(i))
        .take(n)
        .collect()
}

/// Gives `pod` its index: the annotation, and `POD_INDEX` in every container (replacing a
/// `POD_INDEX` the template sets).
pub fn stamp(pod: &mut Pod, index: u32) {
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(names::ANNOTATION_POD_INDEX.into(), index.to_string());
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    for c in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        let env = c.env.get_or_insert_with(Vec::new);
        env.retain(|e| e.name != names::ENV_POD_INDEX);
        env.push(EnvVar {
            name: names::ENV_POD_INDEX.into(),
            value: Some(index.to_string()),
            value_from: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(range: &str) -> BTreeMap<String, String> {
        [
            (names::ANNOTATION_INDEX_ON.to_string(), "true".to_string()),
            (names::ANNOTATION_INDEX_RANGE.to_string(), range.to_string()),
        ]
        .into()
    }

    #[test]
    fn the_range_is_read_only_when_indexing_is_on() {
        assert_eq!(range(None, 3), Ok(None));
        let mut off = annotations(r#"{"podStartIndex":0,"podEndIndex":10}"#);
        off.insert(names::ANNOTATION_INDEX_ON.into(), "false".into());
        assert_eq!(range(Some(&off), 3), Ok(None));
        assert_eq!(
            range(
                Some(&annotations(r#"{"podStartIndex":5,"podEndIndex":10}"#)),
                5
            ),
            Ok(Some(IndexRange { start: 5, end: 10 }))
        );
    }

    #[test]
    fn a_bad_range_or_too_many_replicas_is_an_error_that_says_what_to_do() {
        for bad in [
            "",
            "0-10",
            r#"{"podStartIndex":10,"podEndIndex":10}"#,
            r#"{"podStartIndex":-1,"podEndIndex":10}"#,
        ] {
            let e = range(Some(&annotations(bad)), 1).unwrap_err();
            assert!(matches!(e, IndexError::Invalid { .. }), "{bad}: {e}");
        }
        let e = range(
            Some(&annotations(r#"{"podStartIndex":0,"podEndIndex":4}"#)),
            5,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.replicas 5 is more than the 4 indices of annotation tkex.bkbcs.tencent.com/gamedeployment-index-range (0 to 3): widen the range or scale down"
        );
    }

    #[test]
    fn new_pods_take_the_lowest_free_indices_and_carry_them() {
        let mut held = PodView::default();
        held.annotations
            .insert(names::ANNOTATION_POD_INDEX.into(), "1".into());
        let mut other = PodView::default();
        other
            .annotations
            .insert(names::ANNOTATION_POD_INDEX.into(), "3".into());
        let r = IndexRange { start: 0, end: 5 };
        assert_eq!(free(r, &[&held, &other], 3), [0, 2, 4]);
        assert_eq!(free(r, &[&held, &other], 9), [0, 2, 4], "the range is full");
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "a", "image": "i", "env": [{"name": "POD_INDEX", "value": "x"}]},
                {"name": "b", "image": "i"}
            ]}
        }))
        .unwrap();
        stamp(&mut pod, 2);
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()[names::ANNOTATION_POD_INDEX],
            "2"
        );
        for c in &pod.spec.as_ref().unwrap().containers {
            let env = c.env.as_ref().unwrap();
            assert_eq!(env.len(), 1, "{}", c.name);
            assert_eq!(env[0].value.as_deref(), Some("2"));
        }
    }
}
