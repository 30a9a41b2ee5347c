//! A GameDeployment as the API server stores it, read as far as it can be.
//!
//! The operator watches [`StoredGameDeployment`], not [`GameDeployment`]: kube-runtime decodes
//! a whole list or watch event at once, so a single object whose spec does not fit the Rust
//! types (a number past `int32` stored through a CRD without bounds, a template nested deeper
//! than the decoder follows) would fail every list, stall the informer and silence every other
//! GameDeployment with it. Here the metadata is always read and the spec and status are kept
//! as raw JSON until they are decoded on their own, so such an object becomes an
//! [`Undecodable`] that the operator can report (a condition, an event) without touching pods.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

use super::{GameDeployment, GameDeploymentSpec, GameDeploymentStatus};

/// A GameDeployment read from the API server: decoded, or the reason it could not be.
#[derive(Clone, Debug)]
pub enum StoredGameDeployment {
    /// Spec and status decoded; the object can be planned.
    Decoded(Arc<GameDeployment>),
    /// The spec could not be decoded (rare: boxed so the common variant stays small).
    Undecodable(Box<Undecodable>),
}

/// A GameDeployment whose spec does not decode: enough of it to report why.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    pub metadata: ObjectMeta,
    /// The status as last written, if it decodes (conditions are kept across the report).
    pub status: Option<GameDeploymentStatus>,
    /// Where and why decoding failed, in words a user can act on.
    pub reason: String,
    /// The spec as stored (JSON text; empty if there is none), for reports and tables.
    pub spec_json: String,
}

impl StoredGameDeployment {
    /// The decoded object, if it decoded.
    pub fn decoded(&self) -> Option<&Arc<GameDeployment>> {
        match self {
            StoredGameDeployment::Decoded(gd) => Some(gd),
            StoredGameDeployment::Undecodable(_) => None,
        }
    }

    /// The status as last written (for an undecodable object: if that much decodes).
    pub fn status(&self) -> Option<&GameDeploymentStatus> {
        match self {
            StoredGameDeployment::Decoded(gd) => gd.status.as_ref(),
            StoredGameDeployment::Undecodable(u) => u.status.as_ref(),
        }
    }

    /// Reads `text` (one object as JSON) the way the watch does.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl Undecodable {
    /// `spec.replicas` as stored, if it is a number (a table shows it even when it does not
    /// fit an `int32`).
    pub fn stored_replicas(&self) -> Option<serde_json::Number> {
        #[derive(Deserialize)]
        struct Replicas {
            replicas: Option<serde_json::Number>,
        }
        serde_json::from_str::<Replicas>(&self.spec_json)
            .ok()
            .and_then(|r| r.replicas)
    }
}

impl From<GameDeployment> for StoredGameDeployment {
    fn from(gd: GameDeployment) -> Self {
        StoredGameDeployment::Decoded(Arc::new(gd))
    }
}

/// The object's top level, with spec and status left as raw text: capturing raw JSON does not
/// recurse, so no nesting depth fails here.
#[derive(Deserialize)]
struct Raw {
    #[serde(default, deserialize_with = "super::metadata_without_managed_fields")]
    metadata: ObjectMeta,
    spec: Option<Box<RawValue>>,
    status: Option<Box<RawValue>>,
}

impl<'de> Deserialize<'de> for StoredGameDeployment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(deserializer)?;
        let status = raw
            .status
            .as_deref()
            .and_then(|s| serde_json::from_str::<GameDeploymentStatus>(s.get()).ok());
        let spec = match raw.spec.as_deref() {
            Some(text) => decode_spec(text.get()),
            None => Err("spec is missing".to_string()),
        };
        Ok(match spec {
            Ok(spec) => StoredGameDeployment::Decoded(Arc::new(GameDeployment {
                metadata: raw.metadata,
                spec,
                status,
            })),
            Err(reason) => StoredGameDeployment::Undecodable(Box::new(Undecodable {
                metadata: raw.metadata,
                status,
                reason,
                spec_json: raw.spec.map(|s| s.get().to_string()).unwrap_or_default(),
            })),
        })
    }
}

/// Decodes a spec, naming the field that failed (`spec.replicas: invalid value: ...`).
fn decode_spec(text: &str) -> Result<GameDeploymentSpec, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        let text = inner.to_string();
        // serde_json appends "at line 1 column N" of the raw spec text: a position in a
        // document the user never wrote. The field path says where instead.
        let problem = match text.rfind(" at line ") {
            Some(at) => &text[..at],
            None => &text,
        };
        format!("cannot read {field}: {problem}")
    })
}

impl Resource for StoredGameDeployment {
    type DynamicType = ();
    type Scope = <GameDeployment as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        GameDeployment::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        GameDeployment::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        GameDeployment::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        GameDeployment::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            StoredGameDeployment::Decoded(gd) => &gd.metadata,
            StoredGameDeployment::Undecodable(u) => &u.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            StoredGameDeployment::Decoded(gd) => &mut Arc::make_mut(gd).metadata,
            StoredGameDeployment::Undecodable(u) => &mut u.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_json() -> serde_json::Value {
        serde_json::to_value(super::super::seed_example()).unwrap()
    }

    fn read(v: &serde_json::Value) -> StoredGameDeployment {
        StoredGameDeployment::from_json(&v.to_string()).unwrap()
    }

