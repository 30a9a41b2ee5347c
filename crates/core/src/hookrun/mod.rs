//! The HookRun engine's pure core: what to measure and when, what a measurement means, and
//! what the run has become. The IO edge (HTTP, Prometheus, the Kubernetes API, status
//! writes, requeues) carries out its decisions.
//!
//! - [`compile`]: a template or run checked once: conditions, JSONPaths, durations, arguments.
//! - [`engine`]: [`decide`] (measure now, phases, next instant) and [`fold_measurement`] (a
//!   finished measurement folded into the status).
//! - [`condition`]: `successCondition` / `failureCondition` in CEL, with the original's helpers.
//! - [`limits`]: what a condition may cost: size, nesting and evaluation work.
//! - [`extract`]: a web response body to `result`, through JSONPath.
//! - [`provider`]: the provider request with arguments filled in, what came back, and a
//!   Prometheus answer read as numbers.
pub mod compile;
pub mod condition;
pub mod duration;
pub mod engine;
pub mod extract;
pub mod limits;
pub mod provider;

pub use compile::{CompileError, CompileErrors, CompiledMetric, CompiledRun, check_template};
pub use engine::{
    Finished, HookRunStep, MEASUREMENTS_KEPT, MeasureRequest, RunTimeout, decide, fold_measurement,
    rejected,
};
pub use provider::{ObjectTarget, Observation, ProviderCall, prometheus_observation, redact_url};
