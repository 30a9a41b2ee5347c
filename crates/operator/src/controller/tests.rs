use super::*;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::runtime::reflector;
use serde_json::Value;

use crate::logs::Logged;

/// Why exactly one future waits for each cache in [`run`]. If kube-runtime starts waking
/// every waiter, this fails, and a reconcile may wait for the caches again.
#[test]
fn a_kube_runtime_store_wakes_only_the_last_future_waiting_for_it() {
    use futures::task::{ArcWake, waker};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Context as TaskContext;

    #[derive(Default)]
    struct Woken(AtomicBool);
    impl ArcWake for Woken {
        fn wake_by_ref(me: &Arc<Self>) {
            me.0.store(true, Ordering::SeqCst);
        }
    }
    let (store, mut writer) = reflector::store::<k8s_openapi::api::core::v1::ConfigMap>();
    let (first, second) = (Arc::new(Woken::default()), Arc::new(Woken::default()));
    let mut a = Box::pin(store.wait_until_ready());
    let mut b = Box::pin(store.wait_until_ready());
    let waker_a = waker(first.clone());
    let waker_b = waker(second.clone());
    assert!(
        a.as_mut()
            .poll(&mut TaskContext::from_waker(&waker_a))
            .is_pending()
    );
    assert!(
        b.as_mut()
            .poll(&mut TaskContext::from_waker(&waker_b))
            .is_pending()
    );
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    assert!(second.0.load(Ordering::SeqCst), "the last waiter is woken");
    assert!(
        !first.0.load(Ordering::SeqCst),
        "kube-runtime now wakes every waiter of a store"
    );
}

#[test]
fn failed_writes_back_off_from_one_second_to_five_minutes() {
    let waits: Vec<u64> = (0..12).map(|a| retry_delay(a).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    assert_eq!(retry_delay(u32::MAX), MAX_RETRY_AFTER_FAILED_WRITE);
}

/// Every API call the operator makes is granted by `deploy/operator/rbac.yaml`: cluster-wide
/// by the ClusterRole, except the leader Lease, which only the Role in the operator's own
/// namespace grants.
#[test]
fn the_cluster_role_grants_what_the_operator_calls() {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(include_str!("../../../../deploy/operator/rbac.yaml")).unwrap();
    let rules_of = |kind: &str| -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
        let doc = docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
        match kind {
            "ClusterRole" => serde_json::from_value::<ClusterRole>(doc).unwrap().rules,
            _ => {
                serde_json::from_value::<k8s_openapi::api::rbac::v1::Role>(doc)
                    .unwrap()
                    .rules
            }
        }
        .unwrap_or_default()
    };
    let allows = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule],
                  group: &str,
                  resource: &str,
                  verb: &str| {
        rules.iter().any(|r| {
            let has = |list: &Option<Vec<String>>, x: &str| {
                list.iter().flatten().any(|v| v == x || v == "*")
            };
            has(&r.api_groups, group)
                && has(&r.resources, resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    let (cluster, namespaced) = (rules_of("ClusterRole"), rules_of("Role"));
    for verb in ["get", "create", "update"] {
        assert!(
            allows(&namespaced, "coordination.k8s.io", "leases", verb),
            "{verb} leases"
        );
        assert!(
            !allows(&cluster, "coordination.k8s.io", "leases", verb),
            "leases cluster-wide"
        );
    }
    let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(binding["metadata"]["namespace"], "gamedeploy");
    assert_eq!(binding["roleRef"]["name"], "gamedeploy-leader-election");
    let rules = cluster;
    let allows = |group: &str, resource: &str, verb: &str| allows(&rules, group, resource, verb);
    for (group, resource, verbs) in [
        (
            "tkex.tencent.com",
            "gamedeployments",
            &["get", "list", "watch"][..],
        ),
        ("tkex.tencent.com", "gamedeployments/status", &["patch"]),
        (
            "tkex.tencent.com",
            "hookruns",
            &["list", "watch", "create", "delete"],
        ),
        ("tkex.tencent.com", "hookruns/status", &["patch"]),
        ("tkex.tencent.com", "hooktemplates", &["list", "watch"]),
        (
            "",
            "pods",
            &["get", "list", "watch", "create", "delete", "patch"],
        ),
        ("", "pods/status", &["patch"]),
        ("", "pods/resize", &["patch"]),
        ("", "nodes", &["get", "list", "watch"]),
        (
            "apps",
            "controllerrevisions",
            &["list", "watch", "create", "delete"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
    ] {
        for verb in verbs {
            assert!(allows(group, resource, verb), "{verb} {resource}.{group}");
        }
    }
}

/// Runs one reconcile of a GameDeployment whose spec does not decode, woken by its own change,
/// against a server that refuses every connection, logging through `logs`.
async fn reconcile_logged(logs: Box<dyn tracing::Subscriber + Send + Sync>) {
    let _logging = tracing::subscriber::set_default(logs);
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let caches = Caches {
        pods: SharedRoster::default(),
        revisions: reflector::store().0,
        hook_runs: reflector::store().0,
        hook_templates: reflector::store().0,
        nodes: SharedNodes::default(),
    };
    let clock: SharedClock = Arc::new(gamedeploy_clock::SystemClock);
    let ctx = Arc::new(Context::new(client, clock, caches, 0, "test".into()));
    let stored = StoredGameDeployment::Undecodable(Box::new(gamedeploy_core::api::Undecodable {
        metadata: kube::api::ObjectMeta {
            namespace: Some("games".into()),
            name: Some("arena".into()),
            uid: Some("uid-arena".into()),
            ..Default::default()
        },
        status: None,
        reason: "spec.replicas: invalid type".into(),
        spec_json: String::new(),
    }));
    ctx.memory.note("uid-arena", Wake::Changed);
    let result = reconcile(Arc::new(stored), ctx).await;
    assert!(
        matches!(result, Err(crate::Error::Status { .. })),
        "the status write cannot reach the server"
    );
}

#[tokio::test]
async fn a_text_line_logged_in_a_reconcile_names_its_object_and_trigger() {
    let logged = Logged::default();
    let writer = logged.clone();
    let filter = tracing_subscriber::EnvFilter::new("info");
    reconcile_logged(crate::logs::text(filter, move || writer.clone())).await;
    let lines = logged.lines();
    let line = lines
        .iter()
        .find(|l| l.contains("cannot decode the spec"))
        .unwrap_or_else(|| panic!("no line about the spec in {lines:#?}"));
    assert!(
        line.contains("reconcile{namespace=games gamedeployment=arena trigger=changed}:"),
        "{line}"
    );
    // A line of another module (the event the reconcile could not send) is named by the span.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("could not record event") && l.contains("gamedeployment=")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_json_line_logged_in_a_reconcile_names_its_object_and_trigger() {
    let logged = Logged::default();
    let writer = logged.clone();
    let filter = tracing_subscriber::EnvFilter::new("info");
    reconcile_logged(crate::logs::json(filter, move || writer.clone())).await;
    let line: Value = logged
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["fields"]["message"] == "cannot decode the spec")
        .expect("a line about the spec");
    let span = &line["span"];
    assert_eq!(span["name"], "reconcile");
    assert_eq!(span["namespace"], "games");
    assert_eq!(span["gamedeployment"], "arena");
    assert_eq!(span["trigger"], "changed");
}
