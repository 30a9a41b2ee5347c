//! ValidatingAdmissionPolicies (`admissionregistration.k8s.io/v1`), enforced on every write a
//! client makes, as kube-apiserver's `ValidatingAdmissionPolicy` admission plugin does: a
//! policy applies through each binding that names it, when the request matches the policy's
//! `matchConstraints`, the binding's `matchResources` and every `matchConditions` expression;
//! a failing `validations[]` expression then denies (`Deny`), warns (`Warn`) or is only audited
//! (`Audit`, a no-op here). Expressions are CEL, evaluated with the `cel` crate plus kube-cel's
//! Kubernetes function library (the same functions CRD rules get in `schema.rs`).
//!
//! Not implemented (see the README): `paramKind`/`paramRef` (`params` is always null),
//! `authorizer`, `auditAnnotations` (compiled, never evaluated), type checking at write time
//! (only syntax is checked, so a type error surfaces at request time under `failurePolicy`),
//! and `matchPolicy: Equivalent` across versions (rules match the requested version only).

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::{self, Context, Program};
use serde_json::{Value, json};

use super::cel_limits::{self, Sizes};
use super::errors::{ApiError, Cause, invalid_value, required};
use super::kinds::format_label_selector;
use super::resources::{GroupResource, ResourceDesc};
use super::selectors::LabelSelector;
use super::store::Store;

const GROUP: &str = "admissionregistration.k8s.io";

/// The admission operation of a request (`request.operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// What admission sees of one write (`admission.Attributes`).
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub operation: Operation,
    pub desc: &'a ResourceDesc,
    /// `""` for the resource itself, else `status` or `scale`.
    pub subresource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    /// The client identity the server knows the request by (`request.userInfo.username`).
    pub user: &'a str,
    pub dry_run: bool,
    /// The object after the write; `None` on DELETE (`object` is null).
    pub object: Option<&'a Value>,
    /// The stored object; `None` on CREATE (`oldObject` is null).
    pub old_object: Option<&'a Value>,
}

/// Why a CEL expression could not produce a usable result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("expression '{expression}' resulted in error: {message}")]
    Runtime { expression: String, message: String },
    #[error("expression '{expression}' resulted in a {got}, expected a bool")]
    NotBool { expression: String, got: String },
    /// The binding's `RuntimeCELCostBudget` is spent.
    #[error("{}", cel_limits::OUT_OF_BUDGET)]
    OutOfBudget,
}

/// Parse an expression, after the size and nesting checks that keep the parser's recursion
/// off the end of the stack (`cel_limits`).
fn compile(expression: &str) -> Result<Program, CelError> {
    cel_limits::compile(expression).map_err(CelError::Compile)
}

/// The CEL variables of one binding's evaluation, the bound of their data, and the cost spent
/// so far against `RuntimeCELCostBudget`.
struct Activation<'a> {
    ctx: Context<'static>,
    sizes: Sizes,
    spent: std::cell::Cell<u64>,
    /// The data of `object` and `oldObject`, so that a field is estimated as large as it is.
    known: Vec<(&'static str, cel_limits::Data<'a>)>,
}

/// Run an expression to a value. The evaluator counts no cost, so the cost is estimated
/// against the real data first: over `PerCallLimit` the expression fails as cel-go cancels
/// it, and once the binding's budget is spent nothing more runs.
fn eval(act: &Activation<'_>, expression: &str) -> Result<cel::Value, CelError> {
    let program = compile(expression)?;
    let cost = cel_limits::estimate_with(program.expression(), act.sizes, &act.known);
    if cost > cel_limits::PER_CALL_LIMIT {
        return Err(CelError::Runtime {
            expression: expression.trim().to_string(),
            message: cel_limits::COST_LIMIT_EXCEEDED.into(),
        });
    }
    let spent = act.spent.get().saturating_add(cost);
    if spent > cel_limits::RUNTIME_COST_BUDGET {
        return Err(CelError::OutOfBudget);
    }
    act.spent.set(spent);
    program.execute(&act.ctx).map_err(|e| CelError::Runtime {
        expression: expression.trim().to_string(),
        message: e.to_string(),
    })
}

/// Run an expression that must be a bool (validations and matchConditions).
fn eval_bool(ctx: &Activation<'_>, expression: &str) -> Result<bool, CelError> {
    match eval(ctx, expression)? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(CelError::NotBool {
            expression: expression.trim().to_string(),
            got: cel_type_name(&other).into(),
        }),
    }
}

