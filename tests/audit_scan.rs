//! The background audit against a mocked API server: `audit::scan::scan` talks to the mock
//! API server of tests/common/mock_api.rs, and a scripted verifier asserts every request it makes (method,
//! path, query, content type, body) and answers as kube-apiserver would. A request the script
//! does not expect fails the test; so does one it expects but never gets.

#[path = "common/mock_api.rs"]
mod mock_api;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use mcpguard::cluster::audit_scan::{ScanSummary, scan};
use mcpguard::metrics::Metrics;
use mcpguard_core::audit::report::ReportApi;
use mcpguard_core::policy::{DEFAULT_POLICY_YAML, Policy, parse_str};
use mcpguard_core::policy_set::{ClusterPolicies, PolicySet, assemble};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mcpguard_core::workloads::WORKLOADS;
use mock_api::{Expect, MockApi, STEP_TIMEOUT};
use serde_json::{Value, json};

const MANAGED_SELECTOR: &str = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard";
const APPLY: &str = "application/apply-patch+yaml";
/// As kube sends it: `force` first.
const APPLY_QUERY: &str = "force=true&fieldManager=mcpguard";

const COMPLIANT_UID: &str = "11111111-1111-4111-8111-111111111111";
const DRIFTED_UID: &str = "22222222-2222-4222-8222-222222222222";
const DEPLOYMENT_UID: &str = "33333333-3333-4333-8333-333333333333";
const DELETED_UID: &str = "99999999-9999-4999-8999-999999999999";

const PSS: &str = "Pod Security Standards (restricted:latest)";
/// What the default policy runs, in order: restricted/latest after overrides, then its one
/// enabled MCP rule.
const CHECKS: [&str; 16] = [
    "appArmorProfile",
    "hostNamespaces",
    "hostPorts",
    "hostProbesAndHostLifecycle",
    "privileged",
    "seLinuxOptions",
    "sysctls",
    "windowsHostProcess",
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "procMount_restricted",
    "restrictedVolumes",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
    "forbidSecretLiterals",
];

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("valid timestamp")
}

// ---- the mocked API server -----------------------------------------------------------------

/// The scanner's requests, as steps of the shared mock API server.
impl MockApi {
    /// Expects `GET path` (no query) and answers with a list of `items`.
    async fn list(&mut self, path: &str, list_kind: &str, api_version: &str, items: Vec<Value>) {
        self.expect(&Expect::get(path))
            .await
            .ok(&json!({"apiVersion": api_version, "kind": list_kind,
                    "metadata": {"resourceVersion": "5000"}, "items": items}));
    }

    /// The scanner's list calls for namespace `mcp`: pods, then every workload resource in
    /// `WORKLOADS` order, answered with `pods` and, for Deployments, `deployments`.
    async fn lists(&mut self, namespace: &str, pods: Vec<Value>, deployments: Vec<Value>) {
        self.list(
            &format!("/api/v1/namespaces/{namespace}/pods"),
            "PodList",
            "v1",
            pods,
        )
        .await;
        let mut deployments = Some(deployments);
        for workload in WORKLOADS {
            let (prefix, api_version) = if workload.group.is_empty() {
                ("/api/v1".to_owned(), "v1".to_owned())
            } else {
                (
                    format!("/apis/{}/v1", workload.group),
                    format!("{}/v1", workload.group),
                )
            };
            let items = if workload.kind == "Deployment" {
                deployments.take().expect("one Deployment list")
            } else {
                Vec::new()
            };
            self.list(
                &format!("{prefix}/namespaces/{namespace}/{}", workload.resource),
                &format!("{}List", workload.kind),
                &api_version,
                items,
            )
            .await;
        }
    }

    /// Expects the list of mcpguard's reports in `namespace` and answers with `reports`.
    async fn reports(&mut self, namespace: &str, reports: Vec<Value>) {
        self.reports_of(ReportApi::PolicyReport, namespace, reports)
            .await;
    }

