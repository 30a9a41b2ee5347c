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
