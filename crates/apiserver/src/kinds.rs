//! Defaulting and validation of the built-in kinds an operator install writes (Services,
//! Secrets, Deployments, admission policy bindings): the parts of their kube-apiserver
//! strategies that a client can observe. Kept apart from `registry/`, which is about the
//! generic registry.

use k8s_openapi::ByteString;
use serde_json::{Map, Value, json};

use super::errors::{Cause, invalid_value, required};

/// `SetDefaults_Service` and `SetDefaults_ServicePort`: what `kubectl get svc -o yaml` shows
/// on a Service created without them. The cluster IP is not allocated (see the README).
pub fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let ty = spec
        .entry("type")
        .or_insert(json!("ClusterIP"))
        .as_str()
        .unwrap_or("")
        .to_string();
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if ty != "ExternalName" {
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

/// `spec.ports[*].port` in 1..=65535 and `spec.ports` required unless headless or
/// ExternalName (`ValidateService`, the checks a hand-written manifest trips on).
pub fn validate_service(obj: &Value, causes: &mut Vec<Cause>) {
    let ty = obj.pointer("/spec/type").and_then(Value::as_str);
    let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && ty != Some("ExternalName") && !headless {
        causes.push(required("spec.ports", ""));
    }
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(invalid_value(
                &format!("spec.ports[{i}].port"),
                &json!(port),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
}

/// Secret conversion and defaulting: `stringData` is write-only and merged into `data`
/// (base64, overriding keys of `data`), as the v1→internal conversion does; `type` defaults to
/// `Opaque`.
pub fn default_secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    if m.get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        m.insert("type".into(), json!("Opaque"));
    }
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in string_data {
            let bytes = v.as_str().unwrap_or("").as_bytes().to_vec();
            if let Ok(encoded) = serde_json::to_value(ByteString(bytes)) {
                d.insert(k, encoded);
            }
        }
    }
}

