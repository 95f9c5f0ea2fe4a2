//! Sharing the host namespaces must be disallowed.
//!
//! **Restricted Fields:**
//! spec.hostNetwork
//! spec.hostPID
//! spec.hostIPC
//!
//! **Allowed Values:** false, undefined/null

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::Violation;
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "hostNamespaces",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: host_namespaces_1_0,
        overrides: &[],
    }],
};

fn host_namespaces_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    // PSA lists them as `hostNetwork=true`, in the order network, PID, IPC.
    let used: Vec<(&str, &str)> = [
        ("hostNetwork=true", "hostNetwork", spec.host_network),
        ("hostPID=true", "hostPID", spec.host_pid),
        ("hostIPC=true", "hostIPC", spec.host_ipc),
    ]
    .into_iter()
    .filter(|(_, _, on)| *on == Some(true))
    .map(|(name, field, _)| (name, field))
    .collect();
    if used.is_empty() {
        return None;
    }
    let names: Vec<&str> = used.iter().map(|(name, _)| *name).collect();
    Some(
        Violation::new("host namespaces", names.join(", "))
            .with_fields(used.iter().map(|(_, field)| (*field).to_owned()).collect()),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::Version;
    use crate::pss::test_util::*;

    const ID: &str = "hostNamespaces";

    #[test]
    fn passes_without_host_namespaces() {
        let p = json!({"spec": {"hostNetwork": false, "containers": [{"name": "a"}]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn lists_every_host_namespace_in_psa_order() {
        let p = json!({"spec": {"hostNetwork": true, "hostPID": true, "hostIPC": true}});
        let want = fail(
            ID,
            "host namespaces",
            "hostNetwork=true, hostPID=true, hostIPC=true",
        );
        assert_eq!(run(ID, B, v(0), p.clone()), want);
        assert_eq!(run(ID, R, Version::Latest, p), want);
        let p = json!({"spec": {"hostIPC": true, "hostNetwork": true}});
        let want = fail(ID, "host namespaces", "hostNetwork=true, hostIPC=true");
        assert_eq!(run(ID, B, v(0), p), want);
    }

    #[test]
    fn single_host_namespace() {
        let p = json!({"spec": {"hostPID": true}});
        assert_eq!(
            run(ID, B, v(22), p),
            fail(ID, "host namespaces", "hostPID=true")
        );
    }

    #[test]
    fn names_each_host_namespace_field() {
        let p = json!({"spec": {"hostNetwork": true, "hostIPC": true, "hostPID": false}});
        assert_eq!(fields(ID, B, v(0), p), [["hostNetwork", "hostIPC"]]);
        let p = json!({"spec": {"hostNetwork": false}});
        assert!(fields(ID, B, v(0), p).is_empty());
    }
}
