//! The pod writes of one reconcile (`crates/operator/src/execute.rs`), sent at once against a
//! slow API server and settled in plan order: counted requests in flight, never wall time (the
//! clock is tokio's, paused).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use embedded_apiserver::{ApiServer, ApiService, FaultConfig};
use gamedeploy_clock::{SharedClock, TokioClock};
use gamedeploy_core::api::{StoredGameDeployment, crds};
use gamedeploy_core::inplace::{Endpoint, PodWrite};
use gamedeploy_core::names;
use gamedeploy_core::planner::model::{
    ApiErrorKind, Consequence, Effect, EventNote, HookRunToCreate, OnFailure, Plan, Regarding,
    Report, Write,
};
use gamedeploy_operator::events::Events;
use gamedeploy_operator::execute::{self, Io, MAX_IN_FLIGHT, Writes};
use gamedeploy_operator::expectations::Expectations;
use gamedeploy_operator::metrics::Metrics;
use gamedeploy_operator::write_gate::WriteGate;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};

const OPERATOR: &str = "operator";

/// A GameDeployment `gd` in `default`, stored, as the executor is given it.
async fn cluster() -> (ApiServer, StoredGameDeployment) {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(jiff::Timestamp::UNIX_EPOCH));
    let server = ApiServer::new(clock);
    let admin = server.client_as("test");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api.create(&PostParams::default(), &crd).await.unwrap();
    }
    let gd: gamedeploy_core::api::GameDeployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "tkex.tencent.com/v1alpha1",
        "kind": "GameDeployment",
        "metadata": {"name": "gd", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "gd"}},
            "template": {
                "metadata": {"labels": {"app": "gd"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}
            }
        }
    }))
    .unwrap();
    let gds: Api<gamedeploy_core::api::GameDeployment> = Api::namespaced(admin.clone(), "default");
    gds.create(&PostParams::default(), &gd).await.unwrap();
    let stored: Api<StoredGameDeployment> = Api::namespaced(admin, "default");
    let gd = stored.get("gd").await.unwrap();
    (server, gd)
}

/// A patch of a pod that does not exist (so the server answers 404), in `chain` if given,
/// whose failure is `on_failure`.
fn patch(pod: &str, chain: Option<&str>, on_failure: OnFailure) -> Effect {
    Effect::WritePod {
        pod: pod.to_string(),
        write: Write {
            object: PodWrite::new(Endpoint::Pod, None),
            on_success: None,
            on_failure,
            chain: chain.map(str::to_string),
            gates_chain: chain.is_some(),
        },
    }
}

/// A failure counted and retried, a missing pod tolerated: a release gate's.
fn quiet() -> OnFailure {
    OnFailure {
        tolerated: Some(ApiErrorKind::NotFound),
        conflict_retries: false,
        consequence: Consequence::Retried,
    }
}

/// A failure reported as a condition and a Warning event, as an in-place checkpoint's.
fn reported(pod: &str) -> OnFailure {
    OnFailure {
        tolerated: None,
        conflict_retries: false,
        consequence: Consequence::Reported(Report {
            condition: names::CONDITION_FAILED_UPDATE,
            reason: names::EVENT_FAILED_INPLACE,
            prefix: format!("update Pod {pod} in place failed: "),
            event: Some(Regarding::GameDeployment),
        }),
    }
}

/// Runs `plan` for `gd` as the operator, through `client`.
async fn run(
    client: kube::Client,
    gd: &StoredGameDeployment,
    plan: Plan,
) -> Result<Writes, gamedeploy_operator::Error> {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(jiff::Timestamp::UNIX_EPOCH));
    let (gate, metrics) = (WriteGate::default(), Metrics::new());
    let events = Events::new(client.clone(), clock, "test");
    let expectations = Expectations::default();
    let io = Io {
        client: &client,
        gate: &gate,
        metrics: &metrics,
        events: &events,
        expectations: &expectations,
    };
    let now = jiff::Timestamp::UNIX_EPOCH;
    execute::run_plan(io, gd, &[], plan, now, None)
        .await
        .map(|(writes, _, _)| writes)
}

fn requests(server: &ApiServer, verb: &str, resource: &str) -> u64 {
    server
        .request_counts()
        .iter()
        .filter(|c| c.client == OPERATOR && c.verb == verb && c.resource == resource)
        .map(|c| c.count)
        .sum()
}

