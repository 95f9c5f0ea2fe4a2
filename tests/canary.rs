//! No secret value leaves (issue #13, finding 6): one canary pushed through every output a
//! decode error or a literal-secret denial can reach, asserting the canary never appears
//! while each message still names the field path and the expected type.
//!
//! Outputs: `mcpguard check` (text and `-o json`), `mutate --patch`, `render`, policy
//! loading, the webhook's answers over HTTPS (denial message, warnings, auditAnnotations,
//! the refusal of a malformed review), denial Events, PolicyReports, and logs at debug level
//! (the webhook's, captured in-process, and the CLI's, on its stderr).

mod cli_support;
mod common;

use cli_support::{mcpguard_command, run_with_stdin};

use std::process::Output;
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestServer, example_review};
use mcpguard::cluster::events;
use mcpguard_core::audit::report::{self, Scanned};
use mcpguard_core::engine::{self, Context};
use mcpguard_core::policy::{DEFAULT_POLICY_YAML, Policy, parse_str};
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// The string canary, and the integer one of the finding (`DB_PASSWORD: 982451653`).
const CANARY: &str = "S3CR3T-CANARY-7f3a9";
const CANARY_NUMBER: &str = "982451653";

#[track_caller]
fn assert_no_canary(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY) && !text.contains(CANARY_NUMBER),
        "{what} echoes a secret value:\n{text}"
    );
}

// ---- the inputs ------------------------------------------------------------------------------

/// A compliant container (so only the planted value is wrong) with `extra` merged in.
fn container(extra: Value) -> Value {
    let mut container = json!({
        "name": "server",
        "image": "ghcr.io/example/mcp-server:1.0.0",
        "imagePullPolicy": "Always",
        "resources": {"requests": {"memory": "400Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false, "runAsNonRoot": true, "runAsUser": 1000,
            "runAsGroup": 1000, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        }
    });
    if let (Some(base), Value::Object(extra)) = (container.as_object_mut(), extra) {
        base.extend(extra);
    }
    container
}

fn pod(name: &str, annotations: Value, container: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "mcp", "uid": format!("uid-{name}"),
            "annotations": annotations
        },
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [container]
        }
    })
}

/// A planted value that does not decode, with the message that must name it instead.
struct Undecodable {
    pod: Value,
    message: &'static str,
}

fn undecodable_pods() -> Vec<Undecodable> {
    let number: i64 = CANARY_NUMBER.parse().expect("a number");
    vec![
        Undecodable {
            pod: pod(
                "integer-env",
                json!({}),
                container(json!({"env": [{"name": "DB_PASSWORD", "value": number}]})),
            ),
            message: "cannot decode spec.containers[0].env[0].value: invalid type: integer, expected a string",
        },
        Undecodable {
            pod: pod(
                "string-user",
                json!({}),
                container(json!({"securityContext": {"runAsUser": CANARY}})),
            ),
            message: "cannot decode spec.containers[0].securityContext.runAsUser: invalid type: string, expected i64",
        },
        Undecodable {
            pod: pod(
                "integer-annotation",
                json!({"token": number}),
                container(json!({})),
            ),
            message: "cannot decode metadata.annotations.token: invalid type: integer, expected a string",
        },
    ]
}

/// A pod that decodes but carries the canary as a literal secret: denied by name.
fn literal_secret_pod() -> Value {
    pod(
        "literal-secret",
        json!({}),
        container(json!({"env": [{"name": "githubToken", "value": CANARY}]})),
    )
}

const LITERAL_SECRET_DENIAL: &str = "container \"server\" sets githubToken (the name marks a credential) as literal value; use valueFrom.secretKeyRef";

fn request_for(pod: &Value) -> Value {
    let mut request = example_review()["request"].clone();
    request["name"] = pod["metadata"]["name"].clone();
    request["object"] = pod.clone();
    request
}

fn review_for(pod: &Value) -> Value {
    let mut review = example_review();
    review["request"] = request_for(pod);
    review
}

fn warn_policy() -> Policy {
    let text = DEFAULT_POLICY_YAML.replace("  mode: enforce", "  mode: warn");
    parse_str(&text, "warn.yaml").expect("the warn-mode policy loads")
}

// ---- logs captured at debug level -------------------------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary at debug level, from the first call on.
fn captured_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        buffer
    })
}

