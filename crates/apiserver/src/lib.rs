// The crate documentation is its README (`crates/apiserver/README.md`): what is served, how it
// differs from kube-apiserver, and how to use it in a project.
#![doc = include_str!("../README.md")]

mod admission;
mod builtin;
mod cel_limits;
mod convert;
mod discovery;
mod errors;
mod faults;
mod gc;
mod kinds;
mod managed;
mod openapi;
mod options;
mod patch;
mod protobuf;
mod registry;
mod resources;
mod route;
mod schema;
mod selectors;
pub mod serve;
mod store;
mod table;
mod watch;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

pub use errors::{ApiError, Cause};
pub use faults::FaultConfig;
pub use store::{Change, EventType};

use gamedeploy_clock::SharedClock;
use registry::{DeleteOpts, ListOpts, RequestContext, Subresource};
use route::{ResourceRoute, Route};
use selectors::{FieldSelector, LabelSelector};
use store::Store;

/// Header naming the client identity of a request (set by [`ApiServer::client_as`]).
pub const CLIENT_HEADER: &str = "x-gamedeploy-client";

/// Response body type of the service.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Tunables.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Seed for uids and generated names: the same seed and requests give the same objects.
    pub seed: u64,
    /// Events kept per resource for watch resumption; older versions get 410 Gone.
    pub event_history: usize,
    /// Events a watcher may fall behind before the server closes its stream (kube-apiserver's
    /// cacher likewise terminates a watcher whose buffer is full); the client then resumes
    /// from its last resourceVersion. Queued events are shared with the store, not copies.
    pub watch_backlog: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            event_history: 10_000,
            watch_backlog: 10_000,
        }
    }
}

/// Open watches and what the server holds for them ([`ApiServer::watch_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Watches registered with the store.
    pub open: usize,
    /// Events queued for them and not yet turned into response bytes.
    pub queued: usize,
    /// Watches closed so far because they fell `watch_backlog` events behind.
    pub closed_lagging: u64,
}

/// One row of request accounting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestCount {
    pub client: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub count: u64,
}

type CountKey = (String, String, String, String);

struct Inner {
    clock: SharedClock,
    store: Mutex<Store>,
    faults: Mutex<faults::Faults>,
    counts: Mutex<BTreeMap<CountKey, u64>>,
    /// Error answers, by client and status code.
    errors: Mutex<BTreeMap<(String, u16), u64>>,
    watch_backlog: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The embedded API server. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

impl ApiServer {
    pub fn new(clock: SharedClock) -> Self {
        Self::with_options(clock, ServerOptions::default())
    }

    /// A server with the namespaces every cluster has (`default`, `kube-system`,
    /// `kube-public`, `kube-node-lease`).
    pub fn with_options(clock: SharedClock, opts: ServerOptions) -> Self {
        let server = Self {
            inner: Arc::new(Inner {
                clock,
                store: Mutex::new(Store::new(opts.seed, opts.event_history)),
                faults: Mutex::new(faults::Faults::default()),
                counts: Mutex::new(BTreeMap::new()),
                errors: Mutex::new(BTreeMap::new()),
                watch_backlog: opts.watch_backlog,
            }),
        };
        {
            let mut st = lock(&server.inner.store);
            let ctx = server.request_context("kube-apiserver", false);
            if let Some(d) = st.registry.get("", "v1", "namespaces") {
                for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                    let _ = registry::create(
                        &mut st,
                        &ctx,
                        &d,
                        None,
                        json!({"metadata": {"name": ns}}),
                        None,
                    );
                }
            }
        }
        server
    }

