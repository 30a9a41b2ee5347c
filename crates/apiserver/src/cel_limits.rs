//! What a CEL expression may cost, for CRD `x-kubernetes-validations` rules and
//! ValidatingAdmissionPolicy expressions. Whoever may write a CRD or a policy must not be able
//! to crash this server or hold its store lock for seconds:
//!
//! - [`check_source`], before the parser sees the text: cel-go's limit of 100,000 code points
//!   (`ExpressionSizeCodePointLimit`), and a nesting bound from the tokens alone. The `cel`
//!   crate's parser, evaluator and the drop of its syntax tree recurse once per level, and its
//!   own recursion limit does not cover left-recursive chains (`a.a.a...`, `x + 1 + 1 ...`), so a
//!   100 KB rule overflowed the stack and aborted the process. cel-go has a recursion limit of
//!   its own (250), which this bound stands in for.
//! - [`estimate`], an upper bound of the work from the syntax tree, in cel-go's units (about
//!   one per node evaluated; a comprehension multiplies its body by the length of its range).
//!   kube-apiserver estimates a CRD rule when the CRD is written, from the schema's
//!   `maxItems`/`maxLength`/`maxProperties` ([`STATIC_ESTIMATED_COST_LIMIT`]), and counts the
//!   real cost while evaluating ([`PER_CALL_LIMIT`], [`RUNTIME_COST_BUDGET`]). Here the
//!   evaluator counts nothing, so the estimate is taken again against the real object just
//!   before evaluating, and an expression over the limit is not run at all.
//!
//! The approach is the one of `crates/core/src/hookrun/limits.rs` (the operator's hook
//! conditions), adapted: the API server may not depend on gamedeploy-core.

use kube_cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, ListExpr, LiteralValue, MapExpr, operators,
};
use kube_cel::cel::{IdedExpr, Program};
use serde_json::Value;

/// cel-go's default `ExpressionSizeCodePointLimit`, which kube-apiserver keeps.
const MAX_EXPRESSION_CODE_POINTS: usize = 100_000;
/// The deepest an expression may nest, in the units of [`nesting`] (1 per operator or field
/// selection, [`BRACKET_UNITS`] per bracket, [`TERNARY_UNITS`] per `? :`): cel-go's parser
/// refuses more than 250 levels of recursion. The `cel` crate's parser needs about 10 KiB of
/// stack per bracket level in a debug build (`hookrun/limits.rs` measured 25 brackets
/// overflowing 256 KiB), so 25 brackets need about 250 KiB of the 2 MiB a tokio worker or a
/// test thread has.
const MAX_NESTING: u32 = 250;
/// Units of one bracket level.
const BRACKET_UNITS: u32 = 10;
/// Units of one `? :`.
const TERNARY_UNITS: u32 = 4;

/// `celconfig.PerCallLimit`: the most one evaluation may cost.
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// `celconfig.RuntimeCELCostBudget`: the most all rules of one custom resource, or all
/// expressions of one policy binding, may cost together.
pub const RUNTIME_COST_BUDGET: u64 = 10_000_000;
/// `apiextensions validation.StaticEstimatedCostLimit`: the most one CRD rule may be estimated
/// to cost, times the number of times it runs in one object.
pub const STATIC_ESTIMATED_COST_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: the most all rules of a CRD schema may be estimated to cost.
pub const STATIC_ESTIMATED_CRD_COST_LIMIT: u64 = 100_000_000;
/// A CRD is refused for its estimated cost only past this many times kube's static limits.
/// These estimates are this server's, not cel-go's: near a limit they can land on the other
/// side of it than kube-apiserver's, and refusing what kube-apiserver accepts is the worse
/// error (it refused this project's own GameDeployment CRD at 2.3x and 3.4x). Rules that are
/// clearly unbounded, such as a comprehension nested over an unbounded list, still estimate far
/// past it; the run-time limits bound everything else.
pub const STATIC_REFUSAL_MARGIN: u64 = 100;
/// `celconfig.MaxRequestSizeBytes`: what bounds a list, map or string without a declared bound.
const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;

