//! Objects read without their `managedFields`, so no stored object can fail a whole list.
//!
//! kube-runtime decodes a list or watch event in one piece with serde_json, which refuses
//! JSON nested deeper than 128 levels. kube-apiserver stores objects 10,000 levels deep, and
//! an object's `managedFields` mirror its fields level by level: a GameDeployment whose pod
//! template carries a 120-level unknown field (the template keeps unknown fields) has a
//! `fieldsV1` just as deep. Decoded into `ObjectMeta`, that one entry failed the list, and with
//! it every GameDeployment, HookRun or HookTemplate of the cluster. The operator never reads
//! `managedFields` (its caches drop them), so here they are skipped without recursing, and an
//! object whose remaining fields still do not decode becomes [`Lenient::Undecodable`], which
//! the watch drops on its own instead of failing the list.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The one metadata field the operator never reads and that may nest without bound.
const MANAGED_FIELDS: &str = "managedFields";

/// Reads `metadata`, skipping `managedFields` without recursing into it, and without building
/// the rest as JSON values first: the operator's pod watch reads every pod through it, and
/// decoding the managedFields of pods was 42 % of the operator's instructions over a rollout.
pub fn metadata_without_managed_fields<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<ObjectMeta, D::Error> {
    MetaWithoutManagedFields::deserialize(d).map(ObjectMeta::from)
}

/// `ObjectMeta` but for `managedFields`, which, as an unknown field, serde skips unread
/// (serde_json skips a value without recursing).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetaWithoutManagedFields {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

impl From<MetaWithoutManagedFields> for ObjectMeta {
    fn from(m: MetaWithoutManagedFields) -> Self {
        ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: m.self_link,
            uid: m.uid,
        }
    }
}

/// A map's entries as JSON values, with `managedFields` skipped.
struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == MANAGED_FIELDS {
                access.next_value::<IgnoredAny>()?;
            } else {
                map.insert(key, access.next_value()?);
            }
        }
        Ok(map)
    }
}

/// A JSON object's entries as raw text (captured without recursing), `metadata` without
/// `managedFields`.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = (Option<Map<String, Value>>, Vec<(String, Box<RawValue>)>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut metadata = None;
        let mut rest = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == "metadata" {
                metadata = Some(access.next_value::<WithoutManagedFields>()?.0);
            } else {
                rest.push((key, access.next_value::<Box<RawValue>>()?));
            }
        }
        Ok((metadata, rest))
    }
}

/// `metadata` as a JSON map without `managedFields`.
struct WithoutManagedFields(Map<String, Value>);

impl<'de> Deserialize<'de> for WithoutManagedFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Fields).map(WithoutManagedFields)
    }
}

/// An object as the operator watches it: decoded without `managedFields`, or, when even that
/// fails, its metadata and the reason, so the rest of its list still decodes.
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    Decoded(K),
    Undecodable(Box<UndecodableObject>),
}

/// An object of any kind that did not decode: enough to name it in a log line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UndecodableObject {
    pub metadata: ObjectMeta,
    /// Why it did not decode, naming the field when serde says which.
    pub reason: String,
}

impl<K> Lenient<K> {
    /// The decoded object, or what is known of one that did not decode.
    pub fn into_result(self) -> Result<K, Box<UndecodableObject>> {
        match self {
            Lenient::Decoded(k) => Ok(k),
            Lenient::Undecodable(u) => Err(u),
        }
    }
}

/// Reads JSON only (the watch's format): the fields other than `metadata` are captured as raw
/// text, then decoded as `K` from a fresh document, so no field is refused for the depth at
/// which it sat in a list.
impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (metadata, rest) = d.deserialize_map(Entries)?;
        let metadata = metadata.map(Value::Object);
        let mut text = String::from("{");
        if let Some(m) = &metadata {
            text.push_str("\"metadata\":");
            text.push_str(&m.to_string());
        }
        for (key, raw) in &rest {
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&Value::String(key.clone()).to_string());
            text.push(':');
            text.push_str(raw.get());
        }
        text.push('}');
        let mut de = serde_json::Deserializer::from_str(&text);
        match serde_path_to_error::deserialize::<_, K>(&mut de) {
            Ok(k) => Ok(Lenient::Decoded(k)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                // serde_json's "at line 1 column N" is a position in text the user never wrote.
                let problem = inner
                    .rfind(" at line ")
                    .map_or(inner.as_str(), |at| &inner[..at]);
                let metadata = metadata
                    .and_then(|m| ObjectMeta::deserialize(m).ok())
                    .unwrap_or_default();
                Ok(Lenient::Undecodable(Box::new(UndecodableObject {
                    metadata,
                    reason: format!("cannot read {path}: {problem}"),
                })))
            }
        }
    }
}

