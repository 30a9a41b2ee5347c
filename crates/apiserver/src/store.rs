//! Storage: one table per resource, a global resourceVersion (like etcd's revision), a bounded
//! per-resource event log for watch resumption, and the registered watchers.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Sender, UnboundedSender};
use tokio::sync::oneshot;

use super::resources::{GroupResource, Registry};
use super::selectors::selection_view;

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
    json: OnceLock<Arc<str>>,
}

impl LoggedEvent {
    pub fn new(rv: u64, kind: EventType, obj: Arc<Value>, prev: Option<Arc<Value>>) -> Self {
        LoggedEvent {
            rv,
            kind,
            obj,
            prev,
            json: OnceLock::new(),
        }
    }

    /// The object as JSON, serialized once for every watcher that sends it whole and for the
    /// log's compact form.
    pub fn json(&self) -> &Arc<str> {
        self.json.get_or_init(|| self.obj.to_string().into())
    }
}

/// A change as the log keeps it once it is no longer recent: the object serialized, and of it
/// and the version before only what watch selectors read ([`selection_view`]). Why: a stored
/// pod version, with its managedFields, is some 40 KiB as a `Value` and a tenth of that as
/// JSON, and the log keeps thousands of versions no one reads unless a watch resumes from them.
#[derive(Debug)]
pub struct CompactEvent {
    pub rv: u64,
    pub kind: EventType,
    pub json: Arc<str>,
    pub selection: Value,
    pub prev_selection: Option<Value>,
}

impl CompactEvent {
    fn of(ev: &LoggedEvent) -> Self {
        CompactEvent {
            rv: ev.rv,
            kind: ev.kind,
            json: ev.json().clone(),
            selection: selection_view(&ev.obj),
            prev_selection: ev.prev.as_deref().map(selection_view),
        }
    }
}

/// One entry of a resource's event log.
#[derive(Debug)]
pub enum Logged {
    /// Shared with the watchers' queues, as it was recorded.
    Recent(Arc<LoggedEvent>),
    Compact(CompactEvent),
}

impl Logged {
    pub fn rv(&self) -> u64 {
        match self {
            Logged::Recent(e) => e.rv,
            Logged::Compact(c) => c.rv,
        }
    }
}

/// How many of a log's newest entries stay as recorded: a watch that resumes from a recent
/// version (the common case: a dropped connection) then costs no parsing.
pub const RECENT_EVENTS: usize = 512;

/// A registered watch: a bounded queue of events (shared with the log, not copied) and the
/// handle whose drop ends the stream (never sent on): dropping the sink closes the watch.
#[derive(Debug)]
pub struct WatchSink {
    pub client: String,
    pub tx: Sender<Arc<LoggedEvent>>,
    pub _stop: oneshot::Sender<()>,
}

/// (namespace or "", name)
pub type ObjKey = (String, String);

/// One stored change, attributed to the client whose request made it (`history[]` of a
/// simulation report is built from these).
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    /// Server clock time of the request (RFC 3339).
    pub time: String,
    /// Client identity of the request; `garbage-collector` for GC and namespace cleanup.
    pub client: String,
    pub kind: EventType,
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub object: Arc<Value>,
}

