//! PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) through the `json-patch`
//! crate, strategic merge patch for built-in kinds (list merge keys and `$patch` directives from
//! the Go struct tags `patchStrategy`/`patchMergeKey` of k8s.io/api), and the structural merge
//! used by server-side apply.

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::schema::CrSchema;

/// How a list is combined by strategic merge / apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced as a whole.
    Atomic,
    /// Elements identified by these key fields (e.g. containers by `name`).
    Map(Vec<String>),
    /// Scalar elements merged as a set (e.g. `metadata.finalizers`).
    Set,
}

/// Which list semantics apply at a path (field names; `[]` marks a step into list items).
#[derive(Clone, Copy)]
pub enum ListSemantics<'a> {
    /// Built-in kinds: the k8s.io/api struct tags.
    Builtin,
    /// Custom resources: `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`.
    Schema(&'a CrSchema),
}

impl ListSemantics<'_> {
    pub fn list_strategy(&self, path: &[String]) -> ListStrategy {
        match self {
            ListSemantics::Builtin => builtin_list_strategy(path),
            ListSemantics::Schema(s) => {
                if path.len() == 2 && path[0] == "metadata" {
                    return builtin_list_strategy(path);
                }
                let Some(node) = s.node_at(path) else {
                    return ListStrategy::Atomic;
                };
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => ListStrategy::Map(
                        node.get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|k| k.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    Some("set") => ListStrategy::Set,
                    _ => ListStrategy::Atomic,
                }
            }
        }
    }
}

/// `patchMergeKey`s of the core/v1 and meta/v1 types the embedded server stores.
fn builtin_list_strategy(path: &[String]) -> ListStrategy {
    let names: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "[]")
        .collect();
    let last = names.last().copied().unwrap_or("");
    let parent = if names.len() >= 2 {
        names[names.len() - 2]
    } else {
        ""
    };
    let key = |k: &str| ListStrategy::Map(vec![k.to_string()]);
    match last {
        "finalizers" if parent == "metadata" => ListStrategy::Set,
        "ownerReferences" if parent == "metadata" => key("uid"),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => key("name"),
        "ports"
            if matches!(
                parent,
                "containers" | "initContainers" | "ephemeralContainers"
            ) =>
        {
            key("containerPort")
        }
        // Service ports (`ServiceSpec.Ports`, patchMergeKey "port").
        "ports" if parent == "spec" => key("port"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "conditions" => key("type"),
        "hostAliases" | "podIPs" | "hostIPs" => key("ip"),
        "addresses" if parent == "status" => key("type"),
        _ => ListStrategy::Atomic,
    }
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch. Undecodable → 400; failing op (incl. `test`) → 422 as
/// kube-apiserver's patch handler does. Ops run one by one so `test` can follow
/// evanphx/json-patch, which kube-apiserver uses: testing `null` against a missing member of an
/// existing object succeeds (kube's `finalizer()` relies on this to add the first finalizer).
pub fn json_patch(target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let p: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("json: cannot unmarshal patch: {e}")))?;
    let mut doc = target.clone();
    for op in p.0 {
        if let json_patch::PatchOperation::Test(t) = &op
            && t.value.is_null()
        {
            let path = t.path.as_str();
            if doc.pointer(path).is_none() {
                let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                if doc.pointer(parent).is_some() {
                    continue;
                }
                return Err(ApiError::unprocessable_patch());
            }
        }
        json_patch::patch(&mut doc, &[op]).map_err(|_| ApiError::unprocessable_patch())?;
    }
    *target = doc;
    Ok(())
}

