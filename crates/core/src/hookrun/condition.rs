//! `successCondition` / `failureCondition`: CEL over `result`, compiled once when a template or
//! run is checked, evaluated per measurement. The original's `expr` helpers (`asInt`,
//! `asFloat`, `len`) and Argo's `isNaN` are registered, so its simple expressions keep working.

use std::collections::HashMap;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, FunctionContext, Program, ResolveResult, Value};

use super::limits::{self, CONDITION_MAX_BYTES, CONDITION_MAX_NESTING, COST_BUDGET, Sizes};
use crate::api::HookPhase;

/// The variable holding the measured value.
pub const RESULT: &str = "result";
/// The variable holding a web response's HTTP status; a condition that reads it is shown
/// non-2xx responses too (otherwise they are provider errors, as in the original).
pub const STATUS_CODE: &str = "statusCode";

/// One compiled expression and the text it came from.
#[derive(Debug)]
pub struct Expression {
    pub text: String,
    program: Program,
}

/// Why a condition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    /// Not CEL, or CEL the interpreter cannot run: the parser's or the check's words.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "it is {bytes} bytes long, more than the {max} allowed: shorten it (a long list belongs \
         in the answer, not the condition)",
        max = CONDITION_MAX_BYTES
    )]
    TooLong { bytes: usize },
    #[error(
        "it nests {depth} deep, more than the {max} allowed (each chained operator or field \
         counts 1, each bracket or call {bracket}, each `? :` {ternary}): split the chain or \
         use fewer nested brackets",
        max = CONDITION_MAX_NESTING,
        bracket = limits::BRACKET_UNITS,
        ternary = limits::TERNARY_UNITS
    )]
    TooDeep { depth: u32 },
    #[error(
        "estimated rule cost exceeds budget: {cost} steps for an answer of up to 1 MiB, more \
         than the budget of {budget}: a comprehension (all, exists, exists_one, map, filter) \
         runs its body once per element, so nest them less or do less per element",
        budget = COST_BUDGET
    )]
    TooCostly { cost: u64 },
}

impl Expression {
    /// Checks `text` against the limits of [`limits`] (length and nesting before the parser
    /// sees it, cost for an answer of the largest size after) and parses it.
    pub fn compile(text: &str) -> Result<Expression, ExpressionError> {
        if text.len() > CONDITION_MAX_BYTES {
            return Err(ExpressionError::TooLong { bytes: text.len() });
        }
        Self::compile_any_length(text)
    }

    /// [`Expression::compile`] without the length limit, for conditions the engine writes
    /// itself (whose string literals may be long; their nesting and cost are still checked).
    pub(crate) fn compile_any_length(text: &str) -> Result<Expression, ExpressionError> {
        let depth = limits::nesting(text).map_err(ExpressionError::Invalid)?;
        if depth > CONDITION_MAX_NESTING {
            return Err(ExpressionError::TooDeep { depth });
        }
        let program =
            Program::compile(text).map_err(|e| ExpressionError::Invalid(e.to_string()))?;
        let cost = limits::estimate(program.expression(), Sizes::STATIC)
            .map_err(|u| ExpressionError::Invalid(u.0))?;
        if cost > COST_BUDGET {
            return Err(ExpressionError::TooCostly { cost });
        }
        Ok(Expression {
            text: text.to_string(),
            program,
        })
    }

    /// [`Expression::compile`] without the cost limit, to measure evaluations near the budget.
    #[cfg(test)]
    fn compile_unbudgeted(text: &str) -> Expression {
        Expression {
            text: text.to_string(),
            program: Program::compile(text).unwrap(),
        }
    }

    /// The estimated cost of evaluating over a `result` of these sizes.
    pub fn cost(&self, sizes: Sizes) -> u64 {
        limits::estimate(self.program.expression(), sizes).unwrap_or(u64::MAX)
    }

