//! What `kubectl get pods` and `kubectl get gamedeployment` would print, for `gamedeploy
//! simulate -o table` and `gamedeploy status`. The rules are kubectl's: columns left-aligned
//! and separated by three spaces (its tabwriter: min width 6, padding 3), STATUS as `printPod`
//! computes it, AGE as apimachinery's `HumanDuration`.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use gamedeploy_core::api::StoredGameDeployment;
use kube::Resource;

const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

/// kubectl's age format: exact seconds up to 2 minutes, then coarser the older it gets
/// (`9s`, `8m6s`, `15m`, `3h4m`, `20h`, `2d3h`, `30d`, `2y45d`, `9y`).
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_rest(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_rest(hours / 24 / 365, "y", hours / 24 % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

fn with_rest(n: i64, unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{n}{unit}")
    } else {
        format!("{n}{unit}{rest}{rest_unit}")
    }
}

fn age(created: Option<&Time>, now: Timestamp) -> String {
    created.map_or_else(
        || "<unknown>".into(),
        |t| human_duration(now.duration_since(t.0)),
    )
}

/// The status (`True` or not) of the pod condition `type_`; `None` when the pod has none.
pub fn condition(pod: &Pod, type_: &str) -> Option<bool> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .map(|c| c.status == "True")
}

/// The READY column of `kubectl get pods`: ready containers out of the spec's.
pub fn pod_ready(pod: &Pod) -> String {
    let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    format!("{}/{}", pod_summary(pod).ready, total)
}

/// The STATUS column of `kubectl get pods` (kubectl's `printPod`; init containers and
/// scheduling gates are not modelled).
pub fn pod_status(pod: &Pod) -> String {
    pod_summary(pod).status
}

struct Summary {
    status: String,
    ready: usize,
    restarts: i64,
}

fn pod_summary(pod: &Pod) -> Summary {
    let status = pod.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let mut reason = status
        .and_then(|s| s.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.clone());
    let (mut ready, mut restarts, mut has_running) = (0, 0, false);
    let statuses = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    // kubectl walks them backwards, so the first container's reason wins.
    for c in statuses.iter().rev() {
        restarts += i64::from(c.restart_count);
        let state = c.state.clone().unwrap_or_default();
        if let Some(r) = state
            .waiting
            .and_then(|w| w.reason)
            .filter(|r| !r.is_empty())
        {
            reason = r;
        } else if let Some(t) = state.terminated {
            reason = match t.reason.filter(|r| !r.is_empty()) {
                Some(r) => r,
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("ExitCode:{}", t.exit_code),
            };
        } else if c.ready && state.running.is_some() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        reason = if condition(pod, "Ready") == Some(true) {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    if pod.metadata.deletion_timestamp.is_some() {
        let lost = status.and_then(|s| s.reason.as_deref()) == Some("NodeLost");
        if lost {
            reason = "Unknown".into();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".into();
        }
    }
    Summary {
        status: reason,
        ready,
        restarts,
    }
}

/// How a table spaces its columns: each is as wide as its widest cell plus `padding`, and at
/// least `min_width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub min_width: usize,
    pub padding: usize,
}

/// kubectl's tabwriter settings.
pub const KUBECTL: Layout = Layout {
    min_width: MIN_WIDTH,
    padding: PADDING,
};

/// Aligns cells the way kubectl's tabwriter does; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_with(KUBECTL, headers, rows)
}

/// [`render`] with other spacing, for screens that must fit a terminal's width.
pub fn render_with(layout: Layout, headers: &[&str], rows: &[Vec<String>]) -> String {
    let lines: Vec<Vec<&str>> = std::iter::once(headers.to_vec())
        .chain(rows.iter().map(|r| r.iter().map(String::as_str).collect()))
        .collect();
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            let widest = lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0);
            (widest + layout.padding).max(layout.min_width)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let last = line.len().saturating_sub(1);
        for (i, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

fn sorted_by_name<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    name: impl Fn(&T) -> Option<&str>,
) -> Vec<&'a T> {
    let mut v: Vec<&T> = items.into_iter().collect();
    v.sort_by(|a, b| name(a).cmp(&name(b)));
    v
}

/// `kubectl get pods` at `now`, sorted by name as the API lists them.
pub fn pods_table(pods: &[Pod], now: Timestamp) -> String {
    if pods.is_empty() {
        return "No resources found in default namespace.\n".into();
    }
    let rows: Vec<Vec<String>> = sorted_by_name(pods, |p| p.metadata.name.as_deref())
        .into_iter()
        .map(|p| {
            let s = pod_summary(p);
            vec![
                p.metadata.name.clone().unwrap_or_default(),
                pod_ready(p),
                s.status,
                s.restarts.to_string(),
                age(p.metadata.creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    render(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"], &rows)
}

/// `kubectl get gamedeployment` at `now`: the CRD's printer columns. Counts the status does
/// not have yet print empty, as kubectl does for a missing column value.
pub fn gamedeployments_table(gds: &[StoredGameDeployment], now: Timestamp) -> String {
    if gds.is_empty() {
        return "No resources found in default namespace.\n".into();
    }
    let rows: Vec<Vec<String>> = sorted_by_name(gds, |g| g.meta().name.as_deref())
        .into_iter()
        .map(|g| {
            let status = g.status();
            let desired = match g {
                StoredGameDeployment::Decoded(gd) => gd.spec.replicas.map(|r| r.to_string()),
                StoredGameDeployment::Undecodable(u) => u.stored_replicas().map(|r| r.to_string()),
            };
            let count = |f: fn(&gamedeploy_core::api::GameDeploymentStatus) -> i32| {
                status.map(|s| f(s).to_string()).unwrap_or_default()
            };
            vec![
                g.meta().name.clone().unwrap_or_default(),
                desired.unwrap_or_default(),
                count(|s| s.updated_replicas),
                count(|s| s.updated_ready_replicas),
                count(|s| s.ready_replicas),
                count(|s| s.replicas),
                age(g.meta().creation_timestamp.as_ref(), now),
            ]
        })
        .collect();
    render(
        &[
            "NAME",
            "DESIRED",
            "UPDATED",
            "UPDATED_READY",
            "READY",
            "TOTAL",
            "AGE",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests;
