//! The request handler: who sent a request, its route and verb, faults, then the discovery
//! documents, a watch, or [`dispatch`](crate::dispatch) under the store lock, and the response
//! in the form the client asked for.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BufMut, Bytes};
use futures::StreamExt;
use gamedeploy_clock::SharedClock;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::dispatch::{dispatch, dispatch_events_v1, is_events_v1, list_opts, parse_selectors};
use crate::errors::{self, ApiError};
use crate::faults::Faults;
use crate::registry::{self, RequestContext};
use crate::resources::Registry;
use crate::route::{self, ResourceRoute, Route};
use crate::store::Store;
use crate::{discovery, gc, openapi, options, table, watch};

/// Header naming the client identity of a request sent over HTTP.
pub const CLIENT_HEADER: &str = "x-gamedeploy-client";

/// Response body type of the service.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Client, verb, resource and subresource.
pub type CountKey = (String, String, String, String);

/// What an `ApiServer` and its services share: the store, faults and accounting.
pub struct Shared {
    pub clock: SharedClock,
    pub store: Mutex<Store>,
    pub faults: Mutex<Faults>,
    pub counts: Mutex<BTreeMap<CountKey, u64>>,
    /// Error answers, by client and status code.
    pub errors: Mutex<BTreeMap<(String, u16), u64>>,
    pub watch_backlog: usize,
}

/// The guard of `m`, also when a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request's context: the clock's time, its field manager and options.
pub fn request_context_at(
    clock: &SharedClock,
    manager: &str,
    dry_run: bool,
    strict: bool,
) -> RequestContext {
    let now = clock.now();
    RequestContext {
        now: now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        now_secs: now.as_second(),
        manager: manager.to_string(),
        dry_run,
        strict,
        user: None,
        written_as: None,
    }
}

/// kube-apiserver's `MaxRequestBodyBytes` (3 MiB): larger bodies get 413.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The request body, refused with 413 as soon as it is known to exceed `limit` (declared
/// length, size hint, or bytes read so far), so an oversized body is never buffered.
pub async fn read_body<B>(
    parts: &http::request::Parts,
    body: B,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let declared = header(parts, "content-length").parse::<u64>().ok();
    let hinted = http_body::Body::size_hint(&body).lower();
    if declared.unwrap_or(0).max(hinted) > limit as u64 {
        return Err(ApiError::too_large(limit));
    }
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("unable to read request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.remaining() > limit {
                return Err(ApiError::too_large(limit));
            }
            buf.put(data);
        }
    }
    Ok(buf.freeze())
}

fn full(code: u16, v: &Value) -> http::Response<Body> {
    let mut r = http::Response::new(Full::new(Bytes::from(v.to_string())).boxed_unsync());
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// One group/version's OpenAPI v3 document. As the Kubernetes API docs describe (OpenAPI V3):
/// the hashed URL from `/openapi/v3` is immutable (`Cache-Control: public, immutable`, expiring
/// in a year); an obsolete hash is redirected to the current URL.
fn openapi_gv(
    reg: &Registry,
    group: &str,
    version: &str,
    asked: Option<&String>,
) -> http::Response<Body> {
    let Some(doc) = openapi::group_version_doc(reg, group, version) else {
        return error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    let current = openapi::hash(&doc);
    let mut r = full(200, &doc);
    match asked {
        Some(h) if *h != current => {
            let prefix = if group.is_empty() {
                format!("/openapi/v3/api/{version}")
            } else {
                format!("/openapi/v3/apis/{group}/{version}")
            };
            *r.body_mut() = Full::new(Bytes::new()).boxed_unsync();
            *r.status_mut() = http::StatusCode::MOVED_PERMANENTLY;
            if let Ok(loc) = http::HeaderValue::from_str(&format!("{prefix}?hash={current}")) {
                r.headers_mut().insert(http::header::LOCATION, loc);
            }
        }
        Some(_) => {
            let expires = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(365 * 24))
                .unwrap_or(jiff::Timestamp::MAX)
                .strftime("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            let h = r.headers_mut();
            h.insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("public, immutable"),
            );
            if let Ok(v) = http::HeaderValue::from_str(&expires) {
                h.insert(http::header::EXPIRES, v);
            }
        }
        None => {
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-cache, private"),
            );
        }
    }
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{current}\"")) {
        r.headers_mut().insert(http::header::ETAG, v);
    }
    r
}

