//! One module per subcommand: each wires I/O around the library's pure parts.

pub mod args;
pub mod audit;
pub mod bridge;
pub mod bundle;
pub mod cert_files;
pub mod certs;
pub mod check;
pub mod check_changes;
pub mod check_output;
pub mod check_report;
pub mod copy_self;
pub mod inputs;
pub mod policy_test;
pub mod render;
pub mod serve;

use std::path::Path;

use mcpguard_core::policy::{self, Policy, PolicyError};

/// The policy from `--policy`, or the embedded default.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, PolicyError> {
    match path {
        Some(path) => load_policy_file(path),
        None => Policy::embedded_default(),
    }
}

/// Reads and validates a policy file. The error names the file.
pub fn load_policy_file(path: &Path) -> Result<Policy, PolicyError> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| PolicyError {
        source_name: source_name.clone(),
        path: String::new(),
        message: format!("cannot read file: {err}"),
    })?;
    policy::parse_str(&text, &source_name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::load_policy_file as load_file;

    const RESTRICTED: &str = include_str!("../../policies/mcp-restricted.yaml");

    fn with_spec(spec: &str) -> String {
        format!(
            "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: t}}\nspec:\n{spec}"
        )
    }

    #[test]
    fn load_file_reads_a_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, RESTRICTED).unwrap();
        assert_eq!(load_file(&path).unwrap().name, "mcp-restricted");
    }

    #[test]
    fn load_file_names_a_missing_path() {
        let err = load_file(Path::new("/nonexistent/mcpguard/policy.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy /nonexistent/mcpguard/policy.yaml: cannot read file: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn load_file_names_the_file_in_validation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(
        &path,
        with_spec(
            "  namespaces: [kube-public]\n  podSecurity: {level: restricted, version: latest}\n",
        ),
    )
    .unwrap();
        let err = load_file(&path).unwrap_err();
        assert_eq!(err.source_name, path.display().to_string());
        assert_eq!(err.path, "spec.namespaces[0]");
    }
}
