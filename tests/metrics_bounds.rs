//! Metric labels are bounded (issue #13, finding 2): a request's namespace becomes a label
//! only when a policy in force covers it, so hostile namespaces add no series. Drives the
//! real webhook over TLS and asserts the exact `/metrics` lines of the affected families.

mod common;

use common::{TestServer, example_review_with_uid};
use futures::StreamExt as _;
use mcpguard_core::policy;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const RESTRICTED: &str = include_str!("../policies/mcp-restricted.yaml");

/// A review of an MCPPolicy whose spec the loader refuses: it is denied whatever
/// `request.namespace` says (MCPPolicy is cluster-scoped; the namespace is the sender's
/// to choose), which is what let a request pick the `namespace` label before.
fn broken_policy_review(uid: &str, namespace: &str) -> Value {
    let text = RESTRICTED.replace("level: restricted", "level: strict");
    let object: Value = serde_saphyr::from_str(&text).expect("the policy file is YAML");
    let mut review = common::mcppolicy_review(uid, "CREATE", &object, None);
    review["request"]["namespace"] = json!(namespace);
    review
}

/// A distinct, arbitrary short namespace for each `i` (splitmix64; no two alike for i < 2^32).
fn arbitrary_namespace(i: u64) -> String {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("ns-{:x}", z ^ (z >> 31))
}

/// The sample lines of `family` (exact text), sorted: the series are in hash order.
fn sample_lines(text: &str, family: &str) -> Vec<String> {
    let prefix = format!("{family}{{");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    lines.sort();
    lines
}

async fn assert_denied(server: &TestServer, review: &Value) {
    let response = server.review("/validate", review).await;
    assert_eq!(response["allowed"], false, "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_namespaces_add_no_series_and_covered_namespaces_keep_their_own() {
    const HUGE: usize = 20;
    const ARBITRARY: u64 = 3_000;
    let server = TestServer::start_default().await;

    // 20 reviews whose request.namespace is 3 MiB.
    let huge_namespace = "n".repeat(3 * 1024 * 1024);
    for i in 0..HUGE {
        assert_denied(
            &server,
            &broken_policy_review(&format!("huge-{i}"), &huge_namespace),
        )
        .await;
    }
    // 3,000 reviews, each with its own short namespace.
    futures::stream::iter(0..ARBITRARY)
        .map(|i| {
            let server = &server;
            async move {
                let review = broken_policy_review(&format!("arb-{i}"), &arbitrary_namespace(i));
                assert_denied(server, &review).await;
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    // The covered namespace `mcp` keeps its own label.
    assert_denied(&server, &example_review_with_uid("covered")).await;
    // A cluster-scoped write (no namespace) is labelled "".
    let mut cluster_scoped = broken_policy_review("cluster-scoped", "");
    cluster_scoped["request"]
        .as_object_mut()
        .expect("request is an object")
        .remove("namespace");
    assert_denied(&server, &cluster_scoped).await;

    let text = server.metrics_text().await;
    assert_eq!(
        sample_lines(&text, "mcpguard_denials_total"),
        sorted(&[
            r#"mcpguard_denials_total{policy="MCPPolicy",check="mcpPolicySpec",namespace="other"} 3020"#,
            r#"mcpguard_denials_total{policy="MCPPolicy",check="mcpPolicySpec",namespace=""} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="allowPrivilegeEscalation",namespace="mcp"} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="capabilities_restricted",namespace="mcp"} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="mcp"} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="seccompProfile_restricted",namespace="mcp"} 1"#,
        ])
    );
    assert_eq!(
        sample_lines(&text, "mcpguard_admission_requests_total"),
        sorted(&[
            r#"mcpguard_admission_requests_total{endpoint="validate",operation="CREATE",decision="denied"} 3022"#
        ])
    );
    // Nothing of the hostile values is anywhere in the exposition.
    assert!(!text.contains("nnnnnnnn"), "the 3 MiB namespace leaked");
    assert!(
        !text.contains(&arbitrary_namespace(0)),
        "an arbitrary namespace leaked"
    );
    assert!(
        text.len() < 64 * 1024,
        "/metrics is {} bytes: the series are not bounded",
        text.len()
    );
}

#[tokio::test]
async fn a_namespace_is_labelled_by_the_policies_in_force_when_the_review_is_recorded() {
    let server = TestServer::start_default().await;
    assert_denied(&server, &broken_policy_review("before", "team-new")).await;

    // A reload that covers team-new as well: its next denial gets its own series.
    let mut policy = policy::parse_str(RESTRICTED, "reloaded.yaml").expect("the policy loads");
    policy.spec.namespaces = vec!["mcp".into(), "team-new".into()];
    server.state.policies.set_fallback(policy);
    assert_denied(&server, &broken_policy_review("after", "team-new")).await;

    let text = server.metrics_text().await;
    assert_eq!(
        sample_lines(&text, "mcpguard_denials_total"),
        sorted(&[
            r#"mcpguard_denials_total{policy="MCPPolicy",check="mcpPolicySpec",namespace="other"} 1"#,
            r#"mcpguard_denials_total{policy="MCPPolicy",check="mcpPolicySpec",namespace="team-new"} 1"#,
        ])
    );
}

#[tokio::test]
async fn duration_buckets_reach_the_webhook_timeouts() {
    let server = TestServer::start_default().await;
    assert_denied(&server, &example_review_with_uid("timed")).await;
    let text = server.metrics_text().await;
    let bounds: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("mcpguard_admission_duration_seconds_bucket{"))
        .filter_map(|line| line.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        bounds[bounds.len() - 6..],
        ["1.0", "2.5", "5.0", "10.0", "30.0", "+Inf"],
        "{text}"
    );
    assert_eq!(bounds.len(), 22, "16 exponential bounds, 5 timeouts, +Inf");
}
