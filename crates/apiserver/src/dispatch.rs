//! One non-watch request run against the store: the body decoded as its media type says, then
//! the registry operation for its verb and subresource; `events.k8s.io/v1` through the core
//! Event storage.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::delete_options::delete_opts;
use crate::errors::ApiError;
use crate::registry::{self, ListOpts, RequestContext, Subresource};
use crate::resources::{self, ResourceDesc};
use crate::route::ResourceRoute;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Store;
use crate::{builtin, convert, kinds, protobuf};

/// The label and field selectors of a list, watch or deletecollection.
pub fn parse_selectors(
    r: &ResourceRoute,
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        FieldSelector::parse(
            q.get("fieldSelector").map(String::as_str).unwrap_or(""),
            &r.desc,
        )?,
    ))
}

/// A LIST's options from its query: selectors, `limit` and `continue`.
pub fn list_opts(r: &ResourceRoute, q: &HashMap<String, String>) -> Result<ListOpts, ApiError> {
    let (labels, fields) = parse_selectors(r, q)?;
    let limit = match q.get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request("limit: must be a non-negative integer"))?,
        ),
        None => None,
    };
    Ok(ListOpts {
        labels,
        fields,
        limit,
        cont: q.get("continue").cloned(),
    })
}

/// Media types of create/update bodies of custom resources.
const BODY_TYPES: &[&str] = &["application/json", "application/yaml"];
/// Media types of create/update bodies of built-in kinds, which also have a protobuf form.
const BUILTIN_BODY_TYPES: &[&str] = &["application/json", "application/yaml", protobuf::MEDIA_TYPE];

/// A create/update body: JSON, YAML when the client says so, or for built-in kinds protobuf
/// (kubectl's typed clients send it), as the real server accepts them.
fn parse_body(desc: &ResourceDesc, ctype: &str, body: &[u8]) -> Result<Value, ApiError> {
    match ctype {
        protobuf::MEDIA_TYPE if desc.is_builtin() => {
            registry::parse_object(protobuf::to_json(body)?.to_string().as_bytes())
        }
        _ if desc.is_builtin() && !BODY_TYPES.contains(&ctype) && !matches!(ctype, "" | "*/*") => {
            Err(ApiError::unknown_body_format(BUILTIN_BODY_TYPES))
        }
        "application/yaml" => {
            let v: Value = serde_saphyr::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            registry::parse_object(v.to_string().as_bytes())
        }
        "" | "application/json" | "*/*" => registry::parse_object(body),
        _ => Err(ApiError::unknown_body_format(BODY_TYPES)),
    }
}

