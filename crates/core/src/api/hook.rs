//! `HookTemplate` and `HookRun` (`tkex.tencent.com/v1alpha1`): measurements that gate pod
//! deletion, in-place updates and canary steps, in the shape of the original bcs-hook-operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Seconds a web provider waits for an answer when `timeoutSeconds` is unset.
pub const DEFAULT_WEB_TIMEOUT_SECONDS: i32 = 10;

/// Go `time.ParseDuration` syntax, e.g. `30s`, `1m30s`, `1.5h` (`[.]` rather than `\.`: a
/// backslash would need CEL string escaping). Bounded length keeps the CEL regex cost estimate
/// small even inside the unbounded `metrics` list.
const DURATION_PATTERN: &str = "^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$";
const DURATION_MAX_LENGTH: u32 = 64;
/// The longest `interval` or `initialDelay` (30 days), checked here and when the engine
/// compiles a metric (`hookrun::duration::MAX`): a hook that waits longer is a mistake, and
/// longer durations overflowed the engine's time arithmetic.
const DURATION_MAX: &str = "720h";
/// The longest `successCondition` / `failureCondition` (`hookrun::limits::CONDITION_MAX_BYTES`
/// bytes, checked again by the engine).
const CONDITION_MAX_LENGTH: u32 = 4096;

/// Reference from a GameDeployment to a HookTemplate, with argument values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookStep {
    /// Name of a HookTemplate in the GameDeployment's namespace.
    #[schemars(length(min = 1))]
    pub template_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<HookRunArgument>,
}

/// An argument value passed from a GameDeployment to a HookRun.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HookRunArgument {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A template argument; `{{ args.NAME }}` in urls, headers and queries is replaced by its value.
/// An argument still without a value when the HookRun is created makes the creation fail.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Argument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// How the metrics of one run are scheduled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum HookPolicy {
    /// All metrics start together.
    #[default]
    Parallel,
    /// A metric starts only after the previous one completes.
    Ordered,
}

/// Phase of a HookRun, a metric or a measurement.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema, strum::Display,
)]
pub enum HookPhase {
    /// Created, nothing measured yet.
    Pending,
    /// Measuring.
    Running,
    /// Passed; the gated action may proceed.
    Successful,
    /// A failure condition held more often than allowed.
    Failed,
    /// The provider kept erroring.
    Error,
    /// Neither condition held more often than allowed.
    Inconclusive,
    /// Stopped by `spec.terminate` (or, for a metric, because its run ended) before it had an
    /// outcome. Not a success: a gate treats it like Failed.
    Terminated,
}

impl HookPhase {
    /// Whether nothing more will be measured.
    pub fn is_completed(&self) -> bool {
        !matches!(self, HookPhase::Pending | HookPhase::Running)
    }
}

/// An outcome a user declares for a case no condition decides: a measurement without data
/// (`noData`) or a run past its deadline.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema, strum::Display,
)]
pub enum HookOutcome {
    Successful,
    Failed,
    /// Neither: counts against `inconclusiveLimit`.
    #[default]
    Inconclusive,
}

impl From<HookOutcome> for HookPhase {
    fn from(o: HookOutcome) -> Self {
        match o {
            HookOutcome::Successful => HookPhase::Successful,
            HookOutcome::Failed => HookPhase::Failed,
            HookOutcome::Inconclusive => HookPhase::Inconclusive,
        }
    }
}

