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
    pub paused: bool,
    /// For the in-place state machine.
    pub policy: Policy,
}

/// Resolves `spec`.
pub fn resolve(spec: &GameDeploymentSpec) -> Result<Resolved, InvalidIntOrPercent> {
    let replicas = spec.replicas();
    Ok(Resolved {
        strategy: spec.update_strategy_type(),
        limits: Limits {
            replicas,
            partition: spec.partition(replicas)?,
            max_unavailable: spec.max_unavailable(replicas)?,
            min_ready_seconds: i64::from(spec.min_ready_seconds()),
        },
        max_surge: spec.max_surge(replicas)?,
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
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