/// Every pod write of the plan waits 50 ms for its answer: after the first has waited the
/// window, the others go too, never more than the bound at once, and every one is counted.
#[tokio::test(start_paused = true)]
async fn a_slow_server_has_the_bound_of_independent_pod_writes_in_flight_at_once() {
    let (server, gd) = cluster().await;
    server.set_faults(Some(FaultConfig {
        latency: Duration::from_millis(50),
        client: Some(OPERATOR.into()),
        ..FaultConfig::default()
    }));
    let k = 2 * MAX_IN_FLIGHT + 5;
    let effects = (0..k).map(|i| patch(&format!("p{i}"), None, quiet()));
    let plan = Plan {
        effects: effects.collect(),
        requeue_at: None,
    };
    let client = server.client_as(OPERATOR);
    let running = tokio::spawn(async move { run(client, &gd, plan).await.unwrap() });
    let (mut most, mut samples) = (0, 0);
    while !running.is_finished() {
        let sent = requests(&server, "patch", "pods");
        let answered = server.error_responses(OPERATOR, 404);
        most = most.max(sent - answered);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let writes = running.await.unwrap();
    assert!(samples > 10, "sampled {samples} times");
    assert_eq!(
        most, MAX_IN_FLIGHT as u64,
        "writes in flight at once, at most"
    );
    assert_eq!(requests(&server, "patch", "pods"), k as u64);
    assert_eq!(
        writes,
        Writes {
            pods: k,
            other: 0,
            failed: 0,
        }
    );
}

/// Against a server that answers at once, nothing is sent ahead: one write in flight at a
/// time, in plan order, as the simulator's runs were before writes went at once.
#[tokio::test(start_paused = true)]
async fn a_server_that_answers_at_once_gets_the_writes_one_after_another() {
    let (server, gd) = cluster().await;
    let keeper = Keeper::default();
    let client = kube::Client::new(keeper.wrap(server.service(Some(OPERATOR))), "default");
    keeper.open();
    let effects = (0..8).map(|i| patch(&format!("p{i}"), None, quiet()));
    let plan = Plan {
        effects: effects.collect(),
        requeue_at: None,
    };
    run(client, &gd, plan).await.unwrap();
    let kept = keeper.0.lock().unwrap();
    assert_eq!(kept.most, 1, "one write in flight at a time");
    let order: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    assert_eq!(kept.arrived, order);
}

/// A chain whose first write fails sends none of the rest (its HookRun, counted as a write if
/// it were tried), raises none of its events, and does not hold back the writes of other pods,
/// sent while it waits.
#[tokio::test(start_paused = true)]
async fn a_chain_whose_first_write_fails_sends_nothing_more_of_it() {
    let (server, gd) = cluster().await;
    let keeper = Keeper::default();
    let client = kube::Client::new(keeper.wrap(server.service(Some(OPERATOR))), "default");
    let chain = "in-place/gone";
    let note = EventNote {
        regarding: Regarding::GameDeployment,
        warning: false,
        reason: "ChainEvent".into(),
        message: "after the gone pod's checkpoint".into(),
    };
    let plan = Plan {
        effects: vec![
            patch("gone", Some(chain), reported("gone")),
            Effect::CreateHookRun(Write {
                object: HookRunToCreate::Unbuildable {
                    name: "r".into(),
                    why: "tried: its chain should have stopped".into(),
                },
                on_success: None,
                on_failure: reported("gone"),
                chain: Some(chain.into()),
                gates_chain: false,
            }),
            Effect::Event {
                note,
                chain: Some(chain.into()),
            },
            patch("other", None, quiet()),
            patch("third", None, quiet()),
        ],
        requeue_at: None,
    };
    let running = tokio::spawn(async move { run(client, &gd, plan).await.unwrap() });
    // The other pods' writes go while the checkpoint is held.
    while keeper.0.lock().unwrap().held.len() < 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..3 {
        keeper.release_last();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let writes = running.await.unwrap();
    assert_eq!(keeper.0.lock().unwrap().most, 3);
    assert_eq!(requests(&server, "patch", "pods"), 3);
    assert_eq!(
        writes,
        Writes {
            pods: 3,
            other: 0,
            failed: 1,
        }
    );
    let events = events_in_order(&server).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("update Pod gone in place failed: "));
}

/// Answers that come in reverse order are settled in plan order: the failures in the status
/// condition and the Warning events read in the plan's order.
#[tokio::test(start_paused = true)]
async fn failures_and_events_follow_the_plan_whatever_order_the_answers_come_in() {
    let (server, gd) = cluster().await;
    let keeper = Keeper::default();
    let client = kube::Client::new(keeper.wrap(server.service(Some(OPERATOR))), "default");
    let pods: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let mut effects: Vec<Effect> = pods
        .iter()
        .map(|p| patch(p, Some(&format!("in-place/{p}")), reported(p)))
        .collect();
    let status = gd.status().cloned().unwrap_or_default();
    effects.push(Effect::WriteStatus(status));
    let plan = Plan {
        effects,
        requeue_at: None,
    };
    let running = tokio::spawn(async move { run(client, &gd, plan).await.unwrap() });
    // All held; then let them through last first, each answered before the next goes.
    while keeper.0.lock().unwrap().held.len() < pods.len() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..pods.len() {
        keeper.release_last();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let writes = running.await.unwrap();
    assert_eq!(writes.failed, pods.len());
    let expected: Vec<String> = pods
        .iter()
        .map(|p| format!("update Pod {p} in place failed: "))
        .collect();
    let events = events_in_order(&server).await;
    assert_eq!(events.len(), pods.len());
    for (event, prefix) in events.iter().zip(&expected) {
        assert!(event.starts_with(prefix.as_str()), "{event} / {prefix}");
    }
    let stored: Api<StoredGameDeployment> = Api::namespaced(server.client(), "default");
    let status = stored.get("gd").await.unwrap().status().cloned().unwrap();
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == names::CONDITION_FAILED_UPDATE)
        .expect("the failures' condition");
    let said: Vec<&str> = condition.message.split("; ").collect();
    assert_eq!(said.len(), pods.len());
    for (message, prefix) in said.iter().zip(&expected) {
        assert!(message.starts_with(prefix.as_str()), "{message} / {prefix}");
    }
}

/// The notes of the events stored, in the order they were created.
async fn events_in_order(server: &ApiServer) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(server.client(), "default");
    let mut events = api.list(&ListParams::default()).await.unwrap().items;
    events.sort_by_key(|e| {
        e.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
    });
    events.into_iter().filter_map(|e| e.note).collect()
}

