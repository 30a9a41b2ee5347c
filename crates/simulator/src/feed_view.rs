//! What the runner knows of the cluster between snapshots, kept from the API server's change
//! feed: which pods keep the run from settling, and every GameDeployment as stored.
//!
//! The settle check and the rollout progress read this instead of listing every pod and
//! GameDeployment every 500 virtual ms: those lists were most of a 1,000-pod run's real time
//! (BENCHMARKS.md). The feed carries every stored change in order, so after it is drained
//! this view is what a list would return.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::Value;

use super::pod_heads::SettleHead;
use super::settle::{gd_settled, pod_busy};
use embedded_apiserver::{Change, EventType};
use gamedeploy_core::api::StoredGameDeployment;

/// Namespace and name.
type Key = (String, String);

/// The cluster as the change feed has shown it so far. An object that does not read as its
/// type is left out, as the history always did (the API server validates what it stores).
#[derive(Debug, Default)]
pub struct FeedView {
    /// Every pod as stored (shared with the server's store, not copied), for the tables.
    pods: BTreeMap<Key, Arc<Value>>,
    /// Pods mid-update or terminating.
    busy: HashSet<Key>,
    /// In list order (namespace, then name), as the tables and progress show them.
    gds: BTreeMap<Key, StoredGameDeployment>,
}

impl FeedView {
    /// Takes in one change.
    pub fn apply(&mut self, c: &Change) {
        let key = (c.namespace.clone(), c.name.clone());
        let deleted = matches!(c.kind, EventType::Deleted);
        match (c.group.as_str(), c.resource.as_str()) {
            ("", "pods") => {
                self.busy.remove(&key);
                if deleted {
                    self.pods.remove(&key);
                } else {
                    self.pods.insert(key.clone(), c.object.clone());
                }
                // Only what the settle check reads: no whole `Pod` per change.
                if let Ok(pod) = SettleHead::deserialize(&*c.object)
                    && !deleted
                    && pod_busy(&pod.into_pod())
                {
                    self.busy.insert(key);
                }
            }
            (gamedeploy_core::names::GROUP, "gamedeployments") => {
                self.gds.remove(&key);
                if deleted {
                    return;
                }
                // `StoredGameDeployment` keeps spec and status as raw text, which only a text
                // decoder can give it; these changes are few.
                if let Some(gd) = serde_json::to_string(&*c.object)
                    .ok()
                    .and_then(|text| StoredGameDeployment::from_json(&text).ok())
                {
                    self.gds.insert(key, gd);
                }
            }
            _ => {}
        }
    }

    /// [`super::settle::is_settled`] of what a list would return now.
    pub fn is_settled(&self) -> bool {
        !self.pods_busy() && self.gds_settled()
    }

    /// Some pod is mid-update or terminating.
    pub fn pods_busy(&self) -> bool {
        !self.busy.is_empty()
    }

    /// Every GameDeployment is settled ([`gd_settled`]).
    pub fn gds_settled(&self) -> bool {
        self.gds.values().all(gd_settled)
    }

    /// Each GameDeployment's `(updatedReplicas, updatedReadyReplicas)`, in list order.
    pub fn progress(&self) -> Vec<(i32, i32)> {
        self.gds
            .values()
            .map(|g| {
                g.status()
                    .map_or((0, 0), |s| (s.updated_replicas, s.updated_ready_replicas))
            })
            .collect()
    }

    /// How many pods exist now.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The pods as stored now, in list order: cheap to take (shared, not copied), read
    /// with [`read_pods`] only when a table shows them.
    pub fn pods(&self) -> Vec<Arc<Value>> {
        self.pods.values().cloned().collect()
    }

    /// The GameDeployments as stored now, in list order.
    pub fn gds(&self) -> Vec<StoredGameDeployment> {
        self.gds.values().cloned().collect()
    }

    /// Pods updated (`updatedReplicas`) and wanted (`spec.replicas`), over all GameDeployments.
    pub fn updated_of_replicas(&self) -> (i64, i64) {
        self.gds.values().fold((0, 0), |(u, r), g| {
            (
                u + g.status().map_or(0, |s| i64::from(s.updated_replicas)),
                r + g.decoded().map_or(0, |gd| i64::from(gd.spec.replicas())),
            )
        })
    }
}

