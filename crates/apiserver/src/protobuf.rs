//! `application/vnd.kubernetes.protobuf` request bodies, read into the JSON the rest of the
//! server works on. kubectl's typed clients send built-in kinds this way: `kubectl create
//! namespace`, `create configmap`, `create secret`, `create serviceaccount`, `create service`,
//! `create deployment`, `create role`/`rolebinding`/`clusterrole`/`clusterrolebinding`.
//!
//! A body is kube's envelope: the magic `k8s\0`, then a `runtime.Unknown` holding apiVersion,
//! kind and the object's own protobuf bytes. The object is read against [`MESSAGES`], the
//! Kubernetes 1.35 wire schema of the messages those commands send (field numbers as
//! `generated.proto` gives them), and written as Kubernetes' JSON: `Time` as RFC 3339,
//! `Quantity` and `IntOrString` as their strings or numbers, `bytes` as base64. A field the
//! table marks unsupported, a field number it does not know, or a kind outside it is refused
//! with a message that says to send JSON, never dropped. Answers stay JSON, which every client
//! that sends protobuf also accepts. README "Choices" says why this is not a crate.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;

/// The media type kube's clients name protobuf with.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// Every protobuf-encoded object starts with these four bytes.
const MAGIC: &[u8; 4] = b"k8s\0";

/// How a field's value is encoded, and so written.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static str),
    /// `map<string, string>`, `map<string, bytes>`, `map<string, Quantity>`.
    MapStr,
    MapBytes,
    MapQuantity,
    Time,
    IntOrString,
    /// Known to the wire schema, not read here: the object must be sent as JSON.
    Unsupported,
}
use Ty::*;

struct Field {
    number: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(number: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        repeated: false,
    }
}

const fn many(number: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        repeated: true,
    }
}

/// The objects read from protobuf, by apiVersion and kind.
const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
];