    /// `reports` of `api`.
    async fn reports_of(&mut self, api: ReportApi, namespace: &str, reports: Vec<Value>) {
        let path = format!(
            "/apis/{}/namespaces/{namespace}/{}",
            api.api_version(),
            api.plural()
        );
        self.expect(&Expect::get(path).query(MANAGED_SELECTOR))
            .await
            .ok(
                &json!({"apiVersion": api.api_version(), "kind": format!("{}List", api.kind()),
                        "metadata": {"resourceVersion": "5001"}, "items": reports}),
            );
    }

    /// Expects one server-side apply of report `name`; answers with it stored; returns the body.
    async fn apply(&mut self, name: &str) -> Value {
        self.apply_in("mcp", name).await
    }

    /// `apply` in another namespace.
    async fn apply_in(&mut self, namespace: &str, name: &str) -> Value {
        self.apply_of(ReportApi::PolicyReport, namespace, name)
            .await
    }

    /// `apply_in` of `api`.
    async fn apply_of(&mut self, api: ReportApi, namespace: &str, name: &str) -> Value {
        let path = format!(
            "/apis/{}/namespaces/{namespace}/{}/{name}",
            api.api_version(),
            api.plural()
        );
        let received = self
            .expect(&Expect::patch(path).query(APPLY_QUERY).content_type(APPLY))
            .await;
        received.ok(&stored(&received.body));
        received.body
    }
}

/// A report as the API server stores and lists it: the applied content plus server fields
/// (list items carry no apiVersion or kind).
fn stored(report: &Value) -> Value {
    let mut stored = report.clone();
    let object = stored.as_object_mut().expect("report");
    object.remove("apiVersion");
    object.remove("kind");
    let metadata = stored["metadata"].as_object_mut().expect("metadata");
    metadata.insert("uid".into(), json!("abababab-0000-4000-8000-000000000000"));
    metadata.insert("resourceVersion".into(), json!("4242"));
    metadata.insert("generation".into(), json!(1));
    metadata.insert("creationTimestamp".into(), json!("2026-11-18T10:00:00Z"));
    metadata.insert(
        "managedFields".into(),
        json!([{"manager": "mcpguard", "operation": "Apply", "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "time": "2026-11-18T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
    );
    stored
}

/// Runs one `scan` against `script`; returns what `scan` returned and what the script did.
async fn run_scan<T, F, Fut>(
    policy: &Policy,
    metrics: &Metrics,
    script: F,
) -> (Result<ScanSummary, kube::Error>, T)
where
    F: FnOnce(MockApi) -> Fut,
    Fut: Future<Output = (MockApi, T)> + Send + 'static,
    T: Send + 'static,
{
    let policies = PolicySet::single(std::sync::Arc::new(policy.clone()));
    run_scan_of(&policies, metrics, script).await
}

/// A scan of every namespace `policies` cover, each under its own policy.
async fn run_scan_of<T, F, Fut>(
    policies: &PolicySet,
    metrics: &Metrics,
    script: F,
) -> (Result<ScanSummary, kube::Error>, T)
where
    F: FnOnce(MockApi) -> Fut,
    Fut: Future<Output = (MockApi, T)> + Send + 'static,
    T: Send + 'static,
{
    run_scan_writing(&[ReportApi::PolicyReport], policies, metrics, script).await
}

/// `run_scan_of`, writing to `apis`.
async fn run_scan_writing<T, F, Fut>(
    apis: &[ReportApi],
    policies: &PolicySet,
    metrics: &Metrics,
    script: F,
) -> (Result<ScanSummary, kube::Error>, T)
where
    F: FnOnce(MockApi) -> Fut,
    Fut: Future<Output = (MockApi, T)> + Send + 'static,
    T: Send + 'static,
{
    let (client, api) = MockApi::new("default");
    let verifier = mock_api::spawn(api, script);
    let classes = StaticRuntimeClasses::default();
    let result = tokio::time::timeout(
        STEP_TIMEOUT * 3,
        scan(&client, policies, &classes, now(), metrics, apis),
    )
    .await;
    drop(client);
    let (_, out) = verifier
        .finish(|| format!("scan returned {result:?}"))
        .await;
    (result.expect("scan finishes"), out)
}

// ---- objects as the API lists them ---------------------------------------------------------

fn hardened_spec(image: &str) -> Value {
    json!({
        "automountServiceAccountToken": false,
        "securityContext": {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                            "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": image, "imagePullPolicy": "Always",
            "resources": {"requests": {"memory": "400Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
        }],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    })
}

fn listed_pod(name: &str, uid: &str, spec: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "mcp", "uid": uid, "resourceVersion": "3001",
                     "creationTimestamp": "2025-01-10T08:00:00Z", "labels": {"app": name}},
        "spec": spec,
        "status": {"phase": "Running", "podIP": "10.0.0.12"},
    })
}

fn compliant_pod() -> Value {
    listed_pod(
        "github-mcp",
        COMPLIANT_UID,
        hardened_spec("ghcr.io/github/github-mcp-server:v0.20.0"),
    )
}

/// Admitted long ago, under an older policy: its container sets no securityContext.
fn drifted_pod() -> Value {
    let mut spec = hardened_spec("ghcr.io/x/legacy:1");
    spec["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("securityContext");
    listed_pod("legacy-mcp", DRIFTED_UID, spec)
}

/// Its template stays noncompliant after mutation: host network.
fn deployment() -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "mcp", "uid": DEPLOYMENT_UID, "generation": 2,
                     "resourceVersion": "3002"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "ghcr.io/x/web:2"}]}
            }
        },
        "status": {"replicas": 0},
    })
}

