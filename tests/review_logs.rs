//! Review log lines as a log pipeline reads them (issue #19): flat JSON, and every line of
//! an admission review names the kind, namespace, name, operation and user, each cut to a
//! bound however long the request's value. Drives the real webhook over TLS with the JSON
//! format `mcpguard --log-format json` installs, and compares whole lines.

mod common;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestServer, example_review_with_uid};
use mcpguard::logging::FlatJson;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// 2026-12-04T10:00:00Z.
fn fixed_clock() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_796_378_400).expect("in range")
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture (a test binary is one process; the server logs from its
/// own tasks, so a thread-local subscriber would miss them).
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(FlatJson::with_clock(fixed_clock))
            .with_writer(move || writer.clone())
            .with_env_filter("mcpguard=info")
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

fn review_lines(uid_prefix: &str) -> Vec<String> {
    let bytes = captured().0.lock().expect("not poisoned").clone();
    String::from_utf8(bytes)
        .expect("UTF-8")
        .lines()
        .filter(|line| line.contains(&format!(r#""uid":"{uid_prefix}"#)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_denied_review_is_one_flat_line_with_kind_namespace_name_operation_and_user() {
    captured();
    let server = TestServer::start_default().await;
    let response = server
        .review("/validate", &example_review_with_uid("log-denied"))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        review_lines("log-denied"),
        [concat!(
            r#"{"ts":"2026-12-04T10:00:00Z","level":"info","msg":"admission review","#,
            r#""uid":"log-denied","endpoint":"validate","kind":"Pod","namespace":"mcp","#,
            r#""name":"github-mcp","operation":"CREATE","user":"jane@example.com","#,
            r#""decision":"denied","#,
            r#""violations":"allowPrivilegeEscalation,capabilities_restricted,runAsNonRoot,seccompProfile_restricted","#,
            r#""dry_run":false,"target":"mcpguard::webhook::routes"}"#
        )]
    );
}

#[tokio::test]
async fn request_values_are_cut_to_their_bounds_and_objects_are_never_logged() {
    captured();
    let server = TestServer::start_default().await;
    let mut review = example_review_with_uid("log-hostile");
    let request = &mut review["request"];
    request["kind"]["kind"] = json!("K".repeat(100_000));
    request["name"] = json!("n".repeat(100_000));
    request["userInfo"]["username"] = json!("u".repeat(100_000));
    // A literal secret in the object: the log line names the object, never its content.
    request["object"]["spec"]["containers"][0]["env"] =
        json!([{"name": "TOKEN", "value": "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}]);
    let response = server.review("/validate", &review).await;
    assert_eq!(response["allowed"], false, "{response}");
    let lines = review_lines("log-hostile");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: Value = serde_json::from_str(&lines[0]).expect("one JSON object");
    assert_eq!(line["kind"], format!("{}…", "K".repeat(63)));
    assert_eq!(line["name"], format!("{}…", "n".repeat(253)));
    assert_eq!(line["user"], format!("{}…", "u".repeat(340)));
    assert!(!lines[0].contains("ghp_"), "{}", lines[0]);
    assert!(lines[0].len() < 2048, "{} bytes", lines[0].len());
}

/// The first lines `mcpguard serve` writes to stderr in `format`, up to "mcpguard is
/// serving", stderr being a pipe (as under a container runtime or `2>file`).
fn serve_log_until_serving(format: &str) -> Vec<String> {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = mcpguard_core::certs::generate(&common::dev_names(), jiff::Timestamp::now())
        .expect("certs");
    mcpguard::cmd::cert_files::write_dir(dir.path(), &bundle).expect("write certs");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpguard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MCPGUARD_") || key == "NO_COLOR" {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args(["--log-format", format, "serve", "--tls-cert"])
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .args(["--cluster", "off"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcpguard serve starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let serving = line.contains("mcpguard is serving");
        lines.push(line);
        if serving || lines.len() > 200 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let lines = serve_log_until_serving("text");
    let serving = lines.last().expect("serve logged");
    assert!(serving.contains("mcpguard is serving"), "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an ANSI escape in {line:?}");
    }
}

#[test]
fn json_logs_of_the_binary_are_flat() {
    let lines = serve_log_until_serving("json");
    let serving: Value = serde_json::from_str(lines.last().expect("serve logged")).expect("JSON");
    assert_eq!(serving["level"], "info");
    assert_eq!(serving["msg"], "mcpguard is serving");
    assert!(
        serving["listen"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{serving}"
    );
    assert_eq!(serving.get("fields"), None);
    assert!(
        serving["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "{serving}"
    );
}

#[tokio::test]
async fn a_refused_request_logs_a_bounded_reason() {
    captured();
    let server = TestServer::start_default().await;
    let mut review = example_review_with_uid("log-refused");
    review["apiVersion"] = json!(format!("x{}", "v".repeat(100_000)));
    let reply = server.post_json("/validate", &review).await;
    assert_eq!(reply.status, 400);
    let expected = format!(
        "expected kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind \"AdmissionReview\" of apiVersion \"x{}…\"",
        "v".repeat(62)
    );
    assert_eq!(reply.json["message"], expected);
    let bytes = captured().0.lock().expect("not poisoned").clone();
    let text = String::from_utf8(bytes).expect("UTF-8");
    let refused: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["msg"] == "request refused" && line["error"] == expected)
        .collect();
    assert_eq!(
        refused,
        [
            json!({"ts": "2026-12-04T10:00:00Z", "level": "warn", "msg": "request refused",
                "endpoint": "validate", "status": 400, "error": expected,
                "target": "mcpguard::webhook::routes"})
        ]
    );
}
