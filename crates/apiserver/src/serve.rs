//! The embedded cluster over HTTP on loopback, so a real `kubectl` (or `gamedeploy run`) can
//! talk to it as to any cluster. Plain HTTP: the listener is meant for 127.0.0.1 only, and the
//! kubeconfig written for it says so.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::{ApiError, ApiServer, ApiService, Body};

/// Connection handling of the HTTP front end.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a connection gets to deliver a complete request head; kube-apiserver's
    /// `http.Server` uses `ReadHeaderTimeout: 32s` against slowloris. hyper starts this clock
    /// whenever it waits for a request, so it also closes idle keep-alive connections (where
    /// Go's server would wait its `IdleTimeout`, 90 s); clients just reconnect.
    pub header_read_timeout: Duration,
    /// Longest pause after a failed accept (EMFILE and the like). The pause starts at 5 ms and
    /// doubles, as Go's `http.Server.Serve` does (which caps it at 1 s).
    pub max_accept_backoff: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(32),
            max_accept_backoff: Duration::from_secs(1),
        }
    }
}

/// Where connections come from: a [`TcpListener`], or a test double that fails on demand.
pub trait Acceptor {
    type Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Conn>> + Send;
}

impl Acceptor for TcpListener {
    type Conn = TcpStream;
    async fn accept(&mut self) -> std::io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serves `server` on `listener` until `shutdown` resolves, with [`ServeOptions::default`].
pub async fn serve(
    server: ApiServer,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(server, listener, ServeOptions::default(), shutdown).await
}

/// Serves `server` on connections from `acceptor` until `shutdown` resolves. Each connection
/// is served on its own task; requests are attributed to their user agent (kubectl's is
/// `kubectl/...`). A failed accept (e.g. EMFILE) is logged and retried after a short
/// back-off: it must not take the cluster, operator and kubelet down with it.
pub async fn serve_with<A: Acceptor>(
    server: ApiServer,
    mut acceptor: A,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    const FIRST_BACKOFF: Duration = Duration::from_millis(5);
    tokio::pin!(shutdown);
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let stream = match accepted {
            Ok(s) => {
                backoff = None;
                s
            }
            // The peer left before we took the connection: nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let wait = backoff
                    .map_or(FIRST_BACKOFF, |b| b * 2)
                    .min(opts.max_accept_backoff);
                backoff = Some(wait);
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = &mut shutdown => return Ok(()),
                }
            }
        };
        let service = TowerToHyperService::new(LoopbackOnly(server.service(None)));
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout);
        tokio::spawn(async move {
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// The HTTP front end's guard: only requests addressed to a loopback name or address, so a web
/// page cannot reach the cluster by DNS rebinding, and writes only with a JSON or YAML body,
/// so a page cannot send one as a "simple" cross-origin request (no type, `text/plain` or a
/// form) without a CORS preflight that this server never grants.
#[derive(Clone)]
struct LoopbackOnly(ApiService);

impl<B> tower::Service<::http::Request<B>> for LoopbackOnly
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = ::http::Response<Body>;
    type Error = Infallible;
    type Future = <ApiService as tower::Service<::http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<::http::Request<B>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, req: ::http::Request<B>) -> Self::Future {
        match check_host(&req).and_then(|()| check_write_type(&req)) {
            Ok(()) => self.0.call(req),
            Err(e) => Box::pin(std::future::ready(Ok(super::error_response(&e)))),
        }
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port, from the request target or
/// the `Host` header.
fn check_host<B>(req: &::http::Request<B>) -> Result<(), ApiError> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(::http::header::HOST)?.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "host {host:?} is not a loopback name or address: the embedded cluster only answers requests for localhost, 127.0.0.0/8 or [::1]"
        )))
    }
}

