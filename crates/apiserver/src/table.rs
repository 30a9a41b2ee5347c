//! The views a client asks for in its `Accept` header instead of the object: `as=Table`
//! (kubectl's printer columns) and `as=PartialObjectMetadata`.

use serde_json::{Value, json};

use crate::resources::ResourceDesc;

/// Whether the client asked for metadata only (kube's `Api<PartialObjectMeta<K>>`).
pub fn wants_partial_metadata(accept: &str) -> bool {
    accept
        .split(',')
        .any(|a| a.contains("as=PartialObjectMetadata"))
}

/// An object or list as `meta.k8s.io/v1` PartialObjectMetadata(List).
pub fn partial_metadata(v: &Value) -> Value {
    let one = |o: &Value| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
    match v.get("items").and_then(Value::as_array) {
        Some(items) => json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": v.get("metadata").cloned().unwrap_or(json!({})),
            "items": items.iter().map(one).collect::<Vec<_>>(),
        }),
        None if v.get("kind").and_then(Value::as_str) == Some("Status") => v.clone(),
        None => one(v),
    }
}

/// Whether the client asked for `application/json;as=Table`.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|a| a.contains("as=Table"))
}

/// Evaluate a simple JSONPath of printer columns (`.spec.replicas`, `.metadata.labels.x`).
fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        let (name, idx) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        cur = match cur.get(name) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = idx {
            cur = match cur.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    cur.clone()
}

fn col(name: &str, ty: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": description, "priority": priority})
}

/// Rows of kubectl's built-in printers (kube-apiserver's `internalversion` printers) for the
/// kinds a user looks at; others get Name and Age.
fn builtin_columns(desc: &ResourceDesc) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    match (desc.group.as_str(), desc.kind.as_str()) {
        ("", "Pod") => vec![
            name,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            col("Age", "string", 0, "CreationTimestamp"),
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the Node this pod is assigned to.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "Name of the Node this pod is nominated to.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "Readiness gates of this pod.",
            ),
        ],
        ("", "Namespace") => vec![
            name,
            col("Status", "string", 0, "The status of the namespace"),
            col("Age", "string", 0, "CreationTimestamp"),
        ],
        ("", "Node") => vec![
            name,
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            col("Age", "string", 0, "CreationTimestamp"),
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
        ],
        ("" | "events.k8s.io", "Event") => event_columns(),
        ("coordination.k8s.io", "Lease") => vec![
            name,
            col(
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
            ),
            col("Age", "string", 0, "CreationTimestamp"),
        ],
        _ => vec![name, col("Age", "string", 0, "CreationTimestamp")],
    }
}

