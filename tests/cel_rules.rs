//! Custom rules in CEL (`spec.validate.rules`) through the engine every caller shares: the
//! webhook over real TLS, workloads, exceptions, modes and the background audit's
//! PolicyReports.

mod common;

use common::{TestServer, example_review};
use mcpguard_core::audit::report::{self, Scanned};
use mcpguard_core::engine::{self, Context, Decision, Outcome};
use mcpguard_core::policy::{Policy, parse_str};
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// The README's three examples.
const RULES: &str = r#"    rules:
      - name: require-team-label
        expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
        message: MCP servers must carry a team label
        messageExpression: "'pod ' + object.metadata.name + ' has no team label'"
      - name: no-latest-tag
        expression: "object.spec.containers.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))"
        message: images must be pinned to a tag other than :latest
      - name: github-token-from-secret
        expression: >-
          object.spec.containers.all(c, !has(c.env) || c.env.all(e,
          e.name != 'GITHUB_TOKEN' || (has(e.valueFrom) && has(e.valueFrom.secretKeyRef))))
        message: GITHUB_TOKEN must come from a Secret (valueFrom.secretKeyRef)
"#;

/// A baseline policy named `cel` enforcing `mcp` with [`RULES`], plus `extra` spec fields.
fn policy(extra: &str) -> Policy {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: cel}}\nspec:\n  namespaces: [mcp]\n  podSecurity: {{level: baseline, version: latest}}\n  validate:\n{RULES}{extra}"
    );
    parse_str(&text, "cel.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

fn validate(policy: &Policy, request: &Value) -> Decision {
    let request: AdmissionRequest =
        serde_json::from_value(request.clone()).expect("an AdmissionRequest");
    let classes = StaticRuntimeClasses::default();
    engine::validate(
        &request,
        Context {
            policy,
            runtime_classes: &classes,
            now: jiff::Timestamp::UNIX_EPOCH,
        },
    )
}

/// The example pod review (`jane@example.com`, pod `github-mcp`, no team label).
fn pod_request() -> Value {
    example_review()["request"].clone()
}

fn with_team(mut request: Value) -> Value {
    request["object"]["metadata"]["labels"]["team"] = json!("platform");
    request
}

fn deployment_request(operation: &str, template: Value, old_template: Option<Value>) -> Value {
    let deployment = |template: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "mcp"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
        })
    };
    let mut request = json!({
        "uid": "d1",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "mcp", "operation": operation,
        "userInfo": {"username": "system:serviceaccount:argocd:argocd-application-controller"},
        "object": deployment(template),
    });
    if let Some(old) = old_template {
        request["oldObject"] = deployment(old);
    }
    request
}

fn template(labels: Value, image: &str) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "server", "image": image}]},
    })
}

