//! The generated CRDs: checked-in copies, structural-schema rules, defaults, examples and CEL.
//!
//! Regenerate `deploy/crds/` after changing `crates/core/src/api` with
//! `GAMEDEPLOY_BLESS=1 cargo test --test crds`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gamedeploy_core::api::{self, GameDeployment, HookPolicy, HookTemplate, UpdateStrategyType};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_cel::{Validator, compile_schema};
use serde_json::{Value, json};

const BLESS_VAR: &str = "GAMEDEPLOY_BLESS";

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn crd_of(kind: &str) -> CustomResourceDefinition {
    api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"))
}

/// The `openAPIV3Schema` of a CRD as plain JSON, the form the apiserver checks.
fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("every CRD has an openAPIV3Schema");
    serde_json::to_value(schema).unwrap()
}

/// The schema node at a property path, e.g. `["spec", "updateStrategy", "type"]`.
fn node<'a>(schema: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(schema, |n, p| {
        n.get("properties")
            .and_then(|props| props.get(*p))
            .unwrap_or_else(|| panic!("no schema property {p} on the way to {path:?}"))
    })
}

// ---------------------------------------------------------------------------------------------
// Checked-in YAML
// ---------------------------------------------------------------------------------------------

#[test]
fn checked_in_crds_match_the_generated_ones() {
    let bless = std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1");
    let dir = repo_path("deploy/crds");
    let mut drifted = Vec::new();
    for crd in api::crds() {
        let file = dir.join(api::crd_file_name(&crd));
        let generated = api::crd_yaml(&crd).unwrap();
        let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
        if on_disk == generated {
            continue;
        }
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &generated).unwrap();
        } else {
            drifted.push(file.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "these CRD files differ from what src/api generates: {drifted:?}\n\
         regenerate them with `{BLESS_VAR}=1 cargo test --test crds` and review the diff"
    );
}

/// `deploy/crds/` holds one file per CRD, and its `kustomization.yaml` (what
/// `kubectl apply -k deploy/` installs) lists exactly those.
#[test]
fn deploy_crds_holds_exactly_the_generated_files() {
    const KUSTOMIZATION: &str = "kustomization.yaml";
    let expected: BTreeSet<String> = api::crds().iter().map(api::crd_file_name).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_path("deploy/crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != KUSTOMIZATION)
        .collect();
    assert_eq!(
        on_disk, expected,
        "deploy/crds must hold one file per CRD and nothing else (remove stale files, \
         then run `{BLESS_VAR}=1 cargo test --test crds`)"
    );
    let kustomization: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo_path("deploy/crds").join(KUSTOMIZATION)).unwrap(),
    )
    .unwrap();
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed, expected,
        "deploy/crds/{KUSTOMIZATION} lists every CRD file"
    );
}

#[test]
fn every_checked_in_crd_round_trips_into_k8s_openapi() {
    for crd in api::crds() {
        let file = repo_path("deploy/crds").join(api::crd_file_name(&crd));
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap_or_else(|e| {
            panic!("{} is not a CustomResourceDefinition: {e}", file.display())
        });
        assert_eq!(parsed, crd, "{}", file.display());
        // And through JSON, which is what kubectl sends.
        let via_json: CustomResourceDefinition =
            serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
        assert_eq!(via_json, crd);
    }
    let stream: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&api::crds_yaml().unwrap()).unwrap();
    assert_eq!(stream, api::crds());
}

// ---------------------------------------------------------------------------------------------
// Names, subresources, printer columns
// ---------------------------------------------------------------------------------------------

#[test]
fn gamedeployment_names_subresources_and_columns_match_the_original() {
    let crd = crd_of("GameDeployment");
    assert_eq!(crd.spec.names.plural, "gamedeployments");
    assert_eq!(crd.spec.names.short_names, Some(vec!["gd".to_owned()]));
    let v = &crd.spec.versions[0];
    let sub = v.subresources.as_ref().unwrap();
    assert!(sub.status.is_some());
    let scale = sub.scale.as_ref().unwrap();
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.labelSelector")
    );
    let cols: Vec<(&str, &str, &str)> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str(), c.type_.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            ("DESIRED", ".spec.replicas", "integer"),
            ("UPDATED", ".status.updatedReplicas", "integer"),
            ("UPDATED_READY", ".status.updatedReadyReplicas", "integer"),
            ("READY", ".status.readyReplicas", "integer"),
            ("TOTAL", ".status.replicas", "integer"),
            ("AGE", ".metadata.creationTimestamp", "date"),
        ]
    );
}