    /// Whether the expression reads `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.program.references().has_variable(name)
    }

    fn eval(&self, ctx: &Context, hint: Hint) -> Result<bool, Evaluation> {
        match self.program.execute(ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(Evaluation::Error(format!(
                "`{}` gave {}, not true or false",
                self.text,
                show(&other)
            ))),
            Err(ExecutionError::NoSuchKey(key)) => Err(Evaluation::NoData(format!(
                "`{}` reads key {key}, which the result does not have",
                self.text
            ))),
            Err(e) => Err(Evaluation::Error(format!(
                "`{}` could not be evaluated: {}",
                self.text,
                explain(&e, hint)
            ))),
        }
    }
}

/// A metric's two conditions.
#[derive(Debug, Default)]
pub struct Conditions {
    pub success: Option<Expression>,
    pub failure: Option<Expression>,
}

/// What the conditions made of one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// A phase (Successful, Failed or Inconclusive) and which condition decided it.
    Decided { phase: HookPhase, because: String },
    /// The value lacks what a condition reads: the metric's `noData` policy decides.
    NoData(String),
    /// The expression failed at run time (a type mismatch, a non-boolean result).
    Error(String),
}

impl Conditions {
    /// Whether either condition reads `name`.
    pub fn reads(&self, name: &str) -> bool {
        [&self.success, &self.failure]
            .into_iter()
            .flatten()
            .any(|e| e.reads(name))
    }

    /// The original's rules: no condition is Successful; a true failure condition wins; with
    /// one condition the other outcome is its negation; with both and neither true,
    /// Inconclusive.
    pub fn evaluate(&self, result: Value, status_code: Option<u16>) -> Evaluation {
        // Both conditions together stay within the budget: estimated again with the real
        // sizes of this answer, so a condition accepted for any answer runs only on the
        // answers it is cheap for.
        let sizes = Sizes::of(&result);
        let both = [&self.failure, &self.success].into_iter().flatten();
        let cost = both.fold(0u64, |sum, e| sum.saturating_add(e.cost(sizes)));
        if cost > COST_BUDGET {
            let texts: Vec<String> = [&self.success, &self.failure]
                .into_iter()
                .flatten()
                .map(|e| format!("`{}`", e.text))
                .collect();
            return Evaluation::Error(format!(
                "{} was not evaluated: over this answer (size {}: its elements and string \
                 bytes together) the estimated cost is {cost} steps, more than the budget of \
                 {COST_BUDGET}; nest comprehensions less or ask for a smaller answer",
                texts.join(" and "),
                sizes.result
            ));
        }
        let hint = Hint::of(&result);
        let mut ctx = context();
        ctx.add_variable_from_value(RESULT, result);
        if let Some(code) = status_code {
            ctx.add_variable_from_value(STATUS_CODE, i64::from(code));
        }
        let decided = |phase, because: String| Evaluation::Decided { phase, because };
        let failed = match &self.failure {
            Some(f) => match f.eval(&ctx, hint) {
                Ok(b) => Some(b),
                Err(e) => return e,
            },
            None => None,
        };
        if failed == Some(true) {
            let f = self.failure.as_ref().map_or("", |f| f.text.as_str());
            return decided(HookPhase::Failed, format!("failureCondition `{f}` is true"));
        }
        let succeeded = match &self.success {
            Some(s) => match s.eval(&ctx, hint) {
                Ok(b) => Some(b),
                Err(e) => return e,
            },
            None => None,
        };
        let s_text = self.success.as_ref().map_or("", |s| s.text.as_str());
        let f_text = self.failure.as_ref().map_or("", |f| f.text.as_str());
        match (succeeded, failed) {
            (None, None) => decided(
                HookPhase::Successful,
                "no conditions: any value is Successful".into(),
            ),
            (Some(true), _) => decided(
                HookPhase::Successful,
                format!("successCondition `{s_text}` is true"),
            ),
            (Some(false), None) => decided(
                HookPhase::Failed,
                format!("successCondition `{s_text}` is false"),
            ),
            (None, Some(_)) => decided(
                HookPhase::Successful,
                format!("failureCondition `{f_text}` is false"),
            ),
            (Some(false), Some(_)) => decided(
                HookPhase::Inconclusive,
                format!(
                    "neither successCondition `{s_text}` nor failureCondition `{f_text}` is true"
                ),
            ),
        }
    }
}

