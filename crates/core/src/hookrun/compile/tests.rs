use super::*;
use serde_json::json;

fn template(metrics: serde_json::Value) -> HookTemplateSpec {
    serde_json::from_value(json!({"metrics": metrics})).unwrap()
}

fn web(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut m = json!({"name": name, "provider": {"web": {"url": "http://{{ args.PodIP }}/x"}}});
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    m
}

#[test]
fn a_good_template_passes_without_argument_values() {
    let t = template(json!([web(
        "drain",
        json!({"successCondition": "result.players == 0", "interval": "10s"})
    )]));
    assert_eq!(check_template(&t), Ok(()));
}

#[test]
fn a_broken_expression_names_the_metric_and_the_expression() {
    let t = template(json!([web(
        "drain",
        json!({"successCondition": "result.players =="})
    )]));
    let err = check_template(&t).unwrap_err();
    let [
        CompileError::Condition {
            metric,
            field,
            expression,
            ..
        },
    ] = err.0.as_slice()
    else {
        panic!("{err:?}")
    };
    assert_eq!((metric.as_str(), *field), ("drain", "successCondition"));
    assert_eq!(expression, "result.players ==");
    assert!(
        err.to_string()
            .starts_with("metric drain: successCondition `result.players ==` is not valid CEL: "),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let t = template(json!([
        web("a", json!({"interval": "ten seconds", "failureCondition": "(("})),
        {"name": "a", "failureCondition": "statusCode == 500",
         "provider": {"prometheus": {"address": "http://p", "query": "{{ PodName }}"}}},
        {"name": "b", "provider": {"web": {"url": "http://x", "jsonPath": "{$.a"}}},
        {"name": "c", "provider": {}},
    ]));
    let err = check_template(&t).unwrap_err();
    assert_eq!(err.0.len(), 7, "{err}");
    assert!(matches!(err.0[0], CompileError::Condition { .. }), "{err}");
    assert!(matches!(err.0[1], CompileError::Duration { .. }));
    assert!(matches!(err.0[2], CompileError::DuplicateMetric { .. }));
    assert!(matches!(
        err.0[3],
        CompileError::StatusCodeWithoutWeb { .. }
    ));
    assert!(matches!(err.0[4], CompileError::Placeholder { .. }));
    assert!(matches!(err.0[5], CompileError::JsonPath { .. }));
    assert!(matches!(err.0[6], CompileError::Providers { .. }));
    assert_eq!(
        err.0[4].to_string(),
        "metric a: {{ PodName }} is not an argument placeholder: write {{ args.NAME }}"
    );
}

#[test]
fn a_run_needs_its_argument_values() {
    let spec: HookRunSpec = serde_json::from_value(json!({
        "metrics": [web("drain", json!({}))],
        "args": [{"name": "PodIP"}],
    }))
    .unwrap();
    let err = CompiledRun::compile(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric drain uses argument PodIP, but the run has no value for it: give it a value in spec.args"
    );
    let spec: HookRunSpec = serde_json::from_value(json!({
        "metrics": [web("drain", json!({"interval": "1m", "initialDelay": "5s"}))],
        "args": [{"name": "PodIP", "value": "10.0.0.5"}],
        "policy": "Ordered",
    }))
    .unwrap();
    let run = CompiledRun::compile(&spec).unwrap();
    assert!(run.ordered);
    let m = &run.metrics[0];
    assert_eq!(m.call.describe(), "GET http://10.0.0.5/x");
    assert_eq!(m.interval, Some(SignedDuration::from_mins(1)));
    assert_eq!(m.initial_delay, SignedDuration::from_secs(5));
    assert_eq!(m.no_data, HookOutcome::Inconclusive);
}

#[test]
fn a_kubernetes_get_with_values_and_no_conditions_compares_for_equality() {
    use super::super::condition::Evaluation;
    let spec = |conditions: serde_json::Value| -> HookRunSpec {
        let mut metric = json!({"name": "drained", "provider": {"kubernetes": {
            "function": "get",
            "fields": [{"path": "metadata.annotations.drained", "value": "y\"es"}]}}});
        metric
            .as_object_mut()
            .unwrap()
            .extend(conditions.as_object().unwrap().clone());
        serde_json::from_value(json!({"metrics": [metric], "args": [
            {"name": "PodName", "value": "p"}, {"name": "PodNamespace", "value": "default"}]}))
        .unwrap()
    };
    let run = CompiledRun::compile(&spec(json!({}))).unwrap();
    let c = &run.metrics[0].conditions;
    assert_eq!(c.success.as_ref().unwrap().text, r#"result == "y\"es""#);
    let phase = |v: &str| match c.evaluate(cel::Value::String(v.to_string().into()), None) {
        Evaluation::Decided { phase, .. } => phase,
        other => panic!("{other:?}"),
    };
    assert_eq!(phase("y\"es"), crate::api::HookPhase::Successful);
    assert_eq!(phase("no"), crate::api::HookPhase::Failed);
    // A condition of the user's own wins.
    let own = CompiledRun::compile(&spec(json!({"successCondition": "result != \"\""}))).unwrap();
    assert_eq!(
        own.metrics[0].conditions.success.as_ref().unwrap().text,
        r#"result != """#
    );
}

#[test]
fn durations_longer_than_720h_are_refused() {
    let t = template(json!([web(
        "m",
        json!({"interval": "721h", "initialDelay": "3000000000000s", "count": 2})
    )]));
    let err = check_template(&t).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    assert_eq!(
        err.0[0].to_string(),
        "metric m: interval 721h is longer than the 720h allowed: measure at least every \
         720h and wait at most 720h before the first measurement"
    );
    let ok = template(json!([web(
        "m",
        json!({"interval": "720h", "initialDelay": "30m"})
    )]));
    assert_eq!(check_template(&ok), Ok(()));
}

/// The conditions that aborted the process (a stack overflow in the parser) and one that
/// pinned a worker (three nested comprehensions over a 3,000-element answer) are refused
/// with a message when the template is checked.
#[test]
fn hostile_conditions_are_refused_with_a_message() {
    let cases = [
        (
            format!("result{}", ".a".repeat(3000)),
            "is too long: it is 6006 bytes long",
        ),
        (format!("result.n{}", " + 1".repeat(3000)), "is too long"),
        (format!("result.list{}", "[0]".repeat(3000)), "is too long"),
        (
            format!("result{}", ".a".repeat(1000)),
            "nests 1000 deep, more than the 120",
        ),
        (
            "result.all(x, result.all(y, result.all(z, x + y + z >= 0)))".to_string(),
            "estimated rule cost exceeds budget",
        ),
    ];
    for (condition, message) in cases {
        let t = template(json!([web("m", json!({"successCondition": condition}))]));
        let err = check_template(&t).unwrap_err().to_string();
        assert!(err.starts_with("metric m: successCondition"), "{err}");
        assert!(err.contains(message), "{message}: {err}");
        assert!(
            err.len() < 600,
            "the message does not echo the whole text: {err}"
        );
    }
    let t = template(json!([web(
        "m",
        json!({"successCondition": "result.all(x, x > 0)"})
    )]));
    assert_eq!(check_template(&t), Ok(()));
}

#[test]
fn an_argument_given_twice_is_refused() {
    let spec: HookRunSpec = serde_json::from_value(json!({
        "metrics": [web("drain", json!({}))],
        "args": [{"name": "PodIP", "value": "10.0.0.5"}, {"name": "PodIP", "value": "10.0.0.6"}],
    }))
    .unwrap();
    assert_eq!(
        CompiledRun::compile(&spec).unwrap_err().to_string(),
        "argument PodIP is given more than once in spec.args: give each argument once"
    );
    let t: HookTemplateSpec = serde_json::from_value(json!({
        "metrics": [web("drain", json!({}))],
        "args": [{"name": "PodIP"}, {"name": "PodIP", "value": "x"}],
    }))
    .unwrap();
    assert_eq!(
        check_template(&t).unwrap_err().to_string(),
        "argument PodIP is given more than once in spec.args: give each argument once"
    );
}