    fn reason(v: &serde_json::Value) -> String {
        match read(v) {
            StoredGameDeployment::Undecodable(u) => u.reason,
            StoredGameDeployment::Decoded(_) => panic!("decoded"),
        }
    }

    #[test]
    fn a_valid_object_decodes_as_the_typed_one_does() {
        let v = seed_json();
        let typed: GameDeployment = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(read(&v).decoded().map(|gd| gd.as_ref()), Some(&typed));
    }

    #[test]
    fn a_number_past_its_format_names_the_field_without_a_text_position() {
        let mut v = seed_json();
        v["spec"]["replicas"] = json!(1_099_511_627_776_i64);
        assert_eq!(
            reason(&v),
            "cannot read spec.replicas: invalid value: integer `1099511627776`, expected i32"
        );
        let mut v = seed_json();
        v["spec"]["updateStrategy"]["inPlaceUpdateStrategy"]["gracePeriodSeconds"] =
            json!(1_000_000_000_000_i64);
        let r = reason(&v);
        assert!(
            r.starts_with(
                "cannot read spec.updateStrategy.inPlaceUpdateStrategy.gracePeriodSeconds: "
            ),
            "{r}"
        );
        assert!(!r.contains("line 1"), "{r}");
    }

    #[test]
    fn metadata_and_status_survive_an_undecodable_spec() {
        let mut v = seed_json();
        v["spec"]["replicas"] = json!("eight");
        v["status"] = json!({"replicas": 3, "observedGeneration": 1});
        let StoredGameDeployment::Undecodable(u) = read(&v) else {
            panic!("decoded")
        };
        assert_eq!(u.metadata.name.as_deref(), Some("test-gamedeployment"));
        assert_eq!(u.metadata.uid.as_deref(), Some("gd-uid"));
        assert_eq!(u.status.as_ref().map(|s| s.replicas), Some(3));
        assert_eq!(u.stored_replicas(), None, "\"eight\" is not a number");
        let mut v = seed_json();
        v["spec"]["replicas"] = json!(1_099_511_627_776_i64);
        let StoredGameDeployment::Undecodable(u) = read(&v) else {
            panic!("decoded")
        };
        assert_eq!(
            u.stored_replicas().map(|n| n.to_string()).as_deref(),
            Some("1099511627776")
        );
    }

    /// kube-apiserver stores objects up to 10,000 levels deep, and the pod template keeps
    /// unknown fields. One such object in a list must neither fail the list (that would stall
    /// the informer for every GameDeployment) nor be refused: the typed spec skips unknown
    /// fields without recursing. Next to it, an undecodable object is reported on its own.
    #[test]
    fn a_list_holding_a_very_deep_and_an_undecodable_object_still_decodes() {
        let mut deep = seed_json();
        deep["metadata"]["name"] = json!("deep");
        deep["spec"]["template"]["spec"]["x"] =
            (0..5000).fold(json!(0), |inner, _| json!({ "x": inner }));
        let mut huge = seed_json();
        huge["metadata"]["name"] = json!("huge");
        huge["spec"]["replicas"] = json!(1_099_511_627_776_i64);
        // serde_json cannot write 5,000 levels through `Value`: the text is built by hand.
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{},{},{}]}}"#,
            deep_text(&deep),
            deep_text(&huge),
            deep_text(&seed_json()),
        );
        let list: kube::core::ObjectList<StoredGameDeployment> =
            serde_json::from_str(&list).unwrap();
        let names: Vec<(String, bool)> = list
            .items
            .iter()
            .map(|gd| (gd.meta().name.clone().unwrap(), gd.decoded().is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("deep".to_string(), true),
                ("huge".to_string(), false),
                ("test-gamedeployment".to_string(), true)
            ]
        );
        for gd in [&deep, &huge] {
            let event = format!(r#"{{"type":"MODIFIED","object":{}}}"#, deep_text(gd));
            let event: kube::core::WatchEvent<StoredGameDeployment> =
                serde_json::from_str(&event).unwrap();
            assert!(matches!(event, kube::core::WatchEvent::Modified(_)));
        }
    }

    /// `v` as JSON text, written without recursion (serde_json's writer recurses).
    fn deep_text(v: &serde_json::Value) -> String {
        let mut out = String::new();
        let mut stack = vec![Step::Value(v)];
        enum Step<'a> {
            Value(&'a serde_json::Value),
            Text(&'static str),
            Key(&'a str),
        }
        while let Some(step) = stack.pop() {
            match step {
                Step::Text(t) => out.push_str(t),
                Step::Key(k) => {
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                }
                Step::Value(serde_json::Value::Object(m)) => {
                    out.push('{');
                    stack.push(Step::Text("}"));
                    for (i, (k, v)) in m.iter().enumerate().rev() {
                        stack.push(Step::Value(v));
                        stack.push(Step::Key(k));
                        if i > 0 {
                            stack.push(Step::Text(","));
                        }
                    }
                }
                Step::Value(serde_json::Value::Array(items)) => {
                    out.push('[');
                    stack.push(Step::Text("]"));
                    for (i, v) in items.iter().enumerate().rev() {
                        stack.push(Step::Value(v));
                        if i > 0 {
                            stack.push(Step::Text(","));
                        }
                    }
                }
                Step::Value(leaf) => out.push_str(&leaf.to_string()),
            }
        }
        out
    }
}
