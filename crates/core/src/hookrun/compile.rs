//! Checking a HookTemplate or HookRun once, before anything is measured: conditions, JSONPaths,
//! durations, providers and (for a run) arguments. A broken expression is reported once, naming
//! the metric and the expression, instead of turning every measurement into an Error.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;

use super::condition::{self, Conditions, Expression, ExpressionError};
use super::duration;
use super::extract::JsonPath;
use super::provider::{ProviderCall, ResolveError};
use crate::api::{
    HookOutcome, HookPolicy, HookRunSpec, HookTemplateSpec, KubernetesFunction, Metric,
};

/// One thing wrong with a template or run, in words that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("there are no metrics: add at least one under spec.metrics")]
    NoMetrics,
    #[error("metric name {metric} is used twice: each metric needs its own name")]
    DuplicateMetric { metric: String },
    #[error("metric {metric}: {field} `{expression}` is not valid CEL: {reason}")]
    Condition {
        metric: String,
        field: &'static str,
        expression: String,
        reason: String,
    },
    #[error(
        "metric {metric}: {field} `{expression}` reads statusCode, which only the web provider sets"
    )]
    StatusCodeWithoutWeb {
        metric: String,
        field: &'static str,
        expression: String,
    },
    #[error("metric {metric}: {field} is too long: {reason}")]
    ConditionTooLong {
        metric: String,
        field: &'static str,
        reason: ExpressionError,
    },
    #[error("metric {metric}: {field} `{expression}` is refused: {reason}")]
    ConditionLimit {
        metric: String,
        field: &'static str,
        /// The first characters of the expression.
        expression: String,
        reason: ExpressionError,
    },
    #[error("metric {metric}: jsonPath {path} is not valid: {reason}")]
    JsonPath {
        metric: String,
        path: String,
        reason: String,
    },
    #[error("metric {metric}: {field} {value:?} is not a duration such as 30s, 1m or 1h30m")]
    Duration {
        metric: String,
        field: &'static str,
        value: String,
    },
    #[error(
        "metric {metric}: {field} {value} is longer than the {max} allowed: measure at least \
         every {max} and wait at most {max} before the first measurement",
        max = duration::MAX_TEXT
    )]
    DurationTooLong {
        metric: String,
        field: &'static str,
        value: String,
    },
    #[error("metric {metric}: the value of argument {arg} is refused: {why}")]
    UnsafeArgument {
        metric: String,
        arg: String,
        why: String,
    },
    #[error("argument {arg} is given more than once in spec.args: give each argument once")]
    DuplicateArgument { arg: String },
    #[error(
        "metric {metric}: set exactly one of provider.web, provider.prometheus or provider.kubernetes"
    )]
    Providers { metric: String },
    #[error(
        "metric {metric} uses argument {arg}, but the run has no value for it: give it a value in spec.args"
    )]
    MissingArgument { metric: String, arg: String },
    #[error("metric {metric}: {text} is not an argument placeholder: write {{{{ args.NAME }}}}")]
    Placeholder { metric: String, text: String },
    #[error(
        "metric {metric}: kubernetes field {path} is not supported: only metadata.annotations.KEY"
    )]
    FieldPath { metric: String, path: String },
}

/// Every problem found, so one edit can fix them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct CompileErrors(pub Vec<CompileError>);

/// A metric ready to schedule and evaluate.
#[derive(Debug)]
pub struct CompiledMetric {
    pub name: String,
    pub conditions: Conditions,
    pub json_path: Option<JsonPath>,
    pub interval: Option<SignedDuration>,
    pub initial_delay: SignedDuration,
    /// The request, with the run's arguments filled in.
    pub call: ProviderCall,
    /// Whether the conditions read `statusCode`, and so see non-2xx responses.
    pub reads_status_code: bool,
    pub no_data: HookOutcome,
    pub dry_run: bool,
    /// The metric as written, for its limits.
    pub spec: Metric,
}

