//! HostPort ports must be forbidden.
//!
//! **Restricted Fields:**
//! spec.containers[*].ports[*].hostPort
//! spec.initContainers[*].ports[*].hostPort
//! spec.ephemeralContainers[*].ports[*].hostPort
//!
//! **Allowed Values:** undefined/0

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase, join, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "hostPorts",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: host_ports_1_0,
        overrides: &[],
    }],
};

fn host_ports_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    // PSA keeps the ports as strings in a sorted set, so "10000" sorts before
    // "8080".
    let mut ports = BTreeSet::new();
    let mut fields = Vec::new();
    for c in containers(spec) {
        let mut valid = true;
        for (index, port) in c
            .ports
            .iter()
            .enumerate()
            .filter_map(|(index, p)| p.host_port.map(|port| (index, port)))
            .filter(|&(_, p)| p != 0)
        {
            valid = false;
            ports.insert(port.to_string());
            fields.push(c.path(&format!("ports[{index}].hostPort")));
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "hostPort",
            format!(
                "{} {} {} {}",
                containers_phrase(&bad_containers),
                pluralize("uses", "use", bad_containers.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                join(&ports, ", ")
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::Version;
    use crate::pss::test_util::*;

    const ID: &str = "hostPorts";

    #[test]
    fn passes_with_zero_or_unset_host_port() {
        let p = json!({"spec": {"containers": [{"name": "a", "ports": [
            {"containerPort": 80},
            {"containerPort": 81, "hostPort": 0},
        ]}]}});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn one_container_one_port() {
        let p = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(ID, "hostPort", r#"container "a" uses hostPort 8080"#)
        );
    }

    #[test]
    fn ports_sorted_as_strings_and_deduplicated() {
        let p = json!({"spec": {
            "containers": [{"name": "a", "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 81, "hostPort": 10000},
            ]}],
            "ephemeralContainers": [{"name": "e", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
        }});
        assert_eq!(
            run(ID, R, Version::Latest, p),
            fail(
                ID,
                "hostPort",
                r#"containers "a", "e" use hostPorts 10000, 8080"#
            )
        );
    }
}
