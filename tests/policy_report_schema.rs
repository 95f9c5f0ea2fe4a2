//! The PolicyReports mcpguard writes are valid against the PolicyReport CRD the project
//! ships (webhook-manifests/policyreport-crd), and that CRD's result fields and enums are
//! the upstream ones.
//!
//! Upstream, read for this test: kubernetes-sigs/wg-policy-prototypes at commit
//! 7132d6fc8ba754cf0aa2888a64f9da18ab394e41,
//! `policy-report/pkg/api/wgpolicyk8s.io/v1alpha2/policyreport_types.go`:
//! `PolicyResult` is `pass;fail;warn;error;skip`, `PolicyResultSeverity` is
//! `critical;high;low;medium;info`, `timestamp` is a `metav1.Timestamp` (`seconds` int64,
//! `nanos` int32, both required in the generated schema), `resources` is a list of
//! `corev1.ObjectReference`, and a result has exactly the fields listed in
//! [`UPSTREAM_RESULT_FIELDS`].

mod common;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use mcpguard_core::audit::report::{self, Scanned};
use mcpguard_core::engine::Context;
use mcpguard_core::policy::Policy;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mcpguard_core::workloads::by_kind;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const SHIPPED_CRD: &str = include_str!("../webhook-manifests/policyreport-crd/policyreports.yaml");

/// `PolicyReportResult`'s JSON fields upstream, sorted.
const UPSTREAM_RESULT_FIELDS: [&str; 12] = [
    "category",
    "message",
    "policy",
    "properties",
    "resourceSelector",
    "resources",
    "result",
    "rule",
    "scored",
    "severity",
    "source",
    "timestamp",
];

fn shipped_crd() -> CustomResourceDefinition {
    serde_saphyr::from_str(SHIPPED_CRD).expect("the shipped CRD parses")
}

fn schema() -> Value {
    let crd = shipped_crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("an openAPIV3Schema");
    serde_json::to_value(schema).expect("schema as JSON")
}

#[test]
fn the_shipped_crd_has_the_upstream_result_fields_and_enums() {
    let schema = schema();
    let result = &schema["properties"]["results"]["items"];
    let mut fields: Vec<&str> = result["properties"]
        .as_object()
        .expect("result properties")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, UPSTREAM_RESULT_FIELDS);
    assert_eq!(result["required"], json!(["policy"]));
    assert_eq!(
        result["properties"]["severity"]["enum"],
        json!(["critical", "high", "low", "medium", "info"])
    );
    assert_eq!(
        result["properties"]["result"]["enum"],
        json!(["pass", "fail", "warn", "error", "skip"])
    );
    let timestamp = &result["properties"]["timestamp"];
    assert_eq!(timestamp["required"], json!(["nanos", "seconds"]));
    assert_eq!(
        timestamp["properties"],
        json!({"seconds": {"type": "integer", "format": "int64"},
               "nanos": {"type": "integer", "format": "int32"}})
    );
    let mut reference: Vec<&str> = result["properties"]["resources"]["items"]["properties"]
        .as_object()
        .expect("ObjectReference properties")
        .keys()
        .map(String::as_str)
        .collect();
    reference.sort_unstable();
    assert_eq!(
        reference,
        [
            "apiVersion",
            "fieldPath",
            "kind",
            "name",
            "namespace",
            "resourceVersion",
            "uid"
        ]
    );
}

fn pod(name: &str, uid: &str, security: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "mcp", "uid": uid},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1", "securityContext": security}]}
    })
}

#[test]
fn every_report_mcpguard_writes_is_valid_against_the_shipped_crd() {
    let policy = Policy::embedded_default().expect("the embedded policy loads");
    let classes = StaticRuntimeClasses::default();
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: "2026-12-04T10:00:00.25Z".parse().expect("a timestamp"),
    };
    let failing = pod(
        "root",
        "11111111-1111-4111-8111-111111111111",
        json!({"privileged": true, "runAsUser": 0}),
    );
    let undecodable = pod(
        "broken",
        "22222222-2222-4222-8222-222222222222",
        json!({"runAsUser": "not a number"}),
    );
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mcp", "uid": "33333333-3333-4333-8333-333333333333"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"hostNetwork": true,
                                       "containers": [{"name": "app", "image": "ghcr.io/x/web:2"}]}}}
    });
    let deployment_kind = by_kind("apps/v1", "Deployment").expect("a workload kind");
    let reports: Vec<Value> = [
        report::report_for(&failing, Scanned::Pod, context),
        report::report_for(&undecodable, Scanned::Pod, context),
        report::report_for(&deployment, Scanned::Workload(deployment_kind), context),
    ]
    .into_iter()
    .map(|report| report.expect("a report"))
    .collect();
    // What the schema is asked to judge: the fields this change added, on every result.
    for report in &reports {
        for result in report["results"].as_array().expect("results") {
            assert_eq!(
                result["timestamp"],
                json!({"seconds": 1_796_378_400, "nanos": 250_000_000}),
                "{result}"
            );
            assert!(result["severity"].is_string(), "{result}");
        }
    }
    let privileged = reports[0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["rule"] == "privileged")
        .expect("a privileged result");
    assert_eq!(privileged["result"], "fail");
    assert_eq!(privileged["severity"], "high");
    assert_eq!(reports[1]["results"][0]["severity"], "info");

    let crd = shipped_crd();
    let Some(errors) = common::crd_schema::crd_schema_errors(&crd, &reports) else {
        return;
    };
    assert_eq!(errors, vec![Vec::<String>::new(); reports.len()]);
}
