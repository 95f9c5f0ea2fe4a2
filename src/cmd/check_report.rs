//! What `check` says of one object, in every output format (`check_output`) and to
//! `mcpguard test`: its own module, so that the formats and the judging both depend on it
//! and not on each other.

use serde::Serialize;
use serde_json::Value;

use super::check_changes::Change;
use mcpguard_core::violation::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Admitted,
    Denied,
    Skipped,
    /// Not judged: the file or document cannot be read, or the object does not decode.
    Error,
}

/// The answer for one object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub source: String,
    pub document: usize,
    /// 1-based line where the object's document starts (YAML files and stdin).
    #[serde(skip_serializing_if = "is_zero")]
    pub line: usize,
    /// The Helm template that wrote the document (`# Source:`), for `helm template | check -`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<json_patch::Patch>,
    /// What the mutation changes, one entry per operation of the webhook's patch (for a
    /// workload, of its pods' hardening), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip)]
    pub mutated: Value,
    /// Whether the webhook would change the pod (or the pods of the workload).
    #[serde(skip)]
    pub changed_by_mutation: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