/// Pods taken with [`FeedView::pods`], read for a table.
pub fn read_pods(pods: &[Arc<Value>]) -> Vec<Pod> {
    pods.iter()
        .filter_map(|p| Pod::deserialize(&**p).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use gamedeploy_core::inplace::{self, State};
    use serde_json::{Value, json};

    fn change(kind: EventType, resource: &str, object: Value) -> Change {
        let meta = &object["metadata"];
        Change {
            rv: 1,
            time: "2026-01-01T00:00:00Z".into(),
            client: "operator".into(),
            kind,
            group: if resource == "pods" {
                String::new()
            } else {
                gamedeploy_core::names::GROUP.into()
            },
            resource: resource.into(),
            namespace: meta["namespace"].as_str().unwrap_or_default().into(),
            name: meta["name"].as_str().unwrap_or_default().into(),
            object: Arc::new(object),
        }
    }

    fn pod(name: &str, state: Option<State>, terminating: bool) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        if let Some(state) = state {
            let mut r = inplace::Record::start("gd-1", "2026-01-01T00:00:00Z".parse().unwrap());
            r.state = state;
            p["metadata"]["annotations"] =
                json!({ gamedeploy_core::names::ANNOTATION_STATE: inplace::encode(&r) });
        }
        if terminating {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:01Z");
        }
        p
    }

    fn gd(updated: i32, ready: i32) -> Value {
        json!({"apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "metadata": {"name": "gd", "namespace": "default", "generation": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2,
                       "updatedReplicas": updated, "updatedReadyReplicas": ready}})
    }

    /// What the feed shows agrees with [`super::super::settle::is_settled`] of the same
    /// objects, as a list would return them.
    #[test]
    fn settles_as_the_listed_objects_would() {
        let mut o = FeedView::default();
        let listed = |objects: &[&Value]| -> bool {
            let (pods, gds): (Vec<&Value>, Vec<&Value>) =
                objects.iter().partition(|v| v["kind"] == "Pod");
            let pods: Vec<Pod> = pods
                .into_iter()
                .map(|p| serde_json::from_value(p.clone()).unwrap())
                .collect();
            let gds: Vec<StoredGameDeployment> = gds
                .into_iter()
                .map(|g| StoredGameDeployment::from_json(&g.to_string()).unwrap())
                .collect();
            super::super::settle::is_settled(&pods, &gds)
        };
        assert!(o.is_settled(), "nothing yet");
        let (a, g) = (pod("a", Some(State::Ready), false), gd(1, 1));
        o.apply(&change(EventType::Added, "pods", a.clone()));
        o.apply(&change(EventType::Added, "gamedeployments", g.clone()));
        assert_eq!((o.is_settled(), listed(&[&a, &g])), (false, false));
        assert_eq!(o.progress(), [(1, 1)]);
        assert_eq!(o.updated_of_replicas(), (1, 2));
        let g = gd(2, 2);
        o.apply(&change(EventType::Modified, "gamedeployments", g.clone()));
        assert_eq!((o.is_settled(), listed(&[&a, &g])), (true, true));
        let busy = pod("a", Some(State::Unready), false);
        o.apply(&change(EventType::Modified, "pods", busy.clone()));
        assert_eq!((o.is_settled(), listed(&[&busy, &g])), (false, false));
        let gone = pod("a", Some(State::Unready), true);
        o.apply(&change(EventType::Modified, "pods", gone.clone()));
        assert_eq!((o.is_settled(), listed(&[&gone, &g])), (false, false));
        o.apply(&change(EventType::Deleted, "pods", gone));
        assert_eq!((o.is_settled(), listed(&[&g])), (true, true));
        let undecodable = {
            let mut g = gd(2, 2);
            g["spec"]["replicas"] = json!(1_099_511_627_776_i64);
            g
        };
        o.apply(&change(
            EventType::Modified,
            "gamedeployments",
            undecodable.clone(),
        ));
        assert_eq!((o.is_settled(), listed(&[&undecodable])), (false, false));
        o.apply(&change(EventType::Deleted, "gamedeployments", undecodable));
        assert!(o.is_settled() && o.progress().is_empty());
    }
}
