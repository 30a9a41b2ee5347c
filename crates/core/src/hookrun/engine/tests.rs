//! One test per row of the semantics (README, "Hook semantics"), each run through `decide` and
//! `fold_measurement` on a virtual clock, as the controller will.

use super::*;
use crate::api::HookRunSpec;
use serde_json::{Value, json};

const T0: &str = "2026-01-01T00:00:00Z";

fn at(secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(secs)
}

/// A run of `metrics`, each a web metric on `http://game/NAME` unless it says otherwise.
fn run_of(metrics: Value, extra: Value) -> HookRun {
    let metrics: Vec<Value> = metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            let name = m["name"].as_str().unwrap().to_string();
            let o = m.as_object_mut().unwrap();
            o.entry("provider")
                .or_insert(json!({"web": {"url": format!("http://game/{name}")}}));
            m
        })
        .collect();
    let mut spec = json!({"metrics": metrics});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let spec: HookRunSpec = serde_json::from_value(spec).unwrap();
    HookRun::new("r", spec)
}

/// A run under test: the HookRun as the API holds it, and its compiled form.
struct Sim {
    run: HookRun,
    compiled: CompiledRun,
    timeout: Option<RunTimeout>,
}

impl Sim {
    fn new(metrics: Value) -> Sim {
        Sim::with(metrics, json!({}))
    }

    fn with(metrics: Value, extra: Value) -> Sim {
        let run = run_of(metrics, extra);
        let compiled = CompiledRun::compile(&run.spec).unwrap();
        Sim {
            run,
            compiled,
            timeout: None,
        }
    }

    /// `decide` at `secs`, with its status written back.
    fn decide(&mut self, secs: i64) -> HookRunStep {
        let d = decide(&self.run, &self.compiled, self.timeout.as_ref(), at(secs));
        self.run.status = Some(d.status.clone());
        d
    }

    /// A measurement of `metric` that finished at `secs`, recorded and decided on.
    fn measured(&mut self, metric: &str, secs: i64, observation: Observation) -> HookRunStep {
        let status = fold_measurement(
            &self.run,
            &self.compiled,
            Finished {
                metric: metric.into(),
                started_at: at(secs),
                finished_at: at(secs),
                observation,
            },
        );
        self.run.status = Some(status);
        self.decide(secs)
    }

    fn phase(&self) -> HookPhase {
        self.run.status.as_ref().unwrap().phase.unwrap()
    }

    fn metric(&self, name: &str) -> &MetricResult {
        let status = self.run.status.as_ref().unwrap();
        status
            .metric_results
            .iter()
            .find(|r| r.name == name)
            .unwrap()
    }
}

fn names(d: &HookRunStep) -> Vec<&str> {
    d.measure.iter().map(|m| m.metric.as_str()).collect()
}

fn value(v: Value) -> Observation {
    Observation::Value(v)
}

fn error() -> Observation {
    Observation::Error("connection refused".into())
}

fn condition<'a>(status: &'a HookRunStatus, type_: &str) -> &'a Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn with_no_count_and_no_interval_a_metric_is_measured_once() {
    let mut s = Sim::new(json!([{"name": "ok"}]));
    let d = s.decide(0);
    assert_eq!(names(&d), ["ok"]);
    assert_eq!(d.measure[0].call.describe(), "GET http://game/ok");
    assert_eq!(s.phase(), HookPhase::Running);
    let d = s.measured("ok", 1, value(json!("anything")));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(s.metric("ok").message, "measured once, within the limits");
    assert!(d.measure.is_empty());
    assert_eq!(d.requeue_at, None);
    assert_eq!(d.status.message, "metric ok is Successful");
}

/// The original checked `failureLimit` only when above 0 and then ended the metric
/// Successful on `count`: one failed drain check let the update through.
#[test]
fn with_defaults_one_failed_measurement_fails_the_run() {
    let mut s = Sim::new(
        json!([{"name": "drain", "successCondition": "result.players == 0",
        "interval": "10s", "count": 3}]),
    );
    s.decide(0);
    s.measured("drain", 0, value(json!({"players": 3})));
    assert_eq!(s.phase(), HookPhase::Failed);
    assert_eq!(
        s.metric("drain").message,
        "1 Failed measurement, more than failureLimit 0"
    );
    assert_eq!(
        s.run.status.as_ref().unwrap().message,
        "metric drain is Failed: 1 Failed measurement, more than failureLimit 0"
    );
}

