//! OpenAPI v3 documents, so that `kubectl apply` works with its default validation.
//!
//! What kubectl 1.32 needs (cli-runtime's OpenAPI v3 query-parameter verifier and kubectl
//! apply's patcher):
//! - `GET /openapi/v3`: the discovery document `{"paths": {"api/v1": {"serverRelativeURL":
//!   "/openapi/v3/api/v1?hash=…"}, "apis/<group>/<version>": …}}`.
//! - Per group/version document: a PATCH operation whose `x-kubernetes-group-version-kind`
//!   names the object's kind and which lists a `fieldValidation` query parameter. With it kubectl
//!   skips client-side schema validation (which would need `/openapi/v2`) and sends
//!   `fieldValidation=Strict`, so the server rejects unknown fields.
//! - `components.schemas` with `x-kubernetes-group-version-kind` on the kind's schema: for a kind
//!   kubectl compiles in (Pod, Namespace, …) it computes the strategic merge patch from that
//!   schema's `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy`; custom resources
//!   get a JSON merge patch and need no metadata.
//!
//! As the Kubernetes API docs ("OpenAPI V3") describe, the discovery document points at
//! immutable URLs: a matching `hash` is served with `Cache-Control: public, immutable` and a
//! one-year `Expires`; a stale hash is redirected (301) to the current one. Deviations: the hash
//! is a 64-bit FNV-1a of the document (kube-apiserver uses SHA-512; clients treat it as opaque),
//! documents carry no `/scale` or other subresource paths beyond `/status`, and `/openapi/v2` is
//! not served (kubectl 1.32 only reads it when v3 is missing).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::builtin::{TypeVisitor, with_type};
use super::resources::{Registry, ResourceDesc, Strategy};

/// `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` of the built-in types served
/// here, from the `patchMergeKey`/`patchStrategy` struct tags of k8s.io/api and
/// k8s.io/apimachinery (k8s-openapi's schemas do not carry them).
/// Rows: (component schema, property, merge key or "", strategy).
const PATCH_META: &[(&str, &str, &str, &str)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "",
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "name",
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "name",
        "merge",
    ),
    ("io.k8s.api.core.v1.PodSpec", "containers", "name", "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "name",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "name",
        "merge",
    ),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip", "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "name",
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "name",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "containerPort",
        "merge",
    ),
    ("io.k8s.api.core.v1.Container", "env", "name", "merge"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "mountPath",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "devicePath",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "containerPort",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "name",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "mountPath",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "devicePath",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "type",
        "merge",
    ),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", "ip", "merge"),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", "ip", "merge"),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "name",
        "merge,retainKeys",
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "", "merge"),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "type",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "type",
        "merge",
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "port", "merge"),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "type",
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "type",
        "merge",
    ),
];

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The `groupVersion` key of the discovery document: `api/v1` or `apis/<group>/<version>`.
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Component name of a kind: the Go package path for built-ins, and for custom resources the
/// reversed group (`util.ToRESTFriendlyName` in apiextensions-apiserver's builder).
fn schema_name(d: &ResourceDesc) -> String {
    if let Some(n) = builtin_schema_name(d) {
        return n;
    }
    let mut parts: Vec<&str> = d.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), d.version, d.kind)
}

/// The component name k8s-openapi gives a built-in kind (its Go package path), or `None` for
/// kinds with no built-in type.
fn builtin_schema_name(d: &ResourceDesc) -> Option<String> {
    struct Name;
    impl TypeVisitor for Name {
        type Out = String;
        fn visit<T: DeserializeOwned + Serialize + JsonSchema>(self) -> String {
            T::schema_name().into_owned()
        }
    }
    with_type(&d.group, &d.kind, Name).ok()
}

