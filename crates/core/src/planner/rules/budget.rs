//! Which pods move to the update revision now: `partition` decides which pods may ever move,
//! `maxUnavailable` how many may be out of service at once. Pure: the controller passes what it
//! observed and gets names back; the in-place state machine does the rest per pod.

use jiff::{SignedDuration, Timestamp};

use super::limits::Limits;
use super::order::ActiveKey;
use crate::inplace::PodView;

/// Which pods move to the update revision, and which of them may start now, by their place in
/// the pods given: the planner reads each pod's by index, with no lookup by name (sets of
/// 10,000 names compared prefix first were a tenth of a rollout's plan).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutTargets {
    /// The pods that should run the update revision, in update order, including those already
    /// being moved. Pods with a machine that are *not* listed are retargeted to their own
    /// revision (their update is called off).
    pub targets: Vec<usize>,
    /// Per pod given (empty when none is chosen): whether it is a target, and may start now.
    pub chosen: Vec<Chosen>,
}

/// What [`rollout_targets`] decided for one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chosen {
    /// The pod should run the update revision.
    pub target: bool,
    /// Its update may start now.
    pub may_start: bool,
}

impl RolloutTargets {
    /// What was decided for the `i`-th pod.
    pub fn of(&self, i: usize) -> Chosen {
        self.chosen.get(i).copied().unwrap_or_default()
    }

    /// Lets no update start (machines already running still advance).
    pub fn start_none(&mut self) {
        self.chosen.iter_mut().for_each(|c| c.may_start = false);
    }
}

/// When a pod must have turned Ready to count as available: `now - minReadySeconds`, worked
/// out once per pass rather than once per pod (three passes over 10,000 pods each did the
/// checked timestamp addition per pod: 4 % of a no-op plan's instructions, more of its time).
#[derive(Debug, Clone, Copy)]
pub struct ReadyBy {
    /// `None` when `now - minReadySeconds` is out of range: then no pod has been Ready long
    /// enough.
    cutoff: Option<Timestamp>,
    /// `minReadySeconds` is 0: a Ready pod with no transition time counts.
    no_wait: bool,
}

impl ReadyBy {
    pub fn new(min_ready_seconds: i64, now: Timestamp) -> Self {
        ReadyBy {
            cutoff: now
                .checked_sub(SignedDuration::from_secs(min_ready_seconds))
                .ok(),
            no_wait: min_ready_seconds == 0,
        }
    }

    /// Whether a pod Ready since `since` (`None`: no transition time) has been Ready long
    /// enough.
    pub fn covers(self, since: Option<Timestamp>) -> bool {
        match since {
            Some(since) => self.cutoff.is_some_and(|c| since <= c),
            None => self.no_wait,
        }
    }
}

/// Whether a pod counts as available for the update budget: Running, Ready since `by`
/// (`minReadySeconds`), and not held unready by an in-place update.
pub fn is_available_by(pod: &PodView, by: ReadyBy) -> bool {
    pod.phase.as_deref() == Some("Running")
        && pod.ready
        && by.covers(pod.ready_since)
        && !pod.is_marked_unready()
        && !pod.deleting
}

