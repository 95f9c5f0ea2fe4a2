//! Containers must not set runAsUser: 0
//!
//! **Restricted Fields:**
//! spec.securityContext.runAsUser
//! spec.containers[*].securityContext.runAsUser
//! spec.initContainers[*].securityContext.runAsUser
//! spec.ephemeralContainers[*].securityContext.runAsUser
//!
//! **Allowed Values:**
//! non-zero values
//! undefined/null
//! anything if the pod is in a user namespace ("hostUsers: false", v1.35+)

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, in_user_namespace};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "runAsUser",
    level: Level::Restricted,
    variants: &[
        Variant {
            min_minor: 23,
            run: run_as_user_1_23,
            overrides: &[],
        },
        Variant {
            min_minor: 35,
            run: run_as_user_1_35,
            overrides: &[],
        },
    ],
};

fn run_as_user_1_23(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters = Vec::new();
    let mut fields = Vec::new();
    if spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0) {
        bad_setters.push("pod".to_string());
        fields.push("securityContext.runAsUser".to_owned());
    }
    let bad: Vec<_> = containers(spec)
        .filter(|c| c.security_context.and_then(|sc| sc.run_as_user) == Some(0))
        .collect();
    fields.extend(bad.iter().map(|c| c.path("securityContext.runAsUser")));
    let bad_containers: Vec<&str> = bad.iter().map(|c| c.name).collect();
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "runAsUser=0",
            format!("{} must not set runAsUser=0", bad_setters.join(" and ")),
        )
        .with_fields(fields),
    )
}

/// UID 0 in a user namespace is not root on the host. Before v1.35 this
/// relaxation sat behind a perma-alpha feature gate (off by default).
fn run_as_user_1_35(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if in_user_namespace(spec) {
        return None;
    }
    run_as_user_1_23(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "runAsUser";

    #[test]
    fn passes_with_non_zero_or_unset() {
        let p = json!({"spec": {
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 1}}],
        }});
        assert_eq!(run(ID, R, v(23), p), pass());
    }

    #[test]
    fn pod_and_containers_set_zero() {
        let zero = json!({"runAsUser": 0});
        let p = json!({"spec": {
            "securityContext": zero,
            "initContainers": [{"name": "i", "securityContext": zero}],
            "containers": [{"name": "c"}],
            "ephemeralContainers": [{"name": "e", "securityContext": zero}],
        }});
        assert_eq!(
            run(ID, R, v(23), p),
            fail(
                ID,
                "runAsUser=0",
                r#"pod and containers "i", "e" must not set runAsUser=0"#
            )
        );
    }

    #[test]
    fn starts_at_v1_23() {
        let p =
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"runAsUser": 0}}]}});
        assert_eq!(run(ID, R, v(22), p.clone()), pass());
        assert_eq!(
            run(ID, R, v(23), p.clone()),
            fail(
                ID,
                "runAsUser=0",
                r#"container "a" must not set runAsUser=0"#
            )
        );
        assert_eq!(run(ID, B, v(23), p), pass());
    }

    #[test]
    fn user_namespace_relaxation_starts_at_v1_35() {
        let p = json!({"spec": {"hostUsers": false, "securityContext": {"runAsUser": 0}}});
        assert_eq!(
            run(ID, R, v(34), p.clone()),
            fail(ID, "runAsUser=0", "pod must not set runAsUser=0")
        );
        assert_eq!(run(ID, R, v(35), p), pass());
    }

    #[test]
    fn names_the_pod_and_container_fields_set_to_root() {
        let p = json!({"spec": {
            "securityContext": {"runAsUser": 0},
            "initContainers": [{"name": "i", "securityContext": {"runAsUser": 0}}],
            "containers": [{"name": "a", "securityContext": {"runAsUser": 1000}}],
        }});
        assert_eq!(
            fields(ID, R, v(23), p),
            [[
                "securityContext.runAsUser",
                "initContainers[0].securityContext.runAsUser"
            ]]
        );
        let p = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(fields(ID, R, v(23), p).is_empty());
    }
}