#[test]
fn failure_limit_tolerates_that_many_failures_and_minus_one_any() {
    let metric = |limit: i32| {
        json!([{"name": "m", "successCondition": "result == 0", "interval": "10s",
            "count": 3, "failureLimit": limit}])
    };
    let mut s = Sim::new(metric(1));
    s.decide(0);
    s.measured("m", 0, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Running);
    s.measured("m", 10, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Failed);
    assert_eq!(
        s.metric("m").message,
        "2 Failed measurements, more than failureLimit 1"
    );

    let mut s = Sim::new(metric(-1));
    s.decide(0);
    for t in [0, 10, 20] {
        s.measured("m", t, value(json!(1)));
    }
    assert_eq!(s.phase(), HookPhase::Successful, "count reached, no limit");
}

#[test]
fn successful_limit_ends_a_metric_early_or_fails_it_at_count() {
    let metric = json!([{"name": "m", "successCondition": "result == 0", "interval": "10s",
        "count": 3, "successfulLimit": 2, "failureLimit": -1}]);
    let mut s = Sim::new(metric.clone());
    s.decide(0);
    s.measured("m", 0, value(json!(0)));
    assert_eq!(s.phase(), HookPhase::Running);
    s.measured("m", 10, value(json!(0)));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(
        s.metric("m").message,
        "2 Successful measurements reached successfulLimit 2"
    );

    let mut s = Sim::new(metric);
    s.decide(0);
    for (t, v) in [(0, 0), (10, 1), (20, 1)] {
        s.measured("m", t, value(json!(v)));
    }
    assert_eq!(s.phase(), HookPhase::Failed);
    assert_eq!(
        s.metric("m").message,
        "count 3 reached with 1 of the 2 Successful measurements successfulLimit asks for"
    );
}

#[test]
fn consecutive_successful_limit_needs_an_unbroken_run() {
    let metric = json!([{"name": "m", "successCondition": "result == 0", "interval": "10s",
        "count": 4, "consecutiveSuccessfulLimit": 2, "failureLimit": -1}]);
    let mut s = Sim::new(metric.clone());
    s.decide(0);
    for (t, v) in [(0, 0), (10, 1), (20, 0)] {
        s.measured("m", t, value(json!(v)));
        assert_eq!(s.phase(), HookPhase::Running, "at {t}");
    }
    s.measured("m", 30, value(json!(0)));
    assert_eq!(s.phase(), HookPhase::Successful);

    let mut s = Sim::new(metric);
    s.decide(0);
    for (t, v) in [(0, 0), (10, 1), (20, 0), (30, 1)] {
        s.measured("m", t, value(json!(v)));
    }
    assert_eq!(s.phase(), HookPhase::Failed);
    assert!(
        s.metric("m").message.contains("consecutiveSuccessfulLimit"),
        "{}",
        s.metric("m").message
    );
}

#[test]
fn inconclusive_limit() {
    let metric = |limit: i32| {
        json!([{"name": "m", "successCondition": "result < 3", "failureCondition": "result > 5",
            "interval": "10s", "count": 3, "inconclusiveLimit": limit}])
    };
    let mut s = Sim::new(metric(0));
    s.decide(0);
    s.measured("m", 0, value(json!(4)));
    assert_eq!(s.phase(), HookPhase::Inconclusive);
    let m = &s.metric("m").measurements[0];
    assert_eq!(
        m.condition,
        "neither successCondition `result < 3` nor failureCondition `result > 5` is true"
    );

    let mut s = Sim::new(metric(1));
    s.decide(0);
    s.measured("m", 0, value(json!(4)));
    assert_eq!(s.phase(), HookPhase::Running);
    s.measured("m", 10, value(json!(4)));
    assert_eq!(s.phase(), HookPhase::Inconclusive);
    assert_eq!(
        s.metric("m").message,
        "2 Inconclusive measurements, more than inconclusiveLimit 1"
    );
}

