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

/// The budget bounds the work by the estimate, not by a clock: in shapes whose real work is
/// close to their estimate, the largest answer within the budget is evaluated, and one four
/// times larger is refused before it runs (a wall-time bound failed on a loaded machine).
#[test]
fn an_evaluation_at_the_budget_runs_and_past_it_is_refused() {
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
        if let Evaluation::Error(m) = c.evaluate(answer(n), None) {
            panic!("{text}: {n} elements are within the budget: {m}");
        }
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
