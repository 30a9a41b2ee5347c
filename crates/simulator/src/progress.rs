//! A progress line for long simulations: how far virtual time has got and how many pods are
//! updated, for a person watching a terminal. The CLI shows it on stderr only when stderr is
//! a terminal, so captured output (tests, pipes) never sees it.

use std::time::{Duration, Instant};

use super::scenario::format_duration;

/// Where a run has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time since the start.
    pub elapsed: Duration,
    /// `status.updatedReplicas`, summed over GameDeployments.
    pub updated: i64,
    /// `spec.replicas`, summed over GameDeployments.
    pub replicas: i64,
}

impl Progress {
    /// One line, e.g. `t=1m30s: 412/1000 pods updated`.
    pub fn line(&self) -> String {
        format!(
            "t={}: {}/{} pods updated",
            format_duration(self.elapsed),
            self.updated,
            self.replicas
        )
    }
}

/// Lets something through at most once per `every` of real time, the first time only after
/// one `every` has passed: a run that ends sooner shows nothing.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Instant,
}

impl Throttle {
    pub fn new(every: Duration, start: Instant) -> Self {
        Throttle { every, last: start }
    }

    /// Whether to show something at `now`; if so, the next is due one `every` later.
    pub fn due(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.last) < self.every {
            return false;
        }
        self.last = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_virtual_time_and_pods_updated() {
        let p = Progress {
            elapsed: Duration::from_secs(90),
            updated: 412,
            replicas: 1000,
        };
        assert_eq!(p.line(), "t=1m30s: 412/1000 pods updated");
    }

    #[test]
    fn throttle_lets_through_once_per_period_and_not_at_the_start() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut t = Throttle::new(Duration::from_secs(1), start);
        let shown: Vec<u64> = [0, 500, 999, 1000, 1500, 1999, 2100, 2200, 5000]
            .into_iter()
            .filter(|ms| t.due(at(*ms)))
            .collect();
        assert_eq!(shown, [1000, 2100, 5000]);
    }
}