/// CEL's standard functions plus the original's helpers.
fn context() -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_function("asInt", as_int);
    ctx.add_function("asFloat", as_float);
    ctx.add_function("isNaN", is_nan);
    ctx.add_function("len", cel::functions::size);
    ctx
}

/// An integer from an int, an integral float (`1e6`), or text holding either: the original's
/// web results were always text, and printed a million as `1e+06`.
fn as_int(ftx: &FunctionContext, This(v): This<Value>) -> ResolveResult {
    let from_float = |f: f64| {
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            Ok(Value::Int(f as i64))
        } else {
            Err(ftx.error(format!("{f} is not a whole number")))
        }
    };
    match v {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::UInt(u) => i64::try_from(u)
            .map(Value::Int)
            .map_err(|_| ftx.error(format!("{u} is too large"))),
        Value::Float(f) => from_float(f),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(f) => from_float(f),
                Err(_) => Err(ftx.error(format!("\"{s}\" is not a number"))),
            },
        },
        other => Err(ftx.error(format!("cannot read {} as an integer", show(&other)))),
    }
}

fn as_float(ftx: &FunctionContext, This(v): This<Value>) -> ResolveResult {
    match v {
        Value::Int(i) => Ok(Value::Float(i as f64)),
        Value::UInt(u) => Ok(Value::Float(u as f64)),
        Value::Float(f) => Ok(Value::Float(f)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| ftx.error(format!("\"{s}\" is not a number"))),
        other => Err(ftx.error(format!("cannot read {} as a number", show(&other)))),
    }
}

fn is_nan(ftx: &FunctionContext, This(v): This<Value>) -> ResolveResult {
    match v {
        Value::Float(f) => Ok(Value::Bool(f.is_nan())),
        Value::Int(_) | Value::UInt(_) => Ok(Value::Bool(false)),
        Value::String(s) => Ok(Value::Bool(s.trim().eq_ignore_ascii_case("nan"))),
        other => Err(ftx.error(format!("cannot test {} for NaN", show(&other)))),
    }
}

/// A JSON value as CEL sees it: integers stay integers (`result.players == 0` compares an int
/// with an int), other numbers are doubles.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (_, _, f) => Value::Float(f.unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(from_json).collect())),
        serde_json::Value::Object(o) => {
            let map: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// A CEL value for a user: its type and a short rendering, never Rust's Debug form.
fn show(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("int {i}"),
        Value::UInt(u) => format!("uint {u}"),
        Value::Float(f) => format!("double {f}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Bool(b) => format!("bool {b}"),
        Value::Null => "null".into(),
        Value::List(l) => format!("a list of {}", l.len()),
        Value::Map(m) => format!("a map of {} keys", m.map.len()),
        other => format!("a {}", other.type_of()),
    }
}

/// What in `result` can explain a type error: a NaN (which compares with nothing), or numbers
/// (an int against a double, which CEL does not mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    NaN,
    Numbers,
    None,
}

impl Hint {
    fn of(v: &Value) -> Hint {
        fn walk(v: &Value, numbers: &mut bool) -> bool {
            match v {
                Value::Float(f) if f.is_nan() => true,
                Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
                    *numbers = true;
                    false
                }
                Value::List(l) => l.iter().any(|v| walk(v, numbers)),
                Value::Map(m) => m.map.values().any(|v| walk(v, numbers)),
                _ => false,
            }
        }
        let mut numbers = false;
        if walk(v, &mut numbers) {
            Hint::NaN
        } else if numbers {
            Hint::Numbers
        } else {
            Hint::None
        }
    }
}