/// `eventColumnDefinitions` of kube-apiserver's printers (the same for core `v1` and
/// `events.k8s.io/v1`, which share a registry): kubectl shows the priority-0 ones.
fn event_columns() -> Vec<Value> {
    vec![
        col(
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        col(
            "Type",
            "string",
            0,
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        col(
            "Reason",
            "string",
            0,
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col(
            "Object",
            "string",
            0,
            "The object that this event is about.",
        ),
        col(
            "Subobject",
            "string",
            1,
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
        ),
        col(
            "Source",
            "string",
            1,
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        col(
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        col(
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        ),
        col(
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        col(
            "Name",
            "string",
            1,
            "Name must be unique within a namespace.",
        ),
    ]
}

/// kube-apiserver's `printEvent` (wide, as the server always prints), on the stored core form:
/// LAST SEEN from the last timestamp, else the first, else `eventTime`, or the series' last
/// observation; OBJECT as `kind/name` with the kind lower-cased; SOURCE the component (or
/// reporting controller) and host (or reporting instance).
fn event_cells(o: &Value, now: i64) -> Vec<Value> {
    let since = |p: &str| match o.pointer(p) {
        Some(Value::String(t)) if !t.is_empty() => age(&json!(t), now),
        _ => json!("<unknown>"),
    };
    let set = |p: &str| !s(o, p).is_empty();
    let first = if set("/firstTimestamp") {
        since("/firstTimestamp")
    } else {
        since("/eventTime")
    };
    let mut last = if set("/lastTimestamp") {
        since("/lastTimestamp")
    } else {
        first.clone()
    };
    let mut count = o.get("count").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = o.get("series").filter(|v| v.is_object()) {
        last = since("/series/lastObservedTime");
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let kind = s(o, "/involvedObject/kind").to_lowercase();
    let target = match s(o, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let or = |a: &'static str, b: &'static str| {
        if set(a) { s(o, a) } else { s(o, b) }
    };
    let component = or("/source/component", "/reportingComponent");
    let instance = or("/source/host", "/reportingInstance");
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last,
        json!(s(o, "/type")),
        json!(s(o, "/reason")),
        json!(target),
        json!(s(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(o, "/message").trim()),
        first,
        json!(count),
        json!(s(o, "/metadata/name")),
    ]
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn none_if_empty(x: &str) -> Value {
    json!(if x.is_empty() { "<none>" } else { x })
}

/// kubectl's `printPod`.
fn pod_cells(o: &Value, now: i64) -> Vec<Value> {
    let containers = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut reason = if s(o, "/status/reason").is_empty() {
        s(o, "/status/phase").to_string()
    } else {
        s(o, "/status/reason").to_string()
    };
    let mut restarts = 0;
    let mut ready = 0;
    let mut has_running = false;
    let mut last_restart: Option<i64> = None;
    for c in statuses.iter().rev() {
        restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            last_restart = Some(last_restart.map_or(t.as_second(), |l: i64| l.max(t.as_second())));
        }
        let waiting = s(c, "/state/waiting/reason");
        let term = c.pointer("/state/terminated");
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if let Some(t) = term {
            let r = s(t, "/reason");
            reason = if !r.is_empty() {
                r.to_string()
            } else if let Some(sig) = t.get("signal").and_then(Value::as_i64).filter(|x| *x != 0) {
                format!("Signal:{sig}")
            } else {
                format!(
                    "ExitCode:{}",
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                )
            };
        } else if c.get("ready").and_then(Value::as_bool) == Some(true)
            && c.pointer("/state/running").is_some()
        {
            has_running = true;
            ready += 1;
        }
    }
    let conditions = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if reason == "Completed" && has_running {
        let pod_ready = conditions
            .iter()
            .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
        reason = if pod_ready {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    let phase = s(o, "/status/phase");
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        if s(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let mut restarts_s = restarts.to_string();
    if let Some(l) = last_restart {
        restarts_s = format!("{restarts} ({} ago)", human(now - l));
    }
    let gates = o
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let gates_s = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let ok = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| s(c, "/type") == s(g, "/conditionType") && s(c, "/status") == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };
    vec![
        json!(s(o, "/metadata/name")),
        json!(format!("{ready}/{containers}")),
        json!(reason),
        json!(restarts_s),
        age(
            o.pointer("/metadata/creationTimestamp")
                .unwrap_or(&Value::Null),
            now,
        ),
        none_if_empty(s(o, "/status/podIP")),
        none_if_empty(s(o, "/spec/nodeName")),
        none_if_empty(s(o, "/status/nominatedNodeName")),
        json!(gates_s),
    ]
}

fn builtin_cells(desc: &ResourceDesc, o: &Value, now: i64) -> Vec<Value> {
    let created = age(
        o.pointer("/metadata/creationTimestamp")
            .unwrap_or(&Value::Null),
        now,
    );
    let name = json!(s(o, "/metadata/name"));
    match (desc.group.as_str(), desc.kind.as_str()) {
        ("", "Pod") => pod_cells(o, now),
        ("", "Event") => event_cells(o, now),
        // printLease
        ("coordination.k8s.io", "Lease") => {
            vec![name, json!(s(o, "/spec/holderIdentity")), created]
        }
        ("events.k8s.io", "Event") => event_cells(&crate::convert::event_to_core(o.clone()), now),
        ("", "Namespace") => vec![name, json!(s(o, "/status/phase")), created],
        ("", "Node") => {
            let ready = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| s(c, "/type") == "Ready"))
                .map(|c| {
                    if s(c, "/status") == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            let mut status = ready.to_string();
            if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.keys()
                        .filter_map(|k| {
                            k.strip_prefix("node-role.kubernetes.io/").map(String::from)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let roles = if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            };
            vec![
                name,
                json!(status),
                json!(roles),
                created,
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
            ]
        }
        _ => vec![name, created],
    }
}

/// A CRD column cell as apiextensions' `cellForJSONValue` makes it: typed, null when missing or
/// mistyped, dates as human-readable ages, strings as JSONPath prints them.
fn crd_cell(ty: &str, v: &Value, now: i64) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(_)) => match age(v, now) {
            Value::String(s) if s == "<unknown>" => json!("<invalid>"),
            other => other,
        },
        ("string", Value::String(s)) => json!(s),
        ("string", other) => json!(other.to_string()),
        _ => Value::Null,
    }
}

/// `meta.k8s.io/v1 Table` of objects: a CRD version's printer columns (an `Age` column when it
/// declares none, as `serveDefaultColumnsIfEmpty` does), or kubectl's built-in columns.
pub fn table(desc: &ResourceDesc, objs: &[Value], list_meta: Value, now_secs: i64) -> Value {
    let custom = desc.schema.is_some() || !desc.printer_columns.is_empty();
    let printer: Vec<Value> = if desc.printer_columns.is_empty() {
        vec![
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}),
        ]
    } else {
        desc.printer_columns.clone()
    };
    let cols: Vec<Value> = if custom {
        let mut cols = vec![col(
            "Name",
            "string",
            0,
            "Name must be unique within a namespace.",
        )];
        for c in &printer {
            let path = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
            cols.push(json!({
                "name": c.get("name").cloned().unwrap_or(json!("")),
                "type": c.get("type").cloned().unwrap_or(json!("string")),
                "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!(format!("Custom resource definition column (in JSONPath format): {path}"))),
                "priority": c.get("priority").cloned().unwrap_or(json!(0)),
            }));
        }
        cols
    } else {
        builtin_columns(desc)
    };
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let cells = if custom {
                let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
                for c in &printer {
                    let p = c.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                    let ty = c.get("type").and_then(Value::as_str).unwrap_or("string");
                    cells.push(crd_cell(ty, &json_path(o, p), now_secs));
                }
                cells
            } else {
                builtin_cells(desc, o, now_secs)
            };
            let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))});
            json!({"cells": cells, "object": partial})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": cols, "rows": rows})
}

/// `duration.HumanDuration` of the time since a timestamp.
fn age(ts: &Value, now: i64) -> Value {
    let Some(t) = ts.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return json!("<unknown>");
    };
    json!(human(now - t.as_second()))
}

/// `duration.HumanDuration` of `d` seconds: two significant units at most, `<invalid>` for a
/// time more than a second in the future (clock skew of one second reads as `0s`).
fn human(d: i64) -> String {
    let with = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    if d < -1 {
        return "<invalid>".into();
    }
    let d = d.max(0);
    let (minutes, hours, days) = (d / 60, d / 3600, d / 86400);
    if d < 120 {
        format!("{d}s")
    } else if minutes < 10 {
        with(minutes, "m", d % 60, "s")
    } else if minutes < 3 * 60 {
        format!("{minutes}m")
    } else if hours < 8 {
        with(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        with(days, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        with(days / 365, "y", days % 365, "d")
    } else {
        format!("{}y", days / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_are_those_of_kubectl() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (48 * 3600, "2d"),
            (49 * 3600, "2d1h"),
            (8 * 86400, "8d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (3000 * 86400, "8y"),
        ] {
            assert_eq!(human(secs), want, "{secs} s");
        }
    }

    #[test]
    fn an_event_row_is_that_of_print_event() {
        let desc = crate::resources::Registry::with_builtins()
            .get("", "v1", "events")
            .unwrap();
        let now = "2026-01-01T01:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        let e = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "R",
            "message": "m\n", "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 4, "lastObservedTime": "2026-01-01T00:59:30.000000Z"},
            "reportingComponent": "ctl", "involvedObject": {"kind": "Pod"}});
        let t = table(&desc, &[e], json!({}), now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["30s", "Normal", "R", "pod", "", "ctl", "m", "60m", 4, "e"])
        );
    }
}
