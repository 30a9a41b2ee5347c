//! Building the pods the controller creates: the template, plus what every GameDeployment pod
//! carries (revision and instance-id labels, the controller owner reference, and the
//! `InPlaceUpdateReady` readiness gate, so any pod can later be updated in place, unless
//! `spec.disableReadinessGate` is set).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodReadinessGate, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::replicas::NewPod;
use crate::names;
use crate::planner::model::Owner;

/// The pod for `new` from the revision's `template`; with `readiness_gate` it carries the
/// `InPlaceUpdateReady` gate (a gate the template itself lists is kept either way).
pub fn build(owner: &Owner, template: &PodTemplateSpec, new: &NewPod, readiness_gate: bool) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    labels.insert(names::LABEL_REVISION.into(), new.revision.clone());
    labels.insert(names::LABEL_POD_INSTANCE_ID.into(), new.instance_id.clone());
    let mut spec: PodSpec = template.spec.clone().unwrap_or_default();
    if readiness_gate {
        let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
        if !gates
            .iter()
            .any(|g| g.condition_type == names::CONDITION_INPLACE_READY)
        {
            gates.push(PodReadinessGate {
                condition_type: names::CONDITION_INPLACE_READY.into(),
            });
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(new.name.clone()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_carry_labels_owner_and_the_readiness_gate() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "game"}, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "python", "image": "python:3.9"}]}
        }))
        .unwrap();
        let owner = Owner {
            name: "gd".into(),
            namespace: "default".into(),
            uid: "u1".into(),
        };
        let new = NewPod {
            name: "gd-x7k2p".into(),
            instance_id: "x7k2p".into(),
            revision: "gd-abc".into(),
        };
        let pod = build(&owner, &template, &new, true);
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app"], "game");
        assert_eq!(labels[names::LABEL_REVISION], "gd-abc");
        assert_eq!(labels[names::LABEL_POD_INSTANCE_ID], "x7k2p");
        let owner_ref = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner_ref.kind.as_str(), owner_ref.controller),
            ("GameDeployment", Some(true))
        );
        let gates = pod.spec.as_ref().unwrap().readiness_gates.as_ref().unwrap();
        assert_eq!(gates.len(), 1);
        assert_eq!(gates[0].condition_type, "InPlaceUpdateReady");
        // A template that already has the gate does not get it twice.
        let mut t2 = template.clone();
        t2.spec.as_mut().unwrap().readiness_gates = Some(gates.clone());
        assert_eq!(
            build(&owner, &t2, &new, true)
                .spec
                .unwrap()
                .readiness_gates
                .unwrap()
                .len(),
            1
        );
        // spec.disableReadinessGate: no gate, and no empty list either.
        assert_eq!(
            build(&owner, &template, &new, false)
                .spec
                .unwrap()
                .readiness_gates,
            None
        );
    }
}