#[tokio::test]
async fn the_webhook_denies_by_a_cel_rule_and_admits_once_it_holds() {
    let server = TestServer::start(policy("")).await;
    let mut review = example_review();
    let response = server.review("/validate", &review).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "pods \"github-mcp\" is forbidden: violates mcpguard policy \"cel\": pod github-mcp has no team label"
    );
    assert_eq!(
        response["auditAnnotations"]["violations"],
        "require-team-label"
    );
    review["request"] = with_team(pod_request());
    let response = server.review("/validate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[test]
fn the_three_readme_rules_name_themselves_in_the_denial() {
    let mut request = with_team(pod_request());
    let container = &mut request["object"]["spec"]["containers"][0];
    container["image"] = json!("mcp/github:latest");
    container["env"] = json!([{"name": "GITHUB_TOKEN", "value": "ghp_literal"}]);
    let decision = validate(&policy("    forbidSecretLiterals: false\n"), &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        engine::violation_ids(&decision.violations),
        "no-latest-tag,github-token-from-secret"
    );
    assert_eq!(
        decision.status.expect("a status").message,
        "pods \"github-mcp\" is forbidden: violates mcpguard policy \"cel\": images must be pinned to a tag other than :latest, GITHUB_TOKEN must come from a Secret (valueFrom.secretKeyRef)"
    );
}

/// The webhook parses `metadata.managedFields` aside; a rule that reads them still sees the
/// object as sent (the example pod has one entry), in `object` and in `oldObject`.
#[test]
fn a_rule_on_managed_fields_sees_them_as_sent() {
    let text = "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {name: mf}\nspec:\n  namespaces: [mcp]\n  podSecurity: {level: baseline, version: latest}\n  validate:\n    rules:\n      - name: managed-by-one\n        expression: \"object.metadata.managedFields.size() == 1 && object.metadata.managedFields[0].manager == 'kubectl-client-side-apply' && (oldObject == null || has(oldObject.metadata.managedFields))\"\n";
    let policy = parse_str(text, "mf.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"));
    let request = pod_request();
    assert_eq!(validate(&policy, &request).outcome, Outcome::Allowed);
    let mut update = request.clone();
    update["operation"] = json!("UPDATE");
    update["oldObject"] = request["object"].clone();
    update["object"]["spec"]["containers"][0]["image"] =
        json!("ghcr.io/github/github-mcp-server:v0.21.0");
    assert_eq!(validate(&policy, &update).outcome, Outcome::Allowed);
    update["oldObject"]["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("managedFields");
    assert_eq!(validate(&policy, &update).outcome, Outcome::Denied);
    let mut without = request;
    without["object"]["metadata"]["managedFields"] = json!([]);
    assert_eq!(validate(&policy, &without).outcome, Outcome::Denied);
}

#[test]
fn an_exception_waives_a_rule_by_name() {
    let policy = policy(
        "  exceptions:\n    - name: team-waiver\n      reason: SEC-42\n      match: {users: [jane@example.com]}\n      checks: [require-team-label]\n",
    );
    let decision = validate(&policy, &pod_request());
    assert_eq!(decision.outcome, Outcome::Allowed, "{decision:?}");
    assert_eq!(
        decision.warnings,
        ["mcpguard: exception \"team-waiver\" waives require-team-label for the pod"]
    );
    assert_eq!(decision.audit_annotations["exceptions"], "team-waiver");
}

#[test]
fn an_image_scoped_exception_waives_a_rule_for_its_containers() {
    let policy = policy(
        "  exceptions:\n    - name: fetch-latest\n      reason: upstream publishes only latest\n      match: {images: [docker.io/mcp/fetch]}\n      checks: [no-latest-tag]\n",
    );
    let mut request = with_team(pod_request());
    let containers = request["object"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers");
    containers.push(json!({"name": "fetch", "image": "mcp/fetch:latest"}));
    let decision = validate(&policy, &request);
    assert_eq!(decision.outcome, Outcome::Allowed, "{decision:?}");
    assert_eq!(
        decision.warnings,
        ["mcpguard: exception \"fetch-latest\" waives no-latest-tag for container \"fetch\""]
    );
    // Another container on :latest is not covered.
    request["object"]["spec"]["containers"][0]["image"] = json!("ghcr.io/a/b:latest");
    assert_eq!(validate(&policy, &request).outcome, Outcome::Denied);
}

#[test]
fn warn_mode_admits_with_the_rule_message() {
    let decision = validate(&policy("  mode: warn\n"), &pod_request());
    assert_eq!(decision.outcome, Outcome::Warned);
    assert_eq!(
        decision.warnings,
        ["mcpguard: would violate policy \"cel\": pod github-mcp has no team label"]
    );
    assert_eq!(decision.audit_annotations["mode"], "warn");
}

#[test]
fn a_workload_is_judged_on_the_pod_its_template_creates() {
    let policy = policy("");
    let unlabelled = template(json!({"app": "web"}), "ghcr.io/acme/web:1.0");
    let decision = validate(&policy, &deployment_request("CREATE", unlabelled, None));
    assert_eq!(decision.outcome, Outcome::Denied);
    // A template has no name: messageExpression fails and `message` is used, with the reason.
    assert_eq!(
        decision.status.expect("a status").message,
        "deployments.apps \"web\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"cel\": MCP servers must carry a team label (messageExpression failed: no such key: name (test optional fields with has() first))"
    );
    let labelled = template(json!({"app": "web", "team": "a"}), "ghcr.io/acme/web:1.0");
    let decision = validate(&policy, &deployment_request("CREATE", labelled, None));
    assert_eq!(decision.outcome, Outcome::Allowed, "{decision:?}");
}

#[test]
fn a_workload_update_sees_its_old_template_as_old_object() {
    let policy = policy(
        r#"      - name: no-image-change-by-hand
        expression: "request.userInfo.username.startsWith('system:serviceaccount:argocd:') ? true : oldObject == null || object.spec.containers[0].image == oldObject.spec.containers[0].image"
        messageExpression: "'images of ' + request.name + ' change only through Argo CD'"
      - name: mutated-view
        expression: "has(object.spec.containers[0].imagePullPolicy) && (oldObject == null || has(oldObject.spec.containers[0].imagePullPolicy))"
"#,
    );
    let labels = json!({"team": "a"});
    let old = template(labels.clone(), "ghcr.io/acme/web:1.0");
    let new = template(labels, "ghcr.io/acme/web:2.0");
    let mut request = deployment_request("UPDATE", new.clone(), Some(old.clone()));
    assert_eq!(validate(&policy, &request).outcome, Outcome::Allowed);
    request["userInfo"]["username"] = json!("jane@example.com");
    let decision = validate(&policy, &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status.expect("a status").message,
        "deployments.apps \"web\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"cel\": images of web change only through Argo CD"
    );
    let unchanged = deployment_request("UPDATE", new.clone(), Some(new.clone()));
    assert_eq!(validate(&policy, &unchanged).outcome, Outcome::Skipped);
    let mut created = deployment_request("CREATE", new, None);
    created["userInfo"]["username"] = json!("jane@example.com");
    assert_eq!(validate(&policy, &created).outcome, Outcome::Allowed);
}

#[test]
fn policy_reports_list_each_rule() {
    let policy = policy("");
    let classes = StaticRuntimeClasses::default();
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    let checks = report::checks_run(context);
    assert_eq!(
        checks[checks.len() - 3..],
        [
            "require-team-label",
            "no-latest-tag",
            "github-token-from-secret"
        ]
    );
    let mut pod = pod_request()["object"].clone();
    pod["metadata"]["uid"] = json!("u-1");
    let report = report::report_for(&pod, Scanned::Pod, context).expect("a report");
    let results = report["results"].as_array().expect("results");
    let result = |rule: &str| {
        results
            .iter()
            .find(|r| r["rule"] == rule)
            .unwrap_or_else(|| panic!("no result for {rule}"))
            .clone()
    };
    assert_eq!(
        result("require-team-label"),
        json!({
            "policy": "cel", "rule": "require-team-label", "result": "fail", "source": "mcpguard",
            "category": "MCP custom rule (CEL)", "scored": true,
            "message": "pod github-mcp has no team label",
            // A policy's own rule has no severity of its author's: medium (report::SEVERITIES).
            "severity": "medium", "timestamp": {"seconds": 0, "nanos": 0},
        })
    );
    assert_eq!(result("no-latest-tag")["result"], "pass");
}
