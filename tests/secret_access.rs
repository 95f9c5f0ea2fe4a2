//! An MCPServer's author must be allowed to read each Secret it names (issue #14): the real
//! webhook, over TLS, asks a mocked API server with one SubjectAccessReview per Secret, as
//! the requesting user, and the exact requests are checked. Allowed: admitted. Denied:
//! refused, naming the Secret and the verb. The API failing: refused (fail closed) with a
//! message that says why. No cluster connection at all: refused the same way.

mod common;

use axum::http::StatusCode;
use common::TestServer;
use common::mock_api::{self, Expect, MockApi, Step};
use serde_json::{Value, json};

const SAR_PATH: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// An MCPServer CREATE by `intern` (in group `team-a`) that wires in one Secret.
fn server_review() -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "sar-1",
            "kind": {"group": "mcpguard.dev", "version": "v1alpha1", "kind": "MCPServer"},
            "resource": {"group": "mcpguard.dev", "version": "v1alpha1", "resource": "mcpservers"},
            "name": "exfil",
            "namespace": "mcp",
            "operation": "CREATE",
            "userInfo": {
                "username": "intern",
                "uid": "u-42",
                "groups": ["team-a", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=ab"]},
            },
            "object": {
                "apiVersion": "mcpguard.dev/v1alpha1",
                "kind": "MCPServer",
                "metadata": {"name": "exfil", "namespace": "mcp"},
                "spec": {
                    "image": "ghcr.io/acme/mcp:1.0",
                    "envFrom": [{"secretRef": {"name": "argocd-repo-creds"}}],
                },
            },
        },
    })
}

/// The SubjectAccessReview the webhook must send for that request, exactly.
fn expected_review() -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {
            "user": "intern",
            "uid": "u-42",
            "groups": ["team-a", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=ab"]},
            "resourceAttributes": {
                "namespace": "mcp",
                "verb": "get",
                "group": "",
                "version": "v1",
                "resource": "secrets",
                "name": "argocd-repo-creds",
            },
        },
    })
}

fn answered(allowed: bool) -> Value {
    let mut review = expected_review();
    review["status"] = json!({"allowed": allowed});
    review
}

fn sar() -> Expect {
    Expect::post(SAR_PATH)
        .content_type("application/json")
        .body(expected_review())
}

/// The webhook with a kube client that talks to `steps`; returns the validating answer.
async fn validate_with_api(steps: Vec<Step>) -> Value {
    let server = TestServer::start_default().await;
    let (client, api) = MockApi::new("default");
    assert!(server.state.kube_client.set(client).is_ok());
    let verifier = mock_api::spawn_steps(api, steps);
    let response = server.review("/validate", &server_review()).await;
    verifier
        .finish(|| format!("the webhook answered {response}"))
        .await;
    response
}

#[tokio::test]
async fn an_author_who_may_read_the_secret_is_admitted() {
    let response = validate_with_api(vec![Step::ok(sar(), answered(true))]).await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn an_author_who_may_not_read_the_secret_is_refused_by_name_and_verb() {
    let response = validate_with_api(vec![Step::ok(sar(), answered(false))]).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "mcpservers.mcpguard.dev \"exfil\" is forbidden: violates mcpguard policy \"mcp-restricted\": author may not read a referenced Secret (user \"intern\" may not get Secret \"argocd-repo-creds\" in namespace \"mcp\", so an MCPServer of theirs may not read it either)"
    );
}

#[tokio::test]
async fn the_api_failing_refuses_the_server_and_says_why() {
    let response = validate_with_api(vec![Step::fail(
        sar(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "etcdserver: request timed out",
    )])
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().expect("a message");
    assert!(
        message.starts_with(
            "mcpservers.mcpguard.dev \"exfil\" is forbidden: violates mcpguard policy \"mcp-restricted\": author's access to a referenced Secret not verified (could not verify that user \"intern\" may get Secret \"argocd-repo-creds\" in namespace \"mcp\" (the API server did not answer the SubjectAccessReview: "
        ),
        "{message}"
    );
    assert!(
        message.contains("etcdserver: request timed out"),
        "{message}"
    );
    assert!(
        message.ends_with("); refused until it can be)"),
        "{message}"
    );
}

#[tokio::test]
async fn without_a_cluster_connection_the_server_is_refused_not_admitted_unchecked() {
    let server = TestServer::start_default().await;
    let response = server.review("/validate", &server_review()).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "mcpservers.mcpguard.dev \"exfil\" is forbidden: violates mcpguard policy \"mcp-restricted\": author's access to a referenced Secret not verified (could not verify that user \"intern\" may get Secret \"argocd-repo-creds\" in namespace \"mcp\" (mcpguard runs without a cluster connection, so it cannot ask the API server); refused until it can be)"
    );
}

