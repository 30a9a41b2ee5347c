//! CustomResourceDefinitions: apiextensions' CRD strategy (validation, the status its
//! controllers would set) and the registration of the resources a CRD defines.

use serde_json::{Value, json};

use crate::errors::{Cause, invalid_value};
use crate::resources::{GroupResource, descriptors_from_crd};
use crate::store::{ObjKey, Store};

use super::context::RequestContext;
use super::object::str_at;

/// PrepareForCreate: the status the CRD controllers would publish at once.
pub fn prepare_for_create(ctx: &RequestContext, obj: &mut Value) {
    let mut st = crd_status(obj);
    set_crd_condition_times(&mut st, &ctx.now);
    obj["status"] = st;
}

/// PrepareForUpdate: the status recomputed, keeping the transition times of the stored
/// conditions.
pub fn prepare_for_update(ctx: &RequestContext, new: &mut Value, old: &Value) {
    let mut st = crd_status(new);
    if let Some(oc) = old.pointer("/status/conditions") {
        st["conditions"] = oc.clone();
    } else {
        set_crd_condition_times(&mut st, &ctx.now);
    }
    new["status"] = st;
}

/// The CRD's own validation: its CEL rules first (one that fails here must not reach the
/// parser), then its versions and schemas as the registry reads them; group and plural are
/// immutable.
pub fn validate(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let rule_causes = crate::schema::check_crd_rules(obj);
    let rules_ok = rule_causes.is_empty();
    causes.extend(rule_causes);
    if rules_ok && let Err(errs) = descriptors_from_crd(obj) {
        for e in errs {
            let (field, msg) = e.split_once(": ").unwrap_or(("", e.as_str()));
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: msg.to_string(),
                field: field.to_string(),
            });
        }
    }
    if let Some(old) = old
        && (old.pointer("/spec/group") != obj.pointer("/spec/group")
            || old.pointer("/spec/names/plural") != obj.pointer("/spec/names/plural"))
    {
        causes.push(invalid_value(
            "spec.group",
            obj.pointer("/spec/group").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

/// After a CRD write: (re)register its served versions.
pub fn register_crd(store: &mut Store, crd: &Value) {
    if let Ok((descs, storage)) = descriptors_from_crd(crd) {
        if let Some(first) = descs.first() {
            store.registry.remove_resource(&first.group, &first.plural);
            store.registry.set_preferred(&first.group, &storage);
        }
        for d in descs {
            store.registry.insert(d);
        }
    }
}

/// After a CRD's removal: its resources and their objects go too.
pub fn unregister_crd(store: &mut Store, gone: &Value) {
    let group = str_at(gone, "/spec/group").to_string();
    let plural = str_at(gone, "/spec/names/plural").to_string();
    let gr = GroupResource {
        group: group.clone(),
        resource: plural.clone(),
    };
    let keys: Vec<ObjKey> = store
        .tables
        .get(&gr)
        .map(|t| t.objects.keys().cloned().collect())
        .unwrap_or_default();
    for key in keys {
        store.remove(&gr, &key);
    }
    store.registry.remove_resource(&group, &plural);
}

/// Status the CRD controllers would publish: names accepted and established.
fn crd_status(crd: &Value) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": stored,
    })
}

fn set_crd_condition_times(status: &mut Value, now: &str) {
    if let Some(cs) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            c.insert("lastTransitionTime".into(), json!(now));
        }
    }
}