/// Run one non-watch request against the store.
pub fn dispatch(
    st: &mut Store,
    ctx: &RequestContext,
    verb: &str,
    r: &ResourceRoute,
    q: &HashMap<String, String>,
    ctype: &str,
    body: &[u8],
) -> Result<(u16, Arc<Value>), ApiError> {
    let desc = &r.desc;
    let ns = r.ns.as_deref();
    let name = r.name.as_deref().unwrap_or("");
    let sub = match r.sub.as_deref() {
        None => None,
        Some("status") if desc.has_status => Some("status"),
        Some("scale") if desc.scale.is_some() => Some("scale"),
        Some(s @ ("binding" | "resize")) if desc.strategy == resources::Strategy::Pod => Some(s),
        Some(_) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    match (verb, sub) {
        ("get", None | Some("status" | "resize")) => Ok((200, registry::get(st, desc, ns, name)?)),
        ("get", Some("scale")) => {
            let obj = registry::get(st, desc, ns, name)?;
            Ok((200, Arc::new(registry::scale_of(desc, &obj)?)))
        }
        ("list", None) => Ok((
            200,
            Arc::new(registry::list(st, desc, ns, &list_opts(r, q)?)?),
        )),
        ("create", None) => {
            let obj = parse_body(desc, ctype, body)?;
            Ok((201, registry::create(st, ctx, desc, ns, obj, None)?))
        }
        ("create", Some("binding")) => {
            registry::bind(st, ctx, desc, ns, name, body).map(|(code, v)| (code, Arc::new(v)))
        }
        ("update", None | Some("status" | "resize")) => {
            let obj = parse_body(desc, ctype, body)?;
            let subresource = Subresource::of_path(sub);
            Ok((
                200,
                registry::update(st, ctx, desc, ns, name, obj, subresource, None)?,
            ))
        }
        ("update", Some("scale")) => {
            let scale = registry::parse_object(body)?;
            let old = registry::get(st, desc, ns, name)?;
            let new = registry::apply_scale(desc, &old, &scale)?;
            let scale = registry::scale_update(st, ctx, desc, ns, name, &old, new)?;
            Ok((200, Arc::new(scale)))
        }
        ("patch", Some("scale")) => {
            let old = registry::get(st, desc, ns, name)?;
            let current = registry::scale_of(desc, &old)?;
            let patched = registry::patched(desc, &current, ctype, body)?;
            let new = registry::apply_scale(desc, &old, &patched)?;
            let scale = registry::scale_update(st, ctx, desc, ns, name, &old, new)?;
            Ok((200, Arc::new(scale)))
        }
        ("patch", None | Some("status" | "resize")) => {
            let subresource = Subresource::of_path(sub);
            // `fieldManager` is checked with the other options (`options::check`).
            if ctype == "application/apply-patch+yaml" || ctype == "application/apply-patch+cbor" {
                let config: Value = serde_saphyr::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                if !config.is_object() {
                    return Err(ApiError::bad_request(
                        "the apply configuration must be an object",
                    ));
                }
                let force = q.get("force").is_some_and(|f| f == "true");
                let (out, created) =
                    registry::apply(st, ctx, desc, ns, name, config, force, subresource)?;
                return Ok((if created { 201 } else { 200 }, out));
            }
            let old = registry::get(st, desc, ns, name)?;
            let new = registry::patched(desc, &old, ctype, body)?;
            Ok((
                200,
                registry::update(st, ctx, desc, ns, name, new, subresource, None)?,
            ))
        }
        ("delete", None) => {
            let opts = delete_opts(q, body)?;
            let ctx = RequestContext {
                dry_run: ctx.dry_run || opts.dry_run,
                ..ctx.clone()
            };
            let out = registry::delete(st, &ctx, desc, ns, name, &opts)?;
            // DeleteResource: 202 when the object stays (finalizers, grace period) and the
            // deprecated `orphanDependents: false` asked for cascading; 200 otherwise.
            let stays =
                !ctx.dry_run && st.get(&desc.gr(), &registry::key(desc, ns, name)).is_some();
            let code = if stays && opts.orphan_dependents == Some(false) {
                202
            } else {
                200
            };
            Ok((code, Arc::new(out)))
        }
        ("deletecollection", None) => {
            let (labels, fields) = parse_selectors(r, q)?;
            let opts = delete_opts(q, body)?;
            let list = registry::list(
                st,
                desc,
                ns,
                &ListOpts {
                    labels,
                    fields,
                    limit: None,
                    cont: None,
                },
            )?;
            let mut items = Vec::new();
            for it in list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let n = it
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let ins = it
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from);
                if let Ok(v) = registry::delete(st, ctx, desc, ins.as_deref(), &n, &opts)
                    && v.get("kind").and_then(Value::as_str) != Some("Status")
                {
                    items.push(v);
                }
            }
            Ok((
                200,
                Arc::new(
                    json!({"apiVersion": desc.api_version(), "kind": desc.list_kind(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
                ),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Whether `d` is `events.k8s.io/v1` Events, served from the core Event storage.
pub fn is_events_v1(d: &ResourceDesc) -> bool {
    d.group == "events.k8s.io" && d.plural == "events"
}

/// `ValidateEventCreate`/`ValidateEventUpdate`'s rules for a write through `events.k8s.io/v1`
/// (stricter than through core `v1`), on the converted body; an update of a missing Event
/// creates it (`AllowCreateOnUpdate`), so it is checked as a create.
fn check_event_v1(
    st: &Store,
    core: &ResourceDesc,
    verb: &str,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let Ok(e) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let ns = ns.unwrap_or("");
    let mut causes = Vec::new();
    let old = (verb != "create")
        .then(|| registry::get(st, core, Some(ns), name).ok())
        .flatten();
    match old {
        Some(old) => kinds::validate_event_v1_update(&e, &old, ns, &mut causes),
        None => kinds::validate_event_v1_create(&e, ns, &mut causes),
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = e
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(name);
    Err(ApiError::invalid("events.k8s.io", "Event", name, &causes))
}

/// `events.k8s.io/v1` served from core `v1` Event storage: convert request bodies in and
/// responses out, run everything else as the core resource.
pub fn dispatch_events_v1(
    st: &mut Store,
    ctx: &RequestContext,
    verb: &str,
    r: &ResourceRoute,
    q: &HashMap<String, String>,
    ctype: &str,
    body: &[u8],
) -> Result<(u16, Arc<Value>), ApiError> {
    let core = st
        .registry
        .get("", "v1", "events")
        .ok_or_else(|| ApiError::internal("core events resource missing"))?;
    let ext = r.desc.clone();
    let cr = ResourceRoute {
        desc: core.clone(),
        ..r.clone()
    };
    let ns = r.ns.as_deref();
    let name = r.name.as_deref().unwrap_or("");
    // managedFields name the version written, as kube-apiserver's field manager records it.
    let ctx = &RequestContext {
        written_as: Some(ext.api_version()),
        ..ctx.clone()
    };
    let to_core = |b: &[u8]| -> Result<Vec<u8>, ApiError> {
        let mut obj = registry::parse_object(b)?;
        if obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|a| a.is_empty())
        {
            obj["apiVersion"] = json!("events.k8s.io/v1");
        }
        if obj.get("apiVersion").and_then(Value::as_str) != Some("events.k8s.io/v1") {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version (events.k8s.io/v1)",
                obj["apiVersion"]
            )));
        }
        let typed = builtin::normalize(&ext, obj)?;
        Ok(convert::event_to_core(typed).to_string().into_bytes())
    };
    let out = match verb {
        "create" | "update" => {
            let converted = to_core(body)?;
            check_event_v1(st, &core, verb, ns, name, &converted)?;
            dispatch(st, ctx, verb, &cr, q, "application/json", &converted)?
        }
        "patch" if ctype == "application/apply-patch+yaml" => {
            let config: Value = serde_saphyr::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let converted = convert::event_to_core(config).to_string().into_bytes();
            dispatch(st, ctx, verb, &cr, q, ctype, &converted)?
        }
        "patch" => {
            let old = registry::get(st, &core, ns, name)?;
            let ext_old = convert::event_from_core((*old).clone());
            let patched = registry::patched(&ext, &ext_old, ctype, body)?;
            let new = to_core(patched.to_string().as_bytes())?;
            check_event_v1(st, &core, "update", ns, name, &new)?;
            dispatch(st, ctx, "update", &cr, q, "application/json", &new)?
        }
        _ => {
            // Field selectors name events.k8s.io fields; the stored form has core names.
            let mut q2 = q.clone();
            if let Some(fs) = q.get("fieldSelector") {
                let mut f = fs.clone();
                for (e, c) in [
                    ("regarding.", "involvedObject."),
                    ("reportingController", "reportingComponent"),
                ] {
                    f = f.replace(e, c);
                }
                q2.insert("fieldSelector".into(), f);
            }
            dispatch(st, ctx, verb, &cr, &q2, ctype, body)?
        }
    };
    let (code, v) = out;
    let mut v = Arc::unwrap_or_clone(v);
    if v.get("kind").and_then(Value::as_str) == Some("EventList") {
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for it in items.iter_mut() {
                *it = convert::event_from_core(std::mem::take(it));
            }
        }
        v["apiVersion"] = json!("events.k8s.io/v1");
    } else if v.get("kind").and_then(Value::as_str) == Some("Event") {
        v = convert::event_from_core(v);
    }
    Ok((code, Arc::new(v)))
}
