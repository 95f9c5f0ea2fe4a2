//! Adding NET_RAW or capabilities beyond the default set must be disallowed.
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.capabilities.add
//! spec.initContainers[*].securityContext.capabilities.add
//! spec.ephemeralContainers[*].securityContext.capabilities.add
//!
//! **Allowed Values:**
//! undefined / empty
//! values from the default set "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER",
//! "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP",
//! "SETUID", "SYS_CHROOT"

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, join_quote};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "capabilities_baseline",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: capabilities_baseline_1_0,
        overrides: &[],
    }],
};

const ALLOWED_1_0: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut fields = Vec::new();
    let mut non_default = BTreeSet::new();
    for c in containers(spec) {
        let added = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_deref())
            .unwrap_or_default();
        let mut valid = true;
        for cap in added
            .iter()
            .filter(|cap| !ALLOWED_1_0.contains(&cap.as_str()))
        {
            valid = false;
            non_default.insert(cap.as_str());
        }
        if !valid {
            bad_containers.push(c.name);
            fields.push(c.path("securityContext.capabilities.add"));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "non-default capabilities",
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_phrase(&bad_containers),
                join_quote(&non_default)
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "capabilities_baseline";

    #[test]
    fn passes_with_default_capabilities() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"], "drop": ["NET_RAW"]}}},
        ]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn lists_containers_in_order_and_capabilities_sorted() {
        let p = json!({"spec": {
            "initContainers": [{"name": "i", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}}],
            "containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["NET_RAW", "SYS_ADMIN"]}}}],
        }});
        assert_eq!(
            run(ID, B, v(24), p),
            fail(
                ID,
                "non-default capabilities",
                r#"containers "i", "c" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#
            )
        );
    }

    #[test]
    fn overridden_by_capabilities_restricted_from_v1_22() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]}}},
        ]}});
        let want = fail(
            ID,
            "non-default capabilities",
            r#"container "a" must not include "NET_RAW" in securityContext.capabilities.add"#,
        );
        assert_eq!(run(ID, R, v(21), p.clone()), want);
        assert_eq!(run(ID, R, v(22), p.clone()), pass());
        assert_eq!(run(ID, B, v(22), p), want);
    }
}
