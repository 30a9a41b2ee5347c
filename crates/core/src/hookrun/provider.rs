//! What a measurement asks of the world, with the run's arguments filled in: the IO edge
//! carries out a [`ProviderCall`] and hands back an [`Observation`].

use jiff::SignedDuration;

use crate::api::{KubernetesFunction, MetricProvider, WebMethod};

/// Annotation fields are the only kubernetes fields the original supports.
const ANNOTATION_PREFIX: &str = "metadata.annotations.";

/// One provider request, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderCall {
    /// An HTTP request; redirects are not followed.
    Web {
        method: WebMethod,
        url: String,
        body: String,
        headers: Vec<(String, String)>,
        timeout: SignedDuration,
    },
    /// An instant query over the HTTP API (`GET {address}/api/v1/query`).
    Prometheus { address: String, query: String },
    /// Read (`Get`) or write (`Patch`) annotations of one object.
    Kubernetes {
        function: KubernetesFunction,
        target: ObjectTarget,
        /// `(annotation key, value)`; for `Get` the value is what the original compared with.
        annotations: Vec<(String, String)>,
    },
}

/// The object a kubernetes metric reads or patches: args `Group`, `Version`, `Kind` (default
/// the core v1 Pod), `PodNamespace` and `PodName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTarget {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// What the IO edge saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A web response, any status: the engine applies `jsonPath` and the conditions.
    Http { status: u16, body: String },
    /// A value, e.g. an annotation as a JSON string or a patch's `true`.
    Value(serde_json::Value),
    /// Prometheus numbers: a scalar, or a vector's samples. NaN is data.
    Numbers(Vec<f64>),
    /// Nothing to evaluate: an empty vector, a missing annotation. `noData` decides.
    NoData(String),
    /// The provider failed: unreachable, timed out, refused, unreadable answer.
    Error(String),
}

/// Why a provider cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// `{{ args.NAME }}` without a value.
    MissingArgument(String),
    /// `{{ ... }}` that is not an argument placeholder, or that is never closed.
    Placeholder(String),
    /// A kubernetes field other than an annotation.
    FieldPath(String),
    /// Not exactly one provider.
    Providers,
    /// An argument's value that cannot be placed where its placeholder is: `(argument, why)`.
    Unsafe(String, String),
}