/// Everything stored for one resource (group and plural): its objects, the event log kept for
/// watch resumption and its open watches. (Not the `as=Table` representation: that is
/// `http::table`.)
#[derive(Debug, Default)]
pub struct ResourceTable {
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
    pub log: VecDeque<Logged>,
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
    pub tables: HashMap<GroupResource, ResourceTable>,
    pub history_limit: usize,
    /// uid → (resource, key) for garbage collection lookups.
    pub uids: HashMap<String, (GroupResource, ObjKey)>,
    /// owner uid → dependents naming it in their ownerReferences.
    pub dependents: HashMap<String, BTreeSet<(GroupResource, ObjKey)>>,
    /// Objects the garbage collector must look at (dangling owners, deletions in progress).
    pub gc_queue: VecDeque<(GroupResource, ObjKey)>,
    /// Who is writing now, and when (set per request).
    pub actor: (String, String),
    pub change_subs: Vec<UnboundedSender<Change>>,
    /// `Warning` headers for the response to the request being served (admission policies
    /// with `Warn`); taken by the handler after each request.
    pub warnings: Vec<String>,
    /// Watches closed because their queue was full.
    pub watches_closed_lagging: u64,
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
            dependents: HashMap::new(),
            gc_queue: VecDeque::new(),
            actor: (String::new(), String::new()),
            change_subs: Vec::new(),
            warnings: Vec::new(),
            watches_closed_lagging: 0,
        }
    }

    pub fn table(&mut self, gr: &GroupResource) -> &mut ResourceTable {
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
        let prev = table.objects.insert(key.clone(), obj.clone());
        let is_new = prev.is_none();
        let closed = table.record(limit, LoggedEvent::new(rv, kind, obj.clone(), prev.clone()));
        self.watches_closed_lagging += closed;
        self.publish(
            rv,
            if is_new {
                EventType::Added
            } else {
                EventType::Modified
            },
            gr,
            &key,
            &obj,
        );
        // Garbage-collector bookkeeping: only changed owner references and deletions in
        // progress need a look.
        let old_owners = prev.as_deref().map(owner_uids).unwrap_or_default();
        let new_owners = owner_uids(&obj);
        if old_owners != new_owners {
            let entry = (gr.clone(), key.clone());
            for u in &old_owners {
                if let Some(set) = self.dependents.get_mut(u) {
                    set.remove(&entry);
                    if set.is_empty() {
                        self.dependents.remove(u);
                    }
                }
                // An owner waiting for its dependents may be free now.
                if let Some(owner) = self.uids.get(u).cloned() {
                    self.gc_queue.push_back(owner);
                }
            }
            for u in &new_owners {
                self.dependents
                    .entry(u.clone())
                    .or_default()
                    .insert(entry.clone());
            }
            if !new_owners.is_empty() {
                self.gc_queue.push_back(entry);
            }
        }
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            self.gc_queue.push_back((gr.clone(), key));
        }
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
            // Dependents may now be dangling.
            if let Some(deps) = self.dependents.get(uid) {
                self.gc_queue.extend(deps.iter().cloned());
            }
        }
        let entry = (gr.clone(), key.clone());
        for u in owner_uids(&last) {
            if let Some(set) = self.dependents.get_mut(&u) {
                set.remove(&entry);
                if set.is_empty() {
                    self.dependents.remove(&u);
                }
            }
            // A foreground-deleting owner may be waiting for this one.
            if let Some(owner) = self.uids.get(&u).cloned() {
                self.gc_queue.push_back(owner);
            }
        }
        // A terminating namespace may be empty now.
        if !key.0.is_empty() {
            self.gc_queue.push_back((
                GroupResource {
                    group: String::new(),
                    resource: "namespaces".into(),
                },
                (String::new(), key.0.clone()),
            ));
        }
        let last = Arc::new(last);
        let limit = self.history_limit;
        let table = self.table(gr);
        table.objects.remove(key);
        let closed = table.record(
            limit,
            LoggedEvent::new(rv, EventType::Deleted, last.clone(), Some(old)),
        );
        self.watches_closed_lagging += closed;
        self.publish(rv, EventType::Deleted, gr, key, &last);
        Some(last)
    }

    fn publish(
        &mut self,
        rv: u64,
        kind: EventType,
        gr: &GroupResource,
        key: &ObjKey,
        obj: &Arc<Value>,
    ) {
        if self.change_subs.is_empty() {
            return;
        }
        let change = Change {
            rv,
            time: self.actor.1.clone(),
            client: self.actor.0.clone(),
            kind,
            group: gr.group.clone(),
            resource: gr.resource.clone(),
            namespace: key.0.clone(),
            name: key.1.clone(),
            object: obj.clone(),
        };
        self.change_subs.retain(|s| s.send(change.clone()).is_ok());
    }
}

/// The uids an object's ownerReferences name.
pub fn owner_uids(o: &Value) -> Vec<String> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl ResourceTable {
    /// Log `ev` and queue it for every watcher; returns how many watchers were closed because
    /// their queue was full (the cacher's answer to a watcher that stopped reading).
    fn record(&mut self, limit: usize, ev: LoggedEvent) -> u64 {
        let ev = Arc::new(ev);
        self.log.push_back(Logged::Recent(ev.clone()));
        while self.log.len() > limit {
            if let Some(old) = self.log.pop_front() {
                self.compacted_rv = old.rv();
            }
        }
        // Each entry is serialized once, when it leaves the recent window.
        if let Some(i) = self.log.len().checked_sub(RECENT_EVENTS + 1)
            && let Some(Logged::Recent(e)) = self.log.get(i)
        {
            let compact = CompactEvent::of(e);
            self.log[i] = Logged::Compact(compact);
        }
        let mut lagging = 0;
        self.watchers.retain(|w| match w.tx.try_send(ev.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::info!(client = %w.client, "closing a watch that fell too far behind");
                lagging += 1;
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        lagging
    }
}
