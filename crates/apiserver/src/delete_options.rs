//! `DeleteOptions` of a DELETE or deletecollection, from its body and its query, refused
//! as kube-apiserver's decoder refuses a mistyped field.

use std::collections::HashMap;

use serde_json::Value;

use crate::errors::ApiError;
use crate::options;
use crate::registry::DeleteOpts;

/// The options of a delete: the body's `DeleteOptions`, then the query's, which win.
pub fn delete_opts(q: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let mut o = DeleteOpts::default();
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        check_delete_options(&v)?;
        options::check_delete_body(&v)?;
        o.dry_run = v
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
        o.grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from);
        o.orphan_dependents = v.get("orphanDependents").and_then(Value::as_bool);
        if o.propagation.is_none() {
            match o.orphan_dependents {
                Some(true) => o.propagation = Some("Orphan".into()),
                Some(false) => o.propagation = Some("Background".into()),
                None => {}
            }
        }
        o.precondition_uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        o.precondition_rv = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request("gracePeriodSeconds: must be an integer"))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    Ok(o)
}

/// Go types of the `DeleteOptions` fields, as its decoder checks them.
#[derive(Clone, Copy)]
enum GoType {
    String,
    Int64,
    Bool,
    Strings,
    Preconditions,
}

impl GoType {
    fn name(self) -> &'static str {
        match self {
            GoType::String => "string",
            GoType::Int64 => "int64",
            GoType::Bool => "bool",
            GoType::Strings => "[]string",
            GoType::Preconditions => "v1.Preconditions",
        }
    }

    /// Whether `v` decodes as this type (`null` always does: it leaves the field unset).
    fn accepts(self, v: &Value) -> bool {
        match self {
            _ if v.is_null() => true,
            GoType::String => v.is_string(),
            GoType::Int64 => v.is_i64(),
            GoType::Bool => v.is_boolean(),
            GoType::Strings => v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string() || x.is_null())),
            GoType::Preconditions => v.is_object(),
        }
    }
}

const DELETE_OPTIONS_FIELDS: &[(&str, GoType)] = &[
    ("apiVersion", GoType::String),
    ("kind", GoType::String),
    ("gracePeriodSeconds", GoType::Int64),
    ("preconditions", GoType::Preconditions),
    ("orphanDependents", GoType::Bool),
    ("propagationPolicy", GoType::String),
    ("dryRun", GoType::Strings),
    (
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        GoType::Bool,
    ),
];

const PRECONDITIONS_FIELDS: &[(&str, GoType)] =
    &[("uid", GoType::String), ("resourceVersion", GoType::String)];

/// A `DeleteOptions` body with a mistyped field is refused, not half-read: kube-apiserver's
/// decoder fails with Go's `json: cannot unmarshal ...` and (since 1.35) answers 400.
fn check_delete_options(v: &Value) -> Result<(), ApiError> {
    fn check(
        obj: &Value,
        go_struct: &str,
        prefix: &str,
        fields: &[(&str, GoType)],
    ) -> Result<(), ApiError> {
        let Some(m) = obj.as_object() else {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type v1.{go_struct}",
                json_kind(obj)
            )));
        };
        for (name, ty) in fields {
            let Some(val) = m.get(*name) else { continue };
            if !ty.accepts(val) {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go struct field {go_struct}.{prefix}{name} of type {}",
                    json_kind(val),
                    ty.name()
                )));
            }
        }
        Ok(())
    }
    check(v, "DeleteOptions", "", DELETE_OPTIONS_FIELDS)?;
    match v.get("preconditions") {
        Some(p) if p.is_object() => {
            check(p, "Preconditions", "preconditions.", PRECONDITIONS_FIELDS)
        }
        _ => Ok(()),
    }
}

/// How Go's encoding/json names a JSON value's kind in its errors.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
