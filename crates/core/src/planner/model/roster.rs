//! The roster: the cached pods indexed as reconciles read them, kept up to date one watch event
//! at a time, so a reconcile reads its GameDeployment's pods without passing over its namespace.
//!
//! Per namespace it holds every pod by name and by uid (the lookups expectations make), the
//! pods with a controller reference grouped by that controller's uid, each group in name order
//! with its pods counted per in-place state (the metrics' gauges), and the orphans (no
//! controller reference: what adoption considers).
//!
//! The roster is a projection of the set of pods: after any sequence of events it holds exactly
//! what building it from the pods present would give (`tests.rs` checks this after every event
//! of long random sequences). Beside it, each group remembers what its last claim learnt: the
//! selector it claimed with, which of its pods that selector did not match, and which pods
//! joined the group or changed labels since. Whether a pod matches depends on its labels only,
//! so claiming again evaluates the selector on those pods alone (`rules/adoption.rs`).
//!
//! Events follow kube-runtime's watcher: [`Roster::apply`] and [`Roster::delete`] for
//! `Apply` and `Delete`; [`Roster::relist_start`], [`Roster::relist_apply`] and
//! [`Roster::relist_done`] for `Init`, `InitApply` and `InitDone`. As its reflector store does,
//! the roster keeps showing the old pods while a relist arrives and replaces them all at its
//! end: a pod the relist did not name is gone.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;

use super::cached_pod::CachedPod;
use super::settled::{Settled, Tally, bump};
use crate::inplace::{Decoded, State};

/// How many pods are in each in-place state (states with none are left out).
pub type MachineCounts = BTreeMap<State, i64>;

/// The in-place state a pod is counted in, from its decoded state annotation: none for a pod
/// that was never updated in place, `Unknown` for one whose annotation cannot be read.
pub fn machine_state(pod: &CachedPod) -> Option<State> {
    match pod.decoded() {
        Decoded::Missing => None,
        Decoded::Valid(r) => Some(r.state),
        Decoded::Unsupported { .. } | Decoded::Corrupt { .. } => Some(State::Unknown),
    }
}

fn name_of(pod: &CachedPod) -> &str {
    pod.meta().name.as_deref().unwrap_or_default()
}

fn namespace_of(pod: &CachedPod) -> &str {
    pod.meta().namespace.as_deref().unwrap_or_default()
}

/// The uid of the pod's controller (the owner reference with `controller: true`).
fn controller_uid(pod: &CachedPod) -> Option<&str> {
    let refs = pod.meta().owner_references.iter().flatten();
    refs.filter(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
        .next()
}

/// A pod in a set keyed by its name: the key is the pod's own string, not a copy.
#[derive(Debug, Clone)]
struct ByName(Arc<CachedPod>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        name_of(&self.0)
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        name_of(&self.0) == name_of(&other.0)
    }
}

impl Eq for ByName {}

impl PartialOrd for ByName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        name_of(&self.0).cmp(name_of(&other.0))
    }
}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        name_of(&self.0).hash(state)
    }
}

/// A pod in a set keyed by its uid (only pods with one are put in such a set; the API server
/// gives every pod a unique one).
#[derive(Debug, Clone)]
struct ByUid(Arc<CachedPod>);

impl ByUid {
    fn uid(&self) -> &str {
        self.0.meta().uid.as_deref().unwrap_or_default()
    }
}

impl Borrow<str> for ByUid {
    fn borrow(&self) -> &str {
        self.uid()
    }
}

impl PartialEq for ByUid {
    fn eq(&self, other: &Self) -> bool {
        self.uid() == other.uid()
    }
}

impl Eq for ByUid {}

impl Hash for ByUid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uid().hash(state)
    }
}

/// The cached pods, indexed (see the module doc).
#[derive(Debug, Default)]
pub struct Roster {
    namespaces: HashMap<String, Namespace>,
    /// The pods of the relist under way, in the order they came.
    relisted: Vec<Arc<CachedPod>>,
}