// ---- expected reports ----------------------------------------------------------------------

/// The report mcpguard applies for the object (`kind`, `api_version`, `name`, `uid`), every
/// check passing except `failures` (rule, message).
fn expected_report(
    (api_version, kind, name, uid): (&str, &str, &str, &str),
    failures: &[(&str, &str)],
) -> Value {
    let results: Vec<Value> = CHECKS
        .iter()
        .map(|rule| {
            let category = if *rule == "forbidSecretLiterals" {
                "MCP"
            } else {
                PSS
            };
            // hostNamespaces, privileged, windowsHostProcess and forbidSecretLiterals are the
            // high-severity checks of this policy (SEVERITIES in audit/report.rs).
            let severity = match *rule {
                "hostNamespaces" | "privileged" | "windowsHostProcess" | "forbidSecretLiterals" => {
                    "high"
                }
                _ => "medium",
            };
            let mut result = json!({
                "policy": "mcp-restricted", "rule": rule, "result": "pass", "source": "mcpguard",
                "category": category, "severity": severity,
                "timestamp": {"seconds": 1_795_000_000, "nanos": 0}, "scored": true,
            });
            if let Some((_, message)) = failures.iter().find(|(r, _)| r == rule) {
                result["result"] = json!("fail");
                result["message"] = json!(message);
            }
            result
        })
        .collect();
    json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": format!("mcpguard-{uid}"),
            "namespace": "mcp",
            "labels": {"app.kubernetes.io/managed-by": "mcpguard", "mcpguard.dev/policy": "mcp-restricted"},
            "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}],
        },
        "scope": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": "mcp", "uid": uid},
        "summary": {"pass": 16 - failures.len(), "fail": failures.len(), "warn": 0, "error": 0, "skip": 0},
        "results": results,
    })
}

fn compliant_report() -> Value {
    expected_report(("v1", "Pod", "github-mcp", COMPLIANT_UID), &[])
}

fn drifted_report() -> Value {
    expected_report(
        ("v1", "Pod", "legacy-mcp", DRIFTED_UID),
        &[
            (
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
            ),
            (
                "capabilities_restricted",
                "unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"])",
            ),
        ],
    )
}

fn deployment_report() -> Value {
    expected_report(
        ("apps/v1", "Deployment", "web", DEPLOYMENT_UID),
        &[("hostNamespaces", "host namespaces (hostNetwork=true)")],
    )
}

/// A report for a pod that no longer exists.
fn stale_report() -> Value {
    stored(&expected_report(
        ("v1", "Pod", "gone-mcp", DELETED_UID),
        &[],
    ))
}

fn report_name(uid: &str) -> String {
    format!("mcpguard-{uid}")
}

