//! Phase 1, the spec: resolved into limits and policies once, with its selector checked. It
//! exists so that a bad spec stops the reconcile before anything is decided: a refused spec
//! yields a plan with an event and a status, and touches no pod, revision or HookRun.

use crate::api::{GameDeployment, GameDeploymentStatus, Undecodable};
use crate::inplace::PodView;
use crate::names;
use crate::planner::model::{ConditionReport, Effect, EventNote, Plan, PlanInput};
use crate::planner::rules::conditions::{self, Counts};
use crate::planner::rules::limits::{Resolved, resolve};
use crate::planner::rules::pod_revisions::PodRevisions;
use crate::planner::rules::{adoption, hookruns};

/// The spec resolved and its selector checked, or the message that refuses it.
pub fn resolve_spec(gd: &GameDeployment) -> Result<Resolved, String> {
    let mut resolved = resolve(&gd.spec).map_err(|e| e.to_string())?;
    check_selector(gd)?;
    resolved.policy.hook_retry_generation =
        hookruns::retry_generation(gd, gd.spec.pre_inplace_update_strategy.as_ref());
    Ok(resolved)
}

/// A selector the controller can use safely: non-empty and matching the template labels
/// (otherwise it would create pods it cannot see, for ever).
fn check_selector(gd: &GameDeployment) -> Result<(), String> {
    adoption::selector_of(gd)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A plan that touches nothing and says why.
pub fn refuse(world: &PlanInput, views: &[&PodView], message: String) -> Plan {
    let gd = world.gd;
    refusal(
        Refused {
            generation: gd.metadata.generation,
            replicas: gd.spec.replicas(),
            label_selector: adoption::label_selector(gd),
            previous: gd.status.as_ref(),
            now: world.now,
        },
        views,
        message,
    )
}

/// A plan for a GameDeployment whose spec cannot be decoded: what [`refuse`] does, with what
/// can be known without a spec (the replicas it owns now, the selector it last reported).
pub fn refuse_undecodable(u: &Undecodable, views: &[&PodView], now: jiff::Timestamp) -> Plan {
    let previous = u.status.as_ref();
    refusal(
        Refused {
            generation: u.metadata.generation,
            replicas: views.iter().filter(|p| !p.deleting).count() as i32,
            label_selector: previous
                .map(|s| s.label_selector.clone())
                .unwrap_or_default(),
            previous,
            now,
        },
        views,
        u.reason.clone(),
    )
}

/// What a refusal's status is computed from.
struct Refused<'a> {
    generation: Option<i64>,
    replicas: i32,
    label_selector: String,
    previous: Option<&'a GameDeploymentStatus>,
    now: jiff::Timestamp,
}

fn refusal(r: Refused, views: &[&PodView], message: String) -> Plan {
    let problems = [ConditionReport {
        condition: names::CONDITION_FAILED_SCALE,
        reason: names::EVENT_INVALID_SPEC,
        message: message.clone(),
    }];
    let previous = r.previous;
    let update = previous
        .map(|s| s.update_revision.clone())
        .unwrap_or_default();
    let order: Vec<String> = previous
        .map(|s| vec![s.current_revision.clone()])
        .unwrap_or_default();
    let status = conditions::compute(&conditions::StatusInput {
        generation: r.generation,
        counts: Counts::of(views, &update, 0, r.now),
        replicas: r.replicas,
        partition: 0,
        paused: false,
        update_revision: &update,
        current_revision: &PodRevisions::of(views).current(&order, &update),
        collision_count: previous.and_then(|s| s.collision_count),
        label_selector: r.label_selector,
        abandoned: 0,
        problems: &problems,
        previous,
        now: r.now,
    });
    Plan {
        effects: vec![
            Effect::Event {
                note: EventNote::warning(names::EVENT_INVALID_SPEC, message),
                chain: None,
            },
            Effect::WriteStatus(status),
        ],
        requeue_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_true_names_the_generation_it_retries_in() {
        let mut gd: GameDeployment = serde_saphyr::from_str(
            include_str!("../../../../../deploy/examples/drain-hook.yaml")
                .split("---")
                .nth(1)
                .unwrap(),
        )
        .unwrap();
        gd.metadata.generation = Some(7);
        assert_eq!(
            resolve_spec(&gd).unwrap().policy.hook_retry_generation,
            None
        );
        gd.spec.pre_inplace_update_strategy.as_mut().unwrap().retry = true;
        assert_eq!(
            resolve_spec(&gd).unwrap().policy.hook_retry_generation,
            Some(7)
        );
    }
}
