//! A request's query options checked as kube-apiserver's handlers check them, before anything
//! is read or written: apimachinery's `ValidateCreateOptions`, `ValidateUpdateOptions`,
//! `ValidatePatchOptions`, `ValidateDeleteOptions` and `ValidateListOptions`. A bad value is
//! `422 Invalid` on `CreateOptions.meta.k8s.io ""` (and so on), never silently ignored: a
//! `dryRun=true` that was read as "not a dry run" really created and deleted objects.

use serde_json::{Value, json};

use crate::errors::{
    ApiError, Cause, forbidden_field, go_quote, invalid_value, required, too_long,
};

/// `fieldManager` is at most this many bytes (apimachinery's `FieldManagerMaxLength`).
pub const FIELD_MANAGER_MAX_BYTES: usize = 128;

const DRY_RUN_VALUES: &[&str] = &["All"];
const FIELD_VALIDATION_VALUES: &[&str] = &["", "Ignore", "Strict", "Warn"];
const PROPAGATION_VALUES: &[&str] = &["Foreground", "Background", "Orphan", "nil"];
const APPLY_PATCH: &str = "application/apply-patch+yaml";
const APPLY_PATCH_CBOR: &str = "application/apply-patch+cbor";

/// The query as kube-apiserver's parameter codec reads it: every value of a repeated key.
struct Query<'a> {
    pairs: Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    fn parse(query: Option<&'a str>) -> Self {
        Query {
            pairs: form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect(),
        }
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
            .collect()
    }

    /// The first value, as Go's `url.Values.Get` reads a scalar option.
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

/// Checks the options of a `verb` request; `ctype` is the body's media type (a patch's type).
pub fn check(verb: &str, query: Option<&str>, ctype: &str, has_body: bool) -> Result<(), ApiError> {
    let q = Query::parse(query);
    if verb == "deletecollection" {
        // Its list options first, as `delete.go` decodes and validates them before the
        // delete options.
        let causes = list_options(&q);
        if !causes.is_empty() {
            return Err(invalid("ListOptions", &causes));
        }
    }
    let (kind, causes) = match verb {
        "create" => ("CreateOptions", write_options(&q)),
        "update" => ("UpdateOptions", write_options(&q)),
        "patch" => {
            let mut causes = Vec::new();
            let manager = q.get("fieldManager").unwrap_or("");
            if ctype == APPLY_PATCH || ctype == APPLY_PATCH_CBOR {
                if manager.is_empty() {
                    causes.push(required("fieldManager", "is required for apply patch"));
                }
            } else if q.get("force").is_some() {
                causes.push(forbidden_field(
                    "force",
                    "may not be specified for non-apply patch",
                ));
            }
            causes.extend(write_options(&q));
            ("PatchOptions", causes)
        }
        // With a body, the delete handlers read their options from it and not from the
        // query (`delete.go`); `check_delete_body` checks those.
        "delete" | "deletecollection" if has_body => return Ok(()),
        "delete" | "deletecollection" => {
            let mut causes = dry_run(&q.all("dryRun"));
            if let Some(p) = q.get("propagationPolicy") {
                causes.extend(propagation(p));
            }
            ("DeleteOptions", causes)
        }
        "list" => ("ListOptions", list_options(&q)),
        "watch" => ("ListOptions", watch_options(&q)),
        _ => return Ok(()),
    };
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(kind, &causes))
    }
}