fn cel_type_name(v: &cel::Value) -> &'static str {
    match v {
        cel::Value::Null => "null",
        cel::Value::Bool(_) => "bool",
        cel::Value::Int(_) => "int",
        cel::Value::UInt(_) => "uint",
        cel::Value::Float(_) => "double",
        cel::Value::String(_) => "string",
        cel::Value::List(_) => "list",
        cel::Value::Map(_) => "map",
        _ => "value",
    }
}

/// JSON as CEL sees it: integers stay `int` (as Kubernetes' unstructured conversion does) so
/// `object.spec.replicas > 2` compares like kinds.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

/// Every CEL expression of a policy, with the field it sits at.
fn expressions(policy: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lists = [
        ("validations", &["expression", "messageExpression"][..]),
        ("matchConditions", &["expression"][..]),
        ("variables", &["expression"][..]),
        ("auditAnnotations", &["valueExpression"][..]),
    ];
    for (list, fields) in lists {
        let items = policy
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            for f in fields {
                if let Some(e) = item.get(*f).and_then(Value::as_str) {
                    out.push((format!("spec.{list}[{i}].{f}"), e.to_string()));
                }
            }
        }
    }
    out
}

/// `ValidateValidatingAdmissionPolicy`, reduced to what a client can get wrong: required
/// members, supported enum values, and expressions that do not compile (kube-apiserver
/// compiles them when the policy is written and refuses it with 422).
pub fn check_policy(policy: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if policy.pointer("/spec/matchConstraints").is_none() {
        causes.push(required("spec.matchConstraints", ""));
    }
    let has = |list: &str| {
        policy
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !has("validations") && !has("auditAnnotations") {
        causes.push(required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    if let Some(fp) = policy
        .pointer("/spec/failurePolicy")
        .and_then(Value::as_str)
        && !matches!(fp, "Fail" | "Ignore")
    {
        causes.push(unsupported("spec.failurePolicy", fp, &["Fail", "Ignore"]));
    }
    let validations = policy
        .pointer("/spec/validations")
        .and_then(Value::as_array);
    for (i, v) in validations.into_iter().flatten().enumerate() {
        if let Some(r) = v.get("reason").and_then(Value::as_str)
            && status_of_reason(r).is_none()
        {
            causes.push(unsupported(
                &format!("spec.validations[{i}].reason"),
                r,
                &[
                    "Forbidden",
                    "Invalid",
                    "RequestEntityTooLarge",
                    "Unauthorized",
                ],
            ));
        }
    }
    for (field, expression) in expressions(policy) {
        if let Err(e) = compile(&expression) {
            causes.push(invalid_value(&field, &json!(expression), &e.to_string()));
        }
    }
    causes
}

fn unsupported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
        field: field.into(),
    }
}

/// HTTP code and `Status.reason` of a validation's `reason` (the four the API allows).
fn status_of_reason(reason: &str) -> Option<(u16, &'static str)> {
    Some(match reason {
        "Unauthorized" => (401, "Unauthorized"),
        "Forbidden" => (403, "Forbidden"),
        "Invalid" => (422, "Invalid"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => return None,
    })
}

fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Whether a list of a rule (`apiGroups`, `operations`, …) allows `value`: listed or `*`.
fn allows(list: &[&str], value: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == value)
}

/// `resources` of a rule against `plural` and `subresource`, as `admission/rules` matches
/// them: `pods` (the resource only), `pods/status`, `pods/*`, `*` (every resource, no
/// subresources), `*/status`, `*/*`.
fn resource_allowed(resources: &[&str], plural: &str, subresource: &str) -> bool {
    resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        let res_ok = res == "*" || res == plural;
        let sub_ok = sub == subresource || (sub == "*" && !res.is_empty());
        res_ok && sub_ok
    })
}

/// One `NamedRuleWithOperations` against the request.
fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
    let scope_ok = match scope {
        "Cluster" => !a.desc.namespaced,
        "Namespaced" => a.desc.namespaced,
        _ => true,
    };
    let names = strs(rule, "resourceNames");
    scope_ok
        && allows(&strs(rule, "apiGroups"), &a.desc.group)
        && allows(&strs(rule, "apiVersions"), &a.desc.version)
        && allows(&strs(rule, "operations"), a.operation.as_str())
        && resource_allowed(&strs(rule, "resources"), &a.desc.plural, a.subresource)
        && (names.is_empty() || names.contains(&a.name))
}

