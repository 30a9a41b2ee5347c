//! What a condition may cost: its size in bytes, how deeply it nests, and how much work its
//! evaluation can do. A HookTemplate is written by whoever may create one in a namespace, so
//! none of these may crash, stall or swell the operator:
//!
//! - [`CONDITION_MAX_BYTES`]: the text handed to the CEL parser is short;
//! - [`nesting`], checked *before* the parser sees the text: the parser, the evaluator and the
//!   drop of the syntax tree all recurse once per level, and the `cel` crate's own recursion
//!   limit does not cover left-recursive chains (`result.a.a.a...`, `x + 1 + 1 + ...`), so a
//!   6 KB chain overflowed the stack and aborted the process;
//! - [`estimate`]: kube-apiserver's idea, an upper bound of the work from the syntax tree, where
//!   a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) multiplies its body by
//!   the size of its range. At compile time the answer is assumed as large as the 1 MiB the
//!   providers read ([`ANSWER_MAX_BYTES`]); before each evaluation the real answer's largest
//!   list, map or string is used.

use cel::common::ast::{Expr, LiteralValue};
use cel::{IdedExpr, Value};

/// The condition variable holding the measured value: the one whose size is the answer's, so
/// its cost is estimated from [`Sizes`].
pub const RESULT: &str = "result";

/// The longest `successCondition` / `failureCondition`, in bytes (the CRD says 4096
/// characters). Real conditions are a line or two; a longer one is a list literal or a chain
/// written by a program.
pub const CONDITION_MAX_BYTES: usize = 4096;

/// The deepest a condition may nest, in the units [`nesting`] counts: 1 for each operator or
/// field selection (`.a`, `+`, `==`, `!`, `in`), [`BRACKET_UNITS`] for each `(`, `[` or `{`
/// (a call, an index, a list, a map, a parenthesis) and [`TERNARY_UNITS`] for each `? :`.
/// So at most 120 chained selections or operators, or 12 brackets inside each other.
///
/// Measured on a 256 KiB thread in the debug build (where frames are largest), compiling,
/// evaluating and dropping: 200 chained `.a` (400 overflow), 20 nested brackets or calls
/// (25 overflow), 50 nested ternaries (100 overflow). The limit keeps at least 1.6 times that
/// margin on 256 KiB, so tokio's 2 MiB workers and blocking threads have more than 12 times.
/// `condition::tests::the_deepest_accepted_conditions_run_on_a_small_stack` pins it.
pub const CONDITION_MAX_NESTING: u32 = 120;
/// Units of one bracket level: each costs the parser about ten times a chained operator.
pub const BRACKET_UNITS: u32 = 10;
/// Units of one `? :`: the else branch nests through the parser's whole rule chain.
pub const TERNARY_UNITS: u32 = 4;

/// The largest answer a provider hands the engine: the operator reads at most 1 MiB of a
/// response body (`RESPONSE_MAX_BYTES` in `crates/operator/src/hookruns/providers.rs`), so no
/// list, map or string in `result` holds more than this many elements or bytes (a JSON list
/// element takes at least 2 bytes, so lists hold at most half as many).
pub const ANSWER_MAX_BYTES: u64 = 1024 * 1024;
/// The longest list or map in an answer of [`ANSWER_MAX_BYTES`]: `[0,0,...]` spends 2 bytes
/// an element. A comprehension over the answer runs its body at most this many times.
const ANSWER_MAX_ELEMENTS: u64 = ANSWER_MAX_BYTES / 2;

/// The most an evaluation may cost, in the units of [`estimate`] (about one node of the
/// syntax tree evaluated once). kube-apiserver's static limit for a CRD rule is 10,000,000 too.
///
/// Measured in the debug test build, evaluating over the largest answer each condition is
/// accepted for (`condition::tests::an_evaluation_at_the_budget_is_quick`): 45 to 53 ns a
/// unit for the slowest shapes (`map`, nested `exists`), so an evaluation at the budget takes
/// about 0.5 s; `result.all(x, x >= 0)` over the 524,288 integers a 1 MiB answer can hold
/// (estimate 6.3 million) took 0.26 s. An optimized build is several times faster.
pub const COST_BUDGET: u64 = 10_000_000;

