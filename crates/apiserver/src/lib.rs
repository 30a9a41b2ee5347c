// The crate documentation is its README (`crates/apiserver/README.md`): what is served, how it
// differs from kube-apiserver, and how to use it in a project.
#![doc = include_str!("../README.md")]

mod admission;
mod builtin;
mod cel_limits;
mod convert;
mod delete_options;
mod discovery;
mod dispatch;
mod errors;
mod faults;
mod gc;
mod handler;
mod kinds;
mod leaves;
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

pub use errors::{ApiError, Cause};
pub use faults::FaultConfig;
pub use handler::{Body, CLIENT_HEADER, MAX_REQUEST_BODY_BYTES};
pub use store::{Change, EventType};
pub use watch::WatchStats;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use gamedeploy_clock::SharedClock;
use serde_json::json;

use crate::faults::Faults;
use crate::handler::{Shared, error_response, handle, lock, read_body, request_context_at};
use crate::registry::RequestContext;
use crate::store::Store;

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

/// One row of request accounting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestCount {
    pub client: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub count: u64,
}

/// The embedded API server. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Shared>,
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
            inner: Arc::new(Shared {
                clock,
                store: Mutex::new(Store::new(opts.seed, opts.event_history)),
                faults: Mutex::new(Faults::default()),
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

/// `tower::Service` front end of an [`ApiServer`].
#[derive(Clone)]
pub struct ApiService {
    inner: Arc<Shared>,
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
