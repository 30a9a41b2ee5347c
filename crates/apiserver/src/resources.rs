//! The registry of kinds the server knows: a descriptor per (group, version, resource) so the
//! storage and handlers work generically on `serde_json::Value` objects. Built-ins are fixed;
//! custom resources appear when their CRD is created and vanish when it is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::schema::CrSchema;

/// Storage identity of a resource: all versions of one resource share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

/// Kind-specific rules that mirror each registry strategy in kube-apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Pod,
    Namespace,
    Node,
    Crd,
    /// Custom resources (`customResourceStrategy` in apiextensions-apiserver).
    Custom,
    /// Built-ins with no special rules (events, leases, controllerrevisions).
    Plain,
}

/// JSON paths of the `scale` subresource, as declared in a CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ResourceDesc {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub has_status: bool,
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` is maintained (CRs, CRDs, and pods since 1.33's
    /// `updatePodGeneration`; not events, leases, namespaces, nodes).
    pub tracks_generation: bool,
    /// PUT without resourceVersion allowed (`AllowUnconditionalUpdate`): true for built-ins,
    /// false for custom resources.
    pub unconditional_update: bool,
    pub strategy: Strategy,
    pub schema: Option<Arc<CrSchema>>,
    /// `additionalPrinterColumns` of the CRD version (for Table output).
    pub printer_columns: Vec<Value>,
}

impl ResourceDesc {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn gr(&self) -> GroupResource {
        GroupResource {
            group: self.group.clone(),
            resource: self.plural.clone(),
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    namespaced: bool,
    has_status: bool,
    tracks_generation: bool,
    strategy: Strategy,
) -> ResourceDesc {
    ResourceDesc {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if plural == "pods" {
            vec!["all".into()]
        } else {
            vec![]
        },
        namespaced,
        has_status,
        scale: None,
        tracks_generation,
        unconditional_update: true,
        strategy,
        schema: None,
        printer_columns: vec![],
    }
}

/// Key: (group, version, plural).
type Gvr = (String, String, String);

#[derive(Debug, Default)]
pub struct Registry {
    by_gvr: BTreeMap<Gvr, Arc<ResourceDesc>>,
    /// Group → preferred version (first registered / CRD storage version).
    preferred: BTreeMap<String, String>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        use Strategy::*;
        let mut r = Registry::default();
        for d in [
            builtin("", "v1", "Pod", "pods", &["po"], true, true, true, Pod),
            builtin(
                "",
                "v1",
                "Event",
                "events",
                &["ev"],
                true,
                false,
                false,
                Plain,
            ),
            builtin(
                "",
                "v1",
                "Namespace",
                "namespaces",
                &["ns"],
                false,
                true,
                false,
                Namespace,
            ),
            builtin("", "v1", "Node", "nodes", &["no"], false, true, false, Node),
            builtin(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                &["ev"],
                true,
                false,
                false,
                Plain,
            ),
            builtin(
                "apps",
                "v1",
                "ControllerRevision",
                "controllerrevisions",
                &[],
                true,
                false,
                false,
                Plain,
            ),
            builtin(
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                &[],
                true,
                false,
                false,
                Plain,
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                &["crd", "crds"],
                false,
                true,
                true,
                Crd,
            ),
        ] {
            r.insert(d);
        }
        r
    }

    pub fn insert(&mut self, d: ResourceDesc) {
        self.preferred
            .entry(d.group.clone())
            .or_insert_with(|| d.version.clone());
        self.by_gvr.insert(
            (d.group.clone(), d.version.clone(), d.plural.clone()),
            Arc::new(d),
        );
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDesc>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// All versions of one resource (used when a CRD is removed).
    pub fn remove_resource(&mut self, group: &str, plural: &str) {
        self.by_gvr
            .retain(|(g, _, p), _| !(g == group && p == plural));
        if !self.by_gvr.keys().any(|(g, _, _)| g == group) {
            self.preferred.remove(group);
        }
    }

    pub fn set_preferred(&mut self, group: &str, version: &str) {
        self.preferred.insert(group.into(), version.into());
    }

    pub fn groups(&self) -> Vec<(String, Vec<String>, String)> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (g, v, _) in self.by_gvr.keys() {
            out.entry(g.clone()).or_default().insert(v.clone());
        }
        out.into_iter()
            .map(|(g, vs)| {
                let pref = self
                    .preferred
                    .get(&g)
                    .cloned()
                    .unwrap_or_else(|| vs.iter().next().cloned().unwrap_or_default());
                (g, vs.into_iter().collect(), pref)
            })
            .collect()
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDesc>> {
        self.by_gvr
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Any version of a resource, preferring the group's preferred version.
    pub fn any_version(&self, gr: &GroupResource) -> Option<Arc<ResourceDesc>> {
        if let Some(v) = self.preferred.get(&gr.group)
            && let Some(d) = self.get(&gr.group, v, &gr.resource)
        {
            return Some(d);
        }
        self.by_gvr
            .iter()
            .find(|((g, _, p), _)| *g == gr.group && *p == gr.resource)
            .map(|(_, d)| d.clone())
    }
}

/// Descriptors for every served version of a CRD object, or a list of problems with it.
pub fn descriptors_from_crd(crd: &Value) -> Result<(Vec<ResourceDesc>, String), Vec<String>> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let names = spec.get("names").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let plural = s(&names, "plural");
    let kind = s(&names, "kind");
    let mut singular = s(&names, "singular");
    if singular.is_empty() {
        singular = kind.to_lowercase();
    }
    let scope = s(&spec, "scope");
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() {
        errs.push("spec.group: Required value".to_string());
    }
    if plural.is_empty() {
        errs.push("spec.names.plural: Required value".to_string());
    }
    if kind.is_empty() {
        errs.push("spec.names.kind: Required value".to_string());
    }
    if scope != "Namespaced" && scope != "Cluster" {
        errs.push(format!(
            "spec.scope: Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""
        ));
    }
    if name != format!("{plural}.{group}") {
        errs.push(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        errs.push(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    let mut storage_version = String::new();
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vname = s(v, "name");
        if vname.is_empty() {
            errs.push(format!("spec.versions[{i}].name: Required value"));
            continue;
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_version = vname.clone();
        }
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let sub = v.get("subresources").cloned().unwrap_or(Value::Null);
        let scale = sub.get("scale").map(|sc| ScalePaths {
            spec_replicas: s(sc, "specReplicasPath"),
            status_replicas: s(sc, "statusReplicasPath"),
            label_selector: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        let schema = match v.pointer("/schema/openAPIV3Schema") {
            Some(sch) => match CrSchema::new(sch.clone()) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    errs.push(format!(
                        "spec.versions[{i}].schema.openAPIV3Schema: Invalid value: {e}"
                    ));
                    None
                }
            },
            None => {
                errs.push(format!("spec.versions[{i}].schema.openAPIV3Schema: Required value: schemas are required"));
                None
            }
        };
        out.push(ResourceDesc {
            group: group.clone(),
            version: vname,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: list(&names, "shortNames"),
            categories: list(&names, "categories"),
            namespaced: scope == "Namespaced",
            has_status: sub.get("status").is_some(),
            scale,
            tracks_generation: true,
            unconditional_update: false,
            strategy: Strategy::Custom,
            schema,
            printer_columns: v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
    }
    if errs.is_empty() {
        Ok((out, storage_version))
    } else {
        Err(errs)
    }
}
