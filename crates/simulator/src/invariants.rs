//! The invariants of the in-place update state machine (listed in `crates/simulator/README.md`),
//! recomputed from a report's `history[]` alone, so a test, CI or a user can check any run
//! from the outside. Pure: history in, violations (with virtual times) out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::report::HistoryEntry;

/// What the history is checked against, for the pods of one GameDeployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// `maxUnavailable` resolved to a pod count.
    pub max_unavailable: u32,
    pub replicas: u32,
    pub partition: u32,
    /// `inPlaceUpdateStrategy.gracePeriodSeconds`.
    pub grace_seconds: f64,
    /// The revision the update moves pods to.
    pub update_revision: String,
    /// Client identity of the operator's writes in the history (`operator`).
    pub operator: String,
}

/// Which invariant a violation breaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::Display,
)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum Invariant {
    /// More pods unavailable because of the operator than `maxUnavailable`.
    MaxUnavailable,
    /// More pods on the update revision than `replicas - partition`.
    Partition,
    /// Images patched before the pod was unready for `gracePeriodSeconds`.
    GracePeriod,
    /// A changed container not restarted exactly once (or an unchanged one restarted) in a
    /// completed in-place update.
    RestartOnce,
    /// A pod's UID changed without the pod being deleted.
    UidStable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub t: f64,
    pub invariant: Invariant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub message: String,
}

/// Slack for comparing virtual seconds.
const EPSILON: f64 = 1e-6;

/// One in-place image change of one pod, until the next one (or the end of the history).
struct Update {
    revision: Option<String>,
    /// Restart counts when the images were patched.
    baseline: BTreeMap<String, i32>,
    changed: BTreeSet<String>,
    /// A change of the pod was stored after the patch (kubelet has had its say).
    followed: bool,
}

#[derive(Default)]
struct Track {
    last: Option<HistoryEntry>,
    /// When `InPlaceUpdateReady` last became False (None while it is not False).
    unready_since: Option<f64>,
    /// The client that started deleting the pod.
    terminated_by: Option<String>,
    update: Option<Update>,
}

