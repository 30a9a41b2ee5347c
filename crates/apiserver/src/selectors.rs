//! Label and field selectors with the grammar of `k8s.io/apimachinery/pkg/labels` and
//! `pkg/fields`: `=`, `==`, `!=`, `in`, `notin`, `exists`, `!key`, `gt`/`lt`.

use serde_json::{Map, Value};

use super::errors::ApiError;
use super::resources::{ResourceDesc, Strategy};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {msg}"))
}

/// Label keys: optional DNS subdomain prefix + `/` + name (≤63, alnum at ends, `-_.` inside).
pub fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !p.split('.').all(valid_dns_label))
    {
        return false;
    }
    !name.is_empty() && valid_label_value(name)
}

pub fn valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let b = v.as_bytes();
    v.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub fn valid_dns_label(s: &str) -> bool {
    s.len() <= 63 && label_pattern(s)
}

/// `IsDNS1123Label`'s messages for an invalid label (none when valid).
pub fn dns_label_errors(s: &str) -> Vec<&'static str> {
    const REGEX: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    // The pattern alone; the length limit is its own message.
    let pattern_ok = label_pattern;
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters");
    }
    if !pattern_ok(s) {
        if !s.is_empty() && s.split('.').all(pattern_ok) {
            errs.push("must not contain dots");
        } else {
            errs.push(REGEX);
        }
    }
    errs
}

/// `IsDNS1123Subdomain`: at most 253 characters of dot-separated parts, each of lower case
/// alphanumerics and '-' starting and ending with an alphanumeric. The parts have no length
/// limit of their own (a 100-character pod name without dots is valid).
pub fn valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(label_pattern)
}

