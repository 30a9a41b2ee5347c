use super::*;
use crate::api::GameDeployment;
use crate::inplace::{Record, encode};
use crate::planner::rules::adoption::{self, claim_from};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::json;

const APP: &str = "test-gamedeployment";
const NAMESPACES: [&str; 2] = ["default", "games"];
const OWNERS: [&str; 3] = ["gd-a", "gd-b", "rs-uid"];

/// A pod as the watch would deliver it; `owner` is its controller's uid.
struct Spec<'a> {
    ns: &'a str,
    name: &'a str,
    uid: &'a str,
    rv: u64,
    owner: Option<&'a str>,
    app: Option<&'a str>,
    state: Option<&'a str>,
    deleting: bool,
    phase: &'a str,
    /// Its revision label and, Ready and released by the readiness gate, since when (seconds
    /// after a fixed time; `None` for no transition time).
    serving: Option<(&'a str, Option<i64>)>,
}

fn build(s: &Spec) -> Arc<CachedPod> {
    let refs: Vec<_> = (s.owner.iter())
        .map(|uid| {
            json!({"apiVersion": "tkex.tencent.com/v1alpha1", "kind": "GameDeployment",
            "name": "x", "uid": uid, "controller": true})
        })
        // A non-controller reference makes no pod controlled.
        .chain([json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "cm"})])
        .collect();
    let mut meta = json!({"name": s.name, "namespace": s.ns, "uid": s.uid,
        "resourceVersion": s.rv.to_string(), "ownerReferences": refs,
        "labels": {"tier": "x"}, "annotations": {}});
    if let Some(app) = s.app {
        meta["labels"]["app"] = json!(app);
    }
    if let Some(state) = s.state {
        meta["annotations"][crate::names::ANNOTATION_STATE] = json!(state);
    }
    if s.deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    let mut status = json!({"phase": s.phase});
    if let Some((revision, since)) = s.serving {
        meta["labels"][crate::names::LABEL_REVISION] = json!(revision);
        let at =
            since.map(|s| (jiff::Timestamp::from_second(1_767_225_600 + s).unwrap()).to_string());
        status["conditions"] = json!([
            {"type": "Ready", "status": "True", "lastTransitionTime": at},
            {"type": crate::names::CONDITION_INPLACE_READY, "status": "True"},
        ]);
    }
    let pod: Pod = serde_json::from_value(json!({"metadata": meta, "status": status})).unwrap();
    Arc::new(CachedPod::from(pod))
}

/// State annotations: valid records in a few states, and one that does not decode.
fn states() -> Vec<String> {
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut out: Vec<String> = [State::Ready, State::Unready, State::Failed]
        .into_iter()
        .map(|state| {
            let mut r = Record::start("rev", now);
            r.state = state;
            encode(&r)
        })
        .collect();
    out.push("{not json".into());
    out
}

/// What a roster built from `pods` holds, worked out the plain way.
fn expected(pods: &BTreeMap<(String, String), Arc<CachedPod>>) -> Projection {
    let mut out = Projection::default();
    for ((ns, name), pod) in pods {
        let space = out.entry(ns.clone()).or_default();
        space.names.push(name.clone());
        if let Some(uid) = pod.meta().uid.clone() {
            space.uids.push(uid);
        }
        match controller_uid(pod) {
            Some(owner) => {
                let (pods, counts, tally) = space.groups.entry(owner.to_owned()).or_default();
                pods.push(Arc::as_ptr(pod));
                if let Some(state) = machine_state(pod) {
                    *counts.entry(state).or_default() += 1;
                }
                tally.count(pod, 1);
            }
            None => space.orphans.push(Arc::as_ptr(pod)),
        }
    }
    for space in out.values_mut() {
        space.uids.sort();
    }
    out
}

type Projection = BTreeMap<String, Space>;

#[derive(Debug, Default, PartialEq)]
struct Space {
    names: Vec<String>,
    uids: Vec<String>,
    /// Pods (by identity: the roster must share the latest `Arc`), counts and tally per
    /// controller.
    groups: BTreeMap<String, (Vec<*const CachedPod>, MachineCounts, Tally)>,
    orphans: Vec<*const CachedPod>,
}

