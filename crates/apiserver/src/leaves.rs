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
    let mut w = Differ {
        fp: Vec::new(),
        names: Vec::new(),
        sem,
        d: Diff::default(),
    };
    let empty = Map::new();
    let om = old.as_object().unwrap_or(&empty);
    let nm = new.as_object().unwrap_or(&empty);
    for k in union(om, nm) {
        match k {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let (a, b) = (om.get(k), nm.get(k));
                w.fp.push("f:metadata".into());
                w.names.push("metadata".into());
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    w.node(a.and_then(|m| m.get(mk)), b.and_then(|m| m.get(mk)), mk);
                }
                w.fp.pop();
                w.names.pop();
            }
            _ => w.node(om.get(k), nm.get(k), k),
        }
    }
    w.d
}

/// The keys of two maps, each once.
fn union<'m>(a: &'m Map<String, Value>, b: &'m Map<String, Value>) -> Vec<&'m str> {
    let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
    keys.extend(b.keys().map(String::as_str).filter(|k| !a.contains_key(*k)));
    keys
}

/// Where [`diff`] is: the field path and names as [`walk`] keeps them, and the diff so far.
struct Differ<'s> {
    fp: FieldPath,
    names: Vec<String>,
    sem: ListSemantics<'s>,
    d: Diff,
}

impl Differ<'_> {
    /// The diff under field `name`, as [`walk`] would find it in each version.
    fn node(&mut self, old: Option<&Value>, new: Option<&Value>, name: &str) {
        if old == new {
            return;
        }
        let descended = match (old, new) {
            (Some(Value::Object(a)), Some(Value::Object(b))) if !a.is_empty() && !b.is_empty() => {
                self.enter(name);
                self.members(a, b);
                self.leave();
                true
            }
            (Some(Value::Array(a)), Some(Value::Array(b))) if !a.is_empty() && !b.is_empty() => {
                self.enter(name);
                let done = match self.sem.list_strategy(&self.names) {
                    ListStrategy::Map(keys) => self.map_list(a, b, &keys),
                    ListStrategy::Set => {
                        self.set_list(a, b);
                        true
                    }
                    ListStrategy::Atomic => {
                        self.d.visited += 1;
                        self.d.changed.insert(self.fp.clone());
                        true
                    }
                };
                self.leave();
                done
            }
            _ => false,
        };
        if !descended {
            self.whole(old, new, name);
        }
    }

    fn enter(&mut self, name: &str) {
        self.fp.push(format!("f:{name}"));
        self.names.push(name.to_string());
    }

    fn leave(&mut self) {
        self.fp.pop();
        self.names.pop();
    }

    /// The diff of every member of two objects.
    fn members(&mut self, a: &Map<String, Value>, b: &Map<String, Value>) {
        for k in union(a, b) {
            self.node(a.get(k), b.get(k), k);
        }
    }

    /// A set list: an item is its own path (`v:<json>`).
    fn set_list(&mut self, old: &[Value], new: &[Value]) {
        let olds: BTreeSet<String> = old.iter().map(Value::to_string).collect();
        let news: BTreeSet<String> = new.iter().map(Value::to_string).collect();
        self.d.visited += olds.len() + news.len();
        let fp = &self.fp;
        let at = |v: &String| with(fp, &format!("v:{v}"));
        self.d.changed.extend(news.difference(&olds).map(at));
        self.d.gone.extend(olds.difference(&news).map(at));
    }

    /// A map list's diff item by item (each item's own `.` path, then its fields). Returns
    /// false, having done nothing, when a version has two items with one key.
    fn map_list(&mut self, old: &[Value], new: &[Value], keys: &[String]) -> bool {
        let (Some(olds), Some(news)) = (by_key(old, keys), by_key(new, keys)) else {
            return false;
        };
        self.names.push("[]".into());
        let mut all: Vec<&String> = olds.keys().collect();
        all.extend(news.keys().filter(|k| !olds.contains_key(*k)));
        let empty = Map::new();
        for key in all {
            let (a, b) = (olds.get(key).copied(), news.get(key).copied());
            if a == b {
                continue;
            }
            self.fp.push(format!("k:{key}"));
            self.d.visited += 1;
            match (a, b) {
                (Some(_), None) => self.d.gone.insert(with(&self.fp, ".")),
                (None, Some(_)) => self.d.changed.insert(with(&self.fp, ".")),
                _ => false,
            };
            let am = a.and_then(Value::as_object).unwrap_or(&empty);
            let bm = b.and_then(Value::as_object).unwrap_or(&empty);
            self.members(am, bm);
            self.fp.pop();
        }
        self.names.pop();
        true
    }

    /// The diff under field `name` from the whole leaves of both versions there.
    fn whole(&mut self, old: Option<&Value>, new: Option<&Value>, name: &str) {
        let mut before = BTreeMap::new();
        let mut after = BTreeMap::new();
        let (fp, names, sem) = (&mut self.fp, &mut self.names, self.sem);
        if let Some(v) = old {
            walk(v, name, fp, names, sem, &mut before);
        }
        if let Some(v) = new {
            walk(v, name, fp, names, sem, &mut after);
        }
        self.d.visited += before.len() + after.len();
        for (p, v) in &after {
            if before.get(p) != Some(v) {
                self.d.changed.insert(p.clone());
            }
        }
        self.d
            .gone
            .extend(before.into_keys().filter(|p| !after.contains_key(p)));
    }
}

/// The items of a map list by their key, or `None` when two items share a key (their leaves
/// overlap, and only [`Differ::whole`] gives the answer `leaves` gives).
fn by_key<'v>(items: &'v [Value], keys: &[String]) -> Option<HashMap<String, &'v Value>> {
    let mut out = HashMap::with_capacity(items.len());
    for it in items {
        if out.insert(key_json(it, keys), it).is_some() {
            return None;
        }
    }
    Some(out)
}
