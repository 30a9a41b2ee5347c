//! Issue 22: judging a measurement (JSONPath and CEL over up to 1 MiB) runs on tokio's blocking
//! pool, at most two at once, within a deadline. A judging that never ends becomes an Error
//! measurement saying so, the run goes on to its outcome, and the controller still stops at
//! once while the judging threads are stuck. The slow condition is a test hook on the
//! context; real time, because a blocked thread does not run on virtual time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use gamedeploy_core::api::{HookPhase, HookRun, crds};
use gamedeploy_core::hookrun::{Observation, ProviderCall};
use gamedeploy_operator::hookruns::providers::Measure;
use gamedeploy_operator::hookruns::{self, HookRunContext, JUDGE_CONCURRENCY};
use kube::api::{Api, PostParams};
use serde_json::json;

#[path = "support/embedded.rs"]
mod embedded;
use embedded::{cluster_with, seed_gd, wait_for};

/// Every web measurement answers `{"ok": true}` at once.
struct Yes;

impl Measure for Yes {
    fn measure<'a>(&'a self, _call: &'a ProviderCall) -> BoxFuture<'a, Observation> {
        Box::pin(async {
            Observation::Http {
                status: 200,
                body: r#"{"ok": true}"#.into(),
            }
        })
    }
}

/// A judging that blocks its thread until released, counting how many started.
#[derive(Default)]
struct Stuck {
    started: AtomicUsize,
    released: Mutex<bool>,
    wake: Condvar,
}

impl Stuck {
    fn block(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut released = self.released.lock().unwrap();
        while !*released {
            released = self.wake.wait(released).unwrap();
        }
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.wake.notify_all();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judging_past_its_deadline_is_an_error_and_the_controller_still_stops() {
    let (server, clock, admin) = cluster_with(crds(), &seed_gd()).await;
    let run: HookRun = serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
        "metadata": {"name": "expensive", "namespace": "default"},
        "spec": {"metrics": [{
            "name": "slow", "interval": "1s", "consecutiveErrorLimit": 1,
            "successCondition": "result.ok == true",
            "provider": {"web": {"url": "http://game:8080/ready"}}
        }]}
    }))
    .unwrap();
    let runs: Api<HookRun> = Api::namespaced(admin.clone(), "default");
    runs.create(&PostParams::default(), &run).await.unwrap();

    let stuck = Arc::new(Stuck::default());
    let hook = stuck.clone();
    let ctx = HookRunContext::new(
        server.client_as("operator"),
        clock,
        Arc::new(Yes),
        "test",
        Default::default(),
        Arc::new(gamedeploy_operator::metrics::Metrics::new()),
    )
    .with_judge_deadline(Duration::from_millis(200))
    .with_judge_hook(Arc::new(move |_metric: &str| hook.block()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(hookruns::run(
        Api::all(server.client_as("operator")),
        Arc::new(ctx),
        async {
            let _ = stopped.await;
        },
    ));

    let ended = || async {
        runs.get("expensive")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_completed())
    };
    assert!(
        wait_for(ended).await,
        "the run ends although no judging ever does"
    );
    let status = runs.get("expensive").await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(HookPhase::Error), "{status:?}");
    let measurements = &status.metric_results[0].measurements;
    assert_eq!(measurements.len(), 2, "{measurements:?}");
    for m in measurements {
        assert_eq!(m.phase, HookPhase::Error);
        assert_eq!(
            m.message,
            "judging the measurement (jsonPath and conditions) took longer than 200ms; simplify the conditions or the answer"
        );
    }
    assert_eq!(
        stuck.started.load(Ordering::SeqCst),
        JUDGE_CONCURRENCY,
        "each stuck judging holds one of the two slots"
    );

    // Both judging threads are still stuck: the controller stops anyway.
    stop.send(()).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), controller).await;
    assert!(stopped.is_ok(), "the controller stops while judgings run");
    stuck.release();
}
