//! Sysctls can disable security mechanisms or affect all containers on a host,
//! and should be disallowed except for an allowed "safe" subset.
//!
//! A sysctl is considered safe if it is namespaced in the container or the Pod,
//! and it is isolated from other Pods or processes on the same Node.
//!
//! **Restricted Fields:**
//! spec.securityContext.sysctls[*].name
//!
//! **Allowed Values:**
//! 'kernel.shm_rmid_forced'
//! 'net.ipv4.ip_local_port_range'
//! 'net.ipv4.tcp_syncookies'
//! 'net.ipv4.ping_group_range'
//! 'net.ipv4.ip_unprivileged_port_start'
//! 'net.ipv4.ip_local_reserved_ports' (v1.27+)
//! 'net.ipv4.tcp_keepalive_time' (v1.29+)
//! 'net.ipv4.tcp_fin_timeout' (v1.29+)
//! 'net.ipv4.tcp_keepalive_intvl' (v1.29+)
//! 'net.ipv4.tcp_keepalive_probes' (v1.29+)
//! 'net.ipv4.tcp_rmem' (v1.32+)
//! 'net.ipv4.tcp_wmem' (v1.32+)
//! 'net.ipv4.tcp_slow_start_after_idle' (v1.37+)
//! 'net.ipv4.tcp_notsent_lowat' (v1.37+)

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, join};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "sysctls",
    level: Level::Baseline,
    variants: &[
        Variant {
            min_minor: 0,
            run: sysctls_1_0,
            overrides: &[],
        },
        Variant {
            min_minor: 27,
            run: sysctls_1_27,
            overrides: &[],
        },
        Variant {
            min_minor: 29,
            run: sysctls_1_29,
            overrides: &[],
        },
        Variant {
            min_minor: 32,
            run: sysctls_1_32,
            overrides: &[],
        },
        Variant {
            min_minor: 37,
            run: sysctls_1_37,
            overrides: &[],
        },
    ],
};

/// Each version's allowed set is a prefix of this list.
const ALLOWED: [&str; 14] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    // v1.27
    "net.ipv4.ip_local_reserved_ports",
    // v1.29
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    // v1.32
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    // v1.37
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

fn sysctls_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &ALLOWED[..5])
}

fn sysctls_1_27(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &ALLOWED[..6])
}

fn sysctls_1_29(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &ALLOWED[..10])
}

fn sysctls_1_32(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &ALLOWED[..12])
}

fn sysctls_1_37(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &ALLOWED)
}

fn sysctls(spec: &PodSpec, allowed: &[&str]) -> Option<Violation> {
    let forbidden: Vec<(usize, &str)> = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|s| s.name.as_str())
        .enumerate()
        .filter(|(_, name)| !allowed.contains(name))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    let names: Vec<&str> = forbidden.iter().map(|(_, name)| *name).collect();
    Some(
        Violation::new("forbidden sysctls", join(&names, ", ")).with_fields(
            forbidden
                .iter()
                .map(|(index, _)| format!("securityContext.sysctls[{index}]"))
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::pss::test_util::*;

    const ID: &str = "sysctls";

    fn with_sysctls(names: &[&str]) -> Value {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "value": "1"}))
            .collect();
        json!({"spec": {"securityContext": {"sysctls": list}}})
    }

    #[test]
    fn passes_with_safe_sysctls() {
        let p = with_sysctls(&["kernel.shm_rmid_forced", "net.ipv4.ping_group_range"]);
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn lists_forbidden_in_spec_order() {
        let p = with_sysctls(&[
            "net.core.somaxconn",
            "kernel.shm_rmid_forced",
            "kernel.msgmax",
        ]);
        assert_eq!(
            run(ID, B, v(0), p),
            fail(ID, "forbidden sysctls", "net.core.somaxconn, kernel.msgmax")
        );
    }

    fn boundary(name: &str, first_allowed: u32) {
        let p = with_sysctls(&[name]);
        assert_eq!(
            run(ID, B, v(first_allowed - 1), p.clone()),
            fail(ID, "forbidden sysctls", name),
            "{name} before v1.{first_allowed}"
        );
        assert_eq!(run(ID, B, v(first_allowed), p.clone()), pass(), "{name}");
        assert_eq!(run(ID, R, v(first_allowed), p), pass(), "{name}");
    }

    #[test]
    fn ip_local_reserved_ports_from_v1_27() {
        boundary("net.ipv4.ip_local_reserved_ports", 27);
    }

    #[test]
    fn keepalive_and_fin_timeout_from_v1_29() {
        for name in [
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ] {
            boundary(name, 29);
        }
    }

    #[test]
    fn tcp_rmem_wmem_from_v1_32() {
        boundary("net.ipv4.tcp_rmem", 32);
        boundary("net.ipv4.tcp_wmem", 32);
    }

    #[test]
    fn slow_start_after_idle_and_notsent_lowat_from_v1_37() {
        boundary("net.ipv4.tcp_slow_start_after_idle", 37);
        boundary("net.ipv4.tcp_notsent_lowat", 37);
        let p = with_sysctls(&["net.ipv4.tcp_notsent_lowat"]);
        assert_eq!(run(ID, B, crate::pss::Version::Latest, p), pass());
    }

    #[test]
    fn names_the_forbidden_sysctl_only() {
        let p = json!({"spec": {"securityContext": {"sysctls": [
            {"name": "kernel.shm_rmid_forced", "value": "1"},
            {"name": "kernel.msgmax", "value": "1"},
        ]}}});
        assert_eq!(fields(ID, B, v(0), p), [["securityContext.sysctls[1]"]]);
        let p = json!({"spec": {"securityContext": {"sysctls": [
            {"name": "kernel.shm_rmid_forced", "value": "1"},
        ]}}});
        assert!(fields(ID, B, v(0), p).is_empty());
    }
}
