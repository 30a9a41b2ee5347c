//! What a registry operation is told about its request.

use serde_json::Value;

/// Per-request facts the operations need: the time, the field manager and the write options.
#[derive(Clone)]
pub struct RequestContext {
    /// RFC 3339 time from the server's clock (second precision, like `metav1.Time`).
    pub now: String,
    /// `now` as seconds since the epoch, for graceful-deletion arithmetic.
    pub now_secs: i64,
    pub manager: String,
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown or duplicate fields are an error instead of dropped.
    pub strict: bool,
    /// The client a request came from (`request.userInfo.username` for admission policies);
    /// `None` for the server's own writes (seeding, garbage collection, the object behind a
    /// `/scale` write, which is admitted as a Scale), which skip admission.
    pub user: Option<String>,
    /// The API version the client wrote in, for `managedFields`, when it is not the stored
    /// resource's (`events.k8s.io/v1` Events are stored as core `v1` ones).
    pub written_as: Option<String>,
}

/// Which endpoint a write came through: the resource itself (`Main`), its `/status`
/// subresource, or a pod's `/resize`. (`/scale` is translated into a main-resource write before
/// it gets here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
    Resize,
}

impl Subresource {
    /// `Status` for the `status` path segment, `Resize` for `resize`, `Main` for none.
    pub fn of_path(segment: Option<&str>) -> Self {
        match segment {
            Some("status") => Subresource::Status,
            Some("resize") => Subresource::Resize,
            _ => Subresource::Main,
        }
    }

    /// The subresource as admission and managedFields name it.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
            Subresource::Resize => Some("resize"),
        }
    }
}

/// A server-side apply's configuration and `force`, for the write's managedFields.
pub struct ApplyInfo<'a> {
    pub config: &'a Value,
    pub force: bool,
}
