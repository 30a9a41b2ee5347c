//! Request routing: URL → (resource, namespace, name, subresource) following
//! kube-apiserver's `RequestInfoFactory`, and the query parameters.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use crate::errors::ApiError;
use crate::resources::{Registry, ResourceDesc};

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
    /// `/openapi/v3`: the OpenAPI v3 discovery document.
    OpenApiV3,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
    OpenApiV3Gv(String, String),
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
        ["openapi", "v3"] => return Ok(Route::OpenApiV3),
        ["openapi", "v3", "api", v] => return Ok(Route::OpenApiV3Gv(String::new(), v.to_string())),
        ["openapi", "v3", "apis", g, v] => {
            return Ok(Route::OpenApiV3Gv(g.to_string(), v.to_string()));
        }
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
