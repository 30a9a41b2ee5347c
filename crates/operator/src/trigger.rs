//! What woke a reconcile, for its span. kube-runtime knows why it runs a reconcile (its
//! `ReconcileReason`) but keeps it from the reconciler on purpose: it is only a field of its own
//! `reconciling object` span, and it keeps the first of the reasons it merged. So each
//! controller notes the causes it can see itself: the watch events it maps to an object, and
//! the requeues its reconciles and error policies ask for. A reconcile takes what was noted
//! since the one before it started; kube merges the requests for one object, so one reconcile
//! may have several causes.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// One cause of a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Wake {
    /// The object itself changed in the watch (spec, status or metadata; the operator's own
    /// status write included).
    Changed = 1,
    /// A pod it owns, or would adopt, changed.
    Pod = 2,
    /// A ControllerRevision or HookRun it owns changed.
    Owned = 4,
    /// Its own requeue came due: a timer of the plan, a status write held back, a wait for the
    /// watch.
    Requeue = 8,
    /// A retry after a failed write or a failed reconcile.
    Retry = 16,
}

impl Wake {
    const ALL: [(Wake, &'static str); 5] = [
        (Wake::Changed, "changed"),
        (Wake::Pod, "pod"),
        (Wake::Owned, "owned"),
        (Wake::Requeue, "requeue"),
        (Wake::Retry, "retry"),
    ];
}

/// What woke one reconcile: its causes joined by `+` (`pod+requeue`), or `unknown` when none
/// was seen (a reconcile called directly, as benchmarks do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakes(u8);

impl Wakes {
    pub fn has(self, cause: Wake) -> bool {
        self.0 & cause as u8 != 0
    }
}

impl fmt::Display for Wakes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("unknown");
        }
        let mut first = true;
        for (cause, name) in Wake::ALL {
            if self.has(cause) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The causes noted for one object since its last reconcile started.
#[derive(Clone, Copy, Debug, Default)]
pub struct Noted {
    seen: Wakes,
    /// The requeue the last reconcile or error policy asked for: when it comes due, and why.
    requeue: Option<(Instant, Wake)>,
}

impl Noted {
    pub fn note(&mut self, cause: Wake) {
        self.seen.0 |= cause as u8;
    }

    /// The reconcile asked to run again `after` (`None`: only on a change); `cause` is
    /// [`Wake::Requeue`] or [`Wake::Retry`].
    pub fn requeued(&mut self, after: Option<Duration>, cause: Wake, now: Instant) {
        self.requeue = after.map(|after| (now + after, cause));
    }

    /// What woke the reconcile starting `now`, and a fresh start for the next one. A requeue
    /// counts when it is due, or when nothing else was seen (only its timer can have woken
    /// the reconcile then); kube drops a pending requeue once the object is reconciled earlier.
    pub fn take(&mut self, now: Instant) -> Wakes {
        let mut trigger = self.seen;
        if let Some((due, cause)) = self.requeue
            && (due <= now || trigger.0 == 0)
        {
            trigger.0 |= cause as u8;
        }
        *self = Noted::default();
        trigger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_names_every_cause_seen_since_the_last_reconcile() {
        let now = Instant::now();
        let mut noted = Noted::default();
        assert_eq!(noted.take(now).to_string(), "unknown");
        noted.note(Wake::Pod);
        noted.note(Wake::Changed);
        noted.note(Wake::Pod);
        assert_eq!(noted.take(now).to_string(), "changed+pod");
        assert_eq!(noted.take(now), Wakes::default(), "taken once");
    }

    #[test]
    fn a_requeue_counts_once_due_or_when_nothing_else_woke_the_reconcile() {
        let now = Instant::now();
        let mut noted = Noted::default();
        noted.requeued(Some(Duration::from_secs(5)), Wake::Requeue, now);
        assert_eq!(noted.take(now).to_string(), "requeue");
        noted.requeued(Some(Duration::from_secs(5)), Wake::Retry, now);
        noted.note(Wake::Owned);
        assert_eq!(noted.take(now).to_string(), "owned", "not due yet");
        noted.requeued(Some(Duration::from_secs(5)), Wake::Retry, now);
        noted.note(Wake::Owned);
        let later = now + Duration::from_secs(5);
        assert_eq!(noted.take(later).to_string(), "owned+retry");
        noted.requeued(None, Wake::Requeue, now);
        assert_eq!(noted.take(later).to_string(), "unknown");
    }
}
