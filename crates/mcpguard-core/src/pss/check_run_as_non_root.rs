//! Containers must be required to run as non-root users.
//!
//! **Restricted Fields:**
//! spec.securityContext.runAsNonRoot
//! spec.containers[*].securityContext.runAsNonRoot
//! spec.initContainers[*].securityContext.runAsNonRoot
//! spec.ephemeralContainers[*].securityContext.runAsNonRoot
//!
//! **Allowed Values:**
//! true
//! undefined/null at container-level if pod-level is set to true
//! anything if the pod is in a user namespace ("hostUsers: false", v1.35+)

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, in_user_namespace};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "runAsNonRoot",
    level: Level::Restricted,
    variants: &[
        Variant {
            min_minor: 0,
            run: run_as_non_root_1_0,
            overrides: &[],
        },
        Variant {
            min_minor: 35,
            run: run_as_non_root_1_35,
            overrides: &[],
        },
    ],
};

const REASON: &str = "runAsNonRoot != true";

fn run_as_non_root_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters = Vec::new();
    // The fields set to false; and, when none is, the container fields left unset.
    let mut explicit_fields = Vec::new();
    let mut implicit_fields = Vec::new();
    let pod_value = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_non_root);
    if pod_value == Some(false) {
        bad_setters.push("pod".to_string());
        explicit_fields.push("securityContext.runAsNonRoot".to_owned());
    }
    let pod_non_root = pod_value == Some(true);

    let mut explicitly_bad = Vec::new();
    // Unset on the container and not covered by a pod-level true.
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => {
                explicitly_bad.push(c.name);
                explicit_fields.push(c.path("securityContext.runAsNonRoot"));
            }
            Some(true) => {}
            None if !pod_non_root => {
                implicitly_bad.push(c.name);
                implicit_fields.push(c.path("securityContext.runAsNonRoot"));
            }
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    if !bad_setters.is_empty() {
        return Some(
            Violation::new(
                REASON,
                format!(
                    "{} must not set securityContext.runAsNonRoot=false",
                    bad_setters.join(" and ")
                ),
            )
            .with_fields(explicit_fields),
        );
    }
    if !implicitly_bad.is_empty() {
        return Some(
            Violation::new(
                REASON,
                format!(
                    "pod or {} must set securityContext.runAsNonRoot=true",
                    containers_phrase(&implicitly_bad)
                ),
            )
            .with_fields(implicit_fields),
        );
    }
    None
}

/// User-namespace pods run as root only inside their namespace. Before v1.35
/// this relaxation sat behind a perma-alpha feature gate (off by default).
fn run_as_non_root_1_35(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if in_user_namespace(spec) {
        return None;
    }
    run_as_non_root_1_0(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "runAsNonRoot";
    const REASON: &str = "runAsNonRoot != true";

    #[test]
    fn passes_with_pod_level_true() {
        let p = json!({"spec": {
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": true}}],
        }});
        assert_eq!(run(ID, R, v(0), p), pass());
    }

    #[test]
    fn passes_with_every_container_true() {
        let sc = json!({"runAsNonRoot": true});
        let p = json!({"spec": {
            "initContainers": [{"name": "i", "securityContext": sc}],
            "containers": [{"name": "c", "securityContext": sc}],
        }});
        assert_eq!(run(ID, R, v(0), p), pass());
    }

    #[test]
    fn explicit_false_wins_over_implicit() {
        let p = json!({"spec": {
            "securityContext": {"runAsNonRoot": false},
            "containers": [
                {"name": "a", "securityContext": {"runAsNonRoot": false}},
                {"name": "b"},
                {"name": "c", "securityContext": {"runAsNonRoot": false}},
            ],
        }});
        assert_eq!(
            run(ID, R, v(0), p),
            fail(
                ID,
                REASON,
                r#"pod and containers "a", "c" must not set securityContext.runAsNonRoot=false"#
            )
        );
    }

    #[test]
    fn implicit_containers_across_lists() {
        let p = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "c", "securityContext": {"runAsNonRoot": true}}],
            "ephemeralContainers": [{"name": "e"}],
        }});
        assert_eq!(
            run(ID, R, v(20), p),
            fail(
                ID,
                REASON,
                r#"pod or containers "i", "e" must set securityContext.runAsNonRoot=true"#
            )
        );
    }

    #[test]
    fn user_namespace_relaxation_starts_at_v1_35() {
        let p = json!({"spec": {"hostUsers": false, "containers": [{"name": "a"}]}});
        assert_eq!(
            run(ID, R, v(34), p.clone()),
            fail(
                ID,
                REASON,
                r#"pod or container "a" must set securityContext.runAsNonRoot=true"#
            )
        );
        assert_eq!(run(ID, R, v(35), p), pass());
    }

    #[test]
    fn windows_pods_are_not_exempt() {
        let p = json!({"spec": {"os": {"name": "windows"}, "containers": [{"name": "a"}]}});
        assert_eq!(
            run(ID, R, v(35), p),
            fail(
                ID,
                REASON,
                r#"pod or container "a" must set securityContext.runAsNonRoot=true"#
            )
        );
    }

    #[test]
    fn names_where_the_missing_field_would_be() {
        let p = json!({"spec": {"containers": [
            {"name": "ok", "securityContext": {"runAsNonRoot": true}},
            {"name": "unset"},
        ]}});
        assert_eq!(
            fields(ID, R, v(30), p),
            [["containers[1].securityContext.runAsNonRoot"]]
        );
        let p = json!({"spec": {
            "securityContext": {"runAsNonRoot": false},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": false}}],
        }});
        assert_eq!(
            fields(ID, R, v(30), p),
            [[
                "securityContext.runAsNonRoot",
                "containers[1].securityContext.runAsNonRoot"
            ]]
        );
        let p = json!({"spec": {
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert!(fields(ID, R, v(30), p).is_empty());
    }
}
