//! What `check` says of one object, in every output format (`check_output`) and to
//! `mcpguard test`: its own module, so that the formats and the judging both depend on it
//! and not on each other.

use serde::Serialize;
use serde_json::Value;

use super::check_changes::Change;
use mcpguard_core::field_spans::{self, ObjectSpans};
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
    pub violations: Vec<ReportedViolation>,
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

/// A violation with where its fields are written, when the input says (YAML files and stdin).
#[derive(Debug, Clone, Serialize)]
pub struct ReportedViolation {
    #[serde(flatten)]
    pub violation: Violation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldLocation>,
}

impl From<Violation> for ReportedViolation {
    fn from(violation: Violation) -> Self {
        ReportedViolation {
            violation,
            fields: Vec::new(),
        }
    }
}

/// As the violation says it: `reason (detail)`.
impl std::fmt::Display for ReportedViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.violation.fmt(f)
    }
}

impl std::ops::Deref for ReportedViolation {
    type Target = Violation;

    fn deref(&self) -> &Violation {
        &self.violation
    }
}

/// One offending field: its path in the object, and the 1-based line and column in the file
/// of that field, or of its deepest ancestor written there when it is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldLocation {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

impl ReportedViolation {
    /// Where the violation's fields are written in the object's document (`spans`); nowhere
    /// without the document's positions (JSON input).
    pub fn locate_fields(&mut self, spans: Option<&ObjectSpans>) {
        let Some(spans) = spans else {
            return;
        };
        self.fields = self
            .violation
            .fields
            .iter()
            .filter_map(|path| {
                field_spans::locate(spans, path).map(|position| FieldLocation {
                    path: path.clone(),
                    line: position.line,
                    column: position.column,
                })
            })
            .collect();
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
