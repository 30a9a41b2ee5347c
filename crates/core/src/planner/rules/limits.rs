//! A GameDeployment spec resolved into the numbers and policies the planners take, with
//! defaults and percentages applied once. A spec that slipped past the CRD schema (for example
//! a malformed percentage written before the CRD was installed) is an error here, which the
//! controller reports as a condition instead of touching pods.

use crate::api::{GameDeploymentSpec, InvalidIntOrPercent, UpdateStrategyType};
use crate::inplace::Policy;

/// The numbers an update obeys, already resolved from the spec (percentages applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub replicas: i32,
    /// Pods kept on old revisions.
    pub partition: i32,
    pub max_unavailable: i32,
    pub min_ready_seconds: i64,
}

/// Everything the planners need from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub strategy: UpdateStrategyType,
    pub limits: Limits,
    pub max_surge: i32,
    /// The most pods one wave creates (`scaleStrategy.createBatch`); `None` does not hold
    /// creation back (unset, or a batch of every replica).
    pub create_batch: Option<i32>,
    /// Whether new pods carry the `InPlaceUpdateReady` readiness gate.
    pub readiness_gate: bool,
    pub paused: bool,
    /// For the in-place state machine.
    pub policy: Policy,
}

/// Resolves `spec`.
///
/// `OnDelete` moves no pod, so it keeps none back either: its partition and surge are 0, and
/// every pod it creates (a deleted one's replacement, a scale-up) runs the update revision.
pub fn resolve(spec: &GameDeploymentSpec) -> Result<Resolved, InvalidIntOrPercent> {
    let replicas = spec.replicas();
    let strategy = spec.update_strategy_type();
    let on_delete = strategy == UpdateStrategyType::OnDelete;
    // A canary step's percentage that slipped past the CRD refuses the spec like a bad budget.
    for step in spec.canary_steps() {
        step.partition_for(replicas).transpose()?;
    }
    Ok(Resolved {
        strategy,
        limits: Limits {
            replicas,
            partition: if on_delete {
                0
            } else {
                spec.partition(replicas)?
            },
            max_unavailable: spec.max_unavailable(replicas)?,
            min_ready_seconds: i64::from(spec.min_ready_seconds()),
        },
        max_surge: if on_delete {
            0
        } else {
            spec.max_surge(replicas)?
        },
        create_batch: spec.create_batch(replicas)?.filter(|&b| b < replicas),
        readiness_gate: !spec.disable_readiness_gate,
        paused: spec.paused(),
        policy: Policy {
            grace_period_seconds: i64::from(spec.grace_period_seconds()),
            deadline_seconds: spec.deadline_seconds().map(i64::from),
            hook_template: spec
                .pre_inplace_update_strategy
                .as_ref()
                .and_then(|s| s.hook.as_ref())
                .map(|h| h.template_name.clone()),
            // Needs the generation: set by `phases::spec::resolve_spec`.
            hook_retry_generation: None,
            update_policy: spec.in_place_update_policy(),
            infeasible_resize: spec.infeasible_resize_policy(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::InPlaceUpdatePolicy;

    fn spec(yaml: &str) -> GameDeploymentSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_seed_example_resolves() {
        let s = spec(
            "replicas: 8\nselector: {matchLabels: {app: a}}\ntemplate: {metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: i}]}}\n\
             updateStrategy: {type: InplaceUpdate, partition: 3, inPlaceUpdateStrategy: {gracePeriodSeconds: 30}}\n\
             preInplaceUpdateStrategy: {hook: {templateName: check}}\n",
        );
        let r = resolve(&s).unwrap();
        assert_eq!(r.strategy, UpdateStrategyType::InplaceUpdate);
        assert_eq!(
            r.limits,
            Limits {
                replicas: 8,
                partition: 3,
                max_unavailable: 2,
                min_ready_seconds: 0
            }
        );
        assert_eq!(r.policy.grace_period_seconds, 30);
        assert_eq!(r.policy.hook_template.as_deref(), Some("check"));
        assert_eq!(r.policy.update_policy, InPlaceUpdatePolicy::DisOrdered);
        let ordered = spec(
            "selector: {matchLabels: {app: a}}\ntemplate: {spec: {containers: [{name: c, image: i}]}}\n\
             updateStrategy: {type: InplaceUpdate, inPlaceUpdateStrategy: {policy: OrderedReady}}\n",
        );
        let r = resolve(&ordered).unwrap();
        assert_eq!(r.policy.update_policy, InPlaceUpdatePolicy::OrderedReady);
    }

    #[test]
    fn the_newer_api_fields_resolve() {
        let base = "replicas: 10\nselector: {matchLabels: {app: a}}\ntemplate: {spec: {containers: [{name: c, image: i}]}}\n";
        let r = resolve(&spec(base)).unwrap();
        assert_eq!((r.create_batch, r.readiness_gate), (None, true));
        let r = resolve(&spec(&format!(
            "{base}scaleStrategy: {{createBatch: \"25%\"}}\ndisableReadinessGate: true\n\
             updateStrategy: {{partition: \"95%\", maxSurge: 2}}\n"
        )))
        .unwrap();
        // 25% of 10 rounds up to 3; 95% of 10 rounds up to 10, but below 100% lets one through.
        assert_eq!((r.create_batch, r.readiness_gate), (Some(3), false));
        assert_eq!((r.limits.partition, r.max_surge), (9, 2));
        // A batch of every replica is no batch: creation is not held back.
        let r = resolve(&spec(&format!(
            "{base}scaleStrategy: {{createBatch: \"100%\"}}\n"
        )))
        .unwrap();
        assert_eq!(r.create_batch, None);
        // OnDelete keeps no pod back and surges none: it moves no pod at all.
        let r = resolve(&spec(&format!(
            "{base}updateStrategy: {{type: OnDelete, partition: 4, maxSurge: 2}}\n"
        )))
        .unwrap();
        assert_eq!(r.strategy, UpdateStrategyType::OnDelete);
        assert_eq!((r.limits.partition, r.max_surge), (0, 0));
    }

    #[test]
    fn a_malformed_canary_partition_is_an_error_naming_the_field() {
        let s = spec(
            "selector: {matchLabels: {app: a}}\ntemplate: {spec: {containers: [{name: c, image: i}]}}\n\
             updateStrategy: {canary: {steps: [{partition: \"half\"}]}}\n",
        );
        let e = resolve(&s).unwrap_err().to_string();
        assert!(e.contains("canary.steps[].partition"), "{e}");
    }

    #[test]
    fn a_malformed_budget_is_an_error_naming_the_field() {
        let s = spec(
            "selector: {matchLabels: {app: a}}\ntemplate: {spec: {containers: [{name: c, image: i}]}}\n\
             updateStrategy: {maxUnavailable: \"lots\"}\n",
        );
        let e = resolve(&s).unwrap_err().to_string();
        assert!(e.contains("maxUnavailable"), "{e}");
    }
}
