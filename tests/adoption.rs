//! Adoption, release and node deletion costs with the real operator on the embedded API server,
//! on virtual time. No kubelet runs: pods stay Pending (and a bound pod being deleted stays
//! terminating), which is enough to see which pods the operator claims and deletes.

use std::sync::Arc;
use std::time::Duration;

use embedded_apiserver::ApiServer;
use gamedeploy_clock::{SharedClock, TokioClock};
use gamedeploy_core::api::{GameDeployment, crds};
use gamedeploy_operator::controller::{Handle, Options};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const GD: &str = "game";
const NODE_COST: &str = "io.tencent.bcs.dev/node-deletion-cost";

struct Cluster {
    _server: ApiServer,
    admin: kube::Client,
    operator: Handle,
    pods: Api<Pod>,
    gds: Api<GameDeployment>,
}

/// The embedded server with the CRDs, and the operator running.
async fn cluster() -> Cluster {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let server = ApiServer::new(clock.clone());
    let admin = server.client_as("scenario");
    let crd_api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for crd in crds() {
        crd_api.create(&PostParams::default(), &crd).await.unwrap();
    }
    let options = Options {
        seed: 3,
        instance: "test".into(),
        concurrency: 4,
        ..Default::default()
    };
    let operator = Handle::start(server.client_as("operator"), clock, options);
    Cluster {
        pods: Api::namespaced(admin.clone(), "default"),
        gds: Api::namespaced(admin.clone(), "default"),
        admin,
        operator,
        _server: server,
    }
}

/// A GameDeployment selecting `app=game`.
fn game(replicas: i32, paused: bool) -> GameDeployment {
    serde_json::from_value(json!({
        "apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
        "metadata": {"name": GD, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "game"}},
            "template": {
                "metadata": {"labels": {"app": "game"}},
                "spec": {"containers": [{"name": "server", "image": "game:1"}]}
            },
            "updateStrategy": {"type": "InplaceUpdate", "paused": paused}
        }
    }))
    .unwrap()
}

/// A pod with `labels`, not controlled by anything unless `owner_refs` says so.
fn pod(name: &str, labels: Value, owner_refs: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels, "ownerReferences": owner_refs},
        "spec": {"containers": [{"name": "server", "image": "game:1"}]}
    }))
    .unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..240 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting until {what}");
}

impl Cluster {
    async fn gd_uid(&self) -> String {
        self.gds.get(GD).await.unwrap().uid().unwrap()
    }

    async fn all_pods(&self) -> Vec<Pod> {
        self.pods.list(&ListParams::default()).await.unwrap().items
    }

    /// Pods the GameDeployment controls and that are not being deleted.
    async fn live_owned(&self) -> Vec<Pod> {
        let uid = self.gd_uid().await;
        self.all_pods()
            .await
            .into_iter()
            .filter(|p| controller_uid(p).as_deref() == Some(uid.as_str()))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    async fn status_replicas(&self) -> Option<i32> {
        self.gds.get(GD).await.unwrap().status.map(|s| s.replicas)
    }

    async fn events(&self, reason: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.admin.clone(), "default");
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect()
    }