/// What a `DeleteOptions` body says beyond its field types (checked by the decoder first).
pub fn check_delete_body(v: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let policy = v.get("propagationPolicy").and_then(Value::as_str);
    let orphan = v.get("orphanDependents").filter(|o| !o.is_null());
    if let (Some(p), Some(_)) = (policy, orphan) {
        causes.push(invalid_value(
            "propagationPolicy",
            &json!(p),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(p) = policy {
        causes.extend(propagation(p));
    }
    let dry: Vec<&str> = v
        .get("dryRun")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    causes.extend(dry_run(&dry));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid("DeleteOptions", &causes))
    }
}

fn invalid(kind: &str, causes: &[Cause]) -> ApiError {
    ApiError::invalid("meta.k8s.io", kind, "", causes)
}

/// `fieldManager`, `dryRun` and `fieldValidation`, common to create, update and patch.
fn write_options(q: &Query) -> Vec<Cause> {
    let mut causes = Vec::new();
    let manager = q.get("fieldManager").unwrap_or("");
    if manager.len() > FIELD_MANAGER_MAX_BYTES {
        causes.push(too_long("fieldManager", FIELD_MANAGER_MAX_BYTES));
    }
    for (at, c) in manager.char_indices() {
        if !printable(c) {
            causes.push(invalid_value(
                "fieldManager",
                &json!(manager),
                &format!(
                    "invalid character {} (at position {at})",
                    go_unicode_verb(c)
                ),
            ));
        }
    }
    causes.extend(dry_run(&q.all("dryRun")));
    let validation = q.get("fieldValidation").unwrap_or("");
    if !FIELD_VALIDATION_VALUES.contains(&validation) {
        causes.push(not_supported(
            "fieldValidation",
            &json!(validation),
            FIELD_VALIDATION_VALUES,
        ));
    }
    causes
}

fn dry_run(values: &[&str]) -> Vec<Cause> {
    if values.iter().all(|v| DRY_RUN_VALUES.contains(v)) {
        return Vec::new();
    }
    vec![not_supported("dryRun", &json!(values), DRY_RUN_VALUES)]
}

fn propagation(policy: &str) -> Vec<Cause> {
    if PROPAGATION_VALUES[..3].contains(&policy) {
        return Vec::new();
    }
    vec![not_supported(
        "propagationPolicy",
        &json!(policy),
        PROPAGATION_VALUES,
    )]
}

fn list_options(q: &Query) -> Vec<Cause> {
    let mut causes = Vec::new();
    let rv = q.get("resourceVersion").unwrap_or("");
    if let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        if rv.is_empty() {
            causes.push(forbidden_field(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.get("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden_field(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(not_supported(
                "resourceVersionMatch",
                &json!(m),
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            causes.push(forbidden_field(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.get("sendInitialEvents").is_some() {
        causes.push(forbidden_field(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    causes
}

/// The WatchList feature is on (the server streams initial events).
fn watch_options(q: &Query) -> Vec<Cause> {
    let mut causes = Vec::new();
    let matching = q.get("resourceVersionMatch").unwrap_or("");
    let initial_events = q.get("sendInitialEvents").is_some();
    if initial_events && matching != "NotOlderThan" {
        causes.push(forbidden_field(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !matching.is_empty() {
        if !initial_events {
            causes.push(forbidden_field(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != "NotOlderThan" {
            causes.push(not_supported(
                "resourceVersionMatch",
                &json!(matching),
                &["NotOlderThan"],
            ));
        }
        if q.get("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden_field(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    causes
}

/// `field.NotSupported`: the value as Go's `field.Error` prints it (strings quoted, lists as
/// JSON), then the supported values, each quoted.
fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let shown = match value {
        Value::String(s) => go_quote(s),
        other => other.to_string(),
    };
    let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {shown}: supported values: {}",
            quoted.join(", ")
        ),
        field: field.into(),
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Rust has no Unicode category tables in std; control, separator (but ' '), private-use,
/// unassigned and surrogate code points are what Go refuses, which this approximates with the
/// control and whitespace classes plus the private-use planes.
fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let private_use = matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    !(c.is_control() || c.is_whitespace() || private_use)
}

/// Go's `%#U`: `U+0007` followed by the quoted character when it is printable.
fn go_unicode_verb(c: char) -> String {
    if printable(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(verb: &str, query: &str, ctype: &str) -> Option<String> {
        check(verb, Some(query), ctype, false)
            .err()
            .map(|e| e.message)
    }

    #[test]
    fn dry_run_takes_all_only() {
        assert_eq!(message("create", "dryRun=All", ""), None);
        assert_eq!(message("create", "dryRun=All&dryRun=All", ""), None);
        for bad in ["true", "all", "Bogus", ""] {
            let m = message("create", &format!("dryRun={bad}"), "").unwrap();
            assert_eq!(
                m,
                format!(
                    "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: \
                     [{bad:?}]: supported values: \"All\""
                )
            );
        }
        assert!(message("delete", "dryRun=true", "").is_some());
        assert!(message("patch", "dryRun=1", "application/merge-patch+json").is_some());
    }

    #[test]
    fn field_manager_is_short_and_printable() {
        let long = "m".repeat(200);
        assert_eq!(
            message("create", &format!("fieldManager={long}"), "").unwrap(),
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more \
             than 128 bytes"
        );
        assert_eq!(
            message("update", "fieldManager=a%07b", "").unwrap(),
            "UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \
             \"a\\ab\": invalid character U+0007 (at position 1)"
        );
        assert_eq!(message("create", "fieldManager=kubectl-edit", ""), None);
    }

    #[test]
    fn list_and_watch_options_as_validate_list_options() {
        let cases = [
            (
                "list",
                "resourceVersionMatch=NotOlderThan",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless \
                 resourceVersion is provided",
            ),
            (
                "list",
                "resourceVersion=5&resourceVersionMatch=Bogus",
                "resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \
                 \"Exact\", \"NotOlderThan\", \"\"",
            ),
            (
                "list",
                "resourceVersion=0&resourceVersionMatch=Exact",
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden \
                 for resourceVersion \"0\"",
            ),
            (
                "list",
                "sendInitialEvents=true",
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
            ),
            (
                "watch",
                "resourceVersion=5&resourceVersionMatch=NotOlderThan",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch \
                 unless sendInitialEvents is provided",
            ),
        ];
        for (verb, query, want) in cases {
            let m = message(verb, query, "").unwrap();
            assert_eq!(
                m,
                format!("ListOptions.meta.k8s.io \"\" is invalid: {want}"),
                "{query}"
            );
        }
        assert_eq!(
            message(
                "watch",
                "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
                ""
            ),
            None
        );
        assert_eq!(
            message(
                "list",
                "resourceVersion=5&resourceVersionMatch=NotOlderThan",
                ""
            ),
            None
        );
    }

    #[test]
    fn propagation_policy_and_apply_options() {
        assert_eq!(
            message("delete", "propagationPolicy=Bogus", "").unwrap(),
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \
             \"Bogus\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        let e =
            check_delete_body(&json!({"propagationPolicy": "Orphan", "orphanDependents": true}))
                .unwrap_err();
        assert!(e.message.contains("cannot be both set"), "{}", e.message);
        assert_eq!(
            message("patch", "", APPLY_PATCH).unwrap(),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is \
             required for apply patch"
        );
        assert_eq!(
            message("patch", "force=true", "application/merge-patch+json").unwrap(),
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified \
             for non-apply patch"
        );
    }
}
