//! The default /proc masks are set up to reduce attack surface, and should be
//! required by the baseline policy unless the pod is in a user namespace
//! ("hostUsers: false", v1.35+).
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.procMount
//! spec.initContainers[*].securityContext.procMount
//! spec.ephemeralContainers[*].securityContext.procMount
//!
//! **Allowed Values:** undefined/null, "Default" (or any value if "hostUsers"
//! is false, v1.35+)

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, in_user_namespace, join_quote};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "procMount",
    level: Level::Baseline,
    variants: &[
        Variant {
            min_minor: 0,
            run: proc_mount_1_0,
            overrides: &[],
        },
        Variant {
            min_minor: 35,
            run: proc_mount_1_35_baseline,
            overrides: &[],
        },
    ],
};

/// Unconditional: also what `procMount_restricted` runs.
pub(crate) fn proc_mount_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut forbidden_types = BTreeSet::new();
    let mut fields = Vec::new();
    for c in containers(spec) {
        let proc_mount = c.security_context.and_then(|sc| sc.proc_mount.as_deref());
        if let Some(t) = proc_mount.filter(|t| *t != "Default") {
            bad_containers.push(c.name);
            forbidden_types.insert(t);
            fields.push(c.path("securityContext.procMount"));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "procMount",
            format!(
                "{} must not set securityContext.procMount to {}",
                containers_phrase(&bad_containers),
                join_quote(&forbidden_types)
            ),
        )
        .with_fields(fields),
    )
}

/// Before v1.35 this relaxation sat behind a perma-alpha feature gate (off by
/// default); PSA dropped the gate and made it a v1.35 policy change.
fn proc_mount_1_35_baseline(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if in_user_namespace(spec) {
        return None;
    }
    proc_mount_1_0(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::Version;
    use crate::pss::test_util::*;

    const ID: &str = "procMount";

    #[test]
    fn passes_with_default_or_unset() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"procMount": "Default"}},
            {"name": "b", "securityContext": {}},
        ]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn unmasked_fails_and_types_are_sorted() {
        let p = json!({"spec": {
            "initContainers": [{"name": "i", "securityContext": {"procMount": "Unmasked"}}],
            "containers": [{"name": "c", "securityContext": {"procMount": "Bogus"}}],
        }});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(
                ID,
                "procMount",
                r#"containers "i", "c" must not set securityContext.procMount to "Bogus", "Unmasked""#
            )
        );
    }

    #[test]
    fn user_namespace_relaxation_starts_at_v1_35() {
        let p = json!({"spec": {"hostUsers": false, "containers": [
            {"name": "a", "securityContext": {"procMount": "Unmasked"}},
        ]}});
        let want = fail(
            ID,
            "procMount",
            r#"container "a" must not set securityContext.procMount to "Unmasked""#,
        );
        assert_eq!(run(ID, B, v(34), p.clone()), want);
        assert_eq!(run(ID, B, v(35), p.clone()), pass());
        assert_eq!(run(ID, B, Version::Latest, p), pass());
    }

    #[test]
    fn host_users_true_is_not_relaxed() {
        let p = json!({"spec": {"hostUsers": true, "containers": [
            {"name": "a", "securityContext": {"procMount": "Unmasked"}},
        ]}});
        assert_eq!(
            run(ID, B, v(35), p),
            fail(
                ID,
                "procMount",
                r#"container "a" must not set securityContext.procMount to "Unmasked""#
            )
        );
    }

    #[test]
    fn restricted_uses_procmount_restricted_from_v1_35() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"procMount": "Unmasked"}},
        ]}});
        let detail = r#"container "a" must not set securityContext.procMount to "Unmasked""#;
        assert_eq!(run(ID, R, v(34), p.clone()), fail(ID, "procMount", detail));
        assert_eq!(run(ID, R, v(35), p), pass());
    }
}
