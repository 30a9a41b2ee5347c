//! The invariants of the in-place update state machine (listed in `crates/simulator/README.md`),
//! recomputed from a report's `history[]` alone, so a test, CI or a user can check any run
//! from the outside. Pure: history in, violations (with virtual times) out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::report::ContainerResources;
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
    /// A container restarted after a resize whose changed resources all have `resizePolicy`
    /// `NotRequired` (before any image change).
    NoRestartOnResize,
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
    resize: Option<Resize>,
}

/// A resize of a pod's cpu/memory, until its images or resources change again.
struct Resize {
    /// Restart counts when the resources changed, of the containers whose changed resources
    /// all have `resizePolicy: NotRequired`.
    baseline: BTreeMap<String, i32>,
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
    check_resize(track, e, out);
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

/// Starts tracking a resize when the spec's resources change without an image change, ends it
/// when images or resources change again, and reports a restart of a container it must not
/// restart.
fn check_resize(track: &mut Track, e: &HistoryEntry, out: &mut Vec<Violation>) {
    let Some(prev) = track.last.as_ref() else {
        return;
    };
    if prev.images != e.images || prev.resources != e.resources {
        track.resize = (prev.images == e.images).then(|| Resize {
            baseline: e
                .resources
                .iter()
                .filter(|(name, now)| {
                    let before = prev.resources.get(*name).cloned().unwrap_or_default();
                    now.values != before.values
                        && now
                            .values
                            .iter()
                            .chain(&before.values)
                            .filter(|(k, _)| now.values.get(*k) != before.values.get(*k))
                            .all(|(k, _)| {
                                let resource = k.split_once('.').map_or(k.as_str(), |(_, r)| r);
                                !now.restart_on_resize.iter().any(|r| r == resource)
                            })
                })
                .map(|(name, _)| {
                    (
                        name.clone(),
                        prev.restart_counts.get(name).copied().unwrap_or(0),
                    )
                })
                .collect(),
        });
    }
    let Some(resize) = track.resize.as_mut() else {
        return;
    };
    let restarted: Vec<String> = resize
        .baseline
        .iter()
        .filter(|(name, n)| e.restart_counts.get(*name).is_some_and(|now| now > n))
        .map(|(name, _)| name.clone())
        .collect();
    for name in restarted {
        resize.baseline.remove(&name);
        out.push(Violation {
            t: e.t,
            invariant: Invariant::NoRestartOnResize,
            pod: Some(e.pod.clone()),
            message: format!(
                "container {name} restarted after a resize whose resizePolicy is NotRequired"
            ),
        });
    }
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
mod tests;
