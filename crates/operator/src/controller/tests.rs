use super::*;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::runtime::reflector;
use serde_json::Value;

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
        ("", "nodes", &["list", "watch"]),
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