    /// A `kube::Client` whose requests are identified by the user agent (or `unknown`).
    /// Must be called inside a tokio runtime (kube buffers requests on a task).
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(None), "default")
    }

    /// A `kube::Client` whose requests count (and get faults) as `identity`.
    pub fn client_as(&self, identity: &str) -> kube::Client {
        kube::Client::new(self.service(Some(identity)), "default")
    }

    /// The raw `tower::Service`, e.g. to serve over HTTP.
    pub fn service(&self, identity: Option<&str>) -> ApiService {
        ApiService {
            inner: self.inner.clone(),
            identity: identity.map(String::from),
        }
    }

    /// Answers with status `code` (400 or above) sent to `client` so far: a test's count of
    /// the conflicts or errors a client met (injected faults included).
    pub fn error_responses(&self, client: &str, code: u16) -> u64 {
        lock(&self.inner.errors)
            .get(&(client.to_string(), code))
            .copied()
            .unwrap_or(0)
    }

    /// Requests served so far, per client, verb, resource and subresource.
    pub fn request_counts(&self) -> Vec<RequestCount> {
        lock(&self.inner.counts)
            .iter()
            .map(|((client, verb, resource, subresource), n)| RequestCount {
                client: client.clone(),
                verb: verb.clone(),
                resource: resource.clone(),
                subresource: subresource.clone(),
                count: *n,
            })
            .collect()
    }

    /// Enable (or with `None`, disable) fault injection.
    pub fn set_faults(&self, cfg: Option<FaultConfig>) {
        lock(&self.inner.faults).set(cfg);
    }

    /// Number of requests answered with an injected error.
    pub fn faults_injected(&self) -> u64 {
        lock(&self.inner.faults).injected
    }

    /// End open watch streams (all, or only one client's); clients see the stream close and
    /// must resume from their last resourceVersion.
    pub fn drop_watches(&self, client: Option<&str>) -> usize {
        watch::drop_watches(&mut lock(&self.inner.store), client)
    }

    /// Open watches and their queued events.
    pub fn watch_stats(&self) -> WatchStats {
        watch::stats(&lock(&self.inner.store))
    }

    /// Every stored change from now on, attributed to the client that caused it (for
    /// simulation histories). Dropping the receiver unsubscribes.
    pub fn changes(&self) -> tokio::sync::mpsc::UnboundedReceiver<Change> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        lock(&self.inner.store).change_subs.push(tx);
        rx
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.inner.store).rv
    }

    fn request_context(&self, manager: &str, dry_run: bool) -> RequestContext {
        request_context_at(&self.inner.clock, manager, dry_run, false)
    }
}

fn request_context_at(
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

/// `tower::Service` front end of an [`ApiServer`].
#[derive(Clone)]
pub struct ApiService {
    inner: Arc<Inner>,
    identity: Option<String>,
}

impl<B> tower::Service<http::Request<B>> for ApiService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let identity = self.identity.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            match read_body(&parts, body, MAX_REQUEST_BODY_BYTES).await {
                Ok(body) => Ok(handle(inner, identity, parts, body).await),
                Err(e) => Ok(error_response(&e)),
            }
        })
    }
}

/// kube-apiserver's `MaxRequestBodyBytes` (3 MiB): larger bodies get 413.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The request body, refused with 413 as soon as it is known to exceed `limit` (declared
/// length, size hint, or bytes read so far), so an oversized body is never buffered.
async fn read_body<B>(
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
    reg: &resources::Registry,
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

fn error_response(e: &ApiError) -> http::Response<Body> {
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
    q: &std::collections::HashMap<String, String>,
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
async fn handle(
    inner: Arc<Inner>,
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
    inner: &Arc<Inner>,
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
    result: Result<(u16, Value), ApiError>,
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
                return full(200, &table::table(&r.desc, &[v], json!({}), now_secs));
            }
            full(code, &v)
        }
        Err(e) => error_response(&e),
    }
}

/// Plain LIST, serialized straight from the shared stored objects (no deep copies): the
/// common path of watchers' relists and of 10,000-pod simulations.
fn fast_list(
    inner: &Inner,
    r: &ResourceRoute,
    q: &std::collections::HashMap<String, String>,
) -> http::Response<Body> {
    let built = (|| -> Result<Vec<u8>, ApiError> {
        let (labels, fields) = parse_selectors(r, q)?;
        let limit = match q.get("limit") {
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| ApiError::bad_request("limit: must be a non-negative integer"))?,
            ),
            None => None,
        };
        let opts = ListOpts {
            labels,
            fields,
            limit,
            cont: q.get("continue").cloned(),
        };
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

fn count(inner: &Inner, client: &str, verb: &str, resource: &str, sub: &str) {
    *lock(&inner.counts)
        .entry((client.into(), verb.into(), resource.into(), sub.into()))
        .or_insert(0) += 1;
}

fn parse_selectors(
    r: &ResourceRoute,
    q: &std::collections::HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        FieldSelector::parse(
            q.get("fieldSelector").map(String::as_str).unwrap_or(""),
            &r.desc,
        )?,
    ))
}

