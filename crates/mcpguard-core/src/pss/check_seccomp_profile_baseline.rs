//! If seccomp profiles are specified, only runtime default and localhost
//! profiles are allowed.
//!
//! v1.0 - v1.18:
//! **Restricted Fields:**
//! metadata.annotations['seccomp.security.alpha.kubernetes.io/pod']
//! metadata.annotations['container.seccomp.security.alpha.kubernetes.io/*']
//!
//! **Allowed Values:** 'runtime/default', 'docker/default', 'localhost/*', undefined
//!
//! v1.19+:
//! **Restricted Fields:**
//! spec.securityContext.seccompProfile.type
//! spec.containers[*].securityContext.seccompProfile.type
//! spec.initContainers[*].securityContext.seccompProfile.type
//! spec.ephemeralContainers[*].securityContext.seccompProfile.type
//!
//! **Allowed Values:** 'RuntimeDefault', 'Localhost', undefined

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{
    Violation, containers, containers_phrase, go_quote, join, join_quote, pluralize,
};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "seccompProfile_baseline",
    level: Level::Baseline,
    variants: &[
        Variant {
            min_minor: 0,
            run: seccomp_profile_baseline_1_0,
            overrides: &[],
        },
        Variant {
            min_minor: 19,
            run: seccomp_profile_baseline_1_19,
            overrides: &[],
        },
    ],
};

const ANNOTATION_KEY_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const ANNOTATION_KEY_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

pub(crate) fn valid_seccomp_type(t: &str) -> bool {
    matches!(t, "Localhost" | "RuntimeDefault")
}

fn valid_annotation_value(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

/// Before the field existed (v1.19), seccomp was set through alpha annotations.
fn seccomp_profile_baseline_1_0(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let annotations = meta.annotations.as_ref()?;
    // PSA looks up the pod key and one key per container name; walking the
    // annotations instead gives the same set without building keys.
    let mut forbidden = BTreeSet::new();
    for (key, val) in annotations {
        let applies = key == ANNOTATION_KEY_POD
            || key
                .strip_prefix(ANNOTATION_KEY_CONTAINER_PREFIX)
                .is_some_and(|name| containers(spec).any(|c| c.name == name));
        if applies && !valid_annotation_value(val) {
            forbidden.insert(format!("{key}={}", go_quote(val)));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                pluralize("annotation", "annotations", forbidden.len()),
                join(&forbidden, ", ")
            ),
        )
        // The pod's metadata (see `Violation::fields`), named whole: the keys hold dots.
        .with_fields(vec!["metadata.annotations".to_owned()]),
    )
}

fn seccomp_profile_baseline_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut fields = Vec::new();
    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    if let Some(p) = pod_profile.filter(|p| !valid_seccomp_type(&p.type_)) {
        bad_setters.push("pod".to_string());
        bad_values.insert(p.type_.as_str());
        fields.push("securityContext.seccompProfile.type".to_owned());
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        let profile = c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref());
        if let Some(p) = profile.filter(|p| !valid_seccomp_type(&p.type_)) {
            bad_containers.push(c.name);
            bad_values.insert(p.type_.as_str());
            fields.push(c.path("securityContext.seccompProfile.type"));
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }
    Some(forbidden_types(&bad_setters, &bad_values, fields))
}

/// The violation of the pod and containers (`setters`) that set a forbidden profile type.
pub(crate) fn forbidden_types(
    setters: &[String],
    types: &BTreeSet<&str>,
    fields: Vec<String>,
) -> Violation {
    Violation::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(types)
        ),
    )
    .with_fields(fields)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "seccompProfile_baseline";

    #[test]
    fn passes_with_allowed_or_unset_profiles() {
        let p = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "a", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}},
                {"name": "b"},
            ],
        }});
        assert_eq!(run(ID, B, v(19), p), pass());
    }

    #[test]
    fn field_check_names_setters_and_sorted_values() {
        let p = json!({"spec": {
            "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "initContainers": [{"name": "i", "securityContext": {"seccompProfile": {"type": "Bogus"}}}],
            "containers": [{"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
        }});
        assert_eq!(
            run(ID, B, v(25), p),
            fail(
                ID,
                "seccompProfile",
                r#"pod and containers "i", "c" must not set securityContext.seccompProfile.type to "Bogus", "Unconfined""#
            )
        );
    }

    #[test]
    fn annotations_before_v1_19_fields_from_v1_19() {
        let p = json!({
            "metadata": {"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                "container.seccomp.security.alpha.kubernetes.io/a": "docker/default",
                "container.seccomp.security.alpha.kubernetes.io/b": "",
                "container.seccomp.security.alpha.kubernetes.io/not-a-container": "unconfined",
            }},
            "spec": {
                "containers": [{"name": "a"}, {"name": "b"}],
                "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            },
        });
        assert_eq!(
            run(ID, B, v(18), p.clone()),
            fail(
                ID,
                "seccompProfile",
                concat!(
                    r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/b="", "#,
                    r#"seccomp.security.alpha.kubernetes.io/pod="unconfined""#,
                ),
            )
        );
        assert_eq!(
            run(ID, B, v(19), p),
            fail(
                ID,
                "seccompProfile",
                r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#
            )
        );
    }

    #[test]
    fn annotation_check_also_applies_at_restricted_before_v1_19() {
        let p = json!({"metadata": {"annotations": {
            "container.seccomp.security.alpha.kubernetes.io/e": "unconfined",
        }}, "spec": {"ephemeralContainers": [{"name": "e"}]}});
        let want = fail(
            ID,
            "seccompProfile",
            r#"forbidden annotation container.seccomp.security.alpha.kubernetes.io/e="unconfined""#,
        );
        assert_eq!(run(ID, R, v(18), p.clone()), want);
        assert_eq!(run(ID, R, v(19), p), pass());
    }
}
