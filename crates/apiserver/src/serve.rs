//! The embedded cluster over HTTP on loopback, so a real `kubectl` (or `gamedeploy run`) can
//! talk to it as to any cluster. Plain HTTP: the listener is meant for 127.0.0.1 only, and the
//! kubeconfig written for it says so.

use std::future::Future;
use std::net::SocketAddr;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::ApiServer;

/// Serves `server` on `listener` until `shutdown` resolves. Each connection is served on its
/// own task; requests are attributed to their user agent (kubectl's is `kubectl/...`).
pub async fn serve(
    server: ApiServer,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let service = TowerToHyperService::new(server.service(None));
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
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
