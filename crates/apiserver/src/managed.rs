//! `metadata.managedFields`: which manager owns which fields, in the `FieldsV1` encoding
//! (`f:<field>`, `k:<merge key json>`, `v:<set value json>`, `.` for a list element itself).
//! Update-style writes give the writer the fields it changed; server-side apply gives the
//! applier exactly the fields of its configuration, reports conflicts with other owners
//! (409 unless `force`), and removes fields the applier stopped applying that nobody else owns.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::leaves::{Diff, FieldPath, diff, leaves};
use super::patch::ListSemantics;

/// Encode a set of paths as a FieldsV1 object.
pub fn encode(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in paths {
        insert_leaf(&mut root, p);
    }
    Value::Object(root)
}

/// Decode FieldsV1 into its leaf paths.
pub fn decode(v: &Value) -> BTreeSet<FieldPath> {
    fn rec(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        if let Value::Object(m) = v {
            if m.is_empty() && !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            for (k, c) in m {
                prefix.push(k.clone());
                rec(c, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    rec(v, &mut vec![], &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: BTreeSet<FieldPath>,
}

/// The API version of `events.k8s.io` Events, stored as core `v1` Events.
const EVENTS_V1: &str = "events.k8s.io/v1";

/// Whether `obj` is a stored core Event, whose managedFields may hold entries written through
/// `events.k8s.io/v1`: those name that version's fields (`f:note`, `f:regarding`), and are
/// worked on here under the core names, so that writes through either API see one another.
fn is_core_event(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Event")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// Rename the top-level field of an `events.k8s.io/v1` entry's paths (the conversion between
/// the two versions only renames top-level fields).
fn rename_event_fields(fields: BTreeSet<FieldPath>, to_core: bool) -> BTreeSet<FieldPath> {
    fields
        .into_iter()
        .map(|mut p| {
            if let Some(first) = p.first_mut()
                && let Some(name) = first.strip_prefix("f:")
                && let Some((e, c)) = super::convert::RENAMES
                    .iter()
                    .find(|(e, c)| if to_core { *e == name } else { *c == name })
            {
                *first = format!("f:{}", if to_core { c } else { e });
            }
            p
        })
        .collect()
}

pub fn read(obj: &Value) -> Vec<Entry> {
    let mut entries = read_raw(obj);
    if is_core_event(obj) {
        for e in entries.iter_mut().filter(|e| e.api_version == EVENTS_V1) {
            e.fields = rename_event_fields(std::mem::take(&mut e.fields), true);
        }
    }
    entries
}

fn read_raw(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Entry {
                        manager: s("manager"),
                        operation: s("operation"),
                        api_version: s("apiVersion"),
                        time: s("time"),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(String::from),
                        fields: e.get("fieldsV1").map(decode).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write(obj: &mut Value, entries: &[Entry]) {
    let core_event = is_core_event(obj);
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            if core_event && e.api_version == EVENTS_V1 {
                entry_json(e, &rename_event_fields(e.fields.clone(), false))
            } else {
                entry_json(e, &e.fields)
            }
        })
        .collect();
    set_entries(obj, arr);
}

/// One entry as stored, naming `fields`.
fn entry_json(e: &Entry, fields: &BTreeSet<FieldPath>) -> Value {
    let mut m = json!({
        "manager": e.manager,
        "operation": e.operation,
        "apiVersion": e.api_version,
        "time": e.time,
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(fields),
    });
    if let (Some(s), Value::Object(o)) = (&e.subresource, &mut m) {
        o.insert("subresource".into(), json!(s));
    }
    m
}

/// Store the encoded entries (none: no `managedFields` at all).
fn set_entries(obj: &mut Value, arr: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

/// Which part of the object a write may own: the main resource of a kind with a status
/// subresource does not own `status` (it is reset), a status write owns only `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    NoStatus,
    StatusOnly,
}

impl Scope {
    fn keeps(self, p: &FieldPath) -> bool {
        let status = p.first().is_some_and(|s| s == "f:status");
        match self {
            Scope::All => true,
            Scope::NoStatus => !status,
            // Metadata a status write keeps (pods/status keeps labels and annotations).
            Scope::StatusOnly => status || p.first().is_some_and(|s| s == "f:metadata"),
        }
    }
}

/// Who wrote, for bookkeeping.
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub time: &'a str,
    pub subresource: Option<&'a str>,
    pub scope: Scope,
}

impl Writer<'_> {
    /// Whether an entry of `manager`, `operation` and `subresource` is this writer's for `op`.
    fn owns(&self, manager: &str, operation: &str, subresource: Option<&str>, op: &str) -> bool {
        manager == self.manager && operation == op && subresource == self.subresource
    }

    /// This writer's entry for `op`, owning nothing yet.
    fn new_entry(&self, op: &str) -> Entry {
        Entry {
            manager: self.manager.into(),
            operation: op.into(),
            api_version: self.api_version.into(),
            time: self.time.into(),
            subresource: self.subresource.map(String::from),
            fields: BTreeSet::new(),
        }
    }
}

fn entry_mut<'e>(entries: &'e mut Vec<Entry>, w: &Writer<'_>, op: &str) -> &'e mut Entry {
    let pos = entries
        .iter()
        .position(|e| w.owns(&e.manager, &e.operation, e.subresource.as_deref(), op));
    match pos {
        Some(p) => &mut entries[p],
        None => {
            entries.push(w.new_entry(op));
            let last = entries.len() - 1;
            &mut entries[last]
        }
    }
}

/// What the bookkeeping of a write knows of the stored version's managedFields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Nothing: they may name fields the object does not have (server-side apply, a client's
    /// own managedFields, an Event written through `events.k8s.io`).
    Unknown,
    /// Written by [`track_update`], so in the form [`write`] gives and naming only fields the
    /// object has.
    Tracked,
}

/// Track an Update-style write in managedFields: the writer takes the fields whose values changed; fields
/// that disappeared are dropped from every owner.
///
/// When the stored version's managedFields are [`Stored::Tracked`] and the request left them
/// as they were, only the fields the write changed are looked at ([`diff`]): every owned
/// field is a field of the old version, so a field the write did not touch is still there.
/// Otherwise every field of both versions is ([`leaves`]). Both give the same managedFields
/// (`tests::incremental_bookkeeping_is_the_full_one`). Returns how many leaf paths it looked at.
pub fn track_update(
    old: Option<&Value>,
    stored: Stored,
    new: &mut Value,
    w: &Writer<'_>,
    sem: ListSemantics<'_>,
) -> usize {
    match old {
        Some(old) if stored == Stored::Tracked && incremental_applies(old, new) => {
            track_changes(diff(old, new, sem), new, w)
        }
        _ => track_all(old, new, w, sem),
    }
}

/// Whether the request kept the stored managedFields (and they are not renamed on the way).
fn incremental_applies(old: &Value, new: &Value) -> bool {
    !is_core_event(new)
        && new.get("metadata").is_some_and(Value::is_object)
        && old.pointer("/metadata/managedFields") == new.pointer("/metadata/managedFields")
}

/// The bookkeeping from every leaf of both versions.
fn track_all(
    old: Option<&Value>,
    new: &mut Value,
    w: &Writer<'_>,
    sem: ListSemantics<'_>,
) -> usize {
    let mut entries = read(new);
    let before = old.map(|o| leaves(o, sem)).unwrap_or_default();
    let after = leaves(new, sem);
    let visited = before.len() + after.len();
    let changed: BTreeSet<FieldPath> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v) && w.scope.keeps(p))
        .map(|(p, _)| p.clone())
        .collect();
    for e in entries.iter_mut() {
        e.fields
            .retain(|p| after.contains_key(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let e = entry_mut(&mut entries, w, "Update");
        e.fields.extend(changed);
        e.time = w.time.into();
        e.api_version = w.api_version.into();
    }
    entries.retain(|e| !e.fields.is_empty());
    write(new, &entries);
    visited
}

/// The bookkeeping from what the write changed, on the stored entries as they are: a changed
/// or gone field leaves every owner, a changed one goes to the writer.
fn track_changes(d: Diff, new: &mut Value, w: &Writer<'_>) -> usize {
    let changed: BTreeSet<FieldPath> = d.changed.into_iter().filter(|p| w.scope.keeps(p)).collect();
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return d.visited;
    };
    let mut arr = match meta.remove("managedFields") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for e in &mut arr {
        if let Some(Value::Object(tree)) = e.get_mut("fieldsV1") {
            for p in d.gone.iter().chain(&changed) {
                remove_leaf(tree, p);
            }
        }
    }
    if !changed.is_empty() {
        let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(String::from);
        let mine = arr.iter().position(|e| {
            let (manager, operation) = (s(e, "manager"), s(e, "operation"));
            let subresource = s(e, "subresource");
            (manager.zip(operation))
                .is_some_and(|(m, o)| w.owns(&m, &o, subresource.as_deref(), "Update"))
        });
        match mine.map(|i| &mut arr[i]) {
            Some(Value::Object(e)) => {
                if let Some(Value::Object(tree)) = e.get_mut("fieldsV1") {
                    for p in &changed {
                        insert_leaf(tree, p);
                    }
                }
                e.insert("time".into(), json!(w.time));
                e.insert("apiVersion".into(), json!(w.api_version));
            }
            _ => arr.push(entry_json(&w.new_entry("Update"), &changed)),
        }
    }
    arr.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_some_and(|t| !t.is_empty())
    });
    set_entries(new, arr);
    d.visited
}