/// One namespace's pods.
#[derive(Debug, Default)]
struct Namespace {
    by_name: HashSet<ByName>,
    by_uid: HashSet<ByUid>,
    /// Pods with a controller reference, by the controller's uid.
    groups: HashMap<String, Group>,
    /// Pods without a controller reference, in name order.
    orphans: BTreeSet<ByName>,
}

/// The pods one controller controls in one namespace.
#[derive(Debug, Default)]
struct Group {
    /// In name order.
    pods: BTreeSet<ByName>,
    counts: MachineCounts,
    tally: Tally,
    /// What the last claim learnt; `None` before the first (nothing is tracked for a group no
    /// one claims, such as a ReplicaSet's).
    claimed: Option<Claimed>,
}

/// What a group's last claim learnt. Both sets hold the group's current `Arc`s.
#[derive(Debug)]
struct Claimed {
    /// The selector it claimed with.
    selector: LabelSelector,
    /// The group's pods that selector did not match, as of the last claim for those not in
    /// `relabeled`.
    unmatched: BTreeSet<ByName>,
    /// Pods that joined the group, or whose labels changed, since the last claim.
    relabeled: BTreeSet<ByName>,
}

/// Replaces the set's entry for `pod`'s name, if it has one, by `pod`.
fn refresh(set: &mut BTreeSet<ByName>, pod: &Arc<CachedPod>) {
    if set.contains(name_of(pod)) {
        set.replace(ByName(pod.clone()));
    }
}

/// Adds `counts` the pod's state, `by` times (-1 to take it out).
fn count(counts: &mut MachineCounts, pod: &CachedPod, by: i64) {
    if let Some(state) = machine_state(pod) {
        bump(counts, state, by);
    }
}

impl Group {
    fn add(&mut self, pod: &Arc<CachedPod>) {
        count(&mut self.counts, pod, 1);
        self.tally.count(pod, 1);
        self.pods.replace(ByName(pod.clone()));
        if let Some(c) = &mut self.claimed {
            c.relabeled.replace(ByName(pod.clone()));
        }
    }

    fn remove(&mut self, pod: &CachedPod) {
        count(&mut self.counts, pod, -1);
        self.tally.count(pod, -1);
        let name = name_of(pod);
        self.pods.remove(name);
        if let Some(c) = &mut self.claimed {
            c.unmatched.remove(name);
            c.relabeled.remove(name);
        }
    }

    /// `new` replaces `old`, a pod of the same name already in the group.
    fn update(&mut self, old: &CachedPod, new: &Arc<CachedPod>) {
        count(&mut self.counts, old, -1);
        count(&mut self.counts, new, 1);
        self.tally.count(old, -1);
        self.tally.count(new, 1);
        self.pods.replace(ByName(new.clone()));
        if let Some(c) = &mut self.claimed {
            if old.labels() != new.labels() {
                c.relabeled.replace(ByName(new.clone()));
            } else {
                refresh(&mut c.relabeled, new);
            }
            refresh(&mut c.unmatched, new);
        }
    }

    /// Brings what the last claim learnt up to `selector`, evaluating `matches` on the pods
    /// that joined or changed labels since, or on every pod if the selector changed.
    fn rematch(&mut self, selector: &LabelSelector, matches: &mut impl FnMut(&CachedPod) -> bool) {
        let claimed = match self.claimed.take() {
            Some(mut c) if c.selector == *selector => {
                for p in std::mem::take(&mut c.relabeled) {
                    if matches(&p.0) {
                        c.unmatched.remove(&p);
                    } else {
                        c.unmatched.replace(p);
                    }
                }
                c
            }
            _ => Claimed {
                selector: selector.clone(),
                unmatched: (self.pods.iter())
                    .filter(|p| !matches(&p.0))
                    .cloned()
                    .collect(),
                relabeled: BTreeSet::new(),
            },
        };
        self.claimed = Some(claimed);
    }

    fn controlled(&self) -> Controlled {
        Controlled {
            pods: self.pods.iter().map(|p| p.0.clone()).collect(),
            counts: self.counts.clone(),
            settled: self.tally.settled(),
        }
    }
}

