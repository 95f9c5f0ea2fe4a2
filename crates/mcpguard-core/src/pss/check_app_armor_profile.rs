//! On supported hosts, the 'runtime/default' AppArmor profile is applied by
//! default. The baseline policy should prevent overriding or disabling the
//! default AppArmor profile, or restrict overrides to an allowed set of profiles.
//!
//! **Restricted Fields:**
//! metadata.annotations['container.apparmor.security.beta.kubernetes.io/*']
//!
//! **Allowed Values:** 'runtime/default', 'localhost/*', empty, undefined
//!
//! **Restricted Fields:**
//! spec.securityContext.appArmorProfile.type
//! spec.containers[*].securityContext.appArmorProfile.type
//! spec.initContainers[*].securityContext.appArmorProfile.type
//! spec.ephemeralContainers[*].securityContext.appArmorProfile.type
//!
//! **Allowed Values:** 'RuntimeDefault', 'Localhost', undefined

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, go_quote, join_quote, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "appArmorProfile",
    level: Level::Baseline,
    // PSA added the field checks to its only (v1.0) variant rather than to a
    // new one, so they apply at every version.
    variants: &[Variant {
        min_minor: 0,
        run: app_armor_profile_1_0,
        overrides: &[],
    }],
};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_annotation_value(profile: &str) -> bool {
    profile.is_empty() || profile == "runtime/default" || profile.starts_with("localhost/")
}

fn allowed_type(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}

fn app_armor_profile_1_0(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut fields = Vec::new();

    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref());
    if let Some(p) = pod_profile.filter(|p| !allowed_type(&p.type_)) {
        bad_setters.push("pod".to_string());
        bad_values.insert(p.type_.as_str());
        fields.push("securityContext.appArmorProfile.type".to_owned());
    }

    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        let profile = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref());
        if let Some(p) = profile.filter(|p| !allowed_type(&p.type_)) {
            bad_containers.push(c.name);
            bad_values.insert(p.type_.as_str());
            fields.push(c.path("securityContext.appArmorProfile.type"));
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }

    let mut forbidden_annotations: Vec<String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| k.starts_with(ANNOTATION_PREFIX) && !allowed_annotation_value(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    if !forbidden_annotations.is_empty() {
        // The pod's metadata, not its spec (see `Violation::fields`); the annotations are
        // named whole, as their keys hold dots and slashes.
        fields.push("metadata.annotations".to_owned());
    }

    // Field values come first (sorted), then the annotations (sorted).
    let mut bad_value_list: Vec<String> = bad_values.into_iter().map(str::to_string).collect();
    if !forbidden_annotations.is_empty() {
        forbidden_annotations.sort();
        let setter = pluralize("annotation", "annotations", forbidden_annotations.len());
        bad_setters.push(setter.to_string());
        bad_value_list.append(&mut forbidden_annotations);
    }

    if bad_setters.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            pluralize(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                bad_value_list.len(),
            ),
            format!(
                "{} must not set AppArmor profile type to {}",
                bad_setters.join(" and "),
                join_quote(&bad_value_list)
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "appArmorProfile";

    #[test]
    fn passes_with_allowed_fields_and_annotations() {
        let p = json!({
            "metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/a": "runtime/default",
                "container.apparmor.security.beta.kubernetes.io/b": "localhost/prof",
                "container.apparmor.security.beta.kubernetes.io/c": "",
                "env": "unconfined",
            }},
            "spec": {
                "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}],
            },
        });
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn unconfined_pod() {
        let p = json!({"spec": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(
                ID,
                "forbidden AppArmor profile",
                r#"pod must not set AppArmor profile type to "Unconfined""#
            )
        );
    }

    #[test]
    fn unconfined_init_and_ephemeral_containers() {
        let sc = json!({"appArmorProfile": {"type": "Unconfined"}});
        let p = json!({"spec": {
            "initContainers": [{"name": "bar", "securityContext": sc}],
            "containers": [{"name": "foo"}],
            "ephemeralContainers": [{"name": "dbg", "securityContext": sc}],
        }});
        assert_eq!(
            run(ID, R, v(35), p),
            fail(
                ID,
                "forbidden AppArmor profile",
                r#"containers "bar", "dbg" must not set AppArmor profile type to "Unconfined""#
            )
        );
    }

    #[test]
    fn annotations_are_read_at_every_version() {
        let p = json!({"metadata": {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/": "bogus",
            "container.apparmor.security.beta.kubernetes.io/a": "",
            "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
            "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/f": "unknown",
        }}});
        let want = fail(
            ID,
            "forbidden AppArmor profiles",
            concat!(
                "annotations must not set AppArmor profile type to ",
                r#""container.apparmor.security.beta.kubernetes.io/="bogus"", "#,
                r#""container.apparmor.security.beta.kubernetes.io/e="unconfined"", "#,
                r#""container.apparmor.security.beta.kubernetes.io/f="unknown"""#,
            ),
        );
        assert_eq!(run(ID, B, v(0), p.clone()), want);
        assert_eq!(run(ID, B, v(35), p), want);
    }

    #[test]
    fn pod_containers_and_annotation_together() {
        let p = json!({
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined\n"}},
            "spec": {
                "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
                "containers": [
                    {"name": "a", "securityContext": {"appArmorProfile": {"type": "Bogus"}}},
                    {"name": "b", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
                ],
            },
        });
        assert_eq!(
            run(ID, B, v(30), p),
            fail(
                ID,
                "forbidden AppArmor profiles",
                concat!(
                    r#"pod and containers "a", "b" and annotation must not set AppArmor profile type to "#,
                    r#""Bogus", "Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined\n"""#,
                ),
            )
        );
    }

    #[test]
    fn names_the_profile_field_and_the_pod_annotations() {
        let p = json!({
            "metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/b": "unconfined"
            }},
            "spec": {"containers": [
                {"name": "a", "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}},
                {"name": "b", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
            ]},
        });
        assert_eq!(
            fields(ID, B, v(0), p),
            [[
                "containers[1].securityContext.appArmorProfile.type",
                "metadata.annotations"
            ]]
        );
        let p = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(fields(ID, B, v(0), p).is_empty());
    }
}
