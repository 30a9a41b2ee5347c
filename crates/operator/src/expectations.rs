//! Expectations: the pod creates, deletes and updates the operator has sent for each
//! GameDeployment and not yet seen through its pod watch, as kube-controller-manager's
//! `UIDTrackingControllerExpectations` keeps creates and deletes for ReplicaSets.
//!
//! The reconcile reads pods from the watch cache, which lags the operator's own writes. A
//! reconcile that runs in between (triggered by the first of a hundred new pods, a status
//! write, a requeue) would see pods missing and create them again, or see a pod it deleted
//! still there and pick another victim; the surplus was deleted afterwards. So a reconcile
//! waits while any expectation of its GameDeployment is unsatisfied: see
//! [`Expectations::unsatisfied`].
//!
//! Updates matter as much: a reconcile that ran on a cache still showing the version a
//! checkpoint was written over decided that pod's step again, and its write, made over the
//! old resourceVersion, met a 409 (47 in a 100-pod rollout). An update is tracked by pod UID
//! with the resourceVersion it was written over, and is seen once the pod shows any other
//! version (versions of one object are ordered, so any later one includes the write).
//!
//! Creates are tracked by pod name (the operator names its pods), deletes by pod UID. An
//! expectation is satisfied when the watch shows the created pod (in the cache, or passing
//! by in [`Expectations::observe`] even if already gone), the deleted pod terminating or
//! gone, or the updated pod at a new version; when its request fails; or [`TIMEOUT`] after it
//! was raised, so a lost watch event cannot hold a GameDeployment forever.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use gamedeploy_core::planner::model::{CachedPod, Roster};
use jiff::{SignedDuration, Timestamp};
use kube::{Resource, ResourceExt};

use gamedeploy_core::planner::rules::adoption as adopt;

/// How long an expectation waits for the watch before it is given up (kube's value).
pub const TIMEOUT: SignedDuration = SignedDuration::from_secs(300);

/// What one GameDeployment waits to see.
#[derive(Debug, Default)]
struct Pending {
    /// Names of pods created and not yet seen.
    creates: BTreeSet<String>,
    /// UIDs of pods deleted and not yet seen terminating or gone.
    deletes: BTreeSet<String>,
    /// Pods updated, by UID, with the resourceVersion the update was written over.
    updates: HashMap<String, String>,
    /// When the last expectation was raised: all expire [`TIMEOUT`] after it.
    raised: Option<Timestamp>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.deletes.is_empty() && self.updates.is_empty()
    }
}

/// Unseen creates and deletes, by GameDeployment UID.
#[derive(Debug, Default)]
pub struct Expectations {
    by_owner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.by_owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records, before the request is sent, that `owner` creates the pod `name`.
    pub fn creating(&self, owner: &str, name: &str, now: Timestamp) {
        let mut all = self.lock();
        let p = all.entry(owner.to_string()).or_default();
        p.creates.insert(name.to_string());
        p.raised = Some(now);
    }

    /// The create of `name` failed: there is nothing to wait for.
    pub fn create_failed(&self, owner: &str, name: &str) {
        self.settle(owner, |p| {
            p.creates.remove(name);
        });
    }

    /// Records, before the request is sent, that `owner` deletes the pod with `uid`.
    pub fn deleting(&self, owner: &str, uid: &str, now: Timestamp) {
        let mut all = self.lock();
        let p = all.entry(owner.to_string()).or_default();
        p.deletes.insert(uid.to_string());
        p.raised = Some(now);
    }

    /// The delete of `uid` failed (or found the pod already gone): nothing to wait for.
    pub fn delete_failed(&self, owner: &str, uid: &str) {
        self.settle(owner, |p| {
            p.deletes.remove(uid);
        });
    }