/// Errors do not count towards `count`; the fifth consecutive one (default limit 4) is Error;
/// a good measurement resets the streak.
#[test]
fn consecutive_errors() {
    let mut s = Sim::new(json!([{"name": "m"}]));
    s.decide(0);
    for t in 0..4 {
        s.measured("m", t * 100, error());
        assert_eq!(s.phase(), HookPhase::Running);
    }
    assert_eq!(s.metric("m").count, 0);
    s.measured("m", 400, error());
    assert_eq!(s.phase(), HookPhase::Error);
    assert_eq!(
        s.metric("m").message,
        "5 consecutive errors, more than consecutiveErrorLimit 4"
    );

    let mut s = Sim::new(json!([{"name": "m", "interval": "10s", "count": 3,
        "consecutiveErrorLimit": 1}]));
    s.decide(0);
    for (t, o) in [
        (0, error()),
        (1, value(json!(1))),
        (11, error()),
        (12, value(json!(1))),
    ] {
        s.measured("m", t, o);
        assert_eq!(s.phase(), HookPhase::Running, "at {t}");
    }
    s.measured("m", 22, error());
    s.measured("m", 23, error());
    assert_eq!(s.phase(), HookPhase::Error);
}

/// The original retried an error after the full interval (10 s without one); here 1 s, 2 s,
/// 4 s, ... capped at the interval, at exact instants.
#[test]
fn errors_retry_sooner_than_interval_with_back_off() {
    let mut s = Sim::new(json!([{"name": "m", "interval": "5s", "consecutiveErrorLimit": -1}]));
    assert_eq!(names(&s.decide(0)), ["m"]);
    let mut t = 0;
    for wait in [1, 2, 4, 5, 5] {
        let d = s.measured("m", t, error());
        assert!(d.measure.is_empty());
        assert_eq!(d.requeue_at, Some(at(t + wait)), "after error at {t}");
        let last = s.metric("m").measurements.last().unwrap();
        assert_eq!(last.resume_at, Some(Time(at(t + wait))));
        assert!(s.decide(t + wait - 1).measure.is_empty());
        assert_eq!(names(&s.decide(t + wait)), ["m"]);
        t += wait;
    }
    let d = s.measured("m", t, value(json!(1)));
    assert_eq!(d.requeue_at, Some(at(t + 5)), "back to the interval");
    assert_eq!(error_retry(1, None), SignedDuration::from_secs(1));
    assert_eq!(error_retry(30, None), DEFAULT_ERROR_RETRY_CAP);
}

