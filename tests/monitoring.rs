//! webhook-manifests/monitoring (issue #19): every mcpguard metric its alert rules and
//! Grafana dashboard query exists in the real `/metrics`, the API server's webhook metrics
//! are filtered on the install's own webhook names, and the kustomization renders a
//! ServiceMonitor that scrapes the Service's metrics port as the Helm chart's does. The
//! rules themselves are checked by `promtool check rules` and `promtool test rules` in
//! .ci/run.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::external_tools::{stdout_of, tool_available};
use common::{TestServer, example_review_with_uid};
use pretty_assertions::assert_eq;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RULES: &str = include_str!("../webhook-manifests/monitoring/prometheusrule.yaml");
const DASHBOARD: &str = include_str!("../webhook-manifests/monitoring/dashboard.json");
const SERVICE_MONITOR: &str = include_str!("../webhook-manifests/monitoring/servicemonitor.yaml");
const WEBHOOKS: &str = include_str!("../webhook-manifests/base/webhooks.yaml");
const SERVICE: &str = include_str!("../webhook-manifests/base/service.yaml");
const CHART_SERVICE_MONITOR: &str =
    include_str!("../charts/mcpguard/templates/servicemonitor.yaml");

/// Every PromQL expression of the PrometheusRule, with its alert's name.
fn rule_exprs() -> Vec<(String, String)> {
    let rule: Value = serde_saphyr::from_str(RULES).expect("the PrometheusRule is YAML");
    let groups = rule["spec"]["groups"].as_array().expect("groups");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").iter())
        .map(|rule| {
            (
                rule["alert"].as_str().expect("an alert name").to_owned(),
                rule["expr"].as_str().expect("an expr").to_owned(),
            )
        })
        .collect()
}

/// Every PromQL expression of the dashboard (panel targets and template queries).
fn dashboard_exprs() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().expect("a panel title").to_owned();
            exprs.push((title, target["expr"].as_str().expect("an expr").to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            exprs.push((format!("${}", variable["name"]), query.to_owned()));
        }
    }
    exprs
}

/// The metric names in `expr` that start with one of `prefixes`.
fn metric_names(expr: &str, prefixes: &[&str]) -> BTreeSet<String> {
    let identifier = regex::Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").expect("a regex");
    identifier
        .find_iter(expr)
        .map(|m| m.as_str())
        .filter(|name| prefixes.iter().any(|prefix| name.starts_with(prefix)))
        .map(str::to_owned)
        .collect()
}

/// Every sample name `/metrics` can carry: each family's, with the suffixes its type gives
/// its samples (a family without a series yet still has its `# TYPE` line).
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|suffix| format!("{family}{suffix}")));
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