/// cel-go's runtime error when an evaluation passes [`PER_CALL_LIMIT`].
pub const COST_LIMIT_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";
/// kube-apiserver's error when the runtime budget is spent.
pub const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// A parse error in cel-go's `issues.String()` form, for errors without a location.
fn issue(msg: &str) -> String {
    format!("ERROR: <input>:-1:0: {msg}")
}

/// The checks that must pass before the text reaches the parser.
pub fn check_source(text: &str) -> Result<(), String> {
    let size = text.chars().count();
    if size > MAX_EXPRESSION_CODE_POINTS {
        return Err(issue(&format!(
            "expression code point size exceeds limit: size: {size}, limit {MAX_EXPRESSION_CODE_POINTS}"
        )));
    }
    match nesting(text) {
        Ok(depth) if depth > MAX_NESTING => Err(issue("max recursion depth exceeded")),
        Ok(_) => Ok(()),
        // A malformed string literal is refused here, not left to the parser: its lexer would
        // go on to read the literal's contents as code, whose depth this scan never counted.
        Err(why) => Err(issue(&format!("Syntax error: {why}"))),
    }
}

/// Parse an expression after [`check_source`]; the error is the compile error's detail.
pub fn compile(text: &str) -> Result<Program, String> {
    check_source(text)?;
    let program = Program::compile(text).map_err(|e| e.to_string())?;
    supported(program.expression())?;
    Ok(program)
}

/// Message construction (`Foo{...}`) makes the `cel` crate's interpreter panic, which would
/// poison the store's lock: it is refused as a compile error.
fn supported(e: &IdedExpr) -> Result<(), String> {
    match &e.expr {
        Expr::Struct(s) => Err(issue(&format!(
            "message construction {}{{...}} is not supported",
            s.type_name
        ))),
        Expr::Call(c) => c
            .target
            .as_deref()
            .into_iter()
            .chain(c.args.iter())
            .try_for_each(supported),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .try_for_each(supported),
        Expr::Select(s) => supported(&s.operand),
        Expr::List(l) => l.elements.iter().try_for_each(supported),
        Expr::Map(m) => m.entries.iter().try_for_each(|en| match &en.expr {
            EntryExpr::MapEntry(me) => supported(&me.key).and(supported(&me.value)),
            EntryExpr::StructField(_) => Err(issue("a struct field in a map")),
        }),
        _ => Ok(()),
    }
}

