//! The providers' IO: what a [`ProviderCall`] asks of the world, carried out, and what came
//! back as an [`Observation`]. Deciding what the answer means is the engine's
//! ([`gamedeploy_core::hookrun::fold_measurement`]); nothing here judges.
//!
//! One HTTP client serves the whole process (its connection pool is shared by every
//! measurement); TLS is rustls with the system's roots. Redirects are not followed: a 3xx is
//! the answer, which a condition on `statusCode` may accept.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use gamedeploy_core::api::{KubernetesFunction, WebMethod};
use gamedeploy_core::hookrun::{ObjectTarget, Observation, ProviderCall, prometheus_observation};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

/// Largest response body read from a web or Prometheus endpoint: a measurement reads a
/// number or a short document, and a runaway endpoint must not fill the operator's memory.
pub const RESPONSE_MAX_BYTES: usize = 1024 * 1024;
/// A Prometheus query's timeout (the API has no field for it).
pub const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes measurements. The operator's is [`Providers`]; simulations script their answers.
pub trait Measure: Send + Sync + 'static {
    fn measure<'a>(&'a self, call: &'a ProviderCall) -> BoxFuture<'a, Observation>;

    /// Takes a measurement for a HookRun in `namespace`: a kubernetes call is confined to that
    /// namespace first ([`confine`]), so no implementation can be led into another tenant's
    /// objects; a refused call is an error observation, and nothing is sent.
    fn measure_for<'a>(
        &'a self,
        namespace: &'a str,
        call: &'a ProviderCall,
    ) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            match confine(call, namespace) {
                Ok(call) => self.measure(&call).await,
                Err(refused) => Observation::Error(refused.to_string()),
            }
        })
    }
}

/// The annotation `kubectl apply` keeps a copy of the whole object in (a Secret's data
/// included): hooks neither read nor write it.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why a kubernetes metric may not reach the object it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutOfReach {
    #[error(
        "the kubernetes provider reaches only objects in the HookRun's own namespace {own}, not {asked} (the PodNamespace argument): a hook cannot read or patch another namespace's objects"
    )]
    OtherNamespace { own: String, asked: String },
    #[error(
        "the kubernetes provider does not read or patch Secrets: a Secret's annotations can hold its data"
    )]
    Secret,
    #[error(
        "the kubernetes provider does not read or patch the annotation {LAST_APPLIED}: it holds a copy of the whole object"
    )]
    LastApplied,
}

/// What no hook may touch, in any namespace.
fn forbidden(target: &ObjectTarget, annotations: &[(String, String)]) -> Option<OutOfReach> {
    if target.group.is_empty() && target.kind.eq_ignore_ascii_case("secret") {
        return Some(OutOfReach::Secret);
    }
    annotations
        .iter()
        .any(|(k, _)| k == LAST_APPLIED)
        .then_some(OutOfReach::LastApplied)
}

/// The call a HookRun in `namespace` may make: anything but a kubernetes call unchanged; a
/// kubernetes call only inside `namespace` (an empty target namespace means it), never on a
/// Secret, never on the last-applied-configuration annotation. Argo Rollouts' providers stay
/// in the rollout's namespace the same way; the operator's RBAC is cluster-wide, so without
/// this a HookRun's `PodNamespace` argument would carry its author into any namespace.
pub fn confine<'a>(
    call: &'a ProviderCall,
    namespace: &str,
) -> Result<Cow<'a, ProviderCall>, OutOfReach> {
    let ProviderCall::Kubernetes {
        function,
        target,
        annotations,
    } = call
    else {
        return Ok(Cow::Borrowed(call));
    };
    if let Some(refused) = forbidden(target, annotations) {
        return Err(refused);
    }
    if target.namespace == namespace {
        return Ok(Cow::Borrowed(call));
    }
    if !target.namespace.is_empty() {
        return Err(OutOfReach::OtherNamespace {
            own: namespace.to_string(),
            asked: target.namespace.clone(),
        });
    }
    Ok(Cow::Owned(ProviderCall::Kubernetes {
        function: function.clone(),
        target: ObjectTarget {
            namespace: namespace.to_string(),
            ..target.clone()
        },
        annotations: annotations.clone(),
    }))
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The live providers: HTTP (web, Prometheus) and the Kubernetes API.
#[derive(Clone)]
pub struct Providers {
    http: HttpClient<Https, Full<Bytes>>,
    kube: kube::Client,
}