fn audit_violations(metrics: &Metrics, namespace: &str) -> Option<f64> {
    let text = metrics.encode();
    let sample = format!("mcpguard_audit_violations{{namespace=\"{namespace}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&sample))
        .map(|value| value.trim().parse().expect("a number"))
}

fn summary(
    (scanned, written, unchanged, stale): (usize, usize, usize, usize),
    violations: &[(&str, usize)],
) -> ScanSummary {
    ScanSummary {
        scanned,
        written,
        unchanged,
        stale,
        violations: violations
            .iter()
            .map(|(ns, n)| ((*ns).to_owned(), *n))
            .collect::<BTreeMap<_, _>>(),
    }
}

// ---- scans ---------------------------------------------------------------------------------

#[tokio::test]
async fn scan_writes_changed_reports_skips_current_ones_and_leaves_stale_ones_to_the_garbage_collector()
 {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    let (result, applied) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists(
            "mcp",
            vec![compliant_pod(), drifted_pod()],
            vec![deployment()],
        )
        .await;
        api.reports("mcp", vec![stored(&compliant_report()), stale_report()])
            .await;
        // Reports are written in name order; the current one is not written at all.
        let drifted = api.apply(&report_name(DRIFTED_UID)).await;
        let deployment = api.apply(&report_name(DEPLOYMENT_UID)).await;
        // No DELETE of the stale report: its owner reference hands it to the garbage
        // collector (the verifier fails on any request after the last step).
        (api, (drifted, deployment))
    })
    .await;
    let (drifted, deployment) = applied;
    assert_eq!(drifted, drifted_report());
    assert_eq!(deployment, deployment_report());
    assert_eq!(
        result.expect("scan succeeds"),
        summary((3, 2, 1, 1), &[("mcp", 3)])
    );
    assert_eq!(audit_violations(&metrics, "mcp"), Some(3.0));
    assert!(
        metrics
            .encode()
            .contains("mcpguard_audit_violations{namespace=\"mcp\"} 3\n")
    );
}

#[tokio::test]
async fn a_first_scan_writes_every_report_and_a_second_writes_nothing() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    let (result, written) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists(
            "mcp",
            vec![compliant_pod(), drifted_pod()],
            vec![deployment()],
        )
        .await;
        api.reports("mcp", Vec::new()).await;
        let mut written = Vec::new();
        for uid in [COMPLIANT_UID, DRIFTED_UID, DEPLOYMENT_UID] {
            written.push(api.apply(&report_name(uid)).await);
        }
        (api, written)
    })
    .await;
    assert_eq!(
        written,
        vec![compliant_report(), drifted_report(), deployment_report()]
    );
    assert_eq!(
        result.expect("scan succeeds"),
        summary((3, 3, 0, 0), &[("mcp", 3)])
    );

    // The API now lists what was applied: nothing to write, nothing to delete.
    let stored_reports: Vec<Value> = written.iter().map(stored).collect();
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists(
            "mcp",
            vec![compliant_pod(), drifted_pod()],
            vec![deployment()],
        )
        .await;
        api.reports("mcp", stored_reports).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((3, 0, 3, 0), &[("mcp", 3)])
    );
    assert_eq!(audit_violations(&metrics, "mcp"), Some(3.0));
}

#[tokio::test]
async fn a_pod_that_drifted_since_its_last_report_is_rewritten() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    // Last round the pod passed; now (same uid) it fails.
    let previous = stored(&expected_report(
        ("v1", "Pod", "legacy-mcp", DRIFTED_UID),
        &[],
    ));
    let (result, body) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists("mcp", vec![drifted_pod()], Vec::new()).await;
        api.reports("mcp", vec![previous]).await;
        let body = api.apply(&report_name(DRIFTED_UID)).await;
        (api, body)
    })
    .await;
    assert_eq!(body, drifted_report());
    assert_eq!(
        result.expect("scan succeeds"),
        summary((1, 1, 0, 0), &[("mcp", 2)])
    );
}