/// The RFC 1123 label pattern without its length limit: lower case alphanumerics and '-',
/// starting and ending with an alphanumeric.
fn label_pattern(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { reqs });
        }
        for part in split_top_level(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(bad(format!("found '', expected: identifier in {s:?}")));
            }
            let (key, op) = if let Some(k) = p.strip_prefix('!') {
                (k.trim().to_string(), Op::DoesNotExist)
            } else if let Some((k, v)) = p.split_once("!=") {
                (k.trim().to_string(), Op::NotEq(v.trim().to_string()))
            } else if let Some((k, v)) = p.split_once("==") {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = p.split_once('=') {
                (k.trim().to_string(), Op::Eq(v.trim().to_string()))
            } else if let Some((k, v)) = p.split_once('>') {
                let n = v.trim().parse().map_err(|_| {
                    bad(format!(
                        "for 'gt', 'lt' operators, the value must be an integer: {p:?}"
                    ))
                })?;
                (k.trim().to_string(), Op::Gt(n))
            } else if let Some((k, v)) = p.split_once('<') {
                let n = v.trim().parse().map_err(|_| {
                    bad(format!(
                        "for 'gt', 'lt' operators, the value must be an integer: {p:?}"
                    ))
                })?;
                (k.trim().to_string(), Op::Lt(n))
            } else if let Some(i) = p.find(" notin ").or_else(|| p.find(" notin(")) {
                (
                    p[..i].trim().to_string(),
                    Op::NotIn(parse_set(p[i + 6..].trim(), s)?),
                )
            } else if let Some(i) = p.find(" in ").or_else(|| p.find(" in(")) {
                (
                    p[..i].trim().to_string(),
                    Op::In(parse_set(p[i + 3..].trim(), s)?),
                )
            } else {
                (p.to_string(), Op::Exists)
            };
            if !valid_label_key(&key) {
                return Err(bad(format!(
                    "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                )));
            }
            let values: Vec<&String> = match &op {
                Op::Eq(v) | Op::NotEq(v) => vec![v],
                Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
                _ => vec![],
            };
            for v in values {
                if !valid_label_value(v) {
                    return Err(bad(format!(
                        "values[0][{key}]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    )));
                }
            }
            reqs.push((key, op));
        }
        Ok(Self { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    #[cfg(test)]
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Match against an object's `metadata.labels` without copying them.
    pub fn matches_obj(&self, obj: &Value) -> bool {
        if self.reqs.is_empty() {
            return true;
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|(k, op)| {
            let v = get(k);
            match op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
                Op::NotIn(xs) => v.is_none_or(|v| !xs.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

fn parse_set(s: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| bad(format!("found '{s}', expected: '(' in {whole:?}")))?;
    Ok(inner
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

/// Fields a kind can be selected on (`GetAttrs`/`ToSelectableFields` of each registry):
/// (strategy, or any; core resource, or any; field). Field `a.b` is read at `/a/b`.
const SELECTABLE: &[(Option<Strategy>, Option<&str>, &str)] = &[
    (None, None, "metadata.name"),
    (None, None, "metadata.namespace"),
    (Some(Strategy::Pod), None, "spec.nodeName"),
    (Some(Strategy::Pod), None, "spec.restartPolicy"),
    (Some(Strategy::Pod), None, "spec.schedulerName"),
    (Some(Strategy::Pod), None, "spec.serviceAccountName"),
    (Some(Strategy::Pod), None, "status.phase"),
    (Some(Strategy::Pod), None, "status.podIP"),
    (Some(Strategy::Pod), None, "status.nominatedNodeName"),
    (Some(Strategy::Namespace), None, "status.phase"),
    (None, Some("events"), "involvedObject.kind"),
    (None, Some("events"), "involvedObject.namespace"),
    (None, Some("events"), "involvedObject.name"),
    (None, Some("events"), "involvedObject.uid"),
    (None, Some("events"), "involvedObject.apiVersion"),
    (None, Some("events"), "involvedObject.fieldPath"),
    (None, Some("events"), "reason"),
    (None, Some("events"), "type"),
    (None, Some("events"), "reportingComponent"),
];

/// The JSON pointer of a selectable field of `desc`'s kind, if it is one.
fn selectable(desc: &ResourceDesc, field: &str) -> Option<String> {
    SELECTABLE
        .iter()
        .any(|(strategy, core, f)| {
            *f == field
                && strategy.is_none_or(|s| s == desc.strategy)
                && core.is_none_or(|p| desc.group.is_empty() && desc.plural == p)
        })
        .then(|| pointer(field))
}

fn pointer(field: &str) -> String {
    format!("/{}", field.replace('.', "/"))
}

/// All that a watch's namespace, label and field selectors can read of `obj` (its labels and
/// every selectable field), as a smaller object that matches every selector exactly as `obj`
/// does. The watch log keeps these for the versions it has serialized.
pub fn selection_view(obj: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    let fields = std::iter::once("metadata.labels").chain(SELECTABLE.iter().map(|e| e.2));
    for field in fields {
        let Some(v) = obj.pointer(&pointer(field)) else {
            continue;
        };
        let mut cur = &mut out;
        let mut segs = field.split('.').peekable();
        while let Some(seg) = segs.next() {
            let Value::Object(m) = cur else { break };
            if segs.peek().is_none() {
                m.insert(seg.to_string(), v.clone());
                break;
            }
            cur = m
                .entry(seg.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

impl FieldSelector {
    pub fn parse(s: &str, desc: &ResourceDesc) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { reqs });
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, eq, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            };
            let k = k.trim();
            let Some(ptr) = selectable(desc, k) else {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            };
            reqs.push((ptr, eq, v.trim().to_string()));
        }
        Ok(Self { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(ptr, eq, v)| {
            let actual = match obj.pointer(ptr) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A selection view matches every selector as its object does, and keeps nothing else.
    #[test]
    fn a_selection_view_keeps_labels_and_selectable_fields_only() {
        let pods = Registry::with_builtins().get("", "v1", "pods").unwrap();
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"},
                "annotations": {"big": "x"}, "managedFields": [{"manager": "m"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": []}
        });
        let view = selection_view(&pod);
        assert_eq!(
            view,
            json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"}},
                "spec": {"nodeName": "n1"},
                "status": {"phase": "Running", "podIP": "10.0.0.1"}
            })
        );
        for fields in [
            "spec.nodeName=n1,status.phase=Running",
            "spec.nodeName!=n2",
            "metadata.name=q",
        ] {
            let sel = FieldSelector::parse(fields, &pods).unwrap();
            assert_eq!(sel.matches(&view), sel.matches(&pod), "{fields}");
        }
        let labels = LabelSelector::parse("app=a").unwrap();
        assert!(labels.matches_obj(&view));
    }

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_grammar() {
        let m = l(&[("app", "web"), ("tier", "fe")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (fe,be)", true),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&m),
                want,
                "{sel}"
            );
        }
        for bad in ["app=a b", "=x", "app in web", "a,,b", "bad key=x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