impl Providers {
    /// The process's providers; `kube` is the operator's own client (its RBAC decides which
    /// objects a kubernetes metric may read or patch).
    pub fn new(kube: kube::Client) -> Self {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(b) => b,
            Err(e) => {
                // No system roots (a scratch image): plain HTTP still works, and every HTTPS
                // measurement says why it fails.
                tracing::warn!(
                    "no TLS root certificates found ({e}); https hooks will fail to verify servers"
                );
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default protocol versions")
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Providers { http, kube }
    }

    async fn http(
        &self,
        method: WebMethod,
        url: &str,
        headers: &[(String, String)],
        body: &str,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        if url.trim().is_empty() {
            return Err("the URL is empty: set provider.web.url to a URL such as http://{{args.PodIP}}:8080/ready".into());
        }
        // Messages end up in HookRun status: never with a URL's `user:password@`.
        let shown = gamedeploy_core::hookrun::redact_url(url);
        absolute(url).map_err(|why| format!("the URL {shown} {why}"))?;
        let mut request = http::Request::builder()
            .method(match method {
                WebMethod::GET => http::Method::GET,
                WebMethod::POST => http::Method::POST,
            })
            .uri(url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("cannot build a request to {shown}: {e}"))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("{method} {shown} failed: {}", crate::describe(&e)))?;
            let status = response.status().as_u16();
            let bytes = Limited::new(response.into_body(), RESPONSE_MAX_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!(
                            "the answer of {shown} is larger than {} KiB",
                            RESPONSE_MAX_BYTES / 1024
                        )
                    } else {
                        format!("reading the answer of {shown}: {e}")
                    }
                })?
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{shown} did not answer within {}s", timeout.as_secs()))?
    }

    async fn kubernetes(
        &self,
        function: &KubernetesFunction,
        target: &ObjectTarget,
        annotations: &[(String, String)],
    ) -> Observation {
        if let Some(refused) = forbidden(target, annotations) {
            return Observation::Error(refused.to_string());
        }
        let gvk = GroupVersionKind::gvk(&target.group, &target.version, &target.kind);
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.kube.clone(),
            &target.namespace,
            &ApiResource::from_gvk(&gvk),
        );
        let what = format!(
            "{} {}/{}",
            target.kind.to_lowercase(),
            target.namespace,
            target.name
        );
        match function {
            KubernetesFunction::Get => match api.get_opt(&target.name).await {
                Ok(Some(obj)) => annotation_values(&obj, annotations, &what),
                Ok(None) => Observation::Error(format!("{what} does not exist")),
                Err(e) => Observation::Error(format!("reading {what}: {}", crate::describe(&e))),
            },
            KubernetesFunction::Patch => {
                // A merge patch creates the annotations map when the object has none and
                // escapes keys and values as JSON (the original built a JSON patch by hand).
                let values: BTreeMap<&str, &str> = annotations
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let patch = serde_json::json!({"metadata": {"annotations": values}});
                match api
                    .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Observation::Value(serde_json::Value::Bool(true)),
                    Err(e) => {
                        Observation::Error(format!("patching {what}: {}", crate::describe(&e)))
                    }
                }
            }
        }
    }
}

/// The annotations a `get` reads: one as its text, several as an object by key; a missing one
/// is no data.
fn annotation_values(
    obj: &DynamicObject,
    annotations: &[(String, String)],
    what: &str,
) -> Observation {
    let present = obj.metadata.annotations.as_ref();
    let mut values = serde_json::Map::new();
    for (key, _) in annotations {
        match present.and_then(|a| a.get(key)) {
            Some(v) => {
                values.insert(key.clone(), serde_json::Value::String(v.clone()));
            }
            None => return Observation::NoData(format!("{what} has no annotation {key}")),
        }
    }
    match values.len() {
        1 => Observation::Value(
            values
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or_default(),
        ),
        _ => Observation::Value(serde_json::Value::Object(values)),
    }
}

impl Measure for Providers {
    fn measure<'a>(&'a self, call: &'a ProviderCall) -> BoxFuture<'a, Observation> {
        Box::pin(async move {
            match call {
                ProviderCall::Web {
                    method,
                    url,
                    headers,
                    body,
                    timeout,
                } => {
                    let timeout = timeout.unsigned_abs();
                    match self.http(*method, url, headers, body, timeout).await {
                        Ok((status, body)) => Observation::Http { status, body },
                        Err(e) => Observation::Error(e),
                    }
                }
                ProviderCall::Prometheus { address, query } => {
                    if let Err(why) = prometheus_address(address) {
                        return Observation::Error(why);
                    }
                    let url = prometheus_url(address, query);
                    match self
                        .http(WebMethod::GET, &url, &[], "", PROMETHEUS_TIMEOUT)
                        .await
                    {
                        Ok((status, body)) => prometheus_observation(status, &body),
                        Err(e) => Observation::Error(e),
                    }
                }
                ProviderCall::Kubernetes {
                    function,
                    target,
                    annotations,
                } => self.kubernetes(function, target, annotations).await,
            }
        })
    }
}

/// Why `url` cannot be requested: hyper's client needs a scheme and a host, and says only
/// `UserAbsoluteUriRequired` when one is missing.
fn absolute(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        (Some(scheme), Some(_)) if !scheme.is_empty() => Err(format!(
            "uses the scheme {scheme}: only http and https are supported"
        )),
        _ => Err("is not an absolute URL: it needs http:// or https:// and a host".into()),
    }
}

/// A Prometheus address the provider can query, or what to write instead.
fn prometheus_address(address: &str) -> Result<(), String> {
    const EXAMPLE: &str = "set provider.prometheus.address to a URL such as http://prometheus:9090";
    if address.trim().is_empty() {
        return Err(format!("the Prometheus address is empty: {EXAMPLE}"));
    }
    absolute(address).map_err(|why| {
        let address = gamedeploy_core::hookrun::redact_url(address);
        format!("the Prometheus address {address} {why}: {EXAMPLE}")
    })
}

/// `{address}/api/v1/query?query=...`, the query form-encoded.
pub fn prometheus_url(address: &str, query: &str) -> String {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    format!("{}/api/v1/query?{encoded}", address.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