pub fn error_response(e: &ApiError) -> http::Response<Body> {
    full(e.code, &e.to_status())
}

fn header<'a>(parts: &'a http::request::Parts, name: &str) -> &'a str {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The verb of a resource request, as in audit logs and RBAC.
fn verb_of(
    method: &http::Method,
    r: &ResourceRoute,
    q: &HashMap<String, String>,
) -> Result<&'static str, ApiError> {
    use http::Method;
    let watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    Ok(match (method, r.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    })
}

/// Who sent a request: the service's identity, else the client header, else the user agent.
fn client_of(identity: Option<String>, parts: &http::request::Parts) -> String {
    identity
        .or_else(|| Some(header(parts, CLIENT_HEADER).to_string()).filter(|s| !s.is_empty()))
        .or_else(|| {
            header(parts, "user-agent")
                .split('/')
                .next()
                .map(String::from)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Serves one request and counts its answer when it is an error.
pub async fn handle(
    inner: Arc<Shared>,
    identity: Option<String>,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let client = client_of(identity, &parts);
    let response = serve(&inner, client.clone(), parts, body).await;
    let code = response.status().as_u16();
    if code >= 400 {
        *lock(&inner.errors).entry((client, code)).or_insert(0) += 1;
    }
    response
}

async fn serve(
    inner: &Arc<Shared>,
    client: String,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let inner = inner.clone();
    let ua = header(&parts, "user-agent");
    let q = route::query(parts.uri.query());
    let path = parts.uri.path().to_string();
    let routed = {
        let st = lock(&inner.store);
        route::route(&st.registry, &path)
    };
    let route = match routed {
        Ok(r) => r,
        Err(e) => {
            count(&inner, &client, parts.method.as_str(), &path, "");
            return error_response(&e);
        }
    };
    let r = match route {
        Route::Resource(r) => r,
        other => {
            count(&inner, &client, "get", &path, "");
            if parts.method != http::Method::GET {
                return error_response(&ApiError::method_not_allowed());
            }
            let st = lock(&inner.store);
            if let Route::OpenApiV3Gv(g, v) = &other {
                return openapi_gv(&st.registry, g, v, q.get("hash"));
            }
            let doc = match other {
                Route::Version => Some(discovery::version_doc()),
                Route::CoreVersions => Some(discovery::core_versions()),
                Route::CoreResources => Some(discovery::resource_list(&st.registry, "", "v1")),
                Route::Groups => Some(discovery::groups(&st.registry)),
                Route::Group(g) => discovery::group(&st.registry, &g),
                Route::GroupResources(g, v) => Some(discovery::resource_list(&st.registry, &g, &v)),
                Route::OpenApiV3 => Some(openapi::discovery(&st.registry)),
                Route::Resource(_) | Route::OpenApiV3Gv(..) => None,
            };
            return match doc {
                Some(d) => full(200, &d),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            };
        }
    };
    let verb = match verb_of(&parts.method, &r, &q) {
        Ok("deletecollection") if !r.desc.has_delete_collection() => {
            count(&inner, &client, "deletecollection", &r.desc.plural, "");
            return error_response(&ApiError::method_not_allowed());
        }
        Ok(v) => v,
        Err(e) => {
            count(
                &inner,
                &client,
                &parts.method.as_str().to_lowercase(),
                &r.desc.plural,
                r.sub.as_deref().unwrap_or(""),
            );
            return error_response(&e);
        }
    };
    count(
        &inner,
        &client,
        verb,
        &r.desc.plural,
        r.sub.as_deref().unwrap_or(""),
    );
    let injection = lock(&inner.faults).decide(
        &client,
        verb,
        &r.desc.group,
        &r.desc.plural,
        r.name.as_deref().unwrap_or(""),
    );
    if !injection.latency.is_zero() {
        tokio::time::sleep(injection.latency).await;
    }
    if let Some(e) = injection.error {
        return error_response(&e);
    }
    let ctype = header(&parts, "content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let accept = header(&parts, "accept").to_string();
    let manager = q
        .get("fieldManager")
        .cloned()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let m = ua.split('/').next().unwrap_or("");
            if m.is_empty() {
                client.clone()
            } else {
                m.to_string()
            }
        });
    if let Err(e) = options::check(verb, parts.uri.query(), &ctype, !body.is_empty()) {
        return error_response(&e);
    }
    if verb == "list"
        && q.get("resourceVersionMatch").is_some_and(|m| m == "Exact")
        && let Err(e) = registry::check_exact_snapshot(
            &lock(&inner.store),
            &r.desc,
            q.get("resourceVersion").map_or("", String::as_str),
        )
    {
        return error_response(&e);
    }
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let strict = q.get("fieldValidation").is_some_and(|v| v == "Strict");
    let ctx = RequestContext {
        user: Some(client.clone()),
        ..request_context_at(&inner.clock, &manager, dry_run, strict)
    };
    if matches!(verb, "get" | "list" | "watch")
        && let Err(e) =
            registry::parse_resource_version(q.get("resourceVersion").map_or("", String::as_str))
    {
        return error_response(&e);
    }
    if verb == "watch" {
        return start_watch(&inner, &r, &q, &client, &accept);
    }
    if verb == "list"
        && r.sub.is_none()
        && !table::wants_table(&accept)
        && !table::wants_partial_metadata(&accept)
        && !is_events_v1(&r.desc)
    {
        return fast_list(&inner, &r, &q);
    }
    let result = {
        let mut st = lock(&inner.store);
        st.actor = (client.clone(), ctx.now.clone());
        let out = if is_events_v1(&r.desc) {
            dispatch_events_v1(&mut st, &ctx, verb, &r, &q, &ctype, &body)
        } else {
            dispatch(&mut st, &ctx, verb, &r, &q, &ctype, &body)
        };
        st.actor.0 = "garbage-collector".into();
        gc::collect(
            &mut st,
            &RequestContext {
                user: None,
                ..ctx.clone()
            },
        );
        (out, std::mem::take(&mut st.warnings))
    };
    let (result, warnings) = result;
    let mut resp = respond(result, verb, &r, &accept, ctx.now_secs);
    add_warnings(&mut resp, &warnings);
    resp
}

/// `Warning: 299 - "text"` headers (RFC 7234), as kube-apiserver sends admission warnings:
/// the text quoted with `\` and `"` escaped; UTF-8 is kept (obs-text), control characters
/// become spaces.
fn add_warnings(resp: &mut http::Response<Body>, warnings: &[String]) {
    for w in warnings {
        let mut text = String::with_capacity(w.len());
        for c in w.chars() {
            match c {
                '"' | '\\' => {
                    text.push('\\');
                    text.push(c);
                }
                c if c.is_control() => text.push(' '),
                c => text.push(c),
            }
        }
        if let Ok(v) = http::HeaderValue::from_bytes(format!("299 - \"{text}\"").as_bytes()) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}

/// The response of a non-watch request: the object, a Table or metadata as asked.
fn respond(
    result: Result<(u16, Arc<Value>), ApiError>,
    verb: &str,
    r: &ResourceRoute,
    accept: &str,
    now_secs: i64,
) -> http::Response<Body> {
    match result {
        Ok((code, v)) => {
            if table::wants_partial_metadata(accept)
                && matches!(verb, "get" | "list" | "patch" | "update" | "create")
            {
                return full(code, &table::partial_metadata(&v));
            }
            if verb == "list" && table::wants_table(accept) {
                let items: Vec<Value> = v
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let md = v.get("metadata").cloned().unwrap_or(json!({}));
                return full(200, &table::table(&r.desc, &items, md, now_secs));
            }
            if verb == "get" && r.sub.is_none() && table::wants_table(accept) {
                let row = [Arc::unwrap_or_clone(v)];
                return full(200, &table::table(&r.desc, &row, json!({}), now_secs));
            }
            full(code, &v)
        }
        Err(e) => error_response(&e),
    }
}

/// Plain LIST, serialized straight from the shared stored objects (no deep copies): the
/// common path of watchers' relists and of 10,000-pod simulations.
fn fast_list(
    inner: &Shared,
    r: &ResourceRoute,
    q: &HashMap<String, String>,
) -> http::Response<Body> {
    let built = (|| -> Result<Vec<u8>, ApiError> {
        let opts = list_opts(r, q)?;
        let (md, items) = {
            let st = lock(&inner.store);
            registry::list_raw(&st, &r.desc, r.ns.as_deref(), &opts)?
        };
        let mut buf = Vec::with_capacity(256 + items.len() * 2048);
        let head =
            json!({"apiVersion": r.desc.api_version(), "kind": r.desc.list_kind(), "metadata": md})
                .to_string();
        // `{...}` → `{...,"items":[`
        buf.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        buf.extend_from_slice(b",\"items\":[");
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut buf, &**it)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        buf.extend_from_slice(b"]}");
        Ok(buf)
    })();
    match built {
        Ok(bytes) => {
            let mut resp = http::Response::new(Full::new(Bytes::from(bytes)).boxed_unsync());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => error_response(&e),
    }
}

fn count(inner: &Shared, client: &str, verb: &str, resource: &str, sub: &str) {
    *lock(&inner.counts)
        .entry((client.into(), verb.into(), resource.into(), sub.into()))
        .or_insert(0) += 1;
}

fn start_watch(
    inner: &Arc<Shared>,
    r: &ResourceRoute,
    q: &HashMap<String, String>,
    client: &str,
    accept: &str,
) -> http::Response<Body> {
    let metadata_only = table::wants_partial_metadata(accept);
    let table = table::wants_table(accept).then(|| inner.clock.clone());
    let events_v1 = is_events_v1(&r.desc);
    let mut r = r.clone();
    let mut q = q.clone();
    if events_v1 {
        // Watch the core storage with core field names; convert objects on the way out.
        let core = lock(&inner.store).registry.get("", "v1", "events");
        if let Some(core) = core {
            r.desc = core;
        }
        if let Some(fs) = q.get("fieldSelector").cloned() {
            let f = fs
                .replace("regarding.", "involvedObject.")
                .replace("reportingController", "reportingComponent");
            q.insert("fieldSelector".into(), f);
        }
    }
    let (r, q) = (&r, &q);
    let (labels, fields) = match parse_selectors(r, q) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let timeout = match q.get("timeoutSeconds").map(|s| s.parse::<u64>()) {
        None => watch::DEFAULT_TIMEOUT,
        Some(Ok(t)) => std::time::Duration::from_secs(t),
        Some(Err(_)) => {
            return error_response(&ApiError::bad_request("timeoutSeconds: must be an integer"));
        }
    };
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    if send_initial
        && (!bookmarks || q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan"))
    {
        return error_response(&ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[errors::forbidden_field(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and allowWatchBookmarks is true and resourceVersionMatch is NotOlderThan",
            )],
        ));
    }
    let params = watch::WatchParams {
        ns: r.ns.clone(),
        labels,
        fields,
        resource_version: q.get("resourceVersion").cloned(),
        bookmarks,
        send_initial_events: send_initial,
        timeout,
        client: client.to_string(),
        events_v1,
        metadata_only,
        table,
        delay: lock(&inner.faults).watch_delay(client),
    };
    let rx = {
        let mut st = lock(&inner.store);
        watch::start(&mut st, r.desc.clone(), params, inner.watch_backlog)
    };
    match rx {
        Ok(rx) => {
            let stream =
                tokio_stream_from(rx).map(|b| Ok::<_, Infallible>(http_body::Frame::data(b)));
            let mut resp = http::Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => error_response(&e),
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
