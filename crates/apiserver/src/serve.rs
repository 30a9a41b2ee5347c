//! The embedded cluster over HTTPS (or plain HTTP, for debugging) on loopback, so a real
//! `kubectl`, an official client library or `gamedeploy run` can talk to it as to any cluster.
//! As kube-apiserver does, it serves TLS by default: [`Tls::generate`] makes a CA and a serving
//! certificate for the loopback names at start, and [`kubeconfig_tls`] hands the CA to clients
//! (`certificate-authority-data`, as kind and k3d write it), so they verify the server.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::errors::ApiError;
use crate::handler::{Body, MAX_REQUEST_BODY_BYTES, error_response};
use crate::{ApiServer, ApiService};

/// The server's TLS identity: a CA made at start (its key never leaves the process), a
/// serving certificate it signed for `localhost`, `127.0.0.1`, `::1` and the listen address,
/// and a client certificate for the kubeconfig's user. Clients need not present one, but one
/// presented must be the CA's; the kubeconfig carries it because kubectl prompts for a user
/// name and password when an `https` cluster's user has no credentials (kind and k3d write
/// one too).
#[derive(Clone)]
pub struct Tls {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// A new CA and serving certificate (ECDSA P-256), valid from last year for ten years.
    /// `also` adds IP addresses to the certificate's names (the listen address, when it is
    /// not one of the loopback defaults; unspecified addresses are ignored).
    pub fn generate(also: &[IpAddr]) -> Result<Self, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
        };
        let fail = |what: &str, e: rcgen::Error| format!("making the {what}: {e}");
        let year = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .year() as i32;
        let validity = |p: &mut CertificateParams| {
            p.not_before = date_time_ymd(year - 1, 1, 1);
            p.not_after = date_time_ymd(year + 10, 1, 1);
        };
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "gamedeploy-embedded-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca);
        let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
        let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| fail("CA", e))?;
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        for ip in also.iter().filter(|ip| !ip.is_unspecified()) {
            let ip = ip.to_string();
            if !names.contains(&ip) {
                names.push(ip);
            }
        }
        let mut leaf = CertificateParams::new(names).map_err(|e| fail("serving names", e))?;
        leaf.distinguished_name
            .push(DnType::CommonName, "gamedeploy-embedded-apiserver");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut leaf);
        let key = KeyPair::generate().map_err(|e| fail("serving key", e))?;
        let cert = leaf
            .signed_by(&key, &ca)
            .map_err(|e| fail("serving certificate", e))?;
        let mut user = CertificateParams::default();
        user.distinguished_name
            .push(DnType::CommonName, "gamedeploy-embedded-admin");
        user.distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        user.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        user.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut user);
        let user_key = KeyPair::generate().map_err(|e| fail("client key", e))?;
        let user_cert = user
            .signed_by(&user_key, &ca)
            .map_err(|e| fail("client certificate", e))?;
        let chain = vec![cert.der().clone(), ca.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.der().clone())
            .map_err(|e| format!("TLS client roots: {e}"))?;
        let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("TLS client verifier: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain, key)
            .map_err(|e| format!("TLS serving certificate: {e}"))?;
        // HTTP/1.1 only: hyper serves http1 here; clients that offer h2 fall back.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca.pem(),
            client_cert_pem: user_cert.pem(),
            client_key_pem: user_key.serialize_pem(),
            config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM: what a client trusts to verify this server.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// Connection handling of the HTTP front end.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a connection gets to deliver a complete request head; kube-apiserver's
    /// `http.Server` uses `ReadHeaderTimeout: 32s` against slowloris. hyper starts this clock
    /// whenever it waits for a request, so it also closes idle keep-alive connections (where
    /// Go's server would wait its `IdleTimeout`, 90 s); clients just reconnect.
    pub header_read_timeout: Duration,
    /// Longest pause after a failed accept (EMFILE and the like). The pause starts at 5 ms and
    /// doubles, as Go's `http.Server.Serve` does (which caps it at 1 s).
    pub max_accept_backoff: Duration,
    /// `Some`: HTTPS with this identity ([`Tls::generate`]); `None`: plain HTTP.
    pub tls: Option<Tls>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(32),
            max_accept_backoff: Duration::from_secs(1),
            tls: None,
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

/// Serves `server` over HTTPS with `tls` on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    server: ApiServer,
    listener: TcpListener,
    tls: Tls,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let opts = ServeOptions {
        tls: Some(tls),
        ..ServeOptions::default()
    };
    serve_with(server, listener, opts, shutdown).await
}

/// Serves `server` over plain HTTP on `listener` until `shutdown` resolves, with
/// [`ServeOptions::default`].
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
        let service = LoopbackOnly(server.service(None));
        let tls = opts.tls.as_ref().map(|t| t.config.clone());
        let header_read_timeout = opts.header_read_timeout;
        tokio::spawn(async move {
            let Some(config) = tls else {
                return serve_connection(stream, service, header_read_timeout).await;
            };
            // The handshake gets the time a request head gets.
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, service, header_read_timeout).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}

/// How long a closing connection keeps reading (and discarding) what the client still sends
/// after this side has finished writing: Go's `rstAvoidanceDelay` (500 ms). Closing a socket
/// with unread data makes the kernel send a reset, which can destroy the response in the
/// client's receive buffer before the client has read it.
const LINGER: Duration = Duration::from_millis(500);

