//! The incremental bookkeeping against the full one: for random objects and random merge,
//! strategic merge and apply writes, what `track_update` stores from the changed fields alone
//! is what it stores from every field of both versions.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::*;
use crate::leaves::leaves;
use crate::patch::{self, ListSemantics};

const SEM: ListSemantics<'static> = ListSemantics::Builtin;

/// Field names: some name lists the built-in semantics merge by key (`containers`,
/// `conditions`, `ports`, `env`), some plain fields, some atomic lists.
const FIELDS: &[&str] = &[
    "containers",
    "conditions",
    "ports",
    "env",
    "image",
    "name",
    "type",
    "status",
    "args",
    "x",
    "y",
];
const KEYS: &[&str] = &["a", "b", "c"];

fn scalar(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..5) {
        0 => json!(rng.u8(..4)),
        1 => json!(rng.bool()),
        2 => Value::Null,
        _ => json!(KEYS[rng.usize(..KEYS.len())]),
    }
}

/// A list item: mostly an object with the merge keys of the lists above (from few values, so
/// that two items sometimes share a key), sometimes a scalar.
fn item(rng: &mut fastrand::Rng, depth: u32) -> Value {
    if rng.u8(..8) == 0 {
        return scalar(rng);
    }
    let mut m = match value(rng, depth) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for k in ["name", "type", "containerPort"] {
        if rng.u8(..3) > 0 {
            m.insert(k.into(), json!(KEYS[rng.usize(..KEYS.len())]));
        }
    }
    Value::Object(m)
}