/// What `roster` holds, read through its fields; also checks that what each group's last
/// claim learnt refers to the group's current pods.
fn projection(roster: &Roster) -> Projection {
    let mut out = Projection::default();
    for (ns, space) in &roster.namespaces {
        let mut names: Vec<String> = (space.by_name.iter())
            .map(|p| name_of(&p.0).to_owned())
            .collect();
        names.sort();
        let mut uids: Vec<String> = space.by_uid.iter().map(|p| p.uid().to_owned()).collect();
        uids.sort();
        let groups = (space.groups.iter())
            .map(|(uid, g)| {
                if let Some(c) = &g.claimed {
                    for p in c.unmatched.iter().chain(&c.relabeled) {
                        let current = g.pods.get(name_of(&p.0)).expect("a pod of the group");
                        assert!(Arc::ptr_eq(&current.0, &p.0), "a stale pod in the claim");
                    }
                }
                let pods = g.pods.iter().map(|p| Arc::as_ptr(&p.0)).collect();
                (uid.clone(), (pods, g.counts.clone(), g.tally.clone()))
            })
            .collect();
        let orphans = space.orphans.iter().map(|p| Arc::as_ptr(&p.0)).collect();
        let space = Space {
            names,
            uids,
            groups,
            orphans,
        };
        out.insert(ns.clone(), space);
    }
    out
}

/// Random pods and changes to them, over few names so that they collide.
struct Gen {
    rng: fastrand::Rng,
    states: Vec<String>,
    uids: u64,
    rv: u64,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: fastrand::Rng::with_seed(seed),
            states: states(),
            uids: 0,
            rv: 0,
        }
    }

    /// A pod named `name` in `ns`: a new one (a new uid), or `old` changed.
    fn pod(&mut self, ns: &str, name: &str, old: Option<&CachedPod>) -> Arc<CachedPod> {
        self.rv += 1;
        let uid = match old {
            Some(old) if self.rng.u8(..4) > 0 => old.meta().uid.clone().unwrap_or_default(),
            _ => {
                self.uids += 1;
                format!("uid-{}", self.uids)
            }
        };
        let r = &mut self.rng;
        let owner = [None, Some(OWNERS[0]), Some(OWNERS[1]), Some(OWNERS[2])][r.usize(..4)];
        let app = [None, Some(APP), Some(APP), Some("other")][r.usize(..4)];
        let state = (r.bool()).then(|| self.states[r.usize(..self.states.len())].as_str());
        let spec = Spec {
            ns,
            name,
            uid: &uid,
            rv: self.rv,
            owner,
            app,
            state,
            deleting: r.u8(..5) == 0,
            phase: ["Running", "Running", "Pending", "Failed"][r.usize(..4)],
            serving: (r.u8(..3) > 0).then(|| {
                let since = [None, Some(0), Some(30), Some(60)][r.usize(..4)];
                (["rev-1", "rev-2"][r.usize(..2)], since)
            }),
        };
        let mut pod = build(&spec);
        // Often only one thing changes: the rest as it was.
        if let Some(old) = old.filter(|_| r.bool()) {
            let mut changed = old.clone();
            changed.meta_mut().resource_version = Some(self.rv.to_string());
            match r.u8(..3) {
                0 => changed.meta_mut().deletion_timestamp = pod.meta().deletion_timestamp.clone(),
                1 => changed.meta_mut().owner_references = pod.meta().owner_references.clone(),
                _ => changed = CachedPod::clone(&pod),
            }
            pod = Arc::new(changed);
        }
        pod
    }

    fn key(&mut self) -> (String, String) {
        let ns = NAMESPACES[self.rng.usize(..NAMESPACES.len())];
        (ns.to_owned(), format!("p-{:02}", self.rng.u8(..24)))
    }

    /// A GameDeployment claiming: one of two uids, in either namespace, with one of two
    /// usable selectors or one of three unusable ones, sometimes being deleted.
    fn gd(&mut self) -> GameDeployment {
        let mut gd = crate::api::seed_example();
        let r = &mut self.rng;
        gd.metadata.uid = Some(OWNERS[r.usize(..2)].into());
        gd.metadata.namespace = Some(NAMESPACES[r.usize(..2)].into());
        if r.u8(..6) == 0 {
            gd.metadata.deletion_timestamp = gd_deleted();
        }
        let exists = |key: &str| LabelSelectorRequirement {
            key: key.into(),
            operator: "Exists".into(),
            values: None,
        };
        match r.u8(..9) {
            0 => gd.spec.selector.match_expressions = Some(vec![exists("tier")]),
            1 => gd.spec.selector.match_labels = None,
            2 => gd.spec.selector.match_expressions = Some(vec![exists("missing")]),
            3 => {
                gd.spec.selector.match_labels = None;
                gd.spec.selector.match_expressions = Some(vec![LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "In".into(),
                    values: Some(vec![APP.into(), "other".into()]),
                }]);
            }
            _ => {}
        }
        gd
    }
}

