//! Which pods a GameDeployment controls: the ReplicaSet's `ClaimPods` (kube's
//! `PodControllerRefManager`), as a pure decision the runtime edge executes. A pod that matches
//! the selector and has no controller is adopted; a pod we control that no longer matches is
//! released; a pod another controller owns is never touched. The original operator claims pods
//! this way, so users can hand pods over by labels, or take one out of service by relabeling it.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, OwnerReference,
};
use kube::Resource;

use crate::StrMap;
use crate::api::GameDeployment;
use crate::planner::model::{CachedPod, Controlled, Roster};

/// Why a selector cannot be used to claim pods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An empty selector matches everything: claiming with it would take every orphan in the
    /// namespace (the API server forbids it for ReplicaSets for this reason).
    #[error("spec.selector is empty and would claim every pod in the namespace")]
    Empty,
    #[error("spec.selector.matchExpressions: unknown operator {0:?}")]
    Operator(String),
    /// Claiming with it would release every pod the GameDeployment creates (and creating
    /// pods with it would never end).
    #[error(
        "spec.selector requires {requirement} but spec.template.metadata.labels does not have it"
    )]
    MissesTemplate { requirement: String },
    #[error("spec.selector.matchExpressions: {key} {operator} {needs}")]
    Values {
        key: String,
        operator: String,
        needs: &'static str,
    },
}

/// A validated label selector (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a>(&'a LabelSelector);

impl<'a> Selector<'a> {
    pub fn new(selector: &'a LabelSelector) -> Result<Self, SelectorError> {
        let labels = selector
            .match_labels
            .as_ref()
            .is_some_and(|m| !m.is_empty());
        let expressions = selector.match_expressions.as_deref().unwrap_or_default();
        if !labels && expressions.is_empty() {
            return Err(SelectorError::Empty);
        }
        for e in expressions {
            let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
            let needs = match e.operator.as_str() {
                "In" | "NotIn" if !has_values => "needs values",
                "Exists" | "DoesNotExist" if has_values => "takes no values",
                "In" | "NotIn" | "Exists" | "DoesNotExist" => continue,
                other => return Err(SelectorError::Operator(other.to_string())),
            };
            return Err(SelectorError::Values {
                key: e.key.clone(),
                operator: e.operator.clone(),
                needs,
            });
        }
        Ok(Selector(selector))
    }

    /// Whether `labels` meet every requirement. Claiming asks this of every pod in the
    /// namespace on every reconcile, so it builds no requirement texts (`first_unmet` does).
    pub(crate) fn matches(&self, labels: &impl StrMap) -> bool {
        let s = &self.0;
        s.match_labels
            .iter()
            .flatten()
            .all(|(k, v)| label_met(k, v, labels))
            && (s.match_expressions.iter().flatten()).all(|e| expression_met(e, labels))
    }

    /// The first requirement `labels` do not meet, in selector syntax (`app=game`,
    /// `tier in (a,b)`, `!canary`).
    pub(crate) fn first_unmet(&self, labels: &impl StrMap) -> Option<String> {
        let s = &self.0;
        let labels_unmet = (s.match_labels.iter().flatten())
            .find(|(k, v)| !label_met(k, v, labels))
            .map(|(k, v)| label_text(k, v));
        labels_unmet.or_else(|| {
            (s.match_expressions.iter().flatten())
                .find(|e| !expression_met(e, labels))
                .map(expression_text)
        })
    }

    /// The selector as a query string, as `status.labelSelector` carries it for the scale
    /// subresource (and HPA).
    pub fn to_query(&self) -> String {
        let s = &self.0;
        let labels = (s.match_labels.iter().flatten()).map(|(k, v)| label_text(k, v));
        let expressions = (s.match_expressions.iter().flatten()).map(expression_text);
        labels.chain(expressions).collect::<Vec<_>>().join(",")
    }
}