/// Holds pod patches until the test lets them through, and counts them.
#[derive(Clone, Default)]
struct Keeper(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// Patches let through as they come.
    open: bool,
    held: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Pods patched, in the order the patches came.
    arrived: Vec<String>,
    in_flight: usize,
    most: usize,
}

impl Keeper {
    fn wrap(&self, inner: ApiService) -> Holding {
        Holding {
            inner,
            keeper: self.clone(),
        }
    }

    fn open(&self) {
        self.0.lock().unwrap().open = true;
    }

    fn release_last(&self) {
        if let Some(tx) = self.0.lock().unwrap().held.pop() {
            let _ = tx.send(());
        }
    }
}

/// The API server behind a [`Keeper`].
#[derive(Clone)]
struct Holding {
    inner: ApiService,
    keeper: Keeper,
}

type Answered = http::Response<embedded_apiserver::Body>;

impl tower::Service<http::Request<kube::client::Body>> for Holding {
    type Response = Answered;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answered, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        let pod = (req.method() == http::Method::PATCH)
            .then(|| path.split_once("/pods/"))
            .flatten()
            .map(|(_, name)| name.split('/').next().unwrap_or_default().to_string());
        let (mut inner, keeper) = (self.inner.clone(), self.keeper.clone());
        Box::pin(async move {
            let Some(pod) = pod else {
                return tower::Service::call(&mut inner, req).await;
            };
            let wait = {
                let mut kept = keeper.0.lock().unwrap();
                kept.arrived.push(pod);
                kept.in_flight += 1;
                kept.most = kept.most.max(kept.in_flight);
                let (tx, rx) = tokio::sync::oneshot::channel();
                if kept.open {
                    let _ = tx.send(());
                } else {
                    kept.held.push(tx);
                }
                rx
            };
            let _ = wait.await;
            let answer = tower::Service::call(&mut inner, req).await;
            keeper.0.lock().unwrap().in_flight -= 1;
            answer
        })
    }
}
