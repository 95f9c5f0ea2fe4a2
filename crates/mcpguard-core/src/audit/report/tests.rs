//! `report_for`: the exact PolicyReport for pods and workloads of a mixed namespace
//! (compliant, drifted, denied template, waived by an exception, MCP rules), `is_current`
//! in both directions, and the objects that get no report.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::engine::Context;
use crate::policy::{DEFAULT_POLICY_YAML, Policy, parse_str};
use crate::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};
use crate::workloads::{WORKLOADS, by_kind};

// ---- fixtures ------------------------------------------------------------------------------

const PSS: &str = "Pod Security Standards (restricted:latest)";
const COMPLIANT_UID: &str = "11111111-1111-4111-8111-111111111111";
const DRIFTED_UID: &str = "22222222-2222-4222-8222-222222222222";
const DEPLOYMENT_UID: &str = "33333333-3333-4333-8333-333333333333";
const BROWSER_UID: &str = "44444444-4444-4444-8444-444444444444";
const REGISTRY_UID: &str = "55555555-5555-4555-8555-555555555555";

/// restricted/latest after overrides, in PSA's order.
const PSS_CHECKS: [&str; 15] = [
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
];

const ESCALATION: &str = "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)";
const CAPABILITIES: &str = "unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"])";

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("valid timestamp")
}

fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy loads")
}

/// The default policy with some of its lines replaced.
fn policy_replacing(pairs: &[(&str, &str)]) -> Policy {
    let mut text = DEFAULT_POLICY_YAML.to_owned();
    for (from, to) in pairs {
        assert!(text.contains(from), "{from:?} is in the default policy");
        text = text.replace(from, to);
    }
    parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

fn report_of(object: &Value, scanned: Scanned, policy: &Policy) -> Option<Value> {
    report_with(object, scanned, policy, &StaticRuntimeClasses::default())
}

fn report_with(
    object: &Value,
    scanned: Scanned,
    policy: &Policy,
    classes: &StaticRuntimeClasses,
) -> Option<Value> {
    report_for(
        object,
        scanned,
        Context {
            policy,
            runtime_classes: classes,
            now: now(),
        },
    )
}

fn deployment_kind() -> Scanned {
    Scanned::Workload(by_kind("apps/v1", "Deployment").expect("Deployment is a workload"))
}

fn hardened_spec(image: &str) -> Value {
    json!({
        "automountServiceAccountToken": false,
        "securityContext": {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                            "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": image, "imagePullPolicy": "Always",
            "resources": {"requests": {"memory": "400Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
        }]
    })
}

/// A running pod as the API returns it (status and server fields included).
fn pod(name: &str, uid: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "mcp", "uid": uid, "resourceVersion": "4711",
            "creationTimestamp": "2025-01-10T08:00:00Z", "labels": {"app": name}
        },
        "spec": spec,
        "status": {"phase": "Running"}
    })
}

fn compliant_pod() -> Value {
    pod(
        "github-mcp",
        COMPLIANT_UID,
        hardened_spec("ghcr.io/github/github-mcp-server:v0.20.0"),
    )
}

/// Admitted long ago (before mcpguard): its container sets no securityContext of its own.
fn drifted_pod() -> Value {
    let mut spec = hardened_spec("ghcr.io/x/legacy:1");
    spec["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("securityContext");
    pod("legacy-mcp", DRIFTED_UID, spec)
}

/// A Deployment whose template stays noncompliant after mutation (host network).
fn denied_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mcp", "uid": DEPLOYMENT_UID, "generation": 3},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"hostNetwork": true,
                         "containers": [{"name": "app", "image": "ghcr.io/x/web:2"}]}
            }
        }
    })
}

/// The severity each check of these fixtures is reported with (written out here, not taken
/// from `SEVERITIES`, so a change of the table shows in these tests).
fn expected_severity(rule: &str) -> &'static str {
    match rule {
        "privileged"
        | "hostNamespaces"
        | "hostPathVolumes"
        | "windowsHostProcess"
        | "capabilities_baseline"
        | "procMount"
        | "allowedRegistries"
        | "forbidSecretLiterals" => "high",
        "maxResources" | "maxContainersPerPod" => "low",
        "decode" => "info",
        _ => "medium",
    }
}

