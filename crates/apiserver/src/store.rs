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
    pub selection: Arc<Value>,
    pub prev_selection: Option<Arc<Value>>,
}

impl CompactEvent {
    /// `ev` made compact. Its selection views are shared through `seen` with the other compact
    /// changes of the same object that select alike: most writes (a status, an annotation)
    /// change nothing a selector reads, so one view serves most of an object's versions
    /// instead of two per change (a fifth of a 1,000-pod simulation's heap).
    fn of(ev: &LoggedEvent, seen: &mut HashMap<ObjKey, Arc<Value>>) -> Self {
        let key = object_key(&ev.obj);
        let mut shared = |view: Value| match seen.get(&key) {
            Some(known) if **known == view => known.clone(),
            _ => {
                let view = Arc::new(view);
                seen.insert(key.clone(), view.clone());
                view
            }
        };
        let prev_selection = ev.prev.as_deref().map(|p| shared(selection_view(p)));
        let selection = shared(selection_view(&ev.obj));
        if ev.kind == EventType::Deleted {
            // Nothing later shares a deleted object's view; a namesake starts afresh.
            seen.remove(&key);
        }
        CompactEvent {
            rv: ev.rv,
            kind: ev.kind,
            json: ev.json().clone(),
            selection,
            prev_selection,
        }
    }
}

impl CompactEvent {
    /// Lets go of this change's views in `seen` (see [`CompactEvent::of`]) where no other
    /// change holds them: an object's entry lasts as long as its compact changes, whether or
    /// not its deletion was ever made compact.
    fn release(&self, seen: &mut HashMap<ObjKey, Arc<Value>>) {
        let views = || std::iter::once(&self.selection).chain(&self.prev_selection);
        for view in views() {
            let key = object_key(view);
            let held_here = views().filter(|v| Arc::ptr_eq(v, view)).count();
            let only_here = seen
                .get(&key)
                .is_some_and(|s| Arc::ptr_eq(s, view) && Arc::strong_count(s) == 1 + held_here);
            if only_here {
                seen.remove(&key);
            }
        }
    }
}

/// The namespace and name an object is stored under, read from its metadata (a selection view
/// keeps both).
fn object_key(obj: &Value) -> ObjKey {
    // Not `registry::object::str_at`: the registry builds on the store, not the other way.
    let at = |ptr| obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
    (
        at("/metadata/namespace").into(),
        at("/metadata/name").into(),
    )
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

    /// The length of the object's JSON (serialized when recorded).
    fn json_len(&self) -> usize {
        match self {
            Logged::Recent(e) => e.json().len(),
            Logged::Compact(c) => c.json.len(),
        }
    }
}

/// How many of a log's newest entries stay as recorded: a watch that resumes from a recent
/// version (the common case: a dropped connection) then costs no parsing.
pub const RECENT_EVENTS: usize = 512;

/// The most serialized bytes one resource's event log keeps, besides its entry count
/// (`ServerOptions::event_history`): the oldest changes go first, and a watch resuming from
/// before them gets 410 Gone. Why bytes too: kube-apiserver's watch cache is bounded by a
/// count, but etcd compacts its history every five minutes, so big objects written often do
/// not pile up; a count alone let 2,000 writes of a 2.5 MB ConfigMap hold 5 GB here. The newest
/// entry always stays, however big.
pub const HISTORY_BYTES: usize = 256 << 20;

/// The most serialized bytes of a log's entries kept as recorded ([`RECENT_EVENTS`]): those
/// hold the object as a `Value` (several times its JSON for structure-heavy objects) as well
/// as its JSON, so big objects leave the recent window early.
pub const RECENT_BYTES: usize = 64 << 20;

/// The bounds of every resource's event log.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Entries kept (`ServerOptions::event_history`).
    pub events: usize,
    /// Serialized bytes kept ([`HISTORY_BYTES`]).
    pub bytes: usize,
    /// Newest entries kept as recorded ([`RECENT_EVENTS`]).
    pub recent_events: usize,
    /// Serialized bytes of those ([`RECENT_BYTES`]).
    pub recent_bytes: usize,
}

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
    /// Serialized bytes of the objects in `log`.
    log_bytes: usize,
    /// How many of `log`'s newest entries are `Logged::Recent`, and their serialized bytes.
    recent: usize,
    recent_bytes: usize,
    /// The resourceVersion of each object whose stored version's managedFields an Update-style
    /// write made (see `managed::Stored::Tracked`); any other version has another number.
    tracked: HashMap<ObjKey, u64>,
    /// The selection view each object's latest compact change holds ([`CompactEvent::of`]).
    selections: HashMap<ObjKey, Arc<Value>>,
}

