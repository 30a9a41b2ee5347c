//! What the machine's tests share: a clock, a settled pod, and the API server taking a step's
//! write.

use super::*;
use crate::inplace::observe::ContainerView;
use crate::inplace::record::encode;

pub(super) fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + s).unwrap()
}

/// Pod `gd-abcde` at revision r1 (resourceVersion 5): one container `app` running image
/// `app:1`, ready, `InPlaceUpdateReady` true; no state record.
pub(in crate::inplace) fn settled_pod() -> PodView {
    let mut p = PodView {
        name: "gd-abcde".into(),
        resource_version: Some("5".into()),
        revision: Some("r1".into()),
        in_place_ready: Some(true),
        ..Default::default()
    };
    p.spec_images.insert("app".into(), "app:1".into());
    p.containers.insert(
        "app".into(),
        ContainerView {
            image: "app:1".into(),
            container_id: Some("c1".into()),
            running: true,
            ready: true,
            ..Default::default()
        },
    );
    p
}

/// The API server taking the step's one write, as the watch shows it.
pub(super) fn apply(pod: &mut PodView, step: &MachineStep) {
    let writes: Vec<&PodWrite> = step.writes().collect();
    assert_eq!(writes.len(), 1, "one write per step: {:?}", step.actions);
    let write = writes[0];
    for (name, image) in &write.images {
        pod.spec_images.insert(name.clone(), image.clone());
    }
    if let Some(revision) = write.labels.get(names::LABEL_REVISION) {
        pod.revision = Some(revision.clone());
    }
    if let Some(c) = &write.condition {
        pod.in_place_ready = Some(c.ready);
    }
    if write.endpoint == Endpoint::PodResize {
        assert!(
            write.checkpoint.is_none(),
            "pods/resize carries no metadata"
        );
        for (name, patch) in &write.resources {
            let r = ContainerResources::from_json(Some(patch));
            pod.spec_resources.insert(name.clone(), r);
        }
        let resize = pod.resize.as_mut().unwrap();
        resize.generation = resize.generation.map(|g| g + 1);
    }
    if let Some(checkpoint) = &write.checkpoint {
        pod.annotations
            .insert(names::ANNOTATION_STATE.into(), encode(checkpoint));
    }
    let rv: u32 = pod.resource_version.as_deref().unwrap().parse().unwrap();
    pod.resource_version = Some((rv + 1).to_string());
}