/// One result entry as `report_for` writes it.
fn entry(rule: &str, result: &str, category: &str, message: Option<&str>) -> Value {
    let mut entry = json!({
        "policy": "mcp-restricted",
        "rule": rule,
        "result": result,
        "source": "mcpguard",
        "category": category,
        "severity": expected_severity(rule),
        "timestamp": {"seconds": 1_795_000_000, "nanos": 0},
        "scored": true,
    });
    if let Some(message) = message {
        entry["message"] = json!(message);
    }
    entry
}

/// Every check of `rules` in order, passing unless `outcomes` says otherwise
/// (`rule -> (result, message, exception)`).
fn expected_results(rules: &[&str], outcomes: &[(&str, &str, &str, Option<&str>)]) -> Vec<Value> {
    rules
        .iter()
        .map(|rule| {
            let category = if crate::rules::ALL_RULE_IDS.contains(rule) {
                "MCP"
            } else {
                PSS
            };
            match outcomes.iter().find(|(r, ..)| r == rule) {
                None => entry(rule, "pass", category, None),
                Some((_, result, message, exception)) => {
                    let mut e = entry(rule, result, category, Some(message));
                    if let Some(exception) = exception {
                        e["properties"] = json!({"exception": exception});
                    }
                    e
                }
            }
        })
        .collect()
}

fn default_rules() -> Vec<&'static str> {
    let mut rules = PSS_CHECKS.to_vec();
    rules.push("forbidSecretLiterals");
    rules
}

fn summary(pass: usize, fail: usize, error: usize, skip: usize) -> Value {
    json!({"pass": pass, "fail": fail, "warn": 0, "error": error, "skip": skip})
}

// ---- which checks are reported -------------------------------------------------------------

#[test]
fn checks_run_are_the_pss_checks_then_the_enabled_rules() {
    let policy = default_policy();
    let classes = StaticRuntimeClasses::default();
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: now(),
    };
    assert_eq!(checks_run(context), default_rules());

    let policy = policy_replacing(&[
        ("allowedRegistries: []", "allowedRegistries: [ghcr.io]"),
        ("maxResources: {}", "maxResources: {cpu: \"1\"}"),
        ("forbidSecretLiterals: true", "forbidSecretLiterals: false"),
    ]);
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: now(),
    };
    let mut expected = PSS_CHECKS.to_vec();
    expected.extend(["allowedRegistries", "maxResources"]);
    assert_eq!(checks_run(context), expected);
}

// ---- pods ----------------------------------------------------------------------------------

#[test]
fn compliant_pod_gets_the_exact_report() {
    let report = report_of(&compliant_pod(), Scanned::Pod, &default_policy()).expect("a report");
    let results: Vec<Value> = default_rules()
        .iter()
        .map(|rule| {
            json!({
                "policy": "mcp-restricted", "rule": rule, "result": "pass", "source": "mcpguard",
                "category": if *rule == "forbidSecretLiterals" { "MCP" } else { PSS },
                "severity": expected_severity(rule),
                "timestamp": {"seconds": 1_795_000_000, "nanos": 0},
                "scored": true,
            })
        })
        .collect();
    assert_eq!(
        report,
        json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {
                "name": format!("mcpguard-{COMPLIANT_UID}"),
                "namespace": "mcp",
                "labels": {
                    "app.kubernetes.io/managed-by": "mcpguard",
                    "mcpguard.dev/policy": "mcp-restricted",
                },
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Pod", "name": "github-mcp", "uid": COMPLIANT_UID,
                }],
            },
            "scope": {
                "apiVersion": "v1", "kind": "Pod", "name": "github-mcp", "namespace": "mcp",
                "uid": COMPLIANT_UID,
            },
            "summary": {"pass": 16, "fail": 0, "warn": 0, "error": 0, "skip": 0},
            "results": results,
        })
    );
}

#[test]
fn drifted_pod_is_reported_as_it_runs_with_the_exact_failures() {
    let report = report_of(&drifted_pod(), Scanned::Pod, &default_policy()).expect("a report");
    assert_eq!(
        report["metadata"]["name"],
        format!("mcpguard-{DRIFTED_UID}")
    );
    assert_eq!(
        report["scope"],
        json!({"apiVersion": "v1", "kind": "Pod", "name": "legacy-mcp", "namespace": "mcp", "uid": DRIFTED_UID})
    );
    assert_eq!(report["summary"], summary(14, 2, 0, 0));
    assert_eq!(
        report["results"],
        json!(expected_results(
            &default_rules(),
            &[
                ("allowPrivilegeEscalation", "fail", ESCALATION, None),
                ("capabilities_restricted", "fail", CAPABILITIES, None),
            ]
        ))
    );
}

