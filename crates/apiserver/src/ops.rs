//! Object operations with the semantics of kube-apiserver's generic registry
//! (the generic registry `Store`) and the per-kind strategies (the pod strategies,
//! apiextensions' `customResourceStrategy`).
//! Everything runs under the store lock, so each request is atomic.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::admission::{self, Attributes, Operation};
use super::errors::{
    ApiError, Cause, duplicate, forbidden_field, invalid_value, required, too_long,
};
use super::kinds;
use super::managed::{self, Writer};
use super::patch::{self, ListSemantics};
use super::resources::{ResourceDesc, Strategy, descriptors_from_crd};
use super::selectors::{
    FieldSelector, LabelSelector, dns_label_errors, valid_dns_label, valid_dns_subdomain,
    valid_label_key, valid_label_value,
};
use super::store::{EventType, ObjKey, Store};

/// Per-request facts the operations need: the time, the field manager and the write options.
#[derive(Clone)]
pub struct RequestContext {
    /// RFC 3339 time from the server's clock (second precision, like `metav1.Time`).
    pub now: String,
    /// `now` as seconds since the epoch, for graceful-deletion arithmetic.
    pub now_secs: i64,
    pub manager: String,
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown or duplicate fields are an error instead of dropped.
    pub strict: bool,
    /// The client a request came from (`request.userInfo.username` for admission policies);
    /// `None` for the server's own writes (seeding, garbage collection, the object behind a
    /// `/scale` write, which is admitted as a Scale), which skip admission.
    pub user: Option<String>,
    /// The API version the client wrote in, for `managedFields`, when it is not the stored
    /// resource's (`events.k8s.io/v1` Events are stored as core `v1` ones).
    pub written_as: Option<String>,
}

/// Paths present in `before` but gone from `after` (objects only), for strict field validation.
fn dropped_fields(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    Some(av) => dropped_fields(v, av, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a.iter()).enumerate() {
                dropped_fields(bv, av, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Decode as the typed built-in or prune to the CRD schema: unknown fields are dropped, or
/// rejected under `fieldValidation=Strict` (`strict decoding error: unknown field ...`).
fn decode(ctx: &RequestContext, desc: &ResourceDesc, obj: Value) -> Result<Value, ApiError> {
    let before = ctx.strict.then(|| obj.clone());
    let out = match (&desc.schema, desc.strategy) {
        (Some(schema), Strategy::Custom) => {
            let mut o = obj;
            schema.prune(&mut o);
            o
        }
        _ => super::builtin::normalize(desc, obj)?,
    };
    if let Some(before) = before {
        let mut gone = Vec::new();
        dropped_fields(&before, &out, "", &mut gone);
        if !gone.is_empty() {
            let list: Vec<String> = gone
                .iter()
                .map(|g| format!("unknown field {g:?}"))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = desc.kind,
                v = desc.version
            )));
        }
    }
    Ok(out)
}

/// Which endpoint a write came through: the resource itself (`Main`) or its `/status`
/// subresource. (`/scale` is translated into a main-resource write before it gets here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

impl Subresource {
    /// `Status` for the `status` path segment, `Main` for none.
    pub fn of_status_path(segment: Option<&str>) -> Self {
        if segment == Some("status") {
            Subresource::Status
        } else {
            Subresource::Main
        }
    }

    fn name(self) -> Option<&'static str> {
        match self {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
        }
    }
}

pub fn key(desc: &ResourceDesc, ns: Option<&str>, name: &str) -> ObjKey {
    (
        if desc.namespaced {
            ns.unwrap_or("").to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        if let Value::Object(m) = obj {
            m.insert("metadata".into(), json!({}));
        } else {
            *obj = json!({"metadata": {}});
        }
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just ensured to be an object"),
    }
}

/// The string at JSON pointer `ptr` in `v`, or `""` when it is missing or not a string.
fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn sem(desc: &ResourceDesc) -> ListSemantics<'_> {
    match &desc.schema {
        Some(s) => ListSemantics::Schema(s),
        None => ListSemantics::Builtin,
    }
}

/// Parse a request body as a JSON object (400 otherwise, as the decoder does).
pub fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized: expected a JSON object",
        ));
    }
    Ok(v)
}

/// `APIObjectVersioner.ParseResourceVersion`: "" and "0" mean any version; anything else must
/// be a number. kube-apiserver passes the storage error through unconverted, so a client sees a
/// 500 without a reason (kubernetes#101350).
pub fn parse_resource_version(rv: &str) -> Result<u64, ApiError> {
    if rv.is_empty() {
        return Ok(0);
    }
    rv.parse().map_err(|_| {
        ApiError::unconverted(
            500,
            format!(
                "resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
            ),
        )
    })
}

/// apiVersion/kind must match the endpoint when given; fill them in otherwise.
fn check_type(desc: &ResourceDesc, obj: &mut Value) -> Result<(), ApiError> {
    let av = desc.api_version();
    let given_av = str_at(obj, "/apiVersion").to_string();
    let given_kind = str_at(obj, "/kind").to_string();
    // A built-in kind's decoder defaults apiVersion and kind from the URL; a custom resource
    // is decoded as unstructured, which needs its own kind (`runtime.NewMissingKindErr`) and
    // whose version must then match (`create.go`: "the API version in the data").
    if !desc.is_builtin() {
        if given_kind.is_empty() {
            // `transformDecodeError` asks the kind-less object for its kind, and quotes that
            // error, not the body.
            return Err(ApiError::bad_request(
                "Object 'Kind' is missing in 'object has no kind field '",
            ));
        }
        if given_av.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data () does not match the expected API version ({av})"
            )));
        }
    }
    if !given_av.is_empty() && given_av != av {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given_av}) does not match the expected API version ({av})"
        )));
    }
    if !given_kind.is_empty() && given_kind != desc.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given_kind}) does not match the expected kind ({})",
            desc.kind
        )));
    }
    if let Value::Object(m) = obj {
        m.insert("apiVersion".into(), json!(av));
        m.insert("kind".into(), json!(desc.kind));
    }
    Ok(())
}

