//! `gamedeploy status NAME`: one rollout at a glance, from what was observed at one moment.
//! [`render`] is the whole screen; the binary only fetches the objects (and redraws on
//! `--watch`). It must read well in 80 columns: the pod table shows a column only when some
//! pod has something to put in it, long cells are shortened, and a failure's message, too
//! long for a cell, is listed under the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gamedeploy_core::api::{
    GameDeploymentStatus, HookPhase, StoredGameDeployment, UpdateStrategyType,
};
use gamedeploy_core::inplace::{
    Decoded, PodView, RESIZE_DEFERRED, Record, State, decode, observed_state,
};
use gamedeploy_core::names;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;

use crate::kubectl::{Layout, human_duration, pod_ready, render_with};

/// What `gamedeploy status` looks at, as observed at one moment.
#[derive(Debug, Clone)]
pub struct RolloutSnapshot {
    pub gd: StoredGameDeployment,
    /// Pods matching the GameDeployment's selector; those another controller owns are left out.
    pub pods: Vec<Pod>,
    /// HookRuns of the namespace by name, with their phase (`None`: not reconciled yet). Only
    /// those named in a pod's record are shown.
    pub hook_runs: BTreeMap<String, Option<HookPhase>>,
}

/// Shown where a value does not apply.
const NONE: &str = "-";
/// The longest pod name or revision kept whole; longer ones keep their distinctive end.
const MAX_NAME: usize = 30;
const MAX_REVISION: usize = 7;
/// Tighter than kubectl's three spaces, so the common columns fit 80 characters.
const LAYOUT: Layout = Layout {
    min_width: 0,
    padding: 2,
};

/// The screen for `observed` at `now`, no line wider than `width` characters.
pub fn render(observed: &RolloutSnapshot, now: Timestamp, width: usize) -> String {
    let mut out = String::new();
    let name = observed.gd.meta().name.as_deref().unwrap_or_default();
    let namespace = observed.gd.meta().namespace.as_deref().unwrap_or("default");
    let _ = writeln!(
        out,
        "{}",
        fit(&format!("GameDeployment {namespace}/{name}"), width)
    );
    for (label, value) in header(observed) {
        wrap_into(&mut out, &format!("  {label:<9}  "), &value, width);
    }
    let (rows, details) = pod_rows(observed, now);
    out.push('\n');
    if rows.is_empty() {
        out.push_str("No pods.\n");
    } else {
        for line in pod_table(&rows).lines() {
            let _ = writeln!(out, "{}", fit(line, width));
        }
    }
    if !details.is_empty() {
        out.push('\n');
        for (pod, detail) in details {
            wrap_into(&mut out, "- ", &format!("{pod} {detail}"), width);
        }
    }
    out
}

/// The lines above the pod table, as (label, value).
fn header(observed: &RolloutSnapshot) -> Vec<(&'static str, String)> {
    let gd = &observed.gd;
    let name = gd.meta().name.as_deref().unwrap_or_default();
    let status = gd.status();
    let mut lines = Vec::new();
    match gd {
        StoredGameDeployment::Decoded(d) => {
            let spec = &d.spec;
            let partition = match spec.partition(spec.replicas()) {
                Ok(p) => p.to_string(),
                Err(_) => "invalid".into(),
            };
            let mut strategy = format!(
                "{}, partition {partition}, grace {}s",
                strategy_name(&spec.update_strategy_type()),
                spec.grace_period_seconds()
            );
            let steps = spec.canary_steps().len();
            if let Some(index) = status.and_then(|s| s.current_step_index) {
                let _ = write!(strategy, ", canary step index {index} of {steps}");
            }
            strategy.push_str(if spec.paused() {
                ", paused"
            } else {
                ", not paused"
            });
            lines.push(("strategy", strategy));
        }
        StoredGameDeployment::Undecodable(_) => {
            lines.push(("strategy", "unknown (the spec does not decode)".into()));
        }
    }
    let revisions = match status {
        Some(s) if !s.update_revision.is_empty() => {
            let full = |r: &str| short_revision(name, r, usize::MAX);
            let rolling = if s.current_revision == s.update_revision {
                ""
            } else {
                " (rolling out)"
            };
            format!(
                "current {}, update {}{rolling}",
                full(&s.current_revision),
                full(&s.update_revision)
            )
        }
        _ => "none yet (the operator has not reported)".into(),
    };
    lines.push(("revisions", revisions));
    let desired = match gd {
        StoredGameDeployment::Decoded(d) => d.spec.replicas().to_string(),
        StoredGameDeployment::Undecodable(u) => u
            .stored_replicas()
            .map_or_else(|| "?".into(), |r| r.to_string()),
    };
    let count = |f: fn(&GameDeploymentStatus) -> i32| status.map_or(0, f);
    lines.push((
        "pods",
        format!(
            "{desired} desired, {} updated, {} updated-ready, {} ready, {} total",
            count(|s| s.updated_replicas),
            count(|s| s.updated_ready_replicas),
            count(|s| s.ready_replicas),
            count(|s| s.replicas),
        ),
    ));
    let problems = problems(observed);
    if problems.is_empty() {
        lines.push(("problems", "none".into()));
    }
    for (i, p) in problems.into_iter().enumerate() {
        lines.push((if i == 0 { "problems" } else { "" }, p));
    }
    lines
}

