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
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-01-01T01:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:59:51Z"},
            "spec": {"containers": [{"name": "python", "image": "python:3.9"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn container(ready: bool, state: serde_json::Value, restarts: i32) -> serde_json::Value {
        json!({"name": "python", "image": "python:3.9", "imageID": "", "ready": ready,
               "restartCount": restarts, "state": state})
    }

    #[test]
    fn ages_follow_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (9, "9s"),
            (119, "119s"),
            (120, "2m"),
            (486, "8m6s"),
            (529, "8m49s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600 + 4 * 60 + 5, "3h4m"),
            (5 * 3600, "5h"),
            (20 * 3600 + 59 * 60, "20h"),
            (51 * 3600, "2d3h"),
            (96 * 3600, "4d"),
            (30 * 86400, "30d"),
            ((2 * 365 + 45) * 86400, "2y45d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
    }

    #[test]
    fn status_column_follows_kubectl() {
        let running = json!({"running": {"startedAt": NOW}});
        let waiting = |r: &str| json!({"waiting": {"reason": r}});
        let cases = [
            (json!({"phase": "Pending"}), "Pending"),
            (json!({}), "Pending"),
            (
                json!({"phase": "Running", "containerStatuses": [container(true, running.clone(), 0)]}),
                "Running",
            ),
            (
                json!({"phase": "Pending", "containerStatuses": [container(false, waiting("ContainerCreating"), 0)]}),
                "ContainerCreating",
            ),
            (
                json!({"phase": "Pending", "containerStatuses": [container(false, waiting("ImagePullBackOff"), 0)]}),
                "ImagePullBackOff",
            ),
            (
                json!({"phase": "Running", "containerStatuses": [container(false, waiting("CrashLoopBackOff"), 3)]}),
                "CrashLoopBackOff",
            ),
            (
                json!({"phase": "Running", "containerStatuses": [container(false, json!({"terminated": {"exitCode": 1}}), 0)]}),
                "ExitCode:1",
            ),
            (
                json!({"phase": "Running", "containerStatuses": [container(false, json!({"terminated": {"exitCode": 0, "signal": 9}}), 0)]}),
                "Signal:9",
            ),
            (json!({"phase": "Failed", "reason": "Evicted"}), "Evicted"),
        ];
        for (status, want) in cases {
            assert_eq!(pod_status(&pod("p", status.clone())), want, "{status}");
        }
        let mut dying = pod(
            "p",
            json!({"phase": "Running", "containerStatuses": [container(true, running, 0)]}),
        );
        dying.metadata.deletion_timestamp = Some(Time(now()));
        assert_eq!(pod_status(&dying), "Terminating");
        dying.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert_ne!(
            pod_status(&dying),
            "Terminating",
            "a finished pod is not terminating"
        );
    }

    #[test]
    fn completed_sidecar_with_a_running_container_reads_running_or_not_ready() {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {}}}]}
        }))
        .unwrap();
        assert_eq!(pod_status(&p), "Running");
        p.status.as_mut().unwrap().conditions = None;
        assert_eq!(pod_status(&p), "NotReady");
    }

    #[test]
    fn pods_table_aligns_like_kubectl() {
        let running = json!({"running": {"startedAt": NOW}});
        let pods = vec![
            pod(
                "test-gamedeployment-wzxm7",
                json!({"phase": "Running",
                "containerStatuses": [container(true, running.clone(), 1)]}),
            ),
            pod(
                "test-gamedeployment-49m5l",
                json!({"phase": "Pending",
                "containerStatuses": [container(false, json!({"waiting": {"reason": "ImagePullBackOff"}}), 0)]}),
            ),
        ];
        let want = "\
NAME                        READY   STATUS             RESTARTS   AGE
test-gamedeployment-49m5l   0/1     ImagePullBackOff   0          9s
test-gamedeployment-wzxm7   1/1     Running            1          9s
";
        assert_eq!(pods_table(&pods, now()), want);
        assert_eq!(
            pods_table(&[], now()),
            "No resources found in default namespace.\n"
        );
    }

    #[test]
    fn gamedeployment_table_matches_the_seed() {
        let gd: gamedeploy_core::api::GameDeployment = serde_json::from_value(json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "metadata": {"name": "test-gamedeployment", "creationTimestamp": "2026-01-01T00:51:11Z"},
            "spec": {"replicas": 8, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
            "status": {"replicas": 8, "readyReplicas": 8, "updatedReplicas": 5, "updatedReadyReplicas": 5}
        }))
        .unwrap();
        let want = "\
NAME                  DESIRED   UPDATED   UPDATED_READY   READY   TOTAL   AGE
test-gamedeployment   8         5         5               8       8       8m49s
";
        assert_eq!(gamedeployments_table(&[gd.clone().into()], now()), want);
        let mut fresh = gd;
        fresh.status = None;
        assert_eq!(
            gamedeployments_table(&[fresh.into()], now()).lines().nth(1),
            // Column widths 10 + 10 + 16 + 8 + 8, minus the "8".
            Some(format!("test-gamedeployment   8{}8m49s", " ".repeat(51)).as_str())
        );
    }

    /// A spec the operator cannot decode still has a row, with the replicas as stored.
    #[test]
    fn an_undecodable_gamedeployment_shows_its_stored_replicas() {
        let gd = StoredGameDeployment::from_json(
            &json!({
                "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
                "metadata": {"name": "huge", "creationTimestamp": "2026-01-01T00:51:11Z"},
                "spec": {"replicas": 1_099_511_627_776_i64},
                "status": {"replicas": 0}
            })
            .to_string(),
        )
        .unwrap();
        assert!(gd.decoded().is_none());
        let table = gamedeployments_table(&[gd], now());
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, ["huge", "1099511627776", "0", "0", "0", "0", "8m49s"]);
    }

    #[test]
    fn render_pads_narrow_columns_to_the_minimum_width() {
        assert_eq!(
            render(&["A", "B"], &[vec!["x".into(), "y".into()]]),
            "A     B\nx     y\n"
        );
    }
}
