use k8s_openapi::api::core::v1::PodSpec;
use serde::Deserialize;
use serde_json::json;

use super::*;

const GI: i128 = 1 << 30;
const UNIT: i128 = 1_000_000_000;

#[test]
fn quantities_are_read_exactly_in_nanos() {
    for (raw, nanos) in [
        ("1", UNIT),
        ("+2", 2 * UNIT),
        ("500m", UNIT / 2),
        ("0.5", UNIT / 2),
        (".5", UNIT / 2),
        ("1.", UNIT),
        ("1Ki", 1024 * UNIT),
        ("1.5Gi", 3 * GI / 2 * UNIT),
        ("400Mi", 400 * (1 << 20) * UNIT),
        ("1k", 1000 * UNIT),
        ("2e3", 2000 * UNIT),
        ("1E3", 1000 * UNIT),
        ("1e-3", UNIT / 1000),
        ("1n", 1),
        ("1u", 1000),
        ("1Ei", (1_i128 << 60) * UNIT),
        ("1E", 1_000_000_000_000_000_000 * UNIT),
        // Finer than a nano rounds up, as the API server rounds it.
        ("0.5n", 1),
        ("1.0000000001", UNIT + 1),
    ] {
        assert_eq!(Nanos::parse(raw), Nanos(nanos), "{raw}");
    }
}

#[test]
fn unreadable_negative_or_huge_quantities_are_unbounded() {
    for raw in [
        "",
        "-1",
        "x",
        "1x",
        "1.2.3",
        ".",
        "1e",
        "1e+",
        "1ee3",
        "1Ki2",
        "1e999",
        "99999999999999999999999999999999999999999",
        "1 Gi",
        " 1",
    ] {
        assert_eq!(Nanos::parse(raw), Nanos::UNBOUNDED, "{raw:?}");
    }
}

#[test]
fn quantities_are_written_back_in_the_api_servers_spelling() {
    assert_eq!(Nanos::parse("800Mi").to_quantity(true), "800Mi");
    assert_eq!(Nanos::parse("2Gi").to_quantity(true), "2Gi");
    assert_eq!(Nanos::parse("1000").to_quantity(true), "1000");
    assert_eq!(Nanos::parse("1500m").to_quantity(false), "1500m");
    assert_eq!(Nanos::parse("2").to_quantity(false), "2");
    assert_eq!(Nanos::parse("1n").to_quantity(false), "1n");
    assert_eq!(Nanos::ZERO.to_quantity(true), "0");
}

fn resources(spec: serde_json::Value) -> PodResources {
    PodResources::of_json(spec.as_object().expect("a spec"))
}

fn nanos(raw: &str) -> Nanos {
    Nanos::parse(raw)
}

#[test]
fn the_aggregate_follows_the_sidecar_formula() {
    // Regular containers add up; an init step is its init container plus the sidecars
    // started before it; the pod needs the larger of the two.
    let spec = json!({
        "initContainers": [
            {"name": "setup", "resources": {"requests": {"memory": "1Gi"}}},
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"memory": "100Mi", "cpu": "100m"}}},
            {"name": "migrate", "resources": {"requests": {"memory": "900Mi"}}}
        ],
        "containers": [
            {"name": "a", "resources": {"requests": {"memory": "200Mi", "cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"memory": "300Mi"}}}
        ]
    });
    let aggregate = resources(spec).aggregate(|a| &a.requests);
    assert_eq!(aggregate.get("memory"), Some(&nanos("1Gi")));
    assert_eq!(aggregate.get("cpu"), Some(&nanos("1100m")));
    let spec = json!({
        "initContainers": [
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"memory": "500Mi"}}},
            {"name": "migrate", "resources": {"requests": {"memory": "700Mi"}}}
        ],
        "containers": [{"name": "a", "resources": {"requests": {"memory": "100Mi"}}}]
    });
    // migrate runs beside the proxy: 1200Mi, more than proxy + a (600Mi).
    assert_eq!(
        resources(spec).aggregate(|a| &a.requests).get("memory"),
        Some(&nanos("1200Mi"))
    );
}

fn errors(spec: serde_json::Value) -> Vec<String> {
    consistency_errors(&PodSpec::deserialize(&spec).expect("a spec"))
}