fn logs_text() -> String {
    let bytes = captured_logs()
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---- the webhook, Events and PolicyReports ----------------------------------------------------

#[tokio::test]
async fn the_webhook_answers_events_reports_and_logs_never_echo_a_value() {
    captured_logs();
    let mut enforcing = TestServer::start_default().await;
    let mut warning = TestServer::start(warn_policy()).await;

    for case in undecodable_pods() {
        let review = review_for(&case.pod);
        // The mutating webhook leaves what it cannot decode to the validating one.
        let reply = enforcing.post_json("/mutate", &review).await;
        assert_no_canary("/mutate", &reply.text);
        let reply = enforcing.post_json("/validate", &review).await;
        assert_no_canary("/validate", &reply.text);
        let response = &reply.json["response"];
        assert_eq!(response["allowed"], false, "{}", reply.text);
        assert_eq!(response["status"]["code"], 400);
        assert_eq!(response["status"]["message"], case.message);
    }

    // A denial (enforce) and an admission with warnings (warn): message, warnings and
    // auditAnnotations name the variable and the reason, never the value.
    let review = review_for(&literal_secret_pod());
    let reply = enforcing.post_json("/validate", &review).await;
    assert_no_canary("the denial", &reply.text);
    let message = reply.json["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(LITERAL_SECRET_DENIAL), "{message}");
    let reply = warning.post_json("/validate", &review).await;
    assert_no_canary("the warnings", &reply.text);
    let response = &reply.json["response"];
    assert_eq!(response["allowed"], true, "{}", reply.text);
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let warnings = warnings.join("\n");
    assert!(warnings.contains(LITERAL_SECRET_DENIAL), "{warnings}");
    assert!(
        response["auditAnnotations"]
            .as_object()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        reply.text
    );

    // An envelope field of the wrong type: refused, the refusal naming the field.
    let mut malformed = review_for(&literal_secret_pod());
    malformed["request"]["uid"] = json!(CANARY_NUMBER.parse::<i64>().expect("a number"));
    let reply = enforcing.post_json("/validate", &malformed).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_no_canary("the refusal", &reply.text);
    assert!(
        reply.text.contains(
            "body is not an AdmissionReview: request.uid: invalid type: integer, expected a string at line "
        ),
        "{}",
        reply.text
    );

    enforcing.stop().await;
    warning.stop().await;
    let logs = logs_text();
    assert!(
        logs.contains("request refused"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("DEBUG") || logs.contains("INFO") || logs.contains("WARN"));
    assert_no_canary("the logs", &logs);
}

#[test]
fn events_and_policy_reports_never_echo_a_value() {
    let classes = StaticRuntimeClasses::default();
    for policy in [
        Policy::embedded_default().expect("the embedded policy loads"),
        warn_policy(),
    ] {
        let context = Context {
            policy: &policy,
            runtime_classes: &classes,
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        let mut pods: Vec<(Value, Option<&str>)> = undecodable_pods()
            .into_iter()
            .map(|case| (case.pod, Some(case.message)))
            .collect();
        pods.push((literal_secret_pod(), None));
        for (pod, decode_message) in pods {
            let request: AdmissionRequest =
                serde_json::from_value(request_for(&pod)).expect("a valid AdmissionRequest");
            let decision = engine::validate(&request, context);
            let event = events::event_for(&request, &decision, &policy.name, true);
            assert_no_canary("the Event", &format!("{event:?}"));

            let built = report::report_for(&pod, Scanned::Pod, context).expect("a report");
            let text = built.to_string();
            assert_no_canary("the PolicyReport", &text);
            let messages: Vec<&str> = built["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|result| result["message"].as_str())
                .collect();
            match decode_message {
                Some(message) => assert_eq!(messages, vec![message]),
                None => assert!(
                    messages
                        .iter()
                        .any(|m| m.contains("githubToken (the name marks a credential)")),
                    "{text}"
                ),
            }
        }
    }
}

// ---- the CLI -------------------------------------------------------------------------------------

/// Runs `mcpguard ARGS` from the crate root, logging at debug level, feeding `stdin`.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut command = mcpguard_command(args);
    command.env("MCPGUARD_LOG", "debug");
    run_with_stdin(command, Some(stdin))
}

#[track_caller]
fn output_text(what: &str, output: &Output) -> String {
    let text = format!(
        "{}{}",
        cli_support::stdout(output),
        cli_support::stderr(output)
    );
    assert_no_canary(what, &text);
    text
}

fn yaml_of(value: &Value) -> String {
    serde_json::to_string(value).expect("JSON is YAML")
}

#[test]
fn check_in_text_and_json_names_the_field_and_never_the_value() {
    for case in undecodable_pods() {
        let text = output_text("check", &run(&["check", "-"], &yaml_of(&case.pod)));
        assert!(text.contains(case.message), "{text}");
        let output = run(&["check", "-o", "json", "-"], &yaml_of(&case.pod));
        let json_text = output_text("check -o json", &output);
        assert!(json_text.contains(case.message), "{json_text}");
        let output = run(&["check", "--no-mutate", "-"], &yaml_of(&case.pod));
        let text = output_text("check --no-mutate", &output);
        assert!(text.contains(case.message), "{text}");
    }
    let pod = yaml_of(&literal_secret_pod());
    let text = output_text("check", &run(&["check", "-"], &pod));
    assert!(text.contains(LITERAL_SECRET_DENIAL), "{text}");
    let text = output_text("check -o json", &run(&["check", "-o", "json", "-"], &pod));
    assert!(
        text.contains("sets githubToken (the name marks a credential) as literal value"),
        "{text}"
    );
}

/// `mutate` prints the manifest it was given, hardened (the secret with it, as written):
/// what must not echo it is the patch and the reasons on stderr.
#[test]
fn mutate_patches_and_reasons_never_echo_the_value() {
    for case in undecodable_pods() {
        let output = run(&["mutate", "--patch", "-"], &yaml_of(&case.pod));
        let text = output_text("mutate --patch", &output);
        assert!(text.contains(case.message), "{text}");
        let output = run(&["mutate", "-"], &yaml_of(&case.pod));
        let stderr = cli_support::stderr(&output);
        assert_no_canary("mutate's stderr", &stderr);
        assert!(stderr.contains(case.message), "{stderr}");
    }
}

#[test]
fn a_malformed_manifest_is_refused_without_quoting_its_text() {
    let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: [{CANARY}\n");
    let text = output_text("check of broken YAML", &run(&["check", "-"], &yaml));
    assert!(text.contains("ERROR <stdin>#1: invalid YAML: "), "{text}");
    let json = format!("{{\"kind\": \"Pod\", \"spec\": {{\"x\": {CANARY}}}}}");
    output_text("check of broken JSON", &run(&["check", "-"], &json));
}

#[test]
fn render_names_the_mcpserver_field_and_never_the_value() {
    let server = json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPServer",
        "metadata": {"name": "fetch", "namespace": "mcp"},
        "spec": {"package": {"runtime": "uvx", "name": "mcp-server-fetch"}, "port": CANARY}
    });
    let output = run(&["render", "-"], &yaml_of(&server));
    let text = output_text("render", &output);
    assert!(
        text.contains("<stdin>: document 1: not a valid MCPServer: spec.port: invalid type: string, expected i32"),
        "{text}"
    );
    let mut server = server;
    server["spec"]["port"] = json!(8080);
    server["spec"]["transport"] = json!(CANARY);
    let text = output_text("render", &run(&["render", "-"], &yaml_of(&server)));
    assert!(
        text.contains("not a valid MCPServer: spec.transport: unknown variant, expected "),
        "{text}"
    );
    server["spec"]["transport"] = json!("stdio");
    server["spec"]["env"] = json!([{"name": "OPENAI_KEY", "value": CANARY}]);
    let text = output_text("render", &run(&["render", "-"], &yaml_of(&server)));
    assert!(
        text.contains("OPENAI_KEY (the name marks a credential)"),
        "{text}"
    );
}

#[test]
fn policy_loading_names_the_field_and_never_the_value() {
    for (field, replacement, message) in [
        (
            "    level: restricted",
            format!("    level: {CANARY}"),
            "spec.podSecurity.level: unknown variant, expected one of ",
        ),
        (
            "    version: latest",
            format!("    version: {CANARY}"),
            "spec.podSecurity.version: invalid Pod Security Standards version \"<withheld>\"",
        ),
        (
            "      runAsUser: 1000\n      runAsGroup: 1000\n      fsGroup",
            format!("      runAsUser: {CANARY}\n      runAsGroup: 1000\n      fsGroup"),
            "spec.mutate.podSecurityContext.runAsUser: invalid type: string, expected i64",
        ),
        (
            "    forbidSecretLiterals: true",
            format!("    forbidSecretLiterals: {CANARY_NUMBER}"),
            "spec.validate.forbidSecretLiterals: invalid type: integer, expected a boolean",
        ),
    ] {
        assert!(DEFAULT_POLICY_YAML.contains(field), "{field}");
        let text = DEFAULT_POLICY_YAML.replacen(field, &replacement, 1);
        let err = parse_str(&text, "p.yaml").expect_err("the policy is refused");
        assert_no_canary("the policy error", &err.to_string());
        assert!(err.to_string().contains(message), "{err}");

        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, &text).expect("the policy is written");
        let path = path.to_str().expect("a UTF-8 path");
        let pod = yaml_of(&literal_secret_pod());
        let output = run(&["check", "--policy", path, "-"], &pod);
        let text = output_text("check --policy", &output);
        assert!(text.contains(message), "{text}");
    }
}
