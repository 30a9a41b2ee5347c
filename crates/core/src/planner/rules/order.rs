//! The order in which pods are updated (and, later, deleted): the original sorts by name, then
//! stable-sorts by Kubernetes' `ActivePods` order (k8s 1.20 `controller.ActivePods`), so the
//! least established pods come first and the most established last — which is why `partition`
//! keeps the *last* candidates on the old revision.

use std::cmp::Ordering;

use crate::inplace::PodView;

fn phase_rank(phase: Option<&str>) -> u8 {
    match phase {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        // Succeeded, Failed and unset: the upstream order ranks them with Pending.
        _ => 0,
    }
}

/// `Less` when `a` is less established than `b` (to be updated or deleted first).
pub fn active_pods(a: &PodView, b: &PodView) -> Ordering {
    let unscheduled = |p: &PodView| p.node_name.as_deref().is_none_or(str::is_empty);
    // 1. Unscheduled before scheduled.
    (!unscheduled(a))
        .cmp(&!unscheduled(b))
        // 2. Pending < Unknown < Running.
        .then_with(|| phase_rank(a.phase.as_deref()).cmp(&phase_rank(b.phase.as_deref())))
        // 3. Not ready before ready.
        .then_with(|| a.ready.cmp(&b.ready))
        // 4. Both ready: ready for less time first (an unknown time counts as newest).
        .then_with(|| {
            if a.ready && b.ready {
                newest_first(a.ready_since, b.ready_since)
            } else {
                Ordering::Equal
            }
        })
        // 5. More restarts first.
        .then_with(|| b.max_restarts().cmp(&a.max_restarts()))
        // 6. Newer first.
        .then_with(|| newest_first(a.created_at, b.created_at))
}

/// Upstream's `afterOrZero`: the later time first, and a missing time before any time.
fn newest_first(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.cmp(&x),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Sorts pods the way the original does: by name, then stably by [`active_pods`].
pub fn sort_active(pods: &mut [&PodView]) {
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods.sort_by(|a, b| active_pods(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inplace::ContainerView;

    fn pod(name: &str) -> PodView {
        PodView {
            name: name.into(),
            node_name: Some("node-1".into()),
            phase: Some("Running".into()),
            ready: true,
            ready_since: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            created_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        }
    }

    fn sorted(mut pods: Vec<PodView>) -> Vec<String> {
        let mut refs: Vec<&PodView> = pods.iter_mut().map(|p| &*p).collect();
        sort_active(&mut refs);
        refs.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn equal_pods_keep_name_order() {
        assert_eq!(sorted(vec![pod("c"), pod("a"), pod("b")]), ["a", "b", "c"]);
    }

    #[test]
    fn each_rule_in_turn() {
        let mut unscheduled = pod("z-unscheduled");
        unscheduled.node_name = None;
        let mut pending = pod("y-pending");
        pending.phase = Some("Pending".into());
        let mut unready = pod("x-unready");
        unready.ready = false;
        let mut recently_ready = pod("w-recent");
        recently_ready.ready_since = Some("2026-01-01T01:00:00Z".parse().unwrap());
        let mut restarted = pod("v-restarted");
        restarted.containers.insert(
            "c".into(),
            ContainerView {
                restart_count: 3,
                ..Default::default()
            },
        );
        let mut newer = pod("u-newer");
        newer.created_at = Some("2026-01-02T00:00:00Z".parse().unwrap());
        let oldest = pod("a-established");
        let order = sorted(vec![
            oldest,
            newer,
            restarted,
            recently_ready,
            unready,
            pending,
            unscheduled,
        ]);
        assert_eq!(
            order,
            [
                "z-unscheduled",
                "y-pending",
                "x-unready",
                "w-recent",
                "v-restarted",
                "u-newer",
                "a-established"
            ]
        );
    }
}