#[test]
fn a_pod_is_never_mutated_before_it_is_judged() {
    // The same spec as a Deployment's template passes (mutation fixes it); as a running pod
    // it fails: a running pod cannot be mutated any more.
    let deployment = json!({
        "metadata": {"name": "legacy", "namespace": "mcp", "uid": DEPLOYMENT_UID},
        "spec": {"template": {"metadata": {}, "spec": drifted_pod()["spec"].clone()}}
    });
    let report = report_of(&deployment, deployment_kind(), &default_policy()).expect("a report");
    assert_eq!(report["summary"], summary(16, 0, 0, 0));
}

#[test]
fn pod_waived_by_an_exception_is_skipped_with_the_exception_named() {
    let policy = policy_replacing(&[(
        "exceptions: []",
        "exceptions:\n    - name: legacy-browser\n      reason: SEC-1234\n      match: {names: [browser]}\n      checks: [capabilities_restricted]",
    )]);
    let mut spec = hardened_spec("mcr.microsoft.com/playwright:v1.50.0");
    spec["containers"][0]["securityContext"]["capabilities"] =
        json!({"drop": ["ALL"], "add": ["SYS_ADMIN"]});
    let report = report_of(
        &pod("browser", BROWSER_UID, spec.clone()),
        Scanned::Pod,
        &policy,
    )
    .expect("a report");
    assert_eq!(report["summary"], summary(15, 0, 0, 1));
    assert_eq!(
        report["results"],
        json!(expected_results(
            &default_rules(),
            &[(
                "capabilities_restricted",
                "skip",
                "waived by exception \"legacy-browser\"",
                Some("legacy-browser")
            )]
        ))
    );
    // A pod the exception does not match fails the same check.
    let report =
        report_of(&pod("other", BROWSER_UID, spec), Scanned::Pod, &policy).expect("a report");
    assert_eq!(report["summary"], summary(15, 1, 0, 0));
    assert_eq!(
        report["results"][9],
        entry(
            "capabilities_restricted",
            "fail",
            PSS,
            Some(
                "unrestricted capabilities (container \"app\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)"
            )
        )
    );
}

#[test]
fn mcp_rules_are_reported_in_the_mcp_category() {
    let policy = policy_replacing(&[
        ("allowedRegistries: []", "allowedRegistries: [ghcr.io]"),
        ("maxResources: {}", "maxResources: {cpu: \"1\"}"),
    ]);
    let mut spec = hardened_spec("docker.io/library/nginx:1.27");
    spec["containers"][0]["resources"]["limits"] = json!({"cpu": "2"});
    spec["containers"][0]["env"] = json!([{"name": "GITHUB_TOKEN", "value": "ghp_0123456789"}]);
    let report =
        report_of(&pod("nginx", REGISTRY_UID, spec), Scanned::Pod, &policy).expect("a report");
    let mut rules = PSS_CHECKS.to_vec();
    rules.extend(["allowedRegistries", "maxResources", "forbidSecretLiterals"]);
    assert_eq!(report["summary"], summary(15, 3, 0, 0));
    assert_eq!(
        report["results"],
        json!(expected_results(
            &rules,
            &[
                (
                    "allowedRegistries",
                    "fail",
                    "image registry not allowed (container \"app\" must use images from ghcr.io; got \"docker.io/library/nginx:1.27\")",
                    None
                ),
                (
                    "maxResources",
                    "fail",
                    "resources above policy ceiling (container \"app\" limits cpu=2 above the ceiling 1)",
                    None
                ),
                (
                    "forbidSecretLiterals",
                    "fail",
                    "secret literal in env (container \"app\" sets GITHUB_TOKEN (the name marks a credential) as literal value; use valueFrom.secretKeyRef)",
                    None
                ),
            ]
        ))
    );
    let categories: Vec<&str> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .skip(15)
        .map(|r| r["category"].as_str().expect("category"))
        .collect();
    assert_eq!(categories, ["MCP", "MCP", "MCP"]);

    // The same pod within the rules passes them, still in the MCP category.
    let report = report_of(&compliant_pod(), Scanned::Pod, &policy).expect("a report");
    assert_eq!(report["summary"], summary(18, 0, 0, 0));
    assert_eq!(
        report["results"][15],
        entry("allowedRegistries", "pass", "MCP", None)
    );
}