#[tokio::test]
async fn an_empty_namespace_deletes_nothing_and_clears_the_gauge() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    metrics
        .audit_violations
        .get_or_create(&mcpguard::metrics::NamespaceLabels {
            namespace: "mcp".into(),
        })
        .set(7);
    let second_stale = stored(&expected_report(
        ("v1", "Pod", "gone-too", COMPLIANT_UID),
        &[],
    ));
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists("mcp", Vec::new(), Vec::new()).await;
        api.reports("mcp", vec![stale_report(), second_stale]).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((0, 0, 0, 2), &[("mcp", 0)])
    );
    assert_eq!(audit_violations(&metrics, "mcp"), Some(0.0));
}

#[tokio::test]
async fn objects_that_cannot_be_reported_are_counted_but_get_no_report() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    let mut no_template = deployment();
    no_template["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("template");
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists("mcp", Vec::new(), vec![no_template]).await;
        api.reports("mcp", Vec::new()).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((1, 0, 0, 0), &[("mcp", 0)])
    );
}

#[tokio::test]
async fn every_enforced_namespace_is_scanned_in_turn() {
    let text = DEFAULT_POLICY_YAML.replace("namespaces: [mcp]", "namespaces: [mcp, tools]");
    let policy = parse_str(&text, "test.yaml").expect("policy loads");
    let metrics = Metrics::new();
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists("mcp", vec![drifted_pod()], Vec::new()).await;
        api.reports("mcp", vec![stored(&drifted_report())]).await;
        api.lists("tools", Vec::new(), Vec::new()).await;
        api.reports("tools", Vec::new()).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((1, 0, 1, 0), &[("mcp", 2), ("tools", 0)])
    );
    assert_eq!(audit_violations(&metrics, "mcp"), Some(2.0));
    assert_eq!(audit_violations(&metrics, "tools"), Some(0.0));
}

#[tokio::test]
async fn a_failed_list_stops_the_scan_before_any_write() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let metrics = Metrics::new();
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.expect(&Expect::get("/api/v1/namespaces/mcp/pods"))
            .await
            .reply(
                StatusCode::FORBIDDEN,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "pods is forbidden", "reason": "Forbidden", "code": 403}),
            );
        (api, ())
    })
    .await;
    match result {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected the API's 403, got {other:?}"),
    }
    assert_eq!(
        audit_violations(&metrics, "mcp"),
        None,
        "no gauge from a failed scan"
    );
}

