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

use super::gamedeployment::{GameDeployment, GameDeploymentSpec, GameDeploymentStatus};

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
    #[serde(
        default,
        deserialize_with = "super::lenient::metadata_without_managed_fields"
    )]
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
mod tests;