/// An upper bound of how deeply `text` nests once parsed, from its tokens alone (strings and
/// comments skipped as CEL's lexer skips them), so it is safe on any input. `Err` when a
/// string literal is malformed: the lexer would then read its contents as code, which this
/// scan cannot follow, and the parser would refuse the text anyway.
///
/// Within one bracket level the depth is at most the operators in one `&&`/`||` term (CEL
/// balances `&&` and `||` into a shallow tree and parses `!!!x` flat) plus the deepest
/// bracket in it; items separated by `,` are siblings; `? :` nest.
pub fn nesting(text: &str) -> Result<u32, String> {
    #[derive(Default)]
    struct Level {
        /// Operators in the current `&&`/`||` term.
        ops: u32,
        /// The deepest bracket in the current term.
        inner: u32,
        /// The deepest term of the current `,` item.
        term: u32,
        /// Nesting of `? :` in the current item.
        ternaries: u32,
        /// The deepest item.
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
    }
    let bytes = text.as_bytes();
    let mut levels = vec![Level::default()];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let open = levels.len();
        let level = levels
            .last_mut()
            .expect("the outermost level is never closed");
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
            // A call or an index is also a link of the chain it follows.
            b'(' | b'[' | b'{' => {
                level.ops = level.ops.saturating_add(1);
                levels.push(Level::default());
            }
            b')' | b']' | b'}' if open > 1 => {
                let mut closed = levels.pop().expect("more than one level");
                closed.end_item();
                let parent = levels.last_mut().expect("the outermost level remains");
                parent.inner = parent
                    .inner
                    .max(closed.deepest.saturating_add(BRACKET_UNITS));
            }
            b',' => level.end_item(),
            b'&' if next == Some(b'&') => {
                level.end_term();
                i += 2;
                continue;
            }
            b'|' if next == Some(b'|') => {
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
    // Brackets never closed count as closed at the end (the parser refuses the text anyway).
    while levels.len() > 1 {
        let mut closed = levels.pop().expect("more than one level");
        closed.end_item();
        let parent = levels.last_mut().expect("the outermost level remains");
        parent.inner = parent
            .inner
            .max(closed.deepest.saturating_add(BRACKET_UNITS));
    }
    let mut outer = levels.pop().expect("the outermost level");
    outer.end_item();
    Ok(outer.deepest)
}

/// The index just after the string literal opening at `bytes[start]` (a quote), following
/// CEL's lexer: `"..."` and `'...'` on one line with escapes, `"""..."""` and `'''...'''`
/// across lines, raw (`r` prefix) without escapes.
fn skip_string(bytes: &[u8], start: usize, raw: bool) -> Result<usize, String> {
    let quote = bytes[start];
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut i = start + if triple { 3 } else { 1 };
    let unterminated = || Err("a string literal is not closed".to_string());
    loop {
        let Some(&c) = bytes.get(i) else {
            return unterminated();
        };
        if triple && bytes.get(i..i + 3) == Some(&[quote, quote, quote][..]) {
            return Ok(i + 3);
        }
        if !triple && c == quote {
            return Ok(i + 1);
        }
        if !triple && (c == b'\n' || c == b'\r') {
            return unterminated();
        }
        if c == b'\\' && !raw {
            i += escape_len(&bytes[i..]).ok_or_else(|| {
                "a string literal has an invalid escape: use \\\\ for a backslash".to_string()
            })?;
            continue;
        }
        i += 1;
    }
}

/// The length of the escape sequence at the start of `s` (which starts with a backslash).
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

/// The size that bounds every list, map and string of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The size of `result`: its lists' and maps' elements and its strings' bytes together,
    /// which bounds the length of any list, map or string in it.
    pub result: u64,
    /// The longest list or map in `result`: how often a comprehension over it runs.
    pub longest: u64,
}

impl Sizes {
    /// Sizes assumed when the answer is not known yet: as large as a provider reads.
    pub const STATIC: Sizes = Sizes {
        result: ANSWER_MAX_BYTES,
        longest: ANSWER_MAX_ELEMENTS,
    };

    /// The real sizes of a measured value.
    pub fn of(result: &Value) -> Sizes {
        let (result, longest) = weight(result);
        Sizes {
            result: result.max(1),
            longest: longest.max(1),
        }
    }
}

/// The size of `v` (the elements of its lists and maps and the bytes of its strings and
/// keys, at any depth: it bounds the size of any part of `v`) and its longest list or map.
/// Recursion is bounded by serde_json's nesting limit of 128 for answers.
fn weight(v: &Value) -> (u64, u64) {
    let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let add =
        |(size, longest): (u64, u64), (s, l): (u64, u64)| (size.saturating_add(s), longest.max(l));
    match v {
        Value::String(s) => (len(s.len()), 0),
        Value::Bytes(b) => (len(b.len()), 0),
        Value::List(l) => l.iter().map(weight).fold((len(l.len()), len(l.len())), add),
        Value::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    cel::objects::Key::String(s) => len(s.len()),
                    _ => 0,
                };
                add(weight(v), (key, 0))
            })
            .fold((len(m.map.len()), len(m.map.len())), add),
        _ => (0, 0),
    }
}