/// kube's `getCostErrorMessage`.
pub fn cost_error_message(cost_name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{cost_name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// An upper bound of how deeply `text` nests once parsed, from its tokens alone (strings and
/// comments skipped as CEL's lexer skips them). `Err` when a string literal is malformed.
/// Within one bracket level the depth is at most the operators in one `&&`/`||` term plus the
/// deepest bracket in it; items separated by `,` are siblings; `? :` nest.
pub fn nesting(text: &str) -> Result<u32, String> {
    #[derive(Default)]
    struct Level {
        ops: u32,
        inner: u32,
        term: u32,
        ternaries: u32,
        deepest: u32,
    }
    impl Level {
        fn end_term(&mut self) {
            self.term = self.term.max(self.ops.saturating_add(self.inner));
            self.ops = 0;
            self.inner = 0;
        }
        fn end_item(&mut self) {
            self.end_term();
            self.deepest = self.deepest.max(self.term.saturating_add(self.ternaries));
            self.term = 0;
            self.ternaries = 0;
        }
        fn close_into(mut self, parent: &mut Level) {
            self.end_item();
            parent.inner = parent.inner.max(self.deepest.saturating_add(BRACKET_UNITS));
        }
    }
    let bytes = text.as_bytes();
    let mut levels = vec![Level::default()];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let open = levels.len();
        let level = levels.last_mut().expect("the outermost level stays");
        match c {
            b'"' | b'\'' => {
                i = skip_string(bytes, i, false)?;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                let quote = matches!(bytes.get(i), Some(b'"' | b'\''));
                let prefix = matches!(word, "r" | "R" | "b" | "B" | "br" | "bR" | "Br" | "BR");
                if quote && prefix {
                    i = skip_string(bytes, i, word.contains(['r', 'R']))?;
                } else if word == "in" {
                    level.ops = level.ops.saturating_add(1);
                }
                continue;
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                level.ops = level.ops.saturating_add(1);
                levels.push(Level::default());
            }
            b')' | b']' | b'}' if open > 1 => {
                let closed = levels.pop().expect("more than one level");
                closed.close_into(levels.last_mut().expect("the outermost level stays"));
            }
            b',' => level.end_item(),
            b'&' | b'|' if next == Some(c) => {
                level.end_term();
                i += 2;
                continue;
            }
            b'?' => level.ternaries = level.ternaries.saturating_add(TERNARY_UNITS),
            b'=' | b'!' | b'<' | b'>' if next == Some(b'=') => {
                level.ops = level.ops.saturating_add(1);
                i += 2;
                continue;
            }
            b'.' | b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'=' => {
                level.ops = level.ops.saturating_add(1)
            }
            _ => {}
        }
        i += 1;
    }
    while levels.len() > 1 {
        let closed = levels.pop().expect("more than one level");
        closed.close_into(levels.last_mut().expect("the outermost level stays"));
    }
    let mut outer = levels.pop().expect("the outermost level");
    outer.end_item();
    Ok(outer.deepest)
}

/// The index just after the string literal opening at `bytes[start]`, as CEL's lexer reads it.
fn skip_string(bytes: &[u8], start: usize, raw: bool) -> Result<usize, String> {
    let quote = bytes[start];
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut i = start + if triple { 3 } else { 1 };
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err("a string literal is not closed".into());
        };
        if triple && bytes.get(i..i + 3) == Some(&[quote, quote, quote][..]) {
            return Ok(i + 3);
        }
        if !triple && c == quote {
            return Ok(i + 1);
        }
        if !triple && (c == b'\n' || c == b'\r') {
            return Err("a string literal is not closed".into());
        }
        if c == b'\\' && !raw {
            i += escape_len(&bytes[i..])
                .ok_or_else(|| "a string literal has an invalid escape".to_string())?;
            continue;
        }
        i += 1;
    }
}

/// The length of the escape sequence at the start of `s` (which starts with a backslash), as
/// CEL's lexer accepts it; `None` for one it refuses.
fn escape_len(s: &[u8]) -> Option<usize> {
    let hex =
        |n: usize| (s.len() > n && s[2..=n].iter().all(u8::is_ascii_hexdigit)).then_some(n + 1);
    match s.get(1)? {
        b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'"' | b'\'' | b'\\' | b'?' | b'`' => {
            Some(2)
        }
        b'0'..=b'3' => {
            (s.len() > 3 && s[2..4].iter().all(|d| (b'0'..=b'7').contains(d))).then_some(4)
        }
        b'x' | b'X' => hex(3),
        b'u' => hex(5),
        b'U' => hex(9),
        _ => None,
    }
}

/// The bound of every list, map and string an evaluation sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Elements of lists and maps and bytes of strings and keys, at any depth: it bounds the
    /// size of any part of the data.
    pub size: u64,
    /// The longest list or map: how often a comprehension over it runs.
    pub longest: u64,
}

impl Sizes {
    pub const EMPTY: Sizes = Sizes {
        size: 1,
        longest: 1,
    };

    /// The real sizes of a JSON value.
    pub fn of_json(v: &Value) -> Sizes {
        let (size, longest) = weight_json(v);
        Sizes {
            size: size.max(1),
            longest: longest.max(1),
        }
    }

