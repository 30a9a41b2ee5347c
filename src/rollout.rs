//! The rollout verbs of `kubectl gamedeploy` (`pause`, `resume`, `promote`, `undo`, `history`,
//! `set image`): the IO edge. What each decides is `gamedeploy_inspect::rollout`; here the
//! objects are read and the one write each verb makes is sent. Output and messages follow
//! `kubectl rollout` for a Deployment (`gamedeployment.tkex.tencent.com/NAME paused`, ...).

use std::sync::Arc;

use gamedeploy_core::api::{GameDeployment, StoredGameDeployment};
use gamedeploy_inspect::rollout::{RESOURCE, Revision, history, promotion, undo_target};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;

use crate::inspect::{InspectError, Target, game_deployment};
use gamedeploy_core::planner::rules::adoption::controlled_by;

/// The GameDeployment `name` in `ns`, decoded (a verb cannot act on a spec it cannot read).
async fn decoded(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<(Api<StoredGameDeployment>, Arc<GameDeployment>), InspectError> {
    let api: Api<StoredGameDeployment> = Api::namespaced(client.clone(), ns);
    match game_deployment(&api, ns, name).await? {
        StoredGameDeployment::Decoded(d) => Ok((api, d)),
        StoredGameDeployment::Undecodable(u) => Err(InspectError::Undecodable {
            namespace: ns.to_string(),
            name: name.to_string(),
            reason: u.reason,
        }),
    }
}

async fn patch(
    api: &Api<StoredGameDeployment>,
    name: &str,
    patch: &Patch<serde_json::Value>,
) -> Result<(), InspectError> {
    api.patch(name, &PatchParams::default(), patch)
        .await
        .map_err(|e| InspectError::api(format!("cannot patch GameDeployment {name}"), &e))?;
    Ok(())
}

/// `pause` (`paused`) and `resume`: `spec.updateStrategy.paused` by merge patch; one already
/// so is refused (exit 1), as kubectl's `rollout pause`/`resume` refuse it.
pub(crate) async fn set_paused(
    target: &Target,
    name: &str,
    paused: bool,
) -> Result<String, InspectError> {
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let (api, gd) = decoded(&client, &ns, name).await?;
    let word = if paused { "paused" } else { "resumed" };
    if gd.spec.paused() == paused {
        return Err(InspectError::NothingToDo {
            name: name.to_string(),
            why: if paused {
                "is already paused"
            } else {
                "is not paused"
            },
        });
    }
    let body = json!({"spec": {"updateStrategy": {"paused": paused}}});
    patch(&api, name, &Patch::Merge(body)).await?;
    Ok(format!("{RESOURCE}/{name} {word}\n"))
}

/// `promote [--full]`: records the next canary step (or the end) in `status.currentStepIndex`,
/// where the operator's planner goes on from; pause conditions of the step left go with it,
/// and a pause the operator set at that step is cleared.
pub(crate) async fn promote(
    target: &Target,
    name: &str,
    full: bool,
) -> Result<String, InspectError> {
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let (api, gd) = decoded(&client, &ns, name).await?;
    let p = promotion(&gd, full)?;
    // The resourceVersion makes the write conditional: the step moved on is the one just read.
    let body = json!({
        "metadata": {"resourceVersion": gd.meta().resource_version},
        "status": {
            "currentStepIndex": p.to,
            "pauseConditions": null,
            "canary": {"currentStepHookRun": ""},
        }
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => InspectError::Api {
                what: format!("gamedeployment {ns}/{name} changed while it was being promoted"),
                reason: "run the command again".into(),
            },
            e => InspectError::api(
                format!("cannot patch the status of GameDeployment {name}"),
                &e,
            ),
        })?;
    if p.resume {
        let body = json!({"spec": {"updateStrategy": {"paused": false}}});
        patch(&api, name, &Patch::Merge(body)).await?;
    }
    let mut out = if p.to >= p.steps && p.from + 1 == p.steps {
        format!(
            "{RESOURCE}/{name} promoted: canary step {} done (the last), the rollout goes on to every pod\n",
            p.from
        )
    } else if p.to >= p.steps {
        format!(
            "{RESOURCE}/{name} promoted: canary steps {} to {} done, the rollout goes on to every pod\n",
            p.from,
            p.steps - 1
        )
    } else {
        format!(
            "{RESOURCE}/{name} promoted: canary step {} done, now at step {} of {}\n",
            p.from, p.to, p.steps
        )
    };
    if p.still_paused {
        out.push_str(&format!(
            "It stays paused (spec.updateStrategy.paused): `kubectl gamedeploy resume {name}` continues it.\n"
        ));
    }
    Ok(out)
}

/// The revisions `gd` controls, oldest first.
async fn revisions(
    client: &Client,
    ns: &str,
    gd: &GameDeployment,
) -> Result<Vec<Revision>, InspectError> {
    let stored = Api::<ControllerRevision>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| InspectError::api(format!("cannot list the ControllerRevisions of {ns}"), &e))?
        .items;
    Ok(Revision::of(
        &StoredGameDeployment::Decoded(Arc::new(gd.clone())),
        &stored,
    ))
}