/// Add a path to a FieldsV1 tree, as [`encode`] would have it.
fn insert_leaf(tree: &mut Map<String, Value>, p: &FieldPath) {
    let mut cur = tree;
    for seg in p {
        let next = cur.entry(seg.clone()).or_insert_with(|| json!({}));
        let Value::Object(m) = next else { break };
        cur = m;
    }
}

/// Remove a path from a FieldsV1 tree if the tree names it (an empty object there), and the
/// members left empty by that, so that the tree is [`encode`] of its paths less this one.
fn remove_leaf(tree: &mut Map<String, Value>, p: &[String]) {
    let Some((first, rest)) = p.split_first() else {
        return;
    };
    let Some(Value::Object(child)) = tree.get_mut(first) else {
        return;
    };
    if rest.is_empty() {
        if child.is_empty() {
            tree.remove(first);
        }
        return;
    }
    if child.is_empty() {
        return;
    }
    remove_leaf(child, rest);
    if child.is_empty() {
        tree.remove(first);
    }
}

/// Server-side apply bookkeeping on the merged object. Returns the paths to remove from the
/// object (owned before by this applier, no longer applied, owned by no one else), or the
/// conflict error.
pub fn track_apply(
    live: &Value,
    merged: &mut Value,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
    sem: ListSemantics<'_>,
) -> Result<Vec<FieldPath>, ApiError> {
    let mut entries = read(live);
    let live_leaves = leaves(live, sem);
    let mut applied = leaves(config, sem);
    applied.retain(|p, _| w.scope.keeps(p));
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for (p, v) in &applied {
        let differs = live_leaves.get(p).is_some_and(|lv| lv != v);
        if !differs {
            continue;
        }
        for e in &entries {
            if e.manager != w.manager && e.fields.contains(p) {
                conflicts.push((e.manager.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m:?}"), "field": render_path(p)}))
            .collect();
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(m, p)| format!("conflict with {m:?}: {}", render_path(p)))
            .collect();
        let n = conflicts.len();
        return Err(ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                lines.join("\n")
            ),
            details: Some(json!({"causes": causes})),
        });
    }
    let applied_set: BTreeSet<FieldPath> = applied.keys().cloned().collect();
    // Forced (or unchanged) fields move to the applier.
    for e in entries.iter_mut() {
        if e.manager != w.manager {
            e.fields
                .retain(|p| !(applied_set.contains(p) && live_leaves.get(p) != applied.get(p)));
        }
    }
    let previously: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| e.manager == w.manager && e.operation == "Apply")
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let others: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| !(e.manager == w.manager && e.operation == "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let removed: Vec<FieldPath> = previously
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
        .cloned()
        .collect();
    let e = entry_mut(&mut entries, w, "Apply");
    e.fields = applied_set;
    e.time = w.time.into();
    e.api_version = w.api_version.into();
    entries.retain(|e| !e.fields.is_empty());
    write(merged, &entries);
    Ok(removed)
}