#[test]
fn hook_crds_names_and_columns() {
    let template = crd_of("HookTemplate");
    assert_eq!(template.spec.names.plural, "hooktemplates");
    let run = crd_of("HookRun");
    assert_eq!(run.spec.names.plural, "hookruns");
    let v = &run.spec.versions[0];
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let cols: Vec<(&str, &str)> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            ("PHASE", ".status.phase"),
            ("AGE", ".metadata.creationTimestamp")
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Structural schema checker
//
// Rules from the Kubernetes docs, "Extend the Kubernetes API with CustomResourceDefinitions",
// section "Specifying a structural schema"
// (kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
// #specifying-a-structural-schema), KEP-2335 "Vanilla CRD OpenAPI subset: structural schemas",
// and the apiextensions.k8s.io/v1 restrictions listed in the same page (no `$ref`,
// `uniqueItems: true`, `additionalProperties` beside `properties`, `x-kubernetes-preserve-
// unknown-fields: false`; defaults must be pruned and validate, and may not sit inside
// logical junctors or root metadata):
//
// 1. the root, every property / additionalProperties schema and every `items` schema has a
//    non-empty `type`, except nodes with `x-kubernetes-int-or-string: true` or
//    `x-kubernetes-preserve-unknown-fields: true`;
// 2. every field or item mentioned inside `allOf`/`anyOf`/`oneOf`/`not` is also specified
//    outside of them;
// 3. nothing inside those junctors sets `description`, `type`, `default`,
//    `additionalProperties` or `nullable`, except the two int-or-string patterns;
// 4. root `metadata` may only restrict `name` and `generateName`.
// ---------------------------------------------------------------------------------------------

const TYPES: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];
const FORBIDDEN_KEYWORDS: [&str; 7] = [
    "$ref",
    "$schema",
    "definitions",
    "id",
    "patternProperties",
    "dependencies",
    "additionalItems",
];
const JUNCTORS: [&str; 4] = ["allOf", "anyOf", "oneOf", "not"];
const NOT_IN_JUNCTORS: [&str; 5] = [
    "description",
    "type",
    "default",
    "additionalProperties",
    "nullable",
];

fn is_true(obj: &serde_json::Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(true))
}

/// Every way `root` breaks the structural-schema rules, as `path: problem` lines.
fn structural_violations(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_node(root, "", &mut out);
    if let Some(meta) = root.get("properties").and_then(|p| p.get("metadata")) {
        check_root_metadata(meta, &mut out);
    }
    out
}

fn check_node(node: &Value, path: &str, out: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    let Some(obj) = node.as_object() else {
        out.push(format!("{at}: a schema must be an object, found {node}"));
        return;
    };
    let int_or_string = is_true(obj, "x-kubernetes-int-or-string");
    let preserve = is_true(obj, "x-kubernetes-preserve-unknown-fields");
    if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(format!(
            "{at}: x-kubernetes-preserve-unknown-fields must be true or absent"
        ));
    }
    match obj.get("type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {
            if int_or_string {
                out.push(format!(
                    "{at}: x-kubernetes-int-or-string must not set a type"
                ));
            }
        }
        Some(other) => out.push(format!(
            "{at}: type must be one of {TYPES:?}, found {other}"
        )),
        None if int_or_string || preserve => {}
        None => out.push(format!("{at}: missing type")),
    }
    for k in FORBIDDEN_KEYWORDS {
        if obj.contains_key(k) {
            out.push(format!("{at}: {k} is not allowed in a CRD schema"));
        }
    }
    if is_true(obj, "uniqueItems") {
        out.push(format!("{at}: uniqueItems: true is not allowed"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!(
            "{at}: properties and additionalProperties are mutually exclusive"
        ));
    }
    if let Some(Value::Array(values)) = obj.get("enum")
        && values.contains(&Value::Null)
    {
        out.push(format!("{at}: enum lists null; nullable already allows it"));
    }
    if let Some(props) = obj.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (k, v) in props {
                    check_node(v, &format!("{path}.{k}"), out);
                }
            }
            None => out.push(format!("{at}: properties must be a map of schemas")),
        }
    }
    match obj.get("additionalProperties") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            out.push(format!("{at}: additionalProperties: false is not allowed"))
        }
        Some(ap) => check_node(ap, &format!("{path}.*"), out),
    }
    match obj.get("items") {
        None => {}
        Some(items @ Value::Object(_)) => check_node(items, &format!("{path}[]"), out),
        Some(_) => out.push(format!("{at}: items must be a single schema, not a list")),
    }
    if let Some(default) = obj.get("default") {
        check_default(default, node, &format!("{at} default"), out);
    }
    for j in JUNCTORS {
        let Some(sub) = obj.get(j) else { continue };
        let subs: Vec<&Value> = match sub {
            Value::Array(a) if j != "not" => a.iter().collect(),
            Value::Object(_) if j == "not" => vec![sub],
            _ => {
                out.push(format!("{at}: malformed {j}"));
                continue;
            }
        };
        for s in subs {
            if int_or_string && j == "anyOf" && is_int_or_string_branch(s) {
                continue;
            }
            check_value_validation(s, node, &format!("{path}.{j}"), out);
        }
    }
}

/// `{type: integer}` or `{type: string}`: the branches allowed in an int-or-string `anyOf`.
fn is_int_or_string_branch(s: &Value) -> bool {
    s.as_object().is_some_and(|o| {
        o.len() == 1
            && matches!(
                o.get("type").and_then(Value::as_str),
                Some("integer" | "string")
            )
    })
}