/// Which pods move to `update_revision`, and which may start now. `in_flight[i]` says whether
/// the `i`-th pod's in-place machine is working towards the update revision: such pods keep
/// their place and their share of the budget even while they still serve (a pod waiting for its
/// hook will go unready without asking again).
pub fn rollout_targets(
    pods: &[&PodView],
    update_revision: &str,
    in_flight: &[bool],
    limits: Limits,
    now: Timestamp,
) -> RolloutTargets {
    let moving = |i: usize| in_flight.get(i).copied().unwrap_or(false);
    // One pass: the live pods, those already updated, and the candidates (the others).
    let (mut live, mut updated) = (0i32, 0i32);
    let mut candidates: Vec<usize> = Vec::new();
    for (i, p) in pods.iter().enumerate().filter(|(_, p)| !p.deleting) {
        live += 1;
        if p.revision.as_deref() == Some(update_revision) {
            updated += 1;
        } else {
            candidates.push(i);
        }
    }
    let partition = limits.partition.clamp(0, limits.replicas.max(0));
    let room = (limits.replicas - partition - updated).max(0);
    let movable = (candidates.len() as i32 - partition).max(0);
    let count = room.min(movable) as usize;
    if count == 0 {
        // Nothing moves (a settled GameDeployment): no order to work out, no budget to spend.
        return RolloutTargets::default();
    }
    // In-flight pods first, so a pod being updated is never swapped for another mid-way; then
    // in the original's order (`order::active_pods`, ties by name). One key per pod, worked
    // out once.
    candidates.sort_by_cached_key(|&i| (!moving(i), ActiveKey::of(pods[i]), &pods[i].name));
    candidates.truncate(count);

    let budget = limits.max_unavailable.max(0) + (live - limits.replicas).max(0);
    let ready_by = ReadyBy::new(limits.min_ready_seconds, now);
    let counts_unavailable = |i: usize| !is_available_by(pods[i], ready_by) || moving(i);
    let mut unavailable = (0..pods.len())
        .filter(|&i| !pods[i].deleting && counts_unavailable(i))
        .count() as i32;
    let mut chosen = vec![Chosen::default(); pods.len()];
    for &i in &candidates {
        let may_start = if counts_unavailable(i) {
            // Already out of service (or already counted): moving it costs nothing more.
            true
        } else if unavailable < budget {
            unavailable += 1;
            true
        } else {
            false
        };
        chosen[i] = Chosen {
            target: true,
            may_start,
        };
    }
    RolloutTargets {
        targets: candidates,
        chosen,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    fn pod(name: &str, rev: &str) -> PodView {
        PodView {
            name: name.into(),
            revision: Some(rev.into()),
            node_name: Some("n".into()),
            phase: Some("Running".into()),
            ready: true,
            ready_since: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            in_place_ready: Some(true),
            ..Default::default()
        }
    }

    fn limits(replicas: i32, partition: i32, max_unavailable: i32) -> Limits {
        Limits {
            replicas,
            partition,
            max_unavailable,
            min_ready_seconds: 0,
        }
    }

    /// [`RolloutTargets`] by pod name.
    struct Named {
        targets: Vec<String>,
        may_start: BTreeSet<String>,
    }

    /// The rollout targets over owned views (the planner passes borrowed ones), by name.
    fn targets(
        pods: &[PodView],
        update: &str,
        in_flight: &BTreeSet<String>,
        limits: Limits,
        now: Timestamp,
    ) -> Named {
        let moving: Vec<bool> = pods.iter().map(|p| in_flight.contains(&p.name)).collect();
        let t = super::rollout_targets(
            &pods.iter().collect::<Vec<_>>(),
            update,
            &moving,
            limits,
            now,
        );
        let name = |i: usize| pods[i].name.clone();
        assert!(
            t.targets.iter().all(|&i| t.of(i).target),
            "targets are chosen"
        );
        assert_eq!(
            t.chosen.iter().filter(|c| c.target).count(),
            t.targets.len(),
            "only targets are chosen"
        );
        Named {
            targets: t.targets.iter().map(|&i| name(i)).collect(),
            may_start: (0..pods.len())
                .filter(|&i| t.of(i).may_start)
                .map(name)
                .collect(),
        }
    }

    fn seed() -> Vec<PodView> {
        [
            "49m5l", "57rrt", "7wr7h", "cbk77", "n58hm", "n8ld6", "r78df", "wzxm7",
        ]
        .iter()
        .map(|s| pod(&format!("test-gamedeployment-{s}"), "r1"))
        .collect()
    }

    #[test]
    fn the_seed_moves_five_of_eight_two_at_a_time() {
        // 8 pods, partition 3, maxUnavailable 20% of 8 = 1.6 rounded up = 2.
        let p = targets(&seed(), "r2", &BTreeSet::new(), limits(8, 3, 2), now());
        assert_eq!(p.targets.len(), 5);
        assert_eq!(p.may_start.len(), 2, "the budget");
        // Name order among equals: the last three by name stay old.
        assert!(
            !p.targets
                .iter()
                .any(|n| n.ends_with("r78df") || n.ends_with("wzxm7") || n.ends_with("n8ld6"))
        );
    }

    #[test]
    fn in_flight_pods_keep_their_slot_and_block_others() {
        let mut pods = seed();
        for p in pods.iter_mut().take(2) {
            p.in_place_ready = Some(false);
        }
        let in_flight: BTreeSet<String> = pods.iter().take(2).map(|p| p.name.clone()).collect();
        let p = targets(&pods, "r2", &in_flight, limits(8, 3, 2), now());
        assert_eq!(
            p.may_start, in_flight,
            "no third pod may start while two are out"
        );
    }

    #[test]
    fn never_more_than_replicas_minus_partition_on_the_update_revision() {
        let mut pods = seed();
        for p in pods.iter_mut().take(5) {
            p.revision = Some("r2".into());
        }
        let p = targets(&pods, "r2", &BTreeSet::new(), limits(8, 3, 8), now());
        assert!(p.targets.is_empty());
        let p = targets(&pods, "r2", &BTreeSet::new(), limits(8, 0, 8), now());
        assert_eq!(p.targets.len(), 3);
        assert_eq!(p.may_start.len(), 3);
    }

    #[test]
    fn raising_the_partition_calls_off_updates_not_yet_begun() {
        let p = targets(&seed(), "r2", &BTreeSet::new(), limits(8, 8, 2), now());
        assert!(p.targets.is_empty());
        let p = targets(&seed(), "r2", &BTreeSet::new(), limits(8, 20, 2), now());
        assert!(
            p.targets.is_empty(),
            "a partition above replicas is clamped"
        );
    }

    #[test]
    fn unavailable_pods_go_first_and_cost_nothing() {
        let mut pods = seed();
        pods[7].ready = false;
        let p = targets(&pods, "r2", &BTreeSet::new(), limits(8, 0, 1), now());
        assert_eq!(p.targets[0], pods[7].name);
        assert!(p.may_start.contains(&pods[7].name));
        assert_eq!(
            p.may_start.len(),
            1,
            "the budget of 1 is already used by the unready pod"
        );
    }

    #[test]
    fn min_ready_seconds_delays_availability() {
        let mut pods = seed();
        pods[0].ready_since = Some("2026-01-01T00:59:50Z".parse().unwrap());
        let by = ReadyBy::new(30, now());
        assert!(!is_available_by(&pods[0], by));
        assert!(is_available_by(&pods[1], by));
    }

    #[test]
    fn surge_pods_widen_the_budget() {
        let mut pods = seed();
        pods.push(pod("test-gamedeployment-surge", "r2"));
        let p = targets(&pods, "r2", &BTreeSet::new(), limits(8, 0, 1), now());
        assert_eq!(p.may_start.len(), 2, "maxUnavailable 1 and one surge pod");
    }
}
