//! MCPPolicy objects: the policy files are valid objects of the generated CRD, a watched
//! change takes effect in the running webhook, a conflict is reported in both statuses, the
//! leader keeps the webhook selector on the covered namespaces, and a broken policy is
//! refused by the webhook with the loader's error.
//!
//! The API server is kube-rs's mock-service pattern (tower-test); the webhook is the real
//! HTTPS server, verified against its generated CA.

mod cli_support;
mod common;

use cli_support::check_example_pod_with_policy;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::mock_api::{Expect, MockApi};
use common::{TestServer, example_review};
use mcpguard::cluster::policy_watch;
use mcpguard_core::admission;
use mcpguard_core::policy::{self, MCPPolicy, Policy};
use mcpguard_core::policy_set::{ClusterPolicies, PolicySet, assemble};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const RESTRICTED: &str = include_str!("../policies/mcp-restricted.yaml");
const BASELINE: &str = include_str!("../policies/mcp-baseline.yaml");
const STEP: Duration = Duration::from_secs(10);
const POLICIES_PATH: &str = "/apis/mcpguard.dev/v1alpha1/mcppolicies";
/// The policy watch's first request: a list (kube's watcher pages by 500).
const LIST_QUERY: &str = "limit=500";

/// The policy watch's watch request from `resource_version` on, as kube's watcher sends it.
fn watch_query(resource_version: &str) -> String {
    format!(
        "watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={resource_version}"
    )
}

// ---- the policy files as objects -------------------------------------------------------------

#[test]
fn the_policy_files_parse_as_mcppolicy_objects_and_load_as_the_same_policy() {
    for (file, text) in [
        ("mcp-restricted.yaml", RESTRICTED),
        ("mcp-baseline.yaml", BASELINE),
    ] {
        let object: MCPPolicy = serde_saphyr::from_str(text)
            .unwrap_or_else(|e| panic!("{file} is not an MCPPolicy object: {e}"));
        let from_file = policy::parse_str(text, file).expect("the file loads");
        assert_eq!(
            object.metadata.name.as_deref(),
            Some(from_file.name.as_str())
        );
        let as_object = serde_json::to_value(&object).expect("the object serialises");
        let from_object = policy::from_object(&as_object).expect("the object loads");
        assert_eq!(
            serde_json::to_value(&from_object.spec).expect("spec"),
            serde_json::to_value(&from_file.spec).expect("spec"),
            "{file}"
        );
    }
}