#[test]
fn initial_delay_then_interval_at_exact_instants() {
    let mut s = Sim::new(
        json!([{"name": "m", "initialDelay": "30s", "interval": "1m",
        "count": 2}]),
    );
    let d = s.decide(0);
    assert!(d.measure.is_empty());
    assert_eq!(s.phase(), HookPhase::Pending);
    assert_eq!(d.requeue_at, Some(at(30)));
    assert!(s.decide(29).measure.is_empty());
    assert_eq!(names(&s.decide(30)), ["m"]);
    let d = s.measured("m", 32, value(json!(1)));
    assert_eq!(
        d.requeue_at,
        Some(at(92)),
        "interval after the last finished"
    );
    assert!(s.decide(91).measure.is_empty());
    assert_eq!(names(&s.decide(92)), ["m"]);
    s.measured("m", 93, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(
        s.metric("m").message,
        "all 2 measurements taken, within the limits"
    );
}

#[test]
fn an_interval_without_count_measures_until_a_limit() {
    let mut s = Sim::new(
        json!([{"name": "drain", "successCondition": "result.players == 0",
        "interval": "10s", "successfulLimit": 1, "failureLimit": -1}]),
    );
    s.decide(0);
    for t in (0..100).step_by(10) {
        s.measured("drain", t, value(json!({"players": 5})));
        assert_eq!(s.phase(), HookPhase::Running);
    }
    s.measured("drain", 100, value(json!({"players": 0})));
    assert_eq!(s.phase(), HookPhase::Successful);
}

#[test]
fn parallel_metrics_measure_together_and_one_failure_ends_the_run() {
    let mut s = Sim::new(json!([
        {"name": "a", "successCondition": "result == 0", "interval": "10s", "count": 3},
        {"name": "b", "interval": "10s", "count": 3},
    ]));
    assert_eq!(names(&s.decide(0)), ["a", "b"]);
    s.measured("b", 0, value(json!(1)));
    let d = s.measured("a", 1, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Failed);
    assert!(d.measure.is_empty() && d.requeue_at.is_none());
    assert_eq!(s.metric("b").phase, HookPhase::Terminated);
    assert_eq!(s.metric("b").message, "not needed: metric a is Failed");
}

#[test]
fn the_worst_metric_decides() {
    let mut s = Sim::new(json!([
        {"name": "a", "successCondition": "result < 3", "failureCondition": "result > 5"},
        {"name": "b", "successCondition": "result == 0"},
    ]));
    s.decide(0);
    let status = fold_measurement(
        &s.run,
        &s.compiled,
        Finished {
            metric: "a".into(),
            started_at: at(0),
            finished_at: at(0),
            observation: value(json!(4)),
        },
    );
    s.run.status = Some(status);
    s.measured("b", 0, value(json!(1)));
    assert_eq!(
        s.phase(),
        HookPhase::Failed,
        "Failed is worse than Inconclusive"
    );
}

/// The original's Ordered run whose first metric failed stayed Running; here it ends, and
/// the second metric, never measured, is Terminated (the original assessed it Successful).
#[test]
fn ordered_metrics_wait_for_the_previous_and_a_failure_ends_the_run() {
    let ordered = json!({"policy": "Ordered"});
    let mut s = Sim::with(
        json!([
            {"name": "first", "successCondition": "result == 0"},
            {"name": "second", "initialDelay": "5s"},
        ]),
        ordered.clone(),
    );
    let d = s.decide(0);
    assert_eq!(names(&d), ["first"]);
    assert_eq!(d.requeue_at, None, "second is not yet eligible");
    let d = s.measured("first", 3, value(json!(0)));
    assert!(d.measure.is_empty());
    assert_eq!(
        d.requeue_at,
        Some(at(8)),
        "initialDelay from when first finished"
    );
    assert_eq!(names(&s.decide(8)), ["second"]);
    s.measured("second", 9, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Successful);

    let mut s = Sim::with(
        json!([
            {"name": "first", "successCondition": "result == 0"},
            {"name": "second"},
        ]),
        ordered,
    );
    s.decide(0);
    let d = s.measured("first", 1, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Failed);
    assert!(d.measure.is_empty() && d.requeue_at.is_none());
    assert_eq!(s.metric("second").phase, HookPhase::Terminated);
    assert!(s.metric("second").measurements.is_empty());
}

/// The original reported a terminated run Successful (Argo Rollouts too, issue #228).
#[test]
fn terminate_is_terminated_not_successful() {
    let mut s = Sim::new(json!([{"name": "m", "interval": "10s"}]));
    s.decide(0);
    s.measured("m", 0, value(json!(1)));
    s.run.spec.terminate = true;
    let d = s.decide(5);
    assert_eq!(s.phase(), HookPhase::Terminated);
    assert!(d.measure.is_empty() && d.requeue_at.is_none());
    assert_eq!(s.metric("m").phase, HookPhase::Terminated);
    assert_eq!(s.metric("m").message, "stopped by spec.terminate");
    let ready = condition(&d.status, names::CONDITION_READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Terminated")
    );
    assert_eq!(
        condition(&d.status, names::CONDITION_COMPLETED).status,
        "True"
    );

    let mut s = Sim::new(json!([{"name": "m"}]));
    s.decide(0);
    s.measured("m", 0, value(json!(1)));
    s.run.spec.terminate = true;
    s.decide(5);
    assert_eq!(
        s.phase(),
        HookPhase::Successful,
        "terminate after the end changes nothing"
    );
}

#[test]
fn a_run_timeout_ends_with_the_declared_outcome() {
    for outcome in [
        HookOutcome::Failed,
        HookOutcome::Successful,
        HookOutcome::Inconclusive,
    ] {
        let mut s = Sim::new(
            json!([{"name": "drain", "successCondition": "result.players == 0",
            "interval": "1m", "failureLimit": -1, "successfulLimit": 1}]),
        );
        s.timeout = Some(RunTimeout {
            after: SignedDuration::from_secs(150),
            outcome,
        });
        s.decide(0);
        let d = s.measured("drain", 0, value(json!({"players": 2})));
        assert_eq!(d.requeue_at, Some(at(60)));
        s.decide(60);
        let d = s.measured("drain", 120, value(json!({"players": 1})));
        assert_eq!(
            d.requeue_at,
            Some(at(150)),
            "the deadline comes before the interval"
        );
        let d = s.decide(150);
        assert_eq!(s.phase(), HookPhase::from(outcome));
        assert!(d.measure.is_empty() && d.requeue_at.is_none());
        assert_eq!(
            d.status.message,
            format!(
                "timed out at 2026-01-01T00:02:30Z, 150s after it started; the declared outcome is {outcome}"
            )
        );
        assert_eq!(s.metric("drain").phase, HookPhase::Terminated);
        let late = fold_measurement(
            &s.run,
            &s.compiled,
            Finished {
                metric: "drain".into(),
                started_at: at(149),
                finished_at: at(151),
                observation: value(json!({"players": 0})),
            },
        );
        assert_eq!(
            &late,
            s.run.status.as_ref().unwrap(),
            "a late result is dropped"
        );
    }
}

#[test]
fn no_data_follows_the_metrics_policy() {
    let cases = [
        (None, HookPhase::Inconclusive),
        (Some("Successful"), HookPhase::Successful),
        (Some("Failed"), HookPhase::Failed),
        (Some("Inconclusive"), HookPhase::Inconclusive),
    ];
    for (policy, expected) in cases {
        let mut metric = json!({"name": "m", "successCondition": "result.players == 0"});
        if let Some(p) = policy {
            metric["noData"] = json!(p);
        }
        for observation in [
            Observation::NoData("the annotation drained is not set".into()),
            value(json!({"online": 1})),
            Observation::Numbers(vec![]),
        ] {
            let mut s = Sim::new(json!([metric.clone()]));
            s.decide(0);
            s.measured("m", 0, observation.clone());
            assert_eq!(s.phase(), expected, "{policy:?} {observation:?}");
            let m = &s.metric("m").measurements[0];
            assert!(m.message.starts_with("no data: "), "{}", m.message);
            assert!(
                m.message
                    .ends_with(&format!("noData makes this {expected}")),
                "{}",
                m.message
            );
        }
    }
}

#[test]
fn dry_run_metrics_are_measured_but_do_not_decide() {
    let mut s = Sim::new(json!([
        {"name": "gate", "interval": "10s", "count": 2},
        {"name": "probe", "successCondition": "result == 0", "dryRun": true, "interval": "10s"},
    ]));
    assert_eq!(names(&s.decide(0)), ["gate", "probe"]);
    s.measured("probe", 0, value(json!(1)));
    assert_eq!(s.metric("probe").phase, HookPhase::Failed);
    assert!(s.metric("probe").dry_run);
    assert_eq!(
        s.phase(),
        HookPhase::Running,
        "a dry-run failure does not end the run"
    );
    s.measured("gate", 0, value(json!(1)));
    s.decide(10);
    s.measured("gate", 10, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Successful);

    let mut s = Sim::new(json!([
        {"name": "gate", "interval": "10s", "count": 2},
        {"name": "probe", "dryRun": true, "interval": "10s"},
    ]));
    s.decide(0);
    s.measured("gate", 0, value(json!(1)));
    s.measured("probe", 0, value(json!(1)));
    s.measured("gate", 10, value(json!(1)));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(
        s.metric("probe").phase,
        HookPhase::Terminated,
        "never-ending dry run"
    );

    let mut s = Sim::new(json!([{"name": "probe", "dryRun": true,
        "successCondition": "result == 0"}]));
    s.decide(0);
    s.measured("probe", 0, value(json!(1)));
    assert_eq!(
        s.phase(),
        HookPhase::Successful,
        "only dry-run metrics: nothing decides"
    );
}

/// `kubectl describe hookrun` answers "why": the request, the value, the condition.
#[test]
fn each_measurement_explains_itself() {
    let mut s = Sim::with(
        json!([{"name": "drain", "successCondition": "result.players == 0",
            "provider": {"web": {"url": "http://{{ args.PodIP }}:8080/drain", "jsonPath": "{$.status}"}}}]),
        json!({"args": [{"name": "PodIP", "value": "10.0.0.5"}]}),
    );
    s.decide(0);
    s.measured(
        "drain",
        2,
        Observation::Http {
            status: 200,
            body: r#"{"status": {"players": 3}}"#.into(),
        },
    );
    let m = &s.metric("drain").measurements[0];
    assert_eq!(m.phase, HookPhase::Failed);
    assert_eq!(m.request, "GET http://10.0.0.5:8080/drain");
    assert_eq!(m.value, r#"{"players":3}"#);
    assert_eq!(
        m.condition,
        "successCondition `result.players == 0` is false"
    );
    assert_eq!(m.started_at, Some(Time(at(2))));
    assert_eq!(
        s.run.status.as_ref().unwrap().message,
        "metric drain is Failed: 1 Failed measurement, more than failureLimit 0"
    );
}

#[test]
fn web_answers() {
    let sim = |cond: &str, json_path: &str| {
        Sim::new(json!([{"name": "m", "successCondition": cond,
            "provider": {"web": {"url": "http://game/m", "jsonPath": json_path}}}]))
    };
    let http = |status: u16, body: &str| Observation::Http {
        status,
        body: body.into(),
    };

    let mut s = sim("result == \"ok\"", "");
    s.decide(0);
    s.measured("m", 0, http(503, "overloaded"));
    let m = &s.metric("m").measurements[0];
    assert_eq!(m.phase, HookPhase::Error, "non-2xx is a provider error");
    assert_eq!(m.value, "overloaded");
    assert!(m.message.starts_with("HTTP 503"), "{}", m.message);
    s.measured("m", 1, http(200, "ok\n"));
    assert_eq!(s.phase(), HookPhase::Successful);

    let mut s = sim("statusCode == 404", "");
    s.decide(0);
    s.measured("m", 0, http(404, "gone"));
    assert_eq!(
        s.phase(),
        HookPhase::Successful,
        "a condition reading statusCode sees 404"
    );

    let mut s = sim("asInt(result) >= 1000000", "{$.players}");
    s.decide(0);
    s.measured("m", 0, http(200, r#"{"players": 1000000}"#));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(s.metric("m").measurements[0].value, "1000000", "not 1e+06");

    let mut s = sim("result == 1", "$.a");
    s.decide(0);
    s.measured("m", 0, http(200, "<html>"));
    assert_eq!(s.metric("m").measurements[0].phase, HookPhase::Error);
}

#[test]
fn prometheus_numbers_and_nan() {
    let mut s = Sim::new(
        json!([{"name": "m", "successCondition": "!isNaN(result) && result >= 0.95",
        "provider": {"prometheus": {"address": "http://prom:9090", "query": "ratio"}}}]),
    );
    s.decide(0);
    s.measured("m", 0, Observation::Numbers(vec![f64::NAN]));
    let m = &s.metric("m").measurements[0];
    assert_eq!((m.phase, m.value.as_str()), (HookPhase::Failed, "NaN"));
    assert_eq!(m.request, "query ratio at http://prom:9090");

    let mut s = Sim::new(
        json!([{"name": "m", "successCondition": "result.all(x, x >= 0.95)",
        "provider": {"prometheus": {"address": "http://prom:9090", "query": "ratio"}}}]),
    );
    s.decide(0);
    s.measured("m", 0, Observation::Numbers(vec![0.97, 0.99]));
    assert_eq!(s.phase(), HookPhase::Successful);
    assert_eq!(s.metric("m").measurements[0].value, "[0.97, 0.99]");
}

#[test]
fn the_last_ten_measurements_are_kept() {
    let mut s = Sim::new(json!([{"name": "m", "interval": "1s", "count": 12}]));
    s.decide(0);
    for t in 0..12 {
        s.measured("m", t, value(json!(t)));
    }
    let m = s.metric("m");
    assert_eq!(m.count, 12);
    assert_eq!(m.measurements.len(), MEASUREMENTS_KEPT);
    assert_eq!(m.measurements[0].value, "2");
    assert_eq!(m.measurements[9].value, "11");
}

#[test]
fn long_values_are_cut() {
    let mut s = Sim::new(json!([{"name": "m"}]));
    s.decide(0);
    s.measured("m", 0, value(json!("x".repeat(5000))));
    let v = &s.metric("m").measurements[0].value;
    assert!(v.ends_with("… (5000 bytes)"), "{v}");
    assert!(v.len() < VALUE_MAX_BYTES + 20);
}

#[test]
fn kstatus_conditions_keep_their_transition_time() {
    let mut s = Sim::new(json!([{"name": "m", "initialDelay": "10s"}]));
    s.run.metadata.generation = Some(3);
    let d = s.decide(0);
    let completed = condition(&d.status, names::CONDITION_COMPLETED);
    assert_eq!(completed.status, "False");
    assert_eq!(completed.reason, "Pending");
    assert_eq!(completed.observed_generation, Some(3));
    let d = s.decide(10);
    let completed = condition(&d.status, names::CONDITION_COMPLETED);
    assert_eq!(completed.reason, "Running");
    assert_eq!(completed.last_transition_time, Time(at(0)), "still False");
    let d = s.measured("m", 12, value(json!(1)));
    let completed = condition(&d.status, names::CONDITION_COMPLETED);
    let ready = condition(&d.status, names::CONDITION_READY);
    assert_eq!(
        (
            completed.status.as_str(),
            completed.last_transition_time.clone()
        ),
        ("True", Time(at(12)))
    );
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Successful")
    );
    let again = s.decide(40);
    assert_eq!(again.status, d.status, "a completed run is left as it is");
}

#[test]
fn a_run_that_does_not_compile_is_an_error_at_once() {
    let run = run_of(
        json!([{"name": "m", "provider": {"web": {"url": "http://{{ args.PodIP }}/"}}}]),
        json!({}),
    );
    let errors = CompiledRun::compile(&run.spec).unwrap_err();
    let status = rejected(&run, &errors, at(0));
    assert_eq!(status.phase, Some(HookPhase::Error));
    assert_eq!(
        status.message,
        "the run cannot start: metric m uses argument PodIP, but the run has no value for it: give it a value in spec.args"
    );
    assert_eq!(
        condition(&status, names::CONDITION_COMPLETED).status,
        "True"
    );
}

#[test]
fn a_result_for_an_unknown_or_finished_metric_is_dropped() {
    let mut s = Sim::new(json!([{"name": "m"}]));
    s.decide(0);
    let before = s.run.status.clone().unwrap();
    let status = fold_measurement(
        &s.run,
        &s.compiled,
        Finished {
            metric: "other".into(),
            started_at: at(0),
            finished_at: at(0),
            observation: value(json!(1)),
        },
    );
    assert_eq!(status, before);
}

/// Durations past what a timestamp can hold panicked in `Timestamp + SignedDuration` (jiff
/// "adding signed duration to timestamp overflowed"). The compile step refuses them now;
/// durations that get past it anyway (set here on the compiled run) saturate.
#[test]
fn huge_durations_saturate_instead_of_panicking() {
    for field in ["initialDelay", "interval"] {
        let metric = json!([{"name": "m", field: "3000000000000s", "count": 2}]);
        let err = CompiledRun::compile(&run_of(metric, json!({})).spec).unwrap_err();
        assert!(
            err.to_string().contains("longer than the 720h allowed"),
            "{err}"
        );
    }
    let mut sim = Sim::new(json!([{"name": "m", "interval": "10s", "count": 2}]));
    sim.compiled.metrics[0].initial_delay = SignedDuration::MAX;
    let d = sim.decide(0);
    assert!(d.measure.is_empty());
    assert_eq!(d.requeue_at, Some(Timestamp::MAX));

    let mut sim = Sim::new(json!([{"name": "m", "interval": "10s", "count": 2}]));
    sim.compiled.metrics[0].interval = Some(SignedDuration::MAX);
    assert_eq!(sim.decide(0).measure.len(), 1);
    let d = sim.measured("m", 1, Observation::Value(json!(1)));
    assert_eq!(d.requeue_at, Some(Timestamp::MAX), "the next is never");
    let d = sim.measured("m", 2, Observation::Error("down".into()));
    assert!(d.requeue_at.is_some(), "an error retry saturates too");

    let mut sim = Sim::new(json!([{"name": "m", "interval": "10s", "count": 2}]));
    sim.timeout = Some(RunTimeout {
        after: SignedDuration::MAX,
        outcome: HookOutcome::Failed,
    });
    sim.decide(0);
    let status = sim.run.status.as_mut().unwrap();
    status.started_at = Some(Time(Timestamp::MAX));
    status.metric_results[0].count = i32::MAX;
    status.metric_results[0].consecutive_error = i32::MAX;
    let d = sim.measured("m", 3, Observation::Error("down".into()));
    assert_eq!(d.status.metric_results[0].consecutive_error, i32::MAX);
}

#[test]
fn a_run_deadline_defaults_to_failed() {
    let spec: HookRunSpec = serde_json::from_value(json!({
        "metrics": [], "timeoutSeconds": 30}))
    .unwrap();
    assert_eq!(
        RunTimeout::of(&spec),
        Some(RunTimeout {
            after: SignedDuration::from_secs(30),
            outcome: HookOutcome::Failed
        })
    );
    let spec: HookRunSpec =
        serde_json::from_value(json!({"metrics": [], "onTimeout": "Inconclusive"})).unwrap();
    assert_eq!(
        RunTimeout::of(&spec),
        None,
        "no deadline without timeoutSeconds"
    );
}
