//! The HookRun engine's two decisions, pure functions of the run and `now`:
//!
//! - [`decide`]: which metrics to measure now, each metric's and the run's phase, and the
//!   exact instant to look again;
//! - [`fold_measurement`]: a finished measurement folded into the status (conditions
//!   evaluated, counts, the last [`MEASUREMENTS_KEPT`] measurements).
//!
//! The controller loops `decide` → measure → `fold_measurement` → `decide` → write status,
//! keeping at most one measurement per metric in flight.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::compile::{CompileErrors, CompiledMetric, CompiledRun};
use super::condition::{Evaluation, from_json};
use super::extract::{self, NoValue};
use super::provider::{Observation, ProviderCall};
use crate::api::{
    HookOutcome, HookPhase, HookRun, HookRunSpec, HookRunStatus, Measurement, MetricResult,
};
use crate::names;

/// Measurements kept per metric, newest last.
pub const MEASUREMENTS_KEPT: usize = 10;
/// Consecutive errors tolerated when `consecutiveErrorLimit` is unset (the original declared
/// this default and never applied it; Argo Rollouts applies it).
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;
/// The longest wait between retries of an erroring metric without an `interval`.
pub const DEFAULT_ERROR_RETRY_CAP: SignedDuration = SignedDuration::from_secs(10);
/// The first retry after an error; each further consecutive error doubles it.
pub const FIRST_ERROR_RETRY: SignedDuration = SignedDuration::from_secs(1);
/// Longest measured value kept in status, in bytes.
pub const VALUE_MAX_BYTES: usize = 1000;

/// A deadline for the whole run, and what the run is when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTimeout {
    pub after: SignedDuration,
    pub outcome: HookOutcome,
}

impl RunTimeout {
    /// The run's `timeoutSeconds` and `onTimeout` (default `Failed`), if it has a deadline.
    pub fn of(spec: &HookRunSpec) -> Option<RunTimeout> {
        spec.timeout_seconds.map(|s| RunTimeout {
            after: SignedDuration::from_secs(i64::from(s.max(0))),
            outcome: spec.on_timeout.unwrap_or(HookOutcome::Failed),
        })
    }
}

/// One measurement to take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRequest {
    pub metric: String,
    pub call: ProviderCall,
}

/// What [`decide`] concluded for a HookRun: its status, what to measure now, when to look
/// again.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRunStep {
    /// The status to write.
    pub status: HookRunStatus,
    /// Measurements due now, in metric order.
    pub measure: Vec<MeasureRequest>,
    /// When the next measurement or the timeout falls due; `None` once the run completed.
    pub requeue_at: Option<Timestamp>,
}

/// A measurement the IO edge finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub metric: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub observation: Observation,
}