/// A HookRun's metrics, compiled once per spec and reused for every decision about it.
#[derive(Debug)]
pub struct CompiledRun {
    pub metrics: Vec<CompiledMetric>,
    pub ordered: bool,
}

impl CompiledRun {
    /// Compiles a run: everything a template check does, plus its arguments.
    pub fn compile(spec: &HookRunSpec) -> Result<CompiledRun, CompileErrors> {
        let args: BTreeMap<&str, &str> = spec
            .args
            .iter()
            .filter_map(|a| Some((a.name.as_str(), a.value.as_deref()?)))
            .collect();
        let duplicates = duplicate_args(&spec.args);
        let metrics = compile_metrics(&spec.metrics, &|name| args.get(name).map(|v| v.to_string()));
        let metrics = match (metrics, duplicates.is_empty()) {
            (Ok(m), true) => m,
            (result, _) => {
                let mut errors = duplicates;
                if let Err(CompileErrors(mut more)) = result {
                    errors.append(&mut more);
                }
                return Err(CompileErrors(errors));
            }
        };
        Ok(CompiledRun {
            metrics,
            ordered: spec.policy == Some(HookPolicy::Ordered),
        })
    }

    pub fn metric(&self, name: &str) -> Option<(usize, &CompiledMetric)> {
        self.metrics
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
    }
}

/// Checks a HookTemplate when it is applied. Argument values may come only when a run is
/// created, so placeholders are checked for shape, not for values.
pub fn check_template(spec: &HookTemplateSpec) -> Result<(), CompileErrors> {
    let mut errors = duplicate_args(&spec.args);
    if let Err(CompileErrors(mut more)) = compile_metrics(&spec.metrics, &|_| Some(String::new())) {
        errors.append(&mut more);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CompileErrors(errors))
    }
}

/// Each argument named twice: which value would win is not obvious, so neither does.
fn duplicate_args(args: &[crate::api::Argument]) -> Vec<CompileError> {
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<&str> = args
        .iter()
        .map(|a| a.name.as_str())
        .filter(|name| !seen.insert(*name))
        .collect();
    twice
        .into_iter()
        .map(|arg| CompileError::DuplicateArgument {
            arg: arg.to_string(),
        })
        .collect()
}

