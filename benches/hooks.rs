//! The hook engine's cost (issue 9): measurements per second the operator's HookRun controller
//! sustains for many concurrent HookRuns against a loopback web endpoint, in real time.
//! `cargo bench --bench hooks`; `BENCH_HOOKRUNS` (default 1000) runs, each measuring
//! `BENCH_MEASUREMENTS` (default 10) times, 10 ms apart, so the runs ask for far more than the
//! operator can take and the rate is its capacity. Results go in BENCHMARKS.md.

use std::time::Instant;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, SystemClock};
use gamedeploy_core::api::{HookPhase, HookRun, crds};
use gamedeploy_operator::controller::{Handle, Options};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[path = "support/env.rs"]
mod env;
#[path = "../tests/support/hook_server.rs"]
mod hook_server;
use env::env_usize;

async fn run(runs: usize, count: usize) {
    let hook = hook_server::HookServer::start(|_, _| hook_server::ok(json!({"ok": true}))).await;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let server = ApiServer::new(clock.clone());
    let admin = server.client_as("bench");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api.create(&PostParams::default(), &crd).await.unwrap();
    }
    let api: Api<HookRun> = Api::namespaced(admin.clone(), "default");
    for i in 0..runs {
        let run: HookRun = serde_json::from_value(json!({
            "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "HookRun",
            "metadata": {"name": format!("run-{i}"), "namespace": "default"},
            "spec": {"metrics": [{
                "name": "ok", "count": count, "interval": "10ms",
                "successCondition": "result.ok == true",
                "provider": {"web": {"url": hook.url(&format!("/ok?run={i}"))}}
            }]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &run).await.unwrap();
    }
    let started = Instant::now();
    let operator = Handle::start(
        server.client_as("operator"),
        clock.clone(),
        Options::default(),
    );
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let done = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(HookPhase::Successful))
            .count();
        if done == runs {
            break;
        }
    }
    let elapsed = started.elapsed();
    operator.shutdown().await;
    let requests = hook.requests.load(std::sync::atomic::Ordering::SeqCst);
    let status_writes: u64 = server
        .request_counts()
        .iter()
        .filter(|r| r.client == "operator" && r.resource == "hookruns" && r.subresource == "status")
        .map(|r| r.count)
        .sum();
    println!(
        "hooks: {runs} HookRuns x {count} measurements: {requests} requests in {:.2} s = {:.0} measurements/s; {status_writes} status writes ({:.2} per measurement)",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        status_writes as f64 / requests.max(1) as f64,
    );
}

fn main() {
    let runs = env_usize("BENCH_HOOKRUNS", 1000);
    let count = env_usize("BENCH_MEASUREMENTS", 10);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(runs, count));
}