/// Decides what to measure now and how far the run has come.
pub fn decide(
    run: &HookRun,
    compiled: &CompiledRun,
    timeout: Option<&RunTimeout>,
    now: Timestamp,
) -> HookRunStep {
    let mut status = aligned(run, compiled);
    let started = status.started_at.get_or_insert(Time(now)).0;
    if status.phase.is_some_and(|p| p.is_completed()) {
        set_conditions(&mut status, run.metadata.generation, now);
        return HookRunStep {
            status,
            measure: Vec::new(),
            requeue_at: None,
        };
    }
    for (m, r) in compiled
        .metrics
        .iter()
        .zip(status.metric_results.iter_mut())
    {
        if !r.phase.is_completed() {
            let (phase, why) = assess(m, r);
            r.phase = phase;
            r.message = why;
        }
    }
    let deadline = timeout.map(|t| (later(started, t.after), t));
    if let Some(end) = ending(&status, compiled, deadline, run.spec.terminate, now) {
        for r in status
            .metric_results
            .iter_mut()
            .filter(|r| !r.phase.is_completed())
        {
            r.phase = HookPhase::Terminated;
            r.message = end.stops_the_rest.clone();
        }
        status.phase = Some(end.phase);
        status.message = end.message;
        set_conditions(&mut status, run.metadata.generation, now);
        return HookRunStep {
            status,
            measure: Vec::new(),
            requeue_at: None,
        };
    }
    let mut measure = Vec::new();
    let mut requeue_at = deadline.map(|(at, _)| at);
    let mut previous_done: Option<Timestamp> = Some(started);
    for (m, r) in compiled.metrics.iter().zip(&status.metric_results) {
        let since = if compiled.ordered {
            match previous_done {
                Some(t) => t,
                None => break,
            }
        } else {
            started
        };
        if compiled.ordered {
            previous_done = r
                .phase
                .is_completed()
                .then(|| last_finished(r).unwrap_or(since));
        }
        if r.phase.is_completed() {
            continue;
        }
        let due = next_due(m, r, since);
        if due <= now {
            measure.push(MeasureRequest {
                metric: m.name.clone(),
                call: m.call.clone(),
            });
        } else {
            requeue_at = Some(requeue_at.map_or(due, |at: Timestamp| at.min(due)));
        }
    }
    let measured = status
        .metric_results
        .iter()
        .any(|r| !r.measurements.is_empty());
    status.phase = Some(if measured || !measure.is_empty() {
        HookPhase::Running
    } else {
        HookPhase::Pending
    });
    status.message = String::new();
    set_conditions(&mut status, run.metadata.generation, now);
    HookRunStep {
        status,
        measure,
        requeue_at,
    }
}

/// Folds a finished measurement into the run's status. A result for a metric or run that has
/// already completed (terminated, timed out) is dropped. The run's phase is left to
/// [`decide`], which the caller runs next.
pub fn fold_measurement(
    run: &HookRun,
    compiled: &CompiledRun,
    finished: Finished,
) -> HookRunStatus {
    let mut status = aligned(run, compiled);
    if status.phase.is_some_and(|p| p.is_completed()) {
        return status;
    }
    let Some((i, m)) = compiled.metric(&finished.metric) else {
        return status;
    };
    let r = &mut status.metric_results[i];
    if r.phase.is_completed() {
        return status;
    }
    let judged = judge(m, &finished.observation);
    let mut resume_at = None;
    if judged.phase == HookPhase::Error {
        r.error = r.error.saturating_add(1);
        r.consecutive_error = r.consecutive_error.saturating_add(1);
        let retry = error_retry(r.consecutive_error, m.interval);
        resume_at = Some(Time(later(finished.finished_at, retry)));
    } else {
        r.count = r.count.saturating_add(1);
        r.consecutive_error = 0;
        match judged.phase {
            HookPhase::Successful => {
                r.successful = r.successful.saturating_add(1);
                r.consecutive_successful = r.consecutive_successful.saturating_add(1);
            }
            HookPhase::Failed => r.failed = r.failed.saturating_add(1),
            _ => r.inconclusive = r.inconclusive.saturating_add(1),
        }
        if judged.phase != HookPhase::Successful {
            r.consecutive_successful = 0;
        }
    }
    r.measurements.push(Measurement {
        phase: judged.phase,
        message: judged.message,
        started_at: Some(Time(finished.started_at)),
        finished_at: Some(Time(finished.finished_at)),
        request: m.call.describe(),
        value: judged.value,
        condition: judged.condition,
        metadata: Default::default(),
        resume_at,
    });
    let excess = r.measurements.len().saturating_sub(MEASUREMENTS_KEPT);
    r.measurements.drain(..excess);
    let (phase, why) = assess(m, r);
    r.phase = phase;
    r.message = why;
    status
}

/// The status of a run whose spec does not compile: Error at once, with every problem in the
/// message, rather than an Error per measurement.
pub fn rejected(run: &HookRun, errors: &CompileErrors, now: Timestamp) -> HookRunStatus {
    let mut status = run.status.clone().unwrap_or_default();
    if !status.phase.is_some_and(|p| p.is_completed()) {
        status.phase = Some(HookPhase::Error);
        status.message = format!("the run cannot start: {errors}");
    }
    set_conditions(&mut status, run.metadata.generation, now);
    status
}

