//! What the GameDeployment controller remembers of each GameDeployment between its reconciles,
//! in one map keyed by uid: dropped with the GameDeployment.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::trigger::{Noted, Wake, Wakes};

/// The shortest time between the starts of two reconciles of one GameDeployment: the watch
/// events of one burst (a kubelet reporting hundreds of pods at once; every event of one
/// virtual instant in a simulation) are planned together, once, instead of once per event.
/// Short next to a pod's own start-up, so a pod turning Ready still reaches the next pod's
/// update within it.
pub const MIN_RECONCILE_INTERVAL: Duration = Duration::from_millis(10);
/// How long a reconcile waits for the watch to show the operator's own status write before it
/// plans without it (the event normally comes within milliseconds and triggers it sooner).
pub const STATUS_WATCH_WAIT: Duration = Duration::from_secs(5);

/// What is remembered of one GameDeployment.
#[derive(Debug, Default)]
struct Memory {
    /// When its last reconcile started (see [`MIN_RECONCILE_INTERVAL`]).
    last_start: Option<Timestamp>,
    /// When this operator last wrote its status: status writes that only move counts are
    /// coalesced for a second after it.
    status_written: Option<Timestamp>,
    /// The version its last status write replaced, and when: while the cache still shows that
    /// version, a reconcile would decide again from the status before the write (and repeat
    /// its events), so it waits for the watch instead.
    status_over: Option<(String, Timestamp)>,
    /// Consecutive reconciles with failed writes.
    failing: u32,
    /// What may wake its next reconcile.
    noted: Noted,
}

/// Every GameDeployment's [`Memory`], by uid.
#[derive(Debug, Default)]
pub struct Memories(Mutex<HashMap<String, Memory>>);

impl Memories {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Memory>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a cause of `uid`'s next reconcile. Only a GameDeployment the watch has shown
    /// ([`Wake::Changed`]) gets an entry: pod and owned-object events about one that is gone
    /// leave nothing behind.
    pub fn note(&self, uid: &str, cause: Wake) {
        let mut all = self.lock();
        let memory = match cause {
            Wake::Changed => Some(all.entry(uid.to_string()).or_default()),
            _ => all.get_mut(uid),
        };
        if let Some(m) = memory {
            m.noted.note(cause);
        }
    }

    /// What woke `uid`'s reconcile starting now.
    pub fn trigger(&self, uid: &str, now: tokio::time::Instant) -> Wakes {
        self.lock()
            .get_mut(uid)
            .map(|m| m.noted.take(now))
            .unwrap_or_default()
    }

    /// `uid`'s reconcile asked to run again `after` (`None`: on a change only).
    pub fn requeued(&self, uid: &str, after: Option<Duration>, cause: Wake) {
        if let Some(m) = self.lock().get_mut(uid) {
            m.noted.requeued(after, cause, tokio::time::Instant::now());
        }
    }

    /// When `uid` may be reconciled, if not yet (its last reconcile started less than
    /// [`MIN_RECONCILE_INTERVAL`] ago); otherwise remembers `now` as its start.
    pub fn too_soon(&self, uid: &str, now: Timestamp) -> Option<Timestamp> {
        let mut all = self.lock();
        let m = all.entry(uid.to_string()).or_default();
        let interval = SignedDuration::try_from(MIN_RECONCILE_INTERVAL).unwrap_or_default();
        match m.last_start.and_then(|t| t.checked_add(interval).ok()) {
            Some(due) if now < due => Some(due),
            _ => {
                m.last_start = Some(now);
                None
            }
        }
    }

    /// Whether the cache still shows the version `uid`'s last status write replaced, less than
    /// [`STATUS_WATCH_WAIT`] after the write; once it shows another, or the wait is over, that
    /// write is forgotten.
    pub fn status_unseen(&self, uid: &str, cached: Option<&str>, now: Timestamp) -> bool {
        let mut all = self.lock();
        let Some(m) = all.get_mut(uid) else {
            return false;
        };
        let wait = SignedDuration::try_from(STATUS_WATCH_WAIT).unwrap_or_default();
        match &m.status_over {
            Some((over, at))
                if Some(over.as_str()) == cached
                    && at.checked_add(wait).is_ok_and(|due| now < due) =>
            {
                true
            }
            _ => {
                m.status_over = None;
                false
            }
        }
    }

    /// When this operator last wrote `uid`'s status.
    pub fn status_written(&self, uid: &str) -> Option<Timestamp> {
        self.lock().get(uid).and_then(|m| m.status_written)
    }

    /// `uid`'s status was written at `now`, over its version `over` if the server answered
    /// with a newer one.
    pub fn wrote_status(&self, uid: &str, now: Timestamp, over: Option<String>) {
        let mut all = self.lock();
        let m = all.entry(uid.to_string()).or_default();
        m.status_written = Some(now);
        if let Some(over) = over {
            m.status_over = Some((over, now));
        }
    }

    /// One more reconcile of `uid` with failed writes: how many came before it.
    pub fn failed(&self, uid: &str) -> u32 {
        let mut all = self.lock();
        let m = all.entry(uid.to_string()).or_default();
        let before = m.failing;
        m.failing = m.failing.saturating_add(1);
        before
    }

    /// A reconcile of `uid` whose writes all went through.
    pub fn succeeded(&self, uid: &str) {
        if let Some(m) = self.lock().get_mut(uid) {
            m.failing = 0;
        }
    }

    /// Drops everything remembered of `uid`.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }
}