/// `mcpguard_audit_violations` is "failing checks found by the last background audit, by
/// namespace". After a policy reload stops enforcing `tools`, the last audit found nothing
/// there, but the gauge keeps the count of an audit long gone.
#[tokio::test]
async fn the_gauge_of_a_namespace_no_longer_enforced_is_cleared() {
    let text = DEFAULT_POLICY_YAML.replace("namespaces: [mcp]", "namespaces: [mcp, tools]");
    let both = parse_str(&text, "test.yaml").expect("policy loads");
    let metrics = Metrics::new();
    let mut in_tools = drifted_pod();
    in_tools["metadata"]["namespace"] = json!("tools");
    let (result, ()) = run_scan(&both, &metrics, |mut api| async move {
        api.lists("mcp", Vec::new(), Vec::new()).await;
        api.reports("mcp", Vec::new()).await;
        api.lists("tools", vec![in_tools], Vec::new()).await;
        api.reports("tools", Vec::new()).await;
        api.apply_in("tools", &report_name(DRIFTED_UID)).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((1, 1, 0, 0), &[("mcp", 0), ("tools", 2)])
    );
    assert_eq!(audit_violations(&metrics, "tools"), Some(2.0));

    // The policy now enforces `mcp` only.
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let (result, ()) = run_scan(&policy, &metrics, |mut api| async move {
        api.lists("mcp", Vec::new(), Vec::new()).await;
        api.reports("mcp", Vec::new()).await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((0, 0, 0, 0), &[("mcp", 0)])
    );
    assert_eq!(
        audit_violations(&metrics, "tools"),
        None,
        "the last audit did not scan `tools`, yet its gauge still says 2"
    );
}

/// Each namespace is audited by the policy that governs it: an MCPPolicy object at baseline
/// for `tools`, the file's restricted policy for `mcp`. The same drifted pod fails in `mcp`
/// and passes in `tools`, whose report names the object's policy.
#[tokio::test]
async fn each_namespace_is_audited_by_the_policy_that_governs_it() {
    let tools_policy = json!({
        "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy",
        "metadata": {"name": "tools-baseline", "uid": "uid-tools", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"namespaces": ["tools"], "podSecurity": {"level": "baseline", "version": "latest"}},
    });
    let mut cluster = ClusterPolicies::default();
    cluster.replace_all(&[tools_policy]);
    let file = std::sync::Arc::new(Policy::embedded_default().expect("embedded policy loads"));
    let policies = assemble(file, &cluster);
    let metrics = Metrics::new();
    let mut in_tools = drifted_pod();
    in_tools["metadata"]["namespace"] = json!("tools");
    let (result, tools_report) = run_scan_of(&policies, &metrics, |mut api| async move {
        api.lists("mcp", vec![drifted_pod()], Vec::new()).await;
        api.reports("mcp", Vec::new()).await;
        api.apply(&report_name(DRIFTED_UID)).await;
        api.lists("tools", vec![in_tools], Vec::new()).await;
        api.reports("tools", Vec::new()).await;
        let body = api.apply_in("tools", &report_name(DRIFTED_UID)).await;
        (api, body)
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((2, 2, 0, 0), &[("mcp", 2), ("tools", 0)])
    );
    assert_eq!(
        tools_report["metadata"]["labels"]["mcpguard.dev/policy"],
        json!("tools-baseline")
    );
    assert_eq!(tools_report["summary"]["fail"], json!(0));
}

/// `--report-api both`: every report is written as a PolicyReport, then as an OpenReports
/// Report (same body, kind `Report`, a report-level `source`); a second scan writes neither.
#[tokio::test]
async fn both_report_apis_get_every_report_and_a_rescan_writes_neither() {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let policies = PolicySet::single(std::sync::Arc::new(policy));
    let metrics = Metrics::new();
    let both = [ReportApi::PolicyReport, ReportApi::OpenReports];
    let uids = [COMPLIANT_UID, DRIFTED_UID, DEPLOYMENT_UID];
    let (result, written) = run_scan_writing(&both, &policies, &metrics, |mut api| async move {
        api.lists(
            "mcp",
            vec![compliant_pod(), drifted_pod()],
            vec![deployment()],
        )
        .await;
        let mut written = Vec::new();
        for report_api in [ReportApi::PolicyReport, ReportApi::OpenReports] {
            api.reports_of(report_api, "mcp", Vec::new()).await;
            for uid in uids {
                written.push(api.apply_of(report_api, "mcp", &report_name(uid)).await);
            }
        }
        (api, written)
    })
    .await;
    let policy_reports = [compliant_report(), drifted_report(), deployment_report()];
    let open_reports: Vec<Value> = policy_reports
        .iter()
        .map(|report| {
            let mut open = report.clone();
            open["apiVersion"] = json!("openreports.io/v1alpha1");
            open["kind"] = json!("Report");
            open["source"] = json!("mcpguard");
            open
        })
        .collect();
    assert_eq!(written[..3], policy_reports[..]);
    assert_eq!(written[3..], open_reports[..]);
    assert_eq!(
        result.expect("scan succeeds"),
        summary((3, 6, 0, 0), &[("mcp", 3)])
    );

    let stored_policy: Vec<Value> = policy_reports.iter().map(stored).collect();
    let stored_open: Vec<Value> = open_reports.iter().map(stored).collect();
    let (result, ()) = run_scan_writing(&both, &policies, &metrics, |mut api| async move {
        api.lists(
            "mcp",
            vec![compliant_pod(), drifted_pod()],
            vec![deployment()],
        )
        .await;
        api.reports_of(ReportApi::PolicyReport, "mcp", stored_policy)
            .await;
        api.reports_of(ReportApi::OpenReports, "mcp", stored_open)
            .await;
        (api, ())
    })
    .await;
    assert_eq!(
        result.expect("scan succeeds"),
        summary((3, 0, 6, 0), &[("mcp", 3)])
    );
    assert_eq!(audit_violations(&metrics, "mcp"), Some(3.0));
}