/// A `metav1.LabelSelector` object against labels; absent means everything.
fn selector_matches(selector: Option<&Value>, obj: &Value) -> bool {
    let Some(sel) = selector.filter(|s| s.is_object()) else {
        return true;
    };
    LabelSelector::parse(&format_label_selector(sel)).is_ok_and(|s| s.matches_obj(obj))
}

/// `MatchResources` (of a policy's `matchConstraints` or a binding's `matchResources`):
/// selectors, then a matching `resourceRules` entry and no matching `excludeResourceRules`.
/// A cluster-scoped object passes `namespaceSelector`, except a Namespace, which is matched
/// on its own labels. A binding's `matchResources` without `resourceRules` does not narrow
/// the policy's resources (`require_rules` false); a policy's `matchConstraints` must list them.
fn resources_match(
    m: &Value,
    a: &Attributes<'_>,
    namespace: Option<&Value>,
    require_rules: bool,
) -> bool {
    let obj = a.object.or(a.old_object).unwrap_or(&Value::Null);
    let ns_ok = if a.desc.group.is_empty() && a.desc.plural == "namespaces" {
        selector_matches(m.get("namespaceSelector"), obj)
    } else if a.desc.namespaced {
        selector_matches(
            m.get("namespaceSelector"),
            namespace.unwrap_or(&Value::Null),
        )
    } else {
        true
    };
    let object_ok = [a.object, a.old_object]
        .into_iter()
        .flatten()
        .any(|o| selector_matches(m.get("objectSelector"), o));
    let rules = |key: &str| -> Vec<&Value> {
        m.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect()
    };
    let included = rules("resourceRules");
    ns_ok
        && object_ok
        && ((included.is_empty() && !require_rules) || included.iter().any(|r| rule_matches(r, a)))
        && !rules("excludeResourceRules")
            .iter()
            .any(|r| rule_matches(r, a))
}

/// The `request` variable.
fn request_value(a: &Attributes<'_>) -> Value {
    json!({
        "uid": "",
        "kind": {"group": a.desc.group, "version": a.desc.version, "kind": a.desc.kind},
        "resource": {"group": a.desc.group, "version": a.desc.version, "resource": a.desc.plural},
        "subResource": a.subresource,
        "requestKind": {"group": a.desc.group, "version": a.desc.version, "kind": a.desc.kind},
        "requestResource": {"group": a.desc.group, "version": a.desc.version, "resource": a.desc.plural},
        "requestSubResource": a.subresource,
        "name": a.name,
        "namespace": a.namespace,
        "operation": a.operation.as_str(),
        "userInfo": {"username": a.user, "groups": ["system:authenticated"]},
        "dryRun": a.dry_run,
    })
}

/// The CEL variables every expression of a request sees (`variables` is added per policy).
fn base_context<'a>(a: &Attributes<'a>, namespace: Option<&Value>) -> Activation<'a> {
    let mut ctx = Context::default();
    ctx.register_all();
    let null = Value::Null;
    let (object, old) = (a.object.unwrap_or(&null), a.old_object.unwrap_or(&null));
    let (request, namespace) = (request_value(a), namespace.unwrap_or(&null));
    ctx.add_variable_from_value("object", to_cel(object));
    ctx.add_variable_from_value("oldObject", to_cel(old));
    ctx.add_variable_from_value("request", to_cel(&request));
    ctx.add_variable_from_value("params", cel::Value::Null);
    ctx.add_variable_from_value("namespaceObject", to_cel(namespace));
    let sizes = Sizes::of_json(object)
        .and(Sizes::of_json(old))
        .and(Sizes::of_json(&request))
        .and(Sizes::of_json(namespace));
    let mut known = Vec::new();
    if let Some(o) = a.object {
        known.push(("object", cel_limits::Data::Json(o)));
    }
    if let Some(o) = a.old_object {
        known.push(("oldObject", cel_limits::Data::Json(o)));
    }
    Activation {
        ctx,
        sizes,
        spent: std::cell::Cell::new(0),
        known,
    }
}

