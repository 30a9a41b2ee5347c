//! WATCH: a chunked stream of newline-delimited `{"type": ..., "object": ...}` events, resuming
//! from a resourceVersion out of the bounded per-resource log (410 Gone as an ERROR event when
//! it is too old, as the watch cache reports it), bookmarks on request, `sendInitialEvents`
//! streaming lists ending in an `k8s.io/initial-events-end` bookmark, and a server-side timeout.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::errors::ApiError;
use super::resources::ResourceDesc;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{EventType, Logged, LoggedEvent, Store, WatchSink};

/// Open watches and what the server holds for them (`ApiServer::watch_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Watches registered with the store.
    pub open: usize,
    /// Events queued for them and not yet turned into response bytes.
    pub queued: usize,
    /// Watches closed so far because they fell `watch_backlog` events behind.
    pub closed_lagging: u64,
}

/// How often a watch asking for bookmarks gets one: the cacher's `defaultBookmarkFrequency`.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// The cacher also sends a bookmark this long before a watch's deadline
/// (`cacheWatcher.nextBookmarkTime`), so that a client resuming after the timeout starts from
/// a version as recent as possible.
pub const BOOKMARK_BEFORE_TIMEOUT: Duration = Duration::from_secs(2);
/// The cacher files watchers in one-second buckets and polls them on a timer jittered by 25 %:
/// a bookmark due at X comes up to this much later. Here the delay is drawn per watch from
/// its starting resourceVersion, so runs on virtual time stay reproducible.
const BOOKMARK_JITTER_MS: u64 = 1000;
/// Without `timeoutSeconds` the real server picks 1800–3600 s; we use the lower bound.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

pub struct WatchParams {
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
    pub client: String,
    /// Serve stored core Events as events.k8s.io/v1.
    pub events_v1: bool,
    /// Send `PartialObjectMetadata` objects (metadata watches).
    pub metadata_only: bool,
    /// Send each object as a one-row `Table` (`as=Table`, as `kubectl get -w` asks), ages
    /// computed on this clock when the line is made.
    pub table: Option<gamedeploy_clock::SharedClock>,
    /// Hold each change this long before sending it (fault injection).
    pub delay: Duration,
}

struct Filter {
    desc: Arc<ResourceDesc>,
    events_v1: bool,
    metadata_only: bool,
    table: Option<TableLines>,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, o: &Value) -> bool {
        let ns_ok = !self.desc.namespaced
            || self.ns.as_deref().is_none_or(|n| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n)
            });
        ns_ok && self.labels.matches_obj(o) && self.fields.matches(o)
    }

    /// The line this watcher gets for a change, if any (see [`Filter::seen_as`]): the object
    /// whole reuses the change's one serialization.
    fn live_line(&self, ev: &LoggedEvent) -> Option<Bytes> {
        let kind = self.seen_as(ev.kind, &ev.obj, ev.prev.as_deref())?;
        Some(if self.whole() {
            line_json(kind.as_str(), ev.json())
        } else {
            self.line(kind, &ev.obj)
        })
    }

    /// What this watcher replays of a logged change, if anything: decided on the objects,
    /// or on the selection views of a compacted change (whose JSON is parsed only for a
    /// converted representation). Whole objects stay one shared serialization until sent.
    fn replay(&self, ev: &Logged) -> Option<Initial> {
        let (kind, json) = match ev {
            Logged::Recent(e) if !self.whole() => return self.live_line(e).map(Initial::Line),
            Logged::Recent(e) => (self.seen_as(e.kind, &e.obj, e.prev.as_deref())?, e.json()),
            Logged::Compact(c) => {
                let kind = self.seen_as(c.kind, &c.selection, c.prev_selection.as_deref())?;
                if !self.whole() {
                    return match serde_json::from_str(&c.json) {
                        Ok(obj) => Some(Initial::Line(self.line(kind, &obj))),
                        Err(e) => {
                            tracing::error!(rv = c.rv, "a logged change does not parse: {e}");
                            None
                        }
                    };
                }
                (kind, &c.json)
            }
        };
        Some(Initial::Json(kind, json.clone()))
    }

    /// The event type this watcher sees for a change, from whether the object (or its
    /// selection view) matches its selectors now and did before: objects entering or leaving
    /// the selection become ADDED or DELETED.
    fn seen_as(&self, kind: EventType, obj: &Value, prev: Option<&Value>) -> Option<EventType> {
        let now = self.matches(obj);
        let before = prev.is_some_and(|p| self.matches(p));
        match kind {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => before.then_some(EventType::Deleted),
            EventType::Modified => match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
        }
    }
}

