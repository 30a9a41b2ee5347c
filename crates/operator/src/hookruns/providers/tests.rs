use super::*;

#[test]
fn a_prometheus_query_is_form_encoded_after_the_address() {
    assert_eq!(
        prometheus_url("http://prom:9090/", "sum(rate(x{a=\"b\"}[1m])) > 0"),
        "http://prom:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29+%3E+0"
    );
}

fn kubernetes(kind: &str, namespace: &str, annotation: &str) -> ProviderCall {
    ProviderCall::Kubernetes {
        function: KubernetesFunction::Get,
        target: ObjectTarget {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: "x".into(),
        },
        annotations: vec![(annotation.into(), String::new())],
    }
}

#[test]
fn a_kubernetes_call_stays_in_the_runs_namespace_and_off_secrets() {
    let own = kubernetes("Pod", "tenant-a", "example.com/drained");
    assert_eq!(confine(&own, "tenant-a"), Ok(Cow::Borrowed(&own)));
    assert_eq!(
        confine(&kubernetes("Pod", "", "example.com/drained"), "tenant-a")
            .unwrap()
            .into_owned(),
        own,
        "no namespace is the run's own"
    );
    let other = kubernetes("Pod", "tenant-b", "example.com/drained");
    let other = confine(&other, "tenant-a");
    assert_eq!(
        other.unwrap_err().to_string(),
        "the kubernetes provider reaches only objects in the HookRun's own namespace tenant-a, not tenant-b (the PodNamespace argument): a hook cannot read or patch another namespace's objects"
    );
    for kind in ["Secret", "secret", "SECRET"] {
        assert_eq!(
            confine(&kubernetes(kind, "tenant-a", "a"), "tenant-a"),
            Err(OutOfReach::Secret)
        );
    }
    assert_eq!(
        confine(
            &kubernetes("ConfigMap", "tenant-a", LAST_APPLIED),
            "tenant-a"
        ),
        Err(OutOfReach::LastApplied)
    );
    let web = ProviderCall::Prometheus {
        address: "http://p".into(),
        query: "up".into(),
    };
    assert_eq!(confine(&web, "tenant-a"), Ok(Cow::Borrowed(&web)));
}

#[test]
fn an_empty_or_relative_prometheus_address_says_what_to_write() {
    assert_eq!(
        prometheus_address("").unwrap_err(),
        "the Prometheus address is empty: set provider.prometheus.address to a URL such as http://prometheus:9090"
    );
    assert_eq!(
        prometheus_address("prometheus:9090").unwrap_err(),
        "the Prometheus address prometheus:9090 is not an absolute URL: it needs http:// or https:// and a host: set provider.prometheus.address to a URL such as http://prometheus:9090"
    );
    assert_eq!(
        prometheus_address("/api").unwrap_err(),
        "the Prometheus address /api is not an absolute URL: it needs http:// or https:// and a host: set provider.prometheus.address to a URL such as http://prometheus:9090"
    );
    assert_eq!(
        prometheus_address("ftp://p/").unwrap_err(),
        "the Prometheus address ftp://p/ uses the scheme ftp: only http and https are supported: set provider.prometheus.address to a URL such as http://prometheus:9090"
    );
    assert!(prometheus_address("http://prometheus:9090").is_ok());
    assert!(prometheus_address("https://10.0.0.1/prom/").is_ok());
}

#[tokio::test]
async fn an_empty_prometheus_address_is_explained_before_any_request() {
    let clock: gamedeploy_clock::SharedClock = std::sync::Arc::new(gamedeploy_clock::SystemClock);
    let providers = Providers::new(embedded_apiserver::ApiServer::new(clock).client());
    let call = ProviderCall::Prometheus {
        address: String::new(),
        query: "up".into(),
    };
    let Observation::Error(e) = providers.measure(&call).await else {
        panic!("an empty address is an error");
    };
    assert!(e.starts_with("the Prometheus address is empty"), "{e}");
    let web = ProviderCall::Web {
        method: WebMethod::GET,
        url: "/ready".into(),
        body: String::new(),
        headers: vec![],
        timeout: jiff::SignedDuration::from_secs(1),
    };
    let Observation::Error(e) = providers.measure(&web).await else {
        panic!("a relative URL is an error");
    };
    assert_eq!(
        e,
        "the URL /ready is not an absolute URL: it needs http:// or https:// and a host"
    );
}

/// A failed request's message lands in HookRun status: a URL's credentials never do.
#[tokio::test]
async fn failed_requests_never_show_url_credentials() {
    let clock: gamedeploy_clock::SharedClock = std::sync::Arc::new(gamedeploy_clock::SystemClock);
    let providers = Providers::new(embedded_apiserver::ApiServer::new(clock).client());
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    for (url, address) in [
        ("http://ops:hunter2@127.0.0.1:1/ready", None),
        ("", Some("ftp://ops:hunter2@prom/")),
    ] {
        let call = match address {
            None => ProviderCall::Web {
                method: WebMethod::GET,
                url: url.into(),
                body: String::new(),
                headers: vec![],
                timeout: jiff::SignedDuration::from_secs(5),
            },
            Some(a) => ProviderCall::Prometheus {
                address: a.into(),
                query: "up".into(),
            },
        };
        let Observation::Error(e) = providers.measure(&call).await else {
            panic!("nothing answers there");
        };
        assert!(!e.contains("hunter2") && e.contains("***@"), "{e}");
    }
}

#[test]
fn annotations_read_as_text_or_an_object_and_a_missing_one_is_no_data() {
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"a": "1", "b": "two"}}
    }))
    .unwrap();
    let keys = |ks: &[&str]| -> Vec<(String, String)> {
        ks.iter().map(|k| (k.to_string(), String::new())).collect()
    };
    assert_eq!(
        annotation_values(&obj, &keys(&["b"]), "pod default/p"),
        Observation::Value("two".into())
    );
    assert_eq!(
        annotation_values(&obj, &keys(&["a", "b"]), "pod default/p"),
        Observation::Value(serde_json::json!({"a": "1", "b": "two"}))
    );
    assert_eq!(
        annotation_values(&obj, &keys(&["a", "c"]), "pod default/p"),
        Observation::NoData("pod default/p has no annotation c".into())
    );
}
