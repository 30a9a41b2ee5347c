use super::*;

fn pod() -> PodView {
    PodView {
        name: "gd-abcde".into(),
        namespace: "default".into(),
        revision: Some("r1".into()),
        phase: Some("Running".into()),
        ready: true,
        ..Default::default()
    }
}

fn drain() -> Option<DeletionGate<'static>> {
    Some(DeletionGate {
        template: "drain",
        retry_generation: None,
    })
}

#[test]
fn without_a_hook_or_a_running_pod_deletion_goes_ahead() {
    let runs = BTreeMap::new();
    assert_eq!(check(&pod(), None, &runs), DeletionVerdict::Delete);
    let pending = PodView {
        phase: Some("Pending".into()),
        ..pod()
    };
    assert_eq!(check(&pending, drain(), &runs), DeletionVerdict::Delete);
}

#[test]
fn a_running_pod_waits_for_its_hook_run_which_is_created_once() {
    let mut runs = BTreeMap::new();
    let DeletionVerdict::Wait {
        create: Some(req),
        mark: true,
        stuck: None,
        ..
    } = check(&pod(), drain(), &runs)
    else {
        panic!("expected a HookRun request");
    };
    assert_eq!(req.name, "predelete-r1-abcde-drain");
    assert_eq!(req.kind, HookKind::PreDelete);
    assert_eq!(req.args["PodName"], "gd-abcde");

    let run = |phase| HookRunView {
        phase: Some(phase),
        ..Default::default()
    };
    runs.insert(req.name.clone(), HookRunView::default());
    assert!(
        matches!(
            check(&pod(), drain(), &runs),
            DeletionVerdict::Wait { create: None, .. }
        ),
        "created but not yet evaluated: wait, do not ask again"
    );
    runs.insert(req.name.clone(), run(HookPhase::Running));
    let mut marked = pod();
    marked
        .annotations
        .insert(names::ANNOTATION_POD_DELETING.into(), "true".into());
    assert_eq!(
        check(&marked, drain(), &runs),
        DeletionVerdict::Wait {
            create: None,
            mark: false,
            stuck: None,
            phase: HookPhase::Running,
        }
    );
    runs.insert(req.name.clone(), run(HookPhase::Successful));
    assert_eq!(check(&marked, drain(), &runs), DeletionVerdict::Delete);
}

#[test]
fn a_failed_hook_keeps_the_pod_and_says_how_to_go_on() {
    let failed = HookRunView {
        phase: Some(HookPhase::Failed),
        ..Default::default()
    };
    let runs = [("predelete-r1-abcde-drain".to_string(), failed)].into();
    let DeletionVerdict::Wait {
        create: None,
        stuck: Some(why),
        ..
    } = check(&pod(), drain(), &runs)
    else {
        panic!("expected the pod to be held");
    };
    assert!(
        why.contains("HookRun predelete-r1-abcde-drain is Failed"),
        "{why}"
    );
    assert!(why.contains("delete the HookRun"), "{why}");
    assert!(why.contains("preDeleteUpdateStrategy.retry"), "{why}");
}

#[test]
fn retry_runs_a_failed_hook_again_once_per_generation() {
    let gate = |g| {
        Some(DeletionGate {
            template: "drain",
            retry_generation: Some(g),
        })
    };
    let failed = |labels: &[(&str, &str)]| HookRunView {
        phase: Some(HookPhase::Failed),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let mut runs: BTreeMap<String, HookRunView> =
        [("predelete-r1-abcde-drain".to_string(), failed(&[]))].into();
    let DeletionVerdict::Wait {
        create: Some(req),
        stuck: None,
        ..
    } = check(&pod(), gate(4), &runs)
    else {
        panic!("expected a second attempt");
    };
    assert_eq!(req.name, "predelete-r1-abcde-drain.1");
    assert_eq!(req.retry_generation, Some(4));
    runs.insert(
        req.name.clone(),
        failed(&[(names::LABEL_HOOKRUN_RETRY_GENERATION, "4")]),
    );
    let DeletionVerdict::Wait {
        create: None,
        stuck: Some(why),
        ..
    } = check(&pod(), gate(4), &runs)
    else {
        panic!("once per generation");
    };
    assert!(
        why.contains("HookRun predelete-r1-abcde-drain.1 is Failed"),
        "{why}"
    );
    let DeletionVerdict::Wait {
        create: Some(again),
        ..
    } = check(&pod(), gate(5), &runs)
    else {
        panic!("a new generation retries again");
    };
    assert_eq!(again.name, "predelete-r1-abcde-drain.2");
    runs.insert(
        again.name.clone(),
        HookRunView {
            phase: Some(HookPhase::Successful),
            ..Default::default()
        },
    );
    assert_eq!(check(&pod(), gate(5), &runs), DeletionVerdict::Delete);
}