/// A Table watch: its clock, and whether the column definitions went out already (the first
/// event's Table has them; later ones are printed with `NoHeaders`, as the watch encoder does).
struct TableLines {
    clock: gamedeploy_clock::SharedClock,
    headers_sent: std::sync::atomic::AtomicBool,
}

impl TableLines {
    fn table(&self, desc: &ResourceDesc, obj: &Value) -> Value {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        let now = self.clock.now().as_second();
        let mut t = crate::table::table(
            desc,
            std::slice::from_ref(obj),
            json!({"resourceVersion": rv}),
            now,
        );
        if self
            .headers_sent
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            t["columnDefinitions"] = Value::Null;
        }
        t
    }
}

impl Filter {
    /// Objects are sent as stored (not as metadata only, a Table or converted to
    /// events.k8s.io).
    fn whole(&self) -> bool {
        !self.metadata_only && !self.events_v1 && self.table.is_none()
    }

    fn line(&self, kind: EventType, obj: &Value) -> Bytes {
        if let Some(t) = &self.table {
            line(kind.as_str(), &t.table(&self.desc, obj))
        } else if self.metadata_only {
            line(kind.as_str(), &crate::table::partial_metadata(obj))
        } else if self.events_v1 {
            line(kind.as_str(), &super::convert::event_from_core(obj.clone()))
        } else {
            line(kind.as_str(), obj)
        }
    }
}

/// One event line, `type` first as kube-apiserver writes it (Go's `metav1.WatchEvent` field
/// order): a client can then decode the object straight from the stream instead of buffering
/// it to find the tag first (serde's adjacently tagged enums do, and lose raw values).
fn line(kind: &str, obj: &Value) -> Bytes {
    line_json(kind, &obj.to_string())
}

fn line_json(kind: &str, json: &str) -> Bytes {
    let mut s = String::with_capacity(json.len() + 32);
    s.push_str("{\"type\":\"");
    s.push_str(kind);
    s.push_str("\",\"object\":");
    s.push_str(json);
    s.push_str("}\n");
    Bytes::from(s)
}

/// When the cacher sends a watcher its next bookmark (`cacheWatcher.nextBookmarkTime`): a
/// minute from `now`, or [`BOOKMARK_BEFORE_TIMEOUT`] before the deadline if that is sooner;
/// none once that moment has passed.
fn next_bookmark(
    now: tokio::time::Instant,
    deadline: tokio::time::Instant,
    jitter: Duration,
) -> Option<tokio::time::Instant> {
    let pre_timeout = deadline.checked_sub(BOOKMARK_BEFORE_TIMEOUT)?;
    let at = (now + BOOKMARK_INTERVAL).min(pre_timeout);
    (at >= now).then_some(at + jitter)
}

/// A delay below [`BOOKMARK_JITTER_MS`] picked from `seed` (splitmix64).
fn jitter(seed: u64) -> Duration {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    Duration::from_millis((z ^ (z >> 31)) % BOOKMARK_JITTER_MS)
}

