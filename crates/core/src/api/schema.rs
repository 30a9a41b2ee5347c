//! Hand-written schema fragments for fields whose k8s-openapi schema does not suit a CRD.
//!
//! Each function is used through `#[schemars(schema_with = "...")]`; the Rust field keeps the
//! full k8s-openapi type, only the published OpenAPI schema differs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Longest label value Kubernetes accepts (RFC 1123 label).
pub const LABEL_VALUE_MAX_LENGTH: u64 = 63;
/// Longest label key Kubernetes accepts: a 253-character DNS prefix, `/` and a 63-character name.
pub const LABEL_KEY_MAX_LENGTH: u64 = 317;
/// Upper bound on selector entries.
///
/// The apiserver estimates the worst-case cost of every CEL rule when the CRD is created and
/// rejects rules over budget; a rule iterating over an unbounded map is estimated as if the map
/// filled the whole 3 MiB request. Bounding the selector keeps the selector/template rule cheap.
pub const SELECTOR_MAX_ENTRIES: u64 = 64;

/// Pod template: typed `metadata.labels`/`annotations` (CEL reads the labels), the rest of the
/// metadata and the pod spec preserved as given.
///
/// k8s-openapi's own `PodTemplateSpec` schema inlines the whole PodSpec (thousands of lines,
/// several hundred KiB once every version is rendered), which bloats the CRD past what
/// `kubectl apply` can store in its last-applied annotation. The apiserver validates the pod
/// itself when the operator creates it, so the CRD only needs to keep the template intact.
pub fn pod_template(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Pod template, as in a Deployment. Pods are created from it and updated in place when only container images change.",
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "labels": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "string",
                            "maxLength": LABEL_VALUE_MAX_LENGTH,
                        },
                    },
                    "annotations": {
                        "type": "object",
                        "additionalProperties": { "type": "string" },
                    },
                },
            },
            "spec": {
                "description": "Pod spec (core/v1 PodSpec); validated by the apiserver when pods are created.",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true,
                            "required": ["name"],
                            "properties": {
                                "name": { "type": "string" },
                                "image": { "type": "string" },
                            },
                        },
                    },
                },
            },
        },
    })
}

/// Label selector with bounded sizes, so that CEL rules over it stay within the cost budget.
pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Selects the pods this GameDeployment owns. Must match the pod template's labels; an empty selector is rejected because it would match no pods.",
        "type": "object",
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchLabels": {
                "type": "object",
                "maxProperties": SELECTOR_MAX_ENTRIES,
                "additionalProperties": {
                    "type": "string",
                    "maxLength": LABEL_VALUE_MAX_LENGTH,
                },
            },
            "matchExpressions": {
                "type": "array",
                "maxItems": SELECTOR_MAX_ENTRIES,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": { "type": "string", "maxLength": LABEL_KEY_MAX_LENGTH },
                        "operator": {
                            "type": "string",
                            "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                        },
                        "values": {
                            "type": "array",
                            "maxItems": SELECTOR_MAX_ENTRIES,
                            "items": { "type": "string", "maxLength": LABEL_VALUE_MAX_LENGTH },
                        },
                    },
                },
            },
        },
    })
}