/// The run's status with one result per metric, in spec order.
fn aligned(run: &HookRun, compiled: &CompiledRun) -> HookRunStatus {
    let mut status = run.status.clone().unwrap_or_default();
    let mut old = std::mem::take(&mut status.metric_results);
    status.metric_results = compiled
        .metrics
        .iter()
        .map(|m| {
            let mut r = match old.iter().position(|r| r.name == m.name) {
                Some(i) => old.swap_remove(i),
                None => pending(&m.name),
            };
            r.dry_run = m.dry_run;
            r
        })
        .collect();
    status
}

fn pending(name: &str) -> MetricResult {
    MetricResult {
        name: name.to_string(),
        phase: HookPhase::Pending,
        measurements: Vec::new(),
        message: String::new(),
        count: 0,
        successful: 0,
        failed: 0,
        inconclusive: 0,
        error: 0,
        consecutive_error: 0,
        consecutive_successful: 0,
        dry_run: false,
    }
}

/// A metric's phase from its counts, and the limit that decided it. Failure limits are
/// checked before success limits, so with defaults one Failed measurement fails the metric
/// (the original checked `failureLimit` only when it was above 0).
fn assess(m: &CompiledMetric, r: &MetricResult) -> (HookPhase, String) {
    let s = &m.spec;
    let limit = |v: Option<i32>, default: i32| {
        let l = v.unwrap_or(default);
        (l >= 0).then_some(l)
    };
    let plural = |n: i32, what: &str| {
        if n == 1 {
            format!("1 {what} measurement")
        } else {
            format!("{n} {what} measurements")
        }
    };
    if let Some(l) = limit(s.failure_limit, 0).filter(|l| r.failed > *l) {
        let why = format!("{}, more than failureLimit {l}", plural(r.failed, "Failed"));
        return (HookPhase::Failed, why);
    }
    if let Some(l) = limit(s.consecutive_error_limit, DEFAULT_CONSECUTIVE_ERROR_LIMIT)
        .filter(|l| r.consecutive_error > *l)
    {
        let why = format!(
            "{} consecutive errors, more than consecutiveErrorLimit {l}",
            r.consecutive_error
        );
        return (HookPhase::Error, why);
    }
    if let Some(l) = limit(s.inconclusive_limit, 0).filter(|l| r.inconclusive > *l) {
        let why = format!(
            "{}, more than inconclusiveLimit {l}",
            plural(r.inconclusive, "Inconclusive")
        );
        return (HookPhase::Inconclusive, why);
    }
    let successful_limit = s.successful_limit.filter(|l| *l > 0);
    if let Some(l) = successful_limit.filter(|l| r.successful >= *l) {
        let why = format!(
            "{} reached successfulLimit {l}",
            plural(r.successful, "Successful")
        );
        return (HookPhase::Successful, why);
    }
    let consecutive_limit = s.consecutive_successful_limit.filter(|l| *l > 0);
    if let Some(l) = consecutive_limit.filter(|l| r.consecutive_successful >= *l) {
        let why = format!(
            "{} consecutive Successful measurements reached consecutiveSuccessfulLimit {l}",
            r.consecutive_successful
        );
        return (HookPhase::Successful, why);
    }
    let count = s
        .count
        .filter(|c| *c > 0)
        .or(m.interval.is_none().then_some(1));
    if let Some(c) = count.filter(|c| r.count >= *c) {
        if let Some(l) = successful_limit {
            let why = format!(
                "count {c} reached with {} of the {l} Successful measurements successfulLimit asks for",
                r.successful
            );
            return (HookPhase::Failed, why);
        }
        if let Some(l) = consecutive_limit {
            let why = format!(
                "count {c} reached without the {l} consecutive Successful measurements \
                 consecutiveSuccessfulLimit asks for"
            );
            return (HookPhase::Failed, why);
        }
        let why = if c == 1 {
            "measured once, within the limits".to_string()
        } else {
            format!("all {c} measurements taken, within the limits")
        };
        return (HookPhase::Successful, why);
    }
    if r.count == 0 && r.error == 0 {
        (HookPhase::Pending, String::new())
    } else {
        (HookPhase::Running, String::new())
    }
}