impl Namespace {
    fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn insert(&mut self, pod: &Arc<CachedPod>) {
        match controller_uid(pod) {
            Some(uid) => match self.groups.get_mut(uid) {
                Some(g) => g.add(pod),
                None => {
                    let mut g = Group::default();
                    g.add(pod);
                    self.groups.insert(uid.to_owned(), g);
                }
            },
            None => {
                self.orphans.replace(ByName(pod.clone()));
            }
        }
    }

    fn remove(&mut self, pod: &CachedPod) {
        match controller_uid(pod) {
            Some(uid) => {
                if let Some(g) = self.groups.get_mut(uid) {
                    g.remove(pod);
                    if g.pods.is_empty() {
                        self.groups.remove(uid);
                    }
                }
            }
            None => {
                self.orphans.remove(name_of(pod));
            }
        }
    }

    /// `new` comes in; `old`, of the same name, goes if there was one.
    fn upsert(&mut self, new: &Arc<CachedPod>) {
        let old = self.by_name.replace(ByName(new.clone())).map(|o| o.0);
        if let Some(old) = &old {
            self.unindex_uid(old);
        }
        if new.meta().uid.is_some() {
            self.by_uid.replace(ByUid(new.clone()));
        }
        match old {
            Some(old) if controller_uid(&old) == controller_uid(new) => match controller_uid(new) {
                Some(uid) => {
                    if let Some(g) = self.groups.get_mut(uid) {
                        g.update(&old, new);
                    }
                }
                None => {
                    self.orphans.replace(ByName(new.clone()));
                }
            },
            Some(old) => {
                self.remove(&old);
                self.insert(new);
            }
            None => self.insert(new),
        }
    }

    /// Takes the pod named `name` out; the pod taken out, if there was one.
    fn delete(&mut self, name: &str) -> Option<Arc<CachedPod>> {
        let old = self.by_name.take(name)?.0;
        self.unindex_uid(&old);
        self.remove(&old);
        Some(old)
    }

    /// Drops `pod` from the uid index, unless a pod of another name holds its uid there.
    fn unindex_uid(&mut self, pod: &Arc<CachedPod>) {
        let Some(uid) = pod.meta().uid.as_deref() else {
            return;
        };
        if self.by_uid.get(uid).is_some_and(|p| Arc::ptr_eq(&p.0, pod)) {
            self.by_uid.remove(uid);
        }
    }
}

/// The pods a controller controls in a namespace, in name order, counted per in-place state.
#[derive(Debug, Default, Clone)]
pub struct Controlled {
    pub pods: Vec<Arc<CachedPod>>,
    pub counts: MachineCounts,
    /// `Some` when every pod is settled (`settled.rs`): the plan then reads
    /// this instead of the pods.
    pub settled: Option<Settled>,
}

impl Controlled {
    /// A controller with no pods: settled, as far as its (empty) tally says.
    fn none() -> Self {
        Controlled {
            settled: Tally::default().settled(),
            ..Controlled::default()
        }
    }

    /// Adds a pod the controller has just adopted, counted in its state, at its place in name
    /// order (which the plan and the executor rely on to find pods without an index). The
    /// tally counted the pods before it joined, so the plan reads the pods this time.
    pub fn adopt(&mut self, pod: Arc<CachedPod>) {
        count(&mut self.counts, &pod, 1);
        self.settled = None;
        let name = pod.view().name.as_str();
        let at = self.pods.partition_point(|p| p.view().name.as_str() < name);
        self.pods.insert(at, pod);
    }
}

/// A group's pods as a claim with some selector sees them.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The pods the selector matches, in name order, counted per in-place state.
    pub(crate) matched: Controlled,
    /// The pods it does not match, in name order.
    pub(crate) unmatched: Vec<Arc<CachedPod>>,
}

impl Roster {
    /// A pod added or changed (a watch `Apply`).
    pub fn apply(&mut self, pod: Arc<CachedPod>) {
        let ns = namespace_of(&pod);
        match self.namespaces.get_mut(ns) {
            Some(space) => space.upsert(&pod),
            None => {
                let mut space = Namespace::default();
                space.upsert(&pod);
                self.namespaces.insert(ns.to_owned(), space);
            }
        }
    }

