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
            },
            Violation {
                check: "requireRuntimeClass".into(),
                reason: "runtimeClassName != \"gvisor\"".into(),
                detail: String::new(),
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