    /// The real sizes of a CEL value (a policy's `variables`).
    pub fn of_cel(v: &kube_cel::cel::Value) -> Sizes {
        let (size, longest) = weight_cel(v);
        Sizes {
            size: size.max(1),
            longest: longest.max(1),
        }
    }

    /// Sizes bounding both.
    pub fn and(self, other: Sizes) -> Sizes {
        Sizes {
            size: self.size.saturating_add(other.size),
            longest: self.longest.max(other.longest),
        }
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn add((s, l): (u64, u64), (s2, l2): (u64, u64)) -> (u64, u64) {
    (s.saturating_add(s2), l.max(l2))
}

/// Recursion is bounded by serde_json's nesting limit of 128 for request bodies.
fn weight_json(v: &Value) -> (u64, u64) {
    match v {
        Value::String(s) => (len(s.len()), 0),
        Value::Array(a) => a
            .iter()
            .map(weight_json)
            .fold((len(a.len()), len(a.len())), add),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| add(weight_json(v), (len(k.len()), 0)))
            .fold((len(m.len()), len(m.len())), add),
        _ => (0, 0),
    }
}

fn weight_cel(v: &kube_cel::cel::Value) -> (u64, u64) {
    use kube_cel::cel::Value as V;
    match v {
        V::String(s) => (len(s.len()), 0),
        V::Bytes(b) => (len(b.len()), 0),
        V::List(l) => l
            .iter()
            .map(weight_cel)
            .fold((len(l.len()), len(l.len())), add),
        V::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    kube_cel::cel::objects::Key::String(s) => len(s.len()),
                    _ => 0,
                };
                add(weight_cel(v), (key, 0))
            })
            .fold((len(m.map.len()), len(m.map.len())), add),
        _ => (0, 0),
    }
}

/// An upper bound of the cost of evaluating `expr` when no variable's data is larger than
/// `sizes`. Recursion follows the tree, whose depth [`check_source`] bounded.
#[cfg(test)]
pub fn estimate(expr: &IdedExpr, sizes: Sizes) -> u64 {
    estimate_with(expr, sizes, &[])
}

/// What is known of a variable's data, so that a field selection is as large as the field
/// rather than as all the data.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// Its schema (a CRD rule's `self`, when the CRD is written).
    Schema(&'a Value),
    /// The data itself (before an evaluation).
    Json(&'a Value),
}

impl<'a> Data<'a> {
    fn field(self, name: &str) -> Option<Data<'a>> {
        match self {
            Data::Schema(s) => s
                .get("properties")
                .and_then(|p| p.get(name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                .map(Data::Schema),
            Data::Json(v) => v.get(name).map(Data::Json),
        }
    }

    /// The elements of a list, when they share one description (a comprehension's variable).
    fn element(self) -> Option<Data<'a>> {
        match self {
            Data::Schema(s) => s.get("items").map(Data::Schema),
            Data::Json(_) => None,
        }
    }

    /// What an index reaches: an element of a list or a value of a map.
    fn indexed(self) -> Option<Data<'a>> {
        match self {
            Data::Schema(s) => s
                .get("items")
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                .map(Data::Schema),
            Data::Json(_) => None,
        }
    }
}

