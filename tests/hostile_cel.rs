//! Hostile CEL: expressions built to exhaust the parser's stack, and values that CEL errors
//! would quote. Anyone who can reach the webhook Service can send an MCPPolicy review, and
//! anyone who can write a policy file can hand it to `mcpguard check --policy`; neither may
//! take the process down, and each must get an answer that names the limit.
//!
//! Before the compiler had a stack of its own, these expressions overflowed the stack, which
//! aborts the whole process. So every test that compiles one runs in a child process: the real
//! binary for the CLI, and for the webhook this test binary again, running one ignored test
//! (the server in it, on tokio worker threads as in `mcpguard serve`). An abort there is a
//! failure here, with the child's stderr, not the end of the test run.

mod cli_support;
mod common;

use std::process::{Command, Output};

use cli_support::check_example_pod_with_policy;

use common::{TestServer, example_review_with_uid, pod_create_review};
use mcpguard_core::policy;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// `1+1+...+1 > 0`: 8,000 terms, 16 KB, no brackets. One such request killed the webhook.
fn long_sum() -> String {
    format!("1{} > 0", "+1".repeat(7_999))
}

/// Each hostile shape: a name, the expression, and what the loader says of it (after
/// `spec.validate.rules[0].expression: `).
fn hostile_expressions() -> Vec<(&'static str, String, String)> {
    let too_deep = "expression is nested more than 128 levels deep, the limit (each operator, field selection, index and call is a level)".to_owned();
    let brackets =
        "expression nests more than 96 levels of brackets, the parser's limit".to_owned();
    vec![
        ("sum", long_sum(), too_deep.clone()),
        (
            "lists",
            format!("{}1{} == []", "[".repeat(5_000), "]".repeat(5_000)),
            brackets.clone(),
        ),
        (
            "selects",
            format!("object{} == 1", ".a".repeat(8_000)),
            too_deep.clone(),
        ),
        (
            "indexes",
            format!("object{} == 1", "[0]".repeat(5_000)),
            too_deep.clone(),
        ),
        (
            "nots",
            format!("{}(1 == 1)", "!(".repeat(5_000)) + &")".repeat(5_000),
            brackets.clone(),
        ),
        (
            "negations",
            format!("{}1{} == 1", "-(".repeat(5_000), ")".repeat(5_000)),
            brackets,
        ),
    ]
}

fn policy_yaml(expression: &str) -> String {
    format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: hostile}}\nspec:\n  namespaces: [mcp]\n  podSecurity: {{level: baseline, version: latest}}\n  validate:\n    rules:\n      - name: hostile\n        expression: {}\n",
        serde_json::to_string(expression).expect("a string serialises")
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---- the CLI ----------------------------------------------------------------------------------

#[test]
fn check_refuses_each_hostile_expression_with_its_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shape, expression, problem) in hostile_expressions() {
        let file = dir.path().join(format!("{shape}.yaml"));
        std::fs::write(&file, policy_yaml(&expression)).expect("write the policy");
        let output = check_example_pod_with_policy(&file);
        assert_eq!(
            (output.status.code(), stderr(&output)),
            (
                Some(2),
                format!(
                    "mcpguard check: policy {}: spec.validate.rules[0].expression: {problem}\n",
                    file.display()
                )
            ),
            "{shape}"
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "", "{shape}");
    }
}

// ---- the webhook, in a child process ----------------------------------------------------------

/// Runs the ignored test `name` of this binary in a child process and fails with its output
/// unless it passed.
fn in_child_process(name: &str) {
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            name,
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .expect("the test binary runs");
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{name} failed in its child process ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
}

fn policy_review(uid: &str, expression: &str) -> Value {
    let object: Value =
        serde_saphyr::from_str(&policy_yaml(expression)).expect("the policy is YAML");
    common::mcppolicy_review(uid, "CREATE", &object, None)
}

fn refused(uid: &str, problem: &str) -> Value {
    json!({
        "uid": uid,
        "allowed": false,
        "status": {
            "code": 422,
            "reason": "Invalid",
            "status": "Failure",
            "message": format!(
                r#"policy MCPPolicy "hostile": spec.validate.rules[0].expression: {problem}"#
            ),
        },
        "auditAnnotations": {"violations": "mcpPolicySpec"},
    })
}

/// What /validate answers for the unmutated example pod: the same four violations as ever.
async fn assert_answers_a_normal_review(server: &TestServer, uid: &str) {
    let response = server
        .review("/validate", &example_review_with_uid(uid))
        .await;
    assert_eq!(response["uid"], uid);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["auditAnnotations"]["violations"],
        "allowPrivilegeEscalation,capabilities_restricted,runAsNonRoot,seccompProfile_restricted"
    );
}

