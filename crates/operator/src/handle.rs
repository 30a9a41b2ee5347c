//! An operator on its own task, for tests and simulations: stopped gracefully, or killed as a
//! crash would kill it. `controller::Handle` and `leader::Handle` are this over the plain
//! controller and over the elected one.

use std::future::Future;
use std::pin::Pin;

/// The stop signal handed to the task: resolves when the handle asks it to stop, or is dropped.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// The running task and its stop signal; `T` is what the task returns.
pub struct Handle<T> {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<T>,
}

impl<T: Send + 'static> Handle<T> {
    /// Spawns `run(stopped)`, where `stopped` resolves on [`Handle::shutdown`].
    pub fn spawn<F, Fut>(run: F) -> Self
    where
        F: FnOnce(Stopped) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(Box::pin(async move {
            let _ = stopped.await;
        })));
        Handle { stop, task }
    }

    /// Graceful shutdown: in-flight work finishes; what the task returned, unless it panicked.
    pub async fn shutdown(self) -> Option<T> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }

    /// Ends the task at once, mid-write if need be, as a crash would.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