/// One measurement definition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.count) || self.count <= 1 || has(self.interval)").field_path(".interval").message("a metric with count > 1 needs an interval between measurements, e.g. interval: 10s"))]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    #[schemars(length(min = 1))]
    pub name: String,

    /// Time between measurements (Go duration, e.g. "30s"). Without `count` it measures forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX_LENGTH))]
    #[x_kube(validation = Rule::new(format!("self.matches('{DURATION_PATTERN}')")).message("interval must be a Go duration such as 30s, 1m or 1h30m"))]
    #[x_kube(validation = Rule::new(format!("!self.matches('{DURATION_PATTERN}') || duration(self) <= duration('{DURATION_MAX}')")).message("interval must be at most 720h (30 days)"))]
    pub interval: Option<String>,

    /// Wait before the first measurement (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX_LENGTH))]
    #[x_kube(validation = Rule::new(format!("self.matches('{DURATION_PATTERN}')")).message("initialDelay must be a Go duration such as 30s, 1m or 1h30m"))]
    #[x_kube(validation = Rule::new(format!("!self.matches('{DURATION_PATTERN}') || duration(self) <= duration('{DURATION_MAX}')")).message("initialDelay must be at most 720h (30 days)"))]
    pub initial_delay: Option<String>,

    /// Measurements to take; unset with no interval means one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub count: Option<i32>,

    /// Expression over `result` that marks a measurement Successful (CEL, at most 4096
    /// bytes, nesting and estimated cost bounded: see the hook engine's limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = CONDITION_MAX_LENGTH))]
    pub success_condition: Option<String>,

    /// Expression over `result` that marks a measurement Failed (limits as successCondition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = CONDITION_MAX_LENGTH))]
    pub failure_condition: Option<String>,

    /// Failed measurements tolerated: default 0, so one Failed measurement fails the metric
    /// (the original's 0 disabled the check); -1 tolerates any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub failure_limit: Option<i32>,

    /// Successful measurements after which the metric is Successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_limit: Option<i32>,

    /// Inconclusive measurements tolerated: default 0; -1 tolerates any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub inconclusive_limit: Option<i32>,

    /// Consecutive provider errors tolerated before the metric is Error: default 4; -1
    /// retries forever. Errors are retried sooner than `interval`, with back-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub consecutive_error_limit: Option<i32>,

    /// Consecutive successes after which the metric is Successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub consecutive_successful_limit: Option<i32>,

    /// What a measurement without data counts as (an empty query result, a jsonPath that
    /// matches nothing, a condition reading a missing key). Default Inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Inconclusive"))]
    pub no_data: Option<HookOutcome>,

    /// Measure and report, but leave the run's phase to the other metrics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,

    pub provider: MetricProvider,
}

/// Where a measurement comes from: exactly one provider.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.web) ? 1 : 0) + (has(self.prometheus) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) == 1").message("metric provider must set exactly one of web, prometheus or kubernetes"))]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesMetric>,
}

/// An HTTP request (GET, or POST with a body); a non-2xx answer is an Error measurement unless
/// a condition reads `statusCode`. Redirects are not followed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    #[schemars(length(min = 1))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "GET"))]
    pub method: Option<WebMethod>,
    /// Request body (POST), with `{{args.NAME}}` filled in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebMetricHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = DEFAULT_WEB_TIMEOUT_SECONDS))]
    pub timeout_seconds: Option<i32>,
    /// JSONPath into the response body whose value becomes `result`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub json_path: String,
}

impl WebMetric {
    /// Request timeout, with the schema default.
    pub fn timeout_seconds(&self) -> i32 {
        self.timeout_seconds.unwrap_or(DEFAULT_WEB_TIMEOUT_SECONDS)
    }
}

/// The HTTP method of a web metric.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema, strum::Display,
)]
pub enum WebMethod {
    /// Without a body.
    #[default]
    GET,
    /// With `body`.
    POST,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WebMetricHeader {
    pub key: String,
    pub value: String,
}

/// A PromQL query.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PrometheusMetric {
    /// Prometheus base URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
}

/// Reads or patches `metadata.annotations.<key>` of the object named by the run's arguments
/// (`PodName`, `PodNamespace`, optionally `Group`/`Version`/`Kind`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct KubernetesMetric {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<KubernetesField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<KubernetesFunction>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct KubernetesField {
    /// `metadata.annotations.<key>`.
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesFunction {
    /// Read the fields and compare them with the conditions.
    Get,
    /// Write the field values.
    Patch,
}

/// Reusable hook definition referenced by GameDeployments.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tkex.tencent.com",
    version = "v1alpha1",
    kind = "HookTemplate",
    plural = "hooktemplates",
    singular = "hooktemplate",
    namespaced,
    derive = "PartialEq",
    doc = "A reusable set of metrics; GameDeployments instantiate it as HookRuns.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HookTemplateSpec {
    #[schemars(length(min = 1))]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Parallel"))]
    pub policy: Option<HookPolicy>,
    /// Seconds from the run's start after which it ends with `onTimeout`, whatever its
    /// metrics are doing (not in the original: a hook there could wait for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i32>,
    /// The phase of a run that timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Failed"))]
    pub on_timeout: Option<HookOutcome>,
}

