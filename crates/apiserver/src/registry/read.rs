//! GET and LIST: reads of the store, and the resourceVersion and continue-token rules of
//! kube-apiserver's lists.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::resources::ResourceDesc;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Store};

use super::object::key;

/// GET.
pub fn get(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
) -> Result<Arc<Value>, ApiError> {
    store
        .get(&desc.gr(), &key(desc, ns, name))
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))
}

/// `APIObjectVersioner.ParseResourceVersion`: "" and "0" mean any version; anything else must
/// be a number. kube-apiserver passes the storage error through unconverted, so a client sees a
/// 500 without a reason (kubernetes#101350).
pub fn parse_resource_version(rv: &str) -> Result<u64, ApiError> {
    if rv.is_empty() {
        return Ok(0);
    }
    rv.parse().map_err(|_| {
        ApiError::unconverted(
            500,
            format!(
                "resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
            ),
        )
    })
}

/// A list with `resourceVersionMatch=Exact`: served from the current objects when nothing of
/// this resource changed after that version (they are then that snapshot), else `410 Expired`
/// as kube-apiserver answers a version it no longer has; a version from the future is
/// kube's `504 Too large resource version`.
pub fn check_exact_snapshot(store: &Store, desc: &ResourceDesc, rv: &str) -> Result<(), ApiError> {
    let want = parse_resource_version(rv)?;
    if want > store.rv {
        return Err(ApiError {
            code: 504,
            reason: "Timeout",
            message: format!("Too large resource version: {want}, current: {}", store.rv),
            details: Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1
            })),
        });
    }
    let newest = store
        .tables
        .get(&desc.gr())
        .map_or(0, |t| t.log.back().map_or(t.compacted_rv, |e| e.rv()));
    if newest > want {
        return Err(ApiError::gone(
            "The resourceVersion for the provided list is too old.",
        ));
    }
    Ok(())
}

/// Continue token: the last key returned, base64-free JSON is fine since clients treat it as
/// opaque.
fn encode_continue(rv: u64, k: ObjKey) -> String {
    let raw = json!({"rv": rv, "ns": k.0, "name": k.1}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The list's resourceVersion (of its first page) and the last key returned.
fn decode_continue(tok: &str) -> Option<(u64, ObjKey)> {
    if !tok.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(tok.get(i..i + 2)?, 16).ok())
        .collect();
    let v: Value = serde_json::from_slice(&bytes?).ok()?;
    Some((
        v.get("rv")?.as_u64()?,
        (
            v.get("ns")?.as_str()?.to_string(),
            v.get("name")?.as_str()?.to_string(),
        ),
    ))
}

/// A LIST's selectors and paging.
pub struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub cont: Option<String>,
}

/// LIST. Pages continue after the last returned key, and every page carries the
/// resourceVersion of the first, as kube-apiserver's do: a client that watches from it after
/// the last page sees every change made while it paged (a later page's version would hide the
/// changes to objects already listed, for ever). Unlike etcd, later pages show the current
/// state rather than a snapshot, so a change may be seen twice; a token whose version the
/// event log no longer covers is 410 Expired, as a compacted one is.
pub fn list(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    opts: &ListOpts,
) -> Result<Value, ApiError> {
    let (md, items) = list_raw(store, desc, ns, opts)?;
    Ok(json!({
        "apiVersion": desc.api_version(),
        "kind": desc.list_kind(),
        "metadata": md,
        "items": items.iter().map(|o| (**o).clone()).collect::<Vec<_>>(),
    }))
}

/// LIST as (list metadata, shared items), for responses serialized without copying.
pub fn list_raw(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    opts: &ListOpts,
) -> Result<(Value, Vec<Arc<Value>>), ApiError> {
    let (list_rv, start) = match &opts.cont {
        Some(t) if !t.is_empty() => {
            let (rv, key) = decode_continue(t).ok_or_else(|| {
                ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            })?;
            (rv, Some(key))
        }
        _ => (store.rv, None),
    };
    let table = store.tables.get(&desc.gr());
    if start.is_some() && table.is_some_and(|t| list_rv < t.compacted_rv) {
        return Err(ApiError::gone(
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter.",
        ));
    }
    let empty = Default::default();
    let objects = table.map(|t| &t.objects).unwrap_or(&empty);
    let selecting = !(opts.labels.is_empty() && opts.fields.is_empty());
    let range = match (&start, desc.namespaced.then_some(ns).flatten()) {
        (Some(s), _) => objects.range((
            std::ops::Bound::Excluded(s.clone()),
            std::ops::Bound::Unbounded,
        )),
        (None, Some(n)) => objects.range((n.to_string(), String::new())..),
        (None, None) => objects.range::<ObjKey, _>(..),
    };
    let mut items: Vec<Arc<Value>> = Vec::new();
    let mut last_key: Option<&ObjKey> = None;
    let mut next = None;
    let mut remaining = 0usize;
    for (k, o) in range {
        if desc.namespaced && ns.is_some_and(|n| n != k.0) {
            if ns.is_some_and(|n| k.0.as_str() > n) {
                break;
            }
            continue;
        }
        if selecting && !(opts.labels.matches_obj(o) && opts.fields.matches(o)) {
            continue;
        }
        if let Some(l) = opts.limit
            && l > 0
            && items.len() >= l
        {
            if next.is_none() {
                next = Some(encode_continue(
                    list_rv,
                    last_key.cloned().unwrap_or_default(),
                ));
                if selecting {
                    break;
                }
            }
            remaining += 1;
            continue;
        }
        last_key = Some(k);
        items.push(o.clone());
    }
    let mut md = json!({"resourceVersion": list_rv.to_string()});
    if let Some(n) = next {
        md["continue"] = json!(n);
        if !selecting {
            md["remainingItemCount"] = json!(remaining);
        }
    }
    Ok((md, items))
}