/// One connection: HTTP/1.1 until either side ends it, then a lingering close as Go's
/// `closeWriteAndWait` does (finish writing, half-close, read what still comes for a while).
async fn serve_connection<S>(stream: S, service: LoopbackOnly, header_read_timeout: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .without_shutdown();
    match conn.await {
        Ok(parts) => {
            let mut stream = parts.io.into_inner();
            if stream.shutdown().await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 16 * 1024];
            let _ = tokio::time::timeout(LINGER, async {
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
        }
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
    }
}

/// Most of a refused request's body read and discarded: what kube-apiserver reads of a body
/// before it can refuse it as too large (its 3 MiB limit) plus what Go's HTTP server then
/// discards after a handler (`maxPostHandlerReadBytes`, 256 KiB). Past it the connection is
/// closed, as Go's server closes it.
pub const MAX_DISCARDED_BODY_BYTES: u64 = MAX_REQUEST_BODY_BYTES as u64 + (256 << 10);

/// How long a refused request's body is read and discarded at most.
pub const MAX_DISCARD_TIME: Duration = Duration::from_secs(10);

/// A request body that, dropped unread (a request refused early: too large, wrong host, wrong
/// media type), keeps being read and discarded in the background, up to
/// [`MAX_DISCARDED_BODY_BYTES`] and [`MAX_DISCARD_TIME`]. The client can then finish sending
/// and read the refusal; closing on it mid-body would make it see a broken pipe or a reset
/// (kubectl: "write: broken pipe") instead of the answer.
struct DrainOnDrop<B: HttpBody + Send + 'static> {
    inner: Option<Pin<Box<B>>>,
}

impl<B: HttpBody + Send + 'static> HttpBody for DrainOnDrop<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.inner.as_mut() {
            Some(b) => b.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B: HttpBody + Send + 'static> Drop for DrainOnDrop<B> {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(MAX_DISCARD_TIME, async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        read += bytes::Buf::remaining(data) as u64;
                        if read > MAX_DISCARDED_BODY_BYTES {
                            break;
                        }
                    }
                }
            })
            .await;
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
/// page cannot reach the cluster by DNS rebinding, and no write whose body is declared
/// `text/plain` or a form, so a page cannot send one as a "simple" cross-origin request without
/// a CORS preflight that this server never grants (kube-apiserver refuses those types too).
#[derive(Clone)]
struct LoopbackOnly(ApiService);

impl<B> tower::Service<http::Request<B>> for LoopbackOnly
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = <ApiService as tower::Service<http::Request<DrainOnDrop<B>>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<DrainOnDrop<B>>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let req = req.map(|b| DrainOnDrop {
            inner: Some(Box::pin(b)),
        });
        match check_host(&req).and_then(|()| check_write_type(&req)) {
            Ok(()) => self.0.call(req),
            Err(e) => Box::pin(std::future::ready(Ok(error_response(&e)))),
        }
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port, from the request target or
/// the `Host` header.
fn check_host<B>(req: &http::Request<B>) -> Result<(), ApiError> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
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

/// POST, PUT and PATCH with a media type need a JSON or YAML one (`application/json`,
/// `application/yaml`, `application/*+json`, `application/*+yaml`). A create or update
/// (POST, PUT) without one is JSON, as kube-apiserver reads it
/// (`NegotiateInputSerializerForMediaType` takes an empty type as JSON): the official Python
/// client sends its bodies so. A PATCH without one stays 415: there the type says which patch.
fn check_write_type<B>(req: &http::Request<B>) -> Result<(), ApiError> {
    use http::Method;
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let ctype = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty() && *req.method() != Method::PATCH {
        return Ok(());
    }
    let typed = essence.strip_prefix("application/").is_some_and(|sub| {
        matches!(sub, "json" | "yaml") || sub.ends_with("+json") || sub.ends_with("+yaml")
    }) || (essence == crate::protobuf::MEDIA_TYPE && *req.method() != Method::PATCH);
    if typed {
        Ok(())
    } else {
        Err(ApiError::unknown_body_format(&[
            "application/json",
            "application/yaml",
            crate::protobuf::MEDIA_TYPE,
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]))
    }
}

/// A kubeconfig for plain HTTP at `addr` (`gamedeploy cluster --insecure-http`): context
/// `gamedeploy-embedded`, namespace `default`.
pub fn kubeconfig(addr: SocketAddr) -> String {
    kubeconfig_for(&format!("http://{addr}"), "", "")
}

/// A kubeconfig for HTTPS at `addr` trusting `tls`'s CA (`certificate-authority-data`, base64
/// of the PEM, as kind and k3d write it), with the client certificate as its user: context
/// `gamedeploy-embedded`, namespace `default`.
pub fn kubeconfig_tls(addr: SocketAddr, tls: &Tls) -> String {
    use base64::Engine;
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    kubeconfig_for(
        &format!("https://{addr}"),
        &format!("\n    certificate-authority-data: {}", b64(&tls.ca_pem)),
        &format!(
            "\n    client-certificate-data: {}\n    client-key-data: {}",
            b64(&tls.client_cert_pem),
            b64(&tls.client_key_pem)
        ),
    )
}

fn kubeconfig_for(server: &str, cluster_extra: &str, user: &str) -> String {
    let user = if user.is_empty() { " {}" } else { user };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: gamedeploy-embedded
  cluster:
    server: {server}{cluster_extra}
users:
- name: gamedeploy-embedded
  user:{user}
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
mod tests;