impl ProviderCall {
    /// Resolves `provider` with `arg`, which gives an argument's value by name.
    pub fn resolve(
        provider: &MetricProvider,
        arg: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProviderCall, ResolveError> {
        let fill = |text: &str| substitute(text, arg, Placement::Raw);
        let url = |text: &str| substitute(text, arg, Placement::Url);
        match (&provider.web, &provider.prometheus, &provider.kubernetes) {
            (Some(web), None, None) => Ok(ProviderCall::Web {
                method: web.method.unwrap_or_default(),
                url: url(&web.url)?,
                body: substitute(&web.body, arg, Placement::body(&web.body))?,
                headers: web
                    .headers
                    .iter()
                    .map(|h| Ok((h.key.clone(), substitute(&h.value, arg, Placement::Header)?)))
                    .collect::<Result<_, ResolveError>>()?,
                timeout: SignedDuration::from_secs(i64::from(web.timeout_seconds())),
            }),
            (None, Some(prom), None) => Ok(ProviderCall::Prometheus {
                address: url(&prom.address)?,
                query: substitute(&prom.query, arg, Placement::PromQl)?,
            }),
            (None, None, Some(k)) => {
                let annotations = k
                    .fields
                    .iter()
                    .map(|f| {
                        let key = f
                            .path
                            .strip_prefix(ANNOTATION_PREFIX)
                            .filter(|key| !key.is_empty())
                            .ok_or_else(|| ResolveError::FieldPath(f.path.clone()))?;
                        Ok((key.to_string(), fill(&f.value)?))
                    })
                    .collect::<Result<_, ResolveError>>()?;
                let required = |name: &str| {
                    arg(name).ok_or_else(|| ResolveError::MissingArgument(name.to_string()))
                };
                Ok(ProviderCall::Kubernetes {
                    function: k.function.clone().unwrap_or(KubernetesFunction::Get),
                    target: ObjectTarget {
                        group: arg("Group").unwrap_or_default(),
                        version: arg("Version").unwrap_or_else(|| "v1".into()),
                        kind: arg("Kind").unwrap_or_else(|| "Pod".into()),
                        namespace: required("PodNamespace")?,
                        name: required("PodName")?,
                    },
                    annotations,
                })
            }
            _ => Err(ResolveError::Providers),
        }
    }

    /// The request in words, recorded with each measurement.
    pub fn describe(&self) -> String {
        match self {
            ProviderCall::Web { method, url, .. } => format!("{method} {}", redact_url(url)),
            ProviderCall::Prometheus { address, query } => {
                format!("query {query} at {}", redact_url(address))
            }
            ProviderCall::Kubernetes {
                function,
                target,
                annotations,
            } => {
                let verb = match function {
                    KubernetesFunction::Get => "get",
                    KubernetesFunction::Patch => "patch",
                };
                let keys: Vec<&str> = annotations.iter().map(|(k, _)| k.as_str()).collect();
                let group = if target.group.is_empty() {
                    String::new()
                } else {
                    format!(".{}", target.group)
                };
                format!(
                    "{verb} {}{group} {}/{} annotations {}",
                    target.kind.to_lowercase(),
                    target.namespace,
                    target.name,
                    keys.join(", ")
                )
            }
        }
    }
}

/// A Prometheus `/api/v1/query` answer as an observation: a scalar or a vector's samples are
/// numbers (NaN and infinities included: they are data), an empty vector is no data, an
/// error answer or an unreadable body is a provider error.
pub fn prometheus_observation(http_status: u16, body: &str) -> Observation {
    #[derive(serde::Deserialize)]
    struct Answer {
        status: String,
        #[serde(default)]
        error: String,
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    #[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
    enum Data {
        Scalar((f64, String)),
        Vector(Vec<Sample>),
        Matrix(serde::de::IgnoredAny),
        String(serde::de::IgnoredAny),
    }
    #[derive(serde::Deserialize)]
    struct Sample {
        value: (f64, String),
    }
    let answer: Answer = match serde_json::from_str(body) {
        Ok(a) => a,
        Err(e) => {
            return Observation::Error(format!(
                "HTTP {http_status}: not a Prometheus query answer ({e})"
            ));
        }
    };
    if answer.status != "success" {
        return Observation::Error(format!("Prometheus refused the query: {}", answer.error));
    }
    let number = |text: &str| {
        text.parse::<f64>()
            .map_err(|_| Observation::Error(format!("Prometheus sent {text:?}, not a number")))
    };
    let numbers: Result<Vec<f64>, Observation> = match answer.data {
        Some(Data::Scalar((_, v))) => number(&v).map(|n| vec![n]),
        Some(Data::Vector(samples)) if samples.is_empty() => {
            return Observation::NoData("the query returned no samples".into());
        }
        Some(Data::Vector(samples)) => samples.iter().map(|s| number(&s.value.1)).collect(),
        Some(Data::Matrix(_) | Data::String(_)) | None => {
            return Observation::Error(
                "a Prometheus metric needs an instant query answering a scalar or a vector".into(),
            );
        }
    };
    match numbers {
        Ok(ns) => Observation::Numbers(ns),
        Err(e) => e,
    }
}

/// `url` without the password (or token) of its `user:password@`, for status, events and
/// messages: `https://***@host/path`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// Where a placeholder stands, which says how its value is escaped so that it stays one value
/// there and cannot add fields, parameters, headers or query terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// A URL (web `url`, Prometheus `address`): percent-encoded, every byte but the unreserved
    /// `A-Z a-z 0-9 - . _ ~` and `:` (so an IPv6 address or `host:port` still works), so a value
    /// cannot add a path, a query parameter, a fragment or credentials.
    Url,
    /// A web `body` that is JSON (it starts with `{` or `[`): inside a string literal the value
    /// is escaped as JSON string content; outside one it is itself when it is a JSON number,
    /// `true`, `false` or `null`, and a quoted JSON string otherwise.
    Json,
    /// Any other web `body` (a form, text): percent-encoded as in a URL.
    Form,
    /// A header value: taken as is, but a value with a line break (CR or LF) is refused.
    Header,
    /// A Prometheus query: inside a string literal (`"..."`, `'...'`) escaped as PromQL string
    /// content; outside one, only a value of letters, digits and `_ . : -` is accepted.
    PromQl,
    /// A kubernetes annotation value: a value of its own, no escaping needed.
    Raw,
}

impl Placement {
    fn body(text: &str) -> Placement {
        if text.trim_start().starts_with(['{', '[']) {
            Placement::Json
        } else {
            Placement::Form
        }
    }

