//! The `kubectl gamedeploy` verbs' decisions, as `kubectl rollout` makes them for a Deployment:
//! whether a rollout is done, failed or still going ([`verdict`]), what `history` prints, which
//! revision `undo` restores and where `promote` moves the canary. Pure: the binary fetches the
//! objects, passes them in and writes what is decided.

use std::collections::BTreeMap;

use gamedeploy_core::api::{GameDeployment, PauseReason, StoredGameDeployment};
use gamedeploy_core::names;
use gamedeploy_core::planner::rules::adoption::controlled_by;
use gamedeploy_core::planner::rules::revision_history::revision_template;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;

use crate::kubectl::render;
use crate::status::{RolloutSnapshot, wrap_into};

/// How the verbs name a GameDeployment, as kubectl prints `deployment.apps/NAME`.
pub const RESOURCE: &str = "gamedeployment.tkex.tencent.com";

/// Where a rollout stands, for `status`: each carries the line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every pod the partition lets through is updated and ready, and every pod is available.
    Complete(String),
    /// Still going (or paused): waiting is the answer.
    Waiting(String),
    /// It will not finish without a change: `status` exits 1 with this cause.
    Failed(String),
}

impl Verdict {
    pub fn line(&self) -> &str {
        match self {
            Verdict::Complete(l) | Verdict::Waiting(l) | Verdict::Failed(l) => l,
        }
    }

    /// The line wrapped to `width`, to go under the status screen.
    pub fn wrapped(&self, width: usize) -> String {
        let mut out = String::new();
        wrap_into(&mut out, "", self.line(), width);
        out
    }
}

/// Where `observed`'s rollout stands. In kubectl's order for a Deployment: a status for an
/// older generation says nothing yet; then failures (the progress deadline, a `FailedUpdate`
/// that holds, a failed canary hook step); then the counts.
pub fn verdict(observed: &RolloutSnapshot) -> Verdict {
    let gd = &observed.gd;
    let name = gd.meta().name.as_deref().unwrap_or_default();
    let d = match gd {
        StoredGameDeployment::Decoded(d) => d,
        StoredGameDeployment::Undecodable(u) => {
            return Verdict::Failed(format!(
                "gamedeployment \"{name}\" has a spec that does not decode: {}",
                u.reason
            ));
        }
    };
    let Some(status) = gd.status() else {
        return Verdict::Waiting(format!(
            "Waiting for the operator to report on gamedeployment \"{name}\"..."
        ));
    };
    if gd
        .meta()
        .generation
        .is_some_and(|g| status.observed_generation < g)
    {
        return Verdict::Waiting(format!(
            "Waiting for gamedeployment \"{name}\" spec update to be observed..."
        ));
    }
    for c in &status.conditions {
        let holds = |s: &str| c.status == s;
        let detail = if c.message.is_empty() {
            String::new()
        } else {
            format!(": {}", c.message)
        };
        if c.is_progress_deadline_exceeded() {
            return Verdict::Failed(format!(
                "gamedeployment \"{name}\" exceeded its progress deadline ({}){detail}",
                names::REASON_PROGRESS_DEADLINE_EXCEEDED
            ));
        }
        if c.type_ == names::CONDITION_FAILED_UPDATE && holds("True") {
            return Verdict::Failed(format!(
                "gamedeployment \"{name}\" rollout failed: {} {}{detail}",
                c.type_, c.reason
            ));
        }
    }
    if status
        .pause_conditions
        .iter()
        .any(|p| p.reason == PauseReason::PausedByStepBasedHook)
    {
        return Verdict::Failed(format!(
            "gamedeployment \"{name}\" rollout failed: a canary hook step did not succeed \
             (pause condition PausedByStepBasedHook, canary step {})",
            status.current_step_index.unwrap_or_default()
        ));
    }
    counts(name, d, status)
}