fn key_of(v: &Value, keys: &[String]) -> Option<Vec<Value>> {
    let o = v.as_object()?;
    Some(
        keys.iter()
            .map(|k| o.get(k).cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

/// A `$patch` directive other than `known` is refused with `mergepatch.ErrBadPatchType`, which
/// the patch handler passes through unconverted (a 500 without a reason).
fn check_directive(m: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match m.get("$patch") {
        Some(d) if !d.as_str().is_some_and(|d| known.contains(&d)) => Err(ApiError::unconverted(
            500,
            format!(
                "unknown patch type: {} in map: {}",
                go_value(d),
                go_value(&Value::Object(m.clone()))
            ),
        )),
        _ => Ok(()),
    }
}

/// A decoded JSON value as Go's `%v` prints it (`map[a:1 b:[x y]]`, keys sorted).
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut kv: Vec<(&String, &Value)> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Strategic merge patch of `patch` into `orig` (which is modified in place).
pub fn strategic_merge(
    orig: &mut Value,
    patch: &Value,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Value::Object(pm) = patch else {
        *orig = patch.clone();
        return Ok(());
    };
    check_directive(pm, &["replace", "delete"])?;
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = pm.clone();
        p.remove("$patch");
        *orig = Value::Object(p);
        return Ok(());
    }
    if !orig.is_object() {
        *orig = Value::Object(Map::new());
    }
    let Value::Object(om) = orig else {
        return Ok(());
    };
    if let Some(retain) = pm.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        om.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in pm {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (om.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(ApiError::bad_request(format!(
                "unknown patch directive {k:?}"
            )));
        }
        match v {
            Value::Null => {
                om.remove(k);
            }
            Value::Object(inner) => {
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") {
                    om.remove(k);
                    continue;
                }
                path.push(k.clone());
                let slot = om.entry(k.clone()).or_insert(Value::Null);
                let r = strategic_merge(slot, v, path);
                path.pop();
                r?;
            }
            Value::Array(items) => {
                path.push(k.clone());
                let strat = builtin_list_strategy(path);
                let slot = om.entry(k.clone()).or_insert(Value::Array(vec![]));
                let r = merge_list(slot, items, &strat, path);
                path.pop();
                r?;
            }
            _ => {
                om.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(
    slot: &mut Value,
    items: &[Value],
    strat: &ListStrategy,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace || *strat == ListStrategy::Atomic || !slot.is_array() {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return Ok(());
    }
    let Value::Array(list) = slot else {
        return Ok(());
    };
    match strat {
        ListStrategy::Set => {
            for i in items {
                if !list.contains(i) {
                    list.push(i.clone());
                }
            }
        }
        ListStrategy::Map(keys) => {
            path.push("[]".into());
            for i in items {
                let Some(id) = key_of(i, keys) else {
                    path.pop();
                    return Err(ApiError::bad_request(format!(
                        "map: {i} does not contain declared merge key: {}",
                        keys.join(",")
                    )));
                };
                let pos = list
                    .iter()
                    .position(|o| key_of(o, keys).as_ref() == Some(&id));
                if let Some(m) = i.as_object() {
                    check_directive(m, &["replace", "delete"])?;
                }
                let directive = i.get("$patch").and_then(Value::as_str);
                match (pos, directive) {
                    (Some(p), Some("delete")) => {
                        list.remove(p);
                    }
                    (None, Some("delete")) => {}
                    (Some(p), _) => strategic_merge(&mut list[p], i, path)?,
                    (None, _) => {
                        let mut fresh = Value::Object(Map::new());
                        strategic_merge(&mut fresh, i, path)?;
                        list.push(fresh);
                    }
                }
            }
            path.pop();
        }
        ListStrategy::Atomic => {}
    }
    Ok(())
}

/// Structural merge of an apply configuration into the live object (server-side apply): objects
/// merge field by field, associative lists merge by key, sets union, atomic lists are replaced.
pub fn apply_merge(
    live: &mut Value,
    config: &Value,
    path: &mut Vec<String>,
    sem: ListSemantics<'_>,
) {
    match config {
        Value::Object(cm) => {
            if !live.is_object() {
                *live = Value::Object(Map::new());
            }
            let Value::Object(lm) = live else {
                return;
            };
            for (k, v) in cm {
                path.push(k.clone());
                match v {
                    Value::Null => {
                        lm.remove(k);
                    }
                    Value::Object(_) => {
                        let slot = lm.entry(k.clone()).or_insert(Value::Null);
                        apply_merge(slot, v, path, sem);
                    }
                    Value::Array(items) => {
                        let strat = sem.list_strategy(path);
                        let slot = lm.entry(k.clone()).or_insert(Value::Array(vec![]));
                        match (&strat, slot.as_array_mut()) {
                            (ListStrategy::Map(keys), Some(list)) => {
                                path.push("[]".into());
                                for i in items {
                                    let id = key_of(i, keys);
                                    match list
                                        .iter()
                                        .position(|o| id.is_some() && key_of(o, keys) == id)
                                    {
                                        Some(p) => apply_merge(&mut list[p], i, path, sem),
                                        None => list.push(i.clone()),
                                    }
                                }
                                path.pop();
                            }
                            (ListStrategy::Set, Some(list)) => {
                                for i in items {
                                    if !list.contains(i) {
                                        list.push(i.clone());
                                    }
                                }
                            }
                            _ => *slot = v.clone(),
                        }
                    }
                    _ => {
                        lm.insert(k.clone(), v.clone());
                    }
                }
                path.pop();
            }
        }
        other => *live = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_by_keys_and_directives() {
        let mut pod = json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [
            {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "True"}]}});
        let patch = json!({"metadata": {"finalizers": ["b"]}, "spec": {"containers": [
            {"name": "app", "image": "v2", "env": [{"name": "B", "value": "2"}]},
            {"name": "side", "$patch": "delete"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        strategic_merge(&mut pod, &patch, &mut vec![]).unwrap();
        assert_eq!(pod["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "app", "image": "v2",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
        );
        assert_eq!(
            pod["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "X", "status": "True"}])
        );
        let replace = json!({"status": {"conditions": [{"$patch": "replace"}, {"type": "Z", "status": "True"}]}});
        strategic_merge(&mut pod, &replace, &mut vec![]).unwrap();
        assert_eq!(
            pod["status"]["conditions"],
            json!([{"type": "Z", "status": "True"}])
        );
    }

    #[test]
    fn json_patch_test_failure_is_422() {
        let mut v = json!({"a": 1});
        let e = json_patch(&mut v, br#"[{"op":"test","path":"/a","value":2}]"#).unwrap_err();
        assert_eq!(e.code, 422);
        let e = json_patch(&mut v, b"{not json").unwrap_err();
        assert_eq!(e.code, 400);
        // evanphx semantics: null tests a missing member of an existing object.
        let mut o = json!({"metadata": {}});
        json_patch(
            &mut o,
            br#"[{"op":"test","path":"/metadata/finalizers","value":null},
            {"op":"add","path":"/metadata/finalizers","value":["f"]}]"#,
        )
        .unwrap();
        assert_eq!(o["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(
            json_patch(&mut o, br#"[{"op":"test","path":"/nope/x","value":null}]"#)
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            json_patch(
                &mut o,
                br#"[{"op":"test","path":"/metadata/finalizers","value":null}]"#
            )
            .unwrap_err()
            .code,
            422
        );
    }
}