/// How a run ends, if it ends now.
struct Ending {
    phase: HookPhase,
    message: String,
    /// Message for the metrics still measuring, which become Terminated.
    stops_the_rest: String,
}

/// A decisive (not dry-run) metric that is Failed, Error or Inconclusive ends the run with the
/// worst of them; every decisive metric Successful ends it Successful; then the timeout, then
/// `spec.terminate` (Terminated, never Successful).
fn ending(
    status: &HookRunStatus,
    compiled: &CompiledRun,
    deadline: Option<(Timestamp, &RunTimeout)>,
    terminate: bool,
    now: Timestamp,
) -> Option<Ending> {
    let results = &status.metric_results;
    let decisive: Vec<&MetricResult> = results.iter().filter(|r| !r.dry_run).collect();
    let rank = |p: HookPhase| match p {
        HookPhase::Failed => 3,
        HookPhase::Error => 2,
        HookPhase::Inconclusive => 1,
        _ => 0,
    };
    if let Some(worst) = decisive
        .iter()
        .filter(|r| rank(r.phase) > 0)
        .max_by_key(|r| rank(r.phase))
    {
        return Some(Ending {
            phase: worst.phase,
            message: format!(
                "metric {} is {}: {}",
                worst.name, worst.phase, worst.message
            ),
            stops_the_rest: format!("not needed: metric {} is {}", worst.name, worst.phase),
        });
    }
    let done = |rs: &[&MetricResult]| rs.iter().all(|r| r.phase.is_completed());
    let all: Vec<&MetricResult> = results.iter().collect();
    if (!decisive.is_empty() && done(&decisive)) || done(&all) {
        let message = if compiled.metrics.len() == 1 {
            format!("metric {} is Successful", compiled.metrics[0].name)
        } else {
            "every metric is Successful".to_string()
        };
        return Some(Ending {
            phase: HookPhase::Successful,
            message,
            stops_the_rest: "not needed: the run is Successful".into(),
        });
    }
    if let Some((at, t)) = deadline.filter(|(at, _)| now >= *at) {
        return Some(Ending {
            phase: t.outcome.into(),
            message: format!(
                "timed out at {at}, {}s after it started; the declared outcome is {}",
                t.after.as_secs(),
                t.outcome
            ),
            stops_the_rest: "stopped: the run timed out".into(),
        });
    }
    terminate.then(|| Ending {
        phase: HookPhase::Terminated,
        message: "terminated by spec.terminate before every metric had an outcome".into(),
        stops_the_rest: "stopped by spec.terminate".into(),
    })
}

fn last_finished(r: &MetricResult) -> Option<Timestamp> {
    r.measurements
        .last()
        .and_then(|m| m.finished_at.as_ref())
        .map(|t| t.0)
}

/// When a metric that may measure since `since` is next due: `initialDelay` after `since`
/// for the first, `interval` after the last finished, or its error retry.
fn next_due(m: &CompiledMetric, r: &MetricResult, since: Timestamp) -> Timestamp {
    let Some(last) = r.measurements.last() else {
        return later(since, m.initial_delay);
    };
    let finished = last.finished_at.as_ref().map_or(since, |t| t.0);
    if last.phase == HookPhase::Error {
        return last.resume_at.as_ref().map_or_else(
            || later(finished, error_retry(r.consecutive_error, m.interval)),
            |t| t.0,
        );
    }
    later(finished, m.interval.unwrap_or(DEFAULT_ERROR_RETRY_CAP))
}

/// `t + d`, saturating at the ends of time instead of panicking: the compile step bounds
/// durations ([`super::duration::MAX`]), but a status written by anyone holds timestamps of
/// any size, and time arithmetic in the engine must never crash the operator.
fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    // jiff's saturating add fails only for calendar units, which a duration has none of.
    t.saturating_add(d).unwrap_or(t)
}