fn schema_errors(documents: &[Value]) -> Option<Vec<Vec<String>>> {
    common::crd_schema::crd_schema_errors(&policy::policy_crd(), documents)
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

#[test]
fn the_policy_files_are_valid_against_the_generated_crd_schema() {
    let Some(errors) = schema_errors(&[yaml(RESTRICTED), yaml(BASELINE)]) else {
        return;
    };
    assert_eq!(errors, vec![Vec::<String>::new(), Vec::new()]);
}

#[test]
fn the_crd_schema_refuses_what_the_loader_refuses() {
    let mut bad_mode = yaml(RESTRICTED);
    bad_mode["spec"]["mode"] = json!("block");
    let mut bad_toleration = yaml(RESTRICTED);
    bad_toleration["spec"]["mutate"]["tolerations"] =
        json!([{"key": "gpu", "efect": "NoSchedule"}]);
    let mut bad_version = yaml(RESTRICTED);
    bad_version["spec"]["podSecurity"]["version"] = json!("1.30");
    let Some(errors) = schema_errors(&[bad_mode, bad_toleration, bad_version]) else {
        return;
    };
    assert_eq!(
        errors,
        vec![
            vec!["spec.mode: 'block' is not one of ['enforce', 'warn', 'audit']".to_owned()],
            vec!["spec.mutate.tolerations.0: Additional properties are not allowed ('efect' was unexpected)".into()],
            vec!["spec.podSecurity.version: '1.30' does not match '^(latest|v1\\\\.(0|[1-9][0-9]*))$'".into()],
        ]
    );
}

// ---- the webhook refuses a broken policy ----------------------------------------------------

fn policy_review(operation: &str, object: &Value, old: Option<&Value>) -> Value {
    common::mcppolicy_review("policy-review", operation, object, old)
}

/// The broken policy both as a file for `mcpguard check --policy` and as an object.
fn broken_restricted() -> (String, Value) {
    let text = RESTRICTED.replace("level: restricted", "level: strict");
    let mut object = yaml(&text);
    object["metadata"]["uid"] = json!("uid-1");
    object["metadata"]["generation"] = json!(1);
    (text, object)
}

#[tokio::test]
async fn a_broken_policy_is_refused_with_the_error_check_gives() {
    let server = TestServer::start_default().await;
    let (text, object) = broken_restricted();
    let response = server
        .review("/validate", &policy_review("CREATE", &object, None))
        .await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, &text).expect("write policy");
    let check = check_example_pod_with_policy(&file);
    let detail = r#"spec.podSecurity.level: unknown variant, expected one of `privileged`, `baseline`, `restricted`"#;
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&check.stderr).trim_end(),
        format!("mcpguard check: policy {}: {detail}", file.display())
    );
    assert_eq!(
        response,
        json!({
            "uid": "policy-review",
            "allowed": false,
            "status": {
                "code": 422,
                "reason": "Invalid",
                "status": "Failure",
                "message": format!(r#"policy MCPPolicy "mcp-restricted": {detail}"#),
            },
            "auditAnnotations": {"violations": "mcpPolicySpec"},
        })
    );
    let metrics = server.metrics_text().await;
    assert_eq!(
        common::metric_value(
            &metrics,
            r#"mcpguard_denials_total{policy="MCPPolicy",check="mcpPolicySpec",namespace=""}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_policy_claiming_a_protected_namespace_is_refused() {
    let server = TestServer::start_default().await;
    let mut object = yaml(RESTRICTED);
    object["metadata"]["name"] = json!("grab");
    object["spec"]["namespaces"] = json!(["team-a", "kube-system"]);
    let response = server
        .review("/validate", &policy_review("CREATE", &object, None))
        .await;
    let loader = policy::from_object(&object).expect_err("the loader refuses it");
    assert_eq!(loader.path, "spec.namespaces[1]");
    assert_eq!(
        response["status"],
        json!({"code": 422, "reason": "Invalid", "status": "Failure", "message": loader.to_string()})
    );
    assert!(loader.message.contains("kube-system"), "{}", loader.message);
}

#[tokio::test]
async fn a_valid_policy_is_admitted_and_a_status_only_update_is_not_judged() {
    let server = TestServer::start_default().await;
    let mut object = yaml(RESTRICTED);
    object["metadata"]["uid"] = json!("uid-1");
    let response = server
        .review("/validate", &policy_review("CREATE", &object, None))
        .await;
    // Admitted, and told that it takes mcp over from the policy file.
    assert_eq!(
        response,
        json!({"uid": "policy-review", "allowed": true, "warnings": [
            r#"namespace "mcp" is covered by the policy file's "mcp-restricted": this MCPPolicy takes it over"#
        ]})
    );

    // The stored object may predate the webhook: an update that leaves the spec alone
    // (labels, finalizers) is not refused for it.
    let (_, broken) = broken_restricted();
    let mut relabelled = broken.clone();
    relabelled["metadata"]["labels"] = json!({"team": "platform"});
    let response = server
        .review(
            "/validate",
            &policy_review("UPDATE", &relabelled, Some(&broken)),
        )
        .await;
    assert_eq!(response, json!({"uid": "policy-review", "allowed": true}));
}

fn policy_object(
    name: &str,
    created: &str,
    generation: i64,
    resource_version: &str,
    spec: Value,
) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPPolicy",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "generation": generation,
            "resourceVersion": resource_version,
            "creationTimestamp": created,
        },
        "spec": spec,
    })
}

fn team_spec(level: &str) -> Value {
    json!({
        "namespaces": ["team-a"],
        "podSecurity": {"level": level, "version": "latest"},
    })
}

fn pod_review_in(namespace: &str) -> Value {
    let mut review = example_review();
    review["request"]["namespace"] = json!(namespace);
    review["request"]["object"]["metadata"]["namespace"] = json!(namespace);
    review
}