fn label_met(key: &str, value: &str, labels: &impl StrMap) -> bool {
    labels.get_str(key) == Some(value)
}

fn label_text(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// One `matchExpressions` entry met (its operator was checked by [`Selector::new`]).
fn expression_met(e: &LabelSelectorRequirement, labels: &impl StrMap) -> bool {
    let value = labels.get_str(&e.key);
    let listed = value.is_some_and(|v| e.values.iter().flatten().any(|l| l == v));
    match e.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        "Exists" => value.is_some(),
        _ => value.is_none(),
    }
}

/// One `matchExpressions` entry in selector syntax.
fn expression_text(e: &LabelSelectorRequirement) -> String {
    let key = &e.key;
    let listed = e.values.iter().flatten().map(String::as_str);
    let listed = listed.collect::<Vec<_>>().join(",");
    match e.operator.as_str() {
        "In" => format!("{key} in ({listed})"),
        "NotIn" => format!("{key} notin ({listed})"),
        "Exists" => key.clone(),
        // `new` admits no other operator.
        _ => format!("!{key}"),
    }
}

/// The GameDeployment's selector, if it can be used: not empty, well formed, and matching the
/// pods its template makes. The plan refuses a spec whose selector fails this, and claiming
/// takes and releases nothing with it.
pub(crate) fn selector_of(gd: &GameDeployment) -> Result<Selector<'_>, SelectorError> {
    let selector = Selector::new(&gd.spec.selector)?;
    let template = gd
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    match selector.first_unmet(template.unwrap_or(&BTreeMap::new())) {
        Some(requirement) => Err(SelectorError::MissesTemplate { requirement }),
        None => Ok(selector),
    }
}

/// The selector as a query string, for the scale subresource (`matchLabels` alone when the
/// selector is unusable: the status of a refused spec still names what it has).
pub(crate) fn label_selector(gd: &GameDeployment) -> String {
    match Selector::new(&gd.spec.selector) {
        Ok(s) => s.to_query(),
        Err(_) => gd
            .spec
            .selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The controller reference of an object, if any.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether the object's controller is the one with `uid`.
pub fn controlled_by<K: Resource>(obj: &K, uid: &str) -> bool {
    controller_of(obj).is_some_and(|r| r.uid == uid)
}

/// What claiming decided, for the pods of the GameDeployment's namespace.
#[derive(Debug)]
pub struct Claim<'a, P> {
    /// Pods the GameDeployment controls and keeps.
    pub owned: Vec<&'a P>,
    /// Orphans to adopt.
    pub adopt: Vec<&'a P>,
    /// Pods the GameDeployment controls that no longer match its selector.
    pub release: Vec<&'a P>,
}

/// Claims pods like a ReplicaSet. Nothing is adopted or released while the GameDeployment is
/// being deleted; an unusable selector claims nothing new and releases nothing (the plan
/// refuses such a spec and says why: a bad spec changes no pod).
pub fn claim<'a, P: Borrow<CachedPod>>(
    gd: &GameDeployment,
    pods: &'a [P],
) -> Result<Claim<'a, P>, SelectorError> {
    let selector = selector_of(gd)?;
    let uid = gd.meta().uid.as_deref().unwrap_or_default();
    let deleting = gd.meta().deletion_timestamp.is_some();
    let mut out = Claim {
        owned: Vec::new(),
        adopt: Vec::new(),
        release: Vec::new(),
    };
    for p in pods {
        let pod: &CachedPod = p.borrow();
        if !same_namespace(gd, pod) {
            continue;
        }
        let matches = selector.matches(pod.labels());
        match controller_of(pod) {
            Some(r) if r.uid != uid => {}
            Some(_) if matches => out.owned.push(p),
            Some(_) if deleting || pod.meta().deletion_timestamp.is_some() => {}
            Some(_) => out.release.push(p),
            None if !deleting && matches && adoptable(pod) => out.adopt.push(p),
            None => {}
        }
    }
    Ok(out)
}