fn gd_deleted() -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ))
}

fn ptrs<'a>(pods: impl IntoIterator<Item = &'a Arc<CachedPod>>) -> Vec<*const CachedPod> {
    pods.into_iter().map(Arc::as_ptr).collect()
}

fn refs<'a>(pods: impl IntoIterator<Item = &'a CachedPod>) -> Vec<*const CachedPod> {
    pods.into_iter().map(|p| p as *const CachedPod).collect()
}

/// The roster's claim is the claim over every pod of the namespace; how many pods it adopts
/// and releases, and whether it found its pods settled.
fn claims_agree(gd: &GameDeployment, roster: &mut Roster, pods: &[Arc<CachedPod>]) -> [usize; 3] {
    let from_roster = claim_from(gd, roster);
    let changes = [
        from_roster.adopt.len(),
        from_roster.release.len(),
        usize::from(from_roster.owned.settled.is_some()),
    ];
    let all: Vec<&CachedPod> = pods.iter().map(|p| p.as_ref()).collect();
    match adoption::claim(gd, &all) {
        Ok(c) => {
            assert_eq!(from_roster.refused, None);
            assert_eq!(
                ptrs(&from_roster.owned.pods),
                refs(c.owned.iter().map(|p| **p))
            );
            assert_eq!(ptrs(&from_roster.adopt), refs(c.adopt.iter().map(|p| **p)));
            assert_eq!(
                ptrs(&from_roster.release),
                refs(c.release.iter().map(|p| **p))
            );
            let mut counts = MachineCounts::new();
            for state in c.owned.iter().filter_map(|p| machine_state(p)) {
                *counts.entry(state).or_default() += 1;
            }
            assert_eq!(from_roster.owned.counts, counts);
            // A claim that leaves pods out (rare) hands the plan the pods, not the tally.
            let mut tally = Tally::default();
            for p in &c.owned {
                tally.count(p, 1);
            }
            // Without pods left out the tally is the one of the claimed pods, `None` included.
            let uid = gd.metadata.uid.as_deref().unwrap_or_default();
            let controlled = (all.iter())
                .filter(|p| p.meta().namespace == gd.metadata.namespace)
                .filter(|p| adoption::controlled_by(**p, uid))
                .count();
            let settled = from_roster.owned.settled.as_ref();
            if controlled == c.owned.len() {
                assert_eq!(settled, tally.settled().as_ref());
            } else {
                assert_eq!(settled, None);
            }
        }
        Err(e) => {
            assert_eq!(from_roster.refused, Some(e));
            let uid = gd.metadata.uid.as_deref().unwrap();
            let controlled = (all.iter().copied())
                .filter(|p| p.meta().namespace == gd.metadata.namespace)
                .filter(|p| adoption::controlled_by(*p, uid));
            assert_eq!(ptrs(&from_roster.owned.pods), refs(controlled));
            assert!(from_roster.adopt.is_empty() && from_roster.release.is_empty());
        }
    }
    changes
}