#[test]
fn containers_requesting_more_than_the_pod_are_inconsistent() {
    // The pod: 256Mi for the pod, 400Mi in each of two containers.
    let spec = json!({
        "resources": {"requests": {"memory": "256Mi"}},
        "containers": [
            {"name": "a", "resources": {"requests": {"memory": "400Mi"}}},
            {"name": "b", "resources": {"requests": {"memory": "400Mi"}}}
        ]
    });
    assert_eq!(
        errors(spec),
        [
            "spec.resources.requests[memory]: must be greater than or equal to aggregate container requests of 800Mi"
        ]
    );
    let fits = json!({
        "resources": {"requests": {"memory": "800Mi", "cpu": "1"}},
        "containers": [
            {"name": "a", "resources": {"requests": {"memory": "400Mi", "cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"memory": "400Mi"}}}
        ]
    });
    assert_eq!(errors(fits), Vec::<String>::new());
}

#[test]
fn a_container_limit_above_the_pods_is_inconsistent() {
    let spec = json!({
        "resources": {"limits": {"memory": "1Gi", "cpu": "2"}, "requests": {"memory": "1Gi", "cpu": "2"}},
        "initContainers": [{"name": "init", "resources": {"limits": {"cpu": "4"}}}],
        "containers": [
            {"name": "a", "resources": {"limits": {"memory": "512Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "2Gi", "cpu": "2"}}}
        ]
    });
    assert_eq!(
        errors(spec),
        [
            "spec.containers[1].resources.limits[memory]: must be less than or equal to pod limits of 1Gi"
        ]
    );
}

#[test]
fn hugepage_limits_add_up_against_the_pods_and_requests_stay_within_limits() {
    let spec = json!({
        "resources": {"limits": {"hugepages-2Mi": "4Mi", "memory": "1Gi"}, "requests": {"memory": "2Gi", "hugepages-2Mi": "4Mi"}},
        "containers": [
            {"name": "a", "resources": {"limits": {"hugepages-2Mi": "4Mi"}}},
            {"name": "b", "resources": {"limits": {"hugepages-2Mi": "4Mi"}}}
        ]
    });
    assert_eq!(
        errors(spec),
        [
            "spec.resources.requests[memory]: must be less than or equal to memory limit",
            "spec.resources.limits[hugepages-2Mi]: must be greater than or equal to aggregate container limits of 8Mi"
        ]
    );
}

#[test]
fn pod_requests_default_to_the_containers_aggregate_or_else_the_pods_limit() {
    let spec = json!({
        "resources": {"limits": {"memory": "1Gi", "cpu": "2", "hugepages-2Mi": "4Mi"}},
        "containers": [
            {"name": "a", "resources": {"requests": {"memory": "100Mi", "hugepages-2Mi": "2Mi"}}},
            {"name": "b", "resources": {"requests": {"memory": "100Mi"}}}
        ]
    });
    assert_eq!(
        resources(spec).default_pod_request_texts(|resource| match resource {
            "cpu" => Some("2"),
            "hugepages-2Mi" => Some("4Mi"),
            _ => None,
        }),
        [
            ("cpu".to_owned(), "2".to_owned()),
            ("hugepages-2Mi".to_owned(), "4Mi".to_owned()),
            ("memory".to_owned(), "200Mi".to_owned()),
        ]
    );
    // Nothing without pod-level limits, and nothing the pod requests itself.
    let requests_only = json!({"resources": {"requests": {"memory": "1Gi"}}, "containers": []});
    assert_eq!(resources(requests_only).default_pod_requests(), []);
    let both = json!({"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}, "containers": []});
    assert_eq!(resources(both).default_pod_requests(), []);
}

#[test]
fn a_budget_takes_what_fits_and_refuses_the_rest() {
    let spec = json!({
        "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi", "cpu": "1"}},
        "containers": [{"name": "a", "resources": {"requests": {"memory": "200Mi"}}}]
    });
    let mut budget = Budget::of(&resources(spec));
    assert!(budget.take_request("memory", "400Mi"));
    assert!(budget.take_request("memory", "400Mi"));
    assert!(
        !budget.take_request("memory", "400Mi"),
        "200Mi + 800Mi leaves 24Mi"
    );
    assert!(budget.take_request("memory", "24Mi"));
    // No pod-level cpu request: any request fits, but no limit above the pod's.
    assert!(budget.take_request("cpu", "8"));
    assert!(!budget.take_limit("cpu", "2", true));
    assert!(budget.take_limit("cpu", "1", true));
    // A limit on a container without a request becomes its request too.
    assert!(!budget.take_limit("memory", "1Mi", false));
    assert!(budget.take_limit("memory", "1Gi", true));
    // Resources the pod does not set are not bounded; unreadable ones never fit.
    assert!(budget.take_request("ephemeral-storage", "1Ti"));
    assert!(!budget.take_request("memory", "garbage"));
    assert_eq!(
        Budget::of(&resources(json!({"containers": []}))),
        Budget::default()
    );
}