/// A CEL run-time error in words; the library's own messages print values in Debug form.
fn explain(e: &ExecutionError, hint: Hint) -> String {
    use ExecutionError as E;
    match e {
        E::UnsupportedBinaryOperator(op, a, b) => {
            let nan = |v: &Value| matches!(v, Value::Float(f) if f.is_nan());
            let int = |v: &Value| matches!(v, Value::Int(_) | Value::UInt(_));
            let double = |v: &Value| matches!(v, Value::Float(_));
            let why = if nan(a) || nan(b) {
                ": NaN (not a number) takes part in nothing; test it first, e.g. \
                 `!isNaN(result) && ...`"
            } else if (int(a) && double(b)) || (double(a) && int(b)) {
                ": CEL does not mix an int with a double; write asFloat(...) on both sides"
            } else {
                ""
            };
            format!("`{op}` does not apply to {} and {}{why}", show(a), show(b))
        }
        E::UnsupportedUnaryOperator(op, a) => format!("`{op}` does not apply to {}", show(a)),
        E::ValuesNotComparable(a, b)
            if [a, b]
                .iter()
                .any(|v| matches!(v, Value::Float(f) if f.is_nan())) =>
        {
            format!(
                "{} cannot be compared with {}: NaN (not a number) compares with nothing; test \
                 it first, e.g. `!isNaN(result) && ...`",
                show(a),
                show(b)
            )
        }
        E::ValuesNotComparable(a, b) => format!("{} cannot be compared with {}", show(a), show(b)),
        E::UnsupportedTargetType { target } => format!("unsupported argument {}", show(target)),
        E::NotSupportedAsMethod { method, target } => {
            format!("{method}() cannot be called on {}", show(target))
        }
        E::UnsupportedKeyType(v) | E::UnsupportedMapIndex(v) => {
            format!("{} cannot be a map key", show(v))
        }
        E::UnsupportedListIndex(v) => format!("{} cannot index a list", show(v)),
        E::UnsupportedIndex(i, v) => format!("{} cannot index {}", show(i), show(v)),
        E::IndexOutOfBounds(i) => format!("index {} is out of bounds", show(i)),
        E::DivisionByZero(v) | E::RemainderByZero(v) => format!("{} divided by zero", show(v)),
        E::Overflow(op, a, b) => format!("{} {op} {} overflows", show(a), show(b)),
        E::NoSuchOverload => match hint {
            Hint::NaN => "a function or operator got arguments it does not take: the result \
                          holds NaN (not a number), which compares with nothing; test it first, \
                          e.g. `!isNaN(result) && ...`"
                .into(),
            Hint::Numbers => "a function or operator got arguments of the wrong types (CEL does \
                              not mix an int with a double: write asFloat(...) on both sides)"
                .into(),
            Hint::None => "a function or operator got arguments of the wrong types".into(),
        },
        E::UndeclaredReference(name) if name.as_str() == STATUS_CODE => {
            "statusCode is only set for the web provider".into()
        }
        E::UndeclaredReference(name) => format!(
            "unknown name {name}: the variables are result and statusCode, the helpers asInt, \
             asFloat, isNaN and len"
        ),
        E::UnexpectedType { want, .. } => {
            let wanted = match want.as_str() {
                w if w.contains("String") => "a string",
                w if w.contains("i64") || w.contains("Int") => "an int",
                w if w.contains("f64") || w.contains("Float") => "a double",
                w if w.contains("bool") => "a bool",
                _ => "another type",
            };
            format!("a function got an argument of the wrong type: it takes {wanted}")
        }
        // The library's own functions print the value in Debug form.
        E::FunctionError { function, message } => {
            let message = if message.starts_with("cannot determine the size of") {
                "it takes a string, bytes, a list or a map".to_string()
            } else if let Some(rest) = message.strip_prefix("cannot convert ") {
                let to = rest.rsplit(" to ").next().unwrap_or("that type");
                format!("this value cannot be converted to {to}")
            } else {
                message.clone()
            };
            format!("{function}(): {message}")
        }
        E::UnsupportedFunctionCallIdentifierType(_) | E::UnsupportedFieldsConstruction(_) => {
            "this CEL construct is not supported".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(success: Option<&str>, failure: Option<&str>) -> Conditions {
        Conditions {
            success: success.map(|s| Expression::compile(s).unwrap()),
            failure: failure.map(|f| Expression::compile(f).unwrap()),
        }
    }

    fn phase_of(c: &Conditions, v: serde_json::Value) -> HookPhase {
        match c.evaluate(from_json(&v), None) {
            Evaluation::Decided { phase, .. } => phase,
            other => panic!("not decided: {other:?}"),
        }
    }

    #[test]
    fn the_originals_simple_expressions_work_unchanged() {
        let ok = conditions(Some(r#"result == "ok""#), None);
        assert_eq!(phase_of(&ok, json!("ok")), HookPhase::Successful);
        assert_eq!(phase_of(&ok, json!("no")), HookPhase::Failed);
        let int = conditions(Some("asInt(result) > 3"), None);
        assert_eq!(phase_of(&int, json!("4")), HookPhase::Successful);
        assert_eq!(phase_of(&int, json!(4)), HookPhase::Successful);
        assert_eq!(phase_of(&int, json!("3")), HookPhase::Failed);
        let float = conditions(Some("asFloat(result) >= 0.95"), None);
        assert_eq!(phase_of(&float, json!("0.97")), HookPhase::Successful);
        assert_eq!(phase_of(&float, json!(1)), HookPhase::Successful);
        assert_eq!(phase_of(&float, json!(0.5)), HookPhase::Failed);
        let players = conditions(Some("result.players == 0"), None);
        assert_eq!(
            phase_of(&players, json!({"players": 0})),
            HookPhase::Successful
        );
        assert_eq!(phase_of(&players, json!({"players": 2})), HookPhase::Failed);
        let size = conditions(Some("len(result) == 2"), None);
        assert_eq!(phase_of(&size, json!([1, 2])), HookPhase::Successful);
    }

    /// The original printed numbers of a million and more as `1e+06`, which its `asInt`
    /// could not read; here both that text and the number itself read as integers.
    #[test]
    fn as_int_reads_exponent_text_and_big_numbers() {
        let c = conditions(Some("asInt(result) == 1000000"), None);
        assert_eq!(phase_of(&c, json!("1e+06")), HookPhase::Successful);
        assert_eq!(phase_of(&c, json!(1_000_000)), HookPhase::Successful);
        assert_eq!(phase_of(&c, json!(1e6)), HookPhase::Successful);
        match c.evaluate(from_json(&json!("1.5")), None) {
            Evaluation::Error(m) => assert!(m.contains("1.5 is not a whole number"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_originals_outcome_rules() {
        let none = conditions(None, None);
        assert_eq!(phase_of(&none, json!("anything")), HookPhase::Successful);
        let only_failure = conditions(None, Some("result > 5"));
        assert_eq!(phase_of(&only_failure, json!(6)), HookPhase::Failed);
        assert_eq!(phase_of(&only_failure, json!(1)), HookPhase::Successful);
        let both = conditions(Some("result < 3"), Some("result > 5"));
        assert_eq!(phase_of(&both, json!(1)), HookPhase::Successful);
        assert_eq!(phase_of(&both, json!(9)), HookPhase::Failed);
        assert_eq!(phase_of(&both, json!(4)), HookPhase::Inconclusive);
        let overlapping = conditions(Some("result > 0"), Some("result > 5"));
        assert_eq!(
            phase_of(&overlapping, json!(9)),
            HookPhase::Failed,
            "the failure condition wins"
        );
    }

    #[test]
    fn evaluation_says_which_condition_decided() {
        let c = conditions(Some("result.players == 0"), Some("result.players > 100"));
        assert_eq!(
            c.evaluate(from_json(&json!({"players": 0})), None),
            Evaluation::Decided {
                phase: HookPhase::Successful,
                because: "successCondition `result.players == 0` is true".into()
            }
        );
        assert_eq!(
            c.evaluate(from_json(&json!({"players": 7})), None),
            Evaluation::Decided {
                phase: HookPhase::Inconclusive,
                because: "neither successCondition `result.players == 0` nor failureCondition \
                          `result.players > 100` is true"
                    .into()
            }
        );
    }

    #[test]
    fn a_missing_key_is_no_data_and_a_type_error_is_an_error() {
        let c = conditions(Some("result.players == 0"), None);
        match c.evaluate(from_json(&json!({"online": 3})), None) {
            Evaluation::NoData(m) => assert!(m.contains("key players"), "{m}"),
            other => panic!("{other:?}"),
        }
        let c = conditions(Some("result"), None);
        match c.evaluate(from_json(&json!(3)), None) {
            Evaluation::Error(m) => assert_eq!(m, "`result` gave int 3, not true or false"),
            other => panic!("{other:?}"),
        }
        let c = conditions(Some("result > 0.5"), None);
        match c.evaluate(from_json(&json!("x")), None) {
            Evaluation::Error(m) => {
                assert!(
                    m.starts_with("`result > 0.5` could not be evaluated"),
                    "{m}"
                );
                assert!(!m.contains("String("), "no Debug output: {m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nan_is_data() {
        let c = conditions(Some("!isNaN(result) && result >= 0.95"), None);
        assert_eq!(
            c.evaluate(Value::Float(f64::NAN), None),
            Evaluation::Decided {
                phase: HookPhase::Failed,
                because: "successCondition `!isNaN(result) && result >= 0.95` is false".into()
            }
        );
        assert!(matches!(
            c.evaluate(Value::Float(0.99), None),
            Evaluation::Decided {
                phase: HookPhase::Successful,
                ..
            }
        ));
    }

    #[test]
    fn status_code_is_readable_when_given() {
        let c = conditions(Some("statusCode == 404"), None);
        assert!(c.reads(STATUS_CODE));
        assert!(!conditions(Some("result == 1"), None).reads(STATUS_CODE));
        assert!(matches!(
            c.evaluate(Value::Null, Some(404)),
            Evaluation::Decided {
                phase: HookPhase::Successful,
                ..
            }
        ));
        match c.evaluate(Value::Null, None) {
            Evaluation::Error(m) => assert!(m.contains("only set for the web provider"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn library_function_errors_show_no_debug_output() {
        for (text, expected) in [
            (
                "size(result) > 0",
                "size(): it takes a string, bytes, a list or a map",
            ),
            (
                "int(result) > 0",
                "int(): this value cannot be converted to int",
            ),
        ] {
            let c = conditions(Some(text), None);
            match c.evaluate(Value::Bool(true), None) {
                Evaluation::Error(m) => {
                    assert!(m.ends_with(expected), "{m}");
                    assert!(!m.contains("Bool("), "{m}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_nan_comparison_says_nan_not_as_float() {
        let c = conditions(Some("result >= 0.95"), None);
        match c.evaluate(from_json(&json!({"x": 1})), None) {
            Evaluation::Error(m) => assert!(!m.contains("isNaN"), "{m}"),
            other => panic!("{other:?}"),
        }
        let c = conditions(Some("result.a + 1 > 2"), None);
        match c.evaluate(from_json(&json!({"a": 1.5})), None) {
            Evaluation::Error(m) => assert!(m.contains("asFloat"), "int against double: {m}"),
            other => panic!("{other:?}"),
        }
        let c = conditions(Some("result[0] >= result[1]"), None);
        let nan = Value::List(Arc::new(vec![Value::Float(f64::NAN), Value::Int(1)]));
        match c.evaluate(nan, None) {
            Evaluation::Error(m) => {
                assert!(m.contains("NaN") && m.contains("isNaN"), "{m}");
                assert!(!m.contains("asFloat"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The three conditions that aborted the process (SIGABRT, stack overflow) are refused
    /// with a message, and so are shorter chains of the same shape.
    #[test]
    fn long_chains_are_refused_before_the_parser_sees_them() {
        for text in [
            format!("result{}", ".a".repeat(3000)),
            format!("result.n{}", " + 1".repeat(3000)),
            format!("result.list{}", "[0]".repeat(3000)),
        ] {
            let e = Expression::compile(&text).unwrap_err();
            assert!(matches!(e, ExpressionError::TooLong { .. }), "{e}");
            assert!(e.to_string().contains("more than the 4096 allowed"), "{e}");
        }
        for text in [
            format!("result{}", ".a".repeat(500)),
            format!("result.n{}", " + 1".repeat(500)),
            format!("result.list{}", "[0]".repeat(500)),
            format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            format!("{}true", "true ? true : ".repeat(200)),
        ] {
            let e = Expression::compile(&text).unwrap_err();
            assert!(matches!(e, ExpressionError::TooDeep { .. }), "{e}");
            assert!(e.to_string().contains("more than the 120 allowed"), "{e}");
        }
        // Strings and comments do not count, but a malformed string is refused.
        let quoted = format!(
            "result == \"{}\" // {}",
            "((((.a".repeat(100),
            "[[[".repeat(100)
        );
        assert!(Expression::compile(&quoted).is_ok());
        let e = Expression::compile(&format!("result == \"\\q{}\"", ".a".repeat(200)));
        assert!(matches!(e, Err(ExpressionError::Invalid(m)) if m.contains("escape")));
    }

    /// The deepest condition of each shape the limits accept compiles, evaluates and is
    /// dropped on a 256 KiB stack in the debug build, where frames are largest: tokio's 2 MiB
    /// worker and blocking threads have eight times that.
    #[test]
    fn the_deepest_accepted_conditions_run_on_a_small_stack() {
        type Shape = Box<dyn Fn(usize) -> String>;
        let shapes: Vec<(&str, Shape)> = vec![
            (
                "member",
                Box::new(|n| format!("result{}.x == 1", ".a".repeat(n))),
            ),
            (
                "index",
                Box::new(|n| format!("result.list{} == 1", "[0]".repeat(n))),
            ),
            (
                "plus",
                Box::new(|n| format!("result.n{} > 0", " + 1".repeat(n))),
            ),
            (
                "compare",
                Box::new(|n| format!("1{} < 2", " < 2".repeat(n))),
            ),
            (
                "paren",
                Box::new(|n| format!("{}result.n{} > 0", "(".repeat(n), ")".repeat(n))),
            ),
            (
                "list",
                Box::new(|n| format!("size({}1{}) > 0", "[".repeat(n), "]".repeat(n))),
            ),
            (
                "map",
                Box::new(|n| format!("size({}1{}) > 0", "{1: ".repeat(n), "}".repeat(n))),
            ),
            (
                "call",
                Box::new(|n| format!("{}result.n{} > 0", "asInt(".repeat(n), ")".repeat(n))),
            ),
            (
                "ternary",
                Box::new(|n| format!("{}false", "result.n == 1 ? true : ".repeat(n))),
            ),
            ("not", Box::new(|n| format!("{}true", "!".repeat(n)))),
            (
                "and",
                Box::new(|n| format!("true{}", " && result.n == 1".repeat(n))),
            ),
            (
                "all",
                Box::new(|n| (0..n).fold("true".to_string(), |s, i| format!("[1].all(x{i}, {s})"))),
            ),
            (
                "mixed",
                Box::new(|n| {
                    (0..n).fold("result.n".to_string(), |s, _| {
                        format!("asInt([({s}) + 1][0]).a.b")
                    })
                }),
            ),
        ];
        for (name, shape) in shapes {
            eprintln!("{name}");
            let deepest = (1..4000)
                .take_while(|n| Expression::compile(&shape(*n)).is_ok())
                .last()
                .unwrap_or_else(|| panic!("{name}: not even one level is accepted"));
            let text = shape(deepest);
            assert!(
                Expression::compile(&shape(deepest + 1)).is_err(),
                "{name}: a limit stops it"
            );
            let outcome = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let c = Conditions {
                        success: Some(Expression::compile(&text).unwrap()),
                        failure: None,
                    };
                    let result = from_json(&json!({"n": 1, "list": [1], "a": {"b": 1}}));
                    let outcome = c.evaluate(result, None);
                    drop(c);
                    outcome
                })
                .unwrap()
                .join()
                .unwrap_or_else(|_| panic!("{name}"));
            eprintln!("{name}: {deepest} levels: {outcome:?}");
        }
    }

    fn answer(n: usize) -> Value {
        Value::List(Arc::new((0..n).map(|i| Value::Int(i as i64)).collect()))
    }

    /// A 1 MiB answer holds at most 524,288 list elements (`[0,0,...]`).
    const LARGEST_LIST: usize = 524_288;

    #[test]
    fn nested_comprehensions_are_refused_at_compile_time() {
        let e = Expression::compile("result.all(x, result.all(y, result.all(z, x + y + z >= 0)))")
            .unwrap_err();
        assert!(matches!(e, ExpressionError::TooCostly { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("estimated rule cost exceeds budget"),
            "{e}"
        );
        assert!(Expression::compile("result.all(x, result.all(y, x != y))").is_err());
        let e = Expression::compile("Foo{a: 1} == 1").unwrap_err();
        assert!(
            matches!(&e, ExpressionError::Invalid(m) if m.contains("not supported")),
            "{e}"
        );
    }

    #[test]
    fn one_comprehension_over_the_largest_answer_works() {
        let c = conditions(Some("result.all(x, x >= 0)"), None);
        let started = std::time::Instant::now();
        assert_eq!(
            phase_of_value(&c, answer(LARGEST_LIST)),
            HookPhase::Successful
        );
        eprintln!(
            "all over {LARGEST_LIST} ints: cost {}, {:?}",
            c.success
                .as_ref()
                .unwrap()
                .cost(Sizes::of(&answer(LARGEST_LIST))),
            started.elapsed()
        );
    }

    /// Evaluations near the budget, in shapes whose real work is close to their estimate,
    /// take well under a second in the debug build.
    #[test]
    fn an_evaluation_at_the_budget_is_quick() {
        for text in [
            "result.all(x, x >= 0)",
            "result.all(x, x >= 0 && x < 100000000 && x != -3 && x + 1 > 0)",
            "result.exists_one(x, x == 7)",
            "result.exists(x, result.exists(y, x == y + 1000000))",
            "result.map(x, x).size() > 0",
            "result.filter(x, x % 2 == 0).size() > 0",
        ] {
            let c = Conditions {
                success: Some(Expression::compile_unbudgeted(text)),
                failure: None,
            };
            // The largest answer this condition is evaluated over.
            let mut n = 1;
            while c.success.as_ref().unwrap().cost(Sizes::of(&answer(n * 2))) <= COST_BUDGET {
                n *= 2;
            }
            let cost = c.success.as_ref().unwrap().cost(Sizes::of(&answer(n)));
            let started = std::time::Instant::now();
            let outcome = c.evaluate(answer(n), None);
            let took = started.elapsed();
            eprintln!("{text}: {n} elements, cost {cost}: {took:?}, {outcome:?}");
            assert!(took < std::time::Duration::from_secs(1), "{text}: {took:?}");
            match c.evaluate(answer(n * 4), None) {
                Evaluation::Error(m) => assert!(m.contains("budget"), "{m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    fn phase_of_value(c: &Conditions, v: Value) -> HookPhase {
        match c.evaluate(v, None) {
            Evaluation::Decided { phase, .. } => phase,
            other => panic!("not decided: {other:?}"),
        }
    }

    #[test]
    fn a_syntax_error_is_reported_at_compile_time() {
        let e = Expression::compile("result ==").unwrap_err();
        assert!(matches!(e, ExpressionError::Invalid(m) if !m.is_empty()));
    }
}
