//! Storage: one table per resource, a global resourceVersion (like etcd's revision), a bounded
//! per-resource event log for watch resumption, and the registered watchers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::resources::{GroupResource, Registry};

/// Watch event types on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change. `prev` lets a filtered watch turn a MODIFIED into ADDED/DELETED when the
/// object starts/stops matching its selector, as the watch cache does.
#[derive(Debug)]
pub struct LoggedEvent {
    pub rv: u64,
    pub kind: EventType,
    pub obj: Arc<Value>,
    pub prev: Option<Arc<Value>>,
}

/// What a watcher receives from the store.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    Event(Arc<LoggedEvent>),
    /// Fault injection: end the stream now.
    Drop,
}

#[derive(Debug)]
pub struct WatchSink {
    pub client: String,
    pub tx: UnboundedSender<WatchMsg>,
}

/// (namespace or "", name)
pub type ObjKey = (String, String);

#[derive(Debug, Default)]
pub struct Table {
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
    pub log: VecDeque<Arc<LoggedEvent>>,
    /// Events with rv ≤ this may have been evicted from `log`: a watch from an older version
    /// gets 410 Gone.
    pub compacted_rv: u64,
    pub watchers: Vec<WatchSink>,
}

#[derive(Debug)]
pub struct Store {
    pub rv: u64,
    pub rng: fastrand::Rng,
    pub registry: Registry,
    pub tables: HashMap<GroupResource, Table>,
    pub history_limit: usize,
    /// uid → (resource, key) for garbage collection lookups.
    pub uids: HashMap<String, (GroupResource, ObjKey)>,
    /// Set when something happened that the garbage collector must look at.
    pub gc_dirty: bool,
}

impl Store {
    pub fn new(seed: u64, history_limit: usize) -> Self {
        Self {
            rv: 0,
            rng: fastrand::Rng::with_seed(seed),
            registry: Registry::with_builtins(),
            tables: HashMap::new(),
            history_limit: history_limit.max(1),
            uids: HashMap::new(),
            gc_dirty: false,
        }
    }

    pub fn table(&mut self, gr: &GroupResource) -> &mut Table {
        self.tables.entry(gr.clone()).or_default()
    }

    pub fn get(&self, gr: &GroupResource, key: &ObjKey) -> Option<Arc<Value>> {
        self.tables
            .get(gr)
            .and_then(|t| t.objects.get(key))
            .cloned()
    }

    /// A random UUIDv4-shaped uid from the seeded generator (reproducible runs).
    pub fn new_uid(&mut self) -> String {
        let mut b = [0u8; 16];
        for x in &mut b {
            *x = self.rng.u8(..);
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// `names.SimpleNameGenerator`: 5 characters from the alphabet of `utilrand.String`
    /// (no vowels, no confusable digits).
    pub fn name_suffix(&mut self) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHA[self.rng.usize(..ALPHA.len())] as char)
            .collect()
    }

    /// Store `obj` (create or update) at a new resourceVersion and notify watchers.
    pub fn put(
        &mut self,
        gr: &GroupResource,
        key: ObjKey,
        mut obj: Value,
        kind: EventType,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
            self.uids.insert(uid.to_string(), (gr.clone(), key.clone()));
        }
        let obj = Arc::new(obj);
        let limit = self.history_limit;
        let table = self.table(gr);
        let prev = table.objects.insert(key, obj.clone());
        // Only changes the garbage collector cares about wake it up: new or changed owner
        // references, or a deletion in progress.
        let owners_changed = prev
            .as_ref()
            .map(|p| p.pointer("/metadata/ownerReferences"))
            != Some(obj.pointer("/metadata/ownerReferences"));
        if (owners_changed && obj.pointer("/metadata/ownerReferences").is_some())
            || obj.pointer("/metadata/deletionTimestamp").is_some()
        {
            table.record(
                limit,
                LoggedEvent {
                    rv,
                    kind,
                    obj: obj.clone(),
                    prev,
                },
            );
            self.gc_dirty = true;
            return obj;
        }
        table.record(
            limit,
            LoggedEvent {
                rv,
                kind,
                obj: obj.clone(),
                prev,
            },
        );
        obj
    }

    /// Remove an object for good: DELETED event carrying the final state at a new version.
    pub fn remove(&mut self, gr: &GroupResource, key: &ObjKey) -> Option<Arc<Value>> {
        let old = self.tables.get(gr)?.objects.get(key)?.clone();
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        if let Some(m) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        if let Some(uid) = last.pointer("/metadata/uid").and_then(Value::as_str) {
            self.uids.remove(uid);
        }
        self.gc_dirty = true;
        let last = Arc::new(last);
        let limit = self.history_limit;
        let table = self.table(gr);
        table.objects.remove(key);
        table.record(
            limit,
            LoggedEvent {
                rv,
                kind: EventType::Deleted,
                obj: last.clone(),
                prev: Some(old),
            },
        );
        Some(last)
    }
}

impl Table {
    fn record(&mut self, limit: usize, ev: LoggedEvent) {
        let ev = Arc::new(ev);
        self.log.push_back(ev.clone());
        while self.log.len() > limit {
            if let Some(old) = self.log.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        self.watchers
            .retain(|w| w.tx.send(WatchMsg::Event(ev.clone())).is_ok());
    }
}