/// Inside a junctor: value validations only, over fields specified outside.
fn check_value_validation(sub: &Value, outer: &Value, at: &str, out: &mut Vec<String>) {
    let Some(obj) = sub.as_object() else {
        out.push(format!("{at}: a schema must be an object"));
        return;
    };
    for k in NOT_IN_JUNCTORS {
        if obj.contains_key(k) {
            out.push(format!("{at}: {k} is not allowed inside a logical junctor"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            match outer.get("properties").and_then(|p| p.get(k)) {
                Some(outer_k) => check_value_validation(v, outer_k, &format!("{at}.{k}"), out),
                None => out.push(format!(
                    "{at}.{k}: field mentioned in a junctor but not specified outside it"
                )),
            }
        }
    }
    if let Some(items) = obj.get("items") {
        match outer.get("items") {
            Some(outer_items) => {
                check_value_validation(items, outer_items, &format!("{at}[]"), out)
            }
            None => out.push(format!(
                "{at}: items mentioned in a junctor but not specified outside it"
            )),
        }
    }
    for j in JUNCTORS {
        match obj.get(j) {
            Some(Value::Array(a)) => {
                for s in a {
                    check_value_validation(s, outer, &format!("{at}.{j}"), out);
                }
            }
            Some(s @ Value::Object(_)) => {
                check_value_validation(s, outer, &format!("{at}.{j}"), out)
            }
            _ => {}
        }
    }
}

fn check_root_metadata(meta: &Value, out: &mut Vec<String>) {
    let Some(obj) = meta.as_object() else { return };
    for k in obj.keys() {
        if k != "type" && k != "properties" {
            out.push(format!(
                ".metadata: only name and generateName may be restricted, found {k}"
            ));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            if k != "name" && k != "generateName" {
                out.push(format!(
                    ".metadata.{k}: only name and generateName may be restricted"
                ));
            }
            if v.get("default").is_some() {
                out.push(format!(".metadata.{k}: metadata must not be defaulted"));
            }
        }
    }
}

/// A default must be pruned (no fields the schema would drop) and validate against its schema.
fn check_default(value: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    let s = schema.as_object().expect("checked by check_node");
    if value.is_null() {
        if !is_true(s, "nullable") {
            out.push(format!("{at}: null default on a non-nullable field"));
        }
        return;
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} is not one of the enum values"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        out.push(format!("{at}: {value} is below minimum {min}"));
    }
    if is_true(s, "x-kubernetes-int-or-string") {
        if !(value.is_i64() || value.is_string()) {
            out.push(format!("{at}: {value} is neither an integer nor a string"));
        }
        return;
    }
    let ok = match s.get("type").and_then(Value::as_str) {
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("array") => match (value.as_array(), s.get("items")) {
            (Some(a), Some(items)) => {
                for (i, v) in a.iter().enumerate() {
                    check_default(v, items, &format!("{at}[{i}]"), out);
                }
                true
            }
            (Some(_), None) => true,
            (None, _) => false,
        },
        Some("object") => match value.as_object() {
            Some(o) => {
                for (k, v) in o {
                    if let Some(p) = s.get("properties").and_then(|p| p.get(k)) {
                        check_default(v, p, &format!("{at}.{k}"), out);
                    } else if let Some(ap @ Value::Object(_)) = s.get("additionalProperties") {
                        check_default(v, ap, &format!("{at}.{k}"), out);
                    } else if !is_true(s, "x-kubernetes-preserve-unknown-fields") {
                        out.push(format!(
                            "{at}.{k}: default holds a field the schema would prune"
                        ));
                    }
                }
                true
            }
            None => false,
        },
        _ => true,
    };
    if !ok {
        out.push(format!("{at}: {value} does not match the node's type"));
    }
}

#[test]
fn every_generated_schema_is_structural() {
    for crd in api::crds() {
        let schema = schema_of(&crd);
        let violations = structural_violations(&schema);
        assert!(
            violations.is_empty(),
            "{} schema is not structural:\n{}",
            crd.spec.names.kind,
            violations.join("\n")
        );
        assert_eq!(schema["type"], "object");
    }
}

#[test]
fn structural_checker_rejects_each_kind_of_violation() {
    let cases = [
        (
            json!({"type": "object", "properties": {"a": {}}}),
            ".a: missing type",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
            "mutually exclusive",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}}),
            "items must be a single schema",
        ),
        (
            json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/A", "type": "object"}}}),
            "$ref is not allowed",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}},
                "anyOf": [{"properties": {"a": {"type": "string"}}}]}),
            "type is not allowed inside a logical junctor",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}},
                "oneOf": [{"required": ["a"]}, {"properties": {"b": {"minLength": 1}}}]}),
            ".b: field mentioned in a junctor but not specified outside it",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "allOf": [{"default": "x"}]}}}),
            "default is not allowed inside a logical junctor",
        ),
        (
            json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"labels": {"type": "object"}}}}}),
            "only name and generateName may be restricted",
        ),
        (
            json!({"type": "object", "properties": {"a": {"x-kubernetes-int-or-string": true, "type": "string"}}}),
            "int-or-string must not set a type",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object", "default": {"b": 1},
                "properties": {"c": {"type": "integer"}}}}}),
            ".b: default holds a field the schema would prune",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}}),
            "does not match the node's type",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "enum": ["x", null], "nullable": true}}}),
            "enum lists null",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}}}),
            "must be true or absent",
        ),
        (json!({"properties": {}}), "<root>: missing type"),
    ];
    for (schema, expected) in cases {
        let violations = structural_violations(&schema);
        assert!(
            violations.iter().any(|v| v.contains(expected)),
            "expected a violation containing {expected:?} for {schema}, got {violations:?}"
        );
    }
    // The allowed forms pass: int-or-string with its anyOf pattern, preserved unknown fields
    // without a type, value validations over fields specified outside the junctor.
    let fine = json!({"type": "object", "properties": {
        "a": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "b": {"x-kubernetes-preserve-unknown-fields": true},
        "c": {"type": "object", "properties": {"x": {"type": "string"}}, "oneOf": [{"required": ["x"]}]},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}
    }});
    assert_eq!(structural_violations(&fine), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// Schema defaulting as the apiserver does it (apiextensions `structuraldefaulting.Default`):
/// fill missing properties from `default`, then recurse into every property, including ones
/// just defaulted, so `updateStrategy: {}` gets its own children's defaults.
fn apiserver_default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    if !obj.contains_key(k)
                        && let Some(d) = p.get("default")
                    {
                        obj.insert(k.clone(), d.clone());
                    }
                }
                for (k, v) in obj.iter_mut() {
                    if let Some(p) = props.get(k) {
                        apiserver_default(p, v);
                    }
                }
            } else if let Some(ap @ Value::Object(_)) = schema.get("additionalProperties") {
                for v in obj.values_mut() {
                    apiserver_default(ap, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items {
                    apiserver_default(s, v);
                }
            }
        }
        _ => {}
    }
}

