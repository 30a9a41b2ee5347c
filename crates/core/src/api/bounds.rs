//! Integer bounds for the generated schemas. kube-apiserver does not enforce `format: int32`
//! (or `int64`) for custom resources, so `replicas: 1099511627776` was stored and then could
//! not be decoded by the operator. One pass over each schema gives every integer without a
//! bound the range of its format, which the API server does enforce.

use serde_json::Value;

/// The range of an integer `format` (`int64` when absent or unknown).
fn range(format: Option<&str>) -> (i64, i64) {
    match format {
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Adds `minimum`/`maximum` to every `type: integer` node of `schema` that lacks them, and
/// narrows any that exceed the format's range.
pub fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(node) => {
            if node.get("type").and_then(Value::as_str) == Some("integer") {
                let (lo, hi) = range(node.get("format").and_then(Value::as_str));
                // k8s-openapi keeps bounds as f64.
                let (lo, hi) = (lo as f64, hi as f64);
                let min = node
                    .get("minimum")
                    .and_then(Value::as_f64)
                    .map_or(lo, |m| m.max(lo));
                let max = node
                    .get("maximum")
                    .and_then(Value::as_f64)
                    .map_or(hi, |m| m.min(hi));
                node.insert("minimum".into(), min.into());
                node.insert("maximum".into(), max.into());
            }
            node.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_get_their_formats_range_and_keep_tighter_bounds() {
        let mut s = json!({"properties": {
            "a": {"type": "integer", "format": "int32"},
            "b": {"type": "integer", "format": "int32", "minimum": 0},
            "c": {"type": "integer", "format": "int64"},
            "d": {"type": "string"},
        }});
        bound_integers(&mut s);
        assert_eq!(s["properties"]["a"]["minimum"], json!(-2147483648.0));
        assert_eq!(s["properties"]["a"]["maximum"], json!(2147483647.0));
        assert_eq!(s["properties"]["b"]["minimum"], json!(0.0));
        assert_eq!(s["properties"]["c"]["maximum"], json!(i64::MAX as f64));
        assert_eq!(s["properties"]["d"], json!({"type": "string"}));
    }
}
