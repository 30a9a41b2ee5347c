//! PUT, and the write every PATCH, apply and subresource write ends in: the generic
//! registry's `Update`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::admission::{Attributes, Operation};
use crate::errors::{ApiError, forbidden_field, invalid_value};
use crate::managed::{self, Writer};
use crate::resources::{ResourceDesc, Strategy};
use crate::store::{EventType, Store};

use super::admit::run_admission;
use super::context::{ApplyInfo, RequestContext, Subresource};
use super::decode::{check_type, decode_changed};
use super::delete::remove;
use super::object::{finalizers, key, marks_tracked, meta, meta_mut, sem, str_at};
use super::{crd, namespace, strategy};

/// The shared update path for PUT, PATCH and subresource writes: `new` is the full desired
/// object as the client sent (or as the patch produced).
#[allow(clippy::too_many_arguments)] // mirrors the registry Update signature
pub fn update(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    mut new: Value,
    sub: Subresource,
    apply: Option<ApplyInfo<'_>>,
) -> Result<Arc<Value>, ApiError> {
    let (gr, k) = (desc.gr(), key(desc, ns, name));
    let old = store
        .get(&gr, &k)
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))?;
    check_type(desc, &mut new)?;
    let mut new = decode_changed(ctx, desc, new, &old, strategy::taken_from_stored(desc, sub))?;
    // The update and patch handlers: `EnsureObjectNamespaceMatchesRequestNamespace`, then
    // `checkName`: the body's name must be the URL's, exactly (a JSON patch that removes
    // `/metadata` leaves none, and is refused).
    let body_ns = str_at(&new, "/metadata/namespace").to_string();
    if desc.namespaced && !body_ns.is_empty() && Some(body_ns.as_str()) != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let body_name = str_at(&new, "/metadata/name").to_string();
    if body_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name} based on URL) was undeterminable: name must be provided"
        )));
    }
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    // Optimistic concurrency.
    let old_rv = str_at(&old, "/metadata/resourceVersion").to_string();
    let new_rv = str_at(&new, "/metadata/resourceVersion").to_string();
    if new_rv.is_empty() {
        if !desc.unconditional_update && apply.is_none() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                name,
                &[invalid_value(
                    "metadata.resourceVersion",
                    &json!("0x0"),
                    "must be specified for an update",
                )],
            ));
        }
    } else if new_rv != old_rv {
        return Err(ApiError::stale(&desc.group, &desc.plural, name));
    }
    // ValidateObjectMetaUpdate: a uid in the body must be the stored one. Controllers put the
    // uid in adoption patches so that a pod recreated under the same name is not adopted.
    let new_uid = str_at(&new, "/metadata/uid");
    if !new_uid.is_empty() && new_uid != str_at(&old, "/metadata/uid") {
        return Err(ApiError::invalid(
            &desc.group,
            &desc.kind,
            name,
            &[invalid_value(
                "metadata.uid",
                &json!(new_uid),
                "field is immutable",
            )],
        ));
    }
    strategy::prepare_for_update(ctx, sub, desc, &mut new, &old);
    // System metadata always comes from the stored object.
    {
        let om = meta(&old);
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match om.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.remove("selfLink");
        if !m.contains_key("managedFields")
            && let Some(mf) = om.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    // No new finalizers on an object being deleted (ValidateObjectMetaUpdate).
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(&old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                name,
                &[forbidden_field(
                    "metadata.finalizers",
                    &format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    strategy::validate(desc, &mut new, Some(&old), sub)?;
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Update,
            desc,
            subresource: sub.name().unwrap_or(""),
            name,
            namespace: str_at(&old, "/metadata/namespace"),
            user: "",
            dry_run: ctx.dry_run,
            object: Some(&new),
            old_object: Some(&old),
        },
    )?;
    if desc.tracks_generation && generation_changed(desc, &new, &old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    let av = ctx.written_as.clone().unwrap_or_else(|| desc.api_version());
    let writer = Writer {
        manager: &ctx.manager,
        api_version: &av,
        time: &ctx.now,
        subresource: sub.name(),
        scope: match (sub, desc.has_status) {
            (Subresource::Status, _) => managed::Scope::StatusOnly,
            (Subresource::Main | Subresource::Resize, true) => managed::Scope::NoStatus,
            (Subresource::Main | Subresource::Resize, false) => managed::Scope::All,
        },
    };
    let tracked = apply.is_none() && marks_tracked(desc);
    match apply {
        Some(a) => {
            let removed =
                managed::track_apply(&old, &mut new, a.config, &writer, a.force, sem(desc))?;
            for p in &removed {
                managed::remove_path(&mut new, p);
            }
        }
        None => {
            let stored = if tracked && store.is_tracked(&gr, &k, &old_rv) {
                managed::Stored::Tracked
            } else {
                managed::Stored::Unknown
            };
            managed::track_update(Some(&old), stored, &mut new, &writer, sem(desc));
        }
    }
    // A write that changes nothing is not persisted (no new resourceVersion, no event).
    if same_content(&new, &old) {
        return Ok(old);
    }
    if ctx.dry_run {
        return Ok(Arc::new(new));
    }
    if desc.strategy == Strategy::Crd {
        crd::register_crd(store, &new);
    }
    let stored = store.put(&gr, k.clone(), new, EventType::Modified);
    if tracked {
        store.set_tracked(&gr, k.clone(), str_at(&stored, "/metadata/resourceVersion"));
    }
    // store.Update's shouldDeleteDuringUpdate: deleting, no finalizers left, no grace pending.
    let grace_done = stored
        .pointer("/metadata/deletionGracePeriodSeconds")
        .is_none_or(|g| g.as_i64() == Some(0));
    if stored.pointer("/metadata/deletionTimestamp").is_some()
        && finalizers(&stored).is_empty()
        && grace_done
        && !namespace::finalizers_pending(desc, &stored)
    {
        return Ok(remove(store, desc, &k).map_or(stored, Arc::new));
    }
    // The stored version itself, shared: a write's answer is serialized from it, not from a
    // deep copy of it made for each write.
    Ok(stored)
}

/// Everything outside metadata (and status when it has its own endpoint): what a generation
/// bump compares.
fn generation_changed(desc: &ResourceDesc, new: &Value, old: &Value) -> bool {
    if desc.strategy == Strategy::Pod {
        return new.get("spec") != old.get("spec");
    }
    let skip = |k: &str| k == "metadata" || (desc.has_status && k == "status");
    differs_except(new, old, skip)
}

/// Whether two objects differ in any top-level member not skipped (without cloning).
fn differs_except(a: &Value, b: &Value, skip: impl Fn(&str) -> bool) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => {
            am.iter().any(|(k, v)| !skip(k) && bm.get(k) != Some(v))
                || bm.keys().any(|k| !skip(k) && !am.contains_key(k))
        }
        _ => a != b,
    }
}

/// Equal apart from resourceVersion and managedFields: such a write is a no-op.
fn same_content(a: &Value, b: &Value) -> bool {
    if differs_except(a, b, |k| k == "metadata") {
        return false;
    }
    let empty = Value::Object(Map::new());
    let (am, bm) = (
        a.get("metadata").unwrap_or(&empty),
        b.get("metadata").unwrap_or(&empty),
    );
    !differs_except(am, bm, |k| k == "resourceVersion" || k == "managedFields")
}