fn minimal_gamedeployment() -> Value {
    json!({
        "apiVersion": "tkex.tencent.com/v1alpha1",
        "kind": "GameDeployment",
        "metadata": {"name": "gd", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "gd"}},
            "template": {
                "metadata": {"labels": {"app": "gd", "tier": "game"}},
                "spec": {"containers": [{"name": "main", "image": "game:v1"}]}
            }
        }
    })
}

#[test]
fn gamedeployment_schema_declares_the_documented_defaults() {
    let schema = schema_of(&crd_of("GameDeployment"));
    let at = |path: &[&str]| node(&schema, path).get("default").cloned();
    assert_eq!(at(&["spec", "replicas"]), Some(json!(1)));
    assert_eq!(at(&["spec", "revisionHistoryLimit"]), Some(json!(10)));
    assert_eq!(at(&["spec", "updateStrategy"]), Some(json!({})));
    assert_eq!(
        at(&["spec", "updateStrategy", "type"]),
        Some(json!("RollingUpdate"))
    );
    assert_eq!(at(&["spec", "updateStrategy", "partition"]), Some(json!(0)));
    assert_eq!(
        at(&["spec", "updateStrategy", "maxUnavailable"]),
        Some(json!("20%"))
    );
    assert_eq!(at(&["spec", "updateStrategy", "maxSurge"]), Some(json!(0)));
    assert_eq!(
        at(&["spec", "updateStrategy", "inPlaceUpdateStrategy"]),
        Some(json!({}))
    );
    assert_eq!(
        at(&[
            "spec",
            "updateStrategy",
            "inPlaceUpdateStrategy",
            "gracePeriodSeconds"
        ]),
        Some(json!(0))
    );
    assert_eq!(
        at(&[
            "spec",
            "updateStrategy",
            "inPlaceUpdateStrategy",
            "deadlineSeconds"
        ]),
        None,
        "unset deadline means no deadline"
    );
    for (path, min) in [
        (&["spec", "replicas"][..], 0.0),
        (&["spec", "revisionHistoryLimit"], 0.0),
        (&["spec", "minReadySeconds"], 0.0),
        (
            &[
                "spec",
                "updateStrategy",
                "inPlaceUpdateStrategy",
                "gracePeriodSeconds",
            ],
            0.0,
        ),
        (
            &[
                "spec",
                "updateStrategy",
                "inPlaceUpdateStrategy",
                "deadlineSeconds",
            ],
            1.0,
        ),
    ] {
        assert_eq!(
            node(&schema, path)["minimum"].as_f64(),
            Some(min),
            "{path:?}"
        );
    }
    for path in [["maxUnavailable"], ["maxSurge"], ["partition"]] {
        let n = node(node(&schema, &["spec", "updateStrategy"]), &path);
        assert_eq!(n["x-kubernetes-int-or-string"], true, "{path:?}");
        assert!(n.get("type").is_none(), "{path:?}");
    }
}

#[test]
fn defaulting_a_minimal_object_fills_nested_defaults_and_agrees_with_the_accessors() {
    let schema = schema_of(&crd_of("GameDeployment"));
    let raw = minimal_gamedeployment();
    let mut defaulted = raw.clone();
    apiserver_default(&schema, &mut defaulted);
    let spec = &defaulted["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["updateStrategy"],
        json!({
            "type": "RollingUpdate",
            "partition": 0,
            "maxUnavailable": "20%",
            "maxSurge": 0,
            "inPlaceUpdateStrategy": {"gracePeriodSeconds": 0}
        })
    );
    assert!(spec.get("minReadySeconds").is_none());

    // The Rust accessors must give the same answers with or without server-side defaulting.
    let raw: GameDeployment = serde_json::from_value(raw).unwrap();
    let defaulted: GameDeployment = serde_json::from_value(defaulted).unwrap();
    for gd in [&raw, &defaulted] {
        let s = &gd.spec;
        assert_eq!(s.replicas(), 1);
        assert_eq!(s.revision_history_limit(), 10);
        assert_eq!(s.update_strategy_type(), UpdateStrategyType::RollingUpdate);
        assert_eq!(s.partition(10).unwrap(), 0);
        assert_eq!(s.max_unavailable(10).unwrap(), 2);
        assert_eq!(s.max_surge(10).unwrap(), 0);
        assert_eq!(s.grace_period_seconds(), 0);
        assert_eq!(s.deadline_seconds(), None);
    }
    let strategy = defaulted.spec.update_strategy.unwrap();
    assert_eq!(
        strategy.max_unavailable,
        Some(IntOrString::String(api::DEFAULT_MAX_UNAVAILABLE.into()))
    );
}