/// A list with `resourceVersionMatch=Exact`: served from the current objects when nothing of
/// this resource changed after that version (they are then that snapshot), else `410 Expired`
/// as kube-apiserver answers a version it no longer has; a version from the future is
/// kube's `504 Too large resource version`.
pub fn check_exact_snapshot(store: &Store, desc: &ResourceDesc, rv: &str) -> Result<(), ApiError> {
    let want = parse_resource_version(rv)?;
    if want > store.rv {
        return Err(ApiError {
            code: 504,
            reason: "Timeout",
            message: format!("Too large resource version: {want}, current: {}", store.rv),
            details: Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1
            })),
        });
    }
    let newest = store
        .tables
        .get(&desc.gr())
        .map_or(0, |t| t.log.back().map_or(t.compacted_rv, |e| e.rv()));
    if newest > want {
        return Err(ApiError::gone(
            "The resourceVersion for the provided list is too old.",
        ));
    }
    Ok(())
}

/// apiserver's `maxGeneratedNameLength`: 63 less the five random characters.
const MAX_GENERATED_NAME_PREFIX: usize = 58;

fn validate_meta(desc: &ResourceDesc, obj: &Value, causes: &mut Vec<Cause>) {
    let name = str_at(obj, "/metadata/name");
    let ok = match desc.strategy {
        Strategy::Namespace => valid_dns_label(name),
        _ => valid_dns_subdomain(name),
    };
    if !name.is_empty() && !ok {
        causes.push(invalid_value(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, v) in m {
                    if !valid_label_key(k) {
                        causes.push(invalid_value("metadata.labels", &json!(k), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                    match v.as_str() {
                        Some(s) if valid_label_value(s) => {}
                        _ => causes.push(invalid_value("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")),
                    }
                }
            }
            None if !labels.is_null() => causes.push(invalid_value(
                "metadata.labels",
                labels,
                "must be a map of strings",
            )),
            None => {}
        }
    }
    if let Some(a) = obj.pointer("/metadata/annotations")
        && !a.is_null()
        && !a
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
    {
        causes.push(invalid_value(
            "metadata.annotations",
            a,
            "must be a map of strings",
        ));
    }
    if let Some(m) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        // `ValidateAnnotations`: each key a qualified name, checked lower-cased.
        for k in m.keys() {
            // Lower-cased as kube does; most keys already are, and every write checks them.
            let key = if k.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(k.to_lowercase())
            } else {
                std::borrow::Cow::Borrowed(k.as_str())
            };
            for msg in super::kinds::qualified_name_errors(&key) {
                causes.push(invalid_value("metadata.annotations", &json!(k), &msg));
            }
        }
        let total: usize = m
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > TOTAL_ANNOTATION_BYTES {
            causes.push(too_long("metadata.annotations", TOTAL_ANNOTATION_BYTES));
        }
    }
    validate_finalizers(desc, obj, causes);
}

