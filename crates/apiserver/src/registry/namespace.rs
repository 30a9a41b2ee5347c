//! Namespaces: their strategy's defaults and the finalization and lifecycle rules a delete
//! follows.

use serde_json::{Value, json};

use crate::resources::{ResourceDesc, Strategy};

use super::object::{meta_mut, str_at};

/// Namespaces the NamespaceLifecycle admission plugin refuses to delete.
pub const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// PrepareForCreate: `Active`, the `kubernetes` finalizer unless the spec names its own, and
/// the `kubernetes.io/metadata.name` label.
pub fn prepare_for_create(obj: &mut Value, name: &str) {
    obj["status"] = json!({"phase": "Active"});
    let fins = obj.pointer("/spec/finalizers").cloned();
    if fins.is_none() {
        if !obj.get("spec").is_some_and(Value::is_object) {
            obj["spec"] = json!({});
        }
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    }
    meta_mut(obj)
        .entry("labels")
        .or_insert(json!({}))
        .as_object_mut()
        .map(|l| l.insert("kubernetes.io/metadata.name".into(), json!(name)));
}

/// Whether `obj` is a namespace whose `spec.finalizers` still hold it.
pub fn finalizers_pending(desc: &ResourceDesc, obj: &Value) -> bool {
    desc.strategy == Strategy::Namespace
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// A namespace being deleted turns `Terminating`; returns whether it changed.
pub fn mark_terminating(desc: &ResourceDesc, obj: &mut Value) -> bool {
    if desc.strategy == Strategy::Namespace && str_at(obj, "/status/phase") != "Terminating" {
        obj["status"] = json!({"phase": "Terminating"});
        return true;
    }
    false
}
