//! When a run has settled: every GameDeployment's status shows its spec done and no pod is
//! mid-update or terminating. The runner checks it on listed objects, the feed view
//! (`feed_view.rs`) on what the change feed has shown; both read these rules.

use k8s_openapi::api::core::v1::Pod;

use gamedeploy_core::api::{StoredGameDeployment, UpdateStrategyType};
use gamedeploy_core::inplace::{self, Decoded, State};

/// Every GameDeployment's status matches its spec and no pod is mid-update or terminating.
/// A GameDeployment whose spec the operator cannot decode never is.
pub fn is_settled(pods: &[Pod], gds: &[StoredGameDeployment]) -> bool {
    !pods.iter().any(pod_busy) && gds.iter().all(gd_settled)
}

/// The pod is terminating or mid-update (a state record that is not Ready, Abandoned, Failed
/// or ResizeInfeasible, where it stays until the template changes).
pub fn pod_busy(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
        || match p.metadata.annotations.as_ref().map(inplace::decode) {
            Some(Decoded::Valid(r)) => !matches!(
                r.state,
                State::Ready | State::Abandoned | State::Failed | State::ResizeInfeasible
            ),
            _ => false,
        }
}

/// The GameDeployment's status shows its spec done: observed, every replica ready and
/// updated (up to the partition, or as far as it got when paused or under OnDelete).
pub fn gd_settled(stored: &StoredGameDeployment) -> bool {
    let Some(gd) = stored.decoded() else {
        return false;
    };
    let Some(s) = &gd.status else { return false };
    let replicas = gd.spec.replicas();
    // Canary steps replace the partition: settled once every step is done (or paused).
    let steps = gd.spec.canary_steps().len();
    let partition = if steps > 0 {
        0
    } else {
        gd.spec.partition(replicas).unwrap_or(0).clamp(0, replicas)
    };
    let steps_done = s.current_step_index.is_none_or(|i| i as usize >= steps);
    // OnDelete moves a pod only when the user deletes it: done once every replica is ready.
    let on_delete = gd.spec.update_strategy_type() == UpdateStrategyType::OnDelete;
    let expected = if gd.spec.paused() || on_delete {
        s.updated_replicas
    } else {
        replicas - partition
    };
    s.observed_generation == gd.metadata.generation.unwrap_or(0)
        && (steps_done || gd.spec.paused())
        && s.replicas == replicas
        && s.ready_replicas == replicas
        && s.updated_replicas >= expected
        && s.updated_ready_replicas == s.updated_replicas
}