#[test]
fn a_pod_whose_spec_does_not_decode_gets_one_error_result() {
    let broken = pod("broken", COMPLIANT_UID, json!({"containers": "not-a-list"}));
    let report = report_of(&broken, Scanned::Pod, &default_policy()).expect("a report");
    assert_eq!(report["summary"], summary(0, 0, 1, 0));
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["rule"], "decode");
    assert_eq!(results[0]["result"], "error");
    let message = results[0]["message"].as_str().expect("message");
    assert_eq!(
        message,
        "cannot decode spec.containers: invalid type: string, expected a sequence"
    );
}

// ---- workloads -----------------------------------------------------------------------------

#[test]
fn deployment_with_a_denied_template_fails_and_is_scoped_to_the_deployment() {
    let report =
        report_of(&denied_deployment(), deployment_kind(), &default_policy()).expect("a report");
    assert_eq!(
        report["metadata"],
        json!({
            "name": format!("mcpguard-{DEPLOYMENT_UID}"),
            "namespace": "mcp",
            "labels": {"app.kubernetes.io/managed-by": "mcpguard", "mcpguard.dev/policy": "mcp-restricted"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": DEPLOYMENT_UID}],
        })
    );
    assert_eq!(
        report["scope"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "mcp", "uid": DEPLOYMENT_UID})
    );
    assert_eq!(report["summary"], summary(15, 1, 0, 0));
    assert_eq!(
        report["results"],
        json!(expected_results(
            &default_rules(),
            &[(
                "hostNamespaces",
                "fail",
                "host namespaces (hostNetwork=true)",
                None
            )]
        ))
    );
}

#[test]
fn every_workload_kind_is_scoped_by_its_own_api_version() {
    let expected = [
        ("Deployment", "apps/v1"),
        ("StatefulSet", "apps/v1"),
        ("DaemonSet", "apps/v1"),
        ("ReplicaSet", "apps/v1"),
        ("ReplicationController", "v1"),
        ("Job", "batch/v1"),
        ("CronJob", "batch/v1"),
        ("PodTemplate", "v1"),
    ];
    assert_eq!(WORKLOADS.len(), expected.len());
    for (workload, (kind, api_version)) in WORKLOADS.iter().zip(expected) {
        let mut object =
            json!({"metadata": {"name": "w", "namespace": "mcp", "uid": DEPLOYMENT_UID}});
        let template = json!({"metadata": {}, "spec": hardened_spec("ghcr.io/x/app:1")});
        let pointer: Vec<&str> = workload
            .template
            .trim_start_matches('/')
            .split('/')
            .collect();
        let mut at = &mut object;
        for key in pointer {
            at = &mut at[key];
        }
        *at = template;
        let report = report_of(&object, Scanned::Workload(workload), &default_policy())
            .unwrap_or_else(|| panic!("a report for {kind}"));
        assert_eq!(
            report["scope"],
            json!({"apiVersion": api_version, "kind": kind, "name": "w", "namespace": "mcp", "uid": DEPLOYMENT_UID}),
            "{kind}"
        );
        assert_eq!(
            report["metadata"]["ownerReferences"],
            json!([{"apiVersion": api_version, "kind": kind, "name": "w", "uid": DEPLOYMENT_UID}]),
            "{kind}"
        );
        assert_eq!(report["summary"], summary(16, 0, 0, 0), "{kind}");
    }
}