/// A server that names no Secret asks nothing (the verifier fails on any request).
#[tokio::test]
async fn a_server_without_secrets_asks_nothing() {
    let server = TestServer::start_default().await;
    let (client, api) = MockApi::new("default");
    assert!(server.state.kube_client.set(client).is_ok());
    let verifier = mock_api::spawn_steps(api, Vec::new());
    let mut review = server_review();
    review["request"]["object"]["spec"] = json!({"image": "ghcr.io/acme/mcp:1.0"});
    let response = server.review("/validate", &review).await;
    verifier
        .finish(|| format!("the webhook answered {response}"))
        .await;
    assert_eq!(response["allowed"], true, "{response}");
}

/// The webhook's answer to the MCPServer of [`server_review`] with `spec`, when the one
/// SubjectAccessReview it must send has `attributes` and is answered `allowed`.
async fn validate_spec_with_one_review(spec: Value, attributes: Value, allowed: bool) -> Value {
    let server = TestServer::start_default().await;
    let (client, api) = MockApi::new("default");
    assert!(server.state.kube_client.set(client).is_ok());
    let mut review = server_review();
    review["request"]["object"]["spec"] = spec;
    let mut expected = expected_review();
    expected["spec"]["resourceAttributes"] = attributes;
    let mut answer = expected.clone();
    answer["status"] = json!({"allowed": allowed});
    let ask = Expect::post(SAR_PATH)
        .content_type("application/json")
        .body(expected);
    let verifier = mock_api::spawn_steps(api, vec![Step::ok(ask, answer)]);
    let response = server.review("/validate", &review).await;
    verifier
        .finish(|| format!("the webhook answered {response}"))
        .await;
    response
}

/// A ConfigMap the server mounts (`spec.config`) is asked about as `configmaps`, and one the
/// author may not read refuses the server under its own check ID.
#[tokio::test]
async fn a_config_map_the_author_may_not_read_is_refused_by_name() {
    let spec = json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "config": [{"configMapRef": {"name": "team-b-settings"}}],
    });
    let attributes = json!({"namespace": "mcp", "verb": "get", "group": "", "version": "v1",
                            "resource": "configmaps", "name": "team-b-settings"});
    let response = validate_spec_with_one_review(spec.clone(), attributes.clone(), false).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "mcpservers.mcpguard.dev \"exfil\" is forbidden: violates mcpguard policy \"mcp-restricted\": author may not read a referenced ConfigMap (user \"intern\" may not get ConfigMap \"team-b-settings\" in namespace \"mcp\", so an MCPServer of theirs may not read it either)"
    );
    let response = validate_spec_with_one_review(spec, attributes, true).await;
    assert_eq!(response["allowed"], true, "{response}");
}

/// The ServiceAccount a `podTemplateSpec` names: running as it is what creating a pod does,
/// so the author is asked about `create pods` in the namespace (no name), and refused when
/// they may not.
#[tokio::test]
async fn a_service_account_needs_the_right_to_create_pods() {
    let spec = json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "podTemplateSpec": {"spec": {"serviceAccountName": "cluster-reader"}},
    });
    let attributes = json!({"namespace": "mcp", "verb": "create", "group": "", "version": "v1",
                            "resource": "pods"});
    let response = validate_spec_with_one_review(spec.clone(), attributes.clone(), false).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "mcpservers.mcpguard.dev \"exfil\" is forbidden: violates mcpguard policy \"mcp-restricted\": author may not run as the named ServiceAccount (user \"intern\" may not create pods in namespace \"mcp\", so an MCPServer of theirs may not run as ServiceAccount \"cluster-reader\" either)"
    );
    let response = validate_spec_with_one_review(spec, attributes, true).await;
    assert_eq!(response["allowed"], true, "{response}");
}
