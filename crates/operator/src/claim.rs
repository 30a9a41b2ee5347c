//! Executes a claim decided by [`gamedeploy_core::planner::rules::adoption`]: adoption and
//! release are pod patches carrying the pod's uid, so a pod recreated under the same name is
//! left alone.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::execute::{Io, Writes, is_not_found};
use gamedeploy_core::api::{GameDeployment, StoredGameDeployment};
use gamedeploy_core::names;
use gamedeploy_core::planner::model::{CachedPod, Owner};
use gamedeploy_core::planner::rules::adoption as adopt;

/// What claiming did.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The adopted pods as the API server returned them (with our controller reference).
    pub adopted: Vec<Pod>,
    pub writes: Writes,
}

/// Adopts `adopt` and releases `release` for `gd`. Failures are counted in the writes and
/// reported as events; a pod that is gone is simply skipped.
pub async fn execute(
    io: Io<'_>,
    gd: &GameDeployment,
    adopt: &[&CachedPod],
    release: &[&CachedPod],
) -> Claimed {
    let mut out = Claimed::default();
    if adopt.is_empty() && release.is_empty() {
        return out;
    }
    let (Some(ns), Some(name), Some(uid)) = (gd.namespace(), gd.meta().name.clone(), gd.uid())
    else {
        return out;
    };
    let gd_ref = gd.object_ref(&());
    let pods: Api<Pod> = Api::namespaced(io.client.clone(), &ns);
    let params = PatchParams::default();

    let owner = Owner {
        name: name.clone(),
        namespace: ns.clone(),
        uid: uid.clone(),
    }
    .reference();
    let adopt = if adopt.is_empty() || can_adopt(io.client, gd, &mut out.writes).await {
        adopt
    } else {
        &[]
    };
    // Adoption and release differ only in the patch and the words of the event.
    let changes = adopt
        .iter()
        .map(|p| (p, true))
        .chain(release.iter().map(|p| (p, false)));
    for (pod, adopting) in changes {
        let pod_name = pod.name_any();
        let pod_uid = pod.uid().unwrap_or_default();
        let (patch, verb, done, why, (ok, failed)) = if adopting {
            let patch = adopt::adoption_patch(&owner, &pod_uid);
            let reasons = (names::EVENT_SUCCESSFUL_ADOPT, names::EVENT_FAILED_ADOPT);
            (patch, "adopt", "adopted", "matches", reasons)
        } else {
            let patch = adopt::release_patch(&uid, &pod_uid);
            let reasons = (names::EVENT_SUCCESSFUL_RELEASE, names::EVENT_FAILED_RELEASE);
            (patch, "release", "released", "no longer matches", reasons)
        };
        if !io.gate.is_open() {
            // Leadership is lost: a claim half done is finished by the next leader.
            return out;
        }
        io.metrics.write_sent("patch", "pods");
        out.writes.pods += 1;
        match pods
            .patch(&pod_name, &params, &Patch::Strategic(patch))
            .await
        {
            Ok(p) => {
                let msg = format!("{done} Pod {pod_name}: it {why} the selector of {name}");
                io.events.emit(&gd_ref, false, ok, &msg).await;
                if adopting {
                    out.adopted.push(p);
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                out.writes.failed += 1;
                let msg = format!("{verb} Pod {pod_name} failed: {}", crate::describe(&e));
                io.events.emit(&gd_ref, true, failed, &msg).await;
            }
        }
    }
    out
}

/// A fresh read of the GameDeployment before adopting (kube's `RecheckDeletionTimestamp`): the
/// cached copy may miss a deletion, and a GameDeployment being deleted must not adopt.
async fn can_adopt(client: &kube::Client, gd: &GameDeployment, writes: &mut Writes) -> bool {
    let api: Api<StoredGameDeployment> =
        Api::namespaced(client.clone(), &gd.namespace().unwrap_or_default());
    match api.get(&gd.name_any()).await {
        Ok(fresh) => fresh.uid() == gd.uid() && fresh.meta().deletion_timestamp.is_none(),
        Err(e) => {
            writes.failed += 1;
            tracing::warn!(error = %crate::describe(&e), "cannot recheck before adopting");
            false
        }
    }
}
