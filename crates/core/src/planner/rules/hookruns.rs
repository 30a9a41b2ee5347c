//! HookRuns as the original retries and builds them: the attempts of a HookRun (its name comes
//! from `HookKind::run_name`), whether a hook strategy retries and in which generation, which
//! pod HookRuns are stale, and the HookRun built from the GameDeployment's HookTemplate, where the pod's
//! arguments fill the template's and an argument left without a value is an error the user
//! must fix, not a silent run.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::revision_history::revision_hash;
use crate::api::{
    Argument, GameDeployment, HookRun, HookRunSpec, HookTemplate, HookUpdateStrategy,
};
use crate::inplace::{self, HookKind, HookRunRequest, PodView};
use crate::names;
use crate::planner::model::{HookRunView, Owner};

/// The argument names the operator supplies; undeclared arguments containing one of them are
/// passed through (`PodContainer[0]`, ...), as in the original.
const DEFAULT_ARGS: &[&str] = &[
    "PodName",
    "PodNamespace",
    "PodIP",
    "HostIP",
    "PodContainer",
    "ModifiedContainer",
];

/// The HookRun cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error(
        "HookTemplate {template} argument {arg} has no value and the operator does not supply one: give it a value in the template or in {strategy}.hook.args"
    )]
    MissingArgument {
        template: String,
        arg: String,
        strategy: &'static str,
    },
}

/// HookRuns of a pod (preInplace, preDelete, postInplace) whose pod is gone, or has moved to
/// another revision: the original deletes them, so they do not pile up with every update and
/// scale-down. Runs of other kinds (canary steps) are left alone.
pub fn stale(runs: &BTreeMap<String, HookRunView>, pods: &[&PodView]) -> Vec<String> {
    if runs.is_empty() {
        // The common case, and the set below costs 10,000 entries on a large fleet.
        return Vec::new();
    }
    let live: BTreeSet<(&str, &str)> = pods
        .iter()
        .map(|p| (p.revision.as_deref().unwrap_or_default(), p.instance_id()))
        .collect();
    let gate_labels = [
        HookKind::PreInplace.label(),
        HookKind::PreDelete.label(),
        HookKind::PostInplace.label(),
    ];
    runs.iter()
        .filter(|(_, r)| {
            r.labels
                .get(names::LABEL_HOOKRUN_TYPE)
                .is_some_and(|t| gate_labels.contains(&t.as_str()))
        })
        .filter(|(_, r)| {
            let key = (
                r.labels
                    .get(names::LABEL_HOOKRUN_REVISION)
                    .map_or("", String::as_str),
                r.labels
                    .get(names::LABEL_HOOKRUN_INSTANCE_ID)
                    .map_or("", String::as_str),
            );
            !live.contains(&key)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The newest attempt of `base` among `runs`: its number, name and view.
pub fn latest_attempt<'a>(
    base: &str,
    runs: &'a BTreeMap<String, HookRunView>,
) -> Option<(u32, &'a String, &'a HookRunView)> {
    runs.range(base.to_string()..)
        .take_while(|(name, _)| name.starts_with(base))
        .filter_map(|(name, run)| Some((inplace::attempt_of(base, name)?, name, run)))
        .max_by_key(|(n, _, _)| *n)
}

/// The first attempt of `base` no run has.
pub fn free_name(base: &str, runs: &BTreeMap<String, HookRunView>) -> String {
    (0..)
        .map(|n| inplace::attempt_name(base, n))
        .find(|n| !runs.contains_key(n))
        .unwrap_or_default()
}

/// The generation in which an unsuccessful hook may run again now; `None` without `retry`.
/// The first half of the "retry once per generation" rule of a hook strategy with
/// `retry: true` (`inplace::retry_due` is the second): a failed hook runs again as a new
/// attempt once per GameDeployment generation, so a spec change buys one more try without the
/// operator writing the spec back.
pub(crate) fn retry_generation(
    gd: &GameDeployment,
    strategy: Option<&HookUpdateStrategy>,
) -> Option<i64> {
    strategy
        .is_some_and(|s| s.retry)
        .then(|| gd.metadata.generation.unwrap_or(0))
}

/// The spec field that configures hooks of this kind (for messages).
pub fn strategy_field(kind: HookKind) -> &'static str {
    match kind {
        HookKind::PreInplace => "preInplaceUpdateStrategy",
        HookKind::PreDelete => "preDeleteUpdateStrategy",
        HookKind::PostInplace => "postInplaceUpdateStrategy",
        HookKind::CanaryStep => "updateStrategy.canary.steps[]",
    }
}

/// The labels that tie a pod's HookRun to the pod (revision and instance id), which
/// [`stale`] reads to clean it up.
pub fn pod_identity(revision: &str, instance_id: &str) -> BTreeMap<String, String> {
    [
        (
            names::LABEL_HOOKRUN_REVISION.to_string(),
            revision.to_string(),
        ),
        (
            names::LABEL_HOOKRUN_INSTANCE_ID.to_string(),
            instance_id.to_string(),
        ),
    ]
    .into()
}

/// The HookRun for `request`, owned by the GameDeployment, labelled with its kind and
/// `identity` (what it is for: [`pod_identity`], or a canary step's).
pub fn build(
    owner: &Owner,
    template: &HookTemplate,
    request: &HookRunRequest,
    extra_args: &BTreeMap<String, String>,
    identity: BTreeMap<String, String>,
) -> Result<HookRun, HookError> {
    let mut supplied = request.args.clone();
    supplied.extend(extra_args.clone());
    let mut args: Vec<Argument> = Vec::new();
    for a in &template.spec.args {
        let value = supplied.remove(&a.name).or_else(|| a.value.clone());
        match value {
            Some(v) => args.push(Argument {
                name: a.name.clone(),
                value: Some(v),
            }),
            None => {
                return Err(HookError::MissingArgument {
                    template: request.template.clone(),
                    arg: a.name.clone(),
                    strategy: strategy_field(request.kind),
                });
            }
        }
    }
    args.extend(
        supplied
            .into_iter()
            .filter(|(name, _)| DEFAULT_ARGS.iter().any(|d| name.contains(d)))
            .map(|(name, value)| Argument {
                name,
                value: Some(value),
            }),
    );
    let mut labels = identity;
    labels.insert(
        names::LABEL_HOOKRUN_TYPE.to_string(),
        request.kind.label().to_string(),
    );
    if let Some(g) = request.retry_generation {
        labels.insert(
            names::LABEL_HOOKRUN_RETRY_GENERATION.to_string(),
            g.to_string(),
        );
    }
    Ok(HookRun {
        metadata: ObjectMeta {
            name: Some(request.name.clone()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels),
            // Which template, as it was: the run carries its own copy of the metrics and the
            // resolved arguments, and the hash says whether the template changed since.
            annotations: Some(
                [
                    (
                        names::ANNOTATION_HOOK_TEMPLATE.to_string(),
                        request.template.clone(),
                    ),
                    (
                        names::ANNOTATION_HOOK_TEMPLATE_HASH.to_string(),
                        revision_hash(
                            &serde_json::to_value(&template.spec).unwrap_or_default(),
                            None,
                        ),
                    ),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: HookRunSpec {
            metrics: template.spec.metrics.clone(),
            args,
            terminate: false,
            policy: template.spec.policy.clone(),
            timeout_seconds: template.spec.timeout_seconds,
            on_timeout: template.spec.on_timeout,
        },
        status: None,
    })
}

#[cfg(test)]
mod tests;
