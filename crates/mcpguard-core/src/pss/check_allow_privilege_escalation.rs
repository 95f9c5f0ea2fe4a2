//! Privilege escalation (such as via set-user-ID or set-group-ID file mode)
//! should not be allowed.
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.allowPrivilegeEscalation
//! spec.initContainers[*].securityContext.allowPrivilegeEscalation
//! spec.ephemeralContainers[*].securityContext.allowPrivilegeEscalation
//!
//! **Allowed Values:** false (any value for Windows pods, v1.25+)

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, is_windows};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "allowPrivilegeEscalation",
    level: Level::Restricted,
    // The field appeared in Kubernetes 1.8.
    variants: &[
        Variant {
            min_minor: 8,
            run: allow_privilege_escalation_1_8,
            overrides: &[],
        },
        Variant {
            min_minor: 25,
            run: allow_privilege_escalation_1_25,
            overrides: &[],
        },
    ],
};

fn allow_privilege_escalation_1_8(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    // Unset means allowed, so only an explicit false passes.
    let bad: Vec<_> = containers(spec)
        .filter(|c| {
            c.security_context
                .and_then(|sc| sc.allow_privilege_escalation)
                != Some(false)
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<&str> = bad.iter().map(|c| c.name).collect();
    Some(
        Violation::new(
            "allowPrivilegeEscalation != false",
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_phrase(&names)
            ),
        )
        .with_fields(
            bad.iter()
                .map(|c| c.path("securityContext.allowPrivilegeEscalation"))
                .collect(),
        ),
    )
}

/// API validation rejects this field on Windows pods, so they cannot comply.
fn allow_privilege_escalation_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    allow_privilege_escalation_1_8(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "allowPrivilegeEscalation";
    const REASON: &str = "allowPrivilegeEscalation != false";

    #[test]
    fn passes_when_false_everywhere() {
        let sc = json!({"allowPrivilegeEscalation": false});
        let p = json!({"spec": {
            "initContainers": [{"name": "i", "securityContext": sc}],
            "containers": [{"name": "c", "securityContext": sc}],
        }});
        assert_eq!(run(ID, R, v(8), p), pass());
    }

    #[test]
    fn unset_and_true_fail_in_visit_order() {
        let p = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "ok", "securityContext": {"allowPrivilegeEscalation": false}},
                {"name": "c", "securityContext": {"allowPrivilegeEscalation": true}},
            ],
            "ephemeralContainers": [{"name": "e", "securityContext": {}}],
        }});
        assert_eq!(
            run(ID, R, v(8), p),
            fail(
                ID,
                REASON,
                r#"containers "i", "c", "e" must set securityContext.allowPrivilegeEscalation=false"#
            )
        );
    }

    #[test]
    fn starts_at_v1_8_and_not_at_baseline() {
        let p = json!({"spec": {"containers": [{"name": "a"}]}});
        let want = fail(
            ID,
            REASON,
            r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#,
        );
        assert_eq!(run(ID, R, v(7), p.clone()), pass());
        assert_eq!(run(ID, R, v(8), p.clone()), want);
        assert_eq!(run(ID, B, v(8), p), pass());
    }

    #[test]
    fn windows_pods_exempt_from_v1_25() {
        let p = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "a"}]}});
        assert_eq!(
            run(ID, R, v(24), p.clone()),
            fail(
                ID,
                REASON,
                r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
            )
        );
        assert_eq!(run(ID, R, v(25), p), pass());
    }

    #[test]
    fn linux_pods_not_exempt_at_v1_25() {
        let p = json!({"spec": {"os": {"name": "linux"}, "containers": [{"name": "a"}]}});
        assert_eq!(
            run(ID, R, v(25), p),
            fail(
                ID,
                REASON,
                r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
            )
        );
    }
}
