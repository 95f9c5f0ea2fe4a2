use std::sync::Arc;

use super::bounded::{self, OTHER};
use super::*;
use mcpguard_core::policy::Policy;

fn policies_covering(namespaces: &[&str]) -> PolicySet {
    let mut policy = Policy::embedded_default().expect("the embedded policy loads");
    policy.spec.namespaces = namespaces.iter().map(|ns| (*ns).to_owned()).collect();
    PolicySet::single(Arc::new(policy))
}

#[test]
fn a_covered_namespace_is_its_own_label() {
    let policies = policies_covering(&["mcp", "tools"]);
    assert_eq!(bounded::namespace(&policies, Some("mcp")), "mcp");
    assert_eq!(bounded::namespace(&policies, Some("tools")), "tools");
}

#[test]
fn any_other_namespace_is_other_and_none_is_empty() {
    let policies = policies_covering(&["mcp"]);
    assert_eq!(bounded::namespace(&policies, Some("default")), OTHER);
    assert_eq!(
        bounded::namespace(&policies, Some(&"n".repeat(3 * 1024 * 1024))),
        OTHER
    );
    assert_eq!(bounded::namespace(&policies, None), "");
    assert_eq!(bounded::namespace(&policies, Some("")), "");
}

#[test]
fn one_of_keeps_known_values_only() {
    const KINDS: &[&str] = &["Pod", "Deployment"];
    assert_eq!(bounded::one_of("Pod", KINDS), "Pod");
    assert_eq!(bounded::one_of("pod", KINDS), OTHER);
    assert_eq!(bounded::one_of("", KINDS), OTHER);
}

#[test]
fn denials_of_uncovered_namespaces_share_one_series() {
    let metrics = Metrics::new();
    let policies = policies_covering(&["mcp"]);
    let violation = Violation {
        check: "runAsNonRoot".into(),
        reason: "runAsNonRoot != true".into(),
        detail: String::new(),
    };
    for namespace in ["a", "b", "c", "mcp"] {
        metrics.record_denials(
            &policies,
            "mcp-restricted",
            Some(namespace),
            std::slice::from_ref(&violation),
        );
    }
    let text = metrics.encode();
    let mut series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("mcpguard_denials_total{"))
        .collect();
    series.sort_unstable();
    assert_eq!(
        series,
        [
            r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="mcp"} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="other"} 3"#,
        ]
    );
}

#[test]
fn duration_buckets_end_at_the_webhook_timeouts() {
    let buckets = duration_buckets();
    assert_eq!(buckets.len(), 21);
    assert_eq!(buckets[0], 0.000_025);
    assert!((buckets[15] - 0.8192).abs() < 1e-12, "{}", buckets[15]);
    assert_eq!(buckets[16..], [1.0, 2.5, 5.0, 10.0, 30.0]);
    assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]));
}
