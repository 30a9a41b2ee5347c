//! An object's fields as FieldsV1 leaf paths (what `managedFields` names), and what a write
//! changed among them: [`leaves`] walks a whole object, [`diff`] walks two versions together
//! and descends only where they differ, so its cost follows the change, not the object.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::patch::{ListSemantics, ListStrategy};

/// A field path as FieldsV1 segments, e.g. `["f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:image"]`.
pub type FieldPath = Vec<String>;

fn key_json(v: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), v.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m).to_string()
}

/// The value of a list element's own (`.`) path.
static ELEMENT: Value = Value::Null;

/// Leaf paths of `v` with their values (borrowed: every write walks two versions of the
/// object, and copying each leaf was most of that cost), skipping metadata the server owns.
pub fn leaves<'v>(v: &'v Value, sem: ListSemantics<'_>) -> BTreeMap<FieldPath, &'v Value> {
    let mut out = BTreeMap::new();
    if let Value::Object(m) = v {
        for (k, child) in m {
            match k.as_str() {
                "apiVersion" | "kind" => continue,
                "metadata" => {
                    for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(c) = child.get(mk) {
                            let mut fp = vec!["f:metadata".to_string()];
                            let mut names = vec!["metadata".to_string()];
                            walk(c, mk, &mut fp, &mut names, sem, &mut out);
                        }
                    }
                }
                _ => walk(child, k, &mut vec![], &mut vec![], sem, &mut out),
            }
        }
    }
    out
}

fn walk<'v>(
    v: &'v Value,
    name: &str,
    fp: &mut FieldPath,
    names: &mut Vec<String>,
    sem: ListSemantics<'_>,
    out: &mut BTreeMap<FieldPath, &'v Value>,
) {
    fp.push(format!("f:{name}"));
    names.push(name.to_string());
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                walk(c, k, fp, names, sem, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match sem.list_strategy(names) {
            ListStrategy::Map(keys) => {
                names.push("[]".into());
                for it in items {
                    fp.push(format!("k:{}", key_json(it, &keys)));
                    out.insert(with(fp, "."), &ELEMENT);
                    if let Value::Object(im) = it {
                        for (k, c) in im {
                            walk(c, k, fp, names, sem, out);
                        }
                    }
                    fp.pop();
                }
                names.pop();
            }
            ListStrategy::Set => {
                for it in items {
                    fp.push(format!("v:{it}"));
                    out.insert(fp.clone(), it);
                    fp.pop();
                }
            }
            ListStrategy::Atomic => {
                out.insert(fp.clone(), v);
            }
        },
        _ => {
            out.insert(fp.clone(), v);
        }
    }
    fp.pop();
    names.pop();
}

fn with(fp: &FieldPath, seg: &str) -> FieldPath {
    let mut p = fp.clone();
    p.push(seg.to_string());
    p
}

/// What a write changed, as the leaf paths of [`leaves`] would give it: `changed` are the
/// paths of the new version whose value is new or different, `gone` the paths of the old
/// version the new one no longer has. `visited` counts the leaf paths looked at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub changed: BTreeSet<FieldPath>,
    pub gone: BTreeSet<FieldPath>,
    pub visited: usize,
}

/// The [`Diff`] of `leaves(old)` and `leaves(new)`, without walking what is equal in both.
pub fn diff(old: &Value, new: &Value, sem: ListSemantics<'_>) -> Diff {
    let mut d = Diff::default();
    let empty = Map::new();
    let om = old.as_object().unwrap_or(&empty);
    let nm = new.as_object().unwrap_or(&empty);
    for k in union(om, nm) {
        match k {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let (a, b) = (om.get(k), nm.get(k));
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    let mut fp = vec!["f:metadata".to_string()];
                    let mut names = vec!["metadata".to_string()];
                    let (a, b) = (a.and_then(|m| m.get(mk)), b.and_then(|m| m.get(mk)));
                    diff_node(a, b, mk, &mut fp, &mut names, sem, &mut d);
                }
            }
            _ => diff_node(
                om.get(k),
                nm.get(k),
                k,
                &mut vec![],
                &mut vec![],
                sem,
                &mut d,
            ),
        }
    }
    d
}

/// The keys of two maps, each once.
fn union<'m>(a: &'m Map<String, Value>, b: &'m Map<String, Value>) -> Vec<&'m str> {
    let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
    keys.extend(b.keys().map(String::as_str).filter(|k| !a.contains_key(*k)));
    keys
}