#[test]
fn hook_schemas_declare_their_defaults() {
    for kind in ["HookTemplate", "HookRun"] {
        let schema = schema_of(&crd_of(kind));
        assert_eq!(
            node(&schema, &["spec", "policy"])["default"],
            "Parallel",
            "{kind}"
        );
        let web = node(&schema, &["spec", "metrics"])["items"]["properties"]["provider"]
            ["properties"]["web"]
            .clone();
        assert_eq!(node(&web, &["timeoutSeconds"])["default"], 10, "{kind}");
    }
    let mut t =
        json!({"spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}]}});
    apiserver_default(&schema_of(&crd_of("HookTemplate")), &mut t);
    let t: HookTemplate = serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
        "metadata": {"name": "t"}, "spec": t["spec"]
    }))
    .unwrap();
    assert_eq!(t.spec.policy, Some(HookPolicy::Parallel));
    assert_eq!(
        t.spec.metrics[0]
            .provider
            .web
            .as_ref()
            .unwrap()
            .timeout_seconds,
        Some(10)
    );
}

// ---------------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------------

fn example(name: &str) -> (GameDeployment, Value) {
    let file = repo_path("deploy/examples").join(name);
    let text = std::fs::read_to_string(&file).unwrap();
    let typed: GameDeployment = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a GameDeployment: {e}", file.display()));
    let raw: Value = serde_saphyr::from_str(&text).unwrap();
    (typed, raw)
}

#[test]
fn inplace_update_example_reproduces_the_seed() {
    let (gd, _) = example("inplace-update.yaml");
    assert_eq!(gd.metadata.name.as_deref(), Some("test-gamedeployment"));
    assert_eq!(gd.metadata.namespace.as_deref(), Some("default"));
    let s = &gd.spec;
    assert_eq!(s.replicas(), 8);
    assert_eq!(
        s.selector
            .match_labels
            .as_ref()
            .unwrap()
            .get("app")
            .map(String::as_str),
        Some("test-gamedeployment")
    );
    let labels = s
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(
        labels.get("app").map(String::as_str),
        Some("test-gamedeployment")
    );
    assert_eq!(s.update_strategy_type(), UpdateStrategyType::InplaceUpdate);
    assert_eq!(s.partition(8).unwrap(), 3);
    assert_eq!(s.grace_period_seconds(), 30);
    let pod = s.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.name, "python");
    assert!(
        c.image.as_deref().unwrap().starts_with("python:3"),
        "{:?}",
        c.image
    );
    assert_eq!(
        c.command.as_deref().unwrap(),
        ["python", "-m", "http.server"].map(String::from)
    );
}

#[test]
fn rolling_and_hotpatch_examples_parse_with_their_strategy() {
    let (rolling, _) = example("rolling-update.yaml");
    assert_eq!(
        rolling.spec.update_strategy_type(),
        UpdateStrategyType::RollingUpdate
    );
    let (hotpatch, _) = example("hotpatch-update.yaml");
    assert_eq!(
        hotpatch.spec.update_strategy_type(),
        UpdateStrategyType::HotPatchUpdate
    );
}

#[test]
fn every_example_passes_the_crd_validation_rules() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo_path("deploy/examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(repo_path("deploy/examples").join(&name)).unwrap();
        // An example may carry what it needs beside its GameDeployment (a HookTemplate).
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for mut raw in docs {
            let kind = raw["kind"].as_str().unwrap_or_default().to_string();
            if kind == "GameDeployment" {
                serde_json::from_value::<GameDeployment>(raw.clone())
                    .unwrap_or_else(|e| panic!("deploy/examples/{name}: {e}"));
                seen += 1;
            }
            let schema = schema_of(&crd_of(&kind));
            apiserver_default(&schema, &mut raw);
            if let Err(e) = Validator::new().validate(&schema, &raw, None) {
                panic!("deploy/examples/{name}: the {kind} is rejected by the CRD: {e}");
            }
        }
    }
    assert!(seen >= 3, "expected the three examples, found {seen}");
}

// ---------------------------------------------------------------------------------------------
// CEL rules
// ---------------------------------------------------------------------------------------------

/// Every `x-kubernetes-validations` entry in a schema: the rule, the schema node it sits on,
/// the node's path, and whether the node is inside a list (so the rule runs once per item).
struct RuleAt {
    rule: Value,
    node: Value,
    path: String,
    in_list: bool,
}

fn rules_with_nodes(schema: &Value) -> Vec<RuleAt> {
    fn walk(n: &Value, path: String, in_list: bool, out: &mut Vec<RuleAt>) {
        if let Some(Value::Array(rules)) = n.get("x-kubernetes-validations") {
            for r in rules {
                out.push(RuleAt {
                    rule: r.clone(),
                    node: n.clone(),
                    path: path.clone(),
                    in_list,
                });
            }
        }
        if let Some(props) = n.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                walk(p, format!("{path}.{k}"), in_list, out);
            }
        }
        if let Some(c @ Value::Object(_)) = n.get("items") {
            walk(c, format!("{path}[]"), true, out);
        }
        if let Some(c @ Value::Object(_)) = n.get("additionalProperties") {
            walk(c, format!("{path}.*"), true, out);
        }
    }
    let mut out = Vec::new();
    walk(schema, String::new(), false, &mut out);
    out
}

