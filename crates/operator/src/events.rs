//! Events (events.k8s.io/v1), stamped with the injected clock so simulated runs show virtual
//! times. A repeat of the same event on the same object within ten minutes updates its
//! `series` instead of creating a new object, like kube's own recorder.
//!
//! Why not kube-runtime's `Recorder`: it reads the system clock for `eventTime`, the series
//! and the name, so a simulation on virtual time would show wall-clock times and could not be
//! replayed. Its series handling is the same as ours, and like its cache ours forgets series
//! that ended more than the window ago.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::metrics::Metrics;
use crate::write_gate::WriteGate;
use gamedeploy_clock::SharedClock;

/// The `reportingController` of every event.
pub const REPORTER: &str = "gamedeploy";

const SERIES_WINDOW: SignedDuration = SignedDuration::from_secs(600);

/// Names tried when an event's name is taken (another instance of the operator named one at
/// the same instant with the same sequence number: a restart on virtual time).
const NAME_ATTEMPTS: u32 = 8;

/// Longest object name kept in an event name, so the whole fits the 253 characters of a name.
const MAX_OBJECT_IN_NAME: usize = 200;

/// Emits events.
pub struct Events {
    client: kube::Client,
    clock: SharedClock,
    instance: String,
    seen: Mutex<SeenEvents>,
    /// Makes names unique within this emitter: on virtual time every event of one reconcile
    /// shares an instant, so the time alone (client-go's naming) collides.
    sequence: AtomicU64,
    /// Tells this emitter's names from another instance's at the same instant.
    tag: u16,
    /// Closed once leadership is lost: an event is a write like any other.
    gate: WriteGate,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

type EventKey = (String, String, String);

/// Events recently emitted, by (object uid, reason, note), to continue their series.
#[derive(Default)]
struct SeenEvents {
    by_key: HashMap<EventKey, Seen>,
    /// Size after the last sweep: the next sweep comes when the map has doubled, so sweeping
    /// costs O(1) per event while the map holds at most twice the live series.
    swept_at: usize,
}

impl SeenEvents {
    fn insert(&mut self, key: EventKey, seen: Seen) {
        let now = seen.last;
        self.by_key.insert(key, seen);
        if self.by_key.len() > (2 * self.swept_at).max(1024) {
            self.forget_expired(now);
        }
    }

    /// Drops series whose last event is older than the window: a repeat now starts a new
    /// event anyway, so remembering them only grows the map (one entry per pod and message).
    fn forget_expired(&mut self, now: Timestamp) {
        self.by_key
            .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
        self.swept_at = self.by_key.len();
    }
}

impl Events {
    pub fn new(client: kube::Client, clock: SharedClock, instance: impl Into<String>) -> Self {
        let instance: String = instance.into();
        // FNV-1a: stable across runs and builds, unlike std's hasher.
        let hash = instance.bytes().fold(0x811c9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Events {
            client,
            clock,
            instance,
            seen: Mutex::default(),
            sequence: AtomicU64::new(0),
            tag: (hash ^ (hash >> 16)) as u16,
            gate: WriteGate::default(),
            metrics: Arc::default(),
        }
    }

    /// The same emitter, writing only while `gate` is open and counting its writes.
    pub fn guarded(self, gate: WriteGate, metrics: Arc<Metrics>) -> Self {
        Events {
            gate,
            metrics,
            ..self
        }
    }

    /// Records an event on `regarding`. Failures are logged, never fatal: an event is a
    /// report, not a checkpoint.
    pub async fn emit(&self, regarding: &ObjectReference, warning: bool, reason: &str, note: &str) {
        if !self.gate.is_open() {
            return;
        }
        let now = self.clock.now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            reason.to_string(),
            note.to_string(),
        );
        let previous = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.by_key.get(&key).cloned());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let result = match previous {
            Some(p) if now.duration_since(p.last) < SERIES_WINDOW => {
                let series = EventSeries {
                    count: p.count + 1,
                    last_observed_time: MicroTime(now),
                };
                let patch = serde_json::json!({ "series": series });
                self.metrics.write_sent("patch", "events");
                let r = api
                    .patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ());
                self.remember(
                    key,
                    Seen {
                        count: p.count + 1,
                        last: now,
                        ..p
                    },
                );
                r
            }
            _ => {
                let object = regarding.name.clone().unwrap_or_default();
                let mut event = Event {
                    metadata: ObjectMeta {
                        name: Some(self.name(&object, now)),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    },
                    event_time: Some(MicroTime(now)),
                    action: Some(reason.to_string()),
                    reason: Some(reason.to_string()),
                    note: Some(note_within_limit(note).to_string()),
                    regarding: Some(regarding.clone()),
                    reporting_controller: Some(REPORTER.to_string()),
                    reporting_instance: Some(self.instance.clone()),
                    type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
                    ..Default::default()
                };
                let mut attempt = 1;
                let r = loop {
                    if !self.gate.is_open() {
                        return;
                    }
                    self.metrics.write_sent("create", "events");
                    match api.create(&PostParams::default(), &event).await {
                        Err(kube::Error::Api(e)) if e.code == 409 && attempt < NAME_ATTEMPTS => {
                            attempt += 1;
                            event.metadata.name = Some(self.name(&object, now));
                        }
                        other => break other.map(|_| ()),
                    }
                };
                self.remember(
                    key,
                    Seen {
                        name: event.metadata.name.unwrap_or_default(),
                        count: 1,
                        last: now,
                    },
                );
                r
            }
        };
        if let Err(e) = result {
            tracing::warn!(reason, error = %crate::describe(&e), "could not record event");
        }
    }

    fn remember(&self, key: EventKey, seen: Seen) {
        if let Ok(mut s) = self.seen.lock() {
            s.insert(key, seen);
        }
    }

    /// `<object>.<time in ns, hex>` as client-go names events, then this emitter's tag and a
    /// sequence number, so events of one instant do not collide.
    fn name(&self, object: &str, now: Timestamp) -> String {
        let object = match object.char_indices().nth(MAX_OBJECT_IN_NAME) {
            // A name's labels end in a letter or digit.
            Some((cut, _)) => object[..cut].trim_end_matches(['.', '-']),
            None => object,
        };
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!(
            "{object}.{:x}.{:04x}{n:x}",
            now.as_nanosecond().max(0),
            self.tag
        )
    }
}

