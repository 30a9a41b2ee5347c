//! The operator's edge: the kube-runtime `Controller` wiring, the execution of plans against
//! the API server, and events. Everything here does IO; every decision it executes comes from
//! [`gamedeploy_core::planner`] and [`gamedeploy_core::inplace`].
//!
//! - [`leader`]: leader election on a coordination.k8s.io/v1 Lease; on top of everything.
//! - [`controller`]: watches, caches, the reconcile loop, requeue timing; starts the HookRun
//!   controller beside the GameDeployment controller.
//! - [`execute`]: [`execute::run_plan`] runs one [`gamedeploy_core::planner::model::Plan`].
//! - [`expectations`]: creates and deletes sent and not yet seen by the pod watch.
//! - [`claim`]: adopts and releases pods as the planner's adoption rules decided.
//! - [`events`]: events.k8s.io/v1 events stamped with the injected clock.
//! - [`hookruns`]: the HookRun controller and the providers' IO (HTTP, the Kubernetes API).
//! - [`trigger`]: what woke a reconcile, for its span.
//! - [`watch`]: reflectors and lenient watches, for both controllers.
//! - [`roster`]: the pod cache, indexed per GameDeployment; [`nodes`]: the node cache, as
//!   deletion costs and facts.
//! - [`write_gate`]: the gate every write passes, closed when leadership is lost.
//! - [`logs`]: text and JSON log lines, both carrying the reconcile's span.
//! - [`metrics`]: Prometheus metrics and readiness; [`serve`] serves them.
//! - [`handle`]: an operator on its own task, stopped or killed (tests and simulations).
pub mod claim;
pub mod controller;
pub mod events;
pub mod execute;
pub mod expectations;
pub mod handle;
pub mod hookruns;
pub mod leader;
pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod roster;
pub mod serve;
pub mod trigger;
pub mod watch;
pub mod write_gate;
pub mod written;

/// Why a reconcile could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing GameDeployment {name} status: {source}")]
    Status { name: String, source: kube::Error },
    #[error("the GameDeployment has no namespace or name")]
    Unnamed,
    #[error("this operator lost the leader lease; the rest of the reconcile was not written")]
    NotLeader,
}

impl From<write_gate::NotLeader> for Error {
    fn from(_: write_gate::NotLeader) -> Self {
        Error::NotLeader
    }
}

/// An error and its causes as one line for people. kube's own `Display` of an API error
/// embeds the `Debug` dump of the Status, and a transport error says only "client error
/// (Connect)", leaving the reason (connection refused, no such host) to its `source()` chain.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        next = e.source();
        let status = match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(s)) => Some(s.as_ref()),
            Some(kube::Error::SerdeError(serde)) => {
                parts.push(format!(
                    "the server's answer could not be read as the expected kind: {serde}"
                ));
                break;
            }
            // Labels whose message is their source's.
            Some(kube::Error::HyperError(_) | kube::Error::Service(_)) => continue,
            _ => e.downcast_ref::<kube::core::Status>(),
        };
        if let Some(s) = status {
            parts.push(status_message(s));
            break;
        }
        let text = e.to_string();
        // A wrapper that repeats its source's message adds only its own prefix.
        let own = match next.map(|s| s.to_string()) {
            Some(inner) => text
                .strip_suffix(&inner)
                .map_or(text.as_str(), |p| p.trim_end_matches([':', ' ']))
                .to_string(),
            None => text,
        };
        if !own.is_empty() {
            parts.push(own);
        }
    }
    parts.join(": ")
}

/// What the API server said: its message (`pods "foo" not found`), or, for an answer that was
/// not a Status at all (a proxy's or a web server's error page), just the HTTP status.
fn status_message(s: &kube::core::Status) -> String {
    // kube's reason for a body it could not read as a Status; the body is then a page of
    // HTML or text that says nothing a user can act on here.
    const NOT_A_STATUS: &str = "Failed to parse error data";
    if !s.message.is_empty() && s.reason != NOT_A_STATUS {
        return s.message.clone();
    }
    if s.code == 0 {
        // No HTTP status: kube read a line of a watch that did not decode as an event of the
        // expected kind as a (blank) Status, and kept nothing of the reason.
        return "the server sent an object that could not be read as the expected kind (a field of the wrong type, or not an object of this kind); kube kept no detail".into();
    }
    match http::StatusCode::from_u16(s.code) {
        Ok(code) => format!("the server answered {code}"),
        Err(_) => format!("the server answered status {}", s.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_as_the_servers_message() {
        let status = kube::core::Status::failure(r#"pods "foo" not found"#, "NotFound")
            .with_code(404)
            .boxed();
        let e = kube::Error::Api(status);
        assert!(
            e.to_string().contains("Status {"),
            "kube's own Display dumps"
        );
        assert_eq!(describe(&e), r#"pods "foo" not found"#);
        let watch = kube::runtime::watcher::Error::InitialListFailed(e);
        assert_eq!(
            describe(&watch),
            r#"failed to perform initial object list: pods "foo" not found"#
        );
    }

    #[test]
    fn answers_that_are_not_a_status_read_as_the_http_status() {
        let status =
            kube::core::Status::failure("<html>404 page</html>", "Failed to parse error data")
                .with_code(404)
                .boxed();
        assert_eq!(
            describe(&kube::Error::Api(status)),
            "the server answered 404 Not Found"
        );
    }

    #[test]
    fn answers_that_could_not_be_decoded_say_so() {
        // What kube makes of a watch line that is not an event of the watched kind.
        let blank: kube::core::Status = serde_json::from_str(r#"{"type": "ADDED"}"#).unwrap();
        let watch = kube::runtime::watcher::Error::WatchFailed(kube::Error::Api(blank.boxed()));
        assert_eq!(
            describe(&watch),
            "watch stream failed: the server sent an object that could not be read as the expected kind (a field of the wrong type, or not an object of this kind); kube kept no detail"
        );
        let serde = serde_json::from_str::<i32>("\"x\"").unwrap_err();
        let e = kube::Error::SerdeError(serde);
        assert_eq!(
            describe(&e),
            "the server's answer could not be read as the expected kind: invalid type: string \"x\", expected i32 at line 1 column 3"
        );
    }

    #[test]
    fn transport_errors_read_as_their_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = kube::Error::Service(Box::new(io));
        assert_eq!(describe(&e), "connection refused");
    }
}
