//! The pure core of gamedeploy: everything here is a function of observed objects and a `now`
//! passed in. No kube client, no tokio, no IO; the crate's dependency list keeps it that way.
//!
//! - [`api`]: the custom resources (GameDeployment, HookTemplate, HookRun) and their CRDs.
//! - [`names`]: labels, annotations, condition types and event reasons users and scripts see.
//! - [`hookrun`]: the HookRun engine: what to measure when, what a measurement means.
//! - [`inplace`]: the per-pod in-place update state machine; where a pod's state changes.
//! - [`planner`]: one reconcile of a GameDeployment decided: revisions, scale, updates, status.
pub mod api;
pub mod hookrun;
pub mod inplace;
pub mod names;
pub mod planner;

/// The map of every per-pod collection the operator caches (a pod's labels, annotations,
/// images and container statuses, and those of its state record): a vector sorted by key. A
/// pod has a handful of entries in each, and a `BTreeMap` allocates a node for eleven on the
/// first (over 2 KiB for one container's status), which at 10,000 cached pods was most of the
/// cache. Lookups are binary searches; iteration, equality and serialization keep key order, so
/// records and snapshots read exactly as they did with `BTreeMap`.
pub type SmallMap<K, V> = litemap::LiteMap<K, V>;

/// Gives back `map`'s spare capacity. A `SmallMap` collected from an iterator or decoded has
/// room for at least four entries (a vector's smallest growth) and grows by doubling, so a
/// pod's one-container map held four; what a cache keeps for as long as the pod lives should
/// hold only its entries. The entries are moved, not cloned.
pub fn shrink_to_fit<K, V>(map: &mut SmallMap<K, V>) {
    let mut pairs = std::mem::take(map).into_tuple_vec();
    pairs.shrink_to_fit();
    // Still sorted by key with no key twice: they come from a map.
    *map = SmallMap::from_sorted_store_unchecked(pairs);
}

/// Labels or annotations read by key: a pod's as the cache keeps them ([`SmallMap`]), or as
/// `ObjectMeta` carries them (`BTreeMap`), so one selector or codec serves both.
pub trait StrMap {
    fn get_str(&self, key: &str) -> Option<&str>;
}

impl StrMap for std::collections::BTreeMap<String, String> {
    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl StrMap for SmallMap<String, String> {
    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}
