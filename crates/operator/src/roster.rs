//! The pod cache: the core's [`Roster`] shared between the pod watch, which keeps it up to date
//! event by event, and the reconciles, which read their GameDeployment's pods from it.
//!
//! It replaces kube-runtime's reflector store for pods: the store held a second `Arc` of every
//! pod (a copy of the watch's) under a key that was a third copy of its name and namespace,
//! and a reconcile could only read all of it. Each pod the watch delivers is put in the roster
//! before it is handed on to trigger reconciles, so a reconcile never reads a roster older than
//! the event that woke it.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

use crate::watch::Listed;
use gamedeploy_core::planner::model::{CachedPod, Roster};

/// The roster, shared; cloning shares it.
#[derive(Clone, Default)]
pub struct SharedRoster {
    roster: Arc<Mutex<Roster>>,
    listed: Listed,
}

impl SharedRoster {
    /// The roster, locked: hold it briefly (the pod watch waits).
    pub fn lock(&self) -> MutexGuard<'_, Roster> {
        self.roster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once the first list of pods is in. Any number of futures may wait.
    pub fn wait_until_ready(&self) -> impl Future<Output = ()> + Send + 'static {
        self.listed.wait()
    }

    /// Applies one watch event; returns the pod it delivered (applied, listed or deleted, as
    /// kube-runtime's `touched_objects` yields them), now shared with the roster.
    pub fn apply(&self, event: watcher::Event<CachedPod>) -> Option<Arc<CachedPod>> {
        let mut roster = self.lock();
        match event {
            watcher::Event::Apply(pod) => {
                let pod = Arc::new(pod);
                roster.apply(pod.clone());
                Some(pod)
            }
            watcher::Event::Delete(pod) => {
                roster.delete(&pod);
                Some(Arc::new(pod))
            }
            watcher::Event::Init => {
                roster.relist_start();
                None
            }
            watcher::Event::InitApply(pod) => {
                let pod = Arc::new(pod);
                roster.relist_apply(pod.clone());
                Some(pod)
            }
            watcher::Event::InitDone => {
                roster.relist_done();
                drop(roster);
                self.listed.set();
                None
            }
        }
    }

    /// The pods `watch` delivers, each once its event is in the roster; errors pass through.
    pub fn reflect<S>(
        &self,
        watch: S,
    ) -> impl Stream<Item = watcher::Result<Arc<CachedPod>>> + Send + use<S>
    where
        S: Stream<Item = watcher::Result<watcher::Event<CachedPod>>> + Send,
    {
        let roster = self.clone();
        watch.filter_map(move |event| {
            std::future::ready(match event {
                Ok(event) => roster.apply(event).map(Ok),
                Err(e) => Some(Err(e)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::ResourceExt;

    fn pod(name: &str) -> CachedPod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.into()
    }

    #[tokio::test]
    async fn each_pod_is_handed_on_once_the_roster_shows_it() {
        let roster = SharedRoster::default();
        let ready = roster.wait_until_ready();
        let also_ready = roster.wait_until_ready();
        let events = [
            watcher::Event::Init,
            watcher::Event::InitApply(pod("a")),
            watcher::Event::InitDone,
            watcher::Event::Apply(pod("b")),
            watcher::Event::Delete(pod("a")),
        ];
        let seen = roster.clone();
        let delivered: Vec<(String, usize)> = roster
            .reflect(futures::stream::iter(events.map(Ok)))
            .map(|p| {
                let p = p.unwrap();
                // What the roster held when the pod was handed on.
                let held = seen.lock().len();
                (p.name_any(), held)
            })
            .collect()
            .await;
        // The listed pod is handed on before the list is done, as kube-runtime's
        // `touched_objects` does; the roster shows it at `InitDone`.
        assert_eq!(
            delivered,
            [("a".into(), 0), ("b".into(), 2), ("a".into(), 1)]
        );
        // Every future waiting for the first list is woken.
        assert_eq!(ready.now_or_never(), Some(()));
        assert_eq!(also_ready.now_or_never(), Some(()));
    }
}