/// One random event, applied to the roster and to the plain set of pods it must project.
fn step(g: &mut Gen, roster: &mut Roster, pods: &mut BTreeMap<(String, String), Arc<CachedPod>>) {
    match g.rng.u8(..20) {
        // A relist: most pods again (some changed), some gone, some new; checked as it goes.
        0 => {
            let before = projection(roster);
            roster.relist_start();
            let mut listed = BTreeMap::new();
            let mut keys: Vec<_> = pods.keys().cloned().collect();
            keys.extend((0..g.rng.usize(..4)).map(|_| g.key()));
            g.rng.shuffle(&mut keys);
            for (ns, name) in keys {
                if g.rng.u8(..6) == 0 {
                    continue;
                }
                let old = pods.get(&(ns.clone(), name.clone())).cloned();
                let pod = match old {
                    Some(old) if g.rng.bool() => old,
                    old => g.pod(&ns, &name, old.as_deref()),
                };
                roster.relist_apply(pod.clone());
                listed.insert((ns, name), pod);
                assert_eq!(projection(roster), before, "a relist shows only when done");
            }
            roster.relist_done();
            *pods = listed;
        }
        1..=5 => {
            let key = match pods.keys().nth(g.rng.usize(..pods.len().max(1))) {
                Some(key) if g.rng.u8(..4) > 0 => key.clone(),
                _ => g.key(),
            };
            if let Some(pod) = pods.remove(&key) {
                roster.delete(&pod);
            } else {
                // The Delete of a pod the cache never saw: nothing happens.
                let pod = g.pod(&key.0, &key.1, None);
                roster.delete(&pod);
            }
        }
        _ => {
            let key = match pods.keys().nth(g.rng.usize(..pods.len().max(1))) {
                Some(key) if g.rng.bool() => key.clone(),
                _ => g.key(),
            };
            let old = pods.get(&key).cloned();
            let pod = g.pod(&key.0, &key.1, old.as_deref());
            roster.apply(pod.clone());
            pods.insert(key, pod);
        }
    }
}

/// Eight seeds of 1,500 random events each, `after` called after every event with the seed,
/// the event's number, the generator, the roster and the pods it must hold.
fn random_events(
    mut after: impl FnMut(
        u64,
        usize,
        &mut Gen,
        &mut Roster,
        &BTreeMap<(String, String), Arc<CachedPod>>,
    ),
) {
    for seed in 0..8 {
        let mut g = Gen::new(seed);
        let mut roster = Roster::default();
        let mut pods = BTreeMap::new();
        for i in 0..1500 {
            step(&mut g, &mut roster, &mut pods);
            after(seed, i, &mut g, &mut roster, &pods);
        }
    }
}

#[test]
fn the_roster_is_the_projection_of_its_pods_after_every_event() {
    let mut settled_groups = 0;
    random_events(|seed, i, _, roster, pods| {
        let projected = projection(roster);
        assert_eq!(projected, expected(pods), "seed {seed}, event {i}");
        settled_groups += (projected.values())
            .flat_map(|s| s.groups.values())
            .filter(|(_, _, tally)| tally.settled().is_some())
            .count();
        assert_eq!(roster.len(), pods.len());
        for ((ns, name), pod) in pods {
            assert!(Arc::ptr_eq(roster.get(ns, name).unwrap(), pod));
        }
    });
    // The sequences reach settled groups, not only unsettled ones.
    assert!(settled_groups > 100, "{settled_groups}");
}

#[test]
fn claims_from_the_roster_are_claims_over_every_pod_of_the_namespace() {
    let mut changes = [0, 0, 0];
    random_events(|_, _, g, roster, pods| {
        // Claims come between events, any number of them.
        while g.rng.u8(..3) == 0 {
            let gd = g.gd();
            let all: Vec<Arc<CachedPod>> = pods.values().cloned().collect();
            let [adopt, release, settled] = claims_agree(&gd, roster, &all);
            changes = [
                changes[0] + adopt,
                changes[1] + release,
                changes[2] + settled,
            ];
        }
    });
    // The sequences exercise adoption and release, not only keeping, and settled groups.
    assert!(
        changes[0] > 100 && changes[1] > 100 && changes[2] > 10,
        "{changes:?}"
    );
}

fn owned(ns: &str, name: &str, app: &str, state: Option<&str>) -> Arc<CachedPod> {
    build(&Spec {
        ns,
        name,
        uid: name,
        rv: 1,
        owner: Some("gd-uid"),
        app: Some(app),
        state,
        deleting: false,
        phase: "Running",
        serving: None,
    })
}