fn start_watch(
    inner: &Arc<Inner>,
    r: &ResourceRoute,
    q: &std::collections::HashMap<String, String>,
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

fn delete_opts(
    q: &std::collections::HashMap<String, String>,
    body: &[u8],
) -> Result<DeleteOpts, ApiError> {
    let mut o = DeleteOpts::default();
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        check_delete_options(&v)?;
        options::check_delete_body(&v)?;
        o.dry_run = v
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
        o.grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from);
        o.orphan_dependents = v.get("orphanDependents").and_then(Value::as_bool);
        if o.propagation.is_none() {
            match o.orphan_dependents {
                Some(true) => o.propagation = Some("Orphan".into()),
                Some(false) => o.propagation = Some("Background".into()),
                None => {}
            }
        }
        o.precondition_uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        o.precondition_rv = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request("gracePeriodSeconds: must be an integer"))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    Ok(o)
}

/// Go types of the `DeleteOptions` fields, as its decoder checks them.
#[derive(Clone, Copy)]
enum GoType {
    String,
    Int64,
    Bool,
    Strings,
    Preconditions,
}

impl GoType {
    fn name(self) -> &'static str {
        match self {
            GoType::String => "string",
            GoType::Int64 => "int64",
            GoType::Bool => "bool",
            GoType::Strings => "[]string",
            GoType::Preconditions => "v1.Preconditions",
        }
    }

    /// Whether `v` decodes as this type (`null` always does: it leaves the field unset).
    fn accepts(self, v: &Value) -> bool {
        match self {
            _ if v.is_null() => true,
            GoType::String => v.is_string(),
            GoType::Int64 => v.is_i64(),
            GoType::Bool => v.is_boolean(),
            GoType::Strings => v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string() || x.is_null())),
            GoType::Preconditions => v.is_object(),
        }
    }
}

const DELETE_OPTIONS_FIELDS: &[(&str, GoType)] = &[
    ("apiVersion", GoType::String),
    ("kind", GoType::String),
    ("gracePeriodSeconds", GoType::Int64),
    ("preconditions", GoType::Preconditions),
    ("orphanDependents", GoType::Bool),
    ("propagationPolicy", GoType::String),
    ("dryRun", GoType::Strings),
    (
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        GoType::Bool,
    ),
];

const PRECONDITIONS_FIELDS: &[(&str, GoType)] =
    &[("uid", GoType::String), ("resourceVersion", GoType::String)];

/// A `DeleteOptions` body with a mistyped field is refused, not half-read: kube-apiserver's
/// decoder fails with Go's `json: cannot unmarshal ...` and (since 1.35) answers 400.
fn check_delete_options(v: &Value) -> Result<(), ApiError> {
    fn check(
        obj: &Value,
        go_struct: &str,
        prefix: &str,
        fields: &[(&str, GoType)],
    ) -> Result<(), ApiError> {
        let Some(m) = obj.as_object() else {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type v1.{go_struct}",
                json_kind(obj)
            )));
        };
        for (name, ty) in fields {
            let Some(val) = m.get(*name) else { continue };
            if !ty.accepts(val) {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go struct field {go_struct}.{prefix}{name} of type {}",
                    json_kind(val),
                    ty.name()
                )));
            }
        }
        Ok(())
    }
    check(v, "DeleteOptions", "", DELETE_OPTIONS_FIELDS)?;
    match v.get("preconditions") {
        Some(p) if p.is_object() => {
            check(p, "Preconditions", "preconditions.", PRECONDITIONS_FIELDS)
        }
        _ => Ok(()),
    }
}

/// How Go's encoding/json names a JSON value's kind in its errors.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Media types of create/update bodies of custom resources.
const BODY_TYPES: &[&str] = &["application/json", "application/yaml"];
/// Media types of create/update bodies of built-in kinds, which also have a protobuf form.
const BUILTIN_BODY_TYPES: &[&str] = &["application/json", "application/yaml", protobuf::MEDIA_TYPE];