/// The diff under field `name`, as [`walk`] would find it in each version.
fn diff_node(
    old: Option<&Value>,
    new: Option<&Value>,
    name: &str,
    fp: &mut FieldPath,
    names: &mut Vec<String>,
    sem: ListSemantics<'_>,
    d: &mut Diff,
) {
    if old == new {
        return;
    }
    let descended = match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) if !a.is_empty() && !b.is_empty() => {
            fp.push(format!("f:{name}"));
            names.push(name.to_string());
            for k in union(a, b) {
                diff_node(a.get(k), b.get(k), k, fp, names, sem, d);
            }
            fp.pop();
            names.pop();
            true
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if !a.is_empty() && !b.is_empty() => {
            fp.push(format!("f:{name}"));
            names.push(name.to_string());
            let done = match sem.list_strategy(names) {
                ListStrategy::Map(keys) => diff_map_list(a, b, &keys, fp, names, sem, d),
                ListStrategy::Set => {
                    let olds: BTreeSet<String> = a.iter().map(Value::to_string).collect();
                    let news: BTreeSet<String> = b.iter().map(Value::to_string).collect();
                    d.visited += olds.len() + news.len();
                    let at = |v: &String| with(fp, &format!("v:{v}"));
                    d.changed.extend(news.difference(&olds).map(at));
                    d.gone.extend(olds.difference(&news).map(at));
                    true
                }
                ListStrategy::Atomic => {
                    d.visited += 1;
                    d.changed.insert(fp.clone());
                    true
                }
            };
            fp.pop();
            names.pop();
            done
        }
        _ => false,
    };
    if !descended {
        whole(old, new, name, fp, names, sem, d);
    }
}

/// The items of a map list by their key, or `None` when two items share a key (their leaves
/// overlap, and only [`whole`] gives the answer `leaves` gives).
fn by_key<'v>(items: &'v [Value], keys: &[String]) -> Option<HashMap<String, &'v Value>> {
    let mut out = HashMap::with_capacity(items.len());
    for it in items {
        if out.insert(key_json(it, keys), it).is_some() {
            return None;
        }
    }
    Some(out)
}

/// A map list's diff item by item (each item's own `.` path, then its fields). Returns false,
/// having done nothing, when a version has two items with one key.
fn diff_map_list(
    old: &[Value],
    new: &[Value],
    keys: &[String],
    fp: &mut FieldPath,
    names: &mut Vec<String>,
    sem: ListSemantics<'_>,
    d: &mut Diff,
) -> bool {
    let (Some(olds), Some(news)) = (by_key(old, keys), by_key(new, keys)) else {
        return false;
    };
    names.push("[]".into());
    let mut all: Vec<&String> = olds.keys().collect();
    all.extend(news.keys().filter(|k| !olds.contains_key(*k)));
    for key in all {
        let (a, b) = (olds.get(key).copied(), news.get(key).copied());
        if a == b {
            continue;
        }
        fp.push(format!("k:{key}"));
        d.visited += 1;
        match (a, b) {
            (Some(_), None) => d.gone.insert(with(fp, ".")),
            (None, Some(_)) => d.changed.insert(with(fp, ".")),
            _ => false,
        };
        let empty = Map::new();
        let am = a.and_then(Value::as_object).unwrap_or(&empty);
        let bm = b.and_then(Value::as_object).unwrap_or(&empty);
        for k in union(am, bm) {
            diff_node(am.get(k), bm.get(k), k, fp, names, sem, d);
        }
        fp.pop();
    }
    names.pop();
    true
}

/// The diff under field `name` from the whole leaves of both versions there.
fn whole(
    old: Option<&Value>,
    new: Option<&Value>,
    name: &str,
    fp: &mut FieldPath,
    names: &mut Vec<String>,
    sem: ListSemantics<'_>,
    d: &mut Diff,
) {
    let mut before = BTreeMap::new();
    let mut after = BTreeMap::new();
    if let Some(v) = old {
        walk(v, name, fp, names, sem, &mut before);
    }
    if let Some(v) = new {
        walk(v, name, fp, names, sem, &mut after);
    }
    d.visited += before.len() + after.len();
    for (p, v) in &after {
        if before.get(p) != Some(v) {
            d.changed.insert(p.clone());
        }
    }
    d.gone
        .extend(before.into_keys().filter(|p| !after.contains_key(p)));
}
