//! A request body turned into the object to store: parsed, its type checked against the
//! endpoint, and decoded as the kind's schema decodes it.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::resources::{ResourceDesc, Strategy};

use super::context::RequestContext;
use super::object::str_at;

/// Parse a request body as a JSON object (400 otherwise, as the decoder does).
pub fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized: expected a JSON object",
        ));
    }
    Ok(v)
}

/// apiVersion/kind must match the endpoint when given; fill them in otherwise.
pub fn check_type(desc: &ResourceDesc, obj: &mut Value) -> Result<(), ApiError> {
    let av = desc.api_version();
    let given_av = str_at(obj, "/apiVersion").to_string();
    let given_kind = str_at(obj, "/kind").to_string();
    // A built-in kind's decoder defaults apiVersion and kind from the URL; a custom resource
    // is decoded as unstructured, which needs its own kind (`runtime.NewMissingKindErr`) and
    // whose version must then match (`create.go`: "the API version in the data").
    if !desc.is_builtin() {
        if given_kind.is_empty() {
            // `transformDecodeError` asks the kind-less object for its kind, and quotes that
            // error, not the body.
            return Err(ApiError::bad_request(
                "Object 'Kind' is missing in 'object has no kind field '",
            ));
        }
        if given_av.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data () does not match the expected API version ({av})"
            )));
        }
    }
    if !given_av.is_empty() && given_av != av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given_av}) does not match the expected API version ({av})"
        )));
    }
    if !given_kind.is_empty() && given_kind != desc.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given_kind}) does not match the expected kind ({})",
            desc.kind
        )));
    }
    if let Value::Object(m) = obj {
        m.insert("apiVersion".into(), json!(av));
        m.insert("kind".into(), json!(desc.kind));
    }
    Ok(())
}

/// Decode as the typed built-in or prune to the CRD schema: unknown fields are dropped, or
/// rejected under `fieldValidation=Strict` (`strict decoding error: unknown field ...`).
pub fn decode(ctx: &RequestContext, desc: &ResourceDesc, obj: Value) -> Result<Value, ApiError> {
    let before = ctx.strict.then(|| obj.clone());
    let out = match (&desc.schema, desc.strategy) {
        (Some(schema), Strategy::Custom) => {
            let mut o = obj;
            schema.prune(&mut o);
            o
        }
        _ => crate::builtin::normalize(desc, obj)?,
    };
    if let Some(before) = before {
        let mut gone = Vec::new();
        dropped_fields(&before, &out, "", &mut gone);
        if !gone.is_empty() {
            let list: Vec<String> = gone
                .iter()
                .map(|g| format!("unknown field {g:?}"))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = desc.kind,
                v = desc.version
            )));
        }
    }
    Ok(out)
}

/// [`decode`] of an update's object, leaving out the `taken` members that are as stored: the
/// update takes those from the stored object anyway, and a stored pod's spec and status are
/// already in their decoded form, so decoding them again changes nothing but the cost (a
/// kubelet's status write no longer decodes the pod's spec, an operator's label patch its
/// status). Only pods: both members are optional in `Pod`, so leaving one out decodes the
/// rest as before (a kind whose type requires its spec would refuse the object without it),
/// and a custom resource's schema may have changed since it was stored.
pub fn decode_changed(
    ctx: &RequestContext,
    desc: &ResourceDesc,
    mut obj: Value,
    stored: &Value,
    taken: &[&str],
) -> Result<Value, ApiError> {
    if desc.strategy != Strategy::Pod {
        return decode(ctx, desc, obj);
    }
    let mut kept = Vec::new();
    if let Value::Object(m) = &mut obj {
        for &k in taken {
            if m.contains_key(k)
                && m.get(k) == stored.get(k)
                && let Some(v) = m.remove(k)
            {
                kept.push((k, v));
            }
        }
    }
    let mut out = decode(ctx, desc, obj)?;
    if let Value::Object(m) = &mut out {
        for (k, v) in kept {
            m.insert(k.to_string(), v);
        }
    }
    Ok(out)
}

/// Paths present in `before` but gone from `after` (objects only), for strict field validation.
fn dropped_fields(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    Some(av) => dropped_fields(v, av, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a.iter()).enumerate() {
                dropped_fields(bv, av, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn ctx(strict: bool) -> RequestContext {
        RequestContext {
            now: "2026-12-07T10:00:00Z".into(),
            now_secs: 0,
            manager: "m".into(),
            dry_run: false,
            strict,
            user: None,
            written_as: None,
        }
    }

    /// A stored pod's spec and status are what decoding makes of them again, so leaving them
    /// out of the decoding when a write sends them back unchanged gives the same object.
    #[test]
    fn a_pod_decoded_without_its_stored_members_is_decoded_the_same() {
        let pods = Registry::with_builtins().get("", "v1", "pods").unwrap();
        let sent = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "creationTimestamp": "2026-12-07T10:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "i", "unknown": 1,
                "resources": {"limits": {"cpu": "500m"}}, "ports": [{"containerPort": 80}]}],
                "readinessGates": [{"conditionType": "X"}], "terminationGracePeriodSeconds": 5},
            "status": {"phase": "Running", "startTime": "2026-12-07T10:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "bogus": true}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                    "image": "i", "imageID": "", "state": {"running": {}}}]}});
        let stored = decode(&ctx(false), &pods, sent).unwrap();
        for (member, taken) in [("status", "spec"), ("spec", "status")] {
            for strict in [false, true] {
                let mut write = stored.clone();
                write[member]["x"] = json!("changed");
                write["metadata"]["labels"]["a"] = json!("c");
                let whole = decode(&ctx(strict), &pods, write.clone());
                let changed = decode_changed(&ctx(strict), &pods, write, &stored, &[taken]);
                assert_eq!(
                    format!("{whole:?}"),
                    format!("{changed:?}"),
                    "{member} written, {taken} as stored, strict {strict}"
                );
            }
        }
    }
}
