//! Watches and the caches they fill, for both controllers: one helper builds every reflector,
//! and a lenient watch keeps one unreadable object from failing a whole kind's cache.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher;

/// A reflector over `watch`: the cache it fills, and its events as they pass (the caller adds
/// backoff and maps them to objects).
pub fn reflect<K, S>(
    watch: S,
) -> (
    Store<K>,
    impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send,
)
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = watcher::Result<watcher::Event<K>>> + Send,
{
    let (store, writer) = reflector::store();
    (store, reflector::reflector(writer, watch))
}

/// An `Api` over one namespace, or over all.
pub fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch of `K` read leniently (`Lenient`): `managedFields` are skipped without recursion,
/// and an object that still does not decode is logged and left out, so one stored object can
/// fail neither its list nor the cache of every other object of its kind.
pub fn lenient_watcher<K>(
    api: Api<gamedeploy_core::api::Lenient<K>>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + 'static,
{
    watcher(api, config).filter_map(|event| {
        std::future::ready(match event {
            Ok(e) => decoded_event(e).map(Ok),
            Err(e) => Some(Err(e)),
        })
    })
}

/// The event with its object decoded; `None` (logged) for an object that did not decode.
fn decoded_event<K: Resource<DynamicType = ()>>(
    event: watcher::Event<gamedeploy_core::api::Lenient<K>>,
) -> Option<watcher::Event<K>> {
    use watcher::Event as E;
    let decoded = |object: gamedeploy_core::api::Lenient<K>| match object.into_result() {
        Ok(k) => Some(k),
        Err(u) => {
            tracing::warn!(
                kind = %K::kind(&()),
                namespace = u.metadata.namespace.as_deref().unwrap_or_default(),
                name = u.metadata.name.as_deref().unwrap_or_default(),
                reason = %u.reason,
                "an object cannot be read and is left out of the cache"
            );
            None
        }
    };
    Some(match event {
        E::Apply(o) => E::Apply(decoded(o)?),
        E::InitApply(o) => E::InitApply(decoded(o)?),
        E::Delete(o) => E::Delete(decoded(o)?),
        E::Init => E::Init,
        E::InitDone => E::InitDone,
    })
}

/// Whether a cache has had its first complete list: set once, awaited by any number of
/// futures (kube-runtime's store wakes only the last future waiting for it).
#[derive(Clone)]
pub struct Listed(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Listed {
    fn default() -> Self {
        Listed(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Listed {
    /// The first list is in.
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the first list is in.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut listed = self.0.subscribe();
        async move {
            // The sender lives as long as the cache; dropped, there is nothing to wait for.
            let _ = listed.wait_for(|done| *done).await;
        }
    }
}
