//! The programs some tests run as independent judges: `kubectl` (kustomize), the
//! `kubernetes-validate` schema checker and Python's `jsonschema` (both installed by
//! `.ci/run`). A missing one fails the test that needs it, so a plain `cargo test` never
//! passes by checking nothing. Skipping is an explicit opt-in: with
//! `MCPGUARD_SKIP_EXTERNAL_TOOLS=1` a test whose tool is missing returns early and says so on
//! stderr, naming itself and the tool.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::io::Write as _;
use std::process::Command;

use serde_json::Value;

/// The opt-in that lets a test whose external tool is missing skip instead of failing.
pub const SKIP_ENV: &str = "MCPGUARD_SKIP_EXTERNAL_TOOLS";

/// Whether `tool` answers `--help`. When it does not: a failure, or with [`SKIP_ENV`] set to
/// `1` a loud skip (`false`).
#[track_caller]
pub fn tool_available(tool: &str) -> bool {
    let found = Command::new(tool).arg("--help").output().is_ok();
    found || skip_or_fail(tool)
}

/// Whether `python3` can import `jsonschema`; a missing one fails as in [`tool_available`].
#[track_caller]
pub fn python_jsonschema_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    found || skip_or_fail("python3 with jsonschema")
}

#[track_caller]
fn skip_or_fail(tool: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        std::env::var(SKIP_ENV).is_ok_and(|v| v == "1"),
        "{test}: {tool} is not installed; `.ci/run` installs it, or set {SKIP_ENV}=1 to skip \
         the tests that need it"
    );
    // Straight to stderr, not `eprintln!`: the test harness captures the macros' output of a
    // passing test, and a skip must not pass unseen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {tool} is not installed and {SKIP_ENV}=1 allows skipping; this \
         test checked nothing !!!\n"
    );
    false
}

/// Runs `command` (an external tool) to the end; asserts that it succeeds, showing its
/// stderr when it does not; returns its stdout.
#[track_caller]
pub fn stdout_of(command: &mut Command) -> Vec<u8> {
    let what = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `kubernetes-validate --strict` (Kubernetes 1.33) on `docs` as one multi-document
/// file; asserts that it succeeds and reports no error; returns its report (stdout then
/// stderr) for the caller's own checks of its warnings and passes. `what` names the input in
/// failure messages.
#[track_caller]
pub fn kubernetes_validate_strict(what: &str, docs: &[Value]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let text: String = docs
        .iter()
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).expect("json")))
        .collect();
    std::fs::write(file.path(), text).expect("write");
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(file.path())
        .output()
        .expect("run kubernetes-validate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what}: {report}");
    assert!(!report.contains("ERROR"), "{what}: {report}");
    report
}