/// What claiming decided from the [`Roster`] (see [`claim_from`]): what [`claim`] decides
/// over the pods of the namespace, in name order.
#[derive(Debug, Default)]
pub struct RosterClaim {
    /// Pods the GameDeployment controls and keeps, counted per in-place state; every pod it
    /// controls when the selector is unusable.
    pub owned: Controlled,
    /// Orphans to adopt.
    pub adopt: Vec<Arc<CachedPod>>,
    /// Pods the GameDeployment controls that no longer match its selector.
    pub release: Vec<Arc<CachedPod>>,
    /// How many times the selector was evaluated on a pod.
    pub evaluated: usize,
    /// The unusable selector's fault: nothing was adopted or released.
    pub refused: Option<SelectorError>,
}

/// Claims pods like [`claim`], from the roster: the selector is evaluated on the namespace's
/// orphans, and on the GameDeployment's pods only where the roster says the last claim's
/// answer may have changed (the pod joined it or changed labels, or the selector changed).
pub fn claim_from(gd: &GameDeployment, roster: &mut Roster) -> RosterClaim {
    let ns = gd.meta().namespace.as_deref();
    let uid = gd.meta().uid.as_deref().unwrap_or_default();
    let selector = match selector_of(gd) {
        Ok(s) => s,
        Err(e) => {
            let owned = ns.map(|ns| roster.controlled(ns, uid));
            return RosterClaim {
                owned: owned.unwrap_or_default(),
                refused: Some(e),
                ..RosterClaim::default()
            };
        }
    };
    let Some(ns) = ns else {
        return RosterClaim::default();
    };
    let deleting = gd.meta().deletion_timestamp.is_some();
    let mut evaluated = 0;
    let mut matches = |pod: &CachedPod| {
        evaluated += 1;
        selector.matches(pod.labels())
    };
    let kept = roster.keep(ns, uid, &gd.spec.selector, &mut matches);
    let (adopt, release) = if deleting {
        (Vec::new(), Vec::new())
    } else {
        let adopt = (roster.orphans(ns))
            .filter(|p| adoptable(p) && matches(p))
            .cloned()
            .collect();
        let release = (kept.unmatched.into_iter())
            .filter(|p| p.meta().deletion_timestamp.is_none())
            .collect();
        (adopt, release)
    };
    RosterClaim {
        owned: kept.matched,
        adopt,
        release,
        evaluated,
        refused: None,
    }
}

/// The strategic merge patch that makes `owner` the pod's controller. The pod's uid in it is a
/// precondition: a pod recreated under the same name is not adopted.
pub fn adoption_patch(owner: &OwnerReference, pod_uid: &str) -> serde_json::Value {
    serde_json::json!({"metadata": {"ownerReferences": [owner], "uid": pod_uid}})
}

/// The strategic merge patch that removes the owner reference with `owner_uid` from the pod.
pub fn release_patch(owner_uid: &str, pod_uid: &str) -> serde_json::Value {
    serde_json::json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
        "uid": pod_uid,
    }})
}

/// Whether the GameDeployment would adopt `pod` (the trigger for orphan pod events).
pub fn wants_orphan(gd: &GameDeployment, pod: &CachedPod) -> bool {
    claim(gd, std::slice::from_ref(pod)).is_ok_and(|c| !c.adopt.is_empty())
}

fn same_namespace(gd: &GameDeployment, pod: &CachedPod) -> bool {
    gd.meta().namespace.is_some() && pod.meta().namespace == gd.meta().namespace
}

/// Active pods only, as the ReplicaSet's `FilterActivePods`: a pod being deleted or already
/// finished is not worth taking over.
fn adoptable(pod: &CachedPod) -> bool {
    pod.meta().deletion_timestamp.is_none() && !matches!(pod.phase(), Some("Succeeded" | "Failed"))
}

#[cfg(test)]
mod tests;
