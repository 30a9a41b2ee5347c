//! Structural-schema handling for custom resources, in the order kube-apiserver applies it:
//! prune unknown fields, apply `default`s, validate (OpenAPI v3 subset), then evaluate
//! `x-kubernetes-validations` CEL rules (through `kube-cel`, the kube-rs CEL engine).
//! Messages follow kube-openapi's `in body should ...` wording and `field.Error` shapes.

use serde_json::{Map, Value, json};

use super::cel_limits::{self, Data, Sizes};
use super::errors::{Cause, forbidden_field, invalid_value, render_value, required};

#[derive(Debug, Clone)]
pub struct CrSchema {
    root: Value,
    /// The CEL rules compiled once, when the CRD is stored: compiling them on every write
    /// (parsing each rule) was most of the cost of a status write to a HookRun.
    compiled: std::sync::Arc<kube_cel::CompiledSchema>,
    /// Every rule with where it sits, parsed again for the cost estimate taken before each
    /// evaluation (`kube_cel` keeps its programs to itself).
    rules: std::sync::Arc<Vec<RuleAt>>,
}

/// One step from a schema node to a child: a property, the items of an array, the values of
/// a map.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Property(String),
    Items,
    Values,
}

/// A CEL rule and the schema node it validates.
#[derive(Debug)]
struct RuleAt {
    path: Vec<Step>,
    rule: String,
    program: kube_cel::cel::Program,
}

impl CrSchema {
    pub fn new(root: Value) -> Result<Self, String> {
        if !root.is_object() {
            return Err("schema must be an object".into());
        }
        // No rule reaches the parser before its size and nesting are checked: a 100 KB rule
        // overflowed the parser's stack and aborted the process.
        let mut bad = Vec::new();
        each_rule_text(&root, 0, &mut |text| {
            if let Err(e) = cel_limits::check_source(text) {
                bad.push(format!("compilation failed: {e}"));
            }
        });
        if let Some(e) = bad.into_iter().next() {
            return Err(e);
        }
        let mut rules = Vec::new();
        for (path, node) in rule_nodes(&root) {
            for r in node_rules(node) {
                if let Ok(program) = cel_limits::compile(r) {
                    rules.push(RuleAt {
                        path: path.clone(),
                        rule: r.to_string(),
                        program,
                    });
                }
            }
        }
        let compiled = std::sync::Arc::new(kube_cel::compile_schema(&root));
        Ok(Self {
            root,
            compiled,
            rules: std::sync::Arc::new(rules),
        })
    }

    /// kube-apiserver's runtime cost limits, checked by estimate against the object before any
    /// rule runs (the evaluator counts nothing): a rule whose one evaluation passes
    /// `PerCallLimit`, or all rules together passing `RuntimeCELCostBudget`, fail the write
    /// with kube's errors and no rule runs.
    fn runtime_cost_causes(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut spent: u64 = 0;
        for r in self.rules.iter() {
            let mut at = Vec::new();
            values_at(obj, &r.path, String::new(), &mut at);
            let old_sizes = old
                .filter(|_| r.rule.contains("oldSelf"))
                .map_or(Sizes::EMPTY, Sizes::of_json);
            for (field, v) in at {
                let cost = cel_limits::estimate_with(
                    r.program.expression(),
                    Sizes::of_json(v).and(old_sizes),
                    &[("self", Data::Json(v))],
                );
                let shown = json!(type_name(v));
                if cost > cel_limits::PER_CALL_LIMIT {
                    let msg = format!(
                        "'{}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        cel_limits::COST_LIMIT_EXCEEDED,
                        r.rule.trim()
                    );
                    return vec![invalid_value(&field, &shown, &msg)];
                }
                spent = spent.saturating_add(cost);
                if spent > cel_limits::RUNTIME_COST_BUDGET {
                    return vec![invalid_value(&field, &shown, cel_limits::OUT_OF_BUDGET)];
                }
            }
        }
        Vec::new()
    }