#[test]
fn the_webhook_refuses_an_8000_term_rule_and_keeps_answering() {
    in_child_process("webhook_refuses_an_8000_term_rule_and_keeps_answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by the_webhook_refuses_an_8000_term_rule_and_keeps_answering"]
async fn webhook_refuses_an_8000_term_rule_and_keeps_answering() {
    let server = TestServer::start_default().await;
    let body = policy_review("sum", &long_sum());
    assert!(
        serde_json::to_vec(&body).expect("serialises").len() > 16_000,
        "the review is the 16 KB one"
    );
    let response = server.review("/validate", &body).await;
    assert_eq!(
        response,
        refused(
            "sum",
            "expression is nested more than 128 levels deep, the limit (each operator, field selection, index and call is a level)"
        )
    );
    assert_answers_a_normal_review(&server, "after-the-sum").await;
    // And a sound policy with a rule is still admitted.
    let sound = server
        .review(
            "/validate",
            &policy_review("sound", "object.spec.containers.all(c, c.image != '')"),
        )
        .await;
    assert_eq!(sound["allowed"], true, "{sound}");
}

#[test]
fn the_webhook_refuses_each_hostile_expression_and_keeps_answering() {
    in_child_process("webhook_refuses_each_hostile_expression_and_keeps_answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by the_webhook_refuses_each_hostile_expression_and_keeps_answering"]
async fn webhook_refuses_each_hostile_expression_and_keeps_answering() {
    let server = TestServer::start_default().await;
    for (shape, expression, problem) in hostile_expressions() {
        let response = server
            .review("/validate", &policy_review(shape, &expression))
            .await;
        assert_eq!(response, refused(shape, &problem), "{shape}");
        assert_answers_a_normal_review(&server, &format!("after-{shape}")).await;
    }
}

#[test]
fn the_webhook_refuses_an_expression_over_the_length_limit() {
    in_child_process("webhook_refuses_an_expression_over_the_length_limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by the_webhook_refuses_an_expression_over_the_length_limit"]
async fn webhook_refuses_an_expression_over_the_length_limit() {
    let server = TestServer::start_default().await;
    // 100,001 characters, 'é' being one character of two bytes: the limit counts characters.
    let long = format!("'{}' != ''", "é".repeat(99_993));
    assert_eq!(long.chars().count(), 100_001);
    let response = server
        .review("/validate", &policy_review("long", &long))
        .await;
    assert_eq!(
        response,
        refused(
            "long",
            "expression is 100001 characters long, more than the limit of 100000"
        )
    );
    let at_limit = format!("'{}' != ''", "é".repeat(99_992));
    let response = server
        .review("/validate", &policy_review("at-limit", &at_limit))
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_answers_a_normal_review(&server, "after-long").await;
}

// ---- no secret in CEL errors ------------------------------------------------------------------

/// A value the pod carries that no answer may quote.
const CANARY: &str = "S3CR3T-canary-(";

fn canary_policy(mode: &str) -> policy::Policy {
    let text = format!(
        r#"apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: canary}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: privileged, version: latest}}
  mode: {mode}
  validate:
    forbidSecretLiterals: false
    rules:
      - name: timeouts
        expression: "object.spec.containers.all(c, !has(c.env) || c.env.all(e, !has(e.value) || duration(e.value) > duration('0s')))"
        message: env values must be durations
      - name: patterns
        expression: "object.spec.containers.all(c, !has(c.env) || c.env.all(e, !has(e.value) || 'x'.matches(e.value)))"
      - name: sizes
        expression: "object.spec.containers.all(c, !has(c.env) || c.env.all(e, !has(e.value) || quantity(e.value).isLessThan(quantity('1Gi'))))"
"#
    );
    policy::parse_str(&text, "canary.yaml").expect("the canary policy loads")
}

fn canary_pod_review(uid: &str) -> Value {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "mcp"},
        "spec": {"containers": [{
            "name": "server",
            "image": "ghcr.io/acme/web:1.2",
            "env": [{"name": "API_TOKEN", "value": CANARY}]
        }]}
    });
    pod_create_review(uid, "jane@example.com", &pod)
}

const CANARY_VIOLATIONS: [&str; 3] = [
    r#"rule "timeouts" could not be evaluated (duration() failed: its argument is not a valid duration)"#,
    r#"rule "patterns" could not be evaluated (matches() failed: the pattern is not a valid regular expression)"#,
    r#"rule "sizes" could not be evaluated (quantity() failed: its argument is not a valid quantity)"#,
];

#[tokio::test]
async fn a_denial_quotes_no_value_that_a_cel_function_failed_on() {
    let server = TestServer::start(canary_policy("enforce")).await;
    let response = server
        .review("/validate", &canary_pod_review("canary"))
        .await;
    assert!(!response.to_string().contains("S3CR3T"), "{response}");
    assert_eq!(
        response["status"]["message"],
        format!(
            r#"pods "web" is forbidden: violates mcpguard policy "canary": {}"#,
            CANARY_VIOLATIONS.join(", ")
        )
    );
    assert_eq!(
        response["auditAnnotations"]["violations"],
        "timeouts,patterns,sizes"
    );
}

#[tokio::test]
async fn a_warning_quotes_no_value_that_a_cel_function_failed_on() {
    let server = TestServer::start(canary_policy("warn")).await;
    let response = server
        .review("/validate", &canary_pod_review("canary-warn"))
        .await;
    assert!(!response.to_string().contains("S3CR3T"), "{response}");
    assert_eq!(response["allowed"], true);
    let warnings: Vec<String> = CANARY_VIOLATIONS
        .iter()
        .map(|violation| format!(r#"mcpguard: would violate policy "canary": {violation}"#))
        .collect();
    assert_eq!(response["warnings"], json!(warnings));
}