/// [`estimate`], with what is known of some variables' data: `self`'s schema, or `object`
/// itself. Selections of their fields are as large as those fields; the rest is bounded by
/// `sizes`.
pub fn estimate_with(expr: &IdedExpr, sizes: Sizes, known: &[(&str, Data<'_>)]) -> u64 {
    let env = Env {
        sizes,
        cache: Default::default(),
    };
    let mut scopes: Scopes = known
        .iter()
        .map(|(name, data)| {
            let s = env.sizes_of(*data);
            (name.to_string(), s.size, s.longest, false, Some(*data))
        })
        .collect();
    cost_of(expr, &env, &mut scopes).cost
}

struct Env {
    sizes: Sizes,
    /// Sizes of data already measured, so that each part of an object is measured once.
    cache: std::cell::RefCell<std::collections::HashMap<*const Value, Sizes>>,
}

impl Env {
    fn sizes_of(&self, data: Data<'_>) -> Sizes {
        match data {
            Data::Schema(s) => schema_sizes(s),
            Data::Json(v) => *self
                .cache
                .borrow_mut()
                .entry(v as *const Value)
                .or_insert_with(|| Sizes::of_json(v)),
        }
    }
}

/// Cost and the size of the value (elements or bytes; 1 for a scalar).
#[derive(Debug, Clone, Copy)]
struct Est<'a> {
    cost: u64,
    size: u64,
    len: u64,
    scalar: bool,
    /// A list whose elements are certainly scalars (a literal of numbers).
    scalar_elements: bool,
    data: Option<Data<'a>>,
}

impl<'a> Est<'a> {
    fn scalar(cost: u64) -> Est<'a> {
        Est {
            cost,
            size: 1,
            len: 0,
            scalar: true,
            scalar_elements: false,
            data: None,
        }
    }
    fn sized(cost: u64, size: u64, len: u64) -> Est<'a> {
        Est {
            cost,
            size: size.max(1),
            len: len.min(size.max(1)),
            scalar: false,
            scalar_elements: false,
            data: None,
        }
    }
    fn of(cost: u64, data: Data<'a>, env: &Env) -> Est<'a> {
        let s = env.sizes_of(data);
        let scalar = match data {
            Data::Schema(sc) => matches!(
                sc.get("type").and_then(Value::as_str),
                Some("integer" | "number" | "boolean")
            ),
            Data::Json(v) => v.is_number() || v.is_boolean() || v.is_null(),
        };
        if scalar {
            return Est::scalar(cost);
        }
        Est {
            data: Some(data),
            ..Est::sized(cost, s.size, s.longest)
        }
    }
}

/// cel-go's `StringTraversalCostFactor`: comparing strings costs 0.1 a byte.
fn traversal(size: u64) -> u64 {
    size.div_ceil(10)
}

/// A comprehension's (or a known) variable: its size, longest list, whether it is certainly
/// a scalar, and what is known of its data; innermost last.
type Scopes<'a> = Vec<(String, u64, u64, bool, Option<Data<'a>>)>;

fn cost_of<'a>(e: &IdedExpr, env: &Env, scopes: &mut Scopes<'a>) -> Est<'a> {
    match &e.expr {
        Expr::Call(call) => call_cost(call, env, scopes),
        Expr::Comprehension(c) => comprehension_cost(c, env, scopes),
        Expr::Select(s) => {
            let operand = cost_of(&s.operand, env, scopes);
            let cost = operand.cost.saturating_add(1);
            match operand.data.and_then(|d| d.field(&s.field)) {
                Some(child) => Est::of(cost, child, env),
                None => Est::sized(cost, operand.size, operand.len),
            }
        }
        Expr::List(l) => list_cost(l, env, scopes),
        Expr::Map(m) => map_cost(m, env, scopes),
        other => leaf_cost(other, env, scopes),
    }
}

#[inline(never)]
fn leaf_cost<'a>(e: &Expr, env: &Env, scopes: &Scopes<'a>) -> Est<'a> {
    match e {
        Expr::Literal(LiteralValue::String(s)) => Est::sized(1, len(s.inner().len()), 0),
        Expr::Literal(LiteralValue::Bytes(b)) => Est::sized(1, len(b.inner().len()), 0),
        Expr::Literal(_) => Est::scalar(1),
        // A comprehension's variable, else one of the evaluation's: as large as all its data.
        Expr::Ident(name) => match scopes.iter().rev().find(|(n, ..)| n == name) {
            Some((.., true, _)) => Est::scalar(1),
            Some((_, _, _, _, Some(data))) => Est::of(1, *data, env),
            Some((_, size, longest, ..)) => Est::sized(1, *size, *longest),
            None => Est::sized(1, env.sizes.size, env.sizes.longest),
        },
        _ => Est::scalar(1),
    }
}

