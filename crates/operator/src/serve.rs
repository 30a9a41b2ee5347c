//! The observability endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process runs) and
//! `/readyz` (the caches synced, or a standby waiting for the lease), on one port. Plain hyper:
//! three fixed routes need no framework.
//!
//! The port listens on every interface by default, so it must not let anyone who can reach it
//! take the process's file descriptors (which the operator needs for its API connections and
//! hook requests) or time: a request head must arrive within [`ServeOptions::header_read_timeout`]
//! (which also closes a keep-alive connection idle that long), a connection lives at most
//! [`ServeOptions::max_connection_age`], and at most [`ServeOptions::max_connections`] are open.
//! A connection over the cap is accepted and the oldest open connection is closed for it
//! (at once if it is idle or has not sent its request yet, after its answer otherwise): the
//! newest comer is most likely the kubelet's probe or Prometheus's scrape, while a flood of
//! held connections is oldest first. Closing the new one instead would fail every probe for as
//! long as the flood lasts; not accepting would leave probes queued behind it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::metrics::Metrics;

/// The content type Prometheus asks for and `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a connection closed for a newer one may still finish the answer it is sending.
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// Connection limits of the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a connection gets to deliver a complete request head, from when it is accepted or
    /// its previous answer was sent: against slowloris, and the idle limit of keep-alive
    /// connections (hyper starts this clock whenever it waits for a request). A probe or a
    /// scrape sends its head at once; Prometheus just reconnects for its next scrape.
    pub header_read_timeout: Duration,
    /// Longest life of one connection, however busy (a client reading an answer slowly).
    pub max_connection_age: Duration,
    /// Connections open at once; one more closes the oldest.
    pub max_connections: usize,
    /// Longest pause after a failed accept (EMFILE): 5 ms doubling up to this, as Go's
    /// `http.Server` and the embedded API server do, instead of spinning.
    pub max_accept_backoff: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(60),
            max_connections: 64,
            max_accept_backoff: Duration::from_secs(1),
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for metrics: {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds `addr`; the listener's own address says which port `:0` got.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// The answer to one request.
pub fn respond(metrics: &Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    let text = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, text, "use GET\n".into());
    }
    match path {
        "/metrics" => reply(StatusCode::OK, OPENMETRICS, metrics.render()),
        "/healthz" => reply(StatusCode::OK, text, "ok\n".into()),
        "/readyz" => {
            let (ready, why) = metrics.readiness();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, text, format!("{why}\n"))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Serves `metrics` on `listener` until `shutdown` resolves, with [`ServeOptions::default`].
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, metrics, ServeOptions::default(), shutdown).await
}

/// The open connections, oldest first, each with the signal that closes it.
#[derive(Default)]
struct Open {
    next: u64,
    conns: VecDeque<(u64, Arc<Notify>)>,
}

/// Serves `metrics` on `listener` with `opts` until `shutdown` resolves.
pub async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(5);
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let open: Arc<Mutex<Open>> = Arc::default();
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = None;
                stream
            }
            Err(e) => {
                let wait = backoff
                    .map_or(FIRST_BACKOFF, |b| b * 2)
                    .min(opts.max_accept_backoff);
                backoff = Some(wait);
                tracing::debug!(error = %e, "metrics endpoint: accept failed");
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = &mut shutdown => return,
                }
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let oldest = open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .conns
                    .pop_front();
                if let Some((_, close)) = oldest {
                    close.notify_one();
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    () = &mut shutdown => return,
                }
            }
        };
        let close = Arc::new(Notify::new());
        let id = {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            let id = open.next;
            open.next += 1;
            open.conns.push_back((id, close.clone()));
            id
        };
        let metrics = metrics.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: Request<Incoming>| {
                let response = respond(&metrics, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(opts.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let served = async {
                tokio::select! {
                    ended = conn.as_mut() => ended,
                    () = close.notified() => {
                        // Closes it now if it waits for a request, after the answer otherwise;
                        // a request head still trickling in gets no longer than the grace.
                        conn.as_mut().graceful_shutdown();
                        tokio::time::timeout(EVICTION_GRACE, conn.as_mut())
                            .await
                            .unwrap_or(Ok(()))
                    }
                }
            };
            match tokio::time::timeout(opts.max_connection_age, served).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics endpoint: connection ended"),
                Ok(Ok(())) => {}
                Err(_) => tracing::debug!("metrics endpoint: connection closed at its age limit"),
            }
            open.lock()
                .unwrap_or_else(|e| e.into_inner())
                .conns
                .retain(|(i, _)| *i != id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Role;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// The endpoint on a loopback port with `opts`; its address.
    async fn start(opts: ServeOptions) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_with(
            listener,
            Arc::new(Metrics::new()),
            opts,
            std::future::pending(),
        ));
        addr
    }

    /// What the server sends until it closes the connection (or it breaks).
    async fn read_to_close(conn: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    }

    async fn healthz(addr: SocketAddr) -> String {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        read_to_close(&mut conn).await
    }

    /// More idle connections than the cap: each one over it closes the oldest, so the server
    /// never holds more than the cap and a probe that comes last is answered at once (the
    /// header timeout is far away: it is not what makes room).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_the_cap_the_oldest_connections_make_room_and_healthz_answers() {
        let addr = start(ServeOptions {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(600),
            max_connection_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await;
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let answer = tokio::time::timeout(Duration::from_secs(30), healthz(addr))
            .await
            .expect("/healthz answers while idle connections fill the cap");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Which of the ten the server closed: a closed one reads EOF at once, an open one
        // never answers (bounded here so the test ends).
        let closed = futures::future::join_all(idle.iter_mut().map(|c| async move {
            let mut byte = [0u8; 1];
            matches!(
                tokio::time::timeout(Duration::from_secs(3), c.read(&mut byte)).await,
                Ok(Ok(0) | Err(_))
            )
        }))
        .await;
        assert_eq!(
            closed,
            [vec![true; 7], vec![false; 3]].concat(),
            "the seven oldest closed, the three newest kept (with the probe's, ten plus one over a cap of four)"
        );
    }

    /// A connection that sends no complete request head is closed at the header timeout, and
    /// so is a keep-alive connection idle that long after its answer (virtual time).
    #[tokio::test(start_paused = true)]
    async fn silent_and_idle_connections_are_closed_at_the_header_timeout() {
        let opts = ServeOptions::default();
        let addr = start(opts).await;
        let started = tokio::time::Instant::now();
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        read_to_close(&mut silent).await;
        assert!(started.elapsed() >= opts.header_read_timeout);
        assert!(started.elapsed() < opts.max_connection_age);

        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 256];
        let n = kept.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
        let answered = tokio::time::Instant::now();
        assert_eq!(
            read_to_close(&mut kept).await,
            "",
            "closed without another word"
        );
        assert!(answered.elapsed() >= opts.header_read_timeout);
        assert!(answered.elapsed() < opts.max_connection_age);
    }

    #[test]
    fn routes_answer_as_kubernetes_probes_expect() {
        let m = Metrics::new();
        let get = |path| respond(&m, &Method::GET, path).status();
        assert_eq!(get("/healthz"), StatusCode::OK);
        assert_eq!(get("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/metrics"), StatusCode::OK);
        assert_eq!(get("/nope"), StatusCode::NOT_FOUND);
        m.set_role(Role::Standby { holder: None });
        assert_eq!(get("/readyz"), StatusCode::OK);
        let metrics = respond(&m, &Method::GET, "/metrics");
        assert!(
            metrics.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
    }
}