impl<K> Resource for Lenient<K>
where
    K: Resource<DynamicType = ()>,
{
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta(),
            Lenient::Undecodable(u) => &u.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Decoded(k) => k.meta_mut(),
            Lenient::Undecodable(u) => &mut u.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::hook::HookRun;
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use kube::core::{ObjectList, WatchEvent};

    /// `{"f:x":{"f:x":...0...}}`, `depth` levels: what managedFields record of a deep field.
    fn nested(depth: usize) -> String {
        format!("{}0{}", r#"{"f:x":"#.repeat(depth), "}".repeat(depth))
    }

    fn managed_fields(depth: usize) -> String {
        format!(
            r#"[{{"manager":"kubectl","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}}}]"#,
            nested(depth)
        )
    }

    fn hook_run(name: &str, managed_depth: usize) -> String {
        format!(
            r#"{{"apiVersion":"tkex.tencent.com/v1alpha1","kind":"HookRun","metadata":{{"name":"{name}","namespace":"games","managedFields":{}}},"spec":{{"metrics":[{{"name":"m","provider":{{"web":{{"url":"http://x"}}}}}}]}}}}"#,
            managed_fields(managed_depth)
        )
    }

    fn list(items: &[String]) -> String {
        format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{}]}}"#,
            items.join(",")
        )
    }

    /// The defect: 5,000 levels of managedFields (kube-apiserver keeps 10,000) failed the
    /// whole list as serde_json passed its recursion limit.
    #[test]
    fn deep_managed_fields_neither_fail_a_list_nor_an_event() {
        let deep = hook_run("deep", 5000);
        let plain: Result<ObjectList<HookRun>, _> =
            serde_json::from_str(&list(std::slice::from_ref(&deep)));
        assert!(
            plain.is_err(),
            "the typed list fails, which is what this guards"
        );
        let items = [deep.clone(), hook_run("flat", 1)];
        let decoded: ObjectList<Lenient<HookRun>> = serde_json::from_str(&list(&items)).unwrap();
        let names: Vec<String> = decoded
            .items
            .into_iter()
            .map(|l| match l.into_result() {
                Ok(run) => {
                    assert!(run.metadata.managed_fields.is_none());
                    run.metadata.name.unwrap()
                }
                Err(u) => panic!("{}", u.reason),
            })
            .collect();
        assert_eq!(names, ["deep", "flat"]);
        let event = format!(r#"{{"type":"MODIFIED","object":{deep}}}"#);
        let event: WatchEvent<Lenient<HookRun>> = serde_json::from_str(&event).unwrap();
        assert!(matches!(event, WatchEvent::Modified(Lenient::Decoded(_))));
    }

    /// An object whose own fields do not decode is reported alone; its neighbours decode.
    /// A ControllerRevision's `data` keeps any JSON, so one 5,000 levels deep is undecodable
    /// (serde_json's limit applies to values it keeps), not a failed list.
    #[test]
    fn an_undecodable_object_is_reported_alone() {
        let bad = hook_run("bad", 1).replace(r#""name":"m""#, r#""name":7"#);
        let revision = |name: &str, data: &str| {
            format!(
                r#"{{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{{"name":"{name}"}},"revision":1,"data":{data}}}"#
            )
        };
        let runs: ObjectList<Lenient<HookRun>> =
            serde_json::from_str(&list(&[bad, hook_run("good", 1)])).unwrap();
        let outcome: Vec<Result<String, String>> = runs
            .items
            .into_iter()
            .map(|l| {
                l.into_result()
                    .map(|r| r.metadata.name.unwrap())
                    .map_err(|u| format!("{}: {}", u.metadata.name.unwrap(), u.reason))
            })
            .collect();
        assert_eq!(
            outcome,
            [
                Err(
                    "bad: cannot read spec.metrics[0].name: invalid type: integer `7`, \
                     expected a string"
                        .to_string()
                ),
                Ok("good".to_string())
            ]
        );
        let revisions: ObjectList<Lenient<ControllerRevision>> = serde_json::from_str(&list(&[
            revision("deep", &nested(5000)),
            revision("flat", &nested(3)),
        ]))
        .unwrap();
        let decoded: Vec<bool> = revisions
            .items
            .iter()
            .map(|l| matches!(l, Lenient::Decoded(_)))
            .collect();
        assert_eq!(decoded, [false, true]);
    }
}