#[inline(never)]
fn list_cost<'a>(l: &ListExpr, env: &Env, scopes: &mut Scopes<'a>) -> Est<'a> {
    let n = len(l.elements.len());
    let (mut cost, mut size, mut longest, mut scalars) = (1u64, n, n, true);
    for el in &l.elements {
        let el = cost_of(el, env, scopes);
        cost = cost.saturating_add(el.cost);
        size = size.saturating_add(el.size);
        longest = longest.max(el.len);
        scalars &= el.scalar;
    }
    Est {
        scalar_elements: scalars,
        ..Est::sized(cost, size, longest)
    }
}

#[inline(never)]
fn map_cost<'a>(m: &MapExpr, env: &Env, scopes: &mut Scopes<'a>) -> Est<'a> {
    let n = len(m.entries.len());
    let (mut cost, mut size, mut longest) = (1u64, n, n);
    for entry in &m.entries {
        if let EntryExpr::MapEntry(me) = &entry.expr {
            let k = cost_of(&me.key, env, scopes);
            let v = cost_of(&me.value, env, scopes);
            cost = cost.saturating_add(k.cost).saturating_add(v.cost);
            size = size.saturating_add(k.size).saturating_add(v.size);
            longest = longest.max(k.len).max(v.len);
        }
    }
    Est::sized(cost, size, longest)
}

#[inline(never)]
fn call_cost<'a>(call: &CallExpr, env: &Env, scopes: &mut Scopes<'a>) -> Est<'a> {
    let (mut cost, mut total) = (1u64, 0u64);
    let mut first = [Est::scalar(0), Est::scalar(0), Est::scalar(0)];
    let operands = call.target.as_deref().into_iter().chain(call.args.iter());
    for (i, operand) in operands.enumerate() {
        let o = cost_of(operand, env, scopes);
        cost = cost.saturating_add(o.cost);
        total = total.saturating_add(o.size);
        if let Some(slot) = first.get_mut(i) {
            *slot = o;
        }
    }
    let [a, b, c] = first;
    match call.func_name.as_str() {
        operators::ADD if a.scalar || b.scalar => Est::scalar(cost),
        operators::ADD => Est::sized(
            cost.saturating_add(traversal(total)),
            total,
            a.len.saturating_add(b.len),
        ),
        operators::EQUALS
        | operators::NOT_EQUALS
        | operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS
        | "startsWith"
        | "endsWith" => Est::scalar(cost.saturating_add(traversal(a.size.min(b.size)))),
        operators::IN => Est::scalar(cost.saturating_add(b.len.max(traversal(b.size)))),
        operators::CONDITIONAL => Est::sized(cost, b.size.max(c.size), b.len.max(c.len)),
        operators::INDEX | operators::OPT_INDEX => match a.data.and_then(Data::indexed) {
            Some(el) => Est::of(cost, el, env),
            None => Est::sized(cost, a.size, a.len),
        },
        operators::LOGICAL_AND
        | operators::LOGICAL_OR
        | operators::LOGICAL_NOT
        | operators::NOT_STRICTLY_FALSE
        | operators::NEGATE
        | operators::SUBSTRACT
        | operators::MULTIPLY
        | operators::DIVIDE
        | operators::MODULO
        | "size"
        | "has"
        | "isNaN" => Est::scalar(cost),
        // Conversions and the other functions read their operands once.
        _ => Est::sized(cost.saturating_add(traversal(total)), total, total),
    }
}

