//! Request routing: URL → (resource, namespace, name, subresource) following
//! `apiserver/pkg/endpoints/request/requestinfo.go`, verb selection, query parameters,
//! discovery documents and Table rendering.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::errors::ApiError;
use super::resources::{Registry, ResourceDesc};

/// A parsed API path.
#[derive(Debug, Clone)]
pub enum Route {
    Version,
    CoreVersions,
    CoreResources,
    Groups,
    Group(String),
    GroupResources(String, String),
    Resource(ResourceRoute),
}

#[derive(Debug, Clone)]
pub struct ResourceRoute {
    pub desc: Arc<ResourceDesc>,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

fn not_found() -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: Some(json!({})),
    }
}

/// Namespace subresources that are not resources in a namespace (`namespaceSubresources`).
const NS_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

pub fn route(reg: &Registry, path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (String, String, &[&str]) = match parts.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["api", "v1"] => return Ok(Route::CoreResources),
        ["apis"] => return Ok(Route::Groups),
        ["apis", g] => {
            if reg.groups().iter().any(|(x, _, _)| x == g) {
                return Ok(Route::Group(g.to_string()));
            }
            return Err(not_found());
        }
        ["apis", g, v] => {
            if reg.resources_in(g, v).is_empty() {
                return Err(not_found());
            }
            return Ok(Route::GroupResources(g.to_string(), v.to_string()));
        }
        ["api", "v1", rest @ ..] => (String::new(), "v1".into(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return Err(not_found()),
    };
    let mut cur = rest;
    let mut ns = None;
    if cur.first() == Some(&"namespaces") && cur.len() > 1 {
        ns = Some(cur[1].to_string());
        if cur.len() > 2 && !NS_SUBRESOURCES.contains(&cur[2]) {
            cur = &cur[2..];
        } else {
            // The namespace object itself (or its subresource).
            let desc = reg
                .get("", "v1", "namespaces")
                .filter(|_| group.is_empty())
                .ok_or_else(not_found)?;
            return Ok(Route::Resource(ResourceRoute {
                desc,
                ns: None,
                name: Some(cur[1].to_string()),
                sub: cur.get(2).map(|s| s.to_string()),
            }));
        }
    }
    let (plural, name, sub) = match cur {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found()),
    };
    let desc = reg.get(&group, &version, plural).ok_or_else(not_found)?;
    if ns.is_some() && !desc.namespaced {
        return Err(not_found());
    }
    if desc.namespaced && ns.is_none() && name.is_some() {
        return Err(not_found());
    }
    Ok(Route::Resource(ResourceRoute {
        desc,
        ns,
        name,
        sub,
    }))
}

pub fn query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn version_doc() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-gamedeploy",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "", "compiler": "gamedeploy", "platform": "linux/amd64"
    })
}

fn verbs(desc: &ResourceDesc) -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    .into_iter()
    .filter(|_| !desc.plural.is_empty())
    .collect()
}

/// `APIResourceList` for one group/version.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for d in reg.resources_in(group, version) {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced,
            "kind": d.kind, "verbs": verbs(&d), "storageVersionHash": "",
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        if d.has_status {
            resources.push(
                json!({"name": format!("{}/status", d.plural), "singularName": "",
                "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        if d.scale.is_some() {
            resources.push(json!({"name": format!("{}/scale", d.plural), "singularName": "",
                "namespaced": d.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]}));
        }
        if d.group.is_empty() && d.plural == "pods" {
            resources.push(
                json!({"name": "pods/binding", "singularName": "", "namespaced": true,
                "kind": "Binding", "verbs": ["create"]}),
            );
        }
    }
    json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        "resources": resources,
    })
}

pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

fn group_doc(g: &str, versions: &[String], pref: &str) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": vs, "preferredVersion": {"groupVersion": format!("{g}/{pref}"), "version": pref}})
}

pub fn groups(reg: &Registry) -> Value {
    let gs: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _, _)| !g.is_empty())
        .map(|(g, vs, p)| group_doc(&g, &vs, &p))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    reg.groups()
        .into_iter()
        .find(|(g, _, _)| g == name)
        .map(|(g, vs, p)| {
            let mut d = group_doc(&g, &vs, &p);
            d["kind"] = json!("APIGroup");
            d["apiVersion"] = json!("v1");
            d
        })
}

/// Whether the client asked for `application/json;as=Table`.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|a| a.contains("as=Table"))
}

/// Evaluate a simple JSONPath of printer columns (`.spec.replicas`, `.metadata.labels.x`).
fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        let (name, idx) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        cur = match cur.get(name) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = idx {
            cur = match cur.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    cur.clone()
}

/// `meta.k8s.io/v1 Table` of objects, with the CRD's printer columns (Name and Age otherwise).
pub fn table(desc: &ResourceDesc, objs: &[Value], list_meta: Value, now_secs: i64) -> Value {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let custom: Vec<Value> = desc.printer_columns.clone();
    let has_age_col = custom
        .iter()
        .any(|c| c.get("jsonPath").and_then(Value::as_str) == Some(".metadata.creationTimestamp"));
    for c in &custom {
        cols.push(json!({
            "name": c.get("name").cloned().unwrap_or(json!("")),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    if !has_age_col {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp", "priority": 0}));
    }
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
            for c in &custom {
                let p = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                let v = json_path(o, p);
                let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
                cells.push(if ty == "date" { age(&v, now_secs) } else { v });
            }
            if !has_age_col {
                cells.push(age(o.pointer("/metadata/creationTimestamp").unwrap_or(&Value::Null), now_secs));
            }
            let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
            json!({"cells": cells, "object": partial})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": cols, "rows": rows})
}

/// `duration.HumanDuration` of the time since a timestamp.
fn age(ts: &Value, now: i64) -> Value {
    let Some(t) = ts.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return json!("<unknown>");
    };
    let d = (now - t.as_second()).max(0);
    let s = if d < 120 {
        format!("{d}s")
    } else if d < 600 {
        format!("{}m{}s", d / 60, d % 60)
    } else if d < 3 * 3600 {
        format!("{}m", d / 60)
    } else if d < 8 * 3600 {
        format!("{}h{}m", d / 3600, (d % 3600) / 60)
    } else if d < 48 * 3600 {
        format!("{}h", d / 3600)
    } else {
        format!("{}d", d / 86400)
    };
    json!(s)
}