/// `undo [--to-revision N]`: the spec's template replaced by the revision's, in one JSON patch
/// conditioned on the resourceVersion read.
pub(crate) async fn undo(
    target: &Target,
    name: &str,
    to_revision: Option<i64>,
) -> Result<String, InspectError> {
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let (api, gd) = decoded(&client, &ns, name).await?;
    if gd.spec.paused() {
        // As kubectl refuses to roll back a paused Deployment.
        return Err(InspectError::UndoPaused {
            name: name.to_string(),
        });
    }
    let revisions = revisions(&client, &ns, &gd).await?;
    let target = undo_target(name, &revisions, &gd.spec.template, to_revision)?;
    if target.template == gd.spec.template {
        return Ok(format!(
            "{RESOURCE}/{name} skipped rollback (current template already matches revision {})\n",
            target.number
        ));
    }
    let body = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": gd.meta().resource_version},
        {"op": "replace", "path": "/spec/template", "value": &target.template},
    ]);
    let ops: json_patch::Patch = serde_json::from_value(body).map_err(|e| InspectError::Api {
        what: "cannot build the rollback patch".into(),
        reason: e.to_string(),
    })?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .map_err(|e| InspectError::api(format!("cannot roll back GameDeployment {name}"), &e))?;
    Ok(format!("{RESOURCE}/{name} rolled back\n"))
}

/// `history [--revision N]`: the table of revisions, or one revision's template.
pub(crate) async fn show_history(
    target: &Target,
    name: &str,
    revision: Option<i64>,
) -> Result<String, InspectError> {
    use gamedeploy_core::names::ANNOTATION_CHANGE_CAUSE;
    use gamedeploy_inspect::rollout::Unrestorable;
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let (_, gd) = decoded(&client, &ns, name).await?;
    let revisions = revisions(&client, &ns, &gd).await?;
    if let Some(number) = revision.filter(|n| *n != 0) {
        let r = revisions
            .iter()
            .find(|r| r.number == number)
            .ok_or(Unrestorable::NoSuchRevision { number })?;
        let yaml =
            serde_saphyr::to_string(&r.template).map_err(|e| InspectError::Yaml(e.to_string()))?;
        let indented: String = yaml.lines().map(|l| format!("  {l}\n")).collect();
        return Ok(format!(
            "{RESOURCE}/{name} with revision #{number}\nPod Template:\n{indented}"
        ));
    }
    let uid = gd.meta().uid.clone();
    let pods: Vec<Pod> = match gd.status.as_ref().map(|s| s.label_selector.clone()) {
        Some(selector) if !selector.is_empty() => Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| InspectError::api(format!("cannot list the pods of {ns}/{name}"), &e))?
            .items
            .into_iter()
            .filter(|p| uid.as_deref().is_some_and(|uid| controlled_by(p, uid)))
            .collect(),
        _ => Vec::new(),
    };
    let cause = gd
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CHANGE_CAUSE))
        .map(String::as_str);
    let update = gd
        .status
        .as_ref()
        .map(|s| s.update_revision.as_str())
        .unwrap_or_default();
    Ok(history(name, &revisions, &pods, cause, update))
}

/// `CONTAINER=IMAGE` pairs, kubectl's `set image` arguments (`*` is every container).
fn image_pairs(pairs: &[String]) -> Result<Vec<(&str, &str)>, InspectError> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((c, i)) if !c.is_empty() && !i.is_empty() => Ok((c, i)),
            _ => Err(InspectError::NotAnImagePair(p.clone())),
        })
        .collect()
}

/// `set image NAME CONTAINER=IMAGE...`: one JSON patch, each replaced image guarded by a test
/// of its container's name (init containers too, as kubectl does).
pub(crate) async fn set_image(
    target: &Target,
    name: &str,
    pairs: &[String],
) -> Result<String, InspectError> {
    let pairs = image_pairs(pairs)?;
    let (client, ns) = target.connect("GameDeployment", name).await?;
    let (api, gd) = decoded(&client, &ns, name).await?;
    let spec = gd.spec.template.spec.clone().unwrap_or_default();
    let lists = [
        ("containers", spec.containers.clone()),
        (
            "initContainers",
            spec.init_containers.clone().unwrap_or_default(),
        ),
    ];
    let mut ops = Vec::new();
    for (container, image) in &pairs {
        let mut found = false;
        for (list, containers) in &lists {
            for (i, c) in containers.iter().enumerate() {
                if *container == "*" || c.name == *container {
                    found = true;
                    let at = format!("/spec/template/spec/{list}/{i}");
                    ops.push(json!({"op": "test", "path": format!("{at}/name"), "value": c.name}));
                    ops.push(
                        json!({"op": "replace", "path": format!("{at}/image"), "value": image}),
                    );
                }
            }
        }
        if !found {
            let known: Vec<&str> = lists
                .iter()
                .flat_map(|(_, cs)| cs.iter().map(|c| c.name.as_str()))
                .collect();
            return Err(InspectError::UnknownContainer {
                name: name.to_string(),
                container: container.to_string(),
                known: known.join(", "),
            });
        }
    }
    let ops: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).map_err(|e| InspectError::Api {
            what: "cannot build the image patch".into(),
            reason: e.to_string(),
        })?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .map_err(|e| {
            InspectError::api(format!("cannot set the image of GameDeployment {name}"), &e)
        })?;
    Ok(format!("{RESOURCE}/{name} image updated\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pairs_are_container_equals_image() {
        let pairs = ["python=python:3.10".to_string(), "*=game:2".to_string()];
        assert_eq!(
            image_pairs(&pairs).unwrap(),
            [("python", "python:3.10"), ("*", "game:2")]
        );
        for bad in ["python", "=x", "python="] {
            assert_eq!(
                image_pairs(&[bad.to_string()]).unwrap_err().to_string(),
                format!(
                    "'{bad}' is not CONTAINER=IMAGE (e.g. python=python:3.10, or *=IMAGE for every container)"
                )
            );
        }
    }
}