    /// The `openAPIV3Schema` as declared (published in the OpenAPI documents).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Drop fields the schema does not know (unless preserved), keeping `apiVersion`, `kind`
    /// and `metadata` at the root as the real pruning does.
    pub fn prune(&self, obj: &mut Value) {
        if let Value::Object(m) = obj {
            let keep = ["apiVersion", "kind", "metadata"];
            let props = self.root.get("properties").and_then(Value::as_object);
            let preserve = preserves(&self.root);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if keep.contains(&k.as_str()) {
                    continue;
                }
                match props.and_then(|p| p.get(&k)) {
                    Some(sub) => {
                        if let Some(v) = m.get_mut(&k) {
                            prune_node(sub, v);
                        }
                    }
                    None if !preserve => {
                        m.remove(&k);
                    }
                    None => {}
                }
            }
        }
    }

    /// Apply `default`s: a missing (or non-nullable null) property with a default gets it, then
    /// defaulting recurses, so defaults inside a defaulted object apply too.
    pub fn default(&self, obj: &mut Value) {
        default_node(&self.root, obj, true);
    }

    /// OpenAPI validation plus CEL rules. `old` enables transition rules (`oldSelf`).
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut causes = Vec::new();
        if let (Some(props), Value::Object(m)) =
            (self.root.get("properties").and_then(Value::as_object), obj)
        {
            for (k, sub) in props {
                if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(v) = m.get(k) {
                    validate_node(sub, v, k, &mut causes);
                }
            }
            for r in self
                .root
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !m.contains_key(r) {
                    causes.push(required(r, ""));
                }
            }
        }
        if causes.is_empty() {
            causes = self.runtime_cost_causes(obj, old);
        }
        if causes.is_empty() {
            // CEL only over structurally valid data: rules assume the declared types.
            if let Err(errs) = kube_cel::validate_compiled(&self.compiled, obj, old) {
                for e in errs.iter() {
                    let at = lookup_dotted(obj, &e.field_path);
                    let shown = match at {
                        Some(v) => type_name(v).to_string(),
                        None => "object".into(),
                    };
                    causes.push(Cause {
                        reason: e
                            .reason
                            .clone()
                            .unwrap_or_else(|| "FieldValueInvalid".into()),
                        message: format!("Invalid value: {shown:?}: {}", e.message),
                        field: e.field_path.clone(),
                    });
                }
            }
        }
        causes
    }

    /// The schema node at a path of object field names (array items are stepped through with
    /// `[]`). Used for list semantics in server-side apply.
    pub fn node_at(&self, path: &[String]) -> Option<&Value> {
        let mut cur = &self.root;
        for seg in path {
            cur = if seg == "[]" {
                cur.get("items")?
            } else {
                cur.get("properties")
                    .and_then(|p| p.get(seg))
                    .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()))?
            };
        }
        Some(cur)
    }
}

/// The rule texts (`rule` and `messageExpression`) of one node's `x-kubernetes-validations`.
fn node_rules(node: &Value) -> impl Iterator<Item = &str> {
    node.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("rule").and_then(Value::as_str))
}

/// Every CEL text anywhere in a schema (in `allOf` and the like too: `kube_cel` compiles them
/// all), whatever the nesting of the schema (bounded by the request's JSON nesting).
fn each_rule_text(v: &Value, depth: usize, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(m) => {
            if let Some(rules) = m.get("x-kubernetes-validations").and_then(Value::as_array) {
                for r in rules {
                    for key in ["rule", "messageExpression"] {
                        if let Some(t) = r.get(key).and_then(Value::as_str) {
                            f(t);
                        }
                    }
                }
            }
            for (k, child) in m {
                if k != "x-kubernetes-validations" && depth < 200 {
                    each_rule_text(child, depth + 1, f);
                }
            }
        }
        Value::Array(a) if depth < 200 => a.iter().for_each(|c| each_rule_text(c, depth + 1, f)),
        _ => {}
    }
}

/// The schema nodes that carry rules, with the steps from the root to them.
fn rule_nodes(root: &Value) -> Vec<(Vec<Step>, &Value)> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::new(), root)];
    while let Some((path, node)) = stack.pop() {
        if node.get("x-kubernetes-validations").is_some() {
            out.push((path.clone(), node));
        }
        if path.len() > 64 {
            continue;
        }
        let step = |s: Step| {
            let mut p = path.clone();
            p.push(s);
            p
        };
        for (k, sub) in node
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            stack.push((step(Step::Property(k.clone())), sub));
        }
        if let Some(items) = node.get("items") {
            stack.push((step(Step::Items), items));
        }
        if let Some(values) = node.get("additionalProperties").filter(|a| a.is_object()) {
            stack.push((step(Step::Values), values));
        }
    }
    out
}