fn value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    if depth == 0 {
        return scalar(rng);
    }
    match rng.u8(..6) {
        0 => scalar(rng),
        1 => Value::Array((0..rng.usize(..4)).map(|_| item(rng, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.usize(..4) {
                let k = FIELDS[rng.usize(..FIELDS.len())];
                m.insert(k.into(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

fn metadata(rng: &mut fastrand::Rng) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!("p"));
    for k in ["labels", "annotations"] {
        if rng.bool() {
            let pairs: Map<String, Value> = (0..rng.usize(..3))
                .map(|_| (KEYS[rng.usize(..KEYS.len())].to_string(), scalar(rng)))
                .collect();
            m.insert(k.into(), Value::Object(pairs));
        }
    }
    if rng.bool() {
        let f: Vec<Value> = (0..rng.usize(..3))
            .map(|_| json!(KEYS[rng.usize(..KEYS.len())]))
            .collect();
        m.insert("finalizers".into(), Value::Array(f));
    }
    if rng.bool() {
        let refs: Vec<Value> = (0..rng.usize(..3))
            .map(|_| json!({"uid": KEYS[rng.usize(..KEYS.len())], "kind": scalar(rng)}))
            .collect();
        m.insert("ownerReferences".into(), Value::Array(refs));
    }
    Value::Object(m)
}

fn object(rng: &mut fastrand::Rng) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(rng),
        "spec": value(rng, 4),
        "status": value(rng, 4),
    })
}

/// A write's body: a partial object (with nulls, which delete in a merge patch).
fn patch_body(rng: &mut fastrand::Rng) -> Value {
    let mut m = Map::new();
    for k in ["spec", "status"] {
        if rng.bool() {
            m.insert(k.into(), value(rng, 3));
        }
    }
    if rng.bool() {
        m.insert("metadata".into(), metadata(rng));
    }
    Value::Object(m)
}

fn writer<'a>(rng: &mut fastrand::Rng, manager: &'a str, time: &'a str) -> Writer<'a> {
    let (subresource, scope) = match rng.u8(..3) {
        0 => (None, Scope::All),
        1 => (None, Scope::NoStatus),
        _ => (Some("status"), Scope::StatusOnly),
    };
    Writer {
        manager,
        api_version: if rng.bool() { "v1" } else { "v2" },
        time,
        subresource,
        scope,
    }
}

/// Every path the entries name is a leaf of the object.
fn owned_within(obj: &Value) -> bool {
    let l = leaves(obj, SEM);
    read(obj)
        .iter()
        .all(|e| e.fields.iter().all(|p| l.contains_key(p)))
}

/// `leaves` of both versions compared, as `track_all` does.
fn full_diff(old: &Value, new: &Value) -> (BTreeSet<FieldPath>, BTreeSet<FieldPath>) {
    let (a, b) = (leaves(old, SEM), leaves(new, SEM));
    let changed = b
        .iter()
        .filter(|(p, v)| a.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let gone = a.keys().filter(|p| !b.contains_key(*p)).cloned().collect();
    (changed, gone)
}

#[test]
fn the_diff_is_the_difference_of_the_leaves() {
    let mut rng = fastrand::Rng::with_seed(27);
    for _ in 0..3000 {
        let old = object(&mut rng);
        let mut new = old.clone();
        match rng.u8(..3) {
            0 => patch::merge_patch(&mut new, &patch_body(&mut rng)),
            1 => {
                let _ = patch::strategic_merge(&mut new, &patch_body(&mut rng), &mut vec![]);
            }
            _ => new = object(&mut rng),
        }
        let d = diff(&old, &new, SEM);
        let (changed, gone) = full_diff(&old, &new);
        assert_eq!((&d.changed, &d.gone), (&changed, &gone), "{old}\n{new}");
    }
}

#[test]
fn incremental_bookkeeping_is_the_full_one() {
    let mut rng = fastrand::Rng::with_seed(2027);
    let (mut incremental, mut writes) = (0, 0);
    for _ in 0..300 {
        let mut stored = object(&mut rng);
        let w = writer(&mut rng, "creator", "t0");
        track_update(None, Stored::Unknown, &mut stored, &w, SEM);
        let mut state = Stored::Tracked;
        for step in 0..12 {
            let time = format!("t{}", step + 1);
            let manager = ["a", "b", "c"][rng.usize(..3)];
            let w = writer(&mut rng, manager, &time);
            let body = patch_body(&mut rng);
            let mut new = stored.clone();
            match rng.u8(..4) {
                0 => patch::merge_patch(&mut new, &body),
                1 => {
                    if patch::strategic_merge(&mut new, &body, &mut vec![]).is_err() {
                        continue;
                    }
                }
                2 => {
                    // Server-side apply: bookkept from scratch; what it stores is Unknown.
                    patch::apply_merge(&mut new, &body, &mut vec![], SEM);
                    let Ok(removed) = track_apply(&stored, &mut new, &body, &w, true, SEM) else {
                        continue;
                    };
                    for p in &removed {
                        remove_path(&mut new, p);
                    }
                    stored = new;
                    state = Stored::Unknown;
                    continue;
                }
                _ => {
                    // A client that sends managedFields of its own.
                    patch::merge_patch(&mut new, &body);
                    if rng.bool() {
                        let mf = json!([{"manager": "z", "operation": "Update",
                            "fieldsV1": {"f:spec": {"f:x": {}}}}]);
                        new["metadata"]["managedFields"] = mf;
                    }
                }
            }
            let applies = state == Stored::Tracked && incremental_applies(&stored, &new);
            let mut full = new.clone();
            track_update(Some(&stored), Stored::Unknown, &mut full, &w, SEM);
            let visited = track_update(Some(&stored), state, &mut new, &w, SEM);
            assert_eq!(new, full, "stored {stored}\nbody {body}");
            assert!(owned_within(&new), "{new}");
            writes += 1;
            if applies {
                incremental += 1;
                assert!(visited <= leaves(&stored, SEM).len() + leaves(&full, SEM).len());
            }
            stored = new;
            state = Stored::Tracked;
        }
    }
    assert!(
        incremental * 2 > writes,
        "{incremental} of {writes} incremental"
    );
}

/// A pod of `n` containers as the kubelet leaves it, owned by the kubelet and the operator.
fn big_pod(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": "img:1", "args": ["--a"],
            "ports": [{"containerPort": 7000 + i}], "env": [{"name": "E", "value": "v"}]})
        })
        .collect();
    let statuses: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "ready": true, "restartCount": 0}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": containers},
        "status": {"phase": "Running", "containerStatuses": statuses, "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]},
    })
}

#[test]
fn a_status_write_looks_at_the_fields_it_changed_not_the_pod() {
    let w = |manager, scope, subresource| Writer {
        manager,
        api_version: "v1",
        time: "t",
        subresource,
        scope,
    };
    let mut pod = big_pod(100);
    track_update(
        None,
        Stored::Unknown,
        &mut pod,
        &w("operator", Scope::NoStatus, None),
        SEM,
    );
    let kubelet = w("kubelet", Scope::StatusOnly, Some("status"));
    let mut new = pod.clone();
    new["status"]["conditions"][0]["status"] = json!("False");
    let mut full = new.clone();
    let all = track_update(Some(&pod), Stored::Unknown, &mut full, &kubelet, SEM);
    let visited = track_update(Some(&pod), Stored::Tracked, &mut new, &kubelet, SEM);
    assert_eq!(new, full);
    assert_eq!(visited, 3, "the condition item and its old and new status");
    assert!(all > 1000, "{all} leaves in the full bookkeeping");
    let fields: BTreeMap<String, Value> = read(&new)
        .into_iter()
        .map(|e| (e.manager, encode(&e.fields)))
        .collect();
    assert_eq!(
        fields["kubelet"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {"f:status": {}}}}})
    );
}