/// The wire schema: each message's fields by number.
#[rustfmt::skip]
const MESSAGES: &[(&str, &[Field])] = &[
    ("ObjectMeta", &[f(1, "name", Str), f(2, "generateName", Str), f(3, "namespace", Str), f(4, "selfLink", Str), f(5, "uid", Str), f(6, "resourceVersion", Str), f(7, "generation", Int), f(8, "creationTimestamp", Time), f(9, "deletionTimestamp", Time), f(10, "deletionGracePeriodSeconds", Int), f(11, "labels", MapStr), f(12, "annotations", MapStr), many(13, "ownerReferences", Msg("OwnerReference")), many(14, "finalizers", Str), many(17, "managedFields", Unsupported)]),
    ("OwnerReference", &[f(5, "apiVersion", Str), f(1, "kind", Str), f(3, "name", Str), f(4, "uid", Str), f(6, "controller", Bool), f(7, "blockOwnerDeletion", Bool)]),
    ("LabelSelector", &[f(1, "matchLabels", MapStr), many(2, "matchExpressions", Msg("LabelSelectorRequirement"))]),
    ("LabelSelectorRequirement", &[f(1, "key", Str), f(2, "operator", Str), many(3, "values", Str)]),
    ("Namespace", &[f(1, "metadata", Msg("ObjectMeta")), f(2, "spec", Msg("NamespaceSpec")), f(3, "status", Msg("NamespaceStatus"))]),
    ("NamespaceSpec", &[many(1, "finalizers", Str)]),
    ("NamespaceStatus", &[f(1, "phase", Str), many(2, "conditions", Unsupported)]),
    ("ConfigMap", &[f(1, "metadata", Msg("ObjectMeta")), f(4, "immutable", Bool), f(2, "data", MapStr), f(3, "binaryData", MapBytes)]),
    ("Secret", &[f(1, "metadata", Msg("ObjectMeta")), f(5, "immutable", Bool), f(2, "data", MapBytes), f(4, "stringData", MapStr), f(3, "type", Str)]),
    ("ServiceAccount", &[f(1, "metadata", Msg("ObjectMeta")), many(2, "secrets", Msg("ObjectReference")), many(3, "imagePullSecrets", Msg("LocalObjectReference")), f(4, "automountServiceAccountToken", Bool)]),
    ("ObjectReference", &[f(1, "kind", Str), f(2, "namespace", Str), f(3, "name", Str), f(4, "uid", Str), f(5, "apiVersion", Str), f(6, "resourceVersion", Str), f(7, "fieldPath", Str)]),
    ("LocalObjectReference", &[f(1, "name", Str)]),
    ("Service", &[f(1, "metadata", Msg("ObjectMeta")), f(2, "spec", Msg("ServiceSpec")), f(3, "status", Msg("ServiceStatus"))]),
    ("ServiceSpec", &[many(1, "ports", Msg("ServicePort")), f(2, "selector", MapStr), f(3, "clusterIP", Str), many(18, "clusterIPs", Str), f(4, "type", Str), many(5, "externalIPs", Str), f(7, "sessionAffinity", Str), f(8, "loadBalancerIP", Str), many(9, "loadBalancerSourceRanges", Str), f(10, "externalName", Str), f(11, "externalTrafficPolicy", Str), f(12, "healthCheckNodePort", Int), f(13, "publishNotReadyAddresses", Bool), f(14, "sessionAffinityConfig", Unsupported), many(19, "ipFamilies", Str), f(17, "ipFamilyPolicy", Str), f(20, "allocateLoadBalancerNodePorts", Bool), f(21, "loadBalancerClass", Str), f(22, "internalTrafficPolicy", Str), f(23, "trafficDistribution", Str)]),
    ("ServicePort", &[f(1, "name", Str), f(2, "protocol", Str), f(6, "appProtocol", Str), f(3, "port", Int), f(4, "targetPort", IntOrString), f(5, "nodePort", Int)]),
    ("ServiceStatus", &[f(1, "loadBalancer", Msg("LoadBalancerStatus")), many(2, "conditions", Unsupported)]),
    ("LoadBalancerStatus", &[many(1, "ingress", Unsupported)]),
    ("Deployment", &[f(1, "metadata", Msg("ObjectMeta")), f(2, "spec", Msg("DeploymentSpec")), f(3, "status", Msg("DeploymentStatus"))]),
    ("DeploymentSpec", &[f(1, "replicas", Int), f(2, "selector", Msg("LabelSelector")), f(3, "template", Msg("PodTemplateSpec")), f(4, "strategy", Msg("DeploymentStrategy")), f(5, "minReadySeconds", Int), f(6, "revisionHistoryLimit", Int), f(7, "paused", Bool), f(9, "progressDeadlineSeconds", Int)]),
    ("DeploymentStrategy", &[f(1, "type", Str), f(2, "rollingUpdate", Msg("RollingUpdateDeployment"))]),
    ("RollingUpdateDeployment", &[f(1, "maxUnavailable", IntOrString), f(2, "maxSurge", IntOrString)]),
    ("DeploymentStatus", &[f(1, "observedGeneration", Int), f(2, "replicas", Int), f(3, "updatedReplicas", Int), f(7, "readyReplicas", Int), f(4, "availableReplicas", Int), f(5, "unavailableReplicas", Int), f(9, "terminatingReplicas", Int), many(6, "conditions", Unsupported), f(8, "collisionCount", Int)]),
    ("PodTemplateSpec", &[f(1, "metadata", Msg("ObjectMeta")), f(2, "spec", Msg("PodSpec"))]),
    ("PodSpec", &[many(1, "volumes", Unsupported), many(20, "initContainers", Msg("Container")), many(2, "containers", Msg("Container")), many(34, "ephemeralContainers", Unsupported), f(3, "restartPolicy", Str), f(4, "terminationGracePeriodSeconds", Int), f(5, "activeDeadlineSeconds", Int), f(6, "dnsPolicy", Str), f(7, "nodeSelector", MapStr), f(8, "serviceAccountName", Str), f(9, "serviceAccount", Str), f(21, "automountServiceAccountToken", Bool), f(10, "nodeName", Str), f(11, "hostNetwork", Bool), f(12, "hostPID", Bool), f(13, "hostIPC", Bool), f(27, "shareProcessNamespace", Bool), f(14, "securityContext", Unsupported), many(15, "imagePullSecrets", Msg("LocalObjectReference")), f(16, "hostname", Str), f(17, "subdomain", Str), f(18, "affinity", Unsupported), f(19, "schedulerName", Str), many(22, "tolerations", Unsupported), many(23, "hostAliases", Unsupported), f(24, "priorityClassName", Str), f(25, "priority", Int), f(26, "dnsConfig", Unsupported), many(28, "readinessGates", Unsupported), f(29, "runtimeClassName", Str), f(30, "enableServiceLinks", Bool), f(31, "preemptionPolicy", Str), f(32, "overhead", MapQuantity), many(33, "topologySpreadConstraints", Unsupported), f(35, "setHostnameAsFQDN", Bool), f(36, "os", Unsupported), f(37, "hostUsers", Bool), many(38, "schedulingGates", Unsupported), many(39, "resourceClaims", Unsupported), f(40, "resources", Msg("ResourceRequirements")), f(41, "hostnameOverride", Str), f(42, "workloadRef", Unsupported)]),
    ("Container", &[f(1, "name", Str), f(2, "image", Str), many(3, "command", Str), many(4, "args", Str), f(5, "workingDir", Str), many(6, "ports", Msg("ContainerPort")), many(19, "envFrom", Unsupported), many(7, "env", Msg("EnvVar")), f(8, "resources", Msg("ResourceRequirements")), many(23, "resizePolicy", Unsupported), f(24, "restartPolicy", Str), many(25, "restartPolicyRules", Unsupported), many(9, "volumeMounts", Unsupported), many(21, "volumeDevices", Unsupported), f(10, "livenessProbe", Unsupported), f(11, "readinessProbe", Unsupported), f(22, "startupProbe", Unsupported), f(12, "lifecycle", Unsupported), f(13, "terminationMessagePath", Str), f(20, "terminationMessagePolicy", Str), f(14, "imagePullPolicy", Str), f(15, "securityContext", Unsupported), f(16, "stdin", Bool), f(17, "stdinOnce", Bool), f(18, "tty", Bool)]),
    ("ContainerPort", &[f(1, "name", Str), f(2, "hostPort", Int), f(3, "containerPort", Int), f(4, "protocol", Str), f(5, "hostIP", Str)]),
    ("EnvVar", &[f(1, "name", Str), f(2, "value", Str), f(3, "valueFrom", Unsupported)]),
    ("ResourceRequirements", &[f(1, "limits", MapQuantity), f(2, "requests", MapQuantity), many(3, "claims", Unsupported)]),
    ("Role", &[f(1, "metadata", Msg("ObjectMeta")), many(2, "rules", Msg("PolicyRule"))]),
    ("PolicyRule", &[many(1, "verbs", Str), many(2, "apiGroups", Str), many(3, "resources", Str), many(4, "resourceNames", Str), many(5, "nonResourceURLs", Str)]),
    ("RoleBinding", &[f(1, "metadata", Msg("ObjectMeta")), many(2, "subjects", Msg("Subject")), f(3, "roleRef", Msg("RoleRef"))]),
    ("Subject", &[f(1, "kind", Str), f(2, "apiGroup", Str), f(3, "name", Str), f(4, "namespace", Str)]),
    ("RoleRef", &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)]),
    ("ClusterRole", &[f(1, "metadata", Msg("ObjectMeta")), many(2, "rules", Msg("PolicyRule")), f(3, "aggregationRule", Msg("AggregationRule"))]),
    ("AggregationRule", &[many(1, "clusterRoleSelectors", Msg("LabelSelector"))]),
    ("ClusterRoleBinding", &[f(1, "metadata", Msg("ObjectMeta")), many(2, "subjects", Msg("Subject")), f(3, "roleRef", Msg("RoleRef"))]),

];