/// kube's schema path of a node, as its CRD validation errors name it.
fn schema_path(base: &str, path: &[Step]) -> String {
    let mut out = base.to_string();
    for s in path {
        match s {
            Step::Property(k) => out.push_str(&format!(".properties[{k}]")),
            Step::Items => out.push_str(".items"),
            Step::Values => out.push_str(".additionalProperties"),
        }
    }
    out
}

/// The values of `obj` at a schema path, with their field paths.
fn values_at<'v>(obj: &'v Value, path: &[Step], field: String, out: &mut Vec<(String, &'v Value)>) {
    let Some((first, rest)) = path.split_first() else {
        out.push((field, obj));
        return;
    };
    let join = |f: &str, k: &str| {
        if f.is_empty() {
            k.to_string()
        } else {
            format!("{f}.{k}")
        }
    };
    match (first, obj) {
        (Step::Property(k), Value::Object(m)) => {
            if let Some(v) = m.get(k) {
                values_at(v, rest, join(&field, k), out);
            }
        }
        (Step::Items, Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                values_at(v, rest, format!("{field}[{i}]"), out);
            }
        }
        (Step::Values, Value::Object(m)) => {
            for (k, v) in m {
                values_at(v, rest, format!("{field}[{k}]"), out);
            }
        }
        _ => {}
    }
}

/// kube-apiserver's CEL checks of a CRD's schemas when the CRD is written: each rule must
/// compile (within cel-go's size and recursion limits), and its estimated cost, from the
/// schema's `maxItems`/`maxLength`/`maxProperties` and times the number of values it runs on,
/// must stay within `StaticEstimatedCostLimit`, and all of them within
/// `StaticEstimatedCRDCostLimit`. Schemas that are the same in every version are reported
/// once under `spec.validation`, as kube-apiserver (which converts them so) does.
pub fn check_crd_rules(crd: &Value) -> Vec<Cause> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    let same = schemas.windows(2).all(|w| w[0] == w[1]);
    let mut causes = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        let Some(schema) = schema else { continue };
        if same && i > 0 {
            break;
        }
        let base = if same {
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        check_schema_rules(schema, &base, &mut causes);
    }
    causes
}

fn check_schema_rules(schema: &Value, base: &str, causes: &mut Vec<Cause>) {
    let mut total: u64 = 0;
    for (path, node) in rule_nodes(schema) {
        // How often the rule runs in one object: the product of the enclosing lists' and
        // maps' bounds.
        let mut cardinality: u64 = 1;
        let mut cur = schema;
        for step in &path {
            cur = match step {
                Step::Property(k) => &cur["properties"][k],
                Step::Items => {
                    cardinality = cardinality.saturating_mul(cel_limits::schema_max_len(cur));
                    &cur["items"]
                }
                Step::Values => {
                    cardinality = cardinality.saturating_mul(cel_limits::schema_max_len(cur));
                    &cur["additionalProperties"]
                }
            };
        }
        let rules = node["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten();
        for (i, rule) in rules.enumerate() {
            let field = format!(
                "{}.x-kubernetes-validations[{i}].rule",
                schema_path(base, &path)
            );
            let Some(text) = rule.get("rule").and_then(Value::as_str) else {
                continue;
            };
            match cel_limits::compile(text) {
                Err(e) => causes.push(invalid_value(
                    &field,
                    rule,
                    &format!("compilation failed: {e}"),
                )),
                Ok(p) => {
                    let known = [
                        ("self", Data::Schema(node)),
                        ("oldSelf", Data::Schema(node)),
                    ];
                    let cost = cel_limits::estimate_with(
                        p.expression(),
                        cel_limits::schema_sizes(node),
                        &known,
                    )
                    .saturating_mul(cardinality);
                    if cost
                        > cel_limits::STATIC_ESTIMATED_COST_LIMIT
                            .saturating_mul(cel_limits::STATIC_REFUSAL_MARGIN)
                    {
                        causes.push(forbidden_field(
                            &field,
                            &cel_limits::cost_error_message(
                                "estimated rule cost",
                                cost,
                                cel_limits::STATIC_ESTIMATED_COST_LIMIT,
                            ),
                        ));
                    }
                    total = total.saturating_add(cost);
                }
            }
            if let Some(me) = rule.get("messageExpression").and_then(Value::as_str)
                && let Err(e) = cel_limits::compile(me)
            {
                causes.push(invalid_value(
                    &field.replace(".rule", ".messageExpression"),
                    &json!(me),
                    &format!("messageExpression compilation failed: {e}"),
                ));
            }
        }
    }
    if total
        > cel_limits::STATIC_ESTIMATED_CRD_COST_LIMIT
            .saturating_mul(cel_limits::STATIC_REFUSAL_MARGIN)
    {
        causes.push(forbidden_field(
            base,
            &cel_limits::cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total,
                cel_limits::STATIC_ESTIMATED_CRD_COST_LIMIT,
            ),
        ));
    }
}