/// What the core's front door answers for `review` under `policy` alone, as the webhook
/// must answer it.
fn expected_response(review: &Value, policy: &Policy) -> Value {
    let request = serde_json::from_value(review["request"].clone()).expect("a request");
    let classes = StaticRuntimeClasses::default();
    let policies = PolicySet::single(Arc::new(policy.clone()));
    let decision = admission::validate(
        &request,
        admission::Context {
            policies: &policies,
            runtime_classes: &classes,
            now: jiff::Timestamp::now(),
            secret_access: mcpguard_core::admission::SecretAccess::Offline,
        },
    )
    .decision;
    serde_json::to_value(decision.to_response("705ab4f5-6393-11e8-b7cc-42010a800002"))
        .expect("response")
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(STEP, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

#[tokio::test]
async fn a_watched_policy_takes_effect_changes_and_goes_away() {
    let server = TestServer::start_default().await;
    server
        .state
        .readiness
        .policies_synced
        .store(false, Ordering::Release);
    let (client, mut api) = MockApi::new("default");
    let watch = tokio::spawn(policy_watch::watch(
        client,
        server.state.policies.clone(),
        server.state.readiness.clone(),
    ));
    assert_eq!(server.readyz().await.0, 503, "not ready before the list");

    let v1 = policy_object(
        "team",
        "2026-01-01T00:00:00Z",
        1,
        "11",
        team_spec("baseline"),
    );
    // First a list.
    api.expect(&Expect::get(POLICIES_PATH).query(LIST_QUERY))
        .await
        .ok(&json!({
            "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicyList",
            "metadata": {"resourceVersion": "12"},
            // List items come without apiVersion and kind.
            "items": [{"metadata": v1["metadata"], "spec": v1["spec"]}],
        }));
    let state = server.state.clone();
    wait_until("the list is in force", || {
        state.readiness.policies_synced.load(Ordering::Acquire)
    })
    .await;
    assert_eq!(server.readyz().await.0, 200, "ready after the list");
    let set = server.state.policies.load_full();
    assert_eq!(set.covered_namespaces(), vec!["mcp", "team-a"]);
    let review = pod_review_in("team-a");
    let baseline = policy::from_object(&v1).expect("v1 loads");
    let response = server.review("/validate", &review).await;
    assert_eq!(response, expected_response(&review, &baseline));
    assert_eq!(response["allowed"], json!(true), "baseline admits the pod");

    // The admin tightens the policy: the next watch delivers generation 2.
    let v2 = policy_object(
        "team",
        "2026-01-01T00:00:00Z",
        2,
        "13",
        team_spec("restricted"),
    );
    api.expect(&Expect::get(POLICIES_PATH).query(&watch_query("12")))
        .await
        .watch(&[("MODIFIED", v2.clone())]);
    wait_until("generation 2 is in force", || {
        state
            .policies
            .load()
            .for_namespace(Some("team-a"))
            .spec
            .pod_security
            .level
            == mcpguard_core::pss::Level::Restricted
    })
    .await;
    let restricted = policy::from_object(&v2).expect("v2 loads");
    let response = server.review("/validate", &review).await;
    assert_eq!(response, expected_response(&review, &restricted));
    assert_eq!(response["allowed"], json!(false), "restricted denies it");
    assert!(
        response["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(r#"policy "team""#)),
        "{response}"
    );
    // The file's namespace is still the file's.
    let mcp = pod_review_in("mcp");
    let file_policy = Policy::embedded_default().expect("default");
    assert_eq!(
        server.review("/validate", &mcp).await,
        expected_response(&mcp, &file_policy)
    );

    // Deleted: team-a is no longer covered and its pods are admitted untouched.
    api.expect(&Expect::get(POLICIES_PATH).query(&watch_query("13")))
        .await
        .watch(&[("DELETED", v2.clone())]);
    wait_until("the policy is gone", || {
        state.policies.load().covered_namespaces() == vec!["mcp".to_owned()]
    })
    .await;
    assert_eq!(
        server.review("/validate", &review).await,
        json!({"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": true})
    );
    watch.abort();
}

#[tokio::test]
async fn a_conflict_is_reported_in_both_statuses_and_the_selector_follows_the_claims() {
    let older = policy_object(
        "older",
        "2026-01-01T00:00:00Z",
        1,
        "5",
        json!({"namespaces": ["shared"], "podSecurity": {"level": "restricted", "version": "latest"}}),
    );
    let newer = policy_object(
        "newer",
        "2026-06-01T00:00:00Z",
        4,
        "6",
        json!({"namespaces": ["shared", "own"], "podSecurity": {"level": "baseline", "version": "v1.30"}}),
    );
    let mut cluster = ClusterPolicies::default();
    cluster.replace_all(&[newer, older]);
    let file = Arc::new(Policy::embedded_default().expect("default"));
    let set = assemble(file, &cluster);
    assert_eq!(set.for_namespace(Some("shared")).name, "older");

    let (client, mut api) = MockApi::new("default");
    let now = "2026-11-22T03:00:00Z";
    let pass = tokio::spawn(async move {
        policy_watch::leader_pass(&client, &set, now, Some("mcpguard")).await
    });
    // Oldest first.
    let expect = Expect::patch(format!("{POLICIES_PATH}/older/status"))
        .content_type("application/merge-patch+json")
        .body(json!({"status": {
            "observedGeneration": 1,
            "namespaces": ["shared"],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Enforcing",
                 "message": "enforcing in namespaces shared",
                 "lastTransitionTime": now, "observedGeneration": 1},
                {"type": "Conflict", "status": "True", "reason": "NamespaceContested",
                 "message": "namespace \"shared\" is also claimed by the newer MCPPolicy \"newer\", which does not get it",
                 "lastTransitionTime": now, "observedGeneration": 1},
            ],
        }}));
    api.expect(&expect).await.ok(&json!({}));
    let expect = Expect::patch(format!("{POLICIES_PATH}/newer/status"))
        .content_type("application/merge-patch+json")
        .body(json!({"status": {
            "observedGeneration": 4,
            "namespaces": ["own"],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Enforcing",
                 "message": "enforcing in namespaces own",
                 "lastTransitionTime": now, "observedGeneration": 4},
                {"type": "Conflict", "status": "True", "reason": "NamespaceHeldElsewhere",
                 "message": "namespace \"shared\" is held by the older MCPPolicy \"older\"",
                 "lastTransitionTime": now, "observedGeneration": 4},
            ],
        }}));
    api.expect(&expect).await.ok(&json!({}));

    // The webhook configurations: the mutating one still selects only mcp, the validating
    // one is already current.
    let selector = |names: &[&str]| {
        json!({"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": names},
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": ["kube-system", "kube-public", "kube-node-lease", "mcpguard-system"]},
        ]})
    };
    let configuration = |kind: &str, webhook: &str, names: &[&str]| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "mcpguard"},
            "webhooks": [{
                "name": webhook, "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"caBundle": "Q0E=", "service": {"name": "mcpguard", "namespace": "mcpguard-system"}},
                "namespaceSelector": selector(names),
            }],
        })
    };
    let mutating = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mcpguard";
    api.expect(&Expect::get(mutating)).await.ok(&configuration(
        "MutatingWebhookConfiguration",
        "mutate.mcpguard.dev",
        &["mcp"],
    ));
    let expect = Expect::patch(mutating)
        .content_type("application/json-patch+json")
        .body(json!([
            {"op": "test", "path": "/webhooks/0/name", "value": "mutate.mcpguard.dev"},
            {"op": "add", "path": "/webhooks/0/namespaceSelector",
             "value": selector(&["mcp", "own", "shared"])},
        ]));
    api.expect(&expect).await.ok(&json!({}));
    let validating =
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/mcpguard";
    api.expect(&Expect::get(validating))
        .await
        .ok(&configuration(
            "ValidatingWebhookConfiguration",
            "validate.mcpguard.dev",
            &["mcp", "own", "shared"],
        ));
    api.expect_no_more_requests().await;
    let result = tokio::time::timeout(STEP, pass)
        .await
        .expect("the pass finishes")
        .expect("the pass does not panic")
        .expect("the pass succeeds");
    assert_eq!(
        result,
        policy_watch::LeaderPass {
            statuses_written: 2,
            configurations_patched: 1,
        }
    );
}

#[tokio::test]
async fn statuses_already_written_are_not_written_again() {
    let first = policy_object(
        "team",
        "2026-01-01T00:00:00Z",
        1,
        "5",
        team_spec("baseline"),
    );
    let file = Arc::new(Policy::embedded_default().expect("default"));
    let mut cluster = ClusterPolicies::default();
    cluster.replace_all(std::slice::from_ref(&first));
    let set = assemble(file.clone(), &cluster);
    let written =
        mcpguard_core::policy_set::status_to_write(&set.statuses()[0], "2026-11-22T03:00:00Z")
            .expect("a first write");
    let mut stored = first.clone();
    stored["status"] = serde_json::to_value(written).expect("status");
    cluster.apply(&stored);
    let set = assemble(file, &cluster);
    let (client, mut api) = MockApi::new("default");
    let result = tokio::time::timeout(
        STEP,
        policy_watch::leader_pass(&client, &set, "2026-11-23T00:00:00Z", None),
    )
    .await
    .expect("the pass finishes")
    .expect("the pass succeeds");
    assert_eq!(result, policy_watch::LeaderPass::default());
    drop(client);
    // No request when nothing changed.
    api.expect_no_more_requests().await;
}
