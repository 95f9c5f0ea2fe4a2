//! What a user reads when a YAML file is wrong names the problem in plain words, never the
//! YAML library's advice to its programmer ("set DuplicateKeyPolicy in Options", "use
//! from_str_multiple"), through the real binary.

mod cli_support;

use cli_support::{mcpguard_command, stderr};
use pretty_assertions::assert_eq;

/// `mcpguard serve --policy FILE` with `text` in FILE: its exit code and stderr.
fn serve_with_policy(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).expect("policy file");
    let output = mcpguard_command(&["serve", "--cluster", "off", "--policy"])
        .arg(&path)
        .output()
        .expect("mcpguard runs");
    let shown = stderr(&output).replace(&path.display().to_string(), "POLICY");
    (output.status.code(), shown)
}

#[test]
fn a_duplicate_key_is_named_in_plain_words() {
    let (code, stderr) =
        serve_with_policy("apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nkind: MCPPolicy\n");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "mcpguard serve: policy POLICY: not a valid YAML/JSON document: duplicate key `kind` at line 3, column 1\n"
    );
}

#[test]
fn a_second_document_is_named_in_plain_words() {
    let policy = include_str!("../policies/mcp-restricted.yaml");
    let (code, stderr) = serve_with_policy(&format!("{policy}---\n{policy}"));
    assert_eq!(code, Some(1));
    let line =
        policy.lines().count() + 2 + policy.lines().take_while(|l| l.starts_with('#')).count();
    assert_eq!(
        stderr,
        format!(
            "mcpguard serve: policy POLICY: not a valid YAML/JSON document: the file holds more \
             than one YAML document; only one is read here (remove the `---` separators, or \
             split the file) at line {line}, column 1\n"
        )
    );
    assert!(!stderr.contains("from_str"), "{stderr}");
}
