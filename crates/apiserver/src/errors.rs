//! API errors rendered as `metav1.Status` bodies, with the messages and reasons kube-apiserver
//! uses (apimachinery's `errors` package: `NewNotFound`, `NewConflict`, …), so clients that match on
//! `reason`/`code` (kube's `is_conflict()`, `is_not_found()`, kubectl) behave as against a real
//! cluster.

use serde_json::{Map, Value, json};

/// One `details.causes[]` entry of a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: String,
    pub message: String,
    /// Dotted path such as `spec.replicas` or `spec.containers[0].image`.
    pub field: String,
}

/// An API error: HTTP code plus the `Status` fields the real server sends.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// Group-qualified resource as the real server prints it: `pods`, `gamedeployments.tkex.tencent.com`.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `NewNotFound`: `pods "x" not found`, details.kind is the plural resource.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", qualified(group, plural)),
            details: Some(details(group, plural, name)),
        }
    }

    /// `NewAlreadyExists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", qualified(group, plural)),
            details: Some(details(group, plural, name)),
        }
    }

    /// `NewConflict` with the optimistic-concurrency message of `storage.ErrCodeResourceVersionConflicts`.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, plural)
            ),
            details: Some(details(group, plural, name)),
        }
    }

    /// The stale-resourceVersion conflict every optimistic-concurrency client retries on.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `NewInvalid`: 422 with `details.causes`; `kind` is the Kind (not the plural), as in
    /// `GameDeployment.tkex.tencent.com "x" is invalid: spec.replicas: ...`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[Cause]) -> Self {
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let list = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut d = details(group, kind, name);
        if let Value::Object(m) = &mut d {
            m.insert(
                "causes".into(),
                Value::Array(
                    causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                ),
            );
        }
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {list}", qualified(group, kind)),
            details: Some(d),
        }
    }

    /// `NewGenericServerResponse(422, ...)` with an empty resource, which is what a failed JSON
    /// patch (including a failed `test` op) produces (kube-apiserver's patch handler).
    pub fn unprocessable_patch() -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: "the server rejected our request due to an error in our request".into(),
            details: Some(json!({})),
        }
    }

    /// What `ErrorToAPIStatus` makes of an error that is not a `Status` (a storage or patch
    /// error passed through unconverted): the code, no reason, the error text as message.
    pub fn unconverted(code: u16, message: impl Into<String>) -> Self {
        Self::new(code, "", message)
    }

    /// `NewForbidden`: `namespaces "default" is forbidden: <why>`.
    pub fn forbidden_object(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(group, plural)
            ),
            details: Some(details(group, plural, name)),
        }
    }

    /// `NewRequestEntityTooLargeError` for a body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// `NewUnsupportedMediaTypeError`: 415 naming the media types the endpoint takes.
    pub fn unknown_body_format(accepted: &[&str]) -> Self {
        Self::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 410 for a continue token or watch resourceVersion the server no longer has.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {message}"),
            details: Some(json!({"causes": [{"message": message}]})),
        }
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if let Value::Object(m) = &mut s {
            // `reason` is omitempty: errors the server did not classify carry none.
            if !self.reason.is_empty() {
                m.insert("reason".into(), json!(self.reason));
            }
            if let Some(d) = &self.details {
                m.insert("details".into(), d.clone());
            }
        }
        s
    }
}

/// A field-level cause with the `Invalid value: <v>: <msg>` message of `field.Invalid`.
pub fn invalid_value(field: &str, value: &Value, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {msg}", render_value(value)),
        field: field.into(),
    }
}

/// `field.Required`.
pub fn required(field: &str, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: if msg.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {msg}")
        },
        field: field.into(),
    }
}

/// `field.Duplicate`.
pub fn duplicate(field: &str, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {}", render_value(value)),
        field: field.into(),
    }
}

/// `field.TooLong`, which does not repeat the value.
pub fn too_long(field: &str, max_bytes: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: may not be more than {max_bytes} bytes"),
        field: field.into(),
    }
}

/// `field.Forbidden`.
pub fn forbidden_field(field: &str, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {msg}"),
        field: field.into(),
    }
}

/// How `field.Error` prints a value: strings quoted, numbers and bools bare, composites by type.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "\"array\"".into(),
        Value::Object(_) => "\"object\"".into(),
    }
}

/// Go's `strconv.Quote` (`%q`): the escapes Go uses (`\a`, `\x07`, `\u00ad`), not Rust's
/// `\u{7}`, so a message with a control character reads as kube-apiserver's does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
