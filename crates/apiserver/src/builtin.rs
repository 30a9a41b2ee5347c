//! Built-in kinds are decoded into their typed form and re-encoded on every write, as
//! kube-apiserver's typed decoding does: unknown fields are dropped and wrongly typed fields are
//! a 400, so stored built-ins have exactly the shape a real cluster would return.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{ApiError, required};
use super::resources::ResourceDesc;

fn round_trip<T: DeserializeOwned + Serialize>(obj: Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(obj)?;
    serde_json::to_value(typed)
}

pub fn normalize(desc: &ResourceDesc, obj: Value) -> Result<Value, ApiError> {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let r = match (desc.group.as_str(), desc.kind.as_str()) {
        ("", "Pod") => round_trip::<api::core::v1::Pod>(obj),
        ("", "Event") => round_trip::<api::core::v1::Event>(obj),
        ("", "Namespace") => round_trip::<api::core::v1::Namespace>(obj),
        ("", "Node") => round_trip::<api::core::v1::Node>(obj),
        ("events.k8s.io", "Event") => round_trip::<api::events::v1::Event>(obj),
        ("apps", "ControllerRevision") => round_trip::<api::apps::v1::ControllerRevision>(obj),
        ("coordination.k8s.io", "Lease") => round_trip::<api::coordination::v1::Lease>(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(obj)
        }
        _ => return Ok(obj),
    };
    r.map_err(|e| {
        let msg = e.to_string();
        // A missing required member decodes fine in Go and then fails validation (422).
        if let Some(rest) = msg.strip_prefix("missing field `")
            && let Some((field, _)) = rest.split_once('`')
        {
            return ApiError::invalid(&desc.group, &desc.kind, "", &[required(field, "")]);
        }
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {msg}",
            kind = desc.kind,
            v = desc.version
        ))
    })
}