/// POST, PUT and PATCH need a JSON or YAML media type (`application/json`, `application/yaml`,
/// `application/*+json`, `application/*+yaml`). kube-apiserver would read a type-less body as
/// JSON; this front end has no authentication, so it refuses it.
fn check_write_type<B>(req: &::http::Request<B>) -> Result<(), ApiError> {
    use ::http::Method;
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let ctype = req
        .headers()
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let typed = essence.strip_prefix("application/").is_some_and(|sub| {
        matches!(sub, "json" | "yaml") || sub.ends_with("+json") || sub.ends_with("+yaml")
    });
    if typed {
        Ok(())
    } else {
        Err(ApiError::unknown_body_format(&[
            "application/json",
            "application/yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]))
    }
}

/// A kubeconfig pointing at `addr`, context `gamedeploy-embedded`, namespace `default`.
pub fn kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: gamedeploy-embedded
  cluster:
    server: http://{addr}
users:
- name: gamedeploy-embedded
  user: {{}}
contexts:
- name: gamedeploy-embedded
  context:
    cluster: gamedeploy-embedded
    user: gamedeploy-embedded
    namespace: default
current-context: gamedeploy-embedded
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bound on waiting for something that must happen; never a measured duration.
    const WAIT: Duration = Duration::from_secs(30);

    /// A listener whose first `failures` accepts fail with EMFILE.
    struct Flaky {
        inner: TcpListener,
        failures: usize,
    }

    impl Acceptor for Flaky {
        type Conn = TcpStream;
        async fn accept(&mut self) -> std::io::Result<TcpStream> {
            if self.failures > 0 {
                self.failures -= 1;
                // EMFILE on Linux: "Too many open files".
                return Err(std::io::Error::from_raw_os_error(24));
            }
            self.inner.accept().await.map(|(s, _)| s)
        }
    }

    fn server() -> ApiServer {
        ApiServer::new(Arc::new(gamedeploy_clock::SystemClock))
    }

    async fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    /// Sends `raw` (a whole request, `Connection: close`) and returns (status, body).
    async fn request(addr: SocketAddr, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(WAIT, s.read_to_end(&mut out))
            .await
            .expect("response in time")
            .unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (code, body)
    }

    fn get(path: &str, host: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    }

    /// Whether the server closes `s` (EOF or reset) before `WAIT`, whatever it sent first.
    async fn closed_by_server(mut s: TcpStream) -> bool {
        let mut buf = Vec::new();
        matches!(
            tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await,
            Ok(Ok(_) | Err(_))
        )
    }

    #[tokio::test]
    async fn accept_errors_are_logged_and_serving_goes_on() {
        let (inner, addr) = listener().await;
        let opts = ServeOptions {
            max_accept_backoff: Duration::from_millis(20),
            ..Default::default()
        };
        let acceptor = Flaky { inner, failures: 5 };
        let serving = tokio::spawn(serve_with(server(), acceptor, opts, std::future::pending()));
        let (code, body) = request(addr, &get("/version", "127.0.0.1")).await;
        assert_eq!(code, 200, "{body}");
        assert!(!serving.is_finished(), "the serve loop gave up");
        serving.abort();
    }

    #[tokio::test]
    async fn silent_dribbling_and_idle_connections_are_closed() {
        let (l, addr) = listener().await;
        let opts = ServeOptions {
            header_read_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let serving = tokio::spawn(serve_with(server(), l, opts, std::future::pending()));
        let silent = TcpStream::connect(addr).await.unwrap();
        let mut dribbling = TcpStream::connect(addr).await.unwrap();
        dribbling
            .write_all(b"GET /version HTTP/1.1\r\nHo")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        assert!(
            closed_by_server(silent).await,
            "a silent connection stays open"
        );
        assert!(
            closed_by_server(dribbling).await,
            "a dribbled header stays open"
        );
        assert!(
            closed_by_server(idle).await,
            "an idle keep-alive connection stays open"
        );
        let (code, _) = request(addr, &get("/version", "localhost")).await;
        assert_eq!(code, 200, "the server still answers");
        serving.abort();
    }

    #[tokio::test]
    async fn only_loopback_hosts_and_typed_writes_are_served() {
        let (l, addr) = listener().await;
        let serving = tokio::spawn(serve(server(), l, std::future::pending()));
        for host in [
            "localhost",
            "LOCALHOST:6443",
            "127.0.0.1",
            "127.3.2.1:80",
            "[::1]:8080",
            "[::1]",
        ] {
            let (code, body) = request(addr, &get("/version", host)).await;
            assert_eq!(code, 200, "{host}: {body}");
        }
        for host in [
            "evil.example",
            "evil.example:6443",
            "10.0.0.1",
            "localhost.evil.example",
        ] {
            let (code, body) = request(addr, &get("/version", host)).await;
            assert_eq!(code, 403, "{host}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["kind"], "Status", "{body}");
            assert!(
                v["message"].as_str().unwrap_or("").contains("loopback"),
                "{body}"
            );
        }
        let cm = r#"{"metadata":{"name":"c"}}"#;
        let post = |ctype: &str| {
            format!(
                "POST /apis/coordination.k8s.io/v1/namespaces/default/leases HTTP/1.1\r\nHost: 127.0.0.1\r\n{ctype}Content-Length: {}\r\nConnection: close\r\n\r\n{cm}",
                cm.len()
            )
        };
        for ctype in [
            "",
            "Content-Type: text/plain\r\n",
            "Content-Type: application/x-www-form-urlencoded\r\n",
        ] {
            let (code, body) = request(addr, &post(ctype)).await;
            assert_eq!(code, 415, "{ctype:?}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["reason"], "UnsupportedMediaType", "{body}");
        }
        let (code, body) = request(
            addr,
            &post("Content-Type: application/json; charset=utf-8\r\n"),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        serving.abort();
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_before_they_are_read() {
        let (l, addr) = listener().await;
        let serving = tokio::spawn(serve(server(), l, std::future::pending()));
        // Declares 50 MB and sends none of it: the answer comes without waiting for the body.
        let raw = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{";
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("an answer before the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        serving.abort();
    }
}