    async fn set_replicas(&self, replicas: i32) {
        let patch = json!({"spec": {"replicas": replicas}});
        self.gds
            .patch(GD, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

fn controller_uid(p: &Pod) -> Option<String> {
    p.owner_references()
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

#[tokio::test(start_paused = true)]
async fn orphans_are_adopted_counted_and_scaled_down_when_replicas_are_exceeded() {
    let c = cluster().await;
    // Paused: an adopted pod has no revision label and would otherwise be recreated at once.
    c.pods
        .create(
            &PostParams::default(),
            &pod("early", json!({"app": "game"}), json!([])),
        )
        .await
        .unwrap();
    c.gds
        .create(&PostParams::default(), &game(2, true))
        .await
        .unwrap();
    wait_for(
        "the early orphan is adopted and one pod created",
        || async { c.live_owned().await.len() == 2 && c.status_replicas().await == Some(2) },
    )
    .await;
    let early = c.pods.get("early").await.unwrap();
    assert_eq!(controller_uid(&early), Some(c.gd_uid().await));
    assert_eq!(
        c.all_pods().await.len(),
        2,
        "the adopted pod counts: one created"
    );

    // A later orphan exceeds replicas: it is adopted, and as the newest old pod, deleted.
    tokio::time::sleep(Duration::from_secs(10)).await;
    c.pods
        .create(
            &PostParams::default(),
            &pod("late", json!({"app": "game"}), json!([])),
        )
        .await
        .unwrap();
    wait_for("the late orphan is adopted and deleted", || async {
        c.pods.get_opt("late").await.unwrap().is_none()
    })
    .await;
    let adopted = c.events("SuccessfulAdopt").await;
    assert!(
        adopted.iter().any(|n| n.contains("Pod late")),
        "{adopted:?}"
    );
    let owned: Vec<String> = c.live_owned().await.iter().map(|p| p.name_any()).collect();
    assert_eq!(owned.len(), 2);
    assert!(owned.contains(&"early".to_string()), "{owned:?}");
    // A count-only status change is coalesced for up to a second after the last status write.
    let deleted_at = tokio::time::Instant::now();
    wait_for("the status counts two replicas again", || async {
        c.status_replicas().await == Some(2)
    })
    .await;
    assert!(
        deleted_at.elapsed() <= Duration::from_millis(1500),
        "status stale for more than a second"
    );
    c.operator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_pod_relabeled_out_of_the_selector_is_released_and_replaced() {
    let c = cluster().await;
    c.gds
        .create(&PostParams::default(), &game(2, false))
        .await
        .unwrap();
    wait_for("two pods", || async { c.live_owned().await.len() == 2 }).await;
    let victim = c.live_owned().await[0].name_any();
    let patch = json!({"metadata": {"labels": {"app": "retired"}}});
    c.pods
        .patch(&victim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("the relabeled pod is released and replaced", || async {
        let released = c
            .pods
            .get(&victim)
            .await
            .is_ok_and(|p| p.owner_references().is_empty());
        let owned = c.live_owned().await;
        released && owned.len() == 2 && owned.iter().all(|p| p.name_any() != victim)
    })
    .await;
    let released = c.events("SuccessfulRelease").await;
    assert!(released.iter().any(|n| n.contains(&victim)), "{released:?}");
    // Released for good: the pod stays, nobody adopts it back.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        c.pods
            .get(&victim)
            .await
            .unwrap()
            .owner_references()
            .is_empty()
    );
    assert_eq!(c.live_owned().await.len(), 2);
    c.operator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_pod_another_controller_owns_is_left_alone() {
    let c = cluster().await;
    // A real owner, so the garbage collector keeps the pod.
    let leases: Api<Lease> = Api::namespaced(c.admin.clone(), "default");
    let lease = leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}, "spec": {}})).unwrap(),
        )
        .await
        .unwrap();
    let foreign = c
        .pods
        .create(
            &PostParams::default(),
            &pod(
                "foreign",
                json!({"app": "game"}),
                json!([{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "name": "other", "uid": lease.uid(), "controller": true}]),
            ),
        )
        .await
        .unwrap();
    c.gds
        .create(&PostParams::default(), &game(2, false))
        .await
        .unwrap();
    wait_for("two pods of its own", || async {
        c.live_owned().await.len() == 2 && c.status_replicas().await == Some(2)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = c.pods.get("foreign").await.unwrap();
    assert_eq!(
        after.resource_version(),
        foreign.resource_version(),
        "untouched"
    );
    assert_eq!(c.live_owned().await.len(), 2);
    assert_eq!(c.all_pods().await.len(), 3);
    c.operator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn scale_down_deletes_pods_on_the_cheapest_nodes_first() {
    let c = cluster().await;
    let nodes: Api<Node> = Api::all(c.admin.clone());
    for (name, cost) in [
        ("cheap", Some("1")),
        ("dear", Some("100")),
        ("plain", None),
        ("garbled", Some("not-a-number")),
    ] {
        let annotations = cost.map(|v| json!({NODE_COST: v})).unwrap_or(json!({}));
        let node = json!({"metadata": {"name": name, "annotations": annotations}});
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node).unwrap(),
            )
            .await
            .unwrap();
    }
    c.gds
        .create(&PostParams::default(), &game(8, false))
        .await
        .unwrap();
    wait_for("eight pods", || async { c.live_owned().await.len() == 8 }).await;
    let mut pods = c.live_owned().await;
    pods.sort_by_key(|p| p.name_any());
    let created: std::collections::BTreeSet<_> = pods
        .iter()
        .map(|p| p.metadata.creation_timestamp.clone())
        .collect();
    assert_eq!(
        created.len(),
        1,
        "one creation time: only node costs tell them apart"
    );
    // Two pods on each node, bound as the scheduler would.
    let mut on_node = std::collections::BTreeMap::new();
    for (i, p) in pods.iter().enumerate() {
        let node = ["cheap", "dear", "plain", "garbled"][i % 4];
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": p.name_any()}, "target": {"kind": "Node", "name": node}});
        c.pods
            .create_subresource::<Value, Value>(
                "binding",
                &p.name_any(),
                &PostParams::default(),
                &binding,
            )
            .await
            .unwrap();
        on_node.insert(p.name_any(), node);
    }

    // 8 → 6: cheap first. 6 → 2: then dear; nodes without a usable cost go last.
    c.set_replicas(6).await;
    wait_for("two pods deleted", || async {
        c.live_owned().await.len() == 6
    })
    .await;
    let deleting = |pods: Vec<Pod>| -> Vec<&'static str> {
        let mut nodes: Vec<&str> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .map(|p| on_node[&p.name_any()])
            .collect();
        nodes.sort();
        nodes
    };
    assert_eq!(deleting(c.all_pods().await), ["cheap", "cheap"]);
    c.set_replicas(4).await;
    wait_for("four pods left", || async {
        c.live_owned().await.len() == 4
    })
    .await;
    assert_eq!(
        deleting(c.all_pods().await),
        ["cheap", "cheap", "dear", "dear"]
    );
    c.operator.shutdown().await;
}

/// Claiming evaluates the selector on a pod when it joins the GameDeployment or changes labels,
/// not on every pod at every reconcile (issue 27: a reconcile costs what changed).
#[tokio::test(start_paused = true)]
async fn claiming_evaluates_the_selector_once_per_new_or_relabelled_pod() {
    let c = cluster().await;
    c.gds
        .create(&PostParams::default(), &game(5, false))
        .await
        .unwrap();
    wait_for("five pods are created and counted", || async {
        c.live_owned().await.len() == 5 && c.status_replicas().await == Some(5)
    })
    .await;
    // Reconciles that find nothing new: a change of the GameDeployment's own labels, twice.
    for round in 0..2 {
        let patch = json!({"metadata": {"labels": {"round": round.to_string()}}});
        c.gds
            .patch(GD, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // One pod relabelled, still matching; another's annotations changed.
    let names: Vec<String> = c.live_owned().await.iter().map(|p| p.name_any()).collect();
    let relabel = json!({"metadata": {"labels": {"extra": "yes"}}});
    let annotate = json!({"metadata": {"annotations": {"note": "yes"}}});
    for (name, patch) in [(&names[0], relabel), (&names[1], annotate)] {
        c.pods
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ctx = c.operator.shutdown().await.expect("the operator ran");
    assert_eq!(ctx.selector_evaluations(), 5 + 1);
}
