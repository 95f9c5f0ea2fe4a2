//! `mcpguard test`: policy unit tests. The shipped examples pass (exact table), a failing
//! suite prints each mismatch and exits 1, and a malformed test file exits 2 naming the field.

mod cli_support;

use cli_support::{run, stderr, stdout};
use pretty_assertions::assert_eq;

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn the_shipped_examples_pass() {
    let output = run(&["test", "examples/tests"]);
    assert_eq!(stderr(&output), "");
    let text = stdout(&output);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| {
            line.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    let summary: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|row| (row[0], row[1], *row.last().unwrap_or(&"")))
        .collect();
    assert_eq!(
        summary,
        [
            ("cel-team-label", "deployment/labelled", "PASS"),
            ("cel-team-label", "deployment/unlabelled", "PASS"),
            ("default-policy", "pod/github-mcp", "PASS"),
            ("default-policy", "pod/root", "PASS"),
            (
                "default-policy",
                "pod/elsewhere (namespace default)",
                "PASS"
            ),
            ("exception-for-argocd", "pod/playwright-mcp", "PASS"),
            ("exception-not-for-others", "pod/playwright-mcp", "PASS"),
        ]
    );
    assert!(
        text.ends_with("\n7 passed, 0 failed (4 test files)\n"),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_failing_suite_prints_the_mismatch_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "pods.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: root, namespace: mcp}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: nginx:1.27}]\n",
    );
    write(
        dir.path(),
        "mcpguard-test.yaml",
        "apiVersion: mcpguard.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: wrong}\nresources: [pods.yaml]\nresults:\n- resource: pod/root\n  result: admitted\n- resource: pod/root\n  result: denied\n  checks: [privileged]\n- resource: pod/root\n  result: denied\n  checks: [hostNamespaces]\n- resource: pod/missing\n  result: admitted\n",
    );
    let output = run(&["test", &dir.path().display().to_string()]);
    assert_eq!(
        stdout(&output),
        "\
TEST    RESOURCE      EXPECTED                  GOT                       RESULT
wrong   pod/root      admitted                  denied [hostNamespaces]   FAIL
wrong   pod/root      denied [privileged]       denied [hostNamespaces]   FAIL
wrong   pod/root      denied [hostNamespaces]   denied [hostNamespaces]   PASS
wrong   pod/missing   admitted                  no such resource          FAIL

1 passed, 3 failed (1 test file)
"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_malformed_test_file_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mcpguard-test.yaml");
    write(
        dir.path(),
        "mcpguard-test.yaml",
        "apiVersion: mcpguard.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: bad}\nresources: []\nresults:\n- resource: pod/x\n  result: allowed\n",
    );
    let output = run(&["test", &file.display().to_string()]);
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "mcpguard test: {}: results[0].result: unknown variant `allowed`",
            file.display()
        )),
        "{message}"
    );
    assert_eq!(output.status.code(), Some(2));

    write(
        dir.path(),
        "mcpguard-test.yaml",
        "apiVersion: mcpguard.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: bad}\nresources: []\nresults: []\n",
    );
    let output = run(&["test", &file.display().to_string()]);
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard test: {}: results: no expectation: the test would check nothing\n",
            file.display()
        )
    );
    assert_eq!(output.status.code(), Some(2));

    let empty = tempfile::tempdir().expect("tempdir");
    let output = run(&["test", &empty.path().display().to_string()]);
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard test: {}: no mcpguard-test.yaml found\n",
            empty.path().display()
        )
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn as_overrides_the_requester_of_the_test_file() {
    let output = run(&[
        "test",
        "--as",
        "jane@example.com",
        "examples/tests/exception/mcpguard-test.yaml",
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("exception-for-argocd   pod/playwright-mcp   admitted   denied [capabilities_restricted]   FAIL"),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1));
}