    /// Records, before the request is sent, that `owner` updates the pod with `uid` over
    /// its version `over`.
    pub fn updating(&self, owner: &str, uid: &str, over: &str, now: Timestamp) {
        let mut all = self.lock();
        let p = all.entry(owner.to_string()).or_default();
        p.updates.insert(uid.to_string(), over.to_string());
        p.raised = Some(now);
    }

    /// Nothing to wait for after all: the update of `uid` failed, or changed nothing (no new
    /// version, so no watch event will come).
    pub fn forget_update(&self, owner: &str, uid: &str) {
        self.settle(owner, |p| {
            p.updates.remove(uid);
        });
    }

    /// A pod the watch delivered (added, changed or deleted): satisfies its controller's
    /// expectation of its creation, of its update once at another version, and of its
    /// deletion once it is terminating.
    pub fn observe(&self, pod: &CachedPod) {
        let Some(owner) = adopt::controller_of(pod).map(|o| o.uid.clone()) else {
            return;
        };
        let name = pod.name_any();
        let terminating = pod.meta().deletion_timestamp.is_some();
        let uid = pod.uid().unwrap_or_default();
        let version = pod.resource_version();
        self.settle(&owner, |p| {
            p.creates.remove(&name);
            if terminating {
                p.deletes.remove(&uid);
            }
            if p.updates
                .get(&uid)
                .is_some_and(|over| version.as_ref() != Some(over))
            {
                p.updates.remove(&uid);
            }
        });
    }