fn preserves(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        || s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
}

fn prune_node(schema: &Value, v: &mut Value) {
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match v {
        Value::Object(m) => {
            let embedded = schema
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = preserves(schema)
                || schema.get("additionalProperties").and_then(Value::as_bool) == Some(true);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = props.and_then(|p| p.get(&k)).or(addl);
                match sub {
                    Some(s) => {
                        if let Some(child) = m.get_mut(&k) {
                            prune_node(s, child);
                        }
                    }
                    None if !preserve => {
                        m.remove(&k);
                    }
                    None => {}
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for x in a {
                    prune_node(items, x);
                }
            }
        }
        _ => {}
    }
}

fn default_node(schema: &Value, v: &mut Value, root: bool) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let nullable = sub.get("nullable").and_then(Value::as_bool) == Some(true);
                    if m.get(k).is_some_and(Value::is_null) && !nullable {
                        m.remove(k);
                    }
                    if !m.contains_key(k)
                        && let Some(d) = sub.get("default")
                    {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        default_node(sub, child, false);
                    }
                }
            }
            if let Some(addl) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    default_node(addl, child, false);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for x in a {
                    default_node(items, x, false);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn lookup_dotted<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, idx) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validate `v` against `schema` at dotted path `path`.
pub(crate) fn validate_node(schema: &Value, v: &Value, path: &str, out: &mut Vec<Cause>) {
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    if v.is_null() {
        if !nullable {
            let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
            if !ty.is_empty() {
                out.push(Cause {
                    reason: "FieldValueTypeInvalid".into(),
                    message: format!(
                        "Invalid value: \"null\": {path} in body must be of type {ty}: \"null\""
                    ),
                    field: path.into(),
                });
            }
        }
        return;
    }
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        if !(v.is_string() || v.as_i64().is_some()) {
            out.push(Cause {
                reason: "FieldValueTypeInvalid".into(),
                message: format!(
                    "Invalid value: {:?}: {path} in body must be of type integer,string: {:?}",
                    type_name(v),
                    type_name(v)
                ),
                field: path.into(),
            });
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        out.push(Cause {
            reason: "FieldValueTypeInvalid".into(),
            message: format!(
                "Invalid value: {:?}: {path} in body must be of type {ty}: {:?}",
                type_name(v),
                type_name(v)
            ),
            field: path.into(),
        });
        return;
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.contains(v)
    {
        let allowed: Vec<String> = en.iter().map(render_value).collect();
        out.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                render_value(v),
                allowed.join(", ")
            ),
            field: path.into(),
        });
    }
    if let Some(x) = v.as_f64() {
        let excl_min = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        let excl_max = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && (x < min || (excl_min && x == min))
        {
            let rel = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(invalid_value(
                path,
                v,
                &format!("{path} in body should be {rel} {}", fmt_num(min)),
            ));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && (x > max || (excl_max && x == max))
        {
            let rel = if excl_max {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(invalid_value(
                path,
                v,
                &format!("{path} in body should be {rel} {}", fmt_num(max)),
            ));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            out.push(invalid_value(
                path,
                v,
                &format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            out.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {max} bytes"),
                field: path.into(),
            });
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(p) {
                Ok(re) if !re.is_match(s) => {
                    out.push(invalid_value(
                        path,
                        v,
                        &format!("{path} in body should match '{p}'"),
                    ));
                }
                Ok(_) => {}
                Err(_) => out.push(invalid_value(
                    path,
                    v,
                    &format!("invalid pattern '{p}' in schema"),
                )),
            }
        }
    }
    match v {
        Value::Object(m) => validate_object(schema, m, path, out),
        Value::Array(a) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (a.len() as u64) < min
            {
                out.push(invalid_value(
                    path,
                    &Value::from(a.len()),
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (a.len() as u64) > max
            {
                out.push(Cause {
                    reason: "FieldValueTooMany".into(),
                    message: format!("Too many: {}: must have at most {max} items", a.len()),
                    field: path.into(),
                });
            }
            if let Some(items) = schema.get("items") {
                for (i, x) in a.iter().enumerate() {
                    validate_node(items, x, &format!("{path}[{i}]"), out);
                }
            }
            validate_list_type(schema, a, path, out);
        }
        _ => {}
    }
}

fn validate_object(schema: &Value, m: &Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        for (k, sub) in props {
            if let Some(child) = m.get(k) {
                validate_node(sub, child, &format!("{path}.{k}"), out);
            }
        }
    }
    if let Some(addl) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        for (k, child) in m {
            if props.is_some_and(|p| p.contains_key(k)) {
                continue;
            }
            validate_node(addl, child, &format!("{path}[{k}]"), out);
        }
    }
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !m.contains_key(r) {
            out.push(required(&format!("{path}.{r}"), ""));
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && m.len() as u64 > max
    {
        out.push(Cause {
            reason: "FieldValueTooMany".into(),
            message: format!("Too many: {}: must have at most {max} items", m.len()),
            field: path.into(),
        });
    }
}

/// `x-kubernetes-list-type: set|map` forbid duplicates (`field.Duplicate`).
fn validate_list_type(schema: &Value, a: &[Value], path: &str, out: &mut Vec<Cause>) {
    let lt = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen: Vec<Value> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        let id = match lt {
            Some("set") => x.clone(),
            Some("map") => Value::Array(
                keys.iter()
                    .map(|k| x.get(*k).cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            _ => return,
        };
        if seen.contains(&id) {
            let shown = if lt == Some("map") {
                let mut o = Map::new();
                for k in &keys {
                    o.insert((*k).into(), x.get(*k).cloned().unwrap_or(Value::Null));
                }
                Value::Object(o).to_string()
            } else {
                render_value(x)
            };
            out.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("Duplicate value: {shown}"),
                field: format!("{path}[{i}]"),
            });
        } else {
            seen.push(id);
        }
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CrSchema {
        CrSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["image"],
                    "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "too many"}],
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 0, "default": 1},
                        "image": {"type": "string", "pattern": "^[a-z:.0-9]+$"},
                        "mode": {"type": "string", "enum": ["A", "B"]},
                        "strategy": {"type": "object", "default": {}, "properties": {
                            "partition": {"type": "integer", "default": 0}}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true}
                    }
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn prune_default_validate_pipeline() {
        let s = schema();
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "junk": 1, "spec": {"image": "nginx", "unknown": true, "extra": {"keep": 1}, "port": "http"}});
        s.prune(&mut o);
        s.default(&mut o);
        assert_eq!(o["junk"], Value::Null);
        assert_eq!(o["spec"]["unknown"], Value::Null);
        assert_eq!(o["spec"]["extra"]["keep"], 1);
        assert_eq!(o["spec"]["replicas"], 1);
        assert_eq!(
            o["spec"]["strategy"]["partition"], 0,
            "defaults apply inside a defaulted object"
        );
        assert!(s.validate(&o, None).is_empty());
    }

    #[test]
    fn validation_messages() {
        let s = schema();
        let o = json!({"spec": {"replicas": -1, "mode": "C", "image": "UPPER"}});
        let c = s.validate(&o, None);
        let msgs: Vec<String> = c
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(msgs.contains(&"spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0".to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &"spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"".to_string()
            ),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| {
            m.starts_with("spec.image: Invalid value: \"UPPER\": spec.image in body should match")
        }));
        let o = json!({"spec": {}});
        let c = s.validate(&o, None);
        assert_eq!(c[0].field, "spec.image");
        assert_eq!(c[0].reason, "FieldValueRequired");
        let o = json!({"spec": {"replicas": 11, "image": "a"}});
        let c = s.validate(&o, None);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].message, "Invalid value: \"object\": too many");
        let o = json!({"spec": {"replicas": "x", "image": "a"}});
        let c = s.validate(&o, None);
        assert_eq!(c[0].reason, "FieldValueTypeInvalid");
    }

    #[test]
    fn crd_rules_are_checked_before_they_are_parsed() {
        let crd = |rule: String| {
            json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": rule}],
                    "properties": {"a": {"type": "integer"}}}}}}}]}})
        };
        let huge = format!("self.a == 0{}", " || self.a == 1".repeat(7000));
        let c = check_crd_rules(&crd(huge));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].field,
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
        );
        assert!(
            c[0].message
                .contains("expression code point size exceeds limit")
        );
        assert!(check_crd_rules(&crd("self.a <= 3".into())).is_empty());
    }
}
