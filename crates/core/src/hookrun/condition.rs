//! `successCondition` / `failureCondition`: CEL over `result`, compiled once when a template or
//! run is checked, evaluated per measurement. The original's `expr` helpers (`asInt`,
//! `asFloat`, `len`) and Argo's `isNaN` are registered, so its simple expressions keep working.

use std::collections::HashMap;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, FunctionContext, Program, ResolveResult, Value};

use super::limits::{self, CONDITION_MAX_BYTES, CONDITION_MAX_NESTING, COST_BUDGET, RESULT, Sizes};
use crate::api::HookPhase;

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
mod tests;
