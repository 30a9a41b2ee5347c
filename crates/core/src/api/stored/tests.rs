use super::*;
use kube::core::ObjectList;
use serde_json::json;

fn seed_json() -> serde_json::Value {
    serde_json::to_value(super::super::gamedeployment::seed_example()).unwrap()
}

fn read(v: &serde_json::Value) -> StoredGameDeployment {
    StoredGameDeployment::from_json(&v.to_string()).unwrap()
}

fn reason(v: &serde_json::Value) -> String {
    match read(v) {
        StoredGameDeployment::Undecodable(u) => u.reason,
        StoredGameDeployment::Decoded(_) => panic!("decoded"),
    }
}

/// `{"f:x":{"f:x":...0...}}`, `depth` levels: what managedFields record of a deep field.
fn nested(depth: usize) -> String {
    format!("{}0{}", r#"{"f:x":"#.repeat(depth), "}".repeat(depth))
}

/// A GameDeployment with a deep template and managedFields as deep decodes: the spec's
/// unknown fields are skipped and managedFields are not read.
#[test]
fn a_game_deployment_with_deep_managed_fields_decodes() {
    let mut gd = seed_json();
    gd["metadata"]["managedFields"] = json!("MANAGED");
    gd["spec"]["template"]["spec"]["x"] = json!("DEEP");
    let managed = format!(
        r#"[{{"manager":"kubectl","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}}}]"#,
        nested(5000)
    );
    let text = gd
        .to_string()
        .replace(r#""MANAGED""#, &managed)
        .replace(r#""DEEP""#, &nested(5000));
    let list = format!(r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{text}]}}"#);
    let list: ObjectList<StoredGameDeployment> = serde_json::from_str(&list).unwrap();
    assert!(list.items[0].decoded().is_some());
}

#[test]
fn a_valid_object_decodes_as_the_typed_one_does() {
    let v = seed_json();
    let typed: GameDeployment = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(read(&v).decoded().map(|gd| gd.as_ref()), Some(&typed));
}

#[test]
fn a_number_past_its_format_names_the_field_without_a_text_position() {
    let mut v = seed_json();
    v["spec"]["replicas"] = json!(1_099_511_627_776_i64);
    assert_eq!(
        reason(&v),
        "cannot read spec.replicas: invalid value: integer `1099511627776`, expected i32"
    );
    let mut v = seed_json();
    v["spec"]["updateStrategy"]["inPlaceUpdateStrategy"]["gracePeriodSeconds"] =
        json!(1_000_000_000_000_i64);
    let r = reason(&v);
    assert!(
        r.starts_with("cannot read spec.updateStrategy.inPlaceUpdateStrategy.gracePeriodSeconds: "),
        "{r}"
    );
    assert!(!r.contains("line 1"), "{r}");
}

#[test]
fn metadata_and_status_survive_an_undecodable_spec() {
    let mut v = seed_json();
    v["spec"]["replicas"] = json!("eight");
    v["status"] = json!({"replicas": 3, "observedGeneration": 1});
    let StoredGameDeployment::Undecodable(u) = read(&v) else {
        panic!("decoded")
    };
    assert_eq!(u.metadata.name.as_deref(), Some("test-gamedeployment"));
    assert_eq!(u.metadata.uid.as_deref(), Some("gd-uid"));
    assert_eq!(u.status.as_ref().map(|s| s.replicas), Some(3));
    assert_eq!(u.stored_replicas(), None, "\"eight\" is not a number");
    let mut v = seed_json();
    v["spec"]["replicas"] = json!(1_099_511_627_776_i64);
    let StoredGameDeployment::Undecodable(u) = read(&v) else {
        panic!("decoded")
    };
    assert_eq!(
        u.stored_replicas().map(|n| n.to_string()).as_deref(),
        Some("1099511627776")
    );
}

/// kube-apiserver stores objects up to 10,000 levels deep, and the pod template keeps
/// unknown fields. One such object in a list must neither fail the list (that would stall
/// the informer for every GameDeployment) nor be refused: the typed spec skips unknown
/// fields without recursing. Next to it, an undecodable object is reported on its own.
#[test]
fn a_list_holding_a_very_deep_and_an_undecodable_object_still_decodes() {
    let mut deep = seed_json();
    deep["metadata"]["name"] = json!("deep");
    deep["spec"]["template"]["spec"]["x"] =
        (0..5000).fold(json!(0), |inner, _| json!({ "x": inner }));
    let mut huge = seed_json();
    huge["metadata"]["name"] = json!("huge");
    huge["spec"]["replicas"] = json!(1_099_511_627_776_i64);
    // serde_json cannot write 5,000 levels through `Value`: the text is built by hand.
    let list = format!(
        r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{},{},{}]}}"#,
        deep_text(&deep),
        deep_text(&huge),
        deep_text(&seed_json()),
    );
    let list: kube::core::ObjectList<StoredGameDeployment> = serde_json::from_str(&list).unwrap();
    let names: Vec<(String, bool)> = list
        .items
        .iter()
        .map(|gd| (gd.meta().name.clone().unwrap(), gd.decoded().is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("deep".to_string(), true),
            ("huge".to_string(), false),
            ("test-gamedeployment".to_string(), true)
        ]
    );
    for gd in [&deep, &huge] {
        let event = format!(r#"{{"type":"MODIFIED","object":{}}}"#, deep_text(gd));
        let event: kube::core::WatchEvent<StoredGameDeployment> =
            serde_json::from_str(&event).unwrap();
        assert!(matches!(event, kube::core::WatchEvent::Modified(_)));
    }
}

/// `v` as JSON text, written without recursion (serde_json's writer recurses).
fn deep_text(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut stack = vec![Step::Value(v)];
    enum Step<'a> {
        Value(&'a serde_json::Value),
        Text(&'static str),
        Key(&'a str),
    }
    while let Some(step) = stack.pop() {
        match step {
            Step::Text(t) => out.push_str(t),
            Step::Key(k) => {
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
            }
            Step::Value(serde_json::Value::Object(m)) => {
                out.push('{');
                stack.push(Step::Text("}"));
                for (i, (k, v)) in m.iter().enumerate().rev() {
                    stack.push(Step::Value(v));
                    stack.push(Step::Key(k));
                    if i > 0 {
                        stack.push(Step::Text(","));
                    }
                }
            }
            Step::Value(serde_json::Value::Array(items)) => {
                out.push('[');
                stack.push(Step::Text("]"));
                for (i, v) in items.iter().enumerate().rev() {
                    stack.push(Step::Value(v));
                    if i > 0 {
                        stack.push(Step::Text(","));
                    }
                }
            }
            Step::Value(leaf) => out.push_str(&leaf.to_string()),
        }
    }
    out
}