/// `spec.variables`, in order, each seeing the ones before it. A variable whose expression
/// fails is left out, so only an expression that uses it fails (Kubernetes evaluates them
/// lazily, with the same effect).
fn bind_variables(act: &mut Activation<'_>, policy: &Value) {
    let mut vars: HashMap<String, cel::Value> = HashMap::new();
    act.ctx
        .add_variable_from_value("variables", cel::Value::from(vars.clone()));
    let list = policy.pointer("/spec/variables").and_then(Value::as_array);
    for v in list.into_iter().flatten() {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let expr = v.get("expression").and_then(Value::as_str).unwrap_or("");
        if let Ok(val) = eval(act, expr) {
            act.sizes = act.sizes.and(Sizes::of_cel(&val));
            vars.insert(name.to_string(), val);
            act.ctx
                .add_variable_from_value("variables", cel::Value::from(vars.clone()));
        }
    }
}

/// One failed validation of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    message: String,
    /// `Status.reason` and code; `None` uses admission's Forbidden (403).
    status: Option<(u16, &'static str)>,
}

/// Violations of one policy: none when a matchCondition is false, else every failed
/// validation. An expression error is a violation under `failurePolicy: Fail` (the default)
/// and skipped under `Ignore`. A false validation without `reason` is `Invalid` (422), as
/// the API documents; an error has no reason and stays admission's `Forbidden` (403).
fn evaluate_policy(ctx: &Activation<'_>, policy: &Value) -> Vec<Violation> {
    let ignore = policy
        .pointer("/spec/failurePolicy")
        .and_then(Value::as_str)
        == Some("Ignore");
    let on_error = |e: CelError| -> Option<Violation> {
        (!ignore).then(|| Violation {
            message: e.to_string(),
            status: None,
        })
    };
    let conditions = policy
        .pointer("/spec/matchConditions")
        .and_then(Value::as_array);
    for c in conditions.into_iter().flatten() {
        let expr = c.get("expression").and_then(Value::as_str).unwrap_or("");
        match eval_bool(ctx, expr) {
            Ok(true) => {}
            Ok(false) => return vec![],
            Err(e) => return on_error(e).into_iter().collect(),
        }
    }
    let validations = policy
        .pointer("/spec/validations")
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for v in validations.into_iter().flatten() {
        let expr = v.get("expression").and_then(Value::as_str).unwrap_or("");
        match eval_bool(ctx, expr) {
            Ok(true) => {}
            Ok(false) => out.push(Violation {
                message: failure_message(ctx, v, expr),
                status: Some(
                    v.get("reason")
                        .and_then(Value::as_str)
                        .and_then(status_of_reason)
                        .unwrap_or((422, "Invalid")),
                ),
            }),
            Err(e) => out.extend(on_error(e)),
        }
    }
    out
}

/// `messageExpression` when it yields a non-empty string, else `message`, else
/// `failed expression: EXPR`.
fn failure_message(ctx: &Activation<'_>, validation: &Value, expr: &str) -> String {
    let from_expression = validation
        .get("messageExpression")
        .and_then(Value::as_str)
        .and_then(|me| match eval(ctx, me) {
            Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        });
    from_expression
        .or_else(|| {
            validation
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| format!("failed expression: {}", expr.trim()))
}

fn objects<'s>(store: &'s Store, resource: &str) -> Vec<&'s Arc<Value>> {
    let gr = GroupResource {
        group: GROUP.into(),
        resource: resource.into(),
    };
    store
        .tables
        .get(&gr)
        .map(|t| t.objects.values().collect())
        .unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Run every bound policy that matches the request. `Ok` carries the `Warning` header texts
/// of `Warn` bindings; the first `Deny` violation is the error kube-apiserver returns.
pub fn validate(store: &Store, a: &Attributes<'_>) -> Result<Vec<String>, ApiError> {
    let bindings = objects(store, "validatingadmissionpolicybindings");
    if bindings.is_empty() {
        return Ok(vec![]);
    }
    let policies: HashMap<&str, &Arc<Value>> = objects(store, "validatingadmissionpolicies")
        .into_iter()
        .map(|p| (name_of(p), p))
        .collect();
    let namespace = (a.desc.namespaced && !a.namespace.is_empty())
        .then(|| {
            let gr = GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            };
            store.get(&gr, &(String::new(), a.namespace.to_string()))
        })
        .flatten();
    let namespace = namespace.as_deref();
    let mut warnings = Vec::new();
    for binding in bindings {
        let policy_name = binding
            .pointer("/spec/policyName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(policy) = policies.get(policy_name) else {
            continue;
        };
        let constraints = policy
            .pointer("/spec/matchConstraints")
            .unwrap_or(&Value::Null);
        if !resources_match(constraints, a, namespace, true)
            || binding
                .pointer("/spec/matchResources")
                .is_some_and(|m| !resources_match(m, a, namespace, false))
        {
            continue;
        }
        let mut ctx = base_context(a, namespace);
        bind_variables(&mut ctx, policy);
        let violations = evaluate_policy(&ctx, policy);
        let Some(first) = violations.first() else {
            continue;
        };
        let actions = strs(
            binding.pointer("/spec").unwrap_or(&Value::Null),
            "validationActions",
        );
        let binding_name = name_of(binding);
        if actions.contains(&"Warn") {
            warnings.extend(violations.iter().map(|v| {
                format!(
                    "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                    v.message
                )
            }));
        }
        if actions.contains(&"Deny") {
            return Err(deny(a, policy_name, binding_name, first));
        }
    }
    Ok(warnings)
}