/// The verdict from the counts, once no failure holds.
fn counts(
    name: &str,
    d: &GameDeployment,
    status: &gamedeploy_core::api::GameDeploymentStatus,
) -> Verdict {
    let spec = &d.spec;
    let replicas = spec.replicas();
    let steps = spec.canary_steps().len();
    let waiting = |what: String| {
        let paused = if spec.paused() {
            format!(" (paused: `kubectl gamedeploy resume {name}` continues it)")
        } else {
            String::new()
        };
        Verdict::Waiting(format!(
            "Waiting for gamedeployment \"{name}\" rollout to finish: {what}{paused}..."
        ))
    };
    let step = status.current_step_index.unwrap_or_default().max(0) as usize;
    if steps > 0 && step < steps {
        return waiting(format!("canary step {step} of {steps}"));
    }
    // With steps done, every pod moves; without steps, the partition keeps some back.
    let partition = if steps > 0 {
        0
    } else {
        spec.partition(replicas)
            .unwrap_or(0)
            .clamp(0, replicas.max(0))
    };
    let target = replicas - partition;
    if status.updated_replicas < target {
        return waiting(format!(
            "{} out of {target} new pods have been updated",
            status.updated_replicas
        ));
    }
    if status.replicas > replicas {
        return waiting(format!(
            "{} old pods are pending termination",
            status.replicas - replicas
        ));
    }
    if status.updated_ready_replicas < target {
        return waiting(format!(
            "{} of {target} updated pods are ready",
            status.updated_ready_replicas
        ));
    }
    if status.available_replicas < replicas {
        return waiting(format!(
            "{} of {replicas} pods are available",
            status.available_replicas
        ));
    }
    Verdict::Complete(if partition > 0 {
        format!(
            "partitioned roll out complete: {target} new pods have been updated (partition {partition})..."
        )
    } else {
        format!("gamedeployment \"{name}\" successfully rolled out")
    })
}

/// One stored revision of a GameDeployment's template.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The ControllerRevision's `.revision`.
    pub number: i64,
    /// The ControllerRevision's name (the pods' `controller-revision-hash` label).
    pub name: String,
    pub change_cause: Option<String>,
    pub template: PodTemplateSpec,
}

impl Revision {
    /// The revisions among `revisions` that `gd` controls and whose template reads, oldest first.
    pub fn of(gd: &StoredGameDeployment, revisions: &[ControllerRevision]) -> Vec<Revision> {
        let uid = gd.meta().uid.as_deref();
        let mut out: Vec<Revision> = revisions
            .iter()
            .filter(|r| uid.is_some_and(|uid| controlled_by(*r, uid)))
            .filter_map(|r| {
                Some(Revision {
                    number: r.revision,
                    name: r.metadata.name.clone()?,
                    change_cause: r
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(names::ANNOTATION_CHANGE_CAUSE))
                        .cloned(),
                    template: serde_json::from_value(revision_template(r)?).ok()?,
                })
            })
            .collect();
        out.sort_by_key(|r| r.number);
        out
    }
}

/// `history`: one row per revision with its change cause, images, resources and how many of
/// `pods` (the GameDeployment's) run it. The revision the spec's template is on (`update`)
/// shows the GameDeployment's own change cause when its ControllerRevision has none, as a
/// Deployment's newest ReplicaSet carries the Deployment's.
pub fn history(
    name: &str,
    revisions: &[Revision],
    pods: &[Pod],
    gd_cause: Option<&str>,
    update: &str,
) -> String {
    let mut on: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pods {
        if let Some(rev) = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(names::LABEL_REVISION))
        {
            *on.entry(rev.as_str()).or_default() += 1;
        }
    }
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            let cause = r
                .change_cause
                .as_deref()
                .or(gd_cause.filter(|_| r.name == update))
                .unwrap_or("<none>");
            vec![
                r.number.to_string(),
                cause.to_string(),
                images(&r.template),
                resources(&r.template),
                on.get(r.name.as_str()).copied().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    format!(
        "{RESOURCE}/{name}\n{}",
        render(
            &["REVISION", "CHANGE-CAUSE", "IMAGES", "RESOURCES", "PODS"],
            &rows
        )
    )
}

/// `name=image` for each container, comma-separated.
pub fn images(t: &PodTemplateSpec) -> String {
    let list: Vec<String> = containers(t)
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("")))
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

/// Each container's requests and limits, `name:cpu=100m/200m,memory=64Mi/-` (request/limit);
/// `-` where no container sets any.
pub fn resources(t: &PodTemplateSpec) -> String {
    let list: Vec<String> = containers(t)
        .filter_map(|c| {
            let r = c.resources.as_ref()?;
            let empty = BTreeMap::new();
            let requests = r.requests.as_ref().unwrap_or(&empty);
            let limits = r.limits.as_ref().unwrap_or(&empty);
            let keys: std::collections::BTreeSet<&String> =
                requests.keys().chain(limits.keys()).collect();
            if keys.is_empty() {
                return None;
            }
            let shown = |q: Option<&Quantity>| q.map_or_else(|| "-".to_string(), |q| q.0.clone());
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}={}/{}", shown(requests.get(k)), shown(limits.get(k))))
                .collect();
            Some(format!("{}:{}", c.name, parts.join(",")))
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(";")
    }
}