/// A BOOKMARK: an object of the watched kind (as this watcher sees objects) with only
/// `metadata.resourceVersion` set (no `creationTimestamp: null`: `omitzero` since Kubernetes
/// 1.34), plus the `k8s.io/initial-events-end` annotation at the end of a streaming list.
fn bookmark(filter: &Filter, rv: u64, initial_end: bool) -> Bytes {
    let mut md = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let (kind, api_version) = if filter.metadata_only {
        (
            "PartialObjectMetadata".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else if filter.events_v1 {
        ("Event".to_string(), "events.k8s.io/v1".to_string())
    } else {
        (filter.desc.kind.clone(), filter.desc.api_version())
    };
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": md}),
    )
}

/// What a watch sends before the changes that follow it, serialized as it is sent: the objects
/// of a list, or logged changes (shared JSON, or a converted representation's line).
enum Initial {
    Object(Arc<Value>),
    Json(EventType, Arc<str>),
    Line(Bytes),
}

/// Serialized lines a watch response may hold before its writer waits for the client: the
/// copies of objects live only here, so this is what bounds a slow watcher's memory.
const BODY_LINES: usize = 64;

/// Register a watch and return the receiving end of its body. The watcher gets at most
/// `backlog` events behind (in its queue, shared with the log) before the store closes it.
pub fn start(
    store: &mut Store,
    desc: Arc<ResourceDesc>,
    p: WatchParams,
    backlog: usize,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let (body_tx, body_rx) = mpsc::channel::<Bytes>(BODY_LINES);
    let filter = Filter {
        desc: desc.clone(),
        events_v1: p.events_v1,
        metadata_only: p.metadata_only,
        table: p.table.map(|clock| TableLines {
            clock,
            headers_sent: std::sync::atomic::AtomicBool::new(false),
        }),
        ns: p.ns.clone(),
        labels: p.labels,
        fields: p.fields,
    };
    let gr = desc.gr();
    let current_rv = store.rv;
    let table = store.table(&gr);
    let rv_param = p.resource_version.as_deref().unwrap_or("");
    let mut initial: Vec<Initial> = Vec::new();
    let from_scratch = rv_param.is_empty() || rv_param == "0" || p.send_initial_events;
    if from_scratch {
        for o in table.objects.values() {
            if filter.matches(o) {
                initial.push(Initial::Object(o.clone()));
            }
        }
    } else {
        let n = crate::registry::parse_resource_version(rv_param)?;
        if n < table.compacted_rv {
            // The watch cache answers 200 and then an ERROR event with a 410 Status.
            let err = ApiError::gone(format!(
                "too old resource version: {n} ({})",
                table.compacted_rv + 1
            ));
            let _ = body_tx.try_send(line("ERROR", &err.to_status()));
            return Ok(body_rx);
        }
        for ev in table.log.iter().filter(|e| e.rv() > n) {
            if let Some(i) = filter.replay(ev) {
                initial.push(i);
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Arc<LoggedEvent>>(backlog.max(1));
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    table.watchers.push(WatchSink {
        client: p.client.clone(),
        tx,
        _stop: stop_tx,
    });
    let mut rx = delayed(rx, p.delay);
    let bookmarks = p.bookmarks;
    let jitter = jitter(current_rv ^ ((table.watchers.len() as u64) << 32));
    let initial_end = p.send_initial_events;
    let timeout = p.timeout;
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rv = current_rv;
        for i in initial {
            let l = match i {
                Initial::Object(o) => filter.line(EventType::Added, &o),
                Initial::Json(kind, json) => line_json(kind.as_str(), &json),
                Initial::Line(l) => l,
            };
            if !send(&body_tx, &mut stop, deadline, l).await {
                return;
            }
        }
        if initial_end
            && !send(
                &body_tx,
                &mut stop,
                deadline,
                bookmark(&filter, current_rv, true),
            )
            .await
        {
            return;
        }
        let mut next = next_bookmark(tokio::time::Instant::now(), deadline, jitter);
        loop {
            let out = tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        last_rv = last_rv.max(ev.rv);
                        match filter.live_line(&ev) {
                            Some(l) => l,
                            None => continue,
                        }
                    }
                    None => return,
                },
                // Everything up to last_rv has been delivered in order.
                () = tokio::time::sleep_until(next.unwrap_or(deadline)), if bookmarks && next.is_some() => {
                    next = next_bookmark(tokio::time::Instant::now(), deadline, jitter);
                    bookmark(&filter, last_rv, false)
                }
                _ = body_tx.closed() => return,
                _ = &mut stop => return,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if !send(&body_tx, &mut stop, deadline, out).await {
                return;
            }
        }
    });
    Ok(body_rx)
}