#[inline(never)]
fn comprehension_cost<'a>(c: &ComprehensionExpr, env: &Env, scopes: &mut Scopes<'a>) -> Est<'a> {
    let range = cost_of(&c.iter_range, env, scopes);
    let init = cost_of(&c.accu_init, env, scopes);
    let n = range.len.max(1);
    let depth = scopes.len();
    let element = range.data.and_then(Data::element);
    scopes.push((
        c.iter_var.clone(),
        range.size,
        range.len,
        range.scalar_elements,
        element,
    ));
    if let Some(v2) = &c.iter_var2 {
        scopes.push((
            v2.clone(),
            range.size,
            range.len,
            range.scalar_elements,
            element,
        ));
    }
    let accu = n.max(init.size);
    scopes.push((c.accu_var.clone(), accu, accu, init.scalar, None));
    let cond = cost_of(&c.loop_cond, env, scopes);
    let step = cost_of(&c.loop_step, env, scopes);
    let result = cost_of(&c.result, env, scopes);
    scopes.truncate(depth);
    let body = cond.cost.saturating_add(step.cost);
    let cost = range
        .cost
        .saturating_add(init.cost)
        .saturating_add(n.saturating_mul(body))
        .saturating_add(result.cost);
    Est { cost, ..result }
}

/// The largest data a schema node admits, as kube-apiserver bounds it for its estimate: the
/// declared `maxLength`/`maxItems`/`maxProperties`, else what fits in a 3 MiB request.
pub fn schema_sizes(schema: &Value) -> Sizes {
    let (size, longest) = schema_weight(schema, 0);
    Sizes {
        size: size.clamp(1, MAX_REQUEST_SIZE_BYTES),
        longest: longest.clamp(1, MAX_REQUEST_SIZE_BYTES),
    }
}

/// How many values a list or map node may hold: its bound, else as many of its smallest
/// elements (plus a separator) as fit in a request.
pub fn schema_max_len(schema: &Value) -> u64 {
    let declared = |k: &str| schema.get(k).and_then(Value::as_u64);
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => declared("maxItems").unwrap_or_else(|| {
            MAX_REQUEST_SIZE_BYTES / (min_size(schema.get("items")).saturating_add(1))
        }),
        _ => declared("maxProperties").unwrap_or_else(|| {
            // `"k":v,` at its smallest: two quotes, a colon, a comma, the value.
            MAX_REQUEST_SIZE_BYTES / (min_size(schema.get("additionalProperties")) + 4)
        }),
    }
}

/// The fewest bytes a value of this schema takes in JSON (kube's `MinStringSize` etc.).
fn min_size(schema: Option<&Value>) -> u64 {
    match schema.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("string") => 2,
        Some("boolean") => 4,
        Some("integer" | "number") => 1,
        _ => 2,
    }
}