/// The webhook denies this Deployment (its pods' RuntimeClass needs a nodeSelector the
/// template contradicts), so the audit must not call it compliant.
#[test]
fn a_workload_the_webhook_denies_for_a_runtime_class_conflict_is_reported_failing() {
    let policy = policy_replacing(&[("runtimeClassName: null", "runtimeClassName: gvisor")]);
    let classes = StaticRuntimeClasses(HashMap::from([(
        "gvisor".to_owned(),
        RuntimeClassInfo {
            node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
            ..RuntimeClassInfo::default()
        },
    )]));
    let mut spec = hardened_spec("ghcr.io/x/app:1");
    spec["nodeSelector"] = json!({"sandbox": "none"});
    let deployment = json!({
        "metadata": {"name": "web", "namespace": "mcp", "uid": DEPLOYMENT_UID},
        "spec": {"template": {"metadata": {}, "spec": spec}}
    });
    // What the webhook says about it.
    let request: crate::review::AdmissionRequest = serde_json::from_value(json!({
        "uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "mcp", "operation": "CREATE", "object": deployment,
    }))
    .expect("request");
    let decision = crate::engine::validate(
        &request,
        Context {
            policy: &policy,
            runtime_classes: &classes,
            now: now(),
        },
    );
    assert_eq!(decision.outcome, crate::engine::Outcome::Denied);

    let report = report_with(&deployment, deployment_kind(), &policy, &classes).expect("a report");
    let not_passing: Vec<&Value> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["result"] != "pass")
        .collect();
    assert!(
        !not_passing.is_empty(),
        "the webhook denies this Deployment, but its report says every check passes: summary {}",
        report["summary"]
    );
}

// ---- no report -----------------------------------------------------------------------------