/// `.spec.replicas`-style rendering used in conflict messages.
pub fn render_path(p: &FieldPath) -> String {
    let mut s = String::new();
    for seg in p {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            s.push('[');
            s.push_str(k);
            s.push(']');
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Remove the field at a FieldsV1 path from `obj` (for SSA field removal).
pub fn remove_path(obj: &mut Value, p: &FieldPath) {
    let segs: Vec<&String> = p.iter().filter(|s| s.as_str() != ".").collect();
    let element = p.last().is_some_and(|s| s == ".");
    fn rec(cur: &mut Value, segs: &[&String], element: bool) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        let last = rest.is_empty();
        if let Some(f) = first.strip_prefix("f:") {
            let Some(m) = cur.as_object_mut() else { return };
            if last {
                m.remove(f);
            } else if let Some(c) = m.get_mut(f) {
                rec(c, rest, element);
            }
        } else if let Some(k) = first.strip_prefix("k:") {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
                return;
            };
            let Some(list) = cur.as_array_mut() else {
                return;
            };
            let pos = list
                .iter()
                .position(|it| key.iter().all(|(kk, kv)| it.get(kk) == Some(kv)));
            if let Some(pos) = pos {
                if last && element {
                    list.remove(pos);
                } else if !last {
                    rec(&mut list[pos], rest, element);
                }
            }
        } else if let Some(v) = first.strip_prefix("v:") {
            let Ok(val) = serde_json::from_str::<Value>(v) else {
                return;
            };
            if let Some(list) = cur.as_array_mut() {
                list.retain(|x| *x != val);
            }
        }
    }
    rec(obj, &segs, element);
}

#[cfg(test)]
mod tests;