/// `ValidateFinalizers` (apimachinery): each finalizer a qualified name, reported on
/// `metadata.finalizers`. Kinds the core validation package checks (`validateKubeFinalizerName`)
/// check each again at its index, and there one without a `/` must be a standard one; CRDs,
/// admission registration and custom resources use apimachinery's rules alone.
fn validate_finalizers(desc: &ResourceDesc, obj: &Value, causes: &mut Vec<Cause>) {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    let Some(list) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return;
    };
    let kube_rules = desc.is_builtin()
        && !matches!(
            desc.group.as_str(),
            "apiextensions.k8s.io" | "admissionregistration.k8s.io"
        );
    for (i, f) in list.iter().enumerate() {
        let Some(f) = f.as_str() else { continue };
        let errors = super::kinds::qualified_name_errors(f);
        let unqualified = kube_rules && !f.contains('/') && !STANDARD.contains(&f);
        for msg in &errors {
            causes.push(invalid_value("metadata.finalizers", &json!(f), msg));
        }
        if kube_rules && (unqualified || !errors.is_empty()) {
            let field = format!("metadata.finalizers[{i}]");
            for msg in &errors {
                causes.push(invalid_value(&field, &json!(f), msg));
            }
            if unqualified {
                causes.push(invalid_value(
                    &field,
                    &json!(f),
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
}

/// `TotalAnnotationSizeLimitB`: keys and values of all annotations together.
const TOTAL_ANNOTATION_BYTES: usize = 256 * 1024;

/// Defaults kube-apiserver applies to every pod it decodes (`SetDefaults_Pod` and friends),
/// so stored pods look like real ones and re-sent pods compare equal.
pub fn default_pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        spec.entry(k).or_insert(v);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let tag = image.rsplit('/').next().unwrap_or("");
                let latest =
                    !image.contains('@') && (!tag.contains(':') || tag.ends_with(":latest"));
                c.entry("imagePullPolicy").or_insert(json!(if latest {
                    "Always"
                } else {
                    "IfNotPresent"
                }));
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                c.entry("resources").or_insert(json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

/// `qos.GetPodQOS`, reduced to requests/limits of cpu and memory.
fn pod_qos(obj: &Value) -> &'static str {
    let cs: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| obj.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let res =
        |c: &Value, kind: &str, r: &str| c.pointer(&format!("/resources/{kind}/{r}")).cloned();
    let any = cs.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| res(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = !cs.is_empty()
        && cs.iter().all(|c| {
            ["cpu", "memory"].iter().all(|r| {
                let lim = res(c, "limits", r);
                let req = res(c, "requests", r).or_else(|| lim.clone());
                lim.is_some() && lim == req
            })
        });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Everything outside metadata (and status when it has its own endpoint): what a generation
/// bump compares.
fn generation_changed(desc: &ResourceDesc, new: &Value, old: &Value) -> bool {
    if desc.strategy == Strategy::Pod {
        return new.get("spec") != old.get("spec");
    }
    let skip = |k: &str| k == "metadata" || (desc.has_status && k == "status");
    differs_except(new, old, skip)
}

/// Whether two objects differ in any top-level member not skipped (without cloning).
fn differs_except(a: &Value, b: &Value, skip: impl Fn(&str) -> bool) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => {
            am.iter().any(|(k, v)| !skip(k) && bm.get(k) != Some(v))
                || bm.keys().any(|k| !skip(k) && !am.contains_key(k))
        }
        _ => a != b,
    }
}

/// Equal apart from resourceVersion and managedFields: such a write is a no-op.
fn same_content(a: &Value, b: &Value) -> bool {
    if differs_except(a, b, |k| k == "metadata") {
        return false;
    }
    let empty = Value::Object(Map::new());
    let (am, bm) = (
        a.get("metadata").unwrap_or(&empty),
        b.get("metadata").unwrap_or(&empty),
    );
    !differs_except(am, bm, |k| k == "resourceVersion" || k == "managedFields")
}

/// Validating admission policies for a client's write (none for the server's own, see
/// [`RequestContext::user`]); `Warn` results are queued on the store for the response.
pub fn run_admission(
    store: &mut Store,
    ctx: &RequestContext,
    attrs: &Attributes<'_>,
) -> Result<(), ApiError> {
    let Some(user) = ctx.user.as_deref() else {
        return Ok(());
    };
    let warnings = admission::validate(store, &Attributes { user, ..*attrs })?;
    store.warnings.extend(warnings);
    Ok(())
}

/// Kind-specific validation and normalisation common to create and update.
fn admit(
    store: &Store,
    desc: &ResourceDesc,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    validate_meta(desc, obj, &mut causes);
    let name = str_at(obj, "/metadata/name").to_string();
    match desc.strategy {
        Strategy::Custom => {
            if let Some(schema) = &desc.schema {
                schema.prune(obj);
                schema.default(obj);
                causes.extend(schema.validate(obj, old));
            }
        }
        Strategy::Pod => {
            default_pod(obj);
            let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
            match containers {
                None => causes.push(required("spec.containers", "")),
                Some(cs) if cs.is_empty() => causes.push(required("spec.containers", "")),
                Some(_) => {
                    let mut names = BTreeSet::new();
                    validate_containers(obj, "containers", &mut names, &mut causes);
                    validate_containers(obj, "initContainers", &mut names, &mut causes);
                }
            }
            if let Some(old) = old {
                pod_update_rules(obj, old, &mut causes);
            }
        }
        Strategy::Crd => {
            // CEL rules first: one that fails here must not reach the parser below.
            let rule_causes = super::schema::check_crd_rules(obj);
            let rules_ok = rule_causes.is_empty();
            causes.extend(rule_causes);
            if rules_ok && let Err(errs) = descriptors_from_crd(obj) {
                for e in errs {
                    let (field, msg) = e.split_once(": ").unwrap_or(("", e.as_str()));
                    causes.push(Cause {
                        reason: "FieldValueInvalid".into(),
                        message: msg.to_string(),
                        field: field.to_string(),
                    });
                }
            }
            if let Some(old) = old
                && (old.pointer("/spec/group") != obj.pointer("/spec/group")
                    || old.pointer("/spec/names/plural") != obj.pointer("/spec/names/plural"))
            {
                causes.push(invalid_value(
                    "spec.group",
                    obj.pointer("/spec/group").unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
        Strategy::Plain if desc.group == "apps" && desc.plural == "controllerrevisions" => {
            // ValidateControllerRevision(Update): revision ≥ 0, data immutable.
            if let Some(r) = obj.get("revision").and_then(Value::as_i64)
                && r < 0
            {
                causes.push(invalid_value(
                    "revision",
                    &json!(r),
                    "must be greater than or equal to 0",
                ));
            }
            if let Some(old) = old
                && old.get("data") != obj.get("data")
            {
                causes.push(invalid_value(
                    "data",
                    obj.get("data").unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
        Strategy::Service => {
            kinds::default_service(obj);
            kinds::validate_service(obj, &mut causes);
        }
        Strategy::Secret => {
            kinds::default_secret(obj);
            kinds::validate_data_keys(obj, old, &mut causes);
        }
        Strategy::Plain if desc.group.is_empty() && desc.kind == "ConfigMap" => {
            kinds::validate_data_keys(obj, old, &mut causes);
        }
        Strategy::Deployment => {
            kinds::default_deployment(obj, default_pod);
            kinds::validate_deployment(obj, old, &mut causes);
        }
        Strategy::AdmissionPolicy => causes.extend(admission::check_policy(obj)),
        Strategy::AdmissionPolicyBinding => kinds::validate_policy_binding(obj, &mut causes),
        Strategy::Plain if desc.group == "coordination.k8s.io" => {
            // ValidateLeaseSpec.
            for f in ["leaseDurationSeconds"] {
                if let Some(v) = obj.pointer(&format!("/spec/{f}")).and_then(Value::as_i64)
                    && v <= 0
                {
                    causes.push(invalid_value(
                        &format!("spec.{f}"),
                        &json!(v),
                        "must be greater than 0",
                    ));
                }
            }
            if let Some(v) = obj
                .pointer("/spec/leaseTransitions")
                .and_then(Value::as_i64)
                && v < 0
            {
                causes.push(invalid_value(
                    "spec.leaseTransitions",
                    &json!(v),
                    "must be greater than or equal to 0",
                ));
            }
        }
        _ => {}
    }
    let _ = store;
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&desc.group, &desc.kind, &name, &causes))
    }
}

/// `validateContainers` / `validateInitContainers`: each container has a DNS-1123 label for
/// a name and an image; names are unique across regular and init containers (regular ones are
/// checked first, so a clash is reported on the init container).
fn validate_containers(
    obj: &Value,
    list: &str,
    names: &mut BTreeSet<String>,
    causes: &mut Vec<Cause>,
) {
    let Some(cs) = obj
        .pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, c) in cs.iter().enumerate() {
        let path = format!("spec.{list}[{i}]");
        let name = str_at(c, "/name");
        if name.is_empty() {
            causes.push(required(&format!("{path}.name"), ""));
        } else {
            for msg in dns_label_errors(name) {
                causes.push(invalid_value(&format!("{path}.name"), &json!(name), msg));
            }
        }
        if !names.insert(name.to_string()) {
            causes.push(duplicate(&format!("{path}.name"), &json!(name)));
        }
        if str_at(c, "/image").is_empty() {
            causes.push(required(&format!("{path}.image"), ""));
        }
    }
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds, tolerations and
/// terminationGracePeriodSeconds may change in a pod spec.
fn pod_update_rules(new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let mask = |v: &Value| -> Value {
        let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut s {
            for k in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "schedulingGates",
            ] {
                m.remove(k);
            }
            for l in ["containers", "initContainers"] {
                if let Some(cs) = m.get_mut(l).and_then(Value::as_array_mut) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        s
    };
    if mask(new) != mask(old) {
        causes.push(forbidden_field(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

/// After a CRD write: (re)register its served versions.
fn register_crd(store: &mut Store, crd: &Value) {
    if let Ok((descs, storage)) = descriptors_from_crd(crd) {
        if let Some(first) = descs.first() {
            store.registry.remove_resource(&first.group, &first.plural);
            store.registry.set_preferred(&first.group, &storage);
        }
        for d in descs {
            store.registry.insert(d);
        }
    }
}

/// Status the CRD controllers would publish: names accepted and established.
fn crd_status(crd: &Value) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": stored,
    })
}

fn set_crd_condition_times(status: &mut Value, now: &str) {
    if let Some(cs) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            c.insert("lastTransitionTime".into(), json!(now));
        }
    }
}

pub fn get(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
) -> Result<Arc<Value>, ApiError> {
    store
        .get(&desc.gr(), &key(desc, ns, name))
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))
}

/// Continue token: the last key returned, base64-free JSON is fine since clients treat it as
/// opaque.
fn encode_continue(rv: u64, k: ObjKey) -> String {
    let raw = json!({"rv": rv, "ns": k.0, "name": k.1}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The list's resourceVersion (of its first page) and the last key returned.
fn decode_continue(tok: &str) -> Option<(u64, ObjKey)> {
    if !tok.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(tok.get(i..i + 2)?, 16).ok())
        .collect();
    let v: Value = serde_json::from_slice(&bytes?).ok()?;
    Some((
        v.get("rv")?.as_u64()?,
        (
            v.get("ns")?.as_str()?.to_string(),
            v.get("name")?.as_str()?.to_string(),
        ),
    ))
}

pub struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub cont: Option<String>,
}

/// LIST. Pages continue after the last returned key, and every page carries the
/// resourceVersion of the first, as kube-apiserver's do: a client that watches from it after
/// the last page sees every change made while it paged (a later page's version would hide the
/// changes to objects already listed, for ever). Unlike etcd, later pages show the current
/// state rather than a snapshot, so a change may be seen twice; a token whose version the
/// event log no longer covers is 410 Expired, as a compacted one is.
pub fn list(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    opts: &ListOpts,
) -> Result<Value, ApiError> {
    let (md, items) = list_raw(store, desc, ns, opts)?;
    Ok(json!({
        "apiVersion": desc.api_version(),
        "kind": desc.list_kind(),
        "metadata": md,
        "items": items.iter().map(|o| (**o).clone()).collect::<Vec<_>>(),
    }))
}

/// LIST as (list metadata, shared items), for responses serialized without copying.
pub fn list_raw(
    store: &Store,
    desc: &ResourceDesc,
    ns: Option<&str>,
    opts: &ListOpts,
) -> Result<(Value, Vec<Arc<Value>>), ApiError> {
    let (list_rv, start) = match &opts.cont {
        Some(t) if !t.is_empty() => {
            let (rv, key) = decode_continue(t).ok_or_else(|| {
                ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            })?;
            (rv, Some(key))
        }
        _ => (store.rv, None),
    };
    let table = store.tables.get(&desc.gr());
    if start.is_some() && table.is_some_and(|t| list_rv < t.compacted_rv) {
        return Err(ApiError::gone(
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter.",
        ));
    }
    let empty = Default::default();
    let objects = table.map(|t| &t.objects).unwrap_or(&empty);
    let selecting = !(opts.labels.is_empty() && opts.fields.is_empty());
    let range = match (&start, desc.namespaced.then_some(ns).flatten()) {
        (Some(s), _) => objects.range((
            std::ops::Bound::Excluded(s.clone()),
            std::ops::Bound::Unbounded,
        )),
        (None, Some(n)) => objects.range((n.to_string(), String::new())..),
        (None, None) => objects.range::<ObjKey, _>(..),
    };
    let mut items: Vec<Arc<Value>> = Vec::new();
    let mut last_key: Option<&ObjKey> = None;
    let mut next = None;
    let mut remaining = 0usize;
    for (k, o) in range {
        if desc.namespaced && ns.is_some_and(|n| n != k.0) {
            if ns.is_some_and(|n| k.0.as_str() > n) {
                break;
            }
            continue;
        }
        if selecting && !(opts.labels.matches_obj(o) && opts.fields.matches(o)) {
            continue;
        }
        if let Some(l) = opts.limit
            && l > 0
            && items.len() >= l
        {
            if next.is_none() {
                next = Some(encode_continue(
                    list_rv,
                    last_key.cloned().unwrap_or_default(),
                ));
                if selecting {
                    break;
                }
            }
            remaining += 1;
            continue;
        }
        last_key = Some(k);
        items.push(o.clone());
    }
    let mut md = json!({"resourceVersion": list_rv.to_string()});
    if let Some(n) = next {
        md["continue"] = json!(n);
        if !selecting {
            md["remainingItemCount"] = json!(remaining);
        }
    }
    Ok((md, items))
}

/// POST.
pub fn create(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    mut obj: Value,
    apply: Option<ApplyInfo<'_>>,
) -> Result<Value, ApiError> {
    check_type(desc, &mut obj)?;
    let mut obj = decode(ctx, desc, obj)?;
    let url_ns = if desc.namespaced {
        ns.unwrap_or("")
    } else {
        ""
    };
    {
        let m = meta_mut(&mut obj);
        let body_ns = m
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if desc.namespaced {
            if !body_ns.is_empty() && body_ns != url_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".into(), json!(url_ns));
        } else {
            m.remove("namespace");
        }
    }
    let mut name = str_at(&obj, "/metadata/name").to_string();
    if name.is_empty() {
        let gen_name = str_at(&obj, "/metadata/generateName").to_string();
        if gen_name.is_empty() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                "",
                &[required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        // `SimpleNameGenerator`: the prefix is cut so the name, with its five random
        // characters, fits 63. Retry on the (unlikely) collision rather than failing like the
        // real server may.
        let mut cut = gen_name.len().min(MAX_GENERATED_NAME_PREFIX);
        while !gen_name.is_char_boundary(cut) {
            cut -= 1;
        }
        let gen_name = &gen_name[..cut];
        for _ in 0..8 {
            name = format!("{gen_name}{}", store.name_suffix());
            if store.get(&desc.gr(), &key(desc, ns, &name)).is_none() {
                break;
            }
        }
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    if desc.namespaced {
        if url_ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let nsd = store
            .registry
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces resource missing"))?;
        match store.get(&nsd.gr(), &(String::new(), url_ns.to_string())) {
            None => return Err(ApiError::not_found("", "namespaces", url_ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                return Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {url_ns} because it is being terminated",
                    super::errors::qualified(&desc.group, &desc.plural)
                )));
            }
            Some(_) => {}
        }
    }
    let k = key(desc, ns, &name);
    // System fields (rest.BeforeCreate + FillObjectMetaSystemFields).
    let uid = store.new_uid();
    {
        let m = meta_mut(&mut obj);
        for f in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(ctx.now));
        if desc.tracks_generation {
            m.insert("generation".into(), json!(1));
        }
    }
    // Strategy PrepareForCreate.
    match desc.strategy {
        Strategy::Pod => {
            let qos = pod_qos(&obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        Strategy::Namespace => {
            obj["status"] = json!({"phase": "Active"});
            let fins = obj.pointer("/spec/finalizers").cloned();
            if fins.is_none() {
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({});
                }
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            meta_mut(&mut obj)
                .entry("labels")
                .or_insert(json!({}))
                .as_object_mut()
                .map(|l| l.insert("kubernetes.io/metadata.name".into(), json!(name)));
        }
        Strategy::Crd => {
            let mut st = crd_status(&obj);
            set_crd_condition_times(&mut st, &ctx.now);
            obj["status"] = st;
        }
        Strategy::Custom | Strategy::AdmissionPolicy if desc.has_status => {
            if let Value::Object(m) = &mut obj {
                m.remove("status");
            }
        }
        Strategy::Deployment => obj["status"] = json!({}),
        Strategy::Service => obj["status"] = json!({"loadBalancer": {}}),
        _ => {}
    }
    admit(store, desc, &mut obj, None)?;
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Create,
            desc,
            subresource: "",
            name: &name,
            namespace: url_ns,
            user: "",
            dry_run: ctx.dry_run,
            object: Some(&obj),
            old_object: None,
        },
    )?;
    if store.get(&desc.gr(), &k).is_some() {
        return Err(ApiError::already_exists(&desc.group, &desc.plural, &name));
    }
    let av = ctx.written_as.clone().unwrap_or_else(|| desc.api_version());
    let writer = Writer {
        manager: &ctx.manager,
        api_version: &av,
        time: &ctx.now,
        subresource: None,
        scope: if desc.has_status {
            managed::Scope::NoStatus
        } else {
            managed::Scope::All
        },
    };
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    match apply {
        Some(a) => {
            managed::track_apply(&json!({}), &mut obj, a.config, &writer, true, sem(desc))?;
        }
        None => managed::track_update(None, &mut obj, &writer, sem(desc)),
    }
    if ctx.dry_run {
        return Ok(obj);
    }
    if desc.strategy == Strategy::Crd {
        register_crd(store, &obj);
    }
    let stored = store.put(&desc.gr(), k.clone(), obj, EventType::Added);
    Ok((*stored).clone())
}

/// The shared update path for PUT, PATCH and subresource writes: `new` is the full desired
/// object as the client sent (or as the patch produced).
#[allow(clippy::too_many_arguments)] // mirrors the registry Update signature
pub fn update(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    mut new: Value,
    sub: Subresource,
    apply: Option<ApplyInfo<'_>>,
) -> Result<Value, ApiError> {
    let k = key(desc, ns, name);
    let old = store
        .get(&desc.gr(), &k)
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))?;
    check_type(desc, &mut new)?;
    let mut new = decode(ctx, desc, new)?;
    // The update and patch handlers: `EnsureObjectNamespaceMatchesRequestNamespace`, then
    // `checkName`: the body's name must be the URL's, exactly (a JSON patch that removes
    // `/metadata` leaves none, and is refused).
    let body_ns = str_at(&new, "/metadata/namespace").to_string();
    if desc.namespaced && !body_ns.is_empty() && Some(body_ns.as_str()) != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let body_name = str_at(&new, "/metadata/name").to_string();
    if body_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name} based on URL) was undeterminable: name must be provided"
        )));
    }
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    // Optimistic concurrency.
    let old_rv = str_at(&old, "/metadata/resourceVersion").to_string();
    let new_rv = str_at(&new, "/metadata/resourceVersion").to_string();
    if new_rv.is_empty() {
        if !desc.unconditional_update && apply.is_none() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                name,
                &[invalid_value(
                    "metadata.resourceVersion",
                    &json!("0x0"),
                    "must be specified for an update",
                )],
            ));
        }
    } else if new_rv != old_rv {
        return Err(ApiError::stale(&desc.group, &desc.plural, name));
    }
    // ValidateObjectMetaUpdate: a uid in the body must be the stored one. Controllers put the
    // uid in adoption patches so that a pod recreated under the same name is not adopted.
    let new_uid = str_at(&new, "/metadata/uid");
    if !new_uid.is_empty() && new_uid != str_at(&old, "/metadata/uid") {
        return Err(ApiError::invalid(
            &desc.group,
            &desc.kind,
            name,
            &[invalid_value(
                "metadata.uid",
                &json!(new_uid),
                "field is immutable",
            )],
        ));
    }
    // Strategy PrepareForUpdate.
    match (sub, desc.strategy) {
        (Subresource::Main, _) if desc.has_status => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Value::Object(m) = &mut new {
                    m.remove("status");
                }
            }
        },
        (Subresource::Status, Strategy::Pod) => {
            // podStatusStrategy.PrepareForUpdate: spec, deletionTimestamp and ownerReferences
            // come from the stored pod; labels, annotations and finalizers from the request.
            new["spec"] = old.get("spec").cloned().unwrap_or(Value::Null);
            let m = meta_mut(&mut new);
            match old.pointer("/metadata/ownerReferences") {
                Some(o) => m.insert("ownerReferences".into(), o.clone()),
                None => m.remove("ownerReferences"),
            };
            if new
                .pointer("/status/qosClass")
                .is_none_or(|q| q.as_str() == Some(""))
                && let Some(q) = old.pointer("/status/qosClass")
                && new.get("status").is_some_and(Value::is_object)
            {
                new["status"]["qosClass"] = q.clone();
            }
        }
        (Subresource::Status, Strategy::Custom) => {
            // customResourceStatusStrategy: only .status (and managedFields) from the request.
            let status = new.get("status").cloned();
            let mf = new.pointer("/metadata/managedFields").cloned();
            let mut copy = (*old).clone();
            match status {
                Some(s) => copy["status"] = s,
                None => {
                    if let Value::Object(m) = &mut copy {
                        m.remove("status");
                    }
                }
            }
            if let Some(mf) = mf {
                meta_mut(&mut copy).insert("managedFields".into(), mf);
            }
            new = copy;
        }
        (Subresource::Status, _) => {
            // ResetObjectMetaForStatus + spec from the stored object.
            let status = new.get("status").cloned();
            let mut copy = (*old).clone();
            if let Some(s) = status {
                copy["status"] = s;
            }
            new = copy;
        }
        _ => {}
    }
    // System metadata always comes from the stored object.
    {
        let om = meta(&old).clone();
        let m = meta_mut(&mut new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match om.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.remove("selfLink");
        if !m.contains_key("managedFields")
            && let Some(mf) = om.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
    }
    // No new finalizers on an object being deleted (ValidateObjectMetaUpdate).
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(&old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &desc.group,
                &desc.kind,
                name,
                &[forbidden_field(
                    "metadata.finalizers",
                    &format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    if desc.strategy == Strategy::Crd {
        let mut st = crd_status(&new);
        // Keep transition times of conditions that did not change.
        if let Some(oc) = old.pointer("/status/conditions") {
            st["conditions"] = oc.clone();
        } else {
            set_crd_condition_times(&mut st, &ctx.now);
        }
        new["status"] = st;
    }
    admit(store, desc, &mut new, Some(&old))?;
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Update,
            desc,
            subresource: sub.name().unwrap_or(""),
            name,
            namespace: str_at(&old, "/metadata/namespace"),
            user: "",
            dry_run: ctx.dry_run,
            object: Some(&new),
            old_object: Some(&old),
        },
    )?;
    if desc.tracks_generation && generation_changed(desc, &new, &old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    let av = ctx.written_as.clone().unwrap_or_else(|| desc.api_version());
    let writer = Writer {
        manager: &ctx.manager,
        api_version: &av,
        time: &ctx.now,
        subresource: sub.name(),
        scope: match (sub, desc.has_status) {
            (Subresource::Status, _) => managed::Scope::StatusOnly,
            (Subresource::Main, true) => managed::Scope::NoStatus,
            (Subresource::Main, false) => managed::Scope::All,
        },
    };
    match apply {
        Some(a) => {
            let removed =
                managed::track_apply(&old, &mut new, a.config, &writer, a.force, sem(desc))?;
            for p in &removed {
                managed::remove_path(&mut new, p);
            }
        }
        None => managed::track_update(Some(&old), &mut new, &writer, sem(desc)),
    }
    // A write that changes nothing is not persisted (no new resourceVersion, no event).
    if same_content(&new, &old) {
        return Ok((*old).clone());
    }
    if ctx.dry_run {
        return Ok(new);
    }
    if desc.strategy == Strategy::Crd {
        register_crd(store, &new);
    }
    let stored = store.put(&desc.gr(), k.clone(), new, EventType::Modified);
    // store.Update's shouldDeleteDuringUpdate: deleting, no finalizers left, no grace pending.
    let grace_done = stored
        .pointer("/metadata/deletionGracePeriodSeconds")
        .is_none_or(|g| g.as_i64() == Some(0));
    if stored.pointer("/metadata/deletionTimestamp").is_some()
        && finalizers(&stored).is_empty()
        && grace_done
        && !ns_finalizers_pending(desc, &stored)
    {
        return Ok(remove(store, desc, &k).unwrap_or_else(|| (*stored).clone()));
    }
    Ok((*stored).clone())
}

fn ns_finalizers_pending(desc: &ResourceDesc, obj: &Value) -> bool {
    desc.strategy == Strategy::Namespace
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// Final removal; CRD removal also drops its resources and their objects.
fn remove(store: &mut Store, desc: &ResourceDesc, k: &ObjKey) -> Option<Value> {
    let gone = store.remove(&desc.gr(), k)?;
    if desc.strategy == Strategy::Crd {
        let group = str_at(&gone, "/spec/group").to_string();
        let plural = str_at(&gone, "/spec/names/plural").to_string();
        let gr = super::resources::GroupResource {
            group: group.clone(),
            resource: plural.clone(),
        };
        let keys: Vec<ObjKey> = store
            .tables
            .get(&gr)
            .map(|t| t.objects.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            store.remove(&gr, &key);
        }
        store.registry.remove_resource(&group, &plural);
    }
    Some((*gone).clone())
}

pub struct ApplyInfo<'a> {
    pub config: &'a Value,
    pub force: bool,
}

/// Delete options from the body (kube sends a `DeleteOptions`) and/or the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    /// `dryRun: ["All"]` in the body (the query form sets `RequestContext::dry_run`).
    pub dry_run: bool,
    /// The deprecated `orphanDependents` of the body, which also picks the response code.
    pub orphan_dependents: Option<bool>,
}

/// Kinds whose registry sets `ReturnDeletedObject: true` (kubernetes' `pkg/registry/core/
/// {pod,serviceaccount,service,namespace}/storage`): a delete that removes the object answers
/// with it, as it was last stored, instead of a `Status`.
pub fn returns_deleted_object(desc: &ResourceDesc) -> bool {
    desc.group.is_empty()
        && matches!(
            desc.plural.as_str(),
            "pods" | "serviceaccounts" | "services" | "namespaces"
        )
}

/// Namespaces the NamespaceLifecycle admission plugin refuses to delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// DELETE. Returns (object-or-status, still present).
pub fn delete(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let k = key(desc, ns, name);
    let old = store
        .get(&desc.gr(), &k)
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, name))?;
    if desc.strategy == Strategy::Namespace && IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden_object(
            &desc.group,
            &desc.plural,
            name,
            "this namespace may not be deleted",
        ));
    }
    if let Some(u) = &opts.precondition_uid
        && u != str_at(&old, "/metadata/uid")
    {
        return Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                str_at(&old, "/metadata/uid")
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && rv != str_at(&old, "/metadata/resourceVersion")
    {
        return Err(ApiError::conflict(
            &desc.group,
            &desc.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                str_at(&old, "/metadata/resourceVersion")
            ),
        ));
    }
    run_admission(
        store,
        ctx,
        &Attributes {
            operation: Operation::Delete,
            desc,
            subresource: "",
            name,
            namespace: str_at(&old, "/metadata/namespace"),
            user: "",
            dry_run: ctx.dry_run || opts.dry_run,
            object: None,
            old_object: Some(&old),
        },
    )?;
    let policy = opts
        .propagation
        .clone()
        .unwrap_or_else(|| "Background".into());
    if !matches!(policy.as_str(), "Background" | "Foreground" | "Orphan") {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            &[Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
                field: "propagationPolicy".into(),
            }],
        ));
    }
    let mut obj = (*old).clone();
    let mut changed = false;
    // Graceful deletion (pods): rest.BeforeDelete with podStrategy.CheckGracefulDelete.
    let mut graceful_pending = false;
    if desc.strategy == Strategy::Pod {
        let mut grace = opts
            .grace
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0);
        if str_at(&obj, "/spec/nodeName").is_empty() {
            grace = 0;
        }
        if matches!(str_at(&obj, "/status/phase"), "Failed" | "Succeeded") {
            grace = 0;
        }
        if grace < 0 {
            grace = 1;
        }
        let current = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        // rest.BeforeDelete: a first graceful delete, or a shorter grace period than the one
        // pending, moves deletionTimestamp to now+grace (generation bumps on the first).
        let shorten = deleting && current.is_some_and(|c| grace < c);
        if (!deleting && grace > 0) || shorten {
            if !deleting {
                bump_generation(desc, &mut obj);
            }
            let when = jiff::Timestamp::from_second(ctx.now_secs + grace)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|_| ctx.now.clone());
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(when));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            changed = true;
        }
        graceful_pending = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0);
    }
    // Finalizers for the propagation policy (deletionFinalizersForGarbageCollection).
    let mut fins = finalizers(&obj);
    let had_gc_fin = fins
        .iter()
        .any(|f| f == "orphan" || f == "foregroundDeletion");
    match policy.as_str() {
        "Orphan" if !fins.iter().any(|f| f == "orphan") => {
            fins.retain(|f| f != "foregroundDeletion");
            fins.push("orphan".into());
        }
        "Foreground" if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.retain(|f| f != "orphan");
            fins.push("foregroundDeletion".into());
        }
        "Background" if had_gc_fin => fins.retain(|f| f != "orphan" && f != "foregroundDeletion"),
        _ => {}
    }
    if fins != finalizers(&obj) {
        meta_mut(&mut obj).insert("finalizers".into(), json!(fins));
        changed = true;
    }
    let ns_pending = ns_finalizers_pending(desc, &obj);
    if !fins.is_empty() || ns_pending {
        // markAsDeleting.
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            bump_generation(desc, &mut obj);
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(ctx.now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            changed = true;
        }
        if desc.strategy == Strategy::Namespace && str_at(&obj, "/status/phase") != "Terminating" {
            obj["status"] = json!({"phase": "Terminating"});
            changed = true;
        }
    }
    if !fins.is_empty() || graceful_pending || ns_pending {
        if ctx.dry_run || !changed {
            return Ok(obj);
        }
        let stored = store.put(&desc.gr(), k, obj, EventType::Modified);
        return Ok((*stored).clone());
    }
    if ctx.dry_run {
        return Ok(obj);
    }
    if returns_deleted_object(desc) {
        // The storage's last state (its resourceVersion, not the deletion's).
        remove(store, desc, &k);
        return Ok(obj);
    }
    let gone = remove(store, desc, &k).unwrap_or(obj);
    Ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": name,
            "group": desc.group,
            "kind": desc.plural,
            "uid": str_at(&gone, "/metadata/uid"),
        }
    }))
}