fn compile_metrics(
    metrics: &[Metric],
    arg: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<CompiledMetric>, CompileErrors> {
    let mut errors = Vec::new();
    if metrics.is_empty() {
        errors.push(CompileError::NoMetrics);
    }
    let mut seen = BTreeSet::new();
    let mut compiled = Vec::new();
    for m in metrics {
        if !seen.insert(m.name.as_str()) {
            errors.push(CompileError::DuplicateMetric {
                metric: m.name.clone(),
            });
        }
        match compile_metric(m, arg) {
            Ok(c) => compiled.push(c),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(CompileErrors(errors))
    }
}

fn compile_metric(
    m: &Metric,
    arg: &dyn Fn(&str) -> Option<String>,
) -> Result<CompiledMetric, Vec<CompileError>> {
    let mut errors = Vec::new();
    let metric = || m.name.clone();
    let is_web = m.provider.web.is_some();
    let mut expression = |field: &'static str, text: &Option<String>| {
        let text = text.as_deref()?;
        match Expression::compile(text) {
            Ok(e) if e.reads(condition::STATUS_CODE) && !is_web => {
                errors.push(CompileError::StatusCodeWithoutWeb {
                    metric: metric(),
                    field,
                    expression: text.to_string(),
                });
                None
            }
            Ok(e) => Some(e),
            Err(ExpressionError::Invalid(reason)) => {
                errors.push(CompileError::Condition {
                    metric: metric(),
                    field,
                    expression: text.to_string(),
                    reason,
                });
                None
            }
            Err(reason @ ExpressionError::TooLong { .. }) => {
                errors.push(CompileError::ConditionTooLong {
                    metric: metric(),
                    field,
                    reason,
                });
                None
            }
            Err(reason) => {
                errors.push(CompileError::ConditionLimit {
                    metric: metric(),
                    field,
                    expression: beginning(text),
                    reason,
                });
                None
            }
        }
    };
    let conditions = Conditions {
        success: expression("successCondition", &m.success_condition),
        failure: expression("failureCondition", &m.failure_condition),
    };
    let json_path = m
        .provider
        .web
        .as_ref()
        .filter(|w| !w.json_path.trim().is_empty())
        .and_then(|w| match JsonPath::compile(&w.json_path) {
            Ok(p) => Some(p),
            Err(reason) => {
                errors.push(CompileError::JsonPath {
                    metric: metric(),
                    path: w.json_path.clone(),
                    reason,
                });
                None
            }
        });
    let mut duration = |field: &'static str, text: &Option<String>| {
        let text = text.as_deref()?;
        match duration::parse(text) {
            None => errors.push(CompileError::Duration {
                metric: metric(),
                field,
                value: text.to_string(),
            }),
            Some(d) if d > duration::MAX => errors.push(CompileError::DurationTooLong {
                metric: metric(),
                field,
                value: text.to_string(),
            }),
            Some(d) => return Some(d),
        }
        None
    };
    let interval = duration("interval", &m.interval);
    let initial_delay = duration("initialDelay", &m.initial_delay).unwrap_or_default();
    let call = ProviderCall::resolve(&m.provider, arg).map_err(|e| match e {
        ResolveError::MissingArgument(arg) => CompileError::MissingArgument {
            metric: metric(),
            arg,
        },
        ResolveError::Placeholder(text) => CompileError::Placeholder {
            metric: metric(),
            text,
        },
        ResolveError::FieldPath(path) => CompileError::FieldPath {
            metric: metric(),
            path,
        },
        ResolveError::Providers => CompileError::Providers { metric: metric() },
        ResolveError::Unsafe(arg, why) => CompileError::UnsafeArgument {
            metric: metric(),
            arg,
            why,
        },
    });
    let call = call.and_then(|call| {
        let generated = match &conditions {
            Conditions {
                success: None,
                failure: None,
            } => annotation_equality(&call).map_err(|reason| CompileError::ConditionLimit {
                metric: metric(),
                field: "the comparison of the kubernetes fields",
                expression: String::new(),
                reason,
            })?,
            _ => None,
        };
        Ok((call, generated))
    });
    match call {
        Ok((call, generated)) if errors.is_empty() => Ok(CompiledMetric {
            reads_status_code: conditions.reads(condition::STATUS_CODE),
            conditions: generated.unwrap_or(conditions),
            name: m.name.clone(),
            json_path,
            interval,
            initial_delay,
            call,
            no_data: m.no_data.unwrap_or_default(),
            dry_run: m.dry_run,
            spec: m.clone(),
        }),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(e);
            Err(errors)
        }
    }
}

/// A kubernetes `get` whose fields carry values and whose metric has no conditions succeeds
/// when every annotation equals its value, as in the original (which reported a mismatch as
/// an Error): the comparison becomes an ordinary `successCondition`, so a mismatch is Failed
/// and the measurement records the expression. `None` when the metric is not such a `get`;
/// an error (never a silent success) when the comparison exceeds a limit.
fn annotation_equality(call: &ProviderCall) -> Result<Option<Conditions>, ExpressionError> {
    let ProviderCall::Kubernetes {
        function: KubernetesFunction::Get,
        annotations,
        ..
    } = call
    else {
        return Ok(None);
    };
    let literal = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let compared: Vec<String> = match annotations.as_slice() {
        [(_, value)] if !value.is_empty() => vec![format!("result == {}", literal(value))],
        many => many
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| format!("result[{}] == {}", literal(key), literal(value)))
            .collect(),
    };
    if compared.is_empty() {
        return Ok(None);
    }
    let success = Expression::compile_any_length(&compared.join(" && "))?;
    Ok(Some(Conditions {
        success: Some(success),
        failure: None,
    }))
}

/// The first 60 characters of an expression refused for its size, for the message.
fn beginning(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
