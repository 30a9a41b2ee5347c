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
    /// Services: `spec.type` and port defaults (`SetDefaults_Service`).
    Service,
    /// Secrets: `type` default and `stringData` folded into `data`.
    Secret,
    /// Deployments: `SetDefaults_Deployment`, selector validation; no controller runs.
    Deployment,
    /// ValidatingAdmissionPolicies: CEL expressions compile, or the write is refused.
    AdmissionPolicy,
    /// ValidatingAdmissionPolicyBindings: `policyName` and `validationActions` are required.
    AdmissionPolicyBinding,
    /// Custom resources (`customResourceStrategy` in apiextensions-apiserver).
    Custom,
    /// Built-ins with no special rules (events, leases, controllerrevisions, configmaps,
    /// serviceaccounts, RBAC).
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
    /// A kind the server itself defines (custom resources carry their CRD's schema). Only
    /// these have a protobuf form.
    pub fn is_builtin(&self) -> bool {
        self.schema.is_none()
    }

    /// Whether `DELETE` on the collection is served: kube-apiserver's namespace storage has no
    /// `DeleteCollection` (one request must not delete every namespace).
    pub fn has_delete_collection(&self) -> bool {
        self.strategy != Strategy::Namespace
    }

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

/// A built-in kind as kube-apiserver's discovery describes it.
struct Builtin {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    namespaced: bool,
    has_status: bool,
    tracks_generation: bool,
    strategy: Strategy,
}

impl Builtin {
    fn desc(&self) -> ResourceDesc {
        let strs = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        ResourceDesc {
            group: self.group.into(),
            version: "v1".into(),
            kind: self.kind.into(),
            plural: self.plural.into(),
            singular: self.kind.to_lowercase(),
            short_names: strs(self.short),
            categories: strs(self.categories),
            namespaced: self.namespaced,
            has_status: self.has_status,
            scale: (self.strategy == Strategy::Deployment).then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                // Scale's selector comes from `spec.selector` (see `registry::scale_of`).
                label_selector: None,
            }),
            tracks_generation: self.tracks_generation,
            unconditional_update: true,
            strategy: self.strategy,
            schema: None,
            printer_columns: vec![],
        }
    }
}

/// Every built-in kind served, all at version `v1`. Short names and categories are those
/// kube-apiserver 1.33's discovery reports.
const BUILTINS: &[Builtin] = {
    use Strategy::*;
    const fn b(
        group: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
        strategy: Strategy,
    ) -> Builtin {
        Builtin {
            group,
            kind,
            plural,
            short: &[],
            categories: &[],
            namespaced,
            has_status: false,
            tracks_generation: false,
            strategy,
        }
    }
    const RBAC: &str = "rbac.authorization.k8s.io";
    const ADMISSION: &str = "admissionregistration.k8s.io";
    &[
        Builtin {
            short: &["po"],
            categories: &["all"],
            has_status: true,
            tracks_generation: true,
            ..b("", "Pod", "pods", true, Pod)
        },
        Builtin {
            short: &["ev"],
            ..b("", "Event", "events", true, Plain)
        },
        Builtin {
            short: &["ns"],
            has_status: true,
            ..b("", "Namespace", "namespaces", false, Namespace)
        },
        Builtin {
            short: &["no"],
            has_status: true,
            ..b("", "Node", "nodes", false, Node)
        },
        Builtin {
            short: &["sa"],
            ..b("", "ServiceAccount", "serviceaccounts", true, Plain)
        },
        Builtin {
            short: &["svc"],
            categories: &["all"],
            has_status: true,
            ..b("", "Service", "services", true, Service)
        },
        Builtin {
            short: &["cm"],
            ..b("", "ConfigMap", "configmaps", true, Plain)
        },
        b("", "Secret", "secrets", true, Secret),
        Builtin {
            short: &["ev"],
            ..b("events.k8s.io", "Event", "events", true, Plain)
        },
        b(
            "apps",
            "ControllerRevision",
            "controllerrevisions",
            true,
            Plain,
        ),
        Builtin {
            short: &["deploy"],
            categories: &["all"],
            has_status: true,
            tracks_generation: true,
            ..b("apps", "Deployment", "deployments", true, Deployment)
        },
        b("coordination.k8s.io", "Lease", "leases", true, Plain),
        b(RBAC, "ClusterRole", "clusterroles", false, Plain),
        b(
            RBAC,
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            Plain,
        ),
        b(RBAC, "Role", "roles", true, Plain),
        b(RBAC, "RoleBinding", "rolebindings", true, Plain),
        Builtin {
            categories: &["api-extensions"],
            has_status: true,
            tracks_generation: true,
            ..b(
                ADMISSION,
                "ValidatingAdmissionPolicy",
                "validatingadmissionpolicies",
                false,
                AdmissionPolicy,
            )
        },
        Builtin {
            categories: &["api-extensions"],
            tracks_generation: true,
            ..b(
                ADMISSION,
                "ValidatingAdmissionPolicyBinding",
                "validatingadmissionpolicybindings",
                false,
                AdmissionPolicyBinding,
            )
        },
        Builtin {
            short: &["crd", "crds"],
            categories: &["api-extensions"],
            has_status: true,
            tracks_generation: true,
            ..b(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                Crd,
            )
        },
    ]
};

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
        let mut r = Registry::default();
        for b in BUILTINS {
            r.insert(b.desc());
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
