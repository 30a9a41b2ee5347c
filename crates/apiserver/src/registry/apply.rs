//! PATCH: a patch body applied to the stored object, and server-side apply.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::patch;
use crate::resources::{ResourceDesc, Strategy};
use crate::store::Store;

use super::context::{ApplyInfo, RequestContext, Subresource};
use super::create::create;
use super::decode::check_type;
use super::object::{key, meta_mut, sem, str_at};
use super::update::update;

/// The patch media types an endpoint takes (custom resources have no strategic merge).
fn patch_types(desc: &ResourceDesc) -> &'static [&'static str] {
    const ALL: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    ];
    if desc.strategy == Strategy::Custom {
        &ALL[..3]
    } else {
        ALL
    }
}

/// PATCH body → desired object.
pub fn patched(
    desc: &ResourceDesc,
    old: &Value,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut target = old.clone();
    match content_type {
        "application/merge-patch+json" => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            patch::merge_patch(&mut target, &p);
        }
        "application/json-patch+json" => patch::json_patch(&mut target, body)?,
        "application/strategic-merge-patch+json" => {
            if desc.strategy == Strategy::Custom {
                return Err(ApiError::unknown_body_format(patch_types(desc)));
            }
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            patch::strategic_merge(&mut target, &p, &mut vec![])?;
        }
        _ => return Err(ApiError::unknown_body_format(patch_types(desc))),
    }
    if !target.is_object() {
        return Err(ApiError::bad_request("the patch produced a non-object"));
    }
    Ok(target)
}

/// Server-side apply of `config` (already parsed from YAML/JSON).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    config: Value,
    force: bool,
    sub: Subresource,
) -> Result<(Arc<Value>, bool), ApiError> {
    let mut config = config;
    check_type(desc, &mut config)?;
    let cname = str_at(&config, "/metadata/name").to_string();
    if cname != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({cname}) does not match the name on the URL ({name})"
        )));
    }
    let k = key(desc, ns, name);
    match store.get(&desc.gr(), &k) {
        None => {
            if sub != Subresource::Main {
                return Err(ApiError::not_found(&desc.group, &desc.plural, name));
            }
            // Create through apply: the applier owns everything it sent.
            let created = create(
                store,
                ctx,
                desc,
                ns,
                config.clone(),
                Some(ApplyInfo {
                    config: &config,
                    force,
                }),
            )?;
            Ok((created, true))
        }
        Some(old) => {
            let mut merged = (*old).clone();
            let mut cfg = config.clone();
            if let Some(m) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            patch::apply_merge(&mut merged, &cfg, &mut vec![], sem(desc));
            // A resourceVersion in the configuration is a precondition; otherwise none.
            if str_at(&config, "/metadata/resourceVersion").is_empty() {
                meta_mut(&mut merged).insert(
                    "resourceVersion".into(),
                    json!(str_at(&old, "/metadata/resourceVersion")),
                );
            }
            let out = update(
                store,
                ctx,
                desc,
                ns,
                name,
                merged,
                sub,
                Some(ApplyInfo {
                    config: &config,
                    force,
                }),
            )?;
            Ok((out, false))
        }
    }
}