fn rule_text(r: &RuleAt) -> &str {
    r.rule["rule"].as_str().unwrap()
}

#[test]
fn every_rule_compiles_and_has_a_message() {
    for crd in api::crds() {
        let rules = rules_with_nodes(&schema_of(&crd));
        assert!(
            !rules.is_empty(),
            "{} has no CEL rules",
            crd.spec.names.kind
        );
        for r in &rules {
            let message = r.rule["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty(),
                "rule {} at {} has no message telling the user what to fix",
                rule_text(r),
                r.path
            );
            let compiled = compile_schema(&r.node);
            assert!(
                !compiled.has_errors(),
                "rule {} at {} does not compile: {:?}",
                rule_text(r),
                r.path,
                compiled.compilation_errors()
            );
        }
    }
}

/// The apiserver refuses a CRD whose rules' estimated worst-case cost is over budget, and it
/// estimates an unbounded map, list or string as filling the whole 3 MiB request; a rule inside
/// a list is multiplied by the list's estimated length. There is no offline copy of that
/// estimator (kube-cel's is a coarse heuristic that assumes 1000 items), so check its inputs:
/// comprehensions only outside lists and over bounded maps, regexes inside lists only on
/// strings with a maxLength.
#[test]
fn rules_only_iterate_or_match_over_bounded_data() {
    for crd in api::crds() {
        for r in rules_with_nodes(&schema_of(&crd)) {
            let text = rule_text(&r);
            let comprehension = [".all(", ".exists(", ".exists_one(", ".map(", ".filter("]
                .iter()
                .any(|m| text.contains(m));
            if comprehension {
                assert!(
                    !r.in_list,
                    "comprehension inside a list at {}: {text}",
                    r.path
                );
            }
            if r.in_list && text.contains(".matches(") {
                assert!(
                    r.node.get("maxLength").is_some(),
                    "regex on an unbounded string inside a list at {}: {text}",
                    r.path
                );
            }
        }
    }
    // The one comprehension walks spec.selector.matchLabels and compares label values.
    let schema = schema_of(&crd_of("GameDeployment"));
    let match_labels = node(&schema, &["spec", "selector", "matchLabels"]);
    assert!(match_labels["maxProperties"].as_u64().is_some());
    assert!(
        match_labels["additionalProperties"]["maxLength"]
            .as_u64()
            .is_some()
    );
}

/// One CEL case: an object of `kind` (built by mutating a valid one), and the message of the
/// rule that must reject it, or `None` when it must be accepted.
struct Case {
    name: &'static str,
    kind: &'static str,
    object: Value,
    rejected_by: Option<&'static str>,
}

fn gd_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = minimal_gamedeployment();
    f(&mut v);
    v
}

fn strategy(extra: Value) -> Value {
    gd_with(|v| v["spec"]["updateStrategy"] = extra)
}

fn hook_template(metric: Value) -> Value {
    json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookTemplate",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": {"metrics": [metric]}
    })
}

fn hook_run(metric: Value) -> Value {
    json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"metrics": [metric]}
    })
}

const SELECTOR_SUBSET: &str = "spec.selector.matchLabels must be a subset of spec.template.metadata.labels (same keys and values), or the pods created would not be selected";
const SELECTOR_EMPTY: &str = "spec.selector is empty and would match no pods: set spec.selector.matchLabels to labels of spec.template.metadata.labels";
const PARTITION: &str =
    "updateStrategy.partition must be a non-negative integer or a percentage such as \"10%\"";
const MAX_UNAVAILABLE: &str =
    "updateStrategy.maxUnavailable must be a non-negative integer or a percentage such as \"20%\"";
const MAX_SURGE: &str =
    "updateStrategy.maxSurge must be a non-negative integer or a percentage such as \"25%\"";
const BOTH_ZERO: &str = "updateStrategy.maxUnavailable and maxSurge are both zero, so no pod could ever be updated: make one of them positive";
const PROGRESS_DEADLINE: &str = "spec.progressDeadlineSeconds must be greater than minReadySeconds (as for a Deployment): a pod cannot count as available, and so as progress, before minReadySeconds have passed";
const DEADLINE: &str = "inPlaceUpdateStrategy.deadlineSeconds must be greater than gracePeriodSeconds: the deadline starts when the pod is chosen and has to cover the grace period plus the image swap";
const ONE_STEP: &str = "a canary step is exactly one of partition, pause or hook";
const ONE_PROVIDER: &str = "metric provider must set exactly one of web, prometheus or kubernetes";
const COUNT_INTERVAL: &str =
    "a metric with count > 1 needs an interval between measurements, e.g. interval: 10s";
const INTERVAL: &str = "interval must be a Go duration such as 30s, 1m or 1h30m";
const INITIAL_DELAY: &str = "initialDelay must be a Go duration such as 30s, 1m or 1h30m";
const INTERVAL_MAX: &str = "interval must be at most 720h (30 days)";
const INITIAL_DELAY_MAX: &str = "initialDelay must be at most 720h (30 days)";