/// Adds the schema of a built-in kind (and everything it references) to the generator.
fn add_builtin(generator: &mut SchemaGenerator, d: &ResourceDesc) {
    struct Add<'a>(&'a mut SchemaGenerator);
    impl TypeVisitor for Add<'_> {
        type Out = ();
        fn visit<T: DeserializeOwned + Serialize + JsonSchema>(self) {
            self.0.subschema_for::<T>();
        }
    }
    let _ = with_type(&d.group, &d.kind, Add(generator));
}

fn gvk_ext(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A custom resource's schema as apiextensions-apiserver publishes it: the CRD's
/// `openAPIV3Schema` with `apiVersion`, `kind` and `metadata` (a reference to ObjectMeta).
fn custom_schema(d: &ResourceDesc) -> Value {
    let mut s =
        d.schema.as_ref().map(|s| s.root().clone()).unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    if let Value::Object(m) = &mut s {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            p.insert(
                "metadata".into(),
                json!({"allOf": [schema_ref(OBJECT_META)], "description": "Standard object's metadata."}),
            );
        }
    }
    s
}

fn list_schema(d: &ResourceDesc, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}", d.list_kind(), d.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "items": {"type": "array", "items": schema_ref(item)},
            "metadata": {"allOf": [schema_ref(LIST_META)]},
        },
        "x-kubernetes-group-version-kind": [gvk_ext(&d.group, &d.version, &d.list_kind())],
    })
}

fn param(name: &str, location: &str, description: &str) -> Value {
    json!({"name": name, "in": location, "description": description,
        "schema": {"type": "string", "uniqueItems": true}, "required": location == "path"})
}