/// Conditions (and facts) a user should act on or at least know about; `Progressing` in its
/// ordinary reasons is not one.
fn problems(observed: &RolloutSnapshot) -> Vec<String> {
    let gd = &observed.gd;
    let mut out = Vec::new();
    if let StoredGameDeployment::Undecodable(u) = gd {
        out.push(format!("the spec does not decode: {}", u.reason));
    }
    if let (Some(generation), Some(status)) = (gd.meta().generation, gd.status())
        && status.observed_generation < generation
    {
        out.push(format!(
            "status is for generation {}, the spec is at {generation}: the operator has not caught up",
            status.observed_generation
        ));
    }
    for c in gd.status().map_or(&[][..], |s| s.conditions.as_slice()) {
        let failing =
            c.type_ == names::CONDITION_FAILED_SCALE || c.type_ == names::CONDITION_FAILED_UPDATE;
        let problem = if failing {
            c.status == "True"
        } else if c.type_ == names::CONDITION_PROGRESSING {
            c.status != "True" || c.reason == names::REASON_UPDATE_ABANDONED
        } else {
            c.status == "False"
        };
        if problem {
            let mut line = format!("{} {}", c.type_, c.reason);
            if !c.message.is_empty() {
                let _ = write!(line, ": {}", c.message);
            }
            out.push(line);
        }
    }
    out
}

/// One pod's row.
struct Row {
    name: String,
    revision: String,
    ready: String,
    state: String,
    since: String,
    grace: Option<String>,
    hook: Option<String>,
    reason: Option<String>,
}

/// Rows sorted by pod name, and the reasons and messages too long for a cell (pod name,
/// `reason: message`).
fn pod_rows(observed: &RolloutSnapshot, now: Timestamp) -> (Vec<Row>, Vec<(String, String)>) {
    let gd = &observed.gd;
    let gd_name = gd.meta().name.as_deref().unwrap_or_default();
    let uid = gd.meta().uid.as_deref();
    let grace = gd.decoded().map(|d| d.spec.grace_period_seconds());
    let mut pods: Vec<&Pod> = observed.pods.iter().filter(|p| owned_by(p, uid)).collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rows = Vec::new();
    let mut details = Vec::new();
    for pod in pods {
        let view = PodView::from_pod(pod);
        let decoded = decode(&view.annotations);
        let state = observed_state(&view, &decoded, now);
        let record = match &decoded {
            Decoded::Valid(r) => Some(r),
            _ => None,
        };
        let (reason, message) = match &decoded {
            Decoded::Valid(r) => (r.reason.clone(), r.message.clone()),
            Decoded::Corrupt { error } => (
                Some("CorruptState".to_string()),
                Some(format!(
                    "{} is unreadable: {error}",
                    names::ANNOTATION_STATE
                )),
            ),
            Decoded::Unsupported { version } => (
                Some("NewerVersion".to_string()),
                Some(format!(
                    "{} has version {version}, newer than this gamedeploy understands",
                    names::ANNOTATION_STATE
                )),
            ),
            Decoded::Missing => (None, None),
        };
        // A deferred resize is derived (nothing recorded): the kubelet's reason and node.
        let deferred = (state == Some(State::ResizeDeferred))
            .then(|| view.resize_pending(RESIZE_DEFERRED))
            .flatten();
        let (reason, message) = match deferred {
            Some(p) => (
                Some("ResizeDeferred".to_string()),
                Some(format!(
                    "{} (node {})",
                    p.message,
                    view.node_name.as_deref().unwrap_or(NONE)
                )),
            ),
            None => (reason, message),
        };
        let reason = match (view.deleting, reason) {
            (true, None) => Some("Terminating".to_string()),
            (_, r) => r,
        };
        if let Some(m) = message {
            let why = reason.as_deref().unwrap_or("");
            details.push((view.name.clone(), format!("{why}: {m}")));
        }
        let since = state.and_then(|s| entered(s, record, pod)).map_or_else(
            || NONE.to_string(),
            |t| human_duration(now.duration_since(t)),
        );
        rows.push(Row {
            name: shorten_end(&view.name, MAX_NAME),
            revision: view.revision.as_deref().map_or_else(
                || NONE.to_string(),
                |r| short_revision(gd_name, r, MAX_REVISION),
            ),
            ready: pod_ready(pod),
            state: state.map_or_else(|| NONE.to_string(), |s| s.to_string()),
            since,
            grace: (state == Some(State::GracefulWait))
                .then(|| grace_left(record, grace, now))
                .flatten(),
            hook: record.and_then(|r| r.hook_run.as_ref()).map(|run| {
                match observed.hook_runs.get(run) {
                    Some(Some(phase)) => phase.to_string(),
                    Some(None) => "Pending".to_string(),
                    None => "missing".to_string(),
                }
            }),
            reason,
        });
    }
    (rows, details)
}

