//! The operator's metrics after a real rollout on the embedded cluster (virtual time): the
//! in-place phases are measured from the pods' state annotations, the status gauges match the
//! GameDeployment, and its series leave with it.

use std::sync::Arc;
use std::time::Duration;

use gamedeploy_core::api::{GameDeployment, crds};
use gamedeploy_operator::controller::{Handle, Options};
use gamedeploy_operator::metrics::Metrics;
use kube::api::{Api, DeleteParams};

#[path = "support/embedded.rs"]
mod embedded;
use embedded::{cluster_with, seed_gd, set_image, start_kubelet, wait_for};

/// The value of the sample `name{labels}` in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn a_rollout_shows_in_place_phase_durations_and_status_gauges() {
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let gds: Api<GameDeployment> = Api::namespaced(admin.clone(), "default");
    start_kubelet(&server, &clock);
    let metrics = Arc::new(Metrics::new());
    let options = Options {
        seed: 9,
        instance: "test".into(),
        metrics: metrics.clone(),
        ..Default::default()
    };
    let operator = Handle::start(server.client_as("operator"), clock.clone(), options);
    let ready = |n: i32| {
        let gds = gds.clone();
        async move {
            gds.get("test-gamedeployment")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.ready_replicas == 8 && s.updated_ready_replicas == n)
        }
    };
    assert!(wait_for(|| ready(8)).await);
    // Eight pods settled on one revision: reconciles plan from the roster's tally.
    let plans = |from: &str| {
        let series = format!("bkbcs_gamedeployment_plans_total{{from=\"{from}\"}}");
        sample(&metrics.render(), &series).unwrap_or(0.0)
    };
    assert!(wait_for(|| async { plans("tally") > 0.0 }).await);
    let from_tally = plans("tally");
    set_image(&admin, "python:latest").await;
    assert!(wait_for(|| ready(5)).await);
    // The last status write lands after the pods are seen ready.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let text = metrics.render();
    let h = "bkbcs_gamedeployment_inplace_update_duration_seconds";
    for phase in ["unready_to_patched", "patched_to_ready", "total"] {
        let count = sample(&text, &format!("{h}_count{{phase=\"{phase}\"}}"));
        let sum = sample(&text, &format!("{h}_sum{{phase=\"{phase}\"}}"));
        assert_eq!(count, Some(5.0), "{phase} count in\n{text}");
        assert!(sum.is_some_and(|s| s > 0.0), "{phase} sum {sum:?}");
        eprintln!("{phase}: {:.1}s per pod", sum.unwrap() / 5.0);
    }
    // The 30 s grace is the unready-to-patched phase.
    let grace = sample(&text, &format!("{h}_sum{{phase=\"unready_to_patched\"}}")).unwrap() / 5.0;
    assert!(grace >= 30.0, "{grace}");
    let gd = r#"{namespace="default",name="test-gamedeployment"}"#;
    for (name, value) in [
        ("desired_replicas", 8.0),
        ("replicas", 8.0),
        ("ready_replicas", 8.0),
        ("updated_replicas", 5.0),
        ("updated_ready_replicas", 5.0),
    ] {
        assert_eq!(
            sample(&text, &format!("bkbcs_gamedeployment_{name}{gd}")),
            Some(value),
            "{name}"
        );
    }
    assert_eq!(
        sample(
            &text,
            r#"bkbcs_gamedeployment_inplace_machines{namespace="default",name="test-gamedeployment",state="Ready"}"#
        ),
        Some(5.0)
    );
    let writes = |verb: &str, resource: &str| {
        sample(
            &text,
            &format!(
                "bkbcs_gamedeployment_api_writes_total{{verb=\"{verb}\",resource=\"{resource}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(writes("create", "pods"), 8.0);
    // Per pod: unready (pods/status), images (pods), ready (pods/status).
    assert!(writes("patch", "pods") >= 5.0);
    assert!(writes("patch", "pods/status") >= 10.0);
    assert!(sample(&text, "bkbcs_gamedeployment_reconciles_total").unwrap() > 0.0);
    // The rollout needs the pods; once it stops at the partition (five pods updated, three
    // kept), the tally covers both revisions again.
    assert!(plans("pods") > 0.0);
    assert!(plans("tally") > from_tally, "{text}");

    gds.delete("test-gamedeployment", &DeleteParams::default())
        .await
        .unwrap();
    assert!(wait_for(|| async { !metrics.render().contains("test-gamedeployment") }).await);
    operator.shutdown().await;
}
