//! What a user sees of a rollout, as text. Pure: the binary observes objects (a GameDeployment,
//! its pods, their HookRuns) and passes them in with the time; nothing here talks to a cluster,
//! so every screen is pinned by snapshot tests.
//!
//! - [`kubectl`]: what `kubectl get pods` / `kubectl get gamedeployment` would print, and
//!   kubectl's table layout and durations (shared with `gamedeploy simulate`).
//! - [`status`]: `gamedeploy status`, one rollout at a glance.
//! - [`rollout`]: the `kubectl gamedeploy` verbs' decisions: done or failed, history, undo,
//!   promote.
pub mod kubectl;
pub mod rollout;
pub mod status;
