//! Object metadata: reading and writing it in a JSON object, and apimachinery's
//! `ValidateObjectMeta` rules every kind shares.

use serde_json::{Map, Value, json};

use crate::errors::{Cause, invalid_value, too_long};
use crate::patch::ListSemantics;
use crate::resources::{ResourceDesc, Strategy};
use crate::selectors::{valid_dns_label, valid_dns_subdomain, valid_label_key, valid_label_value};
use crate::store::ObjKey;

/// The store key of `name`: cluster-scoped objects have no namespace.
pub fn key(desc: &ResourceDesc, ns: Option<&str>, name: &str) -> ObjKey {
    (
        if desc.namespaced {
            ns.unwrap_or("").to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

pub fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        if let Value::Object(m) = obj {
            m.insert("metadata".into(), json!({}));
        } else {
            *obj = json!({"metadata": {}});
        }
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just ensured to be an object"),
    }
}

/// The string at JSON pointer `ptr` in `v`, or `""` when it is missing or not a string.
pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an Update-style write's managedFields may be marked as kept up to date
/// (`Store::set_tracked`), and the mark trusted by the next write: for built-in kinds only. A
/// custom resource's list semantics come from the schema of the CRD version it is written
/// through, which a write through another version or an update of its CRD changes, so its
/// owned fields are worked out whole on every write.
pub fn marks_tracked(desc: &ResourceDesc) -> bool {
    desc.schema.is_none()
}

pub fn sem(desc: &ResourceDesc) -> ListSemantics<'_> {
    match &desc.schema {
        Some(s) => ListSemantics::Schema(s),
        None => ListSemantics::Builtin,
    }
}

/// One generation more, for kinds that track it, once the object has one.
pub fn bump_generation(desc: &ResourceDesc, obj: &mut Value) {
    if let Some(g) = obj.pointer("/metadata/generation").and_then(Value::as_i64)
        && g > 0
        && desc.tracks_generation
    {
        meta_mut(obj).insert("generation".into(), json!(g + 1));
    }
}

/// `ValidateObjectMeta`: the name, labels, annotations and finalizers every kind shares.
pub fn validate_meta(desc: &ResourceDesc, obj: &Value, causes: &mut Vec<Cause>) {
    let name = str_at(obj, "/metadata/name");
    let ok = match desc.strategy {
        Strategy::Namespace => valid_dns_label(name),
        _ => valid_dns_subdomain(name),
    };
    if !name.is_empty() && !ok {
        causes.push(invalid_value(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !valid_label_key(k) {
                        causes.push(invalid_value("metadata.labels", &json!(k), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                    match v.as_str() {
                        Some(s) if valid_label_value(s) => {}
                        _ => causes.push(invalid_value("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")),
                    }
                }
            }
            None if !labels.is_null() => causes.push(invalid_value(
                "metadata.labels",
                labels,
                "must be a map of strings",
            )),
            None => {}
        }
    }
    if let Some(a) = obj.pointer("/metadata/annotations")
        && !a.is_null()
        && !a
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    {
        causes.push(invalid_value(
            "metadata.annotations",
            a,
            "must be a map of strings",
        ));
    }
    if let Some(m) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        // `ValidateAnnotations`: each key a qualified name, checked lower-cased.
        for k in m.keys() {
            // Lower-cased as kube does; most keys already are, and every write checks them.
            let key = if k.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(k.to_lowercase())
            } else {
                std::borrow::Cow::Borrowed(k.as_str())
            };
            for msg in crate::kinds::qualified_name_errors(&key) {
                causes.push(invalid_value("metadata.annotations", &json!(k), &msg));
            }
        }
        let total: usize = m
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > TOTAL_ANNOTATION_BYTES {
            causes.push(too_long("metadata.annotations", TOTAL_ANNOTATION_BYTES));
        }
    }
    validate_finalizers(desc, obj, causes);
}

/// `ValidateFinalizers` (apimachinery): each finalizer a qualified name, reported on
/// `metadata.finalizers`. Kinds the core validation package checks (`validateKubeFinalizerName`)
/// check each again at its index, and there one without a `/` must be a standard one; CRDs,
/// admission registration and custom resources use apimachinery's rules alone.
fn validate_finalizers(desc: &ResourceDesc, obj: &Value, causes: &mut Vec<Cause>) {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    let Some(list) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return;
    };
    let kube_rules = desc.is_builtin()
        && !matches!(
            desc.group.as_str(),
            "apiextensions.k8s.io" | "admissionregistration.k8s.io"
        );
    for (i, f) in list.iter().enumerate() {
        let Some(f) = f.as_str() else { continue };
        let errors = crate::kinds::qualified_name_errors(f);
        let unqualified = kube_rules && !f.contains('/') && !STANDARD.contains(&f);
        for msg in &errors {
            causes.push(invalid_value("metadata.finalizers", &json!(f), msg));
        }
        if kube_rules && (unqualified || !errors.is_empty()) {
            let field = format!("metadata.finalizers[{i}]");
            for msg in &errors {
                causes.push(invalid_value(&field, &json!(f), msg));
            }
            if unqualified {
                causes.push(invalid_value(
                    &field,
                    &json!(f),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
}

/// `TotalAnnotationSizeLimitB`: keys and values of all annotations together.
const TOTAL_ANNOTATION_BYTES: usize = 256 * 1024;
