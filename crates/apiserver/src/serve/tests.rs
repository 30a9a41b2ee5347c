//! The HTTP front end over real sockets: accept errors, slow and idle connections, Host and
//! media-type checks, and refused bodies.

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
    let write = |method: &str, path: &str, name: &str, ctype: &str| {
        let cm = format!(r#"{{"metadata":{{"name":"{name}"}}}}"#);
        format!(
            "{method} /apis/coordination.k8s.io/v1/namespaces/default/leases{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ctype}Content-Length: {}\r\nConnection: close\r\n\r\n{cm}",
            cm.len()
        )
    };
    let refused = [
        ("POST", "", "Content-Type: text/plain\r\n"),
        (
            "POST",
            "",
            "Content-Type: application/x-www-form-urlencoded\r\n",
        ),
        ("PATCH", "/c", ""),
    ];
    for (method, path, ctype) in refused {
        let (code, body) = request(addr, &write(method, path, "c", ctype)).await;
        assert_eq!(code, 415, "{method} {ctype:?}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["reason"], "UnsupportedMediaType", "{body}");
    }
    let typed = "Content-Type: application/json; charset=utf-8\r\n";
    let (code, body) = request(addr, &write("POST", "", "c", typed)).await;
    assert_eq!(code, 201, "{body}");
    // No media type on a create or update is JSON, as kube-apiserver reads it.
    let (code, body) = request(addr, &write("POST", "", "untyped", "")).await;
    assert_eq!(code, 201, "{body}");
    serving.abort();
}

/// Writes a request declaring and sending a `len`-byte body, the whole body, then reads the
/// answer: (whether every byte could be written, the answer).
async fn send_whole(addr: SocketAddr, head: &str, len: usize) -> (bool, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!("{head}Content-Length: {len}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let body = vec![b'a'; len];
    let written = s.write_all(&body).await.is_ok();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    (written, String::from_utf8_lossy(&out).to_string())
}

/// A client that sends a whole oversized body before reading, as kubectl does, reads the
/// 413 rather than a broken pipe: after refusing, the server goes on reading and
/// discarding the body (a bounded amount) before it closes, as Go's server does. So for a
/// refusal of the front end (wrong host) and of the server (too large), over plain HTTP
/// and HTTPS.
#[tokio::test]
async fn a_client_sending_a_whole_refused_body_reads_the_refusal() {
    let (l, addr) = listener().await;
    let serving = tokio::spawn(serve(server(), l, std::future::pending()));
    let len = 4 << 20;
    let cases = [
        ("127.0.0.1", "Request entity too large: limit is 3145728"),
        ("evil.example", "is not a loopback name or address"),
    ];
    for (host, message) in cases {
        let head = format!(
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        );
        for round in 0..3 {
            let (written, answer) = send_whole(addr, &head, len).await;
            assert!(written, "{host} round {round}: the server closed mid-body");
            assert!(answer.contains(message), "{host} round {round}: {answer}");
        }
    }
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
