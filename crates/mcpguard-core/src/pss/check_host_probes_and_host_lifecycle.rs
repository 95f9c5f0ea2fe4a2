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

use k8s_openapi::api::core::v1::{
    HTTPGetAction, LifecycleHandler, PodSpec, Probe, TCPSocketAction,
};
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

/// The non-empty hosts a container's probes and lifecycle handlers name, each with the path
/// of its field in the container (`livenessProbe.httpGet.host`).
fn hosts<'a>(c: &ContainerView<'a>) -> Vec<(String, &'a str)> {
    let probe = |p: Option<&'a Probe>| {
        (
            p.and_then(|p| p.http_get.as_ref()),
            p.and_then(|p| p.tcp_socket.as_ref()),
        )
    };
    let handler = |h: Option<&'a LifecycleHandler>| {
        (
            h.and_then(|h| h.http_get.as_ref()),
            h.and_then(|h| h.tcp_socket.as_ref()),
        )
    };
    let lifecycle = c.lifecycle;
    let actions: [(&str, Actions<'a>); 5] = [
        ("livenessProbe", probe(c.liveness_probe)),
        ("readinessProbe", probe(c.readiness_probe)),
        ("startupProbe", probe(c.startup_probe)),
        (
            "lifecycle.postStart",
            handler(lifecycle.and_then(|l| l.post_start.as_ref())),
        ),
        (
            "lifecycle.preStop",
            handler(lifecycle.and_then(|l| l.pre_stop.as_ref())),
        ),
    ];
    actions
        .into_iter()
        .flat_map(|(owner, (http, tcp))| {
            [
                (owner, "httpGet", http.and_then(|a| a.host.as_deref())),
                (owner, "tcpSocket", tcp.and_then(|a| a.host.as_deref())),
            ]
        })
        .filter_map(|(owner, action, host)| {
            host.filter(|h| !h.is_empty())
                .map(|h| (format!("{owner}.{action}.host"), h))
        })
        .collect()
}

/// The HTTP and TCP actions of a probe or a lifecycle handler.
type Actions<'a> = (Option<&'a HTTPGetAction>, Option<&'a TCPSocketAction>);

fn host_probes_and_host_lifecycle_1_34(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    // PSA collects both containers and hosts into sorted sets.
    let mut bad_containers = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    let mut fields = Vec::new();
    for c in super::util::containers(spec) {
        for (field, host) in hosts(&c) {
            bad_containers.insert(c.name);
            forbidden.insert(host);
            fields.push(c.path(&field));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some(
        Violation::new(
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
        )
        .with_fields(fields),
    )
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

    #[test]
    fn names_the_host_field_of_the_probe_that_sets_one() {
        let p = json!({"spec": {"containers": [
            {"name": "ok", "livenessProbe": {"httpGet": {"port": 80}}},
            {"name": "bad", "readinessProbe": {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}},
        ]}});
        assert_eq!(
            fields(ID, B, v(34), p),
            [["containers[1].readinessProbe.tcpSocket.host"]]
        );
        let p = json!({"spec": {"containers": [
            {"name": "ok", "livenessProbe": {"httpGet": {"port": 80, "host": ""}}},
        ]}});
        assert!(fields(ID, B, v(34), p).is_empty());
    }
}