fn bump_generation(desc: &ResourceDesc, obj: &mut Value) {
    if let Some(g) = obj.pointer("/metadata/generation").and_then(Value::as_i64)
        && g > 0
        && desc.tracks_generation
    {
        meta_mut(obj).insert("generation".into(), json!(g + 1));
    }
}

/// `autoscaling/v1 Scale` view of an object with a scale subresource.
pub fn scale_of(desc: &ResourceDesc, obj: &Value) -> Result<Value, ApiError> {
    let paths = desc.scale.as_ref().ok_or_else(|| {
        ApiError::not_found(
            &desc.group,
            &format!("{}/scale", desc.plural),
            str_at(obj, "/metadata/name"),
        )
    })?;
    let at = |p: &str| obj.pointer(&json_path_to_pointer(p)).cloned();
    let mut status =
        json!({"replicas": at(&paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0)});
    if let Some(sel) = paths
        .label_selector
        .as_deref()
        .and_then(&at)
        .and_then(|v| v.as_str().map(String::from))
    {
        status["selector"] = json!(sel);
    }
    if desc.strategy == Strategy::Deployment
        && let Some(sel) = obj.pointer("/spec/selector")
    {
        status["selector"] = json!(kinds::format_label_selector(sel));
    }
    let m = meta(obj);
    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": at(&paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": status,
    }))
}

