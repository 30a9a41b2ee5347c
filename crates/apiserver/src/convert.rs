//! `events.k8s.io/v1` Events are stored as core `v1` Events, as kube-apiserver does (one
//! storage, two served versions, converted as the events API's conversion functions do), so an event recorded
//! through either API is listed by both.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field)
pub(crate) const RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: Value, to_core: bool, api_version: &str) -> Value {
    let Value::Object(m) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (k, v) in m {
        let key = RENAMES
            .iter()
            .find(|(e, c)| if to_core { e == &k } else { c == &k })
            .map(|(e, c)| if to_core { *c } else { *e })
            .unwrap_or(k.as_str())
            .to_string();
        out.insert(key, v);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// events.k8s.io/v1 → stored core/v1 form.
pub fn event_to_core(obj: Value) -> Value {
    rename(obj, true, "v1")
}

/// Stored core/v1 form → events.k8s.io/v1.
pub fn event_from_core(obj: Value) -> Value {
    rename(obj, false, "events.k8s.io/v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x"},
            "regarding": {"name": "p"}, "note": "n", "reportingController": "c", "reason": "R"});
        let core = event_to_core(e.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "n");
        assert_eq!(core["reportingComponent"], "c");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(event_from_core(core), e);
    }
}
