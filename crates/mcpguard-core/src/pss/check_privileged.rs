//! Privileged Pods disable most security mechanisms and must be disallowed.
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.privileged
//! spec.initContainers[*].securityContext.privileged
//! spec.ephemeralContainers[*].securityContext.privileged
//!
//! **Allowed Values:** false, undefined/null

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "privileged",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: privileged_1_0,
        overrides: &[],
    }],
};

fn privileged_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<_> = containers(spec)
        .filter(|c| c.security_context.and_then(|sc| sc.privileged) == Some(true))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<&str> = bad.iter().map(|c| c.name).collect();
    Some(
        Violation::new(
            "privileged",
            format!(
                "{} must not set securityContext.privileged=true",
                containers_phrase(&names)
            ),
        )
        .with_fields(
            bad.iter()
                .map(|c| c.path("securityContext.privileged"))
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "privileged";

    #[test]
    fn passes_when_unset_or_false() {
        let p = json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "securityContext": {"privileged": false}},
        ]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn names_one_container() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"privileged": true}},
        ]}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(
                ID,
                "privileged",
                r#"container "a" must not set securityContext.privileged=true"#
            )
        );
    }

    #[test]
    fn names_init_regular_and_ephemeral_in_order() {
        let sc = json!({"privileged": true});
        let p = json!({"spec": {
            "initContainers": [{"name": "init", "securityContext": sc}],
            "containers": [{"name": "ok"}, {"name": "main", "securityContext": sc}],
            "ephemeralContainers": [{"name": "debug", "securityContext": sc}],
        }});
        assert_eq!(
            run(ID, R, v(30), p),
            fail(
                ID,
                "privileged",
                r#"containers "init", "main", "debug" must not set securityContext.privileged=true"#
            )
        );
    }

    #[test]
    fn names_the_field_of_the_privileged_container_only() {
        let p = json!({"spec": {"containers": [
            {"name": "ok", "securityContext": {"privileged": false}},
            {"name": "bad", "securityContext": {"privileged": true}},
        ]}});
        assert_eq!(
            fields(ID, B, v(0), p),
            [["containers[1].securityContext.privileged"]]
        );
        let p = json!({"spec": {
            "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
            "containers": [{"name": "ok"}],
        }});
        assert_eq!(
            fields(ID, B, v(0), p),
            [["initContainers[0].securityContext.privileged"]]
        );
        let p = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(fields(ID, B, v(0), p).is_empty());
    }
}
