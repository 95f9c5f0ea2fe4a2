//! Containers must drop ALL, and may only add NET_BIND_SERVICE.
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.capabilities.drop
//! spec.initContainers[*].securityContext.capabilities.drop
//! spec.ephemeralContainers[*].securityContext.capabilities.drop
//!
//! **Allowed Values:**
//! Must include "ALL"
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.capabilities.add
//! spec.initContainers[*].securityContext.capabilities.add
//! spec.ephemeralContainers[*].securityContext.capabilities.add
//!
//! **Allowed Values:**
//! undefined / empty
//! "NET_BIND_SERVICE"
//!
//! Windows pods are exempt from v1.25.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, is_windows, join_quote};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "capabilities_restricted",
    level: Level::Restricted,
    variants: &[
        Variant {
            min_minor: 22,
            run: capabilities_restricted_1_22,
            overrides: &["capabilities_baseline"],
        },
        Variant {
            min_minor: 25,
            run: capabilities_restricted_1_25,
            overrides: &["capabilities_baseline"],
        },
    ],
};

fn capabilities_restricted_1_22(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    let mut fields = Vec::new();

    for c in containers(spec) {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name);
            fields.push(c.path("securityContext.capabilities.drop"));
            continue;
        };
        let dropped = caps.drop.as_deref().unwrap_or_default();
        if !dropped.iter().any(|d| d == "ALL") {
            missing_drop_all.push(c.name);
            fields.push(c.path("securityContext.capabilities.drop"));
        }
        let added = caps.add.as_deref().unwrap_or_default();
        let mut added_forbidden = false;
        for cap in added.iter().filter(|cap| *cap != "NET_BIND_SERVICE") {
            added_forbidden = true;
            forbidden_caps.insert(cap.as_str());
        }
        if added_forbidden {
            adding_forbidden.push(c.name);
            fields.push(c.path("securityContext.capabilities.add"));
        }
    }

    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&forbidden_caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    Some(Violation::new("unrestricted capabilities", details.join("; ")).with_fields(fields))
}

/// API validation rejects capabilities on Windows pods, so they cannot comply.
fn capabilities_restricted_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    capabilities_restricted_1_22(meta, spec)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "capabilities_restricted";
    const REASON: &str = "unrestricted capabilities";

    #[test]
    fn passes_with_drop_all_and_net_bind_service() {
        let p = json!({"spec": {"containers": [{"name": "a", "securityContext": {"capabilities": {
            "drop": ["ALL"], "add": ["NET_BIND_SERVICE"],
        }}}]}});
        assert_eq!(run(ID, R, v(22), p), pass());
    }

    #[test]
    fn missing_drop_and_forbidden_add_together() {
        let p = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a", "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["SYS_ADMIN", "CHOWN"]}}},
                {"name": "b", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}},
            ],
        }});
        assert_eq!(
            run(ID, R, v(22), p),
            fail(
                ID,
                REASON,
                concat!(
                    r#"containers "i", "a" must set securityContext.capabilities.drop=["ALL"]; "#,
                    r#"containers "a", "b" must not include "CHOWN", "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#,
                ),
            )
        );
    }

    #[test]
    fn starts_at_v1_22_replacing_capabilities_baseline() {
        let p = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(run(ID, R, v(21), p.clone()), pass());
        assert_eq!(
            run(ID, R, v(22), p.clone()),
            fail(
                ID,
                REASON,
                r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
            )
        );
        assert_eq!(run(ID, B, v(22), p), pass());
    }

    #[test]
    fn windows_pods_exempt_from_v1_25() {
        let p =
            json!({"spec": {"os": {"name": "windows"}, "ephemeralContainers": [{"name": "e"}]}});
        assert_eq!(
            run(ID, R, v(24), p.clone()),
            fail(
                ID,
                REASON,
                r#"container "e" must set securityContext.capabilities.drop=["ALL"]"#
            )
        );
        assert_eq!(run(ID, R, v(25), p), pass());
    }

    #[test]
    fn names_the_drop_and_add_fields_of_the_offending_containers() {
        let p = json!({"spec": {
            "containers": [
                {"name": "ok", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
                {"name": "adds", "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}},
            ],
            "ephemeralContainers": [{"name": "debug"}],
        }});
        assert_eq!(
            fields(ID, R, v(25), p),
            [[
                "containers[1].securityContext.capabilities.add",
                "ephemeralContainers[0].securityContext.capabilities.drop"
            ]]
        );
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
            {"name": "b", "securityContext": {"capabilities": {"drop": ["ALL"]}}},
        ]}});
        assert!(fields(ID, R, v(25), p).is_empty());
    }
}
