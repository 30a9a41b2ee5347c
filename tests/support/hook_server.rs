//! A hook endpoint on loopback for tests of the live providers: a minimal HTTP/1.1 server
//! whose every answer the test scripts (say yes, say no, hold the request, answer late, send
//! garbage or a huge body). It reads the request head, answers, and closes the connection.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer at once.
    Now { status: u16, body: String },
    /// Answer after a delay.
    After {
        delay: Duration,
        status: u16,
        body: String,
    },
    /// Answer nothing until [`HookServer::release`] (then close without an answer).
    Hold,
}

type Script = dyn Fn(&str, u64) -> Reply + Send + Sync;

/// A running server; the script gets the request's method and path (`GET /drain?pod=x`) and
/// the request's number (from 1).
#[derive(Clone)]
pub struct HookServer {
    pub addr: std::net::SocketAddr,
    script: Arc<Mutex<Arc<Script>>>,
    pub requests: Arc<AtomicU64>,
    /// Requests held now.
    pub holding: Arc<AtomicU64>,
    /// Every request's head and body, in order of arrival.
    pub seen: Arc<Mutex<Vec<String>>>,
    release: Arc<Notify>,
}

impl HookServer {
    pub async fn start(script: impl Fn(&str, u64) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = HookServer {
            addr: listener.local_addr().unwrap(),
            script: Arc::new(Mutex::new(Arc::new(script))),
            requests: Arc::default(),
            holding: Arc::default(),
            seen: Arc::default(),
            release: Arc::new(Notify::new()),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // The head, then as much body as Content-Length says.
                    let head_end = loop {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let request = String::from_utf8_lossy(&buf).to_string();
                    let line = head.lines().next().unwrap_or_default();
                    let target = line.rsplit_once(' ').map_or(line, |(t, _)| t).to_string();
                    let n = s.requests.fetch_add(1, Ordering::SeqCst) + 1;
                    s.seen.lock().unwrap().push(request);
                    let script = s.script.lock().unwrap().clone();
                    let (status, body) = match script(&target, n) {
                        Reply::Now { status, body } => (status, body),
                        Reply::After {
                            delay,
                            status,
                            body,
                        } => {
                            tokio::time::sleep(delay).await;
                            (status, body)
                        }
                        Reply::Hold => {
                            s.holding.fetch_add(1, Ordering::SeqCst);
                            s.release.notified().await;
                            s.holding.fetch_sub(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        server
    }

    /// Replaces the script.
    pub fn script(&self, script: impl Fn(&str, u64) -> Reply + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    /// Lets every held request go (closed without an answer).
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// `200` with `body`.
pub fn ok(body: serde_json::Value) -> Reply {
    Reply::Now {
        status: 200,
        body: body.to_string(),
    }
}
