//! POST: the generic registry's `Create`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::{Attributes, Operation};
use crate::errors::{ApiError, required};
use crate::managed::{self, Writer};
use crate::resources::{ResourceDesc, Strategy};
use crate::store::{EventType, Store};

use super::admit::run_admission;
use super::context::{ApplyInfo, RequestContext, Subresource};
use super::decode::{check_type, decode};
use super::object::{key, marks_tracked, meta_mut, sem, str_at};
use super::{crd, strategy};

/// apiserver's `maxGeneratedNameLength`: 63 less the five random characters.
const MAX_GENERATED_NAME_PREFIX: usize = 58;

/// POST.
pub fn create(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    mut obj: Value,
    apply: Option<ApplyInfo<'_>>,
) -> Result<Arc<Value>, ApiError> {
    check_type(desc, &mut obj)?;
    let mut obj = decode(ctx, desc, obj)?;
    let url_ns = if desc.namespaced {
        ns.unwrap_or("")
    } else {
        ""
    };
    {
        let m = meta_mut(&mut obj);
        let body_ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if desc.namespaced {
            if !body_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".into(), json!(url_ns));
        } else {
            m.remove("namespace");
        }
    }
    let mut name = str_at(&obj, "/metadata/name").to_string();
    if name.is_empty() {
        let gen_name = str_at(&obj, "/metadata/generateName").to_string();
        if gen_name.is_empty() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                "",
                &[required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        // `SimpleNameGenerator`: the prefix is cut so the name, with its five random
        // characters, fits 63. Retry on the (unlikely) collision rather than failing like the
        // real server may.
        let mut cut = gen_name.len().min(MAX_GENERATED_NAME_PREFIX);
        while !gen_name.is_char_boundary(cut) {
            cut -= 1;
        }
        let gen_name = &gen_name[..cut];
        for _ in 0..8 {
            name = format!("{gen_name}{}", store.name_suffix());
            if store.get(&desc.gr(), &key(desc, ns, &name)).is_none() {
                break;
            }
        }
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    if desc.namespaced {
        if url_ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let nsd = store
            .registry
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces resource missing"))?;
        match store.get(&nsd.gr(), &(String::new(), url_ns.to_string())) {
            None => return Err(ApiError::not_found("", "namespaces", url_ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                return Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {url_ns} because it is being terminated",
                    crate::errors::qualified(&desc.group, &desc.plural)
                )));
            }
            Some(_) => {}
        }
    }
    let k = key(desc, ns, &name);
    // System fields (rest.BeforeCreate + FillObjectMetaSystemFields).
    let uid = store.new_uid();
    {
        let m = meta_mut(&mut obj);
        for f in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(ctx.now));
        if desc.tracks_generation {
            m.insert("generation".into(), json!(1));
        }
    }
    strategy::prepare_for_create(ctx, desc, &mut obj, &name);
    strategy::validate(desc, &mut obj, None, Subresource::Main)?;
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Create,
            desc,
            subresource: "",
            name: &name,
            namespace: url_ns,
            user: "",
            dry_run: ctx.dry_run,
            object: Some(&obj),
            old_object: None,
        },
    )?;
    let gr = desc.gr();
    if store.get(&gr, &k).is_some() {
        return Err(ApiError::already_exists(&desc.group, &desc.plural, &name));
    }
    let av = ctx.written_as.clone().unwrap_or_else(|| desc.api_version());
    let writer = Writer {
        manager: &ctx.manager,
        api_version: &av,
        time: &ctx.now,
        subresource: None,
        scope: if desc.has_status {
            managed::Scope::NoStatus
        } else {
            managed::Scope::All
        },
    };
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let tracked = apply.is_none() && marks_tracked(desc);
    match apply {
        Some(a) => {
            managed::track_apply(&json!({}), &mut obj, a.config, &writer, true, sem(desc))?;
        }
        None => {
            managed::track_update(None, managed::Stored::Unknown, &mut obj, &writer, sem(desc));
        }
    }
    if ctx.dry_run {
        return Ok(Arc::new(obj));
    }
    if desc.strategy == Strategy::Crd {
        crd::register_crd(store, &obj);
    }
    let stored = store.put(&gr, k.clone(), obj, EventType::Added);
    if tracked {
        store.set_tracked(&gr, k.clone(), str_at(&stored, "/metadata/resourceVersion"));
    }
    Ok(stored)
}