/// One execution of a hook, created by the operator from a HookTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tkex.tencent.com",
    version = "v1alpha1",
    kind = "HookRun",
    plural = "hookruns",
    singular = "hookrun",
    namespaced,
    status = "HookRunStatus",
    derive = "PartialEq",
    doc = "One execution of a HookTemplate for a pod or a canary step.",
    printcolumn(
        name = "PHASE",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of the run"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HookRunSpec {
    #[schemars(length(min = 1))]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Stop measuring; set by the operator for superseded canary steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    /// Copied from the template so the run knows whether metrics are ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Parallel"))]
    pub policy: Option<HookPolicy>,
    /// Seconds from the run's start after which it ends with `onTimeout`, whatever its
    /// metrics are doing (not in the original: a hook there could wait for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i32>,
    /// The phase of a run that timed out (copied from the template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Failed"))]
    pub on_timeout: Option<HookOutcome>,
}

/// Progress of a HookRun.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRunStatus {
    /// Worst phase over the metrics; unset until the run is first reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<HookPhase>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    /// When the engine first looked at the run; `initialDelay` and a run deadline count from
    /// here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// `Ready` (True once Successful) and `Completed` (True once nothing more will be
    /// measured), so `kubectl wait --for=condition=Completed` works.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Tally and recent measurements of one metric.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub name: String,
    pub phase: HookPhase,
    /// Most recent measurements; the controller keeps at most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_error: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_successful: i32,
    /// Copied from the metric: this result does not decide the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// One measurement.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub phase: HookPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the measurement started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// Unset while the measurement is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// What was asked: the resolved URL, query or object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
    /// The measured value, as text (JSON for structured values), cut at 1,000 bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Which condition decided the phase, e.g. ``successCondition `result.players == 0`
    /// is true``.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When to measure again after an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_spec_uses_the_original_json_names() {
        let spec: HookTemplateSpec = serde_json::from_value(serde_json::json!({
            "policy": "Ordered",
            "args": [{"name": "PodName"}, {"name": "Threshold", "value": "3"}],
            "metrics": [{
                "name": "ready", "interval": "10s", "initialDelay": "5s", "count": 3,
                "successCondition": "asInt(result) == 1", "failureLimit": 1,
                "consecutiveErrorLimit": 2, "consecutiveSuccessfulLimit": 2,
                "provider": {"web": {
                    "url": "http://{{ args.PodName }}:8000/ready",
                    "headers": [{"key": "X", "value": "y"}],
                    "jsonPath": "{$.ok}"
                }}
            }, {
                "name": "annotate",
                "provider": {"kubernetes": {
                    "function": "patch",
                    "fields": [{"path": "metadata.annotations.drained", "value": "true"}]
                }}
            }]
        }))
        .unwrap();
        assert_eq!(spec.policy, Some(HookPolicy::Ordered));
        assert_eq!(spec.args[0].value, None);
        let web = spec.metrics[0].provider.web.as_ref().unwrap();
        assert_eq!(web.timeout_seconds(), DEFAULT_WEB_TIMEOUT_SECONDS);
        assert_eq!(web.json_path, "{$.ok}");
        let k = spec.metrics[1].provider.kubernetes.as_ref().unwrap();
        assert_eq!(k.function, Some(KubernetesFunction::Patch));
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["metrics"][0]["initialDelay"], "5s");
        assert_eq!(json["metrics"][0]["consecutiveErrorLimit"], 2);
        assert_eq!(
            json["metrics"][1]["provider"]["kubernetes"]["function"],
            "patch"
        );
    }

    /// The schema's limits are the engine's.
    #[test]
    fn limits_agree_with_the_engine() {
        use crate::hookrun::{duration, limits};
        assert_eq!(CONDITION_MAX_LENGTH as usize, limits::CONDITION_MAX_BYTES);
        assert_eq!(duration::parse(DURATION_MAX), Some(duration::MAX));
        assert_eq!(DURATION_MAX, duration::MAX_TEXT);
    }

    #[test]
    fn completed_phases() {
        assert!(!HookPhase::Pending.is_completed());
        assert!(!HookPhase::Running.is_completed());
        for p in [
            HookPhase::Successful,
            HookPhase::Failed,
            HookPhase::Error,
            HookPhase::Inconclusive,
        ] {
            assert!(p.is_completed(), "{p:?}");
        }
    }
}