/// `events`, each handed on `delay` after it arrived, in order. The store's bounded queue is
/// drained at once, so a delayed watcher is not closed as lagging; what it holds is bounded
/// by the changes of one `delay`.
fn delayed(
    mut events: mpsc::Receiver<Arc<LoggedEvent>>,
    delay: Duration,
) -> mpsc::Receiver<Arc<LoggedEvent>> {
    if delay.is_zero() {
        return events;
    }
    let (tx, out) = mpsc::channel(BODY_LINES);
    tokio::spawn(async move {
        let mut held: VecDeque<(tokio::time::Instant, Arc<LoggedEvent>)> = VecDeque::new();
        let mut open = true;
        while open || !held.is_empty() {
            let due = held.front().map(|(t, _)| *t);
            tokio::select! {
                ev = events.recv(), if open => match ev {
                    Some(ev) => held.push_back((tokio::time::Instant::now() + delay, ev)),
                    None => open = false,
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    if let Some((_, ev)) = held.pop_front()
                        && tx.send(ev).await.is_err()
                    {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    out
}

/// Hand one line to the response, waiting while the client is behind; false when the watch
/// is over (client gone, watch closed by the store, or timed out).
async fn send(
    body: &mpsc::Sender<Bytes>,
    stop: &mut oneshot::Receiver<()>,
    deadline: tokio::time::Instant,
    line: Bytes,
) -> bool {
    tokio::select! {
        sent = body.send(line) => sent.is_ok(),
        _ = stop => false,
        _ = tokio::time::sleep_until(deadline) => false,
    }
}

/// Close open watches (all, or one client's). Returns how many were closed.
pub fn drop_watches(store: &mut Store, client: Option<&str>) -> usize {
    let mut n = 0;
    for t in store.tables.values_mut() {
        t.watchers.retain(|w| {
            if client.is_none_or(|c| c == w.client) {
                if !w.tx.is_closed() {
                    n += 1;
                }
                false
            } else {
                true
            }
        });
    }
    n
}

/// Open watches and their queued events.
pub fn stats(store: &Store) -> WatchStats {
    let open = store
        .tables
        .values()
        .flat_map(|t| &t.watchers)
        .filter(|w| !w.tx.is_closed());
    let (mut count, mut queued) = (0, 0);
    for w in open {
        count += 1;
        queued += w.tx.max_capacity() - w.tx.capacity();
    }
    WatchStats {
        open: count,
        queued,
        closed_lagging: store.watches_closed_lagging,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::{FieldSelector, LabelSelector};
    use crate::store::{EventType, LogLimits};
    use serde_json::json;

    /// A watch resuming from a version the byte bound evicted gets 410 Gone, as one resuming
    /// from a version evicted by count does.
    #[tokio::test]
    async fn resuming_before_what_the_byte_bound_kept_is_410() {
        let mut st = Store::new(0, 1000);
        st.log_limits = LogLimits {
            events: 1000,
            bytes: 5_000,
            recent_events: 100,
            recent_bytes: 5_000,
        };
        let desc = st.registry.get("", "v1", "configmaps").unwrap();
        for i in 0..20 {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "default"},
                "data": {"x": "a".repeat(1000 + i)}});
            let kind = if i == 0 {
                EventType::Added
            } else {
                EventType::Modified
            };
            st.put(&desc.gr(), ("default".into(), "c".into()), obj, kind);
        }
        let params = |rv: &str| WatchParams {
            ns: Some("default".into()),
            labels: LabelSelector::parse("").unwrap(),
            fields: FieldSelector::parse("", &desc).unwrap(),
            resource_version: Some(rv.into()),
            bookmarks: false,
            send_initial_events: false,
            timeout: Duration::from_secs(1),
            client: "test".into(),
            events_v1: false,
            metadata_only: false,
            table: None,
            delay: Duration::ZERO,
        };
        let mut rx = start(&mut st, desc.clone(), params("1"), 10).unwrap();
        let line = rx.recv().await.unwrap();
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "ERROR");
        assert_eq!(v["object"]["code"], 410);
        // From the oldest version kept, the changes after it replay.
        let kept = st.table(&desc.gr()).compacted_rv + 1;
        let mut rx = start(&mut st, desc.clone(), params(&kept.to_string()), 10).unwrap();
        let line = rx.recv().await.unwrap();
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["type"], "MODIFIED", "{v}");
    }
}