/// `ValidateSecret`/`ValidateConfigMap` key rules, and a Secret's `type` is immutable.
pub fn validate_data_keys(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    for field in ["data", "binaryData"] {
        for k in obj
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !valid_config_key(k.0) {
                causes.push(invalid_value(
                    field,
                    &json!(k.0),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    if obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && let Some(old) = old
        && old.get("type") != obj.get("type")
    {
        causes.push(invalid_value(
            "type",
            obj.get("type").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

/// `IsConfigMapKey`: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
fn valid_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// `SetDefaults_Deployment` (apps/v1); the pod template gets the pod defaults through
/// `default_pod_spec`.
pub fn default_deployment(obj: &mut Value, default_pod_spec: impl Fn(&mut Value)) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("replicas").or_insert(json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(s) = strategy.as_object_mut() {
        let ty = s
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .as_str()
            .unwrap_or("")
            .to_string();
        if ty == "RollingUpdate" {
            let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                ru.entry("maxUnavailable").or_insert(json!("25%"));
                ru.entry("maxSurge").or_insert(json!("25%"));
            }
        }
    }
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    if let Some(t) = spec.get_mut("template") {
        default_pod_spec(t);
    }
}

/// `ValidateDeploymentSpec`: a non-empty selector that selects the template's labels, at
/// least one container, and a selector that does not change (`ValidateDeploymentUpdate`).
pub fn validate_deployment(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
        && r < 0
    {
        causes.push(invalid_value(
            "spec.replicas",
            &json!(r),
            "must be greater than or equal to 0",
        ));
    }
    let selector = obj
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    let empty = Map::new();
    let match_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let has_exprs = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if match_labels.is_empty() && !has_exprs {
        causes.push(required(
            "spec.selector",
            "empty selector is invalid for deployment",
        ));
    }
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if match_labels.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        causes.push(invalid_value(
            "spec.template.metadata.labels",
            &labels,
            "`selector` does not match template `labels`",
        ));
    }
    if obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        causes.push(required("spec.template.spec.containers", ""));
    }
    if let Some(old) = old
        && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
    {
        causes.push(invalid_value(
            "spec.selector",
            &selector,
            "field is immutable",
        ));
    }
}

/// `metav1.FormatLabelSelector` for the Scale of a Deployment (`status.selector`).
pub fn format_label_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// `ValidateValidatingAdmissionPolicyBinding`: the fields without which a binding means
/// nothing.
pub fn validate_policy_binding(obj: &Value, causes: &mut Vec<Cause>) {
    if obj
        .pointer("/spec/policyName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        causes.push(required("spec.policyName", ""));
    }
    let actions: Vec<&str> = obj
        .pointer("/spec/validationActions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if actions.is_empty() {
        causes.push(required(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        if !matches!(*a, "Deny" | "Warn" | "Audit") {
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {a:?}: supported values: \"Audit\", \"Deny\", \"Warn\""
                ),
                field: format!("spec.validationActions[{i}]"),
            });
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        causes.push(invalid_value(
            "spec.validationActions",
            &json!(actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
}

/// `IsQualifiedName`'s messages (none when valid): an optional DNS subdomain prefix and `/`,
/// then a name of at most 63 alphanumerics, `-`, `_` and `.`.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    const NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if !super::selectors::valid_dns_subdomain(prefix) {
                errs.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {NAME_ERR} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    let b = name.as_bytes();
    let pattern_ok = !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !pattern_ok {
        errs.push(format!("name part {NAME_ERR}"));
    }
    errs
}

/// Limits of `pkg/apis/core/validation/events.go`.
const EVENT_FIELD_LIMIT: usize = 128;
const EVENT_NOTE_LIMIT: usize = 1024;

fn event_str<'a>(o: &'a Value, path: &str) -> &'a str {
    o.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// Whether a (Micro)Time field is unset: absent, null or empty.
fn event_time_unset(o: &Value, key: &str) -> bool {
    o.get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
}

/// `legacyValidateEvent` on the stored (core `v1`) form of an Event in namespace `ns`. Paths
/// are those of the internal type: `message` for `note`, `reportingController`.
fn legacy_event_causes(e: &Value, ns: &str, causes: &mut Vec<Cause>) {
    let involved_ns = event_str(e, "/involvedObject/namespace");
    let mismatch = |causes: &mut Vec<Cause>| {
        causes.push(invalid_value(
            "involvedObject.namespace",
            &json!(involved_ns),
            "does not match event.namespace",
        ))
    };
    if event_time_unset(e, "eventTime") {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                mismatch(causes);
            }
        } else if ns != involved_ns {
            mismatch(causes);
        }
        return;
    }
    if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
        mismatch(causes);
    }
    let controller = event_str(e, "/reportingComponent");
    if controller.is_empty() {
        causes.push(required("reportingController", ""));
    }
    for msg in qualified_name_errors(controller) {
        causes.push(invalid_value(
            "reportingController",
            &json!(controller),
            &msg,
        ));
    }
    for (path, field, limit) in [
        (
            "/reportingInstance",
            "reportingInstance",
            Some(EVENT_FIELD_LIMIT),
        ),
        ("/action", "action", Some(EVENT_FIELD_LIMIT)),
        ("/reason", "reason", Some(EVENT_FIELD_LIMIT)),
        ("/message", "message", None),
    ] {
        let v = event_str(e, path);
        if v.is_empty() && limit.is_some() {
            causes.push(required(field, ""));
        }
        let limit = limit.unwrap_or(EVENT_NOTE_LIMIT);
        if v.len() > limit {
            causes.push(invalid_value(
                field,
                &json!(""),
                &format!("can have at most {limit} characters"),
            ));
        }
    }
}

/// `validateV1EventSeries`.
fn event_series_causes(e: &Value, causes: &mut Vec<Cause>) {
    let Some(series) = e.get("series").filter(|s| !s.is_null()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        causes.push(invalid_value(
            "series.count",
            &json!(""),
            "should be at least 2",
        ));
    }
    if event_time_unset(series, "lastObservedTime") {
        causes.push(required("series.lastObservedTime", ""));
    }
}

/// `ValidateEventCreate` for a create through `events.k8s.io/v1`, on the stored (core `v1`)
/// form: the legacy checks, then eventTime required, `type` Normal or Warning, and the
/// deprecated core fields unset. (Object metadata is checked by the generic create.)
pub fn validate_event_v1_create(e: &Value, ns: &str, causes: &mut Vec<Cause>) {
    legacy_event_causes(e, ns, causes);
    event_series_causes(e, causes);
    if event_time_unset(e, "eventTime") {
        causes.push(required("eventTime", ""));
    }
    let ty = event_str(e, "/type");
    if ty != "Normal" && ty != "Warning" {
        causes.push(invalid_value(
            "type",
            &json!(""),
            &format!("has invalid value: {ty}"),
        ));
    }
    for key in ["firstTimestamp", "lastTimestamp"] {
        if !event_time_unset(e, key) {
            causes.push(invalid_value(key, &json!(""), "needs to be unset"));
        }
    }
    if e.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        causes.push(invalid_value("count", &json!(""), "needs to be unset"));
    }
    if !event_str(e, "/source/component").is_empty() || !event_str(e, "/source/host").is_empty() {
        causes.push(invalid_value("source", &json!(""), "needs to be unset"));
    }
}

/// `ValidateEventUpdate` for an update through `events.k8s.io/v1`: the legacy checks, the
/// series when it changed, and every field but the series immutable.
pub fn validate_event_v1_update(new: &Value, old: &Value, ns: &str, causes: &mut Vec<Cause>) {
    legacy_event_causes(new, ns, causes);
    if new.get("series") != old.get("series") {
        event_series_causes(new, causes);
    }
    for (key, field) in [
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("reason", "reason"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        let unset = |v: Option<&Value>| {
            v.is_none_or(|v| v.is_null() || v == "" || v == 0 || v == &json!({}))
        };
        let (a, b) = (new.get(key), old.get(key));
        if a != b && !(unset(a) && unset(b)) {
            causes.push(invalid_value(
                field,
                a.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_merged_into_data_as_base64() {
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"a": "hi", "b": "yo"}});
        default_secret(&mut s);
        assert_eq!(
            s,
            json!({"type": "Opaque", "data": {"a": "aGk=", "b": "eW8="}})
        );
    }

    #[test]
    fn service_ports_default_target_port_and_protocol() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        default_service(&mut s);
        assert_eq!(
            s["spec"]["ports"][0],
            json!({"port": 80, "targetPort": 80, "protocol": "TCP"})
        );
        assert_eq!(s["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn label_selector_formats_like_kubectl() {
        let sel = json!({"matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(format_label_selector(&sel), "app=x,tier in (a,b)");
    }
}
