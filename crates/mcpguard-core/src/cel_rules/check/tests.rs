//! Hostile sources (long, deeply nested, a run of `!`) are refused at load with a clear
//! error, whatever stack the caller has, and what is accepted evaluates on a worker's stack.

use pretty_assertions::assert_eq;

use super::*;
use crate::cel_rules::tests::{compile_outcome, create, rule, rules, team_pod};
use crate::violation::Violation;

fn compile_error(expression: &str) -> String {
    compile_outcome(vec![rule("r", expression)])
}

const TOO_DEEP: &str = "spec.validate.rules[0].expression: expression is nested more than 128 levels deep, the limit (each operator, field selection, index and call is a level)";
const TOO_MANY_BRACKETS: &str = "spec.validate.rules[0].expression: expression nests more than 96 levels of brackets, the parser's limit";

#[test]
fn the_length_limit_counts_characters_and_is_checked_before_parsing() {
    // An unterminated string: the parser would report it; the length comes first.
    let over = format!("'{}", "é".repeat(MAX_EXPRESSION_CHARS));
    assert_eq!(
        compile_error(&over),
        "spec.validate.rules[0].expression: expression is 100001 characters long, more than the limit of 100000"
    );
    let at_limit = format!("'{}' != ''", "é".repeat(MAX_EXPRESSION_CHARS - 8));
    assert_eq!(at_limit.chars().count(), MAX_EXPRESSION_CHARS);
    assert_eq!(compile_error(&at_limit), "compiles");
}

/// Each shape at the deepest nesting accepted and one level more: `(shape, accepted, refused)`.
fn shapes_at_the_depth_limit() -> Vec<(&'static str, String, String)> {
    let sum = |terms: usize| format!("1{} > 0", "+1".repeat(terms - 1));
    let selects = |n: usize| format!("object{} == 1", ".a".repeat(n));
    let indexes = |n: usize| format!("object{} == 1", "[0]".repeat(n));
    let calls = |n: usize| format!("'a'{} == 'a'", ".lowerAscii()".repeat(n));
    // Depth counts the tree: `a + b` is a call over its operands, `x == 1` one level more.
    vec![
        ("sum", sum(127), sum(128)),
        ("selects", selects(126), selects(127)),
        ("indexes", indexes(126), indexes(127)),
        ("calls", calls(126), calls(127)),
    ]
}

#[test]
fn nesting_is_bounded_in_every_shape_not_only_in_brackets() {
    for (shape, accepted, refused) in shapes_at_the_depth_limit() {
        assert_eq!(compile_error(&accepted), "compiles", "{shape}");
        assert_eq!(compile_error(&refused), TOO_DEEP, "{shape}");
    }
    // `&&` and `||` chains are balanced by the parser: 5,000 terms are 14 levels deep.
    let ands = format!("{}true", "object.a == 1 && ".repeat(5_000));
    assert_eq!(compile_error(&ands), "compiles");
}

/// tokio's default worker stack (`thread_stack_size`): where the webhook evaluates rules.
const WORKER_STACK: usize = 2 * 1024 * 1024;

#[test]
fn the_deepest_accepted_rules_evaluate_and_drop_on_a_worker_sized_stack() {
    let on_small_stack = std::thread::Builder::new()
        .stack_size(WORKER_STACK / 2)
        .spawn(|| {
            for (shape, accepted, _) in shapes_at_the_depth_limit() {
                let compiled = rules(vec![rule("deep", &accepted)]);
                let violations = compiled.evaluate(&team_pod(), &create());
                assert!(violations.len() <= 1, "{shape}: {violations:?}");
                drop(compiled);
            }
        })
        .expect("thread starts");
    on_small_stack
        .join()
        .expect("evaluation fits half a worker's stack");
}

const REPEATED_NOT: &str = "spec.validate.rules[0].expression: a run of `!` (`!!x`) is refused: the CEL library mcpguard uses reads it as a single `!`, so the rule would be judged inverted; write `x`, or `!(!x)`";