/// Write a Scale back: only `spec.replicas` moves into the object, at `specReplicasPath`.
pub fn apply_scale(desc: &ResourceDesc, obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let name = str_at(obj, "/metadata/name").to_string();
    let paths = desc
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&desc.group, &desc.plural, &name))?;
    let replicas = match scale.pointer("/spec/replicas") {
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                &[invalid_value("spec.replicas", v, "must be an integer")],
            )
        })?,
        None => 0,
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            &name,
            &[invalid_value(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = obj.clone();
    let rv = str_at(scale, "/metadata/resourceVersion");
    meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
    set_json_path(&mut new, &paths.spec_replicas, json!(replicas));
    Ok(new)
}

/// `.spec.replicas` → `/spec/replicas`.
fn json_path_to_pointer(p: &str) -> String {
    p.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, s| format!("{acc}/{s}"))
}

fn set_json_path(obj: &mut Value, p: &str, v: Value) {
    let parts: Vec<&str> = p.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(m) = cur else { return };
        if i == parts.len() - 1 {
            m.insert((*part).to_string(), v);
            return;
        }
        cur = m.entry((*part).to_string()).or_insert(json!({}));
    }
}

/// The patch media types an endpoint takes (custom resources have no strategic merge).
fn patch_types(desc: &ResourceDesc) -> &'static [&'static str] {
    const ALL: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    ];
    if desc.strategy == Strategy::Custom {
        &ALL[..3]
    } else {
        ALL
    }
}

