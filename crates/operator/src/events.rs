//! Events (events.k8s.io/v1), stamped with the injected clock so simulated runs show virtual
//! times. A repeat of the same event on the same object within ten minutes updates its
//! `series` instead of creating a new object, like kube's own recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::leader::Gate;
use crate::metrics::Metrics;
use gamedeploy_clock::SharedClock;

/// The `reportingController` of every event.
pub const REPORTER: &str = "gamedeploy";

const SERIES_WINDOW: SignedDuration = SignedDuration::from_secs(600);

/// Suffixes tried when an event name is taken.
const NAME_ATTEMPTS: u32 = 64;

/// Emits events.
pub struct Events {
    client: kube::Client,
    clock: SharedClock,
    instance: String,
    seen: Mutex<HashMap<(String, String, String), Seen>>,
    /// Closed once leadership is lost: an event is a write like any other.
    gate: Gate,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

impl Events {
    pub fn new(client: kube::Client, clock: SharedClock, instance: impl Into<String>) -> Self {
        Events {
            client,
            clock,
            instance: instance.into(),
            seen: Mutex::new(HashMap::new()),
            gate: Gate::default(),
            metrics: Arc::default(),
        }
    }

    /// The same emitter, writing only while `gate` is open and counting its writes.
    pub fn guarded(self, gate: Gate, metrics: Arc<Metrics>) -> Self {
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
        let previous = self.seen.lock().ok().and_then(|s| s.get(&key).cloned());
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
                let base = format!("{object}.{:x}", now.as_nanosecond());
                let mut event = Event {
                    metadata: ObjectMeta {
                        name: Some(base.clone()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    },
                    event_time: Some(MicroTime(now)),
                    action: Some(reason.to_string()),
                    reason: Some(reason.to_string()),
                    note: Some(note.chars().take(1024).collect()),
                    regarding: Some(regarding.clone()),
                    reporting_controller: Some(REPORTER.to_string()),
                    reporting_instance: Some(self.instance.clone()),
                    type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
                    ..Default::default()
                };
                // Names come from the clock, as client-go's do; on virtual time several events
                // of one reconcile share an instant, so a taken name gets a numbered suffix.
                let mut attempt = 0;
                let r = loop {
                    if !self.gate.is_open() {
                        return;
                    }
                    self.metrics.write_sent("create", "events");
                    match api.create(&PostParams::default(), &event).await {
                        Err(kube::Error::Api(e)) if e.code == 409 && attempt < NAME_ATTEMPTS => {
                            attempt += 1;
                            event.metadata.name = Some(format!("{base}.{attempt}"));
                        }
                        other => break other.map(|_| ()),
                    }
                };
                self.remember(
                    key,
                    Seen {
                        name: event.metadata.name.unwrap_or(base),
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

    fn remember(&self, key: (String, String, String), seen: Seen) {
        if let Ok(mut s) = self.seen.lock() {
            s.insert(key, seen);
        }
    }
}