#[derive(Debug)]
pub struct Store {
    pub rv: u64,
    pub rng: fastrand::Rng,
    pub registry: Registry,
    pub tables: HashMap<GroupResource, ResourceTable>,
    pub log_limits: LogLimits,
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
            log_limits: LogLimits {
                events: history_limit.max(1),
                bytes: HISTORY_BYTES,
                recent_events: RECENT_EVENTS,
                recent_bytes: RECENT_BYTES,
            },
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

    /// Whether the version of `key` at `rv` is the one [`Store::set_tracked`] last named.
    pub fn is_tracked(&self, gr: &GroupResource, key: &ObjKey, rv: &str) -> bool {
        self.tables
            .get(gr)
            .and_then(|t| t.tracked.get(key))
            .is_some_and(|t| rv.parse() == Ok(*t))
    }

    /// Note that the stored version of `key`, at `rv`, has managedFields an Update-style
    /// write made.
    pub fn set_tracked(&mut self, gr: &GroupResource, key: ObjKey, rv: &str) {
        if let Ok(rv) = rv.parse() {
            self.table(gr).tracked.insert(key, rv);
        }
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
        let limit = self.log_limits;
        let table = self.table(gr);
        let prev = table.objects.insert(key.clone(), obj.clone());
        let is_new = prev.is_none();
        let closed =
            table.append_event(limit, LoggedEvent::new(rv, kind, obj.clone(), prev.clone()));
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
        let limit = self.log_limits;
        let table = self.table(gr);
        table.objects.remove(key);
        table.tracked.remove(key);
        let closed = table.append_event(
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
    fn append_event(&mut self, limit: LogLimits, ev: LoggedEvent) -> u64 {
        let ev = Arc::new(ev);
        // Serialized once, here: for the byte bounds, every watcher sending it whole, and the
        // compact form.
        let size = ev.json().len();
        self.log.push_back(Logged::Recent(ev.clone()));
        self.log_bytes += size;
        self.recent += 1;
        self.recent_bytes += size;
        while self.log.len() > limit.events || (self.log_bytes > limit.bytes && self.log.len() > 1)
        {
            let Some(old) = self.log.pop_front() else {
                break;
            };
            let size = old.json_len();
            self.log_bytes -= size;
            if self.log.len() < self.recent {
                self.recent -= 1;
                self.recent_bytes -= size;
            }
            self.compacted_rv = old.rv();
            if let Logged::Compact(c) = &old {
                c.release(&mut self.selections);
            }
        }
        // The oldest recorded entries past the recent window's bounds become compact.
        while self.recent > limit.recent_events.max(1)
            || (self.recent_bytes > limit.recent_bytes && self.recent > 1)
        {
            let i = self.log.len() - self.recent;
            if let Some(Logged::Recent(e)) = self.log.get(i) {
                let compact = CompactEvent::of(e, &mut self.selections);
                self.recent_bytes -= compact.json.len();
                self.log[i] = Logged::Compact(compact);
            }
            self.recent -= 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, bytes: usize) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"x": "a".repeat(bytes)}})
    }

    fn configmaps() -> GroupResource {
        GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    fn small_store() -> Store {
        let mut st = Store::new(0, 1000);
        st.log_limits = LogLimits {
            events: 1000,
            bytes: 10_000,
            recent_events: 100,
            recent_bytes: 3_000,
        };
        st
    }

    #[test]
    fn the_log_is_bounded_by_bytes_as_well_as_entries() {
        let mut st = small_store();
        let gr = configmaps();
        for i in 0..200 {
            let key = (String::from("default"), format!("c{}", i % 3));
            st.put(&gr, key.clone(), cm(&key.1, 900), EventType::Modified);
        }
        let t = st.table(&gr);
        let total: usize = t.log.iter().map(Logged::json_len).sum();
        assert!(total <= 10_000, "{total} bytes kept");
        assert_eq!(total, t.log_bytes);
        assert!(t.log.len() >= 9, "as many as fit: {}", t.log.len());
        assert_eq!(t.log.back().unwrap().rv(), 200, "the newest is kept");
        assert_eq!(t.compacted_rv, t.log.front().unwrap().rv() - 1);
        // The recent window is bounded by bytes too: three ~1 KB entries at most.
        let recent = t
            .log
            .iter()
            .filter(|e| matches!(e, Logged::Recent(_)))
            .count();
        assert_eq!(recent, t.recent);
        assert!((1..=3).contains(&recent), "{recent} recent");
        assert!(
            t.log
                .iter()
                .skip(t.log.len() - recent)
                .all(|e| matches!(e, Logged::Recent(_))),
            "the recent ones are the newest"
        );
    }

    /// Only the version an Update-style write stored counts as tracked: a later write of any
    /// other kind stores another resourceVersion, and a removed object is forgotten.
    #[test]
    fn a_tracked_version_is_named_by_its_resource_version() {
        let mut st = small_store();
        let gr = configmaps();
        let key = (String::from("default"), "c".to_string());
        let rv = |o: &Arc<Value>| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let first = st.put(&gr, key.clone(), cm("c", 1), EventType::Added);
        assert!(!st.is_tracked(&gr, &key, &rv(&first)));
        st.set_tracked(&gr, key.clone(), &rv(&first));
        assert!(st.is_tracked(&gr, &key, &rv(&first)));
        let second = st.put(&gr, key.clone(), cm("c", 2), EventType::Modified);
        assert!(!st.is_tracked(&gr, &key, &rv(&second)));
        st.set_tracked(&gr, key.clone(), &rv(&second));
        st.remove(&gr, &key);
        assert!(!st.is_tracked(&gr, &key, &rv(&second)));
    }

    #[test]
    fn an_object_bigger_than_the_bound_is_still_kept_alone() {
        let mut st = small_store();
        let gr = configmaps();
        let key = (String::from("default"), "big".to_string());
        st.put(&gr, key.clone(), cm("big", 100), EventType::Added);
        st.put(&gr, key.clone(), cm("big", 50_000), EventType::Modified);
        let t = st.table(&gr);
        assert_eq!(t.log.len(), 1);
        assert_eq!(t.log[0].rv(), 2);
        assert_eq!(t.compacted_rv, 1);
        assert!(matches!(t.log[0], Logged::Recent(_)));
    }

    /// Compact changes of one object that select alike share one selection view; a change a
    /// selector can see (a label) gets its own, and a deleted object's view is let go.
    #[test]
    fn compact_changes_share_their_selection_views() {
        let mut st = Store::new(0, 1000);
        st.log_limits.recent_events = 1;
        let gr = configmaps();
        let key = (String::from("default"), "c".to_string());
        let labelled = |v: &str, bytes| {
            let mut o = cm("c", bytes);
            o["metadata"]["labels"] = json!({"v": v});
            o
        };
        st.put(&gr, key.clone(), labelled("1", 1), EventType::Added);
        st.put(&gr, key.clone(), labelled("1", 2), EventType::Modified);
        st.put(&gr, key.clone(), labelled("2", 2), EventType::Modified);
        st.put(&gr, key.clone(), labelled("2", 3), EventType::Modified);
        let t = st.table(&gr);
        let compact: Vec<&CompactEvent> = (t.log.iter())
            .filter_map(|e| match e {
                Logged::Compact(c) => Some(c),
                Logged::Recent(_) => None,
            })
            .collect();
        assert_eq!(compact.len(), 3);
        let (added, same, relabelled) = (compact[0], compact[1], compact[2]);
        assert!(Arc::ptr_eq(&added.selection, &same.selection));
        assert!(Arc::ptr_eq(
            &added.selection,
            same.prev_selection.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            &same.selection,
            relabelled.prev_selection.as_ref().unwrap()
        ));
        assert!(!Arc::ptr_eq(&same.selection, &relabelled.selection));
        assert_eq!(relabelled.selection["metadata"]["labels"]["v"], "2");
        assert_eq!(
            relabelled.prev_selection.as_ref().unwrap()["metadata"]["labels"]["v"],
            "1"
        );
        assert_eq!(t.selections.len(), 1);

        st.remove(&gr, &key);
        st.put(&gr, key.clone(), labelled("3", 1), EventType::Added);
        assert!(
            st.table(&gr).selections.is_empty(),
            "the deletion, once compact, forgets the object"
        );
    }

    /// An object whose deletion leaves the log before it is made compact (a big change pushes
    /// out several at once) is forgotten all the same once its last compact change leaves: the
    /// shared views never outlive the log.
    #[test]
    fn shared_selection_views_leave_with_the_log() {
        let mut st = small_store();
        st.log_limits.bytes = 5_000;
        let gr = configmaps();
        for i in 0..20 {
            let key = (String::from("default"), format!("c{i}"));
            st.put(&gr, key.clone(), cm(&key.1, 1_900), EventType::Added);
            st.put(&gr, key.clone(), cm(&key.1, 1_900), EventType::Modified);
            st.remove(&gr, &key);
            // Pushes out the compact change and the deletion, still recorded, together.
            let big = (String::from("default"), "big".to_string());
            st.put(&gr, big, cm("big", 4_500), EventType::Modified);
        }
        let t = st.table(&gr);
        let compact = (t.log.iter())
            .filter(|e| matches!(e, Logged::Compact(_)))
            .count();
        assert!(
            t.selections.len() <= compact,
            "{} views kept for {compact} compact changes",
            t.selections.len()
        );
    }
}