/// `admission.NewForbidden` with the policy's message, then the validation's reason and code.
fn deny(a: &Attributes<'_>, policy: &str, binding: &str, v: &Violation) -> ApiError {
    let why = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}",
        v.message
    );
    let mut e = ApiError::forbidden_object(&a.desc.group, &a.desc.plural, a.name, &why);
    if let Some((code, reason)) = v.status {
        e.code = code;
        e.reason = reason;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_match_subresources_as_admission_rules_do() {
        assert!(resource_allowed(&["pods"], "pods", ""));
        assert!(!resource_allowed(&["pods"], "pods", "status"));
        assert!(resource_allowed(&["pods/status"], "pods", "status"));
        assert!(resource_allowed(&["pods/resize"], "pods", "resize"));
        assert!(!resource_allowed(&["pods/status"], "pods", "resize"));
        assert!(resource_allowed(&["pods/*"], "pods", "status"));
        assert!(resource_allowed(&["pods/*"], "pods", ""));
        assert!(resource_allowed(&["*"], "widgets", ""));
        assert!(!resource_allowed(&["*"], "widgets", "status"));
        assert!(resource_allowed(&["*/*"], "widgets", "scale"));
        assert!(resource_allowed(&["*/status"], "widgets", "status"));
    }

    #[test]
    fn a_policy_with_a_syntax_error_names_the_field() {
        let p = json!({"spec": {"matchConstraints": {}, "validations": [
            {"expression": "object.spec.replicas >"}]}});
        let causes = check_policy(&p);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.validations[0].expression");
        assert!(
            causes[0].message.contains("compilation failed"),
            "{}",
            causes[0].message
        );
    }

    #[test]
    fn integers_compare_as_ints() {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("object", to_cel(&json!({"n": 3})));
        let ctx = Activation {
            ctx,
            sizes: Sizes::of_json(&json!({"n": 3})),
            spent: Default::default(),
            known: vec![],
        };
        assert_eq!(eval_bool(&ctx, "object.n > 2"), Ok(true));
        assert!(matches!(
            eval_bool(&ctx, "object.n"),
            Err(CelError::NotBool { .. })
        ));
    }

    #[test]
    fn an_expression_over_the_per_call_limit_is_not_run() {
        let list = format!("[{}]", vec!["0"; 400].join(","));
        let cubed = format!("{list}.all(x, {list}.all(y, {list}.all(z, x + y + z >= 0)))");
        let ctx = Activation {
            ctx: Context::default(),
            sizes: Sizes::EMPTY,
            spent: Default::default(),
            known: vec![],
        };
        assert_eq!(
            eval_bool(&ctx, &cubed),
            Err(CelError::Runtime {
                expression: cubed.clone(),
                message: "operation cancelled: actual cost limit exceeded".into()
            })
        );
        // Expressions under the limit spend the binding's budget of 10,000,000.
        let list = format!("[{}]", vec!["0"; 300].join(","));
        let big = format!("{list}.all(x, {list}.all(y, x + y >= 0))");
        let cost = cel_limits::estimate(compile(&big).unwrap().expression(), Sizes::EMPTY);
        assert!((100_000..1_000_000).contains(&cost), "{cost}");
        let fit = cel_limits::RUNTIME_COST_BUDGET / cost;
        let results: Vec<_> = (0..=fit).map(|_| eval_bool(&ctx, &big)).collect();
        assert_eq!(results[0], Ok(true));
        assert_eq!(results[fit as usize - 1], Ok(true));
        assert_eq!(results[fit as usize], Err(CelError::OutOfBudget));
    }
}