#[test]
fn a_claim_evaluates_the_selector_only_where_its_answer_may_have_changed() {
    let gd = crate::api::seed_example();
    let ready = &states()[0];
    let mut roster = Roster::default();
    for i in 0..100 {
        roster.apply(owned("default", &format!("p-{i:03}"), APP, Some(ready)));
    }
    let first = claim_from(&gd, &mut roster);
    assert_eq!(first.evaluated, 100, "the first claim evaluates every pod");
    assert_eq!(first.owned.pods.len(), 100);
    assert_eq!(
        first.owned.counts,
        MachineCounts::from([(State::Ready, 100)])
    );
    assert_eq!(claim_from(&gd, &mut roster).evaluated, 0, "nothing changed");
    // A new version with the same labels (status, annotations): not evaluated.
    let mut same = CachedPod::clone(roster.get("default", "p-007").unwrap());
    same.meta_mut().resource_version = Some("2".into());
    roster.apply(Arc::new(same));
    assert_eq!(
        claim_from(&gd, &mut roster).evaluated,
        0,
        "labels unchanged"
    );
    // Relabelled: evaluated once, and released.
    roster.apply(owned("default", "p-042", "other", None));
    let relabeled = claim_from(&gd, &mut roster);
    assert_eq!(relabeled.evaluated, 1);
    assert_eq!(
        ptrs(&relabeled.release),
        ptrs([roster.get("default", "p-042").unwrap()])
    );
    assert_eq!(relabeled.owned.pods.len(), 99);
    assert_eq!(
        relabeled.owned.counts,
        MachineCounts::from([(State::Ready, 99)])
    );
    // Still unmatched at the next claim without being evaluated again.
    let again = claim_from(&gd, &mut roster);
    assert_eq!((again.evaluated, again.release.len()), (0, 1));
    // Orphans of the namespace are evaluated at every claim; other namespaces' never.
    let mut orphan = CachedPod::clone(&owned("default", "z-orphan", APP, None));
    orphan.meta_mut().owner_references = None;
    roster.apply(Arc::new(orphan));
    let mut elsewhere = CachedPod::clone(&owned("games", "y-orphan", APP, None));
    elsewhere.meta_mut().owner_references = None;
    roster.apply(Arc::new(elsewhere));
    for _ in 0..2 {
        let c = claim_from(&gd, &mut roster);
        assert_eq!((c.evaluated, c.adopt.len()), (1, 1));
    }
    // Another selector: every pod again.
    let mut wider = gd.clone();
    wider.spec.selector.match_labels = None;
    wider.spec.selector.match_expressions = Some(vec![LabelSelectorRequirement {
        key: "app".into(),
        operator: "In".into(),
        values: Some(vec![APP.into(), "other".into()]),
    }]);
    let c = claim_from(&wider, &mut roster);
    assert_eq!(
        (c.evaluated, c.owned.pods.len(), c.release.len()),
        (100 + 1, 100, 0)
    );
    // A GameDeployment being deleted adopts nothing, so evaluates no orphan.
    let mut deleting = wider.clone();
    deleting.metadata.deletion_timestamp = gd_deleted();
    let c = claim_from(&deleting, &mut roster);
    assert_eq!((c.evaluated, c.adopt.len(), c.release.len()), (0, 0, 0));
}

#[test]
fn a_relist_removes_the_pods_it_does_not_list_and_keeps_what_claims_learnt() {
    let gd = crate::api::seed_example();
    let mut roster = Roster::default();
    let (a, b) = (
        owned("default", "a", APP, None),
        owned("default", "b", APP, None),
    );
    roster.apply(a.clone());
    roster.apply(b);
    assert_eq!(claim_from(&gd, &mut roster).evaluated, 2);
    roster.relist_start();
    roster.relist_apply(a.clone());
    assert_eq!(roster.len(), 2, "the old pods until the relist is done");
    roster.relist_done();
    assert_eq!(roster.len(), 1);
    assert!(roster.get("default", "b").is_none());
    let c = claim_from(&gd, &mut roster);
    assert_eq!((c.evaluated, ptrs(&c.owned.pods)), (0, ptrs([&a])));
    assert!(Arc::ptr_eq(roster.get_by_uid("default", "a").unwrap(), &a));
    assert!(roster.get_by_uid("default", "b").is_none());
    roster.relist_start();
    roster.relist_done();
    assert!(roster.is_empty());
}

#[test]
fn an_adopted_pod_is_counted_in_its_state_at_its_place_and_the_plan_reads_the_pods() {
    let mut c = Controlled::none();
    assert!(c.settled.is_some(), "no pods: settled");
    let unready = &states()[1];
    c.adopt(owned("default", "b", APP, None));
    c.adopt(owned("default", "a", APP, Some(unready)));
    let names: Vec<&str> = c.pods.iter().map(|p| p.view().name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b"],
        "adopted pods keep the pods in name order"
    );
    assert_eq!(c.counts.get(&State::Unready), Some(&1));
    assert_eq!(
        c.counts.values().sum::<i64>(),
        1,
        "a pod with no record has no state"
    );
    assert_eq!(c.settled, None, "the tally did not count them");
}