/// A construct the interpreter cannot run (it would panic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// An upper bound of the work of evaluating `expr` when no list, map or string is larger than
/// `sizes` says, in interpreter steps. Recursion follows the tree, whose depth [`nesting`]
/// bounded before parsing.
pub fn estimate(expr: &IdedExpr, sizes: Sizes) -> Result<u64, Unsupported> {
    let mut scopes = Vec::new();
    Ok(cost_of(expr, sizes, &mut scopes)?.cost)
}

/// Cost and the size of the value (elements or bytes; 1 for a scalar).
#[derive(Debug, Clone, Copy)]
struct Est {
    cost: u64,
    size: u64,
    /// The longest list or map in the value.
    len: u64,
    /// Certainly a number, a bool or null: never concatenated or compared element by element.
    scalar: bool,
}

impl Est {
    fn scalar(cost: u64) -> Est {
        Est {
            cost,
            size: 1,
            len: 0,
            scalar: true,
        }
    }

    /// A value of `size` whose lists are no longer than `len`.
    fn sized(cost: u64, size: u64, len: u64) -> Est {
        Est {
            cost,
            size: size.max(1),
            len: len.min(size.max(1)),
            scalar: false,
        }
    }
}

/// What one iteration of a comprehension costs besides its body: binding the element and the
/// accumulator allocates, so a light body costs about four steps more than its nodes (measured:
/// `result.all(x, x >= 0)` took as long per node as the heaviest shapes only with this).
const ITERATION_STEPS: u64 = 4;

/// A comprehension's variables with their sizes and longest lists, innermost last.
type Scopes = Vec<(String, u64, u64)>;

// The functions below recurse once per level of the tree: each keeps its frame small (the
// arms with many locals are functions of their own), so the estimate needs less stack than
// the parser for the same depth.

fn cost_of(e: &IdedExpr, sizes: Sizes, scopes: &mut Scopes) -> Result<Est, Unsupported> {
    match &e.expr {
        Expr::Call(call) => call_cost(call, sizes, scopes),
        Expr::Comprehension(c) => comprehension_cost(c, sizes, scopes),
        Expr::Select(s) => {
            let operand = cost_of(&s.operand, sizes, scopes)?;
            Ok(Est::sized(
                operand.cost.saturating_add(1),
                operand.size,
                operand.len,
            ))
        }
        Expr::List(l) => list_cost(l, sizes, scopes),
        Expr::Map(m) => map_cost(m, sizes, scopes),
        other => leaf_cost(other, sizes, scopes),
    }
}

#[inline(never)]
fn leaf_cost(e: &Expr, sizes: Sizes, scopes: &Scopes) -> Result<Est, Unsupported> {
    let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Ok(match e {
        Expr::Literal(LiteralValue::String(s)) => Est::sized(1, len(s.inner().len()), 0),
        Expr::Literal(LiteralValue::Bytes(b)) => Est::sized(1, len(b.inner().len()), 0),
        Expr::Literal(_) => Est::scalar(1),
        Expr::Ident(name) => match scopes.iter().rev().find(|(n, _, _)| n == name) {
            Some((_, size, longest)) => Est::sized(1, *size, *longest),
            None if name == RESULT => Est::sized(1, sizes.result, sizes.longest),
            None => Est::scalar(1),
        },
        Expr::Struct(s) => {
            return Err(Unsupported(format!(
                "message construction {}{{...}} is not supported",
                s.type_name
            )));
        }
        _ => return Err(Unsupported("an empty expression".into())),
    })
}

#[inline(never)]
fn list_cost(
    l: &cel::common::ast::ListExpr,
    sizes: Sizes,
    scopes: &mut Scopes,
) -> Result<Est, Unsupported> {
    let n = l.elements.len() as u64;
    let (mut cost, mut size, mut longest) = (1u64, n, n);
    for el in &l.elements {
        let el = cost_of(el, sizes, scopes)?;
        cost = cost.saturating_add(el.cost).saturating_add(1);
        size = size.saturating_add(el.size);
        longest = longest.max(el.len);
    }
    Ok(Est::sized(cost, size, longest))
}