/// Every violation in `history` (entries of one GameDeployment's pods, any order), in time
/// order.
pub fn check(history: &[HistoryEntry], params: &Params) -> Vec<Violation> {
    let mut entries: Vec<&HistoryEntry> = history.iter().collect();
    entries.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut pods: BTreeMap<&str, Track> = BTreeMap::new();
    let mut out = Vec::new();
    let mut over_unavailable = false;
    let mut over_partition = false;
    for (i, e) in entries.iter().enumerate() {
        let track = pods.entry(e.pod.as_str()).or_default();
        observe(track, e, params, &mut out);
        // Count once every change at this instant is in: writes at the same moment are one step.
        if entries.get(i + 1).is_some_and(|n| n.t == e.t) {
            continue;
        }
        let alive: Vec<(&str, &Track)> = pods
            .iter()
            .filter_map(|(name, t)| {
                let last = t.last.as_ref()?;
                (!last.deleted).then_some((*name, t))
            })
            .collect();
        let unavailable: Vec<&str> = alive
            .iter()
            .filter(|(_, t)| {
                let last = t.last.as_ref();
                last.is_some_and(|l| l.in_place_update_ready == Some(false))
                    || t.terminated_by.as_deref() == Some(params.operator.as_str())
            })
            .map(|(name, _)| *name)
            .collect();
        let exceeded = unavailable.len() > params.max_unavailable as usize;
        if exceeded && !over_unavailable {
            out.push(Violation {
                t: e.t,
                invariant: Invariant::MaxUnavailable,
                pod: None,
                message: format!(
                    "{} pods unavailable because of the operator, maxUnavailable is {}: {}",
                    unavailable.len(),
                    params.max_unavailable,
                    unavailable.join(", ")
                ),
            });
        }
        over_unavailable = exceeded;
        let updated: Vec<&str> = alive
            .iter()
            .filter(|(_, t)| {
                t.last.as_ref().and_then(|l| l.revision.as_deref())
                    == Some(params.update_revision.as_str())
            })
            .map(|(name, _)| *name)
            .collect();
        let allowed = params.replicas.saturating_sub(params.partition) as usize;
        let exceeded = updated.len() > allowed;
        if exceeded && !over_partition {
            out.push(Violation {
                t: e.t,
                invariant: Invariant::Partition,
                pod: None,
                message: format!(
                    "{} pods on revision {} but replicas {} - partition {} allows {allowed}: {}",
                    updated.len(),
                    params.update_revision,
                    params.replicas,
                    params.partition,
                    updated.join(", ")
                ),
            });
        }
        over_partition = exceeded;
    }
    for track in pods.values_mut() {
        close_update(track, &mut out);
    }
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// Folds one entry into its pod's track, checking the per-pod invariants.
fn observe(track: &mut Track, e: &HistoryEntry, params: &Params, out: &mut Vec<Violation>) {
    let violation = |invariant, message: String| Violation {
        t: e.t,
        invariant,
        pod: Some(e.pod.clone()),
        message,
    };
    if track.last.as_ref().is_none_or(|p| p.deleted) {
        // A new pod (or a new one under a reused name): nothing carries over.
        *track = Track::default();
    }
    if let Some(prev) = track.last.as_ref().filter(|p| p.uid != e.uid) {
        out.push(violation(
            Invariant::UidStable,
            format!(
                "UID changed from {} to {} without the pod being deleted",
                prev.uid, e.uid
            ),
        ));
    }
    if let Some(u) = track.update.as_mut() {
        u.followed = true;
    }
    let image_change = track
        .last
        .as_ref()
        .filter(|p| p.images != e.images)
        .map(|p| (p.images.clone(), p.restart_counts.clone()));
    if let Some((before, baseline)) = image_change {
        if e.client == params.operator && params.grace_seconds > 0.0 {
            let waited = track.unready_since.map(|s| e.t - s);
            if waited.is_none_or(|w| w + EPSILON < params.grace_seconds) {
                out.push(violation(
                    Invariant::GracePeriod,
                    match waited {
                        Some(w) => format!(
                            "images patched after {w}s unready, gracePeriodSeconds is {}",
                            params.grace_seconds
                        ),
                        None => format!(
                            "images patched while the pod was not marked unready (gracePeriodSeconds {})",
                            params.grace_seconds
                        ),
                    },
                ));
            }
        }
        close_update(track, out);
        let changed = e
            .images
            .iter()
            .filter(|(name, image)| before.get(*name) != Some(*image))
            .map(|(name, _)| name.clone())
            .collect();
        track.update = Some(Update {
            revision: e.revision.clone(),
            baseline,
            changed,
            followed: false,
        });
    }
    match e.in_place_update_ready {
        Some(false) => {
            track.unready_since.get_or_insert(e.t);
        }
        _ => track.unready_since = None,
    }
    if e.terminating && track.terminated_by.is_none() {
        track.terminated_by = Some(e.client.clone());
    }
    track.last = Some(e.clone());
}

/// Judges the pod's last in-place update, if it completed: each changed container restarted
/// exactly once and no other container restarted. Unfinished or failed updates (a crash
/// loop restarts a container many times) are the state machine's `Failed`, not a violation.
fn close_update(track: &mut Track, out: &mut Vec<Violation>) {
    let (Some(update), Some(last)) = (track.update.take(), track.last.as_ref()) else {
        return;
    };
    let completed =
        update.followed && last.ready && last.in_place_update_ready != Some(false) && !last.deleted;
    if !completed {
        return;
    }
    let revision = update.revision.as_deref().unwrap_or("(unlabelled)");
    for (name, count) in &last.restart_counts {
        let restarts = count - update.baseline.get(name).copied().unwrap_or(0);
        let expected = i32::from(update.changed.contains(name));
        if restarts != expected {
            out.push(Violation {
                t: last.t,
                invariant: Invariant::RestartOnce,
                pod: Some(last.pod.clone()),
                message: format!(
                    "container {name} restarted {restarts} times for revision {revision}, expected {expected}"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            max_unavailable: 2,
            replicas: 4,
            partition: 2,
            grace_seconds: 30.0,
            update_revision: "gd-2".into(),
            operator: "operator".into(),
        }
    }

    /// A settled pod on revision gd-1.
    fn entry(t: f64, pod: &str) -> HistoryEntry {
        HistoryEntry {
            t,
            pod: pod.into(),
            client: "kubelet".into(),
            uid: format!("uid-{pod}"),
            revision: Some("gd-1".into()),
            ready: true,
            in_place_update_ready: Some(true),
            images: BTreeMap::from([
                ("app".to_string(), "python:3.9".to_string()),
                ("side".to_string(), "envoy:1".to_string()),
            ]),
            restart_counts: BTreeMap::from([("app".to_string(), 0), ("side".to_string(), 0)]),
            terminating: false,
            deleted: false,
        }
    }

    /// The history of one good in-place update of `pod` starting at `t0`: unready, images
    /// patched after `wait` seconds, restart, ready again.
    fn update(pod: &str, t0: f64, wait: f64) -> Vec<HistoryEntry> {
        let mut h = vec![entry(0.0, pod)];
        let mut e = entry(t0, pod);
        e.client = "operator".into();
        e.in_place_update_ready = Some(false);
        h.push(e.clone());
        e.client = "kubelet".into();
        e.ready = false;
        e.t = t0 + 0.5;
        h.push(e.clone());
        e.client = "operator".into();
        e.t = t0 + wait;
        e.images.insert("app".into(), "python:latest".into());
        e.revision = Some("gd-2".into());
        h.push(e.clone());
        e.client = "kubelet".into();
        e.t = t0 + wait + 2.0;
        e.restart_counts.insert("app".into(), 1);
        h.push(e.clone());
        e.client = "operator".into();
        e.t = t0 + wait + 3.0;
        e.in_place_update_ready = Some(true);
        h.push(e.clone());
        e.client = "kubelet".into();
        e.ready = true;
        h.push(e);
        h
    }

    fn kinds(v: &[Violation]) -> Vec<Invariant> {
        v.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_correct_rolling_in_place_update_has_no_violations() {
        let mut h = update("a", 10.0, 30.0);
        h.extend(update("b", 10.0, 31.0));
        h.push(entry(0.0, "c"));
        h.push(entry(0.0, "d"));
        assert_eq!(check(&h, &params()), vec![]);
    }

    #[test]
    fn too_many_unavailable_pods_are_caught_once_per_episode() {
        let mut h = update("a", 10.0, 30.0);
        h.extend(update("b", 10.0, 30.0));
        h.extend(update("c", 20.0, 30.0));
        let v = check(&h, &params());
        assert_eq!(
            kinds(&v),
            vec![Invariant::MaxUnavailable, Invariant::Partition]
        );
        assert_eq!(v[0].t, 20.0);
        assert!(
            v[0].message.starts_with(
                "3 pods unavailable because of the operator, maxUnavailable is 2: a, b, c"
            ),
            "{}",
            v[0].message
        );
        assert_eq!(v[1].t, 50.0);
        assert!(
            v[1].message
                .contains("3 pods on revision gd-2 but replicas 4 - partition 2 allows 2")
        );
    }

    #[test]
    fn pods_deleted_by_the_operator_count_as_unavailable_but_not_when_a_user_deletes_them() {
        let mut h: Vec<HistoryEntry> = ["a", "b", "c"].iter().map(|p| entry(0.0, p)).collect();
        for p in ["a", "b", "c"] {
            let mut e = entry(5.0, p);
            e.client = "scenario".into();
            e.terminating = true;
            h.push(e);
        }
        assert_eq!(check(&h, &params()), vec![]);
        for e in h.iter_mut().filter(|e| e.terminating) {
            e.client = "operator".into();
        }
        assert_eq!(
            kinds(&check(&h, &params())),
            vec![Invariant::MaxUnavailable]
        );
    }

    #[test]
    fn images_patched_before_the_grace_period_are_caught() {
        let v = check(&update("a", 10.0, 29.0), &params());
        assert_eq!(kinds(&v), vec![Invariant::GracePeriod]);
        assert_eq!((v[0].t, v[0].pod.as_deref()), (39.0, Some("a")));
        assert_eq!(
            v[0].message,
            "images patched after 29s unready, gracePeriodSeconds is 30"
        );
        // Without ever being marked unready.
        let mut h = vec![entry(0.0, "a")];
        let mut e = entry(5.0, "a");
        e.client = "operator".into();
        e.images.insert("app".into(), "python:latest".into());
        h.push(e);
        let v = check(&h, &params());
        assert_eq!(kinds(&v), vec![Invariant::GracePeriod]);
        assert!(v[0].message.contains("not marked unready"));
        // A user patching a pod directly is not the operator's doing, and grace 0 needs no wait.
        h[1].client = "scenario".into();
        assert_eq!(check(&h, &params()), vec![]);
        h[1].client = "operator".into();
        let no_grace = Params {
            grace_seconds: 0.0,
            ..params()
        };
        assert_eq!(check(&h, &no_grace), vec![]);
    }

    #[test]
    fn double_restarts_and_restarted_bystanders_are_caught() {
        let mut h = update("a", 10.0, 30.0);
        let last = h.len() - 1;
        h[last].restart_counts.insert("app".into(), 2);
        let v = check(&h, &params());
        assert_eq!(kinds(&v), vec![Invariant::RestartOnce]);
        assert_eq!(
            v[0].message,
            "container app restarted 2 times for revision gd-2, expected 1"
        );
        let mut h = update("a", 10.0, 30.0);
        h[last].restart_counts.insert("side".into(), 1);
        let v = check(&h, &params());
        assert_eq!(
            v[0].message,
            "container side restarted 1 times for revision gd-2, expected 0"
        );
        // Never restarted at all although reported ready.
        let mut h = update("a", 10.0, 30.0);
        for e in &mut h {
            e.restart_counts.insert("app".into(), 0);
        }
        assert_eq!(kinds(&check(&h, &params())), vec![Invariant::RestartOnce]);
    }

    #[test]
    fn an_unfinished_update_is_not_judged_on_restarts() {
        let mut h = update("a", 10.0, 30.0);
        h.truncate(h.len() - 2);
        let last = h.len() - 1;
        h[last].restart_counts.insert("app".into(), 5);
        assert_eq!(check(&h, &params()), vec![]);
    }

    #[test]
    fn uid_changes_are_caught_unless_the_pod_was_deleted() {
        let mut h = vec![entry(0.0, "a")];
        let mut e = entry(10.0, "a");
        e.uid = "other".into();
        h.push(e.clone());
        let v = check(&h, &params());
        assert_eq!(kinds(&v), vec![Invariant::UidStable]);
        assert_eq!(
            v[0].message,
            "UID changed from uid-a to other without the pod being deleted"
        );
        let mut gone = entry(5.0, "a");
        gone.deleted = true;
        h.insert(1, gone);
        assert_eq!(check(&h, &params()), vec![]);
    }

    #[test]
    fn violations_serialize_with_camel_case_names() {
        let v = check(&update("a", 10.0, 1.0), &params());
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json[0]["invariant"], "gracePeriod");
        assert_eq!(Invariant::MaxUnavailable.to_string(), "maxUnavailable");
    }
}