fn cases() -> Vec<Case> {
    let web = json!({"web": {"url": "http://x/ready"}});
    let metric = |extra: Value| {
        let mut m = json!({"name": "m", "provider": web.clone()});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let gd = "GameDeployment";
    let ht = "HookTemplate";
    let hr = "HookRun";
    let case = |name, kind, object, rejected_by| Case {
        name,
        kind,
        object,
        rejected_by,
    };
    vec![
        case("minimal object", gd, minimal_gamedeployment(), None),
        case(
            "selector via matchExpressions only",
            gd,
            gd_with(|v| {
                v["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["gd"]}]})
            }),
            None,
        ),
        case(
            "selector value differs from the template label",
            gd,
            gd_with(|v| v["spec"]["selector"]["matchLabels"]["app"] = json!("other")),
            Some(SELECTOR_SUBSET),
        ),
        case(
            "selector key missing from the template",
            gd,
            gd_with(|v| v["spec"]["selector"]["matchLabels"]["zone"] = json!("a")),
            Some(SELECTOR_SUBSET),
        ),
        case(
            "template without labels",
            gd,
            gd_with(|v| v["spec"]["template"]["metadata"] = json!({})),
            Some(SELECTOR_SUBSET),
        ),
        case(
            "empty selector",
            gd,
            gd_with(|v| v["spec"]["selector"] = json!({"matchLabels": {}})),
            Some(SELECTOR_EMPTY),
        ),
        case(
            "percent partition",
            gd,
            strategy(json!({"partition": "50%"})),
            None,
        ),
        case(
            "integer partition",
            gd,
            strategy(json!({"partition": 3})),
            None,
        ),
        case(
            "negative partition",
            gd,
            strategy(json!({"partition": -1})),
            Some(PARTITION),
        ),
        case(
            "partition past int32",
            gd,
            strategy(json!({"partition": 2147483648_i64})),
            Some(PARTITION),
        ),
        case(
            "partition at the int32 maximum",
            gd,
            strategy(json!({"partition": 2147483647})),
            None,
        ),
        case(
            "maxSurge past int32",
            gd,
            strategy(json!({"maxSurge": 1099511627776_i64})),
            Some(MAX_SURGE),
        ),
        case(
            "maxUnavailable past int32",
            gd,
            strategy(json!({"maxUnavailable": 1099511627776_i64})),
            Some(MAX_UNAVAILABLE),
        ),
        case(
            "partition without %",
            gd,
            strategy(json!({"partition": "50"})),
            Some(PARTITION),
        ),
        case(
            "percent maxUnavailable",
            gd,
            strategy(json!({"maxUnavailable": "30%"})),
            None,
        ),
        case(
            "integer maxUnavailable",
            gd,
            strategy(json!({"maxUnavailable": 2})),
            None,
        ),
        case(
            "negative maxUnavailable",
            gd,
            strategy(json!({"maxUnavailable": -2})),
            Some(MAX_UNAVAILABLE),
        ),
        case(
            "malformed maxUnavailable",
            gd,
            strategy(json!({"maxUnavailable": "20 %"})),
            Some(MAX_UNAVAILABLE),
        ),
        case(
            "percent maxSurge",
            gd,
            strategy(json!({"maxSurge": "25%"})),
            None,
        ),
        case(
            "malformed maxSurge",
            gd,
            strategy(json!({"maxSurge": "one"})),
            Some(MAX_SURGE),
        ),
        case(
            "negative maxSurge",
            gd,
            strategy(json!({"maxSurge": -1})),
            Some(MAX_SURGE),
        ),
        case(
            "maxUnavailable 0 with the default maxSurge 0",
            gd,
            strategy(json!({"maxUnavailable": 0})),
            Some(BOTH_ZERO),
        ),
        case(
            "both zero percentages",
            gd,
            strategy(json!({"maxUnavailable": "0%", "maxSurge": "00%"})),
            Some(BOTH_ZERO),
        ),
        case(
            "maxUnavailable 0 with a surge",
            gd,
            strategy(json!({"maxUnavailable": 0, "maxSurge": 1})),
            None,
        ),
        case(
            "deadline longer than the grace period",
            gd,
            strategy(
                json!({"inPlaceUpdateStrategy": {"gracePeriodSeconds": 30, "deadlineSeconds": 31}}),
            ),
            None,
        ),
        case(
            "deadline without a grace period",
            gd,
            strategy(json!({"inPlaceUpdateStrategy": {"deadlineSeconds": 5}})),
            None,
        ),
        case(
            "deadline equal to the grace period",
            gd,
            strategy(
                json!({"inPlaceUpdateStrategy": {"gracePeriodSeconds": 30, "deadlineSeconds": 30}}),
            ),
            Some(DEADLINE),
        ),
        case(
            "progress deadline longer than minReadySeconds",
            gd,
            gd_with(|v| {
                v["spec"]["minReadySeconds"] = json!(10);
                v["spec"]["progressDeadlineSeconds"] = json!(11);
            }),
            None,
        ),
        case(
            "progress deadline without minReadySeconds",
            gd,
            gd_with(|v| v["spec"]["progressDeadlineSeconds"] = json!(1)),
            None,
        ),
        case(
            "progress deadline equal to minReadySeconds",
            gd,
            gd_with(|v| {
                v["spec"]["minReadySeconds"] = json!(10);
                v["spec"]["progressDeadlineSeconds"] = json!(10);
            }),
            Some(PROGRESS_DEADLINE),
        ),
        case(
            "canary steps of each kind",
            gd,
            strategy(json!({"canary": {"steps": [
                {"partition": 6}, {"pause": {}}, {"pause": {"duration": 60}},
                {"hook": {"templateName": "check"}}]}})),
            None,
        ),
        case(
            "a canary step that is both a partition and a pause",
            gd,
            strategy(json!({"canary": {"steps": [{"partition": 6, "pause": {}}]}})),
            Some(ONE_STEP),
        ),
        case(
            "an empty canary step",
            gd,
            strategy(json!({"canary": {"steps": [{}]}})),
            Some(ONE_STEP),
        ),
        case("one provider", ht, hook_template(metric(json!({}))), None),
        case(
            "no provider",
            ht,
            hook_template(json!({"name": "m", "provider": {}})),
            Some(ONE_PROVIDER),
        ),
        case(
            "two providers",
            hr,
            hook_run(json!({"name": "m", "provider": {
                "web": {"url": "http://x"},
                "prometheus": {"address": "http://prom:9090", "query": "up"}
            }})),
            Some(ONE_PROVIDER),
        ),
        case(
            "count 1 without interval",
            ht,
            hook_template(metric(json!({"count": 1}))),
            None,
        ),
        case(
            "count 3 with interval",
            hr,
            hook_run(metric(
                json!({"count": 3, "interval": "1m30s", "initialDelay": "5s"}),
            )),
            None,
        ),
        case(
            "count 3 without interval",
            ht,
            hook_template(metric(json!({"count": 3}))),
            Some(COUNT_INTERVAL),
        ),
        case(
            "interval in words",
            ht,
            hook_template(metric(json!({"interval": "10 seconds"}))),
            Some(INTERVAL),
        ),
        case(
            "initialDelay without unit",
            hr,
            hook_run(metric(json!({"initialDelay": "10"}))),
            Some(INITIAL_DELAY),
        ),
        case(
            "interval of 720h",
            ht,
            hook_template(metric(
                json!({"interval": "719h60m", "initialDelay": "720h"}),
            )),
            None,
        ),
        case(
            "interval over 720h",
            ht,
            hook_template(metric(json!({"interval": "720h0.5s"}))),
            Some(INTERVAL_MAX),
        ),
        case(
            "initialDelay over 720h",
            hr,
            hook_run(metric(json!({"initialDelay": "2000000h"}))),
            Some(INITIAL_DELAY_MAX),
        ),
    ]
}

#[test]
fn cel_rules_accept_valid_and_reject_invalid_objects() {
    let validator = Validator::new();
    let mut failures = Vec::new();
    for c in cases() {
        let schema = schema_of(&crd_of(c.kind));
        let mut obj = c.object.clone();
        apiserver_default(&schema, &mut obj);
        let got: Vec<String> = match validator.validate(&schema, &obj, None) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(|e| e.message.clone()).collect(),
        };
        let want: Vec<String> = c.rejected_by.iter().map(|m| m.to_string()).collect();
        if got != want {
            failures.push(format!("{}: expected {want:?}, got {got:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_cel_rule_is_exercised_by_a_rejecting_case() {
    let declared: BTreeSet<String> = api::crds()
        .iter()
        .flat_map(|crd| rules_with_nodes(&schema_of(crd)))
        .map(|r| r.rule["message"].as_str().unwrap().to_owned())
        .collect();
    let exercised: BTreeSet<String> = cases()
        .iter()
        .filter_map(|c| c.rejected_by.map(str::to_owned))
        .collect();
    assert_eq!(
        declared, exercised,
        "every rule needs a case in cases() that it rejects (and no case may name a rule that does not exist)"
    );
    // And every kind has a case that is accepted, so a rule rejecting everything would fail.
    for kind in ["GameDeployment", "HookTemplate", "HookRun"] {
        assert!(
            cases()
                .iter()
                .any(|c| c.kind == kind && c.rejected_by.is_none()),
            "{kind} needs an accepted case"
        );
    }
}

/// Every integer in every schema (`format: int32` is not enforced by kube-apiserver for
/// custom resources) has a `minimum` and a `maximum` within its format's range, so an object
/// the operator cannot decode is refused by the API server.
#[test]
fn every_integer_is_bounded_by_its_format() {
    fn walk(node: &Value, at: &str, out: &mut Vec<String>) {
        if node.get("type").and_then(Value::as_str) == Some("integer") {
            let (lo, hi) = match node.get("format").and_then(Value::as_str) {
                Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
                _ => (i64::MIN as f64, i64::MAX as f64),
            };
            let min = node.get("minimum").and_then(Value::as_f64);
            let max = node.get("maximum").and_then(Value::as_f64);
            if !min.is_some_and(|m| m >= lo) || !max.is_some_and(|m| m <= hi) {
                out.push(format!("{at}: minimum {min:?}, maximum {max:?}"));
            }
        }
        match node {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| walk(v, &format!("{at}.{k}"), out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, &format!("{at}[]"), out)),
            _ => {}
        }
    }
    let mut unbounded = Vec::new();
    for crd in api::crds() {
        walk(&schema_of(&crd), &crd.spec.names.kind, &mut unbounded);
    }
    assert!(
        unbounded.is_empty(),
        "unbounded integers:\n{}",
        unbounded.join("\n")
    );
}
