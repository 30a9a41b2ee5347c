//! From a web response body to `result`. The original ran the body through client-go's
//! jsonpath template (`{$.a.b}`) and printed the match as text, so numbers of a million and
//! more became `1e+06`; here the match keeps its JSON type, and RFC 9535 paths (`$.a.b`) work
//! as well as the original's form.

use jsonpath_rust::JsonPath as _;
use serde_json::Value;

/// A checked JSONPath, in RFC 9535 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// As the user wrote it.
    pub text: String,
    rfc: String,
}

/// Why a body gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoValue {
    /// The path matched nothing: the metric's `noData` policy decides.
    NoData(String),
    /// The body cannot be read as asked: a provider error.
    Error(String),
}

impl JsonPath {
    /// Accepts `{$.a.b}`, `{.a.b}`, `$.a.b`, `.a.b` and `a.b`; the error says what is wrong.
    pub fn compile(text: &str) -> Result<JsonPath, String> {
        let trimmed = text.trim();
        let inner = match trimmed.strip_prefix('{') {
            Some(rest) => rest
                .strip_suffix('}')
                .ok_or("it opens { but does not close it")?,
            None => trimmed,
        };
        if inner.contains(['{', '}']) {
            return Err("only one {...} expression is supported, without text around it".into());
        }
        let inner = inner.trim();
        let rfc = if inner.starts_with('$') {
            inner.to_string()
        } else if inner.starts_with(['.', '[']) {
            format!("${inner}")
        } else {
            format!("$.{inner}")
        };
        jsonpath_rust::parser::parse_json_path(&rfc).map_err(|e| e.to_string())?;
        Ok(JsonPath {
            text: text.to_string(),
            rfc,
        })
    }

    /// The matches in `doc`: one value as itself, several as a list, none as no data.
    pub fn select(&self, doc: &Value) -> Result<Value, NoValue> {
        let found = doc
            .query(&self.rfc)
            .map_err(|e| NoValue::Error(format!("jsonPath {}: {e}", self.text)))?;
        match found.as_slice() {
            [] => Err(NoValue::NoData(format!(
                "jsonPath {} matched nothing in the response",
                self.text
            ))),
            [one] => Ok((*one).clone()),
            many => Ok(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
        }
    }
}

/// `result` for a web response. Without a path a JSON object or list is parsed (so
/// `result.players` works) and anything else is the trimmed text, as in the original (so
/// `result == "ok"` works); with a path the body must be JSON.
pub fn web_result(body: &str, path: Option<&JsonPath>) -> Result<Value, NoValue> {
    let parsed = serde_json::from_str::<Value>(body);
    match (path, parsed) {
        (None, Ok(v @ (Value::Object(_) | Value::Array(_)))) => Ok(v),
        (None, _) => Ok(Value::String(body.trim().to_string())),
        (Some(p), Ok(doc)) => p.select(&doc),
        (Some(p), Err(e)) => Err(NoValue::Error(format!(
            "jsonPath {} needs a JSON response, but the body is not JSON ({e})",
            p.text
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, doc: Value) -> Result<Value, NoValue> {
        JsonPath::compile(path).unwrap().select(&doc)
    }

    #[test]
    fn the_originals_form_and_rfc_9535_agree() {
        let doc = json!({"a": {"b": 7}, "list": [1, 2]});
        for path in ["{$.a.b}", "{.a.b}", "$.a.b", ".a.b", "a.b", " {$.a.b} "] {
            assert_eq!(select(path, doc.clone()), Ok(json!(7)), "{path}");
        }
        assert_eq!(select("$.list[*]", doc.clone()), Ok(json!([1, 2])));
        assert_eq!(select("$['a']['b']", doc), Ok(json!(7)));
    }

    /// The original printed 1000000 as `1e+06` and `asInt` then failed.
    #[test]
    fn numbers_stay_numbers() {
        let doc = json!({"players": 1_000_000, "ratio": 0.5, "name": "x"});
        assert_eq!(select("{$.players}", doc.clone()), Ok(json!(1_000_000)));
        assert_eq!(select("$.ratio", doc.clone()), Ok(json!(0.5)));
        assert_eq!(select("$.name", doc), Ok(json!("x")));
    }

    #[test]
    fn a_path_that_matches_nothing_is_no_data() {
        assert!(matches!(
            select("$.missing", json!({"a": 1})),
            Err(NoValue::NoData(m)) if m == "jsonPath $.missing matched nothing in the response"
        ));
    }

    #[test]
    fn bad_paths_are_refused_when_compiled() {
        assert!(JsonPath::compile("{$.a").is_err());
        assert!(JsonPath::compile("{.a}-{.b}").is_err());
        assert!(JsonPath::compile("$.a[").is_err());
    }

    #[test]
    fn bodies_without_a_path() {
        assert_eq!(web_result(" ok\n", None), Ok(json!("ok")));
        assert_eq!(
            web_result("42", None),
            Ok(json!("42")),
            "text, as in the original"
        );
        assert_eq!(
            web_result(r#"{"players": 0}"#, None),
            Ok(json!({"players": 0}))
        );
    }

    #[test]
    fn a_path_over_a_body_that_is_not_json_is_an_error() {
        let p = JsonPath::compile("$.a").unwrap();
        assert!(
            matches!(web_result("<html>", Some(&p)), Err(NoValue::Error(m)) if m.contains("not JSON"))
        );
        assert_eq!(web_result(r#"{"a": "x"}"#, Some(&p)), Ok(json!("x")));
    }
}
