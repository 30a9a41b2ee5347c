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
    let t = template(serde_json::json!([{"name": "PodName"}, {"name": "Port", "value": "8000"}]));
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
