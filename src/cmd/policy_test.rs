//! `mcpguard test`: policy unit tests in the style of `kyverno test` and `gator verify`. A test
//! file names policies, resources and, per resource, the result the policies must give:
//! admitted (optionally with these fields mutated), denied with exactly these check IDs,
//! skipped, or an error. Each resource is judged exactly as `check` judges it (the same
//! inputs, policy routing and front door), so a passing test is the webhook's answer.
//!
//! ```yaml
//! apiVersion: mcpguard.dev/v1alpha1
//! kind: PolicyTest
//! metadata: {name: default-policy}
//! policies: [../../../policies/mcp-restricted.yaml]   # relative to this file; default: embedded
//! resources: [pods.yaml]
//! results:
//! - resource: pod/root
//!   result: denied
//!   checks: [privileged, allowPrivilegeEscalation]
//! - resource: pod/github-mcp
//!   result: admitted
//!   mutated: [{path: /spec/securityContext/runAsUser, value: 1000}]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::UserInfo;
use serde::Deserialize;
use serde_json::Value;

use super::check::{EXIT_ADMITTED, EXIT_DENIED, EXIT_ERROR, Judging, ObjectReport, Verdict};
use super::inputs::{describe, files_under, load_policy_set, read_inputs, write_stdout};
use crate::cmd::args::TestArgs;

/// The file name searched for in directories, as `kyverno test` looks for kyverno-test.yaml.
pub const TEST_FILE_NAME: &str = "mcpguard-test.yaml";
const API_VERSION: &str = "mcpguard.dev/v1alpha1";
const KIND: &str = "PolicyTest";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestFile {
    api_version: String,
    kind: String,
    metadata: Metadata,
    /// Policy files or directories, relative to the test file: the first plays the webhook's
    /// policy file, the others MCPPolicy objects (as `check --policy`). Empty: the embedded
    /// default.
    #[serde(default)]
    policies: Vec<PathBuf>,
    /// Manifest files or directories, relative to the test file.
    resources: Vec<PathBuf>,
    /// Namespace of resources that name none [default: the policy file's first namespace].
    #[serde(default)]
    namespace: Option<String>,
    /// Judge with the webhook's mutation first (`false`: as written, `check --no-mutate`).
    #[serde(default = "default_mutate")]
    mutate: bool,
    /// The requester (for exceptions by user or group); `--as`/`--as-group` override it.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    results: Vec<Expectation>,
}

fn default_mutate() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expectation {
    /// `kind/name`, the kind in any case (`pod/web`, `Deployment/web`).
    resource: String,
    #[serde(default)]
    namespace: Option<String>,
    result: ExpectedResult,
    /// The check IDs of the violations, exactly (any order).
    #[serde(default)]
    checks: Option<Vec<String>>,
    /// Fields the mutation must set (JSON pointers into the pod; for a workload, into its
    /// pods), optionally with their value.
    #[serde(default)]
    mutated: Vec<ExpectedChange>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ExpectedResult {
    Admitted,
    Denied,
    Skipped,
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedChange {
    path: String,
    #[serde(default)]
    value: Option<Value>,
}

/// One row of the table.
#[derive(Debug, PartialEq)]
struct Row {
    test: String,
    resource: String,
    expected: String,
    got: String,
    passed: bool,
}

pub fn run(args: &TestArgs) -> u8 {
    let files = match test_files(&args.paths) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("mcpguard test: {message}");
            return EXIT_ERROR;
        }
    };
    let mut rows = Vec::new();
    let mut broken = false;
    for file in &files {
        match run_file(file, args) {
            Ok(file_rows) => rows.extend(file_rows),
            Err(message) => {
                eprintln!("mcpguard test: {}: {message}", file.display());
                broken = true;
            }
        }
    }
    let failed = rows.iter().filter(|r| !r.passed).count();
    let mut out = table(&rows);
    out.push_str(&format!(
        "\n{} passed, {failed} failed ({} test file{})\n",
        rows.len() - failed,
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ));
    if let Err(message) = write_stdout(&out) {
        eprintln!("mcpguard test: {message}");
        return EXIT_ERROR;
    }
    if broken {
        EXIT_ERROR
    } else if failed > 0 {
        EXIT_DENIED
    } else {
        EXIT_ADMITTED
    }
}

/// Files as given, and in directories every `mcpguard-test.yaml`, sorted.
fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let found = files_under(path, |file| {
            file.file_name().and_then(|n| n.to_str()) == Some(TEST_FILE_NAME)
        })
        .map_err(|error| describe(&error))?;
        if found.is_empty() {
            return Err(format!("{}: no {TEST_FILE_NAME} found", path.display()));
        }
        files.extend(found);
    }
    Ok(files)
}

fn read_test_file(file: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    let raw: Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("invalid YAML: {}", mcpguard_core::redact::yaml_error(&e)))?;
    let test: TestFile = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })?;
    if test.api_version != API_VERSION || test.kind != KIND {
        return Err(format!(
            "expected apiVersion {API_VERSION} and kind {KIND}, got {} {}",
            test.api_version, test.kind
        ));
    }
    if test.results.is_empty() {
        return Err("results: no expectation: the test would check nothing".into());
    }
    Ok(test)
}