/// kube-apiserver refuses an `events.k8s.io/v1` note over 1 KiB, counted in bytes: the note is
/// cut there, on a character boundary (cutting 1,024 characters let a non-ASCII note through
/// at up to 4 KiB, and the event was refused).
fn note_within_limit(note: &str) -> &str {
    const NOTE_MAX_BYTES: usize = 1024;
    let mut end = note.len().min(NOTE_MAX_BYTES);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    &note[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_cut_to_1_kib_on_a_character_boundary() {
        let note = "é".repeat(600);
        let cut = note_within_limit(&note);
        assert_eq!(cut.len(), 1024);
        assert_eq!(note_within_limit("short"), "short");
        let odd = format!("a{}", "é".repeat(600));
        assert_eq!(note_within_limit(&odd).len(), 1023);
    }
    use embedded_apiserver::ApiServer;
    use gamedeploy_clock::TokioClock;
    use kube::api::ListParams;

    fn regarding(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn started() -> (ApiServer, Events) {
        let clock: SharedClock = Arc::new(TokioClock::starting_at(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ));
        let server = ApiServer::new(clock.clone());
        let events = Events::new(server.client_as("operator"), clock, "operator-a");
        (server, events)
    }

    fn creates(server: &ApiServer) -> u64 {
        server
            .request_counts()
            .iter()
            .filter(|r| r.client == "operator" && r.verb == "create" && r.resource == "events")
            .map(|r| r.count)
            .sum()
    }

    /// On virtual time a whole rollout can share one instant; names from the clock alone
    /// collided and each event retried up to 64 names.
    #[tokio::test(start_paused = true)]
    async fn events_of_one_instant_are_created_once_each() {
        let (server, events) = started();
        for i in 0..300 {
            let note = format!("created pod {i}");
            events
                .emit(&regarding("gd"), false, "SuccessfulCreate", &note)
                .await;
        }
        let api: Api<Event> = Api::namespaced(server.client_as("test"), "default");
        let stored = api.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(stored.len(), 300);
        assert_eq!(creates(&server), 300);
        let another = Events::new(server.client_as("operator"), events.clock.clone(), "b");
        another
            .emit(&regarding("gd"), false, "SuccessfulCreate", "x")
            .await;
        assert_eq!(
            api.list(&ListParams::default()).await.unwrap().items.len(),
            301
        );
    }

    /// One entry per pod and message used to stay for ever.
    #[tokio::test(start_paused = true)]
    async fn series_older_than_the_window_are_forgotten() {
        let (_server, events) = started();
        for i in 0..2000 {
            let pod = format!("pod-{i}");
            events.emit(&regarding(&pod), false, "Ready", "ready").await;
        }
        tokio::time::advance(std::time::Duration::from_secs(601)).await;
        for i in 0..1100 {
            let pod = format!("late-{i}");
            events.emit(&regarding(&pod), false, "Ready", "ready").await;
        }
        let kept = events.seen.lock().unwrap().by_key.len();
        assert!(kept <= 1100 + 1, "{kept} series remembered");
    }

    #[test]
    fn names_fit_and_end_in_a_letter_or_digit() {
        let long = format!("{}.-tail", "a".repeat(199));
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let clock: SharedClock = Arc::new(TokioClock::starting_at(now));
        let events = Events::new(ApiServer::new(clock.clone()).client(), clock, "x");
        let name = events.name(&long, now);
        assert!(name.len() <= 253, "{name}");
        assert!(
            name.starts_with(&"a".repeat(199)) && !name.contains(".-"),
            "{name}"
        );
        assert_ne!(events.name("gd", now), events.name("gd", now));
    }
}
