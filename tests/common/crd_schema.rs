//! Validation of documents against a generated CRD's schema, as the API server applies it
//! under kubectl's strict field validation, by Python's `jsonschema` (an implementation
//! independent of ours; it comes with `kubernetes-validate`, which `.ci/run` installs).

use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// Per document, its sorted errors (`<dotted path>: <message>`); `None` when python3 with
/// jsonschema is missing and `MCPGUARD_SKIP_EXTERNAL_TOOLS=1` opts in to skipping (without
/// the opt-in a missing validator fails the test).
pub fn crd_schema_errors(
    crd: &CustomResourceDefinition,
    documents: &[Value],
) -> Option<Vec<Vec<String>>> {
    if !super::external_tools::python_jsonschema_available() {
        return None;
    }
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has an openAPIV3Schema");
    let input = json!({"schema": schema, "documents": documents});
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.json");
    std::fs::write(&path, input.to_string()).expect("write the validator's input");
    let stdout = super::external_tools::stdout_of(
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/crd_schema.py"
            ))
            .arg(&path),
    );
    Some(serde_json::from_slice(&stdout).expect("a JSON list of error lists"))
}
