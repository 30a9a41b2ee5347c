//! The `scale` subresource: an object seen and written as an `autoscaling/v1 Scale`, at the
//! paths its kind (or CRD) names.

use serde_json::{Value, json};

use crate::admission::{Attributes, Operation};
use crate::errors::{ApiError, invalid_value};
use crate::kinds;
use crate::resources::{ResourceDesc, Strategy};
use crate::store::Store;

use super::admit::run_admission;
use super::context::{RequestContext, Subresource};
use super::object::{meta, meta_mut, str_at};
use super::update::update;

/// `autoscaling/v1 Scale` view of an object with a scale subresource.
pub fn scale_of(desc: &ResourceDesc, obj: &Value) -> Result<Value, ApiError> {
    let paths = desc.scale.as_ref().ok_or_else(|| {
        ApiError::not_found(
            &desc.group,
            &format!("{}/scale", desc.plural),
            str_at(obj, "/metadata/name"),
        )
    })?;
    let at = |p: &str| obj.pointer(&json_path_to_pointer(p)).cloned();
    let mut status =
        json!({"replicas": at(&paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0)});
    if let Some(sel) = paths
        .label_selector
        .as_deref()
        .and_then(&at)
        .and_then(|v| v.as_str().map(String::from))
    {
        status["selector"] = json!(sel);
    }
    if desc.strategy == Strategy::Deployment
        && let Some(sel) = obj.pointer("/spec/selector")
    {
        status["selector"] = json!(kinds::format_label_selector(sel));
    }
    let m = meta(obj);
    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": at(&paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    }))
}

/// Write a Scale back: only `spec.replicas` moves into the object, at `specReplicasPath`.
pub fn apply_scale(desc: &ResourceDesc, obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let name = str_at(obj, "/metadata/name").to_string();
    let paths = desc
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, &name))?;
    let replicas = match scale.pointer("/spec/replicas") {
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                &[invalid_value("spec.replicas", v, "must be an integer")],
            )
        })?,
        None => 0,
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            &name,
            &[invalid_value(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = obj.clone();
    let rv = str_at(scale, "/metadata/resourceVersion");
    meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
    set_json_path(&mut new, &paths.spec_replicas, json!(replicas));
    Ok(new)
}

/// `.spec.replicas` → `/spec/replicas`.
fn json_path_to_pointer(p: &str) -> String {
    p.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, s| format!("{acc}/{s}"))
}

fn set_json_path(obj: &mut Value, p: &str, v: Value) {
    let parts: Vec<&str> = p.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(m) = cur else { return };
        if i == parts.len() - 1 {
            m.insert((*part).to_string(), v);
            return;
        }
        cur = m.entry((*part).to_string()).or_insert(json!({}));
    }
}

/// A `/scale` write: admitted as the Scale it is (subresource `scale`), then stored as a write
/// of the object itself that is not admitted a second time.
pub fn scale_update(
    st: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    old: &Value,
    new: Value,
) -> Result<Value, ApiError> {
    let (old_scale, new_scale) = (scale_of(desc, old)?, scale_of(desc, &new)?);
    run_admission(
        st,
        ctx,
        &Attributes {
            operation: Operation::Update,
            desc,
            subresource: "scale",
            name,
            namespace: ns.unwrap_or(""),
            user: "",
            dry_run: ctx.dry_run,
            object: Some(&new_scale),
            old_object: Some(&old_scale),
        },
    )?;
    let unadmitted = RequestContext {
        user: None,
        ..ctx.clone()
    };
    let out = update(
        st,
        &unadmitted,
        desc,
        ns,
        name,
        new,
        Subresource::Main,
        None,
    )?;
    scale_of(desc, &out)
}