fn run_file(file: &Path, args: &TestArgs) -> Result<Vec<Row>, String> {
    let test = read_test_file(file)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let relative =
        |paths: &[PathBuf]| -> Vec<PathBuf> { paths.iter().map(|p| base.join(p)).collect() };
    let inputs = read_inputs(&relative(&test.resources));
    let (policies, _conflicts) = load_policy_set(&relative(&test.policies), &inputs.objects)?;
    let requester = if args.requester.as_user.is_some() || !args.requester.as_groups.is_empty() {
        args.requester.user_info()
    } else {
        UserInfo {
            username: test.user.clone(),
            groups: (!test.groups.is_empty()).then(|| test.groups.clone()),
            ..Default::default()
        }
    };
    let reports = super::check::review_inputs(
        &inputs,
        &policies,
        &Judging {
            namespace: test.namespace.as_deref(),
            mutate: test.mutate,
            requester,
        },
    );
    Ok(test
        .results
        .iter()
        .map(|expectation| judge(&test.metadata.name, expectation, &reports))
        .collect())
}

fn judge(test: &str, expectation: &Expectation, reports: &[ObjectReport]) -> Row {
    let (kind, name) = expectation
        .resource
        .split_once('/')
        .unwrap_or(("", expectation.resource.as_str()));
    let matching: Vec<&ObjectReport> = reports
        .iter()
        .filter(|r| r.kind.eq_ignore_ascii_case(kind) && r.name == name)
        .filter(|r| {
            expectation
                .namespace
                .as_ref()
                .is_none_or(|ns| &r.namespace == ns)
        })
        .collect();
    let resource = match &expectation.namespace {
        Some(ns) => format!("{}/{name} (namespace {ns})", kind.to_lowercase()),
        None => format!("{}/{name}", kind.to_lowercase()),
    };
    let expected = describe_expectation(expectation);
    let (got, passed) = match matching.as_slice() {
        [] => ("no such resource".to_owned(), false),
        [report] => {
            let got = describe_report(report);
            (got, meets(expectation, report))
        }
        several => (
            format!("{} resources match: name the namespace", several.len()),
            false,
        ),
    };
    Row {
        test: test.to_owned(),
        resource,
        expected,
        got,
        passed,
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Admitted => "admitted",
        Verdict::Denied => "denied",
        Verdict::Skipped => "skipped",
        Verdict::Error => "error",
    }
}

fn expected_name(result: ExpectedResult) -> &'static str {
    match result {
        ExpectedResult::Admitted => "admitted",
        ExpectedResult::Denied => "denied",
        ExpectedResult::Skipped => "skipped",
        ExpectedResult::Error => "error",
    }
}

fn report_checks(report: &ObjectReport) -> BTreeSet<&str> {
    report.violations.iter().map(|v| v.check.as_str()).collect()
}

fn describe_expectation(expectation: &Expectation) -> String {
    let mut text = expected_name(expectation.result).to_owned();
    if let Some(checks) = &expectation.checks {
        let checks: BTreeSet<&str> = checks.iter().map(String::as_str).collect();
        text.push_str(&format!(
            " [{}]",
            checks.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    for change in &expectation.mutated {
        text.push_str(&format!(" ~{}", change.path));
        if let Some(value) = &change.value {
            text.push_str(&format!("={value}"));
        }
    }
    text
}

fn describe_report(report: &ObjectReport) -> String {
    let mut text = verdict_name(report.verdict).to_owned();
    let checks = report_checks(report);
    if !checks.is_empty() {
        text.push_str(&format!(
            " [{}]",
            checks.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if report.verdict == Verdict::Error
        && let Some(reason) = &report.reason
    {
        text.push_str(&format!(": {reason}"));
    }
    text
}

fn meets(expectation: &Expectation, report: &ObjectReport) -> bool {
    if expected_name(expectation.result) != verdict_name(report.verdict) {
        return false;
    }
    if let Some(checks) = &expectation.checks {
        let wanted: BTreeSet<&str> = checks.iter().map(String::as_str).collect();
        if wanted != report_checks(report) {
            return false;
        }
    }
    expectation.mutated.iter().all(|wanted| {
        report.changes.iter().any(|change| {
            change.path == wanted.path
                && wanted
                    .value
                    .as_ref()
                    .is_none_or(|value| change.value.as_ref() == Some(value))
        })
    })
}

/// An aligned table, as `kubectl get` prints one.
fn table(rows: &[Row]) -> String {
    let header = ["TEST", "RESOURCE", "EXPECTED", "GOT", "RESULT"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.test.clone(),
                r.resource.clone(),
                r.expected.clone(),
                r.got.clone(),
                if r.passed { "PASS" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 5]| -> String {
        let mut text = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index == 4 {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   "));
            }
        }
        text.push('\n');
        text
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}
