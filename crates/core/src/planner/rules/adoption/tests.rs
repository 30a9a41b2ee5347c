use super::*;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

fn gd() -> GameDeployment {
    crate::api::seed_example()
}

/// A pod labelled `app=<app>` in `ns`, controlled by `owner` if given.
fn pod(name: &str, ns: &str, app: &str, owner: Option<&str>) -> Pod {
    let refs: Vec<_> = owner
        .map(|uid| {
            json!({"apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
                    "name": "x", "uid": uid, "controller": true})
        })
        .into_iter()
        .collect();
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns,
            "labels": {"app": app}, "ownerReferences": refs}}))
    .unwrap()
}

fn names<P: Borrow<CachedPod>>(pods: &[&P]) -> Vec<String> {
    pods.iter()
        .map(|p| Borrow::<CachedPod>::borrow(*p).meta().name.clone().unwrap())
        .collect()
}

#[test]
fn adopts_matching_orphans_releases_mismatches_and_leaves_others_alone() {
    let gd = gd();
    let app = gd.spec.selector.match_labels.as_ref().unwrap()["app"].clone();
    let mut dying = pod("dying-orphan", "default", &app, None);
    dying.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let mut done = pod("finished-orphan", "default", &app, None);
    done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
    let mut bystander = pod("non-controller-ref", "default", &app, None);
    bystander.metadata.owner_references.as_mut().unwrap().push(
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "name": "c", "uid": "cm-uid"}))
        .unwrap(),
    );
    let pods = vec![
        pod("mine", "default", &app, Some("gd-uid")),
        pod("relabeled", "default", "other", Some("gd-uid")),
        pod("orphan", "default", &app, None),
        pod("other-app-orphan", "default", "other", None),
        pod("someone-elses", "default", &app, Some("rs-uid")),
        pod("elsewhere", "kube-system", &app, None),
        dying,
        done,
        bystander,
    ];
    let pods: Vec<CachedPod> = pods.into_iter().map(CachedPod::from).collect();
    let c = claim(&gd, &pods).unwrap();
    assert_eq!(names(&c.owned), ["mine"]);
    assert_eq!(names(&c.adopt), ["orphan", "non-controller-ref"]);
    assert_eq!(names(&c.release), ["relabeled"]);
    assert!(wants_orphan(&gd, &pods[2]));
    assert!(!wants_orphan(&gd, &pods[4]), "owned by another controller");
    assert!(!wants_orphan(&gd, &pods[5]), "another namespace");
}

#[test]
fn a_game_deployment_being_deleted_neither_adopts_nor_releases() {
    let mut gd = gd();
    gd.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let app = gd.spec.selector.match_labels.as_ref().unwrap()["app"].clone();
    let pods = vec![
        pod("mine", "default", &app, Some("gd-uid")),
        pod("relabeled", "default", "other", Some("gd-uid")),
        pod("orphan", "default", &app, None),
    ];
    let pods: Vec<CachedPod> = pods.into_iter().map(CachedPod::from).collect();
    let c = claim(&gd, &pods).unwrap();
    assert_eq!(names(&c.owned), ["mine"]);
    assert!(c.adopt.is_empty() && c.release.is_empty());
    assert!(!wants_orphan(&gd, &pods[2]));
}

#[test]
fn an_unusable_selector_claims_nothing() {
    let mut gd = gd();
    gd.spec.selector = LabelSelector::default();
    let pods = vec![pod("orphan", "default", "any", None)];
    let pods: Vec<CachedPod> = pods.into_iter().map(CachedPod::from).collect();
    assert_eq!(claim(&gd, &pods).unwrap_err(), SelectorError::Empty);
    assert!(!wants_orphan(&gd, &pods[0]));
    gd.spec.selector =
        serde_json::from_value(json!({"matchExpressions": [{"key": "app", "operator": "Near"}]}))
            .unwrap();
    assert_eq!(
        claim(&gd, &pods).unwrap_err(),
        SelectorError::Operator("Near".into())
    );
    gd.spec.selector =
        serde_json::from_value(json!({"matchExpressions": [{"key": "app", "operator": "In"}]}))
            .unwrap();
    assert!(matches!(
        claim(&gd, &pods).unwrap_err(),
        SelectorError::Values { .. }
    ));
    gd.spec.selector.match_expressions = None;
    gd.spec.selector.match_labels = Some([("app".to_string(), "typo".to_string())].into());
    assert_eq!(
        claim(&gd, &pods).unwrap_err(),
        SelectorError::MissesTemplate {
            requirement: "app=typo".into()
        },
        "a selector that misses the template would release every pod"
    );
}

#[test]
fn match_expressions_follow_label_selector_semantics() {
    let selector: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "game"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["z9"]},
            {"key": "team", "operator": "Exists"}
        ]
    }))
    .unwrap();
    let s = Selector::new(&selector).unwrap();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(s.matches(&labels(&[("app", "game"), ("tier", "a"), ("team", "t")])));
    assert!(!s.matches(&labels(&[("app", "game"), ("tier", "c"), ("team", "t")])));
    assert!(!s.matches(&labels(&[("app", "game"), ("tier", "a")])));
    assert!(!s.matches(&labels(&[
        ("app", "game"),
        ("tier", "a"),
        ("team", "t"),
        ("canary", "")
    ])));
    assert!(!s.matches(&labels(&[
        ("app", "game"),
        ("tier", "b"),
        ("team", "t"),
        ("zone", "z9")
    ])));
    assert!(!s.matches(&labels(&[("tier", "a"), ("team", "t")])));
    assert_eq!(
        s.to_query(),
        "app=game,tier in (a,b),!canary,zone notin (z9),team"
    );
    assert_eq!(
        s.first_unmet(&labels(&[("app", "game"), ("tier", "c")]))
            .as_deref(),
        Some("tier in (a,b)")
    );
}