fn schema_weight(schema: &Value, depth: u32) -> (u64, u64) {
    const MAX: u64 = MAX_REQUEST_SIZE_BYTES;
    if depth > 64 {
        return (MAX, MAX);
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        || schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true);
    let cap = |(s, l): (u64, u64)| (s.min(MAX), l.min(MAX));
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => (
            schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .unwrap_or(MAX),
            0,
        ),
        Some("integer" | "number" | "boolean") => (1, 0),
        Some("array") => {
            let n = schema_max_len(schema);
            let item = schema
                .get("items")
                .map(|i| schema_weight(i, depth + 1))
                .unwrap_or((MAX, MAX));
            cap((n.saturating_add(n.saturating_mul(item.0)), n.max(item.1)))
        }
        Some("object") if !preserve => {
            let props = schema.get("properties").and_then(Value::as_object);
            let mut w = props.map_or((0, 0), |p| (len(p.len()), len(p.len())));
            for (k, sub) in props.into_iter().flatten() {
                w = add(w, add(schema_weight(sub, depth + 1), (len(k.len()), 0)));
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let n = schema_max_len(schema);
                let v = schema_weight(extra, depth + 1);
                w = add(
                    w,
                    (
                        n.saturating_add(n.saturating_mul(v.0.saturating_add(1))),
                        n.max(v.1),
                    ),
                );
            }
            cap(w)
        }
        _ => (MAX, MAX / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(text: &str, sizes: Sizes) -> u64 {
        estimate(compile(text).unwrap().expression(), sizes)
    }

    #[test]
    fn oversized_and_deep_expressions_never_reach_the_parser() {
        let long = format!("self.a == '{}'", "x".repeat(MAX_EXPRESSION_CODE_POINTS));
        let e = check_source(&long).unwrap_err();
        assert!(
            e.contains("expression code point size exceeds limit"),
            "{e}"
        );
        let chain = format!("self{}", ".a".repeat(20_000));
        assert!(
            check_source(&chain)
                .unwrap_err()
                .contains("max recursion depth")
        );
        let brackets = format!("{}1{}", "(".repeat(30), ")".repeat(30));
        assert!(check_source(&brackets).is_err());
        // What kube accepts and people write still parses.
        let nested = format!("{}1{}", "(".repeat(20), ")".repeat(20));
        assert!(compile(&nested).is_ok());
        assert!(compile(&format!("self{}", ".a".repeat(200))).is_ok());
        // A malformed string literal is refused before parsing: the lexer would read what
        // follows its bad escape or missing quote as code, a chain the scan never counted.
        for text in [
            format!("self.a == \"\\q{}\"", ".a".repeat(40_000)),
            format!("self.a == \"{}", ".a".repeat(40_000)),
        ] {
            let e = check_source(&text).unwrap_err();
            assert!(e.contains("Syntax error"), "{e}");
        }
        assert!(compile(r#"self.a == "tab\there \u00e9 \x41 \101""#).is_ok());
    }

    #[test]
    fn the_deepest_accepted_expressions_run_on_a_small_stack() {
        // Half of the 2 MiB a tokio worker or test thread has.
        let texts = [
            format!("{}1{} == 1", "(".repeat(22), ")".repeat(22)),
            format!("self{} == 1", ".a".repeat(240)),
            format!("{} 1 == 1", "1 + ".repeat(240)),
        ];
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                for t in texts {
                    assert!(check_source(&t).is_ok(), "{t}");
                    let p = compile(&t).unwrap();
                    let _ = estimate(p.expression(), Sizes::EMPTY);
                    let mut ctx = kube_cel::cel::Context::default();
                    ctx.add_variable_from_value("self", kube_cel::cel::Value::Null);
                    let _ = p.execute(&ctx);
                    drop(p);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn nested_comprehensions_multiply() {
        let list = format!(
            "[{}]",
            (0..400)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let cubed = format!("{list}.all(x, {list}.all(y, {list}.all(z, x + y + z >= 0)))");
        assert!(cost(&cubed, Sizes::EMPTY) > 64_000_000);
        assert!(
            cost(
                "object.metadata.name == 'x'",
                Sizes::of_json(&serde_json::json!({}))
            ) < 10
        );
        let items = Sizes {
            size: 3000,
            longest: 1000,
        };
        let c = cost("self.items.all(i, i.name != '')", items);
        assert!((1000..20_000).contains(&c), "{c}");
    }

    #[test]
    fn schema_bounds() {
        let bounded = serde_json::json!({"type": "array", "maxItems": 10,
            "items": {"type": "string", "maxLength": 5}});
        assert_eq!(schema_sizes(&bounded).longest, 10);
        assert_eq!(schema_sizes(&bounded).size, 60);
        let unbounded = serde_json::json!({"type": "array", "items": {"type": "string"}});
        assert_eq!(schema_max_len(&unbounded), MAX_REQUEST_SIZE_BYTES / 3);
    }

    #[test]
    fn cost_messages_read_as_kubes() {
        assert!(
            cost_error_message("estimated rule cost", 2_000_000_000, 10_000_000)
                .starts_with("estimated rule cost exceeds budget by factor of more than 100x (try")
        );
        assert!(cost_error_message("x", 25, 10).contains("factor of 2.5x"));
        assert!(cost_error_message("x", 12, 10).contains("factor of 1.200000x"));
    }
}
