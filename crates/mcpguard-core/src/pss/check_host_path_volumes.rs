//! HostPath volumes must be forbidden.
//!
//! **Restricted Fields:**
//! spec.volumes[*].hostPath
//!
//! **Allowed Values:** undefined/null

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, join_quote, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "hostPathVolumes",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: host_path_volumes_1_0,
        overrides: &[],
    }],
};

fn host_path_volumes_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let host: Vec<(usize, &str)> = spec
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, vol)| vol.host_path.is_some())
        .map(|(index, vol)| (index, vol.name.as_str()))
        .collect();
    if host.is_empty() {
        return None;
    }
    let names: Vec<&str> = host.iter().map(|(_, name)| *name).collect();
    Some(
        Violation::new(
            "hostPath volumes",
            format!(
                "{} {}",
                pluralize("volume", "volumes", names.len()),
                join_quote(&names)
            ),
        )
        .with_fields(
            host.iter()
                .map(|(index, _)| format!("volumes[{index}].hostPath"))
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "hostPathVolumes";

    #[test]
    fn passes_without_host_path() {
        let p = json!({"spec": {"volumes": [{"name": "e", "emptyDir": {}}]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn names_volumes_in_order() {
        let p = json!({"spec": {"volumes": [
            {"name": "z", "hostPath": {"path": "/a"}},
            {"name": "e", "emptyDir": {}},
            {"name": "a", "hostPath": {"path": "/b"}},
        ]}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(ID, "hostPath volumes", r#"volumes "z", "a""#)
        );
    }

    #[test]
    fn overridden_by_restricted_volumes_at_every_version() {
        let p = json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}});
        assert_eq!(
            run(ID, B, v(0), p.clone()),
            fail(ID, "hostPath volumes", r#"volume "h""#)
        );
        assert_eq!(run(ID, R, v(0), p), pass());
    }

    #[test]
    fn names_the_host_path_of_the_offending_volume_only() {
        let p = json!({"spec": {"volumes": [
            {"name": "ok", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/"}},
        ]}});
        assert_eq!(fields(ID, B, v(0), p), [["volumes[1].hostPath"]]);
        let p = json!({"spec": {"volumes": [{"name": "ok", "emptyDir": {}}]}});
        assert!(fields(ID, B, v(0), p).is_empty());
    }
}
