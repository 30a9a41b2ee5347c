//! Building the HookRun that gates a pod (its in-place update, or its deletion), from the
//! GameDeployment's HookTemplate, the way the original does: the pod's arguments fill the template's, and a
//! template argument left without a value is an error the user must fix, not a silent run.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods::Owner;
use super::revision::revision_hash;
use crate::api::{Argument, HookPhase, HookRun, HookRunSpec, HookTemplate};
use crate::inplace::{HookKind, HookRunRequest, PodView};
use crate::names;

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

/// What the controller needs of one HookRun it owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRunView {
    /// `None` until the hook operator has looked at it (as good as Pending).
    pub phase: Option<HookPhase>,
    pub labels: BTreeMap<String, String>,
    /// `spec.terminate` is set: asked to stop, not yet stopped.
    pub terminate: bool,
}

impl HookRunView {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn from_hook_run(run: &HookRun) -> Self {
        HookRunView {
            phase: run.status.as_ref().and_then(|s| s.phase),
            labels: run.metadata.labels.clone().unwrap_or_default(),
            terminate: run.spec.terminate,
        }
    }
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

/// The attempt number of a run named `name`: 0 for `base`, N for `base.N` (the original's
/// collision suffix, used for every new attempt); `None` for a run of another base.
pub fn attempt(base: &str, name: &str) -> Option<u32> {
    match name.strip_prefix(base)? {
        "" => Some(0),
        rest => rest.strip_prefix('.')?.parse().ok(),
    }
}

/// The newest attempt of `base` among `runs`: its number, name and view.
pub fn latest_attempt<'a>(
    base: &str,
    runs: &'a BTreeMap<String, HookRunView>,
) -> Option<(u32, &'a String, &'a HookRunView)> {
    runs.range(base.to_string()..)
        .take_while(|(name, _)| name.starts_with(base))
        .filter_map(|(name, run)| Some((attempt(base, name)?, name, run)))
        .max_by_key(|(n, _, _)| *n)
}

/// `base`, or the first `base.N` no run has.
pub fn free_name(base: &str, runs: &BTreeMap<String, HookRunView>) -> String {
    std::iter::once(base.to_string())
        .chain((1..).map(|n| format!("{base}.{n}")))
        .find(|n| !runs.contains_key(n))
        .unwrap_or_default()
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
mod tests {
    use super::*;

    fn template(args: serde_json::Value) -> HookTemplate {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
            "metadata": {"name": "check", "namespace": "default"},
            "spec": {"args": args, "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{ args.PodName }}"}}}]}
        }))
        .unwrap()
    }

    fn request() -> HookRunRequest {
        HookRunRequest {
            name: "preinplace-r2-abcde-check".into(),
            template: "check".into(),
            args: [
                ("PodName".to_string(), "gd-abcde".to_string()),
                ("PodContainer[0]".to_string(), "python".to_string()),
                ("Unrelated".to_string(), "x".to_string()),
            ]
            .into(),
            kind: HookKind::PreInplace,
            retry_generation: None,
        }
    }

    fn owner() -> Owner {
        Owner {
            name: "gd".into(),
            namespace: "default".into(),
            uid: "u".into(),
        }
    }

    #[test]
    fn arguments_fill_the_template() {
        let t =
            template(serde_json::json!([{"name": "PodName"}, {"name": "Port", "value": "8000"}]));
        let run = build(
            &owner(),
            &t,
            &request(),
            &BTreeMap::new(),
            pod_identity("r2", "abcde"),
        )
        .unwrap();
        let args: BTreeMap<String, Option<String>> = run
            .spec
            .args
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        assert_eq!(args["PodName"].as_deref(), Some("gd-abcde"));
        assert_eq!(args["Port"].as_deref(), Some("8000"));
        assert_eq!(args["PodContainer[0]"].as_deref(), Some("python"));
        assert!(!args.contains_key("Unrelated"));
        assert_eq!(
            run.metadata.labels.unwrap()[names::LABEL_HOOKRUN_TYPE],
            "pre-inplace-step"
        );
        assert_eq!(
            run.metadata.owner_references.unwrap()[0].kind,
            "GameDeployment"
        );
        let annotations = run.metadata.annotations.unwrap();
        assert_eq!(annotations[names::ANNOTATION_HOOK_TEMPLATE], "check");
        let hash = &annotations[names::ANNOTATION_HOOK_TEMPLATE_HASH];
        let mut changed = t.clone();
        changed.spec.metrics[0].interval = Some("5s".into());
        let again = build(
            &owner(),
            &changed,
            &request(),
            &BTreeMap::new(),
            pod_identity("r2", "abcde"),
        )
        .unwrap();
        assert_ne!(
            &again.metadata.annotations.unwrap()[names::ANNOTATION_HOOK_TEMPLATE_HASH],
            hash,
            "the hash follows the template's spec"
        );
    }

    #[test]
    fn a_template_argument_without_value_is_an_error_naming_it() {
        let t = template(serde_json::json!([{"name": "Token"}]));
        let e = build(
            &owner(),
            &t,
            &request(),
            &BTreeMap::new(),
            pod_identity("r2", "abcde"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("argument Token has no value"), "{e}");
        assert!(
            e.to_string()
                .ends_with("in preInplaceUpdateStrategy.hook.args"),
            "{e}"
        );
    }

    #[test]
    fn runs_whose_pod_is_gone_or_moved_on_are_stale() {
        let t = template(serde_json::json!([{"name": "PodName"}]));
        let view = |kind: HookKind, rev: &str| {
            let req = HookRunRequest { kind, ..request() };
            HookRunView::from_hook_run(
                &build(
                    &owner(),
                    &t,
                    &req,
                    &BTreeMap::new(),
                    pod_identity(rev, "abcde"),
                )
                .unwrap(),
            )
        };
        let mut canary = view(HookKind::PreInplace, "r0");
        canary
            .labels
            .insert(names::LABEL_HOOKRUN_TYPE.into(), "canary-step".into());
        let runs: BTreeMap<String, HookRunView> = [
            ("current".to_string(), view(HookKind::PreInplace, "r1")),
            (
                "before-update".to_string(),
                view(HookKind::PreInplace, "r0"),
            ),
            ("delete-gone".to_string(), view(HookKind::PreDelete, "r0")),
            ("canary".to_string(), canary),
        ]
        .into();
        let pod = PodView {
            name: "gd-abcde".into(),
            revision: Some("r1".into()),
            ..Default::default()
        };
        assert_eq!(stale(&runs, &[&pod]), ["before-update", "delete-gone"]);
        assert_eq!(
            stale(&runs, &[]).len(),
            3,
            "canary runs are not ours to clean"
        );
    }

    #[test]
    fn a_pre_delete_run_is_labelled_and_explained_as_such() {
        let req = HookRunRequest {
            kind: HookKind::PreDelete,
            ..request()
        };
        let t = template(serde_json::json!([{"name": "PodName"}]));
        let run = build(
            &owner(),
            &t,
            &req,
            &BTreeMap::new(),
            pod_identity("r2", "abcde"),
        )
        .unwrap();
        assert_eq!(
            run.metadata.labels.unwrap()[names::LABEL_HOOKRUN_TYPE],
            "pre-delete-step"
        );
        let t = template(serde_json::json!([{"name": "Token"}]));
        let e = build(
            &owner(),
            &t,
            &req,
            &BTreeMap::new(),
            pod_identity("r2", "abcde"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("in preDeleteUpdateStrategy.hook.args"),
            "{e}"
        );
    }
}
