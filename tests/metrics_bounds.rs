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
            r#"mcpguard_admission_requests_total{endpoint="validate",kind="MCPPolicy",operation="CREATE",decision="denied"} 3021"#,
            r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",decision="denied"} 1"#,
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

/// A CREATE of `object` by jane, as kube-apiserver sends it for (group, version, kind, resource).
fn review_of(uid: &str, gvkr: (&str, &str, &str, &str), object: &Value) -> Value {
    common::admission_review(uid, gvkr, "CREATE", "jane", object)
}

/// Every request is counted under the kind mcpguard judged it as: its own for the kinds
/// mcpguard judges, `other` for the rest, whatever `request.kind` the sender wrote.
#[tokio::test]
async fn requests_are_counted_by_a_bounded_resource_kind() {
    let server = TestServer::start_default().await;
    let pod = common::example_review()["request"]["object"].clone();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mcp"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"].clone()}}
    });
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "settings", "namespace": "mcp"}});
    // Pod, denied on /validate and mutated on /mutate.
    assert_denied(&server, &example_review_with_uid("kind-pod")).await;
    let mutated = server
        .review("/mutate", &example_review_with_uid("kind-pod-mutate"))
        .await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    // A Deployment's template is judged like a pod (admitted: the mutation will fix its pods).
    let review = review_of(
        "kind-deploy",
        ("apps", "v1", "Deployment", "deployments"),
        &deployment,
    );
    assert_eq!(server.review("/validate", &review).await["allowed"], true);
    // A ConfigMap is not mcpguard's to judge.
    let review = review_of(
        "kind-cm",
        ("", "v1", "ConfigMap", "configmaps"),
        &config_map,
    );
    assert_eq!(server.review("/validate", &review).await["allowed"], true);
    // 50 made-up kinds and resources: one `other` series, none of their names.
    for i in 0..50 {
        let kind = format!("Hostile{i}{}", "K".repeat(1000));
        let review = review_of(
            &format!("kind-hostile-{i}"),
            ("evil.example", "v1", &kind, &format!("hostile{i}s")),
            &config_map,
        );
        assert_eq!(server.review("/validate", &review).await["allowed"], true);
    }
    // A pods request whose sender calls it something else is still a Pod.
    let mut renamed = example_review_with_uid("kind-renamed");
    renamed["request"]["kind"]["kind"] = json!("NotAPod");
    assert_denied(&server, &renamed).await;

    let text = server.metrics_text().await;
    assert_eq!(
        sample_lines(&text, "mcpguard_admission_requests_total"),
        sorted(&[
            r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",decision="denied"} 2"#,
            r#"mcpguard_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",decision="mutated"} 1"#,
            r#"mcpguard_admission_requests_total{endpoint="validate",kind="Deployment",operation="CREATE",decision="allowed"} 1"#,
            r#"mcpguard_admission_requests_total{endpoint="validate",kind="other",operation="CREATE",decision="skipped"} 51"#,
        ])
    );
    assert!(!text.contains("Hostile"), "a sender's kind became a label");
    assert!(!text.contains("NotAPod"), "a sender's kind became a label");
}

/// `mcpguard_build_info`, the serving certificate's expiry and the process metrics are in
/// the real `/metrics`.
#[tokio::test]
async fn build_info_certificate_expiry_and_process_metrics_are_exposed() {
    let bundle = common::generate_bundle();
    let expected_not_after = mcpguard_core::rotation::cert_info(&bundle.cert_pem)
        .expect("the generated certificate parses")
        .not_after
        .as_second();
    let policy = policy::parse_str(RESTRICTED, "policy.yaml").expect("the policy loads");
    let server = TestServer::start_with_bundle(policy, bundle).await;
    // Some CPU time to count: /proc counts it in 10 ms ticks.
    let busy = std::time::Instant::now();
    let mut spins = 0_u64;
    while busy.elapsed() < std::time::Duration::from_millis(60) {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
    let text = server.metrics_text().await;
    assert_eq!(
        sample_lines(&text, "mcpguard_build_info"),
        [format!(
            r#"mcpguard_build_info{{version="{}",commit="{}"}} 1"#,
            env!("CARGO_PKG_VERSION"),
            mcpguard::metrics::GIT_COMMIT
        )]
    );
    let not_after_line =
        format!("mcpguard_certificate_not_after_timestamp_seconds {expected_not_after}");
    assert!(
        text.lines().any(|l| l == not_after_line),
        "{not_after_line} not in\n{text}"
    );
    let value = |name: &str| -> f64 {
        common::metric_value(&text, name).unwrap_or_else(|| panic!("{name} not in\n{text}"))
    };
    let now = jiff::Timestamp::now().as_second() as f64;
    let start = value("process_start_time_seconds");
    assert!(
        start <= now + 1.0 && start > now - 24.0 * 3600.0,
        "{start} vs now {now}"
    );
    assert!(value("process_resident_memory_bytes") > 1024.0 * 1024.0);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_threads") >= 2.0);
    assert!(value("process_cpu_seconds_total") > 0.0);
}