    /// Forgets a GameDeployment (it is being deleted).
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }

    /// When `owner`'s expectations expire, if some are still unsatisfied by `cached`, the
    /// pod cache, in its namespace `ns`; `None` when it may scale. Each awaited pod is looked
    /// up by name or uid: nothing passes over the namespace's pods.
    pub fn unsatisfied(
        &self,
        owner: &str,
        ns: &str,
        cached: &Roster,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let mut all = self.lock();
        let p = all.get_mut(owner)?;
        p.creates.retain(|name| cached.get(ns, name).is_none());
        let alive = |uid: &str| {
            (cached.get_by_uid(ns, uid)).is_some_and(|c| c.meta().deletion_timestamp.is_none())
        };
        p.deletes.retain(|uid| alive(uid));
        // Still waiting only for pods the cache shows at the version written over.
        p.updates.retain(|uid, over| {
            (cached.get_by_uid(ns, uid))
                .is_some_and(|c| c.meta().resource_version.as_deref() == Some(over.as_str()))
        });
        let expires = p
            .raised
            .map_or(now, |t| t.checked_add(TIMEOUT).unwrap_or(Timestamp::MAX));
        if p.is_empty() || expires <= now {
            if !p.is_empty() {
                tracing::warn!(
                    creates = p.creates.len(),
                    deletes = p.deletes.len(),
                    updates = p.updates.len(),
                    "the pod watch never showed these writes; scaling again from what it shows"
                );
            }
            all.remove(owner);
            return None;
        }
        Some(expires)
    }

    fn settle(&self, owner: &str, change: impl FnOnce(&mut Pending)) {
        let mut all = self.lock();
        if let Some(p) = all.get_mut(owner) {
            change(p);
            if p.is_empty() {
                all.remove(owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

    fn pod(name: &str, uid: &str, owner: &str) -> CachedPod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(uid.into());
        p.metadata.owner_references = Some(vec![OwnerReference {
            uid: owner.into(),
            controller: Some(true),
            kind: "GameDeployment".into(),
            api_version: "tkex.tencent.com/v1alpha1".into(),
            name: "gd".into(),
            ..Default::default()
        }]);
        p.into()
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    const NONE: &[CachedPod] = &[];

    /// The pod cache holding `pods` (in no namespace, as these pods are).
    fn cache(pods: &[CachedPod]) -> Roster {
        let mut roster = Roster::default();
        for p in pods {
            roster.apply(std::sync::Arc::new(p.clone()));
        }
        roster
    }

    #[test]
    fn creates_wait_until_the_cache_or_the_watch_shows_them() {
        let e = Expectations::default();
        assert_eq!(e.unsatisfied("gd", "", &cache(NONE), t(0)), None);
        e.creating("gd", "a", t(0));
        e.creating("gd", "b", t(0));
        assert_eq!(
            e.unsatisfied("gd", "", &cache(NONE), t(1)),
            Some(t(0) + TIMEOUT)
        );
        assert_eq!(
            e.unsatisfied("gd", "", &cache(&[pod("a", "1", "gd")]), t(1)),
            Some(t(0) + TIMEOUT)
        );
        // b was created and deleted before a reconcile saw it in the cache.
        e.observe(&pod("b", "2", "gd"));
        assert_eq!(e.unsatisfied("gd", "", &cache(NONE), t(1)), None);
        assert_eq!(e.unsatisfied("other", "", &cache(NONE), t(1)), None);
    }

    #[test]
    fn deletes_wait_until_the_pod_terminates_or_leaves_the_cache() {
        let e = Expectations::default();
        e.deleting("gd", "1", t(0));
        e.deleting("gd", "2", t(0));
        let mut terminating = pod("b", "2", "gd");
        terminating.meta_mut().deletion_timestamp = Some(Time(t(1)));
        let cached = [pod("a", "1", "gd"), terminating];
        assert!(e.unsatisfied("gd", "", &cache(&cached), t(1)).is_some());
        assert_eq!(e.unsatisfied("gd", "", &cache(&cached[1..]), t(1)), None);
    }

    #[test]
    fn updates_wait_until_the_pod_shows_another_version() {
        let at = |rv: &str| {
            let mut p = pod("a", "1", "gd");
            p.meta_mut().resource_version = Some(rv.into());
            p
        };
        let e = Expectations::default();
        e.updating("gd", "1", "7", t(0));
        assert!(
            e.unsatisfied("gd", "", &cache(&[at("7")]), t(1)).is_some(),
            "still the old version"
        );
        assert_eq!(e.unsatisfied("gd", "", &cache(&[at("9")]), t(1)), None);
        // Seen passing by on the watch, before any reconcile looked.
        e.updating("gd", "1", "9", t(2));
        e.observe(&at("9"));
        assert!(e.unsatisfied("gd", "", &cache(&[at("9")]), t(3)).is_some());
        e.observe(&at("10"));
        assert_eq!(e.unsatisfied("gd", "", &cache(&[at("9")]), t(3)), None);
        // A failed update, or a pod gone from the cache, is not waited for.
        e.updating("gd", "1", "10", t(4));
        e.forget_update("gd", "1");
        assert_eq!(e.unsatisfied("gd", "", &cache(&[at("10")]), t(5)), None);
        e.updating("gd", "1", "10", t(6));
        assert_eq!(e.unsatisfied("gd", "", &cache(NONE), t(7)), None);
    }

    #[test]
    fn failed_requests_are_not_waited_for() {
        let e = Expectations::default();
        e.creating("gd", "a", t(0));
        e.deleting("gd", "1", t(0));
        e.create_failed("gd", "a");
        e.delete_failed("gd", "1");
        assert_eq!(
            e.unsatisfied("gd", "", &cache(&[pod("x", "1", "gd")]), t(0)),
            None
        );
    }

    #[test]
    fn expectations_expire_after_the_timeout_of_the_last_one() {
        let e = Expectations::default();
        e.creating("gd", "a", t(0));
        e.creating("gd", "b", t(100));
        assert_eq!(
            e.unsatisfied("gd", "", &cache(NONE), t(350)),
            Some(t(100) + TIMEOUT)
        );
        assert_eq!(
            e.unsatisfied("gd", "", &cache(NONE), t(400)),
            None,
            "expired"
        );
        assert_eq!(
            e.unsatisfied("gd", "", &cache(NONE), t(401)),
            None,
            "and forgotten"
        );
    }
}
