//! Garbage collection and namespace finalization, run synchronously after every write that
//! may need it (the real controllers run asynchronously; their end state is the same). The
//! store queues exactly the objects to look at, so the cost follows the change, not the
//! cluster size:
//! - dependents whose owners are all gone are deleted (background propagation);
//! - an owner with the `foregroundDeletion` finalizer has its dependents deleted first, and
//!   the finalizer is removed once no dependent with `blockOwnerDeletion` remains;
//! - an owner with the `orphan` finalizer has its ownerReferences removed from dependents;
//! - a terminating namespace has its content deleted, then its `kubernetes` finalizer removed.

use serde_json::{Value, json};

use super::resources::{GroupResource, ResourceDesc, Strategy};
use super::store::{EventType, ObjKey, Store, owner_uids};
use crate::registry::{self, DeleteOpts, RequestContext};

/// Whether `o`'s owner reference to `uid` sets `blockOwnerDeletion`.
fn blocks(o: &Value, uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(uid)
                    && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
            })
        })
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

fn desc_for(store: &Store, gr: &GroupResource) -> Option<std::sync::Arc<ResourceDesc>> {
    store.registry.any_version(gr)
}

/// Re-store an object after a GC edit; removes it when it is deleting and nothing holds it.
fn restore(store: &mut Store, gr: &GroupResource, k: &ObjKey, obj: Value) {
    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    let fins_empty = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    let grace_done = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .is_none_or(|g| g.as_i64() == Some(0));
    let ns_pending = gr.group.is_empty()
        && gr.resource == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    store.put(gr, k.clone(), obj, EventType::Modified);
    if deleting && fins_empty && grace_done && !ns_pending {
        store.remove(gr, k);
    }
}

fn remove_finalizer(store: &mut Store, gr: &GroupResource, k: &ObjKey, f: &str) {
    if let Some(o) = store.get(gr, k) {
        let mut o = (*o).clone();
        if let Some(a) = o
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            a.retain(|x| x.as_str() != Some(f));
        }
        restore(store, gr, k, o);
    }
}

fn delete(store: &mut Store, ctx: &RequestContext, gr: &GroupResource, k: &ObjKey, policy: &str) {
    if let Some(d) = desc_for(store, gr) {
        let ns = (!k.0.is_empty()).then_some(k.0.as_str());
        let opts = DeleteOpts {
            propagation: Some(policy.into()),
            ..Default::default()
        };
        let _ = registry::delete(store, ctx, &d, ns, &k.1, &opts);
    }
}

/// Work through the queue the store filled (bounded, so a bug cannot spin forever).
pub fn collect(store: &mut Store, ctx: &RequestContext) {
    let mut budget = 1_000_000usize;
    while let Some((gr, k)) = store.gc_queue.pop_front() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            store.gc_queue.clear();
            return;
        }
        let Some(o) = store.get(&gr, &k) else {
            continue;
        };
        let uid = o
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let deleting = o.pointer("/metadata/deletionTimestamp").is_some();
        let owners = owner_uids(&o);
        if !owners.is_empty() && !deleting && owners.iter().all(|u| !store.uids.contains_key(u)) {
            delete(store, ctx, &gr, &k, "Background");
            continue;
        }
        if !deleting {
            continue;
        }
        let deps: Vec<(GroupResource, ObjKey)> = store
            .dependents
            .get(&uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if has_finalizer(&o, "orphan") {
            for (dgr, dk) in &deps {
                if let Some(d) = store.get(dgr, dk) {
                    let mut d = (*d).clone();
                    if let Some(a) = d
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|r| r.get("uid").and_then(Value::as_str) != Some(&uid));
                    }
                    store.put(dgr, dk.clone(), d, EventType::Modified);
                }
            }
            remove_finalizer(store, &gr, &k, "orphan");
        } else if has_finalizer(&o, "foregroundDeletion") {
            let live: Vec<(GroupResource, ObjKey, std::sync::Arc<Value>)> = deps
                .iter()
                .filter_map(|(g, key)| store.get(g, key).map(|d| (g.clone(), key.clone(), d)))
                .collect();
            for (dgr, dk, d) in &live {
                if d.pointer("/metadata/deletionTimestamp").is_none() {
                    delete(store, ctx, dgr, dk, "Foreground");
                }
            }
            // Only dependents with blockOwnerDeletion hold the owner back.
            let blocking = live
                .iter()
                .any(|(g, key, _)| store.get(g, key).is_some_and(|d| blocks(&d, &uid)));
            if !blocking {
                remove_finalizer(store, &gr, &k, "foregroundDeletion");
            }
        }
        if gr.group.is_empty() && gr.resource == "namespaces" {
            finalize_namespace(store, ctx, &k.1);
        }
    }
}

fn finalize_namespace(store: &mut Store, ctx: &RequestContext, ns: &str) {
    let namespaced: Vec<GroupResource> = store
        .tables
        .keys()
        .filter(|gr| {
            desc_for(store, gr).is_some_and(|d| d.namespaced && d.strategy != Strategy::Namespace)
        })
        .cloned()
        .collect();
    let mut remaining = 0;
    for gr in namespaced {
        let keys: Vec<ObjKey> = store
            .tables
            .get(&gr)
            .map(|t| {
                t.objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|(k, _)| k.0 == ns)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for k in keys {
            if let (Some(d), Some(o)) = (desc_for(store, &gr), store.get(&gr, &k))
                && o.pointer("/metadata/deletionTimestamp").is_none()
            {
                let _ = registry::delete(store, ctx, &d, Some(ns), &k.1, &DeleteOpts::default());
            }
            if store.get(&gr, &k).is_some() {
                remaining += 1;
            }
        }
    }
    if remaining == 0 {
        let gr = GroupResource {
            group: String::new(),
            resource: "namespaces".into(),
        };
        let k = (String::new(), ns.to_string());
        if let Some(o) = store.get(&gr, &k) {
            let mut o = (*o).clone();
            o["spec"]["finalizers"] = json!([]);
            restore(store, &gr, &k, o);
        }
    }
}