#[test]
fn objects_without_identity_or_template_get_no_report() {
    let policy = default_policy();
    for key in ["name", "uid", "namespace"] {
        let mut object = compliant_pod();
        object["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove(key);
        assert_eq!(report_of(&object, Scanned::Pod, &policy), None, "no {key}");
    }
    let mut object = compliant_pod();
    object.as_object_mut().expect("pod").remove("metadata");
    assert_eq!(
        report_of(&object, Scanned::Pod, &policy),
        None,
        "no metadata"
    );

    let mut deployment = denied_deployment();
    deployment["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("template");
    assert_eq!(
        report_of(&deployment, deployment_kind(), &policy),
        None,
        "no template"
    );
    let mut deployment = denied_deployment();
    deployment["spec"]["template"] = json!("not an object");
    assert_eq!(
        report_of(&deployment, deployment_kind(), &policy),
        None,
        "template not an object"
    );
}

#[test]
fn report_names_are_prefixed_uids() {
    assert_eq!(report_name("abc"), "mcpguard-abc");
}

// ---- is_current ----------------------------------------------------------------------------

/// What the API returns for a report mcpguard applied: the same content plus server fields.
fn as_stored(report: &Value) -> Value {
    let mut stored = report.clone();
    let metadata = stored["metadata"].as_object_mut().expect("metadata");
    metadata.insert("uid".into(), json!("99999999-0000-4000-8000-000000000000"));
    metadata.insert("resourceVersion".into(), json!("12345"));
    metadata.insert("generation".into(), json!(1));
    metadata.insert("creationTimestamp".into(), json!("2026-11-19T10:00:00Z"));
    metadata.insert(
        "managedFields".into(),
        json!([{"manager": "mcpguard", "operation": "Apply", "apiVersion": "wgpolicyk8s.io/v1alpha2"}]),
    );
    stored
}

#[test]
fn an_identical_report_is_current() {
    let desired = report_of(&compliant_pod(), Scanned::Pod, &default_policy()).expect("a report");
    assert!(is_current(&desired, &desired));
    assert!(is_current(&as_stored(&desired), &desired));
}

#[test]
fn a_changed_result_summary_scope_or_label_is_not_current() {
    let policy = default_policy();
    let desired = report_of(&compliant_pod(), Scanned::Pod, &policy).expect("a report");
    let stored = as_stored(&desired);

    // The pod drifted: same uid, now failing.
    let mut drifted = drifted_pod();
    drifted["metadata"]["uid"] = json!(COMPLIANT_UID);
    drifted["metadata"]["name"] = json!("github-mcp");
    let now_failing = report_of(&drifted, Scanned::Pod, &policy).expect("a report");
    assert!(!is_current(&stored, &now_failing));
    assert!(!is_current(&as_stored(&now_failing), &desired));

    let mut changed = stored.clone();
    changed["results"][3]["message"] = json!("something else");
    assert!(!is_current(&changed, &desired), "one result message");

    let mut changed = stored.clone();
    changed["results"][0]["result"] = json!("fail");
    assert!(!is_current(&changed, &desired), "one result status");

    let mut changed = stored.clone();
    changed["results"].as_array_mut().expect("results").pop();
    assert!(!is_current(&changed, &desired), "a result missing");

    let mut changed = stored.clone();
    changed["summary"]["pass"] = json!(15);
    assert!(!is_current(&changed, &desired), "summary");

    let mut changed = stored.clone();
    changed["scope"]["name"] = json!("renamed");
    assert!(!is_current(&changed, &desired), "scope");

    let mut changed = stored.clone();
    changed["metadata"]["labels"]["mcpguard.dev/policy"] = json!("mcp-baseline");
    assert!(!is_current(&changed, &desired), "policy label");

    let mut changed = stored;
    changed["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    assert!(!is_current(&changed, &desired), "labels missing");
}

#[test]
fn a_report_under_a_renamed_policy_is_not_current() {
    let renamed = policy_replacing(&[("name: mcp-restricted", "name: mcp-strict")]);
    let old = report_of(&compliant_pod(), Scanned::Pod, &default_policy()).expect("a report");
    let new = report_of(&compliant_pod(), Scanned::Pod, &renamed).expect("a report");
    assert_eq!(
        new["metadata"]["labels"]["mcpguard.dev/policy"],
        "mcp-strict"
    );
    assert_eq!(new["results"][0]["policy"], "mcp-strict");
    assert!(!is_current(&as_stored(&old), &new));
}

#[test]
fn a_rescan_at_a_later_time_that_finds_the_same_is_current() {
    let policy = default_policy();
    let classes = StaticRuntimeClasses::default();
    let first = report_of(&compliant_pod(), Scanned::Pod, &policy).expect("a report");
    let later = report_for(
        &compliant_pod(),
        Scanned::Pod,
        Context {
            policy: &policy,
            runtime_classes: &classes,
            now: now() + jiff::SignedDuration::new(3600, 123_456_789),
        },
    )
    .expect("a report");
    assert_eq!(
        later["results"][0]["timestamp"],
        json!({"seconds": 1_795_003_600, "nanos": 123_456_789})
    );
    assert!(is_current(&as_stored(&first), &later));
    // A severity that changed (a report written before severities) is rewritten.
    let mut stored = as_stored(&first);
    stored["results"][0]
        .as_object_mut()
        .expect("a result")
        .remove("severity");
    assert!(!is_current(&stored, &later));
}

#[test]
fn every_builtin_check_has_a_deliberate_severity() {
    let severities = ["critical", "high", "medium", "low", "info"];
    for (check, severity) in SEVERITIES {
        assert!(severities.contains(severity), "{check}: {severity}");
        assert_eq!(severity_of(check), expected_severity(check), "{check}");
    }
    use crate::pss::{Level, Version, check_ids_for};
    let mut builtin: Vec<&str> = Vec::new();
    for level in [Level::Baseline, Level::Restricted] {
        builtin.extend(check_ids_for(level, Version::Latest));
        for minor in 0..=40 {
            builtin.extend(check_ids_for(level, Version::Minor(minor)));
        }
    }
    builtin.extend(crate::rules::ALL_RULE_IDS);
    builtin.extend([
        crate::engine::RUNTIME_CLASS_SCHEDULING,
        crate::engine::TOO_MANY_CONTAINERS,
        DECODE,
    ]);
    for check in builtin {
        assert!(
            SEVERITIES.iter().any(|(id, _)| *id == check),
            "{check} has no row in SEVERITIES"
        );
    }
    assert_eq!(
        severity_of("no-latest-tag"),
        "medium",
        "a policy's CEL rule"
    );
}

#[test]
fn an_openreports_report_is_the_policyreport_renamed_with_a_source() {
    let report = report_of(&drifted_pod(), Scanned::Pod, &default_policy()).expect("a report");
    assert_eq!(ReportApi::PolicyReport.shape(&report), report);
    let open = ReportApi::OpenReports.shape(&report);
    let mut expected = report.clone();
    expected["apiVersion"] = json!("openreports.io/v1alpha1");
    expected["kind"] = json!("Report");
    expected["source"] = json!("mcpguard");
    assert_eq!(open, expected);
    assert!(is_current(&as_stored(&open), &open));
    assert!(
        !is_current(&as_stored(&report), &open),
        "a report without its source"
    );
    assert_eq!(
        (
            ReportApi::OpenReports.group(),
            ReportApi::OpenReports.version()
        ),
        ("openreports.io", "v1alpha1")
    );
    assert_eq!(ReportApi::OpenReports.plural(), "reports");
    assert_eq!(
        ReportApi::PolicyReport.api_version(),
        "wgpolicyk8s.io/v1alpha2"
    );
}
