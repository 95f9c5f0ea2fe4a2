//! One failed check, in the form Pod Security Admission made familiar:
//! `reason (detail)`, e.g. `runAsNonRoot != true (pod or container "a" must set securityContext.runAsNonRoot=true)`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Stable check ID (`allowPrivilegeEscalation`, `allowedRegistries`), for exceptions,
    /// metrics and audit annotations.
    pub check: String,
    pub reason: String,
    pub detail: String,
    /// The offending fields, as dotted paths into the judged object
    /// (`spec.template.spec.containers[1].securityContext.privileged`); a field that fails by
    /// being unset is named where it would be. Empty when the finding is the object's as a
    /// whole. Only `check` shows them (with their lines): the webhook's answers, reports and
    /// audit notes keep the shape they have always had.
    #[serde(skip)]
    pub fields: Vec<String>,
}

impl Violation {
    /// The fields rebased under `prefix`, when the object judged sits at `prefix` in a larger
    /// one (a pod spec in a Deployment's template).
    pub fn prefix_fields(&mut self, prefix: &str) {
        for field in &mut self.fields {
            *field = format!("{prefix}.{field}");
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{} ({})", self.reason, self.detail)
        }
    }
}

impl From<crate::pss::CheckResult> for Violation {
    fn from(result: crate::pss::CheckResult) -> Self {
        Violation {
            check: result.check_id.to_owned(),
            reason: result.forbidden_reason,
            detail: result.forbidden_detail,
            fields: result.fields,
        }
    }
}

/// `container "a"` or `containers "a", "b"`.
pub fn containers_phrase(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let noun = if names.len() == 1 {
        "container"
    } else {
        "containers"
    };
    format!("{noun} {}", quoted.join(", "))
}

/// The denial message, modelled on PSA's:
/// `pods "x" is forbidden: violates mcpguard policy "p": a (b), c (d)`.
pub fn denial_message(
    resource: &str,
    name: &str,
    policy: &str,
    violations: &[Violation],
) -> String {
    format!(
        "{resource} {name:?} is forbidden: {}",
        violation_summary(policy, violations)
    )
}

/// `violates mcpguard policy "p": a (b), c (d)`.
pub fn violation_summary(policy: &str, violations: &[Violation]) -> String {
    let list: Vec<String> = violations.iter().map(Violation::to_string).collect();
    format!("violates mcpguard policy {policy:?}: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lists_every_violation_in_psa_form() {
        let violations = vec![
            Violation {
                check: "allowPrivilegeEscalation".into(),
                reason: "allowPrivilegeEscalation != false".into(),
                detail: "container \"a\" must set securityContext.allowPrivilegeEscalation=false"
                    .into(),
                fields: Vec::new(),
            },
            Violation {
                check: "requireRuntimeClass".into(),
                reason: "runtimeClassName != \"gvisor\"".into(),
                detail: String::new(),
                fields: Vec::new(),
            },
        ];
        assert_eq!(
            denial_message("pods", "x", "mcp-restricted", &violations),
            "pods \"x\" is forbidden: violates mcpguard policy \"mcp-restricted\": allowPrivilegeEscalation != false (container \"a\" must set securityContext.allowPrivilegeEscalation=false), runtimeClassName != \"gvisor\""
        );
    }

    #[test]
    fn container_phrase_pluralises() {
        assert_eq!(containers_phrase(&["a"]), "container \"a\"");
        assert_eq!(containers_phrase(&["a", "b"]), "containers \"a\", \"b\"");
    }
}