/// The JSON object a protobuf request body encodes.
pub fn to_json(body: &[u8]) -> Result<Value, ApiError> {
    let Some(envelope) = body.strip_prefix(MAGIC) else {
        return Err(ApiError::bad_request(format!(
            "provided data does not appear to be a protobuf message, expected prefix {:?}",
            MAGIC
        )));
    };
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for entry in Reader(envelope) {
        let (number, value) = entry?;
        match (number, value) {
            (1, Wire::Bytes(type_meta)) => {
                for entry in Reader(type_meta) {
                    match entry? {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) if !b.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "protobuf content encoding {:?} is not supported",
                    text(b)?
                )));
            }
            _ => {}
        }
    }
    if !KINDS.contains(&(api_version.as_str(), kind.as_str())) {
        return Err(ApiError::unsupported_media_type(format!(
            "the embedded API server reads {kind} ({api_version}) as JSON or YAML only; \
             protobuf bodies are read for the kinds kubectl create makes"
        )));
    }
    let mut object = message(&kind, raw)?;
    if let Value::Object(m) = &mut object {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

fn schema(name: &str) -> &'static [Field] {
    MESSAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, fields)| fields)
}

/// One message as a JSON object: each field under its name, repeated ones as arrays, maps as
/// objects; the last of a repeated singular field wins, as protobuf says.
fn message(name: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let fields = schema(name);
    let mut out = Map::new();
    for entry in Reader(bytes) {
        let (number, wire) = entry?;
        let Some(field) = fields.iter().find(|f| f.number == number) else {
            return Err(unread(name, &number.to_string()));
        };
        match field.ty {
            MapStr | MapBytes | MapQuantity => {
                let Wire::Bytes(b) = wire else {
                    return Err(malformed(name, field.name));
                };
                let (key, value) = map_entry(field.ty, b, name, field.name)?;
                if let Some(m) = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                {
                    m.insert(key, value);
                }
            }
            _ if field.repeated => {
                let v = value(field.ty, wire, name, field.name)?;
                if let Some(a) = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Array(Vec::new()))
                    .as_array_mut()
                {
                    a.push(v);
                }
            }
            _ => {
                let v = value(field.ty, wire, name, field.name)?;
                out.insert(field.name.to_string(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

fn value(ty: Ty, wire: Wire, message_name: &str, field: &str) -> Result<Value, ApiError> {
    Ok(match (ty, wire) {
        (Str, Wire::Bytes(b)) => json!(text(b)?),
        // int32 and int64 alike: a negative int32 is sent as ten bytes of two's complement.
        (Int, Wire::Varint(n)) => json!(n as i64),
        (Bool, Wire::Varint(n)) => json!(n != 0),
        (Msg(name), Wire::Bytes(b)) => message(name, b)?,
        (Time, Wire::Bytes(b)) => time(b)?,
        (IntOrString, Wire::Bytes(b)) => int_or_string(b)?,
        (Unsupported, _) => return Err(unread(message_name, field)),
        _ => return Err(malformed(message_name, field)),
    })
}

/// A map entry: key 1, value 2.
fn map_entry(
    ty: Ty,
    bytes: &[u8],
    message_name: &str,
    field: &str,
) -> Result<(String, Value), ApiError> {
    let mut key = String::new();
    let mut out = json!("");
    for entry in Reader(bytes) {
        match (entry?, ty) {
            ((1, Wire::Bytes(b)), _) => key = text(b)?,
            ((2, Wire::Bytes(b)), MapStr) => out = json!(text(b)?),
            ((2, Wire::Bytes(b)), MapBytes) => {
                out = json!(base64::engine::general_purpose::STANDARD.encode(b))
            }
            ((2, Wire::Bytes(b)), MapQuantity) => out = quantity(b)?,
            _ => return Err(malformed(message_name, field)),
        }
    }
    Ok((key, out))
}

/// `metav1.Time`: seconds and nanos, written as RFC 3339 to the second, as Go marshals it.
fn time(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut seconds = 0i64;
    for entry in Reader(bytes) {
        if let (1, Wire::Varint(n)) = entry? {
            seconds = n as i64;
        }
    }
    let t = jiff::Timestamp::from_second(seconds)
        .map_err(|e| ApiError::bad_request(format!("a timestamp is out of range: {e}")))?;
    Ok(json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn quantity(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut out = String::new();
    for entry in Reader(bytes) {
        if let (1, Wire::Bytes(b)) = entry? {
            out = text(b)?;
        }
    }
    Ok(json!(out))
}

/// `intstr.IntOrString`: type 0 is `intVal`, type 1 `strVal`.
fn int_or_string(bytes: &[u8]) -> Result<Value, ApiError> {
    let (mut kind, mut int, mut string) = (0u64, 0i64, String::new());
    for entry in Reader(bytes) {
        match entry? {
            (1, Wire::Varint(n)) => kind = n,
            (2, Wire::Varint(n)) => int = i64::from(n as i32),
            (3, Wire::Bytes(b)) => string = text(b)?,
            _ => {}
        }
    }
    Ok(if kind == 1 { json!(string) } else { json!(int) })
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| ApiError::bad_request("a protobuf string is not UTF-8"))
}

fn unread(message_name: &str, field: &str) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "the embedded API server does not read field {field} of {message_name} from protobuf; \
         send the object as JSON"
    ))
}

fn malformed(message_name: &str, field: &str) -> ApiError {
    ApiError::bad_request(format!(
        "protobuf field {field} of {message_name} has the wrong wire type"
    ))
}

/// One field's raw value.
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

/// The (field number, value) pairs of one message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or_else(truncated)?;
            self.0 = rest;
            out |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(out);
            }
        }
        Err(truncated())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ApiError> {
        let n = usize::try_from(n).map_err(|_| truncated())?;
        if n > self.0.len() {
            return Err(truncated());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Wire<'a>), ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = (|| {
            let key = self.varint()?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Wire::Fixed64
                }
                2 => {
                    let len = self.varint()?;
                    Wire::Bytes(self.take(len)?)
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed32
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "protobuf wire type {other} is not supported"
                    )));
                }
            };
            Ok((key >> 3, wire))
        })();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

fn truncated() -> ApiError {
    ApiError::bad_request("the protobuf message is truncated")
}

#[cfg(test)]
mod tests;