    /// A pod deleted (a watch `Delete`): the pod of its namespace and name goes.
    pub fn delete(&mut self, pod: &CachedPod) {
        let ns = namespace_of(pod);
        if let Some(space) = self.namespaces.get_mut(ns) {
            space.delete(name_of(pod));
            if space.is_empty() {
                self.namespaces.remove(ns);
            }
        }
    }

    /// A relist begins (`Init`): the pods it lists replace all, at [`Roster::relist_done`].
    pub fn relist_start(&mut self) {
        self.relisted = Vec::new();
    }

    /// A pod of the relist under way (`InitApply`).
    pub fn relist_apply(&mut self, pod: Arc<CachedPod>) {
        self.relisted.push(pod);
    }

    /// The relist is complete (`InitDone`): the roster holds the pods it listed, and no other.
    pub fn relist_done(&mut self) {
        let listed = std::mem::take(&mut self.relisted);
        let names: HashSet<(&str, &str)> = (listed.iter())
            .map(|p| (namespace_of(p), name_of(p)))
            .collect();
        let gone: Vec<Arc<CachedPod>> = (self.namespaces.values())
            .flat_map(|space| space.by_name.iter())
            .filter(|p| !names.contains(&(namespace_of(&p.0), name_of(&p.0))))
            .map(|p| p.0.clone())
            .collect();
        drop(names);
        for pod in &gone {
            self.delete(pod);
        }
        for pod in listed {
            self.apply(pod);
        }
    }

    /// How many pods it holds.
    pub fn len(&self) -> usize {
        self.namespaces.values().map(|s| s.by_name.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// The pod named `name` in `ns`.
    pub fn get(&self, ns: &str, name: &str) -> Option<&Arc<CachedPod>> {
        Some(&self.namespaces.get(ns)?.by_name.get(name)?.0)
    }

    /// The pod with `uid` in `ns`.
    pub fn get_by_uid(&self, ns: &str, uid: &str) -> Option<&Arc<CachedPod>> {
        Some(&self.namespaces.get(ns)?.by_uid.get(uid)?.0)
    }

    /// The pods the controller with `uid` controls in `ns`.
    pub fn controlled(&self, ns: &str, uid: &str) -> Controlled {
        let group = self.namespaces.get(ns).and_then(|s| s.groups.get(uid));
        group.map_or_else(Controlled::none, Group::controlled)
    }

    /// The pods of `ns` without a controller reference, in name order.
    pub fn orphans(&self, ns: &str) -> impl Iterator<Item = &Arc<CachedPod>> {
        let space = self.namespaces.get(ns);
        space
            .into_iter()
            .flat_map(|s| s.orphans.iter().map(|p| &p.0))
    }

    /// The pods `uid` controls in `ns`, split by whether `selector` matches them. `matches`
    /// is asked only of the pods that joined the group or changed labels since the group's
    /// last claim, or of all if that claim used another selector (see the module doc).
    pub(crate) fn keep(
        &mut self,
        ns: &str,
        uid: &str,
        selector: &LabelSelector,
        mut matches: impl FnMut(&CachedPod) -> bool,
    ) -> Kept {
        let group = self
            .namespaces
            .get_mut(ns)
            .and_then(|s| s.groups.get_mut(uid));
        let Some(group) = group else {
            return Kept {
                matched: Controlled::none(),
                unmatched: Vec::new(),
            };
        };
        group.rematch(selector, &mut matches);
        let no_claim = BTreeSet::new();
        let unmatched = group.claimed.as_ref().map_or(&no_claim, |c| &c.unmatched);
        if unmatched.is_empty() {
            return Kept {
                matched: group.controlled(),
                unmatched: Vec::new(),
            };
        }
        let mut counts = group.counts.clone();
        for p in unmatched {
            count(&mut counts, &p.0, -1);
        }
        let pods = (group.pods.iter())
            .filter(|p| !unmatched.contains(*p))
            .map(|p| p.0.clone())
            .collect();
        Kept {
            // Rare (a pod relabelled out of the selector): the plan reads the pods then.
            matched: Controlled {
                pods,
                counts,
                settled: None,
            },
            unmatched: unmatched.iter().map(|p| p.0.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests;