/// 1 s, 2 s, 4 s, ... after the n-th consecutive error, never longer than the metric's
/// `interval` (10 s without one): the original waited the whole interval after an error.
fn error_retry(consecutive_errors: i32, interval: Option<SignedDuration>) -> SignedDuration {
    let cap = interval.unwrap_or(DEFAULT_ERROR_RETRY_CAP);
    let doublings = consecutive_errors.saturating_sub(1).clamp(0, 20);
    let retry = FIRST_ERROR_RETRY * (1i32 << doublings);
    retry.min(cap)
}

/// One measurement's verdict and its explanation.
struct Judged {
    phase: HookPhase,
    value: String,
    condition: String,
    message: String,
}

fn judge(m: &CompiledMetric, observation: &Observation) -> Judged {
    let error = |message: String, value: String| Judged {
        phase: HookPhase::Error,
        value,
        condition: String::new(),
        message,
    };
    let no_data = |why: String, value: String| Judged {
        phase: m.no_data.into(),
        value,
        condition: String::new(),
        message: format!("no data: {why}; noData makes this {}", m.no_data),
    };
    let evaluate = |result: cel::Value, value: String, status_code: Option<u16>| match m
        .conditions
        .evaluate(result, status_code)
    {
        Evaluation::Decided { phase, because } => Judged {
            phase,
            value,
            condition: because,
            message: String::new(),
        },
        Evaluation::NoData(why) => no_data(why, value),
        Evaluation::Error(why) => error(why, value),
    };
    match observation {
        Observation::Error(message) => error(message.clone(), String::new()),
        Observation::NoData(why) => no_data(why.clone(), String::new()),
        Observation::Http { status, body } => {
            if !(200..300).contains(status) && !m.reads_status_code {
                return error(
                    format!(
                        "HTTP {status}: a web measurement needs a 2xx answer, unless a \
                         condition reads statusCode"
                    ),
                    cut(body),
                );
            }
            match extract::web_result(body, m.json_path.as_ref()) {
                Ok(v) => evaluate(from_json(&v), cut(&text(&v)), Some(*status)),
                Err(NoValue::NoData(why)) => no_data(why, cut(body)),
                Err(NoValue::Error(why)) => error(why, cut(body)),
            }
        }
        Observation::Value(v) => evaluate(from_json(v), cut(&text(v)), None),
        Observation::Numbers(ns) => match ns.as_slice() {
            [] => no_data("the query returned no samples".into(), String::new()),
            [one] => evaluate(cel::Value::Float(*one), one.to_string(), None),
            many => {
                let shown: Vec<String> = many.iter().map(f64::to_string).collect();
                let list = many.iter().map(|f| cel::Value::Float(*f)).collect();
                evaluate(
                    cel::Value::List(std::sync::Arc::new(list)),
                    cut(&format!("[{}]", shown.join(", "))),
                    None,
                )
            }
        },
    }
}

/// A value as text: a string as itself, anything else as JSON.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most [`VALUE_MAX_BYTES`], cut on a character boundary, saying how long it was.
fn cut(s: &str) -> String {
    if s.len() <= VALUE_MAX_BYTES {
        return s.to_string();
    }
    let mut end = VALUE_MAX_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// kstatus-style `Ready` (the run succeeded) and `Completed` (nothing more will be measured);
/// a condition's transition time moves only when its status does.
fn set_conditions(status: &mut HookRunStatus, generation: Option<i64>, now: Timestamp) {
    let phase = status.phase.unwrap_or(HookPhase::Pending);
    let wanted = [
        (names::CONDITION_READY, phase == HookPhase::Successful),
        (names::CONDITION_COMPLETED, phase.is_completed()),
    ];
    for (type_, is_true) in wanted {
        let value = if is_true { "True" } else { "False" };
        let since = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == value)
            .map_or(Time(now), |c| c.last_transition_time.clone());
        let condition = Condition {
            type_: type_.to_string(),
            status: value.to_string(),
            reason: phase.to_string(),
            message: status.message.clone(),
            last_transition_time: since,
            observed_generation: generation,
        };
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => *c = condition,
            None => status.conditions.push(condition),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile;