/// A create/update body: JSON, YAML when the client says so, or for built-in kinds protobuf
/// (kubectl's typed clients send it), as the real server accepts them.
fn parse_body(desc: &resources::ResourceDesc, ctype: &str, body: &[u8]) -> Result<Value, ApiError> {
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
fn dispatch(
    st: &mut Store,
    ctx: &RequestContext,
    verb: &str,
    r: &ResourceRoute,
    q: &std::collections::HashMap<String, String>,
    ctype: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let desc = &r.desc;
    let ns = r.ns.as_deref();
    let name = r.name.as_deref().unwrap_or("");
    let sub = match r.sub.as_deref() {
        None => None,
        Some("status") if desc.has_status => Some("status"),
        Some("scale") if desc.scale.is_some() => Some("scale"),
        Some("binding") if desc.strategy == resources::Strategy::Pod => Some("binding"),
        Some(_) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    match (verb, sub) {
        ("get", None | Some("status")) => Ok((200, (*registry::get(st, desc, ns, name)?).clone())),
        ("get", Some("scale")) => {
            let obj = registry::get(st, desc, ns, name)?;
            Ok((200, registry::scale_of(desc, &obj)?))
        }
        ("list", None) => {
            let (labels, fields) = parse_selectors(r, q)?;
            let limit =
                match q.get("limit") {
                    Some(l) => Some(l.parse::<usize>().map_err(|_| {
                        ApiError::bad_request("limit: must be a non-negative integer")
                    })?),
                    None => None,
                };
            let opts = ListOpts {
                labels,
                fields,
                limit,
                cont: q.get("continue").cloned(),
            };
            Ok((200, registry::list(st, desc, ns, &opts)?))
        }
        ("create", None) => {
            let obj = parse_body(desc, ctype, body)?;
            Ok((201, registry::create(st, ctx, desc, ns, obj, None)?))
        }
        ("create", Some("binding")) => registry::bind(st, ctx, desc, ns, name, body),
        ("update", None | Some("status")) => {
            let obj = parse_body(desc, ctype, body)?;
            let subresource = Subresource::of_status_path(sub);
            Ok((
                200,
                registry::update(st, ctx, desc, ns, name, obj, subresource, None)?,
            ))
        }
        ("update", Some("scale")) => {
            let scale = registry::parse_object(body)?;
            let old = registry::get(st, desc, ns, name)?;
            let new = registry::apply_scale(desc, &old, &scale)?;
            Ok((
                200,
                registry::scale_update(st, ctx, desc, ns, name, &old, new)?,
            ))
        }
        ("patch", Some("scale")) => {
            let old = registry::get(st, desc, ns, name)?;
            let current = registry::scale_of(desc, &old)?;
            let patched = registry::patched(desc, &current, ctype, body)?;
            let new = registry::apply_scale(desc, &old, &patched)?;
            Ok((
                200,
                registry::scale_update(st, ctx, desc, ns, name, &old, new)?,
            ))
        }
        ("patch", None | Some("status")) => {
            let subresource = Subresource::of_status_path(sub);
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
            Ok((code, out))
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
                json!({"apiVersion": desc.api_version(), "kind": desc.list_kind(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn is_events_v1(d: &resources::ResourceDesc) -> bool {
    d.group == "events.k8s.io" && d.plural == "events"
}

/// `ValidateEventCreate`/`ValidateEventUpdate`'s rules for a write through `events.k8s.io/v1`
/// (stricter than through core `v1`), on the converted body; an update of a missing Event
/// creates it (`AllowCreateOnUpdate`), so it is checked as a create.
fn check_event_v1(
    st: &Store,
    core: &resources::ResourceDesc,
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
fn dispatch_events_v1(
    st: &mut Store,
    ctx: &RequestContext,
    verb: &str,
    r: &ResourceRoute,
    q: &std::collections::HashMap<String, String>,
    ctype: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
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
    let (code, mut v) = out;
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
    Ok((code, v))
}
