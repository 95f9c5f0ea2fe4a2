//! Seccomp profiles must be specified, and only runtime default and localhost
//! profiles are allowed.
//!
//! v1.19+:
//! **Restricted Fields:**
//! spec.securityContext.seccompProfile.type
//! spec.containers[*].securityContext.seccompProfile.type
//! spec.initContainers[*].securityContext.seccompProfile.type
//! spec.ephemeralContainers[*].securityContext.seccompProfile.type
//!
//! **Allowed Values:** 'RuntimeDefault', 'Localhost'
//! Note: container-level fields may be undefined if pod-level field is specified.
//! Windows pods are exempt from v1.25.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::check_seccomp_profile_baseline::{forbidden_types, valid_seccomp_type};
use super::util::{Violation, containers, containers_phrase, is_windows};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "seccompProfile_restricted",
    level: Level::Restricted,
    variants: &[
        Variant {
            min_minor: 19,
            run: seccomp_profile_restricted_1_19,
            overrides: &["seccompProfile_baseline"],
        },
        Variant {
            min_minor: 25,
            run: seccomp_profile_restricted_1_25,
            overrides: &["seccompProfile_baseline"],
        },
    ],
};

fn seccomp_profile_restricted_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    // The profiles of a forbidden type; and, when none is, the container fields left unset.
    let mut explicit_fields = Vec::new();
    let mut implicit_fields = Vec::new();
    let mut pod_set = false;

    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    if let Some(p) = pod_profile {
        if valid_seccomp_type(&p.type_) {
            pod_set = true;
        } else {
            bad_setters.push("pod".to_string());
            bad_values.insert(p.type_.as_str());
            explicit_fields.push("securityContext.seccompProfile.type".to_owned());
        }
    }

    let mut explicitly_bad = Vec::new();
    // Unset on the container and not covered by a valid pod-level profile.
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(p) if !valid_seccomp_type(&p.type_) => {
                explicitly_bad.push(c.name);
                bad_values.insert(p.type_.as_str());
                explicit_fields.push(c.path("securityContext.seccompProfile.type"));
            }
            Some(_) => {}
            None if !pod_set => {
                implicitly_bad.push(c.name);
                implicit_fields.push(c.path("securityContext.seccompProfile"));
            }
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    if !bad_setters.is_empty() {
        return Some(forbidden_types(&bad_setters, &bad_values, explicit_fields));
    }
    if !implicitly_bad.is_empty() {
        return Some(
            Violation::new(
                "seccompProfile",
                format!(
                    r#"pod or {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
                    containers_phrase(&implicitly_bad)
                ),
            )
            .with_fields(implicit_fields),
        );
    }
    None
}

/// API validation rejects seccomp profiles on Windows pods, so they cannot
/// comply.
fn seccomp_profile_restricted_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    seccomp_profile_restricted_1_19(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "seccompProfile_restricted";

    #[test]
    fn passes_with_pod_level_profile() {
        let p = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}}}],
        }});
        assert_eq!(run(ID, R, v(19), p), pass());
    }

    #[test]
    fn explicit_bad_values_reported_before_implicit() {
        let p = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "containers": [
                {"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
                {"name": "b"},
            ],
        }});
        assert_eq!(
            run(ID, R, v(19), p),
            fail(
                ID,
                "seccompProfile",
                r#"pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined""#
            )
        );
    }

    #[test]
    fn unset_everywhere() {
        let p = json!({"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]}});
        assert_eq!(
            run(ID, R, v(19), p),
            fail(
                ID,
                "seccompProfile",
                r#"pod or containers "i", "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
            )
        );
    }

    #[test]
    fn starts_at_v1_19_replacing_seccomp_baseline() {
        let p = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(run(ID, R, v(18), p.clone()), pass());
        assert_eq!(
            run(ID, R, v(19), p.clone()),
            fail(
                ID,
                "seccompProfile",
                r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
            )
        );
        assert_eq!(run(ID, B, v(19), p), pass());
    }

    #[test]
    fn windows_pods_exempt_from_v1_25() {
        let p = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "a"}]}});
        assert_eq!(
            run(ID, R, v(24), p.clone()),
            fail(
                ID,
                "seccompProfile",
                r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
            )
        );
        assert_eq!(run(ID, R, v(25), p), pass());
    }

    #[test]
    fn names_the_unset_profile_of_the_uncovered_container_only() {
        let p = json!({"spec": {"containers": [
            {"name": "ok", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
            {"name": "unset"},
        ]}});
        assert_eq!(
            fields(ID, R, v(30), p),
            [["containers[1].securityContext.seccompProfile"]]
        );
        let p = json!({"spec": {"containers": [
            {"name": "ok"},
            {"name": "bad", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
        ], "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}});
        assert_eq!(
            fields(ID, R, v(30), p),
            [["containers[1].securityContext.seccompProfile.type"]]
        );
        let p = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert!(fields(ID, R, v(30), p).is_empty());
    }
}
