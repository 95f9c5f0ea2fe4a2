//! Evaluation errors name the function and the failure, never a value of the input.

use pretty_assertions::assert_eq;
use serde_json::{Value as Json, json};

use super::*;
use crate::cel_rules::CelRule;
use crate::cel_rules::tests::{create, rule, rules, violation, with_message};

/// A value in the pod that no violation may quote; it is not a valid duration, pattern,
/// quantity, URL, IP, CIDR, version, base64 or number.
const CANARY: &str = "S3CR3T-canary-(";

fn canary_pod() -> Json {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "mcp", "labels": {"team": "platform"}},
        "spec": {"containers": [{
            "name": "server",
            "image": "ghcr.io/acme/web:1.2",
            "env": [{"name": "API_TOKEN", "value": CANARY}]
        }]}
    })
}

#[test]
fn errors_name_the_function_and_the_failure_never_the_value() {
    let value = "object.spec.containers[0].env[0].value";
    let env = "object.spec.containers[0].env[0]";
    let cases = [
        // The three of the issue, then every other error that quoted its input.
        (
            format!("duration({value}) > duration('0s')"),
            "duration() failed: its argument is not a valid duration",
        ),
        (
            format!("'x'.matches({value})"),
            "matches() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("quantity({value}).isLessThan(quantity('1Gi'))"),
            "quantity() failed: its argument is not a valid quantity",
        ),
        (
            format!("timestamp({value}) > timestamp('2020-01-01T00:00:00Z')"),
            "timestamp() failed: its argument is not a valid timestamp",
        ),
        (
            format!("'x'.find({value}) == ''"),
            "find() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("'x'.findAll({value}).size() == 0"),
            "findAll() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("url({value}).getHost() == ''"),
            "url() failed: its argument is not a valid URL",
        ),
        (
            format!("ip({value}).family() == 4"),
            "ip() failed: its argument is not a valid IP address",
        ),
        (
            format!("cidr({value}).prefixLength() == 8"),
            "cidr() failed: its argument is not a valid CIDR",
        ),
        (
            format!("cidr('10.0.0.0/8').containsIP({value})"),
            "containsIP() failed: its argument is not a valid IP address",
        ),
        (
            format!("semver({value}).major() == 1"),
            "semver() failed: its argument is not a valid semantic version",
        ),
        (
            format!("base64.decode({value}) == b''"),
            "base64.decode() failed: its argument is not valid base64",
        ),
        (
            format!("int({value}) == 1"),
            "int() failed: its argument is not a number of that type",
        ),
        (
            format!("double({value}) == 1.0"),
            "double() failed: its argument is not a number of that type",
        ),
        (
            format!("int({env}) == 1"),
            "int() failed: its argument cannot be used (the value is not shown)",
        ),
        (
            format!("string({env}) == ''"),
            "string() failed: its argument cannot be used (the value is not shown)",
        ),
        (
            format!("{value}.charAt(100) == ''"),
            "charAt() failed: an index is out of range",
        ),
        (
            format!("{value} + 1 == 2"),
            "unsupported binary operator 'add' on types string and int",
        ),
        (format!("-{value} == 1"), "no such overload"),
        (
            format!("{value}.getHost() == ''"),
            "url() failed: expected URL type",
        ),
        (
            format!("object.metadata.labels[{value}] == ''"),
            "no such key (the key is input, not shown; test optional fields with has() first)",
        ),
        (
            format!("{{{value}: 1}}[{env}] == 1"),
            "type map cannot be a map key",
        ),
        (
            format!("[1][{value}] == 1"),
            "an argument has the wrong type (want int|uint)",
        ),
        (format!("[1][size({value})] == 1"), "index out of bounds"),
        (
            format!("1 / (size({value}) - {}) == 1", CANARY.len()),
            "division by zero",
        ),
        (format!("size({value}) % 0 == 1"), "remainder by zero"),
        (
            format!("size({value}) * 9223372036854775807 == 1"),
            "integer overflow in 'mul' on types int and int",
        ),
    ];
    let mut failures = Vec::new();
    for (expression, expected) in &cases {
        let compiled = rules(vec![rule("canary", expression)]);
        let violations = compiled.evaluate(&canary_pod(), &create());
        let details: Vec<&str> = violations.iter().map(|v| v.detail.as_str()).collect();
        if details != [*expected] {
            failures.push(format!(
                "{expression}\n  got {details:?}\n  want {expected:?}"
            ));
        }
        for violation in &violations {
            assert!(
                !violation.to_string().contains("S3CR3T"),
                "{expression}: {violation}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_failing_message_expression_quotes_no_value_either() {
    let compiled = rules(vec![CelRule {
        message_expression: Some(
            "duration(object.spec.containers[0].env[0].value) > duration('0s') ? 'long' : 'short'"
                .into(),
        ),
        ..with_message("timeouts", "false", "timeouts must be durations")
    }]);
    assert_eq!(
        compiled.evaluate(&canary_pod(), &create()),
        vec![violation(
            "timeouts",
            "timeouts must be durations",
            "messageExpression failed: duration() failed: its argument is not a valid duration"
        )]
    );
}

#[test]
fn every_fixed_failure_text_is_passed_on_and_any_other_is_replaced() {
    assert_eq!(
        function_failure("asInteger", "quantity too large for integer"),
        "asInteger() failed: quantity too large for integer"
    );
    assert_eq!(
        function_failure("semver", &format!("invalid semver '{CANARY}': bad")),
        "semver() failed: its argument is not a valid semantic version"
    );
    assert_eq!(
        function_failure("lowerAscii", &format!("{CANARY} is odd")),
        "lowerAscii() failed: its argument cannot be used (the value is not shown)"
    );
    // A key is named only when the expression spells it out.
    assert!(names_key("object.metadata.labels.team == 'a'", "team"));
    assert!(names_key("m['team'] == 1", "team"));
    assert!(names_key(r#"m["team"] == 1"#, "team"));
    assert!(!names_key("m[object.x] == 1", "team"));
    assert!(!names_key("object.teams == 1", ""));
}