fn containers(t: &PodTemplateSpec) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Container> {
    t.spec.iter().flat_map(|s| s.containers.iter())
}

/// Why `undo` or `history --revision` has nothing to act on, in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrestorable {
    /// No ControllerRevision is stored (yet).
    #[error(
        "no rollout history found for gamedeployment \"{name}\" (the operator stores a ControllerRevision once it has seen the GameDeployment)"
    )]
    NoHistory { name: String },
    /// `--to-revision N` names none of the stored revisions.
    #[error(
        "unable to find specified revision {number} in history (`kubectl gamedeploy history NAME` lists them)"
    )]
    NoSuchRevision { number: i64 },
    /// Every stored revision has the spec's template: nothing older to go back to.
    #[error("gamedeployment \"{name}\" has no previous revision to roll back to")]
    NoPrevious { name: String },
}

/// The revision `undo` restores: `to_revision`, or (unset or 0) the newest one whose template
/// differs from the spec's, as `kubectl rollout undo` goes back to the previous revision. A
/// rollback here reuses the old revision instead of numbering it anew, so "previous" cannot be
/// the second-highest number: after one undo that would be the revision just restored.
pub fn undo_target<'a>(
    name: &str,
    revisions: &'a [Revision],
    current: &PodTemplateSpec,
    to_revision: Option<i64>,
) -> Result<&'a Revision, Unrestorable> {
    if revisions.is_empty() {
        return Err(Unrestorable::NoHistory { name: name.into() });
    }
    match to_revision.filter(|n| *n != 0) {
        Some(number) => revisions
            .iter()
            .find(|r| r.number == number)
            .ok_or(Unrestorable::NoSuchRevision { number }),
        None => revisions
            .iter()
            .rev()
            .find(|r| &r.template != current)
            .ok_or(Unrestorable::NoPrevious { name: name.into() }),
    }
}

/// Where `promote` moves the canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The step index to record in `status.currentStepIndex`: the planner goes on from there.
    pub from: usize,
    pub to: usize,
    pub steps: usize,
    /// Clear `spec.updateStrategy.paused`: the operator paused at the step being finished (a
    /// pause step without duration, or a failed hook step), which a pause condition shows.
    pub resume: bool,
    /// The spec stays paused by the user's own pause: said, not changed.
    pub still_paused: bool,
}

/// Why `promote` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteRefused {
    #[error(
        "gamedeployment \"{name}\" has no canary steps (spec.updateStrategy.canary.steps), so there is no step to promote; nothing was changed"
    )]
    NoSteps { name: String },
    #[error("gamedeployment \"{name}\" has finished all {steps} canary steps; nothing to promote")]
    Done { name: String, steps: usize },
    #[error(
        "the operator has not yet seen generation {generation} of gamedeployment \"{name}\", so its canary step is unknown; try again in a moment (nothing was changed)"
    )]
    NotObserved { name: String, generation: i64 },
}

/// `promote [--full]`: the step after the current one, or (`full`) past the last.
pub fn promotion(gd: &GameDeployment, full: bool) -> Result<Promotion, PromoteRefused> {
    let name = gd.meta().name.clone().unwrap_or_default();
    let steps = gd.spec.canary_steps().len();
    if steps == 0 {
        return Err(PromoteRefused::NoSteps { name });
    }
    let status = gd.status.as_ref();
    let generation = gd.meta().generation.unwrap_or_default();
    if status.is_none_or(|s| s.observed_generation < generation) {
        return Err(PromoteRefused::NotObserved { name, generation });
    }
    let status = status.expect("checked above");
    let from = status.current_step_index.unwrap_or_default().max(0) as usize;
    if from >= steps {
        return Err(PromoteRefused::Done { name, steps });
    }
    let operator_paused = !status.pause_conditions.is_empty();
    let paused = gd.spec.paused();
    Ok(Promotion {
        from,
        to: if full { steps } else { from + 1 },
        steps,
        resume: paused && operator_paused,
        still_paused: paused && !operator_paused,
    })
}

#[cfg(test)]
mod tests;
