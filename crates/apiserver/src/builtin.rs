//! Built-in kinds are decoded into their typed form and re-encoded on every write, as
//! kube-apiserver's typed decoding does: unknown fields are dropped and wrongly typed fields are
//! a 400, so stored built-ins have exactly the shape a real cluster would return.
//!
//! [`with_type`] is the one table from (group, kind) to the k8s-openapi type, so decoding
//! (here) and the OpenAPI documents (`openapi.rs`) cannot disagree on which kinds are typed.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{ApiError, required};
use super::resources::ResourceDesc;

/// Something to do with the k8s-openapi type of a built-in kind.
pub trait TypeVisitor {
    type Out;
    fn visit<T: DeserializeOwned + Serialize + JsonSchema>(self) -> Self::Out;
}

/// Runs `v` with the typed form of (group, kind), or hands `v` back for kinds with no
/// built-in type (custom resources).
pub fn with_type<V: TypeVisitor>(group: &str, kind: &str, v: V) -> Result<V::Out, V> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, coordination::v1 as coordination,
        core::v1 as core, events::v1 as events, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    Ok(match (group, kind) {
        ("", "Pod") => v.visit::<core::Pod>(),
        ("", "Event") => v.visit::<core::Event>(),
        ("", "Namespace") => v.visit::<core::Namespace>(),
        ("", "Node") => v.visit::<core::Node>(),
        ("", "ServiceAccount") => v.visit::<core::ServiceAccount>(),
        ("", "Service") => v.visit::<core::Service>(),
        ("", "ConfigMap") => v.visit::<core::ConfigMap>(),
        ("", "Secret") => v.visit::<core::Secret>(),
        ("events.k8s.io", "Event") => v.visit::<events::Event>(),
        ("apps", "ControllerRevision") => v.visit::<apps::ControllerRevision>(),
        ("apps", "Deployment") => v.visit::<apps::Deployment>(),
        ("coordination.k8s.io", "Lease") => v.visit::<coordination::Lease>(),
        ("rbac.authorization.k8s.io", "ClusterRole") => v.visit::<rbac::ClusterRole>(),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            v.visit::<rbac::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io", "Role") => v.visit::<rbac::Role>(),
        ("rbac.authorization.k8s.io", "RoleBinding") => v.visit::<rbac::RoleBinding>(),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            v.visit::<admission::ValidatingAdmissionPolicy>()
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            v.visit::<admission::ValidatingAdmissionPolicyBinding>()
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            v.visit::<CustomResourceDefinition>()
        }
        _ => return Err(v),
    })
}

/// Decode into the typed form and encode again.
struct RoundTrip(Value);

impl TypeVisitor for RoundTrip {
    type Out = Result<Value, serde_json::Error>;
    fn visit<T: DeserializeOwned + Serialize + JsonSchema>(self) -> Self::Out {
        let typed: T = serde_json::from_value(self.0)?;
        serde_json::to_value(typed)
    }
}

pub fn normalize(desc: &ResourceDesc, obj: Value) -> Result<Value, ApiError> {
    let r = match with_type(&desc.group, &desc.kind, RoundTrip(obj)) {
        Ok(r) => r,
        Err(RoundTrip(obj)) => return Ok(obj),
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
