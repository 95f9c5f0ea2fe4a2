//! Setting the SELinux type is restricted, and setting a custom SELinux user or
//! role option is forbidden.
//!
//! **Restricted Fields:**
//! spec.securityContext.seLinuxOptions.type
//! spec.containers[*].securityContext.seLinuxOptions.type
//! spec.initContainers[*].securityContext.seLinuxOptions.type
//! spec.ephemeralContainers[*].securityContext.seLinuxOptions.type
//!
//! **Allowed Values:**
//! undefined/empty
//! container_t
//! container_init_t
//! container_kvm_t
//! container_engine_t (v1.31+)
//!
//! **Restricted Fields:**
//! spec.securityContext.seLinuxOptions.user
//! spec.containers[*].securityContext.seLinuxOptions.user
//! spec.initContainers[*].securityContext.seLinuxOptions.user
//! spec.ephemeralContainers[*].securityContext.seLinuxOptions.user
//! spec.securityContext.seLinuxOptions.role
//! spec.containers[*].securityContext.seLinuxOptions.role
//! spec.initContainers[*].securityContext.seLinuxOptions.role
//! spec.ephemeralContainers[*].securityContext.seLinuxOptions.role
//!
//! **Allowed Values:** undefined/empty

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, SELinuxOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, join_quote, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "seLinuxOptions",
    level: Level::Baseline,
    variants: &[
        Variant {
            min_minor: 0,
            run: se_linux_options_1_0,
            overrides: &[],
        },
        Variant {
            min_minor: 31,
            run: se_linux_options_1_31,
            overrides: &[],
        },
    ],
};

const ALLOWED_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const ALLOWED_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    se_linux_options(spec, ALLOWED_TYPES_1_0)
}

fn se_linux_options_1_31(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    se_linux_options(spec, ALLOWED_TYPES_1_31)
}

#[derive(Default)]
struct Findings<'a> {
    bad_types: BTreeSet<&'a str>,
    set_user: bool,
    set_role: bool,
}

impl<'a> Findings<'a> {
    /// Records what is wrong with `opts`; true if anything is.
    fn record(&mut self, opts: &'a SELinuxOptions, allowed: &[&str]) -> bool {
        let mut bad = false;
        let ty = opts.type_.as_deref().unwrap_or_default();
        if !allowed.contains(&ty) {
            bad = true;
            self.bad_types.insert(ty);
        }
        if opts.user.as_deref().is_some_and(|u| !u.is_empty()) {
            bad = true;
            self.set_user = true;
        }
        if opts.role.as_deref().is_some_and(|r| !r.is_empty()) {
            bad = true;
            self.set_role = true;
        }
        bad
    }
}

fn se_linux_options(spec: &PodSpec, allowed: &[&str]) -> Option<Violation> {
    let mut found = Findings::default();
    let mut bad_setters = Vec::new();
    let mut fields = Vec::new();

    let pod_opts = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref());
    if pod_opts.is_some_and(|o| found.record(o, allowed)) {
        bad_setters.push("pod".to_string());
        fields.push("securityContext.seLinuxOptions".to_owned());
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        let opts = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref());
        if opts.is_some_and(|o| found.record(o, allowed)) {
            bad_containers.push(c.name);
            fields.push(c.path("securityContext.seLinuxOptions"));
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }

    let mut bad_data = Vec::new();
    if !found.bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", found.bad_types.len()),
            join_quote(&found.bad_types)
        ));
    }
    if found.set_user {
        bad_data.push("user may not be set".to_string());
    }
    if found.set_role {
        bad_data.push("role may not be set".to_string());
    }
    Some(
        Violation::new(
            "seLinuxOptions",
            format!(
                "{} set forbidden securityContext.seLinuxOptions: {}",
                bad_setters.join(" and "),
                bad_data.join("; ")
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "seLinuxOptions";

    #[test]
    fn passes_with_allowed_types_and_level() {
        let p = json!({"spec": {
            "securityContext": {"seLinuxOptions": {"level": "s0:c1,c2"}},
            "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_init_t"}}}],
        }});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn pod_and_containers_with_every_problem() {
        let sel = |o: serde_json::Value| json!({"seLinuxOptions": o});
        let p = json!({"spec": {
            "securityContext": sel(json!({"type": "foo", "user": "bar", "role": "baz"})),
            "containers": [
                {"name": "a", "securityContext": sel(json!({"type": "container_t"}))},
                {"name": "e", "securityContext": sel(json!({"type": "bar"}))},
                {"name": "f", "securityContext": sel(json!({"user": "bar"}))},
                {"name": "g", "securityContext": sel(json!({"role": "baz"}))},
            ],
        }});
        assert_eq!(
            run(ID, B, v(31), p),
            fail(
                ID,
                "seLinuxOptions",
                r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#
            )
        );
    }

    #[test]
    fn user_alone() {
        let p = json!({"spec": {"securityContext": {"seLinuxOptions": {"user": "bad"}}}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(
                ID,
                "seLinuxOptions",
                "pod set forbidden securityContext.seLinuxOptions: user may not be set"
            )
        );
    }

    #[test]
    fn container_engine_t_allowed_from_v1_31() {
        let p = json!({"spec": {"initContainers": [
            {"name": "i", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
        ]}});
        assert_eq!(
            run(ID, B, v(30), p.clone()),
            fail(
                ID,
                "seLinuxOptions",
                r#"container "i" set forbidden securityContext.seLinuxOptions: type "container_engine_t""#
            )
        );
        assert_eq!(run(ID, B, v(31), p.clone()), pass());
        assert_eq!(run(ID, R, v(31), p), pass());
    }
}
