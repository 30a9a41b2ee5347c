//! The per-kind hooks of the generic registry, as kube-apiserver's `RESTCreateStrategy` and
//! `RESTUpdateStrategy` give them: each hook picks the kind's behaviour by its
//! [`Strategy`], with the kinds that have their own rules in their own files.

use serde_json::{Value, json};

use crate::admission;
use crate::errors::{ApiError, invalid_value};
use crate::kinds;
use crate::resources::{ResourceDesc, Strategy};

use super::context::{RequestContext, Subresource};
use super::object::{meta_mut, str_at, validate_meta};
use super::{crd, namespace, pod};

/// `PrepareForCreate`: the status the server sets on a new object (a client's is dropped).
pub fn prepare_for_create(ctx: &RequestContext, desc: &ResourceDesc, obj: &mut Value, name: &str) {
    match desc.strategy {
        Strategy::Pod => {
            let qos = pod::pod_qos(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        Strategy::Namespace => namespace::prepare_for_create(obj, name),
        Strategy::Crd => crd::prepare_for_create(ctx, obj),
        Strategy::Custom | Strategy::AdmissionPolicy if desc.has_status => {
            if let Value::Object(m) = obj {
                m.remove("status");
            }
        }
        Strategy::Deployment => obj["status"] = json!({}),
        Strategy::Service => obj["status"] = json!({"loadBalancer": {}}),
        _ => {}
    }
}

/// The top-level members [`prepare_for_update`] takes from the stored object whatever the
/// request says: the status of a write to a kind's main resource when the kind has a status
/// subresource, the spec of a status write.
pub fn taken_from_stored(desc: &ResourceDesc, sub: Subresource) -> &'static [&'static str] {
    match sub {
        Subresource::Main if desc.has_status => &["status"],
        Subresource::Status => &["spec"],
        _ => &[],
    }
}

/// `PrepareForUpdate`: what a write through `sub` takes from the request and what from the
/// stored object.
pub fn prepare_for_update(
    ctx: &RequestContext,
    sub: Subresource,
    desc: &ResourceDesc,
    new: &mut Value,
    old: &Value,
) {
    match (sub, desc.strategy) {
        (Subresource::Main, _) if desc.has_status => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Value::Object(m) = new {
                    m.remove("status");
                }
            }
        },
        (Subresource::Status, Strategy::Pod) => pod::prepare_status_update(new, old),
        (Subresource::Resize, _) => pod::prepare_resize_update(new, old),
        (Subresource::Status, Strategy::Custom) => {
            // customResourceStatusStrategy: only .status (and managedFields) from the request.
            let status = new.get("status").cloned();
            let mf = new.pointer("/metadata/managedFields").cloned();
            let mut copy = old.clone();
            match status {
                Some(s) => copy["status"] = s,
                None => {
                    if let Value::Object(m) = &mut copy {
                        m.remove("status");
                    }
                }
            }
            if let Some(mf) = mf {
                meta_mut(&mut copy).insert("managedFields".into(), mf);
            }
            *new = copy;
        }
        (Subresource::Status, _) => {
            // ResetObjectMetaForStatus + spec from the stored object.
            let status = new.get("status").cloned();
            let mut copy = old.clone();
            if let Some(s) = status {
                copy["status"] = s;
            }
            *new = copy;
        }
        _ => {}
    }
    if desc.strategy == Strategy::Crd {
        crd::prepare_for_update(ctx, new, old);
    }
}

/// `Validate`/`ValidateUpdate` (with the defaulting kube does on decoding): the object
/// metadata, then the kind's own rules (a pod's for the endpoint `sub` the write came through).
pub fn validate(
    desc: &ResourceDesc,
    obj: &mut Value,
    old: Option<&Value>,
    sub: Subresource,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    validate_meta(desc, obj, &mut causes);
    let name = str_at(obj, "/metadata/name").to_string();
    match desc.strategy {
        Strategy::Custom => {
            if let Some(schema) = &desc.schema {
                schema.prune(obj);
                schema.default(obj);
                causes.extend(schema.validate(obj, old));
            }
        }
        Strategy::Pod => {
            pod::default_pod(obj);
            pod::validate(obj, old, sub, &mut causes);
        }
        Strategy::Crd => crd::validate(obj, old, &mut causes),
        Strategy::Plain if desc.group == "apps" && desc.plural == "controllerrevisions" => {
            // ValidateControllerRevision(Update): revision ≥ 0, data immutable.
            if let Some(r) = obj.get("revision").and_then(Value::as_i64)
                && r < 0
            {
                causes.push(invalid_value(
                    "revision",
                    &json!(r),
                    "must be greater than or equal to 0",
                ));
            }
            if let Some(old) = old
                && old.get("data") != obj.get("data")
            {
                causes.push(invalid_value(
                    "data",
                    obj.get("data").unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
        Strategy::Service => {
            kinds::default_service(obj);
            kinds::validate_service(obj, &mut causes);
        }
        Strategy::Secret => {
            kinds::default_secret(obj);
            kinds::validate_data_keys(obj, old, &mut causes);
        }
        Strategy::Plain if desc.group.is_empty() && desc.kind == "ConfigMap" => {
            kinds::validate_data_keys(obj, old, &mut causes);
        }
        Strategy::Deployment => {
            kinds::default_deployment(obj, pod::default_pod);
            kinds::validate_deployment(obj, old, &mut causes);
        }
        Strategy::AdmissionPolicy => causes.extend(admission::check_policy(obj)),
        Strategy::AdmissionPolicyBinding => kinds::validate_policy_binding(obj, &mut causes),
        Strategy::Plain if desc.group == "coordination.k8s.io" => {
            // ValidateLeaseSpec.
            for f in ["leaseDurationSeconds"] {
                if let Some(v) = obj.pointer(&format!("/spec/{f}")).and_then(Value::as_i64)
                    && v <= 0
                {
                    causes.push(invalid_value(
                        &format!("spec.{f}"),
                        &json!(v),
                        "must be greater than 0",
                    ));
                }
            }
            if let Some(v) = obj
                .pointer("/spec/leaseTransitions")
                .and_then(Value::as_i64)
                && v < 0
            {
                causes.push(invalid_value(
                    "spec.leaseTransitions",
                    &json!(v),
                    "must be greater than or equal to 0",
                ));
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&desc.group, &desc.kind, &name, &causes))
    }
}