#[inline(never)]
fn map_cost(
    m: &cel::common::ast::MapExpr,
    sizes: Sizes,
    scopes: &mut Scopes,
) -> Result<Est, Unsupported> {
    let n = m.entries.len() as u64;
    let (mut cost, mut size, mut longest) = (1u64, n, n);
    for entry in &m.entries {
        let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr else {
            return Err(Unsupported("a struct field in a map".into()));
        };
        let k = cost_of(&me.key, sizes, scopes)?;
        let v = cost_of(&me.value, sizes, scopes)?;
        cost = cost.saturating_add(k.cost).saturating_add(v.cost);
        cost = cost.saturating_add(1);
        size = size.saturating_add(k.size).saturating_add(v.size);
        longest = longest.max(k.len).max(v.len);
    }
    Ok(Est::sized(cost, size, longest))
}

#[inline(never)]
fn call_cost(
    call: &cel::common::ast::CallExpr,
    sizes: Sizes,
    scopes: &mut Scopes,
) -> Result<Est, Unsupported> {
    use cel::common::ast::operators as op;
    // The operands' total cost and size, and the first two of them.
    let (mut cost, mut total) = (1u64, 0u64);
    let mut first = [Est::scalar(0), Est::scalar(0), Est::scalar(0)];
    let operands = call.target.as_deref().into_iter().chain(call.args.iter());
    for (i, operand) in operands.enumerate() {
        let o = cost_of(operand, sizes, scopes)?;
        cost = cost.saturating_add(o.cost);
        total = total.saturating_add(o.size);
        if let Some(slot) = first.get_mut(i) {
            *slot = o;
        }
    }
    let [a, b, c] = first;
    Ok(match call.func_name.as_str() {
        // A number added to anything is arithmetic; otherwise a list or string is copied.
        op::ADD if a.scalar || b.scalar => Est::scalar(cost),
        op::ADD => Est::sized(
            cost.saturating_add(total),
            total,
            a.len.saturating_add(b.len),
        ),
        op::EQUALS
        | op::NOT_EQUALS
        | op::LESS
        | op::LESS_EQUALS
        | op::GREATER
        | op::GREATER_EQUALS
        | "startsWith"
        | "endsWith" => Est::scalar(cost.saturating_add(a.size.min(b.size))),
        op::IN => Est::scalar(cost.saturating_add(b.size)),
        op::CONDITIONAL => Est::sized(cost, b.size.max(c.size), b.len.max(c.len)),
        op::INDEX | op::OPT_INDEX => Est::sized(cost, a.size, a.len),
        op::LOGICAL_AND
        | op::LOGICAL_OR
        | op::LOGICAL_NOT
        | op::NOT_STRICTLY_FALSE
        | op::NEGATE
        | op::SUBSTRACT
        | op::MULTIPLY
        | op::DIVIDE
        | op::MODULO
        | "size"
        | "len"
        | "isNaN" => Est::scalar(cost),
        // Conversions and the other functions read their operands once; `matches` compiles
        // its pattern, which the regex crate does in time linear in it.
        _ => Est::sized(cost.saturating_add(total), total, total),
    })
}

#[inline(never)]
fn comprehension_cost(
    c: &cel::common::ast::ComprehensionExpr,
    sizes: Sizes,
    scopes: &mut Scopes,
) -> Result<Est, Unsupported> {
    let range = cost_of(&c.iter_range, sizes, scopes)?;
    let init = cost_of(&c.accu_init, sizes, scopes)?;
    let n = range.len.max(1);
    // The body runs once per element of the longest list; one element may be as large as the
    // whole range; `map` and `filter` accumulate a list as long as the range (a `map` whose body builds larger values is underestimated by that
    // factor in what reads its result, never in its own iterations).
    let depth = scopes.len();
    scopes.push((c.iter_var.clone(), range.size, range.len));
    if let Some(v2) = &c.iter_var2 {
        scopes.push((v2.clone(), range.size, range.len));
    }
    let accu = n.max(init.size);
    scopes.push((c.accu_var.clone(), accu, accu));
    let body = cost_of(&c.loop_cond, sizes, scopes).and_then(|cond| {
        let step = cost_of(&c.loop_step, sizes, scopes)?;
        Ok(cond.cost.saturating_add(step.cost))
    });
    let result = cost_of(&c.result, sizes, scopes);
    scopes.truncate(depth);
    let (body, result) = (body?, result?);
    let cost = range
        .cost
        .saturating_add(init.cost)
        .saturating_add(n.saturating_mul(body.saturating_add(ITERATION_STEPS)))
        .saturating_add(result.cost);
    Ok(Est { cost, ..result })
}
