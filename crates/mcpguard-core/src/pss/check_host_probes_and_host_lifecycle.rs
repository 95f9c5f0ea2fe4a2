//! Host field is restricted in the probes and lifecycle handlers.
//!
//! **Restricted Fields:**
//! spec.containers[*].livenessProbe.httpGet.host
//! spec.containers[*].readinessProbe.httpGet.host
//! spec.containers[*].startupProbe.httpGet.host
//! spec.containers[*].livenessProbe.tcpSocket.host
//! spec.containers[*].readinessProbe.tcpSocket.host
//! spec.containers[*].startupProbe.tcpSocket.host
//! spec.containers[*].lifecycle.postStart.tcpSocket.host (deprecated handler)
//! spec.containers[*].lifecycle.preStop.tcpSocket.host (deprecated handler)
//! spec.containers[*].lifecycle.postStart.httpGet.host
//! spec.containers[*].lifecycle.preStop.httpGet.host
//! ... and the same fields of spec.initContainers[*] and spec.ephemeralContainers[*]
//!
//! **Allowed Values:** "", undefined/null

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{HTTPGetAction, PodSpec, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{ContainerView, Violation, join_quote, pluralize};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "hostProbesAndHostLifecycle",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 34,
        run: host_probes_and_host_lifecycle_1_34,
        overrides: &[],
    }],
};

/// The non-empty hosts a container's probes and lifecycle handlers name.
fn hosts<'a>(c: &ContainerView<'a>) -> impl Iterator<Item = &'a str> {
    let probes = [c.liveness_probe, c.readiness_probe, c.startup_probe]
        .into_iter()
        .flatten()
        .map(|p| (p.http_get.as_ref(), p.tcp_socket.as_ref()));
    let lifecycle = c.lifecycle;
    let handlers = [
        lifecycle.and_then(|l| l.post_start.as_ref()),
        lifecycle.and_then(|l| l.pre_stop.as_ref()),
    ]
    .into_iter()
    .flatten()
    .map(|h| (h.http_get.as_ref(), h.tcp_socket.as_ref()));
    probes
        .chain(handlers)
        .flat_map(
            |(http, tcp): (Option<&'a HTTPGetAction>, Option<&'a TCPSocketAction>)| {
                [
                    http.and_then(|a| a.host.as_deref()),
                    tcp.and_then(|a| a.host.as_deref()),
                ]
            },
        )
        .flatten()
        .filter(|h| !h.is_empty())
}

fn host_probes_and_host_lifecycle_1_34(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    // PSA collects both containers and hosts into sorted sets.
    let mut bad_containers = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for c in super::util::containers(spec) {
        for host in hosts(&c) {
            bad_containers.insert(c.name);
            forbidden.insert(host);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(Violation::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                forbidden.len()
            ),
            join_quote(&forbidden)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::Version;
    use crate::pss::test_util::*;

    const ID: &str = "hostProbesAndHostLifecycle";
    const REASON: &str = "probe or lifecycle host";

    #[test]
    fn passes_with_unset_or_empty_hosts() {
        let p = json!({"spec": {"containers": [{
            "name": "a",
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80, "host": ""}},
            "lifecycle": {"postStart": {"httpGet": {"port": 80}}},
        }]}});
        assert_eq!(run(ID, B, v(34), p), pass());
    }

    #[test]
    fn one_container_several_probe_hosts() {
        let p = json!({"spec": {"containers": [{
            "name": "a",
            "livenessProbe": {"httpGet": {"port": 80, "host": "127.0.0.1"}},
            "readinessProbe": {"tcpSocket": {"port": 80, "host": "::1"}},
            "startupProbe": {"httpGet": {"port": 80, "host": "localhost"}},
        }]}});
        assert_eq!(
            run(ID, B, v(34), p),
            fail(
                ID,
                REASON,
                r#"container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost""#
            )
        );
    }

    #[test]
    fn containers_and_hosts_are_sorted_sets() {
        let p = json!({"spec": {
            "initContainers": [{"name": "z-init", "lifecycle": {"preStop": {"tcpSocket": {"port": 1, "host": "b.com"}}}}],
            "containers": [
                {"name": "valid"},
                {"name": "invalid1", "livenessProbe": {"httpGet": {"port": 1, "host": "a.com"}}},
            ],
            "ephemeralContainers": [{"name": "e", "lifecycle": {"postStart": {"httpGet": {"port": 1, "host": "a.com"}}}}],
        }});
        assert_eq!(
            run(ID, B, Version::Latest, p),
            fail(
                ID,
                REASON,
                r#"containers "e", "invalid1", "z-init" use probe or lifecycle hosts "a.com", "b.com""#
            )
        );
    }

    #[test]
    fn starts_at_v1_34() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "lifecycle": {"preStop": {"httpGet": {"port": 80, "host": "169.254.169.254"}}}},
        ]}});
        assert_eq!(run(ID, B, v(33), p.clone()), pass());
        let want = fail(
            ID,
            REASON,
            r#"container "a" uses probe or lifecycle host "169.254.169.254""#,
        );
        assert_eq!(run(ID, B, v(34), p.clone()), want);
        assert_eq!(run(ID, R, v(34), p), want);
    }
}