/// Whether `pod` belongs on this GameDeployment's screen: not controlled by anything else
/// (an orphan matching the selector is about to be adopted).
fn owned_by(pod: &Pod, uid: Option<&str>) -> bool {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match (controller, uid) {
        (Some(o), Some(uid)) => o.uid == uid,
        _ => true,
    }
}

/// When the machine entered `state`, as far as the record and the pod tell.
fn entered(state: State, record: Option<&Record>, pod: &Pod) -> Option<Timestamp> {
    match state {
        State::HookCheck => record.map(|r| r.started_at),
        State::Unready | State::GracefulWait => record.and_then(|r| r.unready_since),
        State::ImagePatched | State::Restarting | State::ContainerUpdated => {
            record.and_then(|r| r.patched_at)
        }
        // Both end with the readiness condition set back to True.
        State::Ready | State::Abandoned => pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == names::CONDITION_INPLACE_READY && c.status == "True")
            })
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0),
        State::Resizing
        | State::ResizeApplying
        | State::ResizeDeferred
        | State::ResizeInfeasible => record.map(|r| r.started_at),
        State::Pending | State::Failed | State::Unknown => None,
    }
}

/// What is left of the grace period, `due` once it is over (the images go in on the
/// operator's next look).
fn grace_left(record: Option<&Record>, grace: Option<i32>, now: Timestamp) -> Option<String> {
    let since = record?.unready_since?;
    let end = since
        .checked_add(SignedDuration::from_secs(i64::from(grace?.max(0))))
        .ok()?;
    let left = end.duration_since(now);
    Some(if left.is_positive() {
        human_duration(left)
    } else {
        "due".to_string()
    })
}

fn pod_table(rows: &[Row]) -> String {
    let with_grace = rows.iter().any(|r| r.grace.is_some());
    let with_hook = rows.iter().any(|r| r.hook.is_some());
    let with_reason = rows.iter().any(|r| r.reason.is_some());
    let mut headers = vec!["POD", "REV", "READY", "STATE", "FOR"];
    headers.extend(with_grace.then_some("GRACE"));
    headers.extend(with_hook.then_some("HOOK"));
    headers.extend(with_reason.then_some("REASON"));
    let optional = |cell: &Option<String>| cell.clone().unwrap_or_else(|| NONE.to_string());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.name.clone(),
                r.revision.clone(),
                r.ready.clone(),
                r.state.clone(),
                r.since.clone(),
            ];
            if with_grace {
                row.push(optional(&r.grace));
            }
            if with_hook {
                row.push(optional(&r.hook));
            }
            if with_reason {
                row.push(optional(&r.reason));
            }
            row
        })
        .collect();
    render_with(LAYOUT, &headers, &cells)
}

/// The strategy as the spec spells it.
fn strategy_name(t: &UpdateStrategyType) -> &'static str {
    match t {
        UpdateStrategyType::RollingUpdate => "RollingUpdate",
        UpdateStrategyType::InplaceUpdate => "InplaceUpdate",
        UpdateStrategyType::HotPatchUpdate => "HotPatchUpdate",
        UpdateStrategyType::OnDelete => "OnDelete",
    }
}

/// A revision without its `<name>-` prefix, cut to its first `max` characters (the header
/// shows them whole, so a cut one can be matched).
fn short_revision(gd_name: &str, revision: &str, max: usize) -> String {
    let hash = revision
        .strip_prefix(gd_name)
        .and_then(|r| r.strip_prefix('-'))
        .filter(|r| !r.is_empty())
        .unwrap_or(revision);
    if hash.chars().count() > max {
        hash.chars().take(max).collect()
    } else {
        hash.to_string()
    }
}

/// `text` cut to `max` characters keeping its end, where generated names differ.
fn shorten_end(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

/// `line` cut to `width` characters, marking the cut.
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Appends `text` after `lead`, wrapped at spaces to `width`, continuation lines indented
/// under the text; a word longer than a line is cut.
pub(crate) fn wrap_into(out: &mut String, lead: &str, text: &str, width: usize) {
    let indent = lead.chars().count();
    let room = width.saturating_sub(indent).max(1);
    let mut line = String::new();
    let mut first = true;
    let mut flush = |line: &mut String, out: &mut String| {
        let prefix = if first {
            lead.to_string()
        } else {
            " ".repeat(indent)
        };
        first = false;
        let _ = writeln!(out, "{}", fit(&format!("{prefix}{line}"), width));
        line.clear();
    };
    for word in text.split(' ') {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > room {
            flush(&mut line, out);
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    flush(&mut line, out);
}

#[cfg(test)]
mod tests;
