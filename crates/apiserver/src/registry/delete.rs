//! DELETE: the generic registry's `Delete`, with preconditions, graceful deletion,
//! finalizers and the propagation policy's.

use serde_json::{Value, json};

use crate::admission::{Attributes, Operation};
use crate::errors::{ApiError, Cause};
use crate::resources::{ResourceDesc, Strategy};
use crate::store::{EventType, ObjKey, Store};

use super::admit::run_admission;
use super::context::RequestContext;
use super::object::{bump_generation, finalizers, key, meta_mut, str_at};
use super::{crd, namespace, pod};

/// Delete options from the body (kube sends a `DeleteOptions`) and/or the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    /// `dryRun: ["All"]` in the body (the query form sets `RequestContext::dry_run`).
    pub dry_run: bool,
    /// The deprecated `orphanDependents` of the body, which also picks the response code.
    pub orphan_dependents: Option<bool>,
}

/// Kinds whose registry sets `ReturnDeletedObject: true` (kubernetes' `pkg/registry/core/
/// {pod,serviceaccount,service,namespace}/storage`): a delete that removes the object answers
/// with it, as it was last stored, instead of a `Status`.
fn returns_deleted_object(desc: &ResourceDesc) -> bool {
    desc.group.is_empty()
        && matches!(
            desc.plural.as_str(),
            "pods" | "serviceaccounts" | "services" | "namespaces"
        )
}

/// DELETE. Returns (object-or-status, still present).
pub fn delete(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let k = key(desc, ns, name);
    let old = store
        .get(&desc.gr(), &k)
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))?;
    if desc.strategy == Strategy::Namespace && namespace::IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden_object(
            &desc.group,
            &desc.plural,
            name,
            "this namespace may not be deleted",
        ));
    }
    if let Some(u) = &opts.precondition_uid
        && u != str_at(&old, "/metadata/uid")
    {
        return Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                str_at(&old, "/metadata/uid")
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && rv != str_at(&old, "/metadata/resourceVersion")
    {
        return Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                str_at(&old, "/metadata/resourceVersion")
            ),
        ));
    }
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Delete,
            desc,
            subresource: "",
            name,
            namespace: str_at(&old, "/metadata/namespace"),
            user: "",
            dry_run: ctx.dry_run || opts.dry_run,
            object: None,
            old_object: Some(&old),
        },
    )?;
    let policy = opts
        .propagation
        .clone()
        .unwrap_or_else(|| "Background".into());
    if !matches!(policy.as_str(), "Background" | "Foreground" | "Orphan") {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            &[Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
                field: "propagationPolicy".into(),
            }],
        ));
    }
    let mut obj = (*old).clone();
    // Graceful deletion (pods): rest.BeforeDelete with podStrategy.CheckGracefulDelete.
    let (mut changed, graceful_pending) = if desc.strategy == Strategy::Pod {
        pod::graceful_delete(ctx, desc, &mut obj, opts.grace)
    } else {
        (false, false)
    };
    // Finalizers for the propagation policy (deletionFinalizersForGarbageCollection).
    let mut fins = finalizers(&obj);
    let had_gc_fin = fins
        .iter()
        .any(|f| f == "orphan" || f == "foregroundDeletion");
    match policy.as_str() {
        "Orphan" if !fins.iter().any(|f| f == "orphan") => {
            fins.retain(|f| f != "foregroundDeletion");
            fins.push("orphan".into());
        }
        "Foreground" if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.retain(|f| f != "orphan");
            fins.push("foregroundDeletion".into());
        }
        "Background" if had_gc_fin => fins.retain(|f| f != "orphan" && f != "foregroundDeletion"),
        _ => {}
    }
    if fins != finalizers(&obj) {
        meta_mut(&mut obj).insert("finalizers".into(), json!(fins));
        changed = true;
    }
    let ns_pending = namespace::finalizers_pending(desc, &obj);
    if !fins.is_empty() || ns_pending {
        // markAsDeleting.
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            bump_generation(desc, &mut obj);
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(ctx.now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            changed = true;
        }
        changed |= namespace::mark_terminating(desc, &mut obj);
    }
    if !fins.is_empty() || graceful_pending || ns_pending {
        if ctx.dry_run || !changed {
            return Ok(obj);
        }
        let stored = store.put(&desc.gr(), k, obj, EventType::Modified);
        return Ok((*stored).clone());
    }
    if ctx.dry_run {
        return Ok(obj);
    }
    if returns_deleted_object(desc) {
        // The storage's last state (its resourceVersion, not the deletion's).
        remove(store, desc, &k);
        return Ok(obj);
    }
    let gone = remove(store, desc, &k).unwrap_or(obj);
    Ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": name,
            "group": desc.group,
            "kind": desc.plural,
            "uid": str_at(&gone, "/metadata/uid"),
        }
    }))
}

/// Final removal; CRD removal also drops its resources and their objects.
pub fn remove(store: &mut Store, desc: &ResourceDesc, k: &ObjKey) -> Option<Value> {
    let gone = store.remove(&desc.gr(), k)?;
    if desc.strategy == Strategy::Crd {
        crd::unregister_crd(store, &gone);
    }
    Some((*gone).clone())
}