#[tokio::test]
async fn every_mcpguard_metric_the_rules_and_dashboard_query_exists() {
    let server = TestServer::start_default().await;
    // A denial and a mutation, so the labelled families have series as well.
    let denied = server
        .review("/validate", &example_review_with_uid("monitoring-deny"))
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    server
        .review("/mutate", &example_review_with_uid("monitoring-mutate"))
        .await;
    // A refused request, for mcpguard_bad_requests_total.
    let refused = server
        .post_raw("/validate", "application/json", b"[]".to_vec())
        .await;
    assert_eq!(refused.status, 400);
    // What the background audit sets after a scan (tests/audit_scan.rs drives the scan).
    server
        .state
        .metrics
        .audit_violations
        .get_or_create(&mcpguard::metrics::NamespaceLabels {
            namespace: "mcp".into(),
        })
        .set(2);
    let exposed = exposed_names(&server.metrics_text().await);

    let mut queried = BTreeSet::new();
    let mut missing = Vec::new();
    for (source, expr) in rule_exprs().into_iter().chain(dashboard_exprs()) {
        for name in metric_names(&expr, &["mcpguard_", "process_"]) {
            if !exposed.contains(&name) {
                missing.push(format!("{source}: {name}"));
            }
            queried.insert(name);
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "not in /metrics: {exposed:?}"
    );
    // The extraction found what the alerts are about (a broken regex would find nothing).
    for name in [
        "mcpguard_admission_requests_total",
        "mcpguard_certificate_not_after_timestamp_seconds",
        "mcpguard_events_dropped_total",
        "mcpguard_admission_duration_seconds_bucket",
        "mcpguard_build_info",
        "process_resident_memory_bytes",
    ] {
        assert!(queried.contains(name), "{name} is not queried: {queried:?}");
    }
}

#[test]
fn a_misspelt_metric_would_be_caught() {
    let exposed = exposed_names(
        "# TYPE mcpguard_events_dropped counter\nmcpguard_events_dropped_total 0\n\
         # TYPE mcpguard_admission_duration_seconds histogram\n# TYPE mcpguard_build_info gauge\n",
    );
    assert!(exposed.contains("mcpguard_events_dropped_total"));
    assert!(exposed.contains("mcpguard_admission_duration_seconds_bucket"));
    assert!(!exposed.contains("mcpguard_events_dropped"));
    assert!(!exposed.contains("mcpguard_build_info_total"));
    assert_eq!(
        metric_names(
            r#"sum(rate(mcpguard_denials_total{job=~"$job"}[5m])) / process_open_fds"#,
            &["mcpguard_", "process_"]
        ),
        BTreeSet::from([
            "mcpguard_denials_total".to_owned(),
            "process_open_fds".to_owned()
        ])
    );
}

/// The names of the install's webhooks, as `name=~` matches them.
fn webhook_name_matcher() -> String {
    let documents: Vec<Value> = serde_saphyr::from_multiple(WEBHOOKS).expect("webhooks.yaml");
    let names: Vec<&str> = documents
        .iter()
        .flat_map(|doc| doc["webhooks"].as_array().into_iter().flatten())
        .map(|webhook| webhook["name"].as_str().expect("a webhook name"))
        .collect();
    assert_eq!(names, ["mutate.mcpguard.dev", "validate.mcpguard.dev"]);
    format!(r#"name=~"{}""#, names.join("|"))
}

#[test]
fn the_api_servers_webhook_metrics_are_filtered_on_the_installs_webhook_names() {
    let matcher = webhook_name_matcher();
    let mut apiserver_queries = 0;
    for (source, expr) in rule_exprs().into_iter().chain(dashboard_exprs()) {
        let uses = metric_names(&expr, &["apiserver_admission_webhook_"]);
        if uses.is_empty() {
            continue;
        }
        apiserver_queries += 1;
        assert_eq!(
            expr.matches("apiserver_admission_webhook_").count(),
            expr.matches(&matcher).count(),
            "{source}: every API server selector must carry {matcher}: {expr}"
        );
    }
    // Webhook down and latency near the timeout in the rules; latency, failed calls and
    // rejections on the dashboard.
    assert_eq!(apiserver_queries, 5);
    let alerts: Vec<String> = rule_exprs().into_iter().map(|(alert, _)| alert).collect();
    assert_eq!(
        alerts,
        [
            "MCPGuardWebhookCallsFailing",
            "MCPGuardWebhookLatencyNearTimeout",
            "MCPGuardHighDenialRate",
            "MCPGuardEventsDropped",
            "MCPGuardCertificateExpiresSoon",
            "MCPGuardCertificateExpiresVerySoon",
            "MCPGuardCertificateReloadFailing",
        ]
    );
}

#[test]
fn the_service_monitor_scrapes_the_services_metrics_port_like_the_charts() {
    let monitor: Value = serde_saphyr::from_str(SERVICE_MONITOR).expect("ServiceMonitor YAML");
    let service: Value = serde_saphyr::from_str(SERVICE).expect("Service YAML");
    let endpoint = &monitor["spec"]["endpoints"][0];
    let port = endpoint["port"].as_str().expect("a port name");
    assert!(
        service["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| p["name"] == port),
        "the Service has no port {port}"
    );
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "label {key}");
    }
    // The chart's template says the same (its interval is a value).
    for line in [
        "    matchLabels:\n      app.kubernetes.io/name: mcpguard\n",
        "    matchNames: [mcpguard-system]\n",
        "    - port: metrics\n      path: /metrics\n      scheme: http\n",
    ] {
        assert!(
            SERVICE_MONITOR.contains(line),
            "servicemonitor.yaml lacks {line:?}"
        );
        assert!(
            CHART_SERVICE_MONITOR.contains(line),
            "the chart's ServiceMonitor lacks {line:?}"
        );
    }
}

#[test]
fn the_kustomization_renders_the_monitor_the_rules_and_the_dashboard_configmap() {
    if !tool_available("kubectl") {
        return;
    }
    let render = |dir: &str| -> Vec<Value> {
        let stdout =
            stdout_of(Command::new("kubectl").args(["kustomize", &format!("{ROOT}/{dir}")]));
        serde_saphyr::from_multiple(&String::from_utf8(stdout).expect("UTF-8")).expect("YAML")
    };
    let docs = render("webhook-manifests/monitoring");
    let mut kinds: Vec<(String, String, String)> = docs
        .iter()
        .map(|d| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&d["kind"]),
                text(&d["metadata"]["namespace"]),
                text(&d["metadata"]["name"]),
            )
        })
        .collect();
    kinds.sort();
    let row = |kind: &str, name: &str| {
        (
            kind.to_owned(),
            "mcpguard-system".to_owned(),
            name.to_owned(),
        )
    };
    assert_eq!(
        kinds,
        [
            row("ConfigMap", "mcpguard-dashboard"),
            row("PrometheusRule", "mcpguard"),
            row("ServiceMonitor", "mcpguard"),
        ]
    );
    let config_map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the ConfigMap");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(config_map["data"]["mcpguard.json"], DASHBOARD);
    // Not part of the default install (it needs the Prometheus Operator's CRDs).
    let install = render("webhook-manifests");
    assert!(
        !install.iter().any(|d| d["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
            || d["metadata"]["name"] == "mcpguard-dashboard"),
        "the default install includes monitoring"
    );
}
