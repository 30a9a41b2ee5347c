//! `-o table`: what `kubectl get pods` and `kubectl get gamedeployment` would print as a
//! simulation goes, so it reads like the seed's kubectl session. The tables themselves are
//! `gamedeploy_inspect::kubectl`'s, shared with `gamedeploy status`; this adds the run's clock.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

pub use gamedeploy_inspect::kubectl::{
    gamedeployments_table, human_duration, pod_status, pods_table, render,
};

use super::scenario::format_duration;
use gamedeploy_core::api::StoredGameDeployment;

/// One notable moment of a run: both tables under a header with the virtual time since the
/// start (`elapsed`); `now` is the virtual wall clock the ages are computed against.
pub fn snapshot(
    elapsed: Duration,
    now: Timestamp,
    pods: &[Pod],
    gds: &[StoredGameDeployment],
) -> String {
    let t = format_duration(elapsed);
    format!(
        "[t={t}] $ kubectl get pods\n{}\n[t={t}] $ kubectl get gamedeployment\n{}",
        pods_table(pods, now),
        gamedeployments_table(gds, now)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    #[test]
    fn snapshots_show_the_virtual_time() {
        let s = snapshot(Duration::from_secs(90), now(), &[], &[]);
        assert!(
            s.starts_with("[t=1m30s] $ kubectl get pods\nNo resources found"),
            "{s}"
        );
        assert!(
            s.contains("\n[t=1m30s] $ kubectl get gamedeployment\n"),
            "{s}"
        );
    }
}