    /// `value` escaped for a placeholder preceded by `before` (the template text so far).
    fn escape(self, name: &str, value: &str, before: &str) -> Result<String, ResolveError> {
        let refuse = |why: &str| Err(ResolveError::Unsafe(name.to_string(), why.to_string()));
        match self {
            Placement::Raw => Ok(value.to_string()),
            Placement::Url | Placement::Form => Ok(percent_encode(value)),
            Placement::Header if value.contains(['\r', '\n']) => {
                refuse("a header value cannot hold a line break")
            }
            Placement::Header => Ok(value.to_string()),
            Placement::Json if open_quote(before, b"\"").is_some() => {
                let quoted = serde_json::Value::String(value.to_string()).to_string();
                Ok(quoted[1..quoted.len() - 1].to_string())
            }
            Placement::Json => Ok(match serde_json::from_str::<serde_json::Value>(value) {
                Ok(
                    v @ (serde_json::Value::Number(_)
                    | serde_json::Value::Bool(_)
                    | serde_json::Value::Null),
                ) => v.to_string(),
                _ => serde_json::Value::String(value.to_string()).to_string(),
            }),
            Placement::PromQl => match open_quote(before, b"\"'`") {
                Some(quote) => Ok(promql_string_content(value, quote)),
                None if value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) =>
                {
                    Ok(value.to_string())
                }
                None => refuse(
                    "outside quotes in a Prometheus query a value may hold only letters, \
                     digits and _ . : - (put the placeholder in quotes for any text)",
                ),
            },
        }
    }
}

/// The quote character of the string literal `before` ends inside, if any (backslash
/// escapes followed; backquoted PromQL strings have none).
fn open_quote(before: &str, quotes: &[u8]) -> Option<u8> {
    let mut open: Option<u8> = None;
    let mut bytes = before.bytes();
    while let Some(b) = bytes.next() {
        match open {
            Some(q) if b == b'\\' && q != b'`' => {
                bytes.next();
            }
            Some(q) if b == q => open = None,
            Some(_) => {}
            None if quotes.contains(&b) => open = Some(b),
            None => {}
        }
    }
    open
}

/// PromQL string content: backslash, the quote and control characters escaped.
fn promql_string_content(value: &str, quote: u8) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' if quote != b'`' => out.push_str("\\\\"),
            '\n' if quote != b'`' => out.push_str("\\n"),
            '\r' if quote != b'`' => out.push_str("\\r"),
            '\t' if quote != b'`' => out.push_str("\\t"),
            c if c as u32 == u32::from(quote) && quote != b'`' => {
                out.push('\\');
                out.push(c);
            }
            // A raw (backquoted) string has no escapes: its quote cannot appear in it.
            '`' if quote == b'`' => {}
            c => out.push(c),
        }
    }
    out
}

/// Percent-encoding of every byte but `A-Z a-z 0-9 - . _ ~ :`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Replaces each `{{ args.NAME }}` (spaces optional) with the argument's value, escaped for
/// where it stands.
fn substitute(
    text: &str,
    arg: &dyn Fn(&str) -> Option<String>,
    placement: Placement,
) -> Result<String, ResolveError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| ResolveError::Placeholder(rest[open..].to_string()))?;
        let inner = after[..close].trim();
        let name = inner
            .strip_prefix("args.")
            .ok_or_else(|| ResolveError::Placeholder(format!("{{{{{}}}}}", &after[..close])))?;
        let value = arg(name).ok_or_else(|| ResolveError::MissingArgument(name.to_string()))?;
        let before = &text[..text.len() - rest.len() + open];
        out.push_str(&placement.escape(name, &value, before)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