fn write_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "query",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        param(
            "fieldManager",
            "query",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        param(
            "fieldValidation",
            "query",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ]
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn op(action: &str, id: &str, d: &ResourceDesc, kind_ref: &Value, params: Vec<Value>) -> Value {
    let mut o = json!({
        "operationId": id,
        "tags": [d.api_version().replace(['/', '.'], "_")],
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": json_content(kind_ref.clone())},
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk_ext(&d.group, &d.version, &d.kind),
    });
    if matches!(action, "post" | "put" | "patch") {
        let body = if action == "patch" {
            // kubectl's patcher (`gvkSupportsPatchOpenAPIV3`) sends a strategic merge patch
            // only when this content type is listed, as it is for built-ins and never for
            // custom resources.
            let any = json!({"type": "object"});
            let mut types = json!({
                "application/apply-patch+yaml": {"schema": any},
                "application/json-patch+json": {"schema": any},
                "application/merge-patch+json": {"schema": any},
            });
            if d.strategy != Strategy::Custom {
                types["application/strategic-merge-patch+json"] = json!({"schema": any});
            }
            types
        } else {
            json_content(kind_ref.clone())
        };
        o["requestBody"] = json!({"content": body, "required": true});
    }
    o
}

/// Paths of one resource as kube-apiserver's installer registers them (collection, item and
/// `/status`), each operation tagged with its kind and listing its query parameters.
fn resource_paths(d: &ResourceDesc, item: &str, list: &str, paths: &mut Map<String, Value>) {
    let prefix = format!("/{}", gv_key(&d.group, &d.version));
    let base = if d.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
    } else {
        format!("{prefix}/{}", d.plural)
    };
    let mut path_params = vec![param(
        "pretty",
        "query",
        "If 'true', then the output is pretty printed.",
    )];
    if d.namespaced {
        path_params.push(param(
            "namespace",
            "path",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let id = |verb: &str, suffix: &str| {
        let scope = if d.namespaced { "Namespaced" } else { "" };
        format!(
            "{verb}{}{scope}{}{suffix}",
            d.api_version().replace(['/', '.'], "_"),
            d.kind
        )
    };
    let kind_ref = schema_ref(item);
    let post = write_params();
    paths.insert(
        base.clone(),
        json!({
            "get": op("list", &id("list", ""), d, &schema_ref(list), vec![
                param("labelSelector", "query", "A selector to restrict the list of returned objects by their labels."),
                param("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields."),
                param("limit", "query", "limit is a maximum number of responses to return for a list call."),
                param("continue", "query", "The continue option should be set when retrieving more results from the server."),
                param("resourceVersion", "query", "resourceVersion sets a constraint on what resource versions a request may be served from."),
                param("watch", "query", "Watch for changes to the described resources."),
            ]),
            "post": op("post", &id("create", ""), d, &kind_ref, post),
            "parameters": path_params.clone(),
        }),
    );
    let mut item_params = path_params;
    item_params.insert(0, param("name", "path", &format!("name of the {}", d.kind)));
    let mut patch_params = write_params();
    patch_params.push(param(
        "force",
        "query",
        "Force is going to \"force\" Apply requests.",
    ));
    let mut item_ops = json!({
        "get": op("get", &id("read", ""), d, &kind_ref, vec![]),
        "put": op("put", &id("replace", ""), d, &kind_ref, write_params()),
        "patch": op("patch", &id("patch", ""), d, &kind_ref, patch_params.clone()),
        "delete": op("delete", &id("delete", ""), d, &kind_ref, vec![
            param("dryRun", "query", "When present, indicates that modifications should not be persisted."),
            param("gracePeriodSeconds", "query", "The duration in seconds before the object should be deleted."),
            param("propagationPolicy", "query", "Whether and how garbage collection will be performed."),
        ]),
    });
    item_ops["parameters"] = json!(item_params);
    paths.insert(format!("{base}/{{name}}"), item_ops);
    if d.has_status {
        let mut status_ops = json!({
            "get": op("get", &id("read", "Status"), d, &kind_ref, vec![]),
            "put": op("put", &id("replace", "Status"), d, &kind_ref, write_params()),
            "patch": op("patch", &id("patch", "Status"), d, &kind_ref, patch_params),
        });
        status_ops["parameters"] = json!(item_params);
        paths.insert(format!("{base}/{{name}}/status"), status_ops);
    }
}

/// Sets the patch metadata of [`PATCH_META`] on the generated components.
fn add_patch_meta(schemas: &mut Map<String, Value>) {
    for (component, prop, key, strategy) in PATCH_META {
        let Some(p) = schemas
            .get_mut(*component)
            .and_then(|s| s.pointer_mut(&format!("/properties/{prop}")))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if !key.is_empty() {
            p.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        p.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
    }
}

/// The OpenAPI v3 document of one served group/version, or `None` when it is not served.
pub fn group_version_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let descs = reg.resources_in(group, version);
    if descs.is_empty() {
        return None;
    }
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
    generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>();
    let mut custom: BTreeMap<String, Value> = BTreeMap::new();
    for d in &descs {
        if d.strategy == Strategy::Custom || builtin_schema_name(d).is_none() {
            custom.insert(schema_name(d), custom_schema(d));
        } else {
            add_builtin(&mut generator, d);
        }
    }
    let mut schemas = generator.take_definitions(true);
    schemas.extend(custom);
    add_patch_meta(&mut schemas);
    let mut paths = Map::new();
    for d in &descs {
        let item = schema_name(d);
        let list = format!("{item}List");
        if let Some(Value::Object(s)) = schemas.get_mut(&item) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk_ext(&d.group, &d.version, &d.kind)]),
            );
        }
        schemas.insert(list.clone(), list_schema(d, &item));
        resource_paths(d, &item, &list, &mut paths);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Opaque content hash of a document (FNV-1a, 64 bits, upper-case hex).
pub fn hash(doc: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// The discovery document `/openapi/v3`: every served group/version and its hashed URL.
pub fn discovery(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, versions, _) in reg.groups() {
        for v in versions {
            if let Some(doc) = group_version_doc(reg, &g, &v) {
                let key = gv_key(&g, &v);
                paths.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&doc))}),
                );
            }
        }
    }
    json!({"paths": paths})
}