/// The hostile sources of the issue, each at the length that crashed and at the longest
/// length allowed: `(shape, source, what the loader says)`.
fn hostile_sources() -> Vec<(String, String, &'static str)> {
    let max = MAX_EXPRESSION_CHARS;
    let sum = |terms: usize| format!("1{} > 0", "+1".repeat(terms - 1));
    let selects = |n: usize| format!("object{} == 1", ".a".repeat(n));
    let indexes = |n: usize| format!("object{} == 1", "[0]".repeat(n));
    let lists = |n: usize| format!("{}1{} == []", "[".repeat(n), "]".repeat(n));
    let nots = |n: usize| format!("{}true", "!".repeat(n));
    let negations = |n: usize| format!("{}1{} == 1", "-(".repeat(n), ")".repeat(n));
    vec![
        ("sum 8000".into(), sum(8_000), TOO_DEEP),
        ("sum max".into(), sum((max - 3) / 2), TOO_DEEP),
        ("selects 8000".into(), selects(8_000), TOO_DEEP),
        ("selects max".into(), selects((max - 11) / 2), TOO_DEEP),
        ("indexes 5000".into(), indexes(5_000), TOO_DEEP),
        ("indexes max".into(), indexes((max - 11) / 3), TOO_DEEP),
        ("lists 5000".into(), lists(5_000), TOO_MANY_BRACKETS),
        ("lists max".into(), lists((max - 7) / 2), TOO_MANY_BRACKETS),
        ("negations 5000".into(), negations(5_000), TOO_MANY_BRACKETS),
        (
            "negations max".into(),
            negations((max - 6) / 3),
            TOO_MANY_BRACKETS,
        ),
        (
            "comparisons max".into(),
            format!("1{}", "<1".repeat((max - 1) / 2)),
            TOO_DEEP,
        ),
        // `!!...!x` parses flat (one operator, many tokens), and a run of `!` is refused.
        ("nots max".into(), nots(max - 4), REPEATED_NOT),
    ]
}

#[test]
fn hostile_sources_are_refused_whatever_stack_the_caller_has() {
    in_child_process("cel_rules::check::tests::hostile_sources_compile_from_a_small_stack");
}

/// Compiles every hostile source from a thread with a 256 KiB stack: the parser must not run
/// on the caller's stack. Before it had its own, the first of them aborted the process, so
/// this runs in a child process ([`in_child_process`]).
#[test]
#[ignore = "run in a child process by hostile_sources_are_refused_whatever_stack_the_caller_has"]
fn hostile_sources_compile_from_a_small_stack() {
    let caller = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for (shape, source, expected) in hostile_sources() {
                assert!(source.chars().count() <= MAX_EXPRESSION_CHARS, "{shape}");
                assert_eq!(compile_error(&source), expected, "{shape}");
            }
        })
        .expect("thread starts");
    caller.join().expect("every hostile source is answered");
}

/// Runs the ignored test `name` of this test binary in a child process and fails, with the
/// child's output, unless it passed: a stack overflow aborts the child, not this run. Only a
/// test harness starts a process; the core itself never does.
#[allow(clippy::disallowed_methods)]
fn in_child_process(name: &str) {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} failed in a child process ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_run_of_logical_nots_is_refused_because_the_parser_would_fold_it() {
    for source in [
        "!!has(object.spec.hostNetwork)",
        "! !true",
        "!!!false",
        "object.metadata.name == 'a' && !\n!true",
    ] {
        assert_eq!(compile_error(source), REPEATED_NOT, "{source}");
    }
    // `!=`, a parenthesised double negation, and `!!` inside strings and comments are fine.
    for source in [
        "!(!true)",
        "1 != 2 && !false",
        r#"'!!' != "!!" || true"#,
        r#"r'\!!' == 'x' || true"#,
        "'''!!''' != '' // !!\n&& true",
        "'a\\'!!' != ''",
    ] {
        assert_eq!(compile_error(source), "compiles", "{source}");
    }
    // A parenthesised double negation means what CEL says it means.
    let double = rules(vec![rule("double-negation", "!(!true)")]);
    assert_eq!(
        double.evaluate(&team_pod(), &create()),
        Vec::<Violation>::new()
    );
}

#[test]
fn the_cel_parser_still_folds_a_run_of_nots() {
    // Why the refusal above exists: `!!true` is `true` in CEL, and cel 0.13 gives `false`.
    // When this fails, the parser was fixed and the refusal can go.
    let program = Program::compile("!!true").expect("parses");
    let value = program
        .execute(&cel::Context::default())
        .expect("evaluates");
    assert_eq!(value, cel::Value::Bool(false));
}
