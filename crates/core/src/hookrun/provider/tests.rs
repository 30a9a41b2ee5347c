use super::*;
use crate::api::{KubernetesField, KubernetesMetric, PrometheusMetric, WebMetric, WebMetricHeader};
use std::collections::BTreeMap;

fn args(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn web_urls_and_headers_are_filled() {
    let provider = MetricProvider {
        web: Some(WebMetric {
            url: "http://{{args.PodIP}}:8080/drain?pod={{ args.PodName }}".into(),
            headers: vec![WebMetricHeader {
                key: "X-Pod".into(),
                value: "{{ args.PodName }}".into(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let call = ProviderCall::resolve(
        &provider,
        &args(&[("PodIP", "10.0.0.5"), ("PodName", "gd-a")]),
    )
    .unwrap();
    assert_eq!(
        call,
        ProviderCall::Web {
            method: WebMethod::GET,
            url: "http://10.0.0.5:8080/drain?pod=gd-a".into(),
            body: String::new(),
            headers: vec![("X-Pod".into(), "gd-a".into())],
            timeout: SignedDuration::from_secs(10),
        }
    );
    assert_eq!(call.describe(), "GET http://10.0.0.5:8080/drain?pod=gd-a");
}

fn web(url: &str, body: &str, header: &str) -> MetricProvider {
    MetricProvider {
        web: Some(WebMetric {
            url: url.into(),
            method: Some(WebMethod::POST),
            body: body.into(),
            headers: vec![WebMetricHeader {
                key: "X-Pod".into(),
                value: header.into(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn resolved(provider: &MetricProvider, value: &str) -> Result<ProviderCall, ResolveError> {
    ProviderCall::resolve(provider, &args(&[("X", value)]))
}

/// An argument injected a JSON field into a POST body, a query parameter into a URL and a
/// header into a request; each is escaped for where it stands now, or refused.
#[test]
fn arguments_cannot_inject_fields_parameters_or_headers() {
    let hostile = r#"a", "admin": true, "x": "b&admin=1#?/@evil"#;
    let p = web(
        "http://game/drain/{{ args.X }}?pod={{args.X}}",
        r#"{"pod": "{{ args.X }}", "n": {{ args.X }}}"#,
        "pod-{{ args.X }}",
    );
    let ProviderCall::Web { url, body, .. } = resolved(&p, hostile).unwrap() else {
        panic!()
    };
    assert_eq!(url.matches('?').count(), 1, "{url}");
    assert!(!url.contains(['&', '#', '@', '"', ' ']), "{url}");
    assert!(
        url.starts_with("http://game/drain/a%22%2C%20%22admin%22"),
        "{url}"
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["pod"], hostile, "the value stays one string");
    assert_eq!(
        body["n"], hostile,
        "outside quotes a non-number becomes a string"
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "no field added: {body}");
    let ProviderCall::Web { body, .. } = resolved(&p, "42").unwrap() else {
        panic!()
    };
    assert_eq!(body, r#"{"pod": "42", "n": 42}"#, "numbers stay numbers");
    // A form body is percent-encoded; a header refuses line breaks.
    let form = web("http://game", "pod={{args.X}}&drain=1", "v");
    let ProviderCall::Web { body, .. } = resolved(&form, "a&admin=1").unwrap() else {
        panic!()
    };
    assert_eq!(body, "pod=a%26admin%3D1&drain=1");
    assert!(matches!(
        resolved(&p, "a\r\nX-Admin: 1"),
        Err(ResolveError::Unsafe(arg, why)) if arg == "X" && why.contains("line break")
    ));
    // An IPv6 address or host:port still works in a URL.
    let ProviderCall::Web { url, .. } = resolved(&p, "fd00::1").unwrap() else {
        panic!()
    };
    assert!(url.starts_with("http://game/drain/fd00::1?"), "{url}");
}

#[test]
fn prometheus_arguments_stay_inside_their_string() {
    let p = |query: &str| MetricProvider {
        prometheus: Some(PrometheusMetric {
            address: "http://prom:9090".into(),
            query: query.into(),
        }),
        ..Default::default()
    };
    let quoted = p(r#"up{pod="{{ args.X }}"} == 1"#);
    let ProviderCall::Prometheus { query, .. } =
        resolved(&quoted, r#"a"} or vector(1) or up{x="\"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(query, r#"up{pod="a\"} or vector(1) or up{x=\"\\"} == 1"#);
    let single = p("up{pod='{{ args.X }}'}");
    let ProviderCall::Prometheus { query, .. } = resolved(&single, "it's").unwrap() else {
        panic!()
    };
    assert_eq!(query, r"up{pod='it\'s'}");
    let bare = p("rate(x[{{ args.X }}])");
    assert!(resolved(&bare, "5m").is_ok());
    assert!(matches!(
        resolved(&bare, "5m]) or vector(1"),
        Err(ResolveError::Unsafe(..))
    ));
}

#[test]
fn credentials_in_a_url_are_not_recorded() {
    let p = web("https://user:s3cret@game:8443/drain?x=1", "", "");
    let call = ProviderCall::resolve(&p, &args(&[])).unwrap();
    assert_eq!(call.describe(), "POST https://***@game:8443/drain?x=1");
    assert_eq!(redact_url("http://game/a@b"), "http://game/a@b");
    assert_eq!(redact_url("http://token@prom"), "http://***@prom");
    let prom = MetricProvider {
        prometheus: Some(PrometheusMetric {
            address: "http://u:p@prom:9090".into(),
            query: "up".into(),
        }),
        ..Default::default()
    };
    let call = ProviderCall::resolve(&prom, &args(&[])).unwrap();
    assert_eq!(call.describe(), "query up at http://***@prom:9090");
}

#[test]
fn a_missing_argument_or_a_broken_placeholder_is_named() {
    let provider = |query: &str| MetricProvider {
        prometheus: Some(PrometheusMetric {
            address: "http://prom:9090".into(),
            query: query.into(),
        }),
        ..Default::default()
    };
    let none = args(&[]);
    assert_eq!(
        ProviderCall::resolve(&provider("up{pod=\"{{ args.PodName }}\"}"), &none),
        Err(ResolveError::MissingArgument("PodName".into()))
    );
    assert_eq!(
        ProviderCall::resolve(&provider("{{ PodName }}"), &none),
        Err(ResolveError::Placeholder("{{ PodName }}".into()))
    );
    assert_eq!(
        ProviderCall::resolve(&provider("x {{ args.PodName"), &none),
        Err(ResolveError::Placeholder("{{ args.PodName".into()))
    );
    assert_eq!(
        ProviderCall::resolve(&MetricProvider::default(), &none),
        Err(ResolveError::Providers)
    );
}

#[test]
fn prometheus_answers() {
    let vector = |values: &str| {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{values}]}}}}"#)
    };
    let sample = |v: &str| format!(r#"{{"metric":{{"pod":"a"}},"value":[1700000000.5,"{v}"]}}"#);
    assert_eq!(
        prometheus_observation(200, &vector(&sample("0.97"))),
        Observation::Numbers(vec![0.97])
    );
    let two = format!("{},{}", sample("1e6"), sample("+Inf"));
    assert_eq!(
        prometheus_observation(200, &vector(&two)),
        Observation::Numbers(vec![1e6, f64::INFINITY])
    );
    let Observation::Numbers(nan) = prometheus_observation(200, &vector(&sample("NaN"))) else {
        panic!("NaN is data")
    };
    assert!(nan[0].is_nan());
    assert_eq!(
        prometheus_observation(200, &vector("")),
        Observation::NoData("the query returned no samples".into())
    );
    assert_eq!(
        prometheus_observation(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#
        ),
        Observation::Numbers(vec![3.0])
    );
    assert_eq!(
        prometheus_observation(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#
        ),
        Observation::Error("Prometheus refused the query: parse error at char 4".into())
    );
    assert!(matches!(
        prometheus_observation(502, "<html>bad gateway</html>"),
        Observation::Error(m) if m.starts_with("HTTP 502: not a Prometheus query answer")
    ));
    assert!(matches!(
        prometheus_observation(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
        ),
        Observation::Error(m) if m.contains("instant query")
    ));
}

#[test]
fn kubernetes_targets_the_pod_unless_told_otherwise() {
    let provider = MetricProvider {
        kubernetes: Some(KubernetesMetric {
            fields: vec![KubernetesField {
                path: "metadata.annotations.example.com/drained".into(),
                value: "true".into(),
            }],
            function: Some(KubernetesFunction::Patch),
        }),
        ..Default::default()
    };
    let call = ProviderCall::resolve(
        &provider,
        &args(&[("PodName", "gd-a"), ("PodNamespace", "games")]),
    )
    .unwrap();
    assert_eq!(
        call.describe(),
        "patch pod games/gd-a annotations example.com/drained"
    );
    let ProviderCall::Kubernetes { target, .. } = &call else {
        panic!("{call:?}")
    };
    assert_eq!(
        (target.version.as_str(), target.kind.as_str()),
        ("v1", "Pod")
    );
    assert_eq!(
        ProviderCall::resolve(&provider, &args(&[("PodName", "gd-a")])),
        Err(ResolveError::MissingArgument("PodNamespace".into()))
    );
    let mut labels = provider.clone();
    labels.kubernetes.as_mut().unwrap().fields[0].path = "metadata.labels.x".into();
    assert_eq!(
        ProviderCall::resolve(
            &labels,
            &args(&[("PodName", "gd-a"), ("PodNamespace", "games")])
        ),
        Err(ResolveError::FieldPath("metadata.labels.x".into()))
    );
}