/// PATCH body → desired object.
pub fn patched(
    desc: &ResourceDesc,
    old: &Value,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut target = old.clone();
    match content_type {
        "application/merge-patch+json" => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            patch::merge_patch(&mut target, &p);
        }
        "application/json-patch+json" => patch::json_patch(&mut target, body)?,
        "application/strategic-merge-patch+json" => {
            if desc.strategy == Strategy::Custom {
                return Err(ApiError::unknown_body_format(patch_types(desc)));
            }
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            patch::strategic_merge(&mut target, &p, &mut vec![])?;
        }
        _ => return Err(ApiError::unknown_body_format(patch_types(desc))),
    }
    if !target.is_object() {
        return Err(ApiError::bad_request("the patch produced a non-object"));
    }
    Ok(target)
}

/// Server-side apply of `config` (already parsed from YAML/JSON).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    store: &mut Store,
    ctx: &RequestContext,
    desc: &ResourceDesc,
    ns: Option<&str>,
    name: &str,
    config: Value,
    force: bool,
    sub: Subresource,
) -> Result<(Value, bool), ApiError> {
    let mut config = config;
    check_type(desc, &mut config)?;
    let cname = str_at(&config, "/metadata/name").to_string();
    if cname != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({cname}) does not match the name on the URL ({name})"
        )));
    }
    let k = key(desc, ns, name);
    match store.get(&desc.gr(), &k) {
        None => {
            if sub != Subresource::Main {
                return Err(ApiError::not_found(&desc.group, &desc.plural, name));
            }
            // Create through apply: the applier owns everything it sent.
            let created = create(
                store,
                ctx,
                desc,
                ns,
                config.clone(),
                Some(ApplyInfo {
                    config: &config,
                    force,
                }),
            )?;
            Ok((created, true))
        }
        Some(old) => {
            let mut merged = (*old).clone();
            let mut cfg = config.clone();
            if let Some(m) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            patch::apply_merge(&mut merged, &cfg, &mut vec![], sem(desc));
            // A resourceVersion in the configuration is a precondition; otherwise none.
            if str_at(&config, "/metadata/resourceVersion").is_empty() {
                meta_mut(&mut merged).insert(
                    "resourceVersion".into(),
                    json!(str_at(&old, "/metadata/resourceVersion")),
                );
            }
            let out = update(
                store,
                ctx,
                desc,
                ns,
                name,
                merged,
                sub,
                Some(ApplyInfo {
                    config: &config,
                    force,
                }),
            )?;
            Ok((out, false))
        }
    }
}
