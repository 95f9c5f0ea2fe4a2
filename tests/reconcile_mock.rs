//! The MCPServer controller against a mocked Kubernetes API: `controller::reconcile` talks to
//! the mocked API server of tests/common/mock_api.rs, and a scripted verifier asserts every
//! request it makes (method, path, query, content type, body) and answers as kube-apiserver
//! would. A request the script does not expect fails the test; so does one it
//! expects but never gets.

#[path = "common/mock_api.rs"]
mod mock_api;

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use kube::runtime::controller::Action;
use mcpguard::cluster::controller::{
    self, Backoff, Context, Error, RESYNC, error_policy, reconcile,
};
use mcpguard_core::engine;
use mcpguard_core::mcpserver::crd::MCPServer;
use mcpguard_core::mcpserver::render::{self, SECRETS_HASH_ANNOTATION, SecretVersion};
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mock_api::{Expect, MockApi, Received, STEP_TIMEOUT};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const NAMESPACE: &str = "mcp";
const NAME: &str = "github";
const UID: &str = "6c1d0a52-0000-4000-8000-000000000001";
const SERVER_PATH: &str = "/apis/mcpguard.dev/v1alpha1/namespaces/mcp/mcpservers/github";
const STATUS_PATH: &str = "/apis/mcpguard.dev/v1alpha1/namespaces/mcp/mcpservers/github/status";
const DEPLOYMENT_PATH: &str = "/apis/apps/v1/namespaces/mcp/deployments/github";
const SERVICE_PATH: &str = "/api/v1/namespaces/mcp/services/github";
/// The scale subresource's selector: the pods' labels.
const SELECTOR: &str = "app.kubernetes.io/managed-by=mcpguard,app.kubernetes.io/name=github";
const BUDGET_PATH: &str = "/apis/policy/v1/namespaces/mcp/poddisruptionbudgets/github";
const AUTOSCALER_PATH: &str = "/apis/autoscaling/v2/namespaces/mcp/horizontalpodautoscalers/github";
const NETWORK_POLICY_PATH: &str =
    "/apis/networking.k8s.io/v1/namespaces/mcp/networkpolicies/github";
const APPLY: &str = "application/apply-patch+yaml";
const JSON_PATCH: &str = "application/json-patch+json";
/// As kube sends it: `force` first.
const APPLY_QUERY: &str = "force=true&fieldManager=mcpguard";
const URL: &str = "http://github.mcp.svc.cluster.local";
/// A credential as a user would put it in the Secret; it must never leave the Secret.
const SECRET_VALUE: &str = "ghp_x7T3stS3cretValueThatMustNeverLeak0";

/// 2025-06-15T15:06:40Z.
fn t0() -> Timestamp {
    Timestamp::from_second(1_750_000_000).expect("valid timestamp")
}
const T0: &str = "2025-06-15T15:06:40Z";

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/mcp/secrets/{name}")
}

// --- the mocked API server -----------------------------------------------------------------

impl MockApi {
    /// Expects a `GET path`.
    async fn expect_get(&mut self, path: &str) -> Received {
        self.expect(&Expect::get(path)).await
    }

    /// Expects a `GET` of each `(path, resource)`, in order, answered "not found".
    async fn expect_absent(&mut self, objects: &[(&str, &str)]) {
        for (path, resource) in objects {
            self.expect_get(path)
                .await
                .reply(StatusCode::NOT_FOUND, &mock_api::not_found(resource, NAME));
        }
    }

    /// Expects the reads the controller makes before it writes anything: each object it
    /// would write (the NetworkPolicy only when the policy wants one), answered "not found".
    async fn expect_nothing_there(&mut self, network_policy: bool) {
        let mut objects = vec![
            (SERVICE_PATH, "services"),
            (DEPLOYMENT_PATH, "deployments.apps"),
        ];
        if network_policy {
            objects.insert(
                0,
                (NETWORK_POLICY_PATH, "networkpolicies.networking.k8s.io"),
            );
        }
        self.expect_absent(&objects).await;
    }

    /// Expects the reads of a server with one replica and no autoscaler: it owns no
    /// PodDisruptionBudget or HorizontalPodAutoscaler, so the controller looks for one to
    /// delete and finds none.
    async fn expect_no_budget_or_autoscaler(&mut self) {
        self.expect_absent(&[
            (BUDGET_PATH, "poddisruptionbudgets.policy"),
            (AUTOSCALER_PATH, "horizontalpodautoscalers.autoscaling"),
        ])
        .await;
    }

    /// Expects mcpguard's server-side apply to `path`.
    async fn expect_apply(&mut self, path: &str) -> Received {
        self.expect(&apply_to(path)).await
    }
}

/// mcpguard's server-side apply to `path`.
fn apply_to(path: &str) -> Expect {
    Expect::patch(path).query(APPLY_QUERY).content_type(APPLY)
}

/// A controller context around a mock API, kept across passes (its backoff too).
struct Harness {
    ctx: Arc<Context>,
    api: Option<MockApi>,
    now: Arc<Mutex<Timestamp>>,
}

impl Harness {
    fn new(policy: Policy) -> Self {
        let (client, api) = MockApi::new("default");
        let now = Arc::new(Mutex::new(t0()));
        let clock = now.clone();
        let policy = Arc::new(policy);
        let ctx = Context {
            client,
            policy: Arc::new(move |_| policy.clone()),
            runtime_classes: Arc::new(StaticRuntimeClasses::default()),
            now: Arc::new(move || *clock.lock().expect("clock")),
            backoff: Backoff::default(),
        };
        Harness {
            ctx: Arc::new(ctx),
            api: Some(api),
            now,
        }
    }

    fn set_now(&self, now: Timestamp) {
        *self.now.lock().expect("clock") = now;
    }

    /// Runs one `reconcile` of `server` against `script`, which plays the API server, then
    /// asserts silence; returns what `reconcile` returned and what the script returned.
    async fn pass<T, F, Fut>(&mut self, server: &Value, script: F) -> (Result<Action, Error>, T)
    where
        F: FnOnce(MockApi) -> Fut,
        Fut: Future<Output = (MockApi, T)> + Send + 'static,
        T: Send + 'static,
    {
        let mut api = self.api.take().expect("one pass at a time");
        api.clear_seen();
        let verifier = mock_api::spawn(api, script);
        let server: MCPServer = serde_json::from_value(server.clone()).expect("an MCPServer");
        let result = tokio::time::timeout(
            STEP_TIMEOUT * 3,
            reconcile(Arc::new(server), self.ctx.clone()),
        )
        .await;
        let (api, out) = verifier
            .finish(|| format!("reconcile returned {result:?}"))
            .await;
        self.api = Some(api);
        (result.expect("reconcile finishes"), out)
    }
}

// --- realistic API objects -----------------------------------------------------------------

fn default_policy() -> Policy {
    Policy::embedded_default().expect("the embedded policy loads")
}

/// The embedded policy with `replace` applied to its YAML.
fn policy_with(from: &str, to: &str) -> Policy {
    assert!(policy::DEFAULT_POLICY_YAML.contains(from), "{from:?}");
    let text = policy::DEFAULT_POLICY_YAML.replace(from, to);
    policy::parse_str(&text, "test policy").expect("the test policy loads")
}

/// An MCPServer as the API server returns it: `kubectl apply`-ed, with no status yet.
fn server_json(namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPServer",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "uid": UID,
            "resourceVersion": "500",
            "generation": 1,
            "creationTimestamp": "2025-06-15T14:00:00Z",
        },
        "spec": spec,
    })
}

fn image_spec() -> Value {
    json!({"image": "ghcr.io/github/github-mcp-server:v0.5.0", "port": 8080})
}

fn with_status(server: &Value, status: &Value) -> Value {
    let mut server = server.clone();
    server["status"] = status.clone();
    server["metadata"]["resourceVersion"] = json!("501");
    server
}

/// What `render` gives for `server` under `policy` (the bodies the controller must apply).
fn rendered(policy: &Policy, server: &Value, secrets: &[SecretVersion]) -> render::Rendered {
    let server: MCPServer = serde_json::from_value(server.clone()).expect("an MCPServer");
    let classes = StaticRuntimeClasses::default();
    let context = engine::Context {
        policy,
        runtime_classes: &classes,
        now: t0(),
    };
    render::render(&server, context, secrets, &[]).expect("renders")
}

fn render_error(policy: &Policy, server: &Value) -> render::RenderError {
    let server: MCPServer = serde_json::from_value(server.clone()).expect("an MCPServer");
    let classes = StaticRuntimeClasses::default();
    let context = engine::Context {
        policy,
        runtime_classes: &classes,
        now: t0(),
    };
    render::render(&server, context, &[], &[]).expect_err("does not render")
}

/// An applied object as the API server stores it.
fn stored(applied: &Value, resource_version: &str) -> Value {
    let mut object = applied.clone();
    let metadata = object["metadata"].as_object_mut().expect("metadata");
    metadata.insert("uid".into(), json!("9a0e0000-0000-4000-8000-000000000077"));
    metadata.insert("resourceVersion".into(), json!(resource_version));
    metadata.insert("generation".into(), json!(1));
    metadata.insert("creationTimestamp".into(), json!("2025-06-15T15:06:40Z"));
    object
}

/// The live Deployment after an apply, with `ready` ready replicas.
fn live_deployment(applied: &Value, resource_version: &str, ready: Option<i32>) -> Value {
    let mut deployment = stored(applied, resource_version);
    let mut status = json!({"observedGeneration": 1, "replicas": 1});
    if let Some(ready) = ready {
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(ready);
    }
    deployment["status"] = status;
    deployment
}

fn secret(name: &str, resource_version: &str, data: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": format!("5ec0e700-0000-4000-8000-{:012}", name.len()),
            "resourceVersion": resource_version,
            "creationTimestamp": "2025-06-15T14:00:00Z",
        },
        "type": "Opaque",
        "data": data.iter().map(|(k, v)| ((*k).to_owned(), json!(BASE64.encode(v)))).collect::<serde_json::Map<_, _>>(),
    })
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, since: &str) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": since, "observedGeneration": 1,
    })
}

fn status_body(status: Value) -> Value {
    json!({"apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPServer", "status": status})
}

fn compliant(since: &str) -> Value {
    condition(
        "PolicyCompliant",
        "True",
        "Compliant",
        "the pods pass policy \"mcp-restricted\"",
        since,
    )
}

/// The status of a freshly applied image server whose pods are not ready yet.
fn pending_status(since: &str) -> Value {
    json!({
        "phase": "Pending",
        "url": URL,
        "readyReplicas": 0,
        "replicas": 1,
        "selector": SELECTOR,
        "observedGeneration": 1,
        "conditions": [
            condition("Ready", "False", "Progressing", "0 of 1 replicas ready", since),
            condition("SecretsResolved", "True", "Resolved", "no Secrets referenced", since),
            compliant(since),
        ],
    })
}

/// What one pass of applies saw.
struct Applied {
    network_policy: Value,
    service: Value,
    deployment: Value,
    status: Option<Value>,
    /// Every body sent, as sent.
    raw: Vec<String>,
}

/// The script of a pass that applies: GET the server, GET each Secret, apply the
/// NetworkPolicy, Service and Deployment (answered with `deployment_ready` ready replicas),
/// then the status patch when `status_patched`.
async fn apply_script(
    mut api: MockApi,
    server: Value,
    secrets: Vec<(String, Option<Value>)>,
    deployment_ready: Option<i32>,
    status_patched: bool,
) -> (MockApi, Applied) {
    api.expect_get(SERVER_PATH).await.ok(&server);
    for (name, secret) in secrets {
        let respond = api.expect_get(&secret_path(&name)).await;
        match secret {
            Some(secret) => respond.ok(&secret),
            None => respond.reply(
                StatusCode::NOT_FOUND,
                &mock_api::not_found("secrets", &name),
            ),
        }
    }
    api.expect_nothing_there(true).await;
    let mut raw = Vec::new();
    let np = api.expect_apply(NETWORK_POLICY_PATH).await;
    raw.push(np.raw.clone());
    np.ok(&stored(&np.body, "601"));
    let service = api.expect_apply(SERVICE_PATH).await;
    raw.push(service.raw.clone());
    service.ok(&stored(&service.body, "602"));
    let deployment = api.expect_apply(DEPLOYMENT_PATH).await;
    raw.push(deployment.raw.clone());
    deployment.ok(&live_deployment(&deployment.body, "603", deployment_ready));
    api.expect_no_budget_or_autoscaler().await;
    let status = if status_patched {
        let status = api.expect(&apply_to(STATUS_PATH)).await;
        raw.push(status.raw.clone());
        status.ok(&with_status(&server, &status.body["status"]));
        Some(status.body)
    } else {
        None
    };
    (
        api,
        Applied {
            network_policy: np.body,
            service: service.body,
            deployment: deployment.body,
            status,
            raw,
        },
    )
}

// --- scenarios -----------------------------------------------------------------------------

#[tokio::test]
async fn a_new_image_server_gets_its_objects_applied_and_a_pending_status() {
    let policy = default_policy();
    let server = server_json(NAMESPACE, image_spec());
    let expected = rendered(&policy, &server, &[]);
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, applied) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, vec![], None, true)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));

    assert_eq!(
        Some(applied.network_policy.clone()),
        expected.network_policy
    );
    assert_eq!(applied.service, expected.service);
    assert_eq!(applied.deployment, expected.deployment);
    // What the render must hold for these to be the right objects at all.
    for object in [
        &applied.network_policy,
        &applied.service,
        &applied.deployment,
    ] {
        assert_eq!(
            object["metadata"]["ownerReferences"],
            json!([{"apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPServer", "name": NAME,
                    "uid": UID, "controller": true, "blockOwnerDeletion": true}]),
            "{}",
            object["kind"]
        );
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "mcpguard"
        );
    }
    let template = &applied.deployment["spec"]["template"];
    assert_eq!(
        template["spec"]["containers"][0]["image"],
        "ghcr.io/github/github-mcp-server:v0.5.0"
    );
    assert_eq!(
        template["spec"]["securityContext"]["runAsNonRoot"],
        json!(true),
        "the template is hardened"
    );
    assert_eq!(
        template["metadata"]["annotations"].get(SECRETS_HASH_ANNOTATION),
        None,
        "no Secrets, no hash"
    );

    assert_eq!(applied.status, Some(status_body(pending_status(T0))));
}

#[tokio::test]
async fn a_missing_secret_or_key_only_reports_status_and_writes_no_object() {
    let policy = default_policy();
    let server = server_json(
        NAMESPACE,
        json!({
            "image": "ghcr.io/github/github-mcp-server:v0.5.0",
            "secretEnv": [{"name": "GITHUB_TOKEN", "secretKeyRef": {"name": "github-token", "key": "token"}}],
            "envFrom": [{"secretRef": {"name": "github-env"}}],
        }),
    );
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            // github-token exists but lacks the key; github-env does not exist.
            api.expect_get(&secret_path("github-token"))
                .await
                .ok(&secret("github-token", "700", &[("other", SECRET_VALUE)]));
            api.expect_get(&secret_path("github-env")).await.reply(
                StatusCode::NOT_FOUND,
                &mock_api::not_found("secrets", "github-env"),
            );
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            assert!(!status.raw.contains(SECRET_VALUE));
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        status,
        status_body(json!({
            "phase": "Pending",
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "SecretsMissing", "waiting for the referenced Secrets", T0),
                condition("SecretsResolved", "False", "SecretNotFound",
                    "Secret \"github-token\" has no key \"token\"; Secret \"github-env\" not found", T0),
                compliant(T0),
            ],
        }))
    );
}

#[tokio::test]
async fn a_changed_secret_rolls_the_pods_and_its_value_never_leaves_the_secret() {
    let policy = default_policy();
    let server = server_json(
        NAMESPACE,
        json!({
            "image": "ghcr.io/github/github-mcp-server:v0.5.0",
            "secretEnv": [{"name": "GITHUB_TOKEN", "secretKeyRef": {"name": "github-token", "key": "token"}}],
            "files": [{"secretRef": {"name": "github-app"}}],
        }),
    );
    let token_v1 = secret("github-token", "700", &[("token", SECRET_VALUE)]);
    let token_v2 = secret(
        "github-token",
        "701",
        &[("token", "ghp_rotatedValueAlsoNeverLeaks000000000")],
    );
    let app = secret(
        "github-app",
        "710",
        &[("key.pem", "-----BEGIN PRIVATE KEY-----")],
    );
    let mut harness = Harness::new(policy.clone());

    let (script_server, secrets) = (
        server.clone(),
        vec![
            ("github-token".to_owned(), Some(token_v1.clone())),
            ("github-app".to_owned(), Some(app.clone())),
        ],
    );
    let (result, first) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, secrets, None, true)
        })
        .await;
    result.expect("first pass reconciles");
    let status = first.status.clone().expect("status written")["status"].clone();

    // The Secret changes: a new resourceVersion (and value). The status stays as it was.
    let server = with_status(&server, &status);
    let (script_server, secrets) = (
        server.clone(),
        vec![
            ("github-token".to_owned(), Some(token_v2.clone())),
            ("github-app".to_owned(), Some(app.clone())),
        ],
    );
    let (result, second) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, secrets, None, false)
        })
        .await;
    result.expect("second pass reconciles");

    let hash = |deployment: &Value| {
        deployment["spec"]["template"]["metadata"]["annotations"][SECRETS_HASH_ANNOTATION]
            .as_str()
            .expect("the secrets hash annotation")
            .to_owned()
    };
    let version = |secret: &Value, name: &str, keys: &[&str]| SecretVersion {
        name: name.to_owned(),
        uid: secret["metadata"]["uid"].as_str().expect("uid").to_owned(),
        resource_version: secret["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_owned(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
    };
    let app_version = version(&app, "github-app", &["key.pem"]);
    let v1 = [
        version(&token_v1, "github-token", &["token"]),
        app_version.clone(),
    ];
    let v2 = [version(&token_v2, "github-token", &["token"]), app_version];
    assert_ne!(
        hash(&first.deployment),
        hash(&second.deployment),
        "a changed Secret changes the pod template"
    );
    assert_eq!(hash(&first.deployment), render::secrets_hash(&v1));
    assert_eq!(hash(&second.deployment), render::secrets_hash(&v2));
    assert_eq!(first.deployment, rendered(&policy, &server, &v1).deployment);
    assert_eq!(
        second.deployment,
        rendered(&policy, &server, &v2).deployment
    );
    // Only the annotation differs between the two applies.
    let mut without_hash = [first.deployment.clone(), second.deployment.clone()];
    for deployment in &mut without_hash {
        deployment["spec"]["template"]["metadata"]["annotations"]
            .as_object_mut()
            .expect("annotations")
            .remove(SECRETS_HASH_ANNOTATION);
    }
    assert_eq!(without_hash[0], without_hash[1]);

    for value in [
        SECRET_VALUE,
        "ghp_rotatedValueAlsoNeverLeaks000000000",
        "-----BEGIN PRIVATE KEY-----",
    ] {
        let encoded = BASE64.encode(value);
        for body in first.raw.iter().chain(&second.raw) {
            assert!(
                !body.contains(value) && !body.contains(&encoded),
                "a request carries a secret value: {body}"
            );
        }
    }
    // The pods get the value through a reference, not a copy.
    assert_eq!(
        first.deployment["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "github-token", "key": "token"}}}])
    );
}

#[tokio::test]
async fn a_template_above_the_policy_ceiling_fails_and_writes_no_object() {
    let policy = policy_with(
        "maxResources: {}",
        "maxResources: {cpu: \"1\", memory: 1Gi}",
    );
    let mut spec = image_spec();
    spec["resources"] = json!({"limits": {"cpu": "2", "memory": "512Mi"}, "requests": {"cpu": "500m", "memory": "400Mi"}});
    let server = server_json(NAMESPACE, spec);
    let render::RenderError::Denied(message) = render_error(&policy, &server) else {
        panic!("a denial");
    };
    assert!(message.contains("ceiling"), "{message}");
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        status,
        status_body(json!({
            "phase": "Failed",
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "PolicyViolation",
                    "nothing is deployed while the pods would violate the policy", T0),
                condition("SecretsResolved", "True", "Resolved", "no Secrets referenced", T0),
                condition("PolicyCompliant", "False", "Denied", &message, T0),
            ],
        }))
    );
}

#[tokio::test]
async fn a_network_extra_the_policy_does_not_allow_fails_and_writes_no_object() {
    let policy = default_policy();
    let mut spec = image_spec();
    spec["network"] = json!({"egressTo": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]});
    let server = server_json(NAMESPACE, spec);
    let render::RenderError::PeerNotAllowed(message) = render_error(&policy, &server) else {
        panic!("a peer denial");
    };
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    result.expect("reconciles");
    assert_eq!(
        status,
        status_body(json!({
            "phase": "Failed",
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "PolicyViolation",
                    "nothing is deployed while the network extras are not allowed", T0),
                condition("SecretsResolved", "True", "Resolved", "no Secrets referenced", T0),
                condition("PolicyCompliant", "False", "PeerNotAllowed", &message, T0),
            ],
        }))
    );
}

/// An MCPServer named after another team's Service must not take it over (server-side
/// apply with force would), nor, when deleted, take it with it: nothing is written, the
/// Service is never touched (no request after the status), and the condition names it.
#[tokio::test]
async fn an_existing_service_another_owner_holds_is_left_untouched_and_named() {
    let policy = default_policy();
    let server = server_json(NAMESPACE, image_spec());
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let theirs = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0ther000-0000-4000-8000-000000000002",
                     "resourceVersion": "10",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "github", "uid": "0ther000-0000-4000-8000-000000000003",
                                          "controller": true}]},
        "spec": {"selector": {"app": "their-github"}, "ports": [{"port": 443}]},
    });
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            api.expect_get(NETWORK_POLICY_PATH).await.reply(
                StatusCode::NOT_FOUND,
                &mock_api::not_found("networkpolicies.networking.k8s.io", NAME),
            );
            api.expect_get(SERVICE_PATH).await.ok(&theirs);
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        status,
        status_body(json!({
            "phase": "Failed",
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "Conflict",
                    "Service \"github\" already exists and is not owned by this MCPServer: nothing is written until it is removed, or the MCPServer renamed", T0),
                condition("SecretsResolved", "True", "Resolved", "no Secrets referenced", T0),
                condition("PolicyCompliant", "True", "Compliant", "the pods pass policy \"mcp-restricted\"", T0),
            ],
        }))
    );
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let policy = default_policy();
    let server = with_status(&server_json(NAMESPACE, image_spec()), &pending_status(T0));
    let mut harness = Harness::new(policy);
    // Later: nothing changed, so nothing is written to status (and lastTransitionTime stays).
    harness.set_now(t0() + jiff::SignedDuration::from_mins(10));
    let script_server = server.clone();
    let (result, applied) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, vec![], None, false)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(applied.status, None);
}

#[tokio::test]
async fn ready_pods_make_the_server_ready_and_only_that_condition_transitions() {
    let policy = default_policy();
    let server = with_status(&server_json(NAMESPACE, image_spec()), &pending_status(T0));
    let mut harness = Harness::new(policy);
    harness.set_now(t0() + jiff::SignedDuration::from_mins(1));
    let script_server = server.clone();
    let (result, applied) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, vec![], Some(1), true)
        })
        .await;
    result.expect("reconciles");
    let t1 = "2025-06-15T15:07:40Z";
    assert_eq!(
        applied.status,
        Some(status_body(json!({
            "phase": "Ready",
            "url": URL,
            "readyReplicas": 1,
            "replicas": 1,
            "selector": SELECTOR,
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "True", "Available", "1 of 1 replicas ready", t1),
                condition("SecretsResolved", "True", "Resolved", "no Secrets referenced", T0),
                compliant(T0),
            ],
        })))
    );
}

#[tokio::test]
async fn a_container_and_volume_added_by_someone_else_are_removed() {
    let policy = default_policy();
    let server = with_status(&server_json(NAMESPACE, image_spec()), &pending_status(T0));
    let expected = rendered(&policy, &server, &[]);
    let existing_np = stored(
        expected.network_policy.as_ref().expect("a NetworkPolicy"),
        "590",
    );
    let existing_service = stored(&expected.service, "591");
    let existing_deployment = stored(&expected.deployment, "592");
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, removal) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            // The objects exist from an earlier pass, owned by this server: applied again.
            api.expect_get(NETWORK_POLICY_PATH).await.ok(&existing_np);
            api.expect_get(SERVICE_PATH).await.ok(&existing_service);
            api.expect_get(DEPLOYMENT_PATH)
                .await
                .ok(&existing_deployment);
            let np = api.expect_apply(NETWORK_POLICY_PATH).await;
            np.ok(&stored(&np.body, "601"));
            let service = api.expect_apply(SERVICE_PATH).await;
            service.ok(&stored(&service.body, "602"));
            let deployment = api.expect_apply(DEPLOYMENT_PATH).await;
            // Someone else's fields survive the apply: an extra container and volume.
            let mut live = live_deployment(&deployment.body, "603", None);
            let pod = &mut live["spec"]["template"]["spec"];
            pod["containers"].as_array_mut().expect("containers").push(
                json!({"name": "debug", "image": "busybox", "command": ["sleep", "infinity"]}),
            );
            pod["volumes"] = json!([{"name": "debug-data", "emptyDir": {}}]);
            deployment.ok(&live);
            let removal = api
                .expect(
                    &Expect::new(Method::PATCH, DEPLOYMENT_PATH)
                        .query("fieldManager=mcpguard")
                        .content_type(JSON_PATCH),
                )
                .await;
            let mut cleaned = live_deployment(&deployment.body, "604", None);
            cleaned["metadata"]["resourceVersion"] = json!("604");
            removal.ok(&cleaned);
            api.expect_no_budget_or_autoscaler().await;
            (api, removal.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        removal,
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "603"},
            {"op": "replace", "path": "/spec/template/spec/containers",
             "value": expected.deployment["spec"]["template"]["spec"]["containers"]},
            {"op": "remove", "path": "/spec/template/spec/volumes"},
        ])
    );
}

#[tokio::test]
async fn a_deleted_server_is_left_to_the_garbage_collector() {
    let server = server_json(NAMESPACE, image_spec());
    let mut harness = Harness::new(default_policy());
    let (result, ()) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.reply(
                StatusCode::NOT_FOUND,
                &mock_api::not_found("mcpservers.mcpguard.dev", NAME),
            );
            (api, ())
        })
        .await;
    assert_eq!(result.expect("nothing to do"), Action::await_change());
}

#[tokio::test]
async fn a_server_outside_the_enforced_namespaces_fails_and_writes_no_object() {
    let server = server_json("default", image_spec());
    let mut harness = Harness::new(default_policy());
    let script_server = server.clone();
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get("/apis/mcpguard.dev/v1alpha1/namespaces/default/mcpservers/github")
                .await
                .ok(&script_server);
            let status = api
                .expect(
                    &Expect::new(
                        Method::PATCH,
                        "/apis/mcpguard.dev/v1alpha1/namespaces/default/mcpservers/github/status",
                    )
                    .query(APPLY_QUERY)
                    .content_type(APPLY),
                )
                .await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::await_change());
    let message = "namespace \"default\" is not among the namespaces of policy \"mcp-restricted\" (mcp): mcpguard runs MCPServers only there";
    assert_eq!(
        status,
        status_body(json!({
            "phase": "Failed",
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "NamespaceNotEnforced", message, T0),
                condition("SecretsResolved", "Unknown", "NamespaceNotEnforced",
                    "not checked outside the enforced namespaces", T0),
                condition("PolicyCompliant", "False", "NamespaceNotEnforced", message, T0),
            ],
        }))
    );
}

#[tokio::test]
async fn with_network_policies_off_the_owned_network_policy_is_deleted() {
    let policy = policy_with(
        "  exceptions: []\n",
        "  exceptions: []\n  network:\n    enabled: false\n",
    );
    let server = with_status(&server_json(NAMESPACE, image_spec()), &pending_status(T0));
    let enabled = rendered(&default_policy(), &server, &[]);
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let existing = stored(
        enabled.network_policy.as_ref().expect("a NetworkPolicy"),
        "590",
    );
    let (result, delete) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            api.expect_nothing_there(false).await;
            api.expect_get(NETWORK_POLICY_PATH).await.ok(&existing);
            let delete = api
                .expect(
                    &Expect::new(Method::DELETE, NETWORK_POLICY_PATH)
                        .content_type("application/json"),
                )
                .await;
            delete.ok(
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
                        "details": {"name": NAME, "kind": "networkpolicies"}}),
            );
            let service = api.expect_apply(SERVICE_PATH).await;
            service.ok(&stored(&service.body, "602"));
            let deployment = api.expect_apply(DEPLOYMENT_PATH).await;
            deployment.ok(&live_deployment(&deployment.body, "603", None));
            api.expect_no_budget_or_autoscaler().await;
            (api, delete.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        delete,
        json!({"preconditions": {"uid": "9a0e0000-0000-4000-8000-000000000077"}})
    );
}

#[tokio::test]
async fn a_network_policy_someone_else_owns_is_not_deleted() {
    let policy = policy_with(
        "  exceptions: []\n",
        "  exceptions: []\n  network:\n    enabled: false\n",
    );
    let server = with_status(&server_json(NAMESPACE, image_spec()), &pending_status(T0));
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let foreign = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0ther000-0000-4000-8000-000000000001",
                     "resourceVersion": "10"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    });
    let (result, ()) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            api.expect_nothing_there(false).await;
            api.expect_get(NETWORK_POLICY_PATH).await.ok(&foreign);
            let service = api.expect_apply(SERVICE_PATH).await;
            service.ok(&stored(&service.body, "602"));
            let deployment = api.expect_apply(DEPLOYMENT_PATH).await;
            deployment.ok(&live_deployment(&deployment.body, "603", None));
            api.expect_no_budget_or_autoscaler().await;
            (api, ())
        })
        .await;
    result.expect("reconciles");
}

#[tokio::test]
async fn failures_back_off_per_server_and_a_success_resets_the_count() {
    let server = server_json(NAMESPACE, image_spec());
    let typed: Arc<MCPServer> =
        Arc::new(serde_json::from_value(server.clone()).expect("an MCPServer"));
    let mut harness = Harness::new(default_policy());
    let mut delays = Vec::new();
    for _ in 0..3 {
        let script_server = server.clone();
        let (result, ()) = harness
            .pass(&server, move |mut api| async move {
                api.expect_get(SERVER_PATH).await.ok(&script_server);
                api.expect_nothing_there(true).await;
                let np = api.expect_apply(NETWORK_POLICY_PATH).await;
                np.reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": "etcdserver: request timed out", "reason": "InternalError",
                            "code": 500}),
                );
                (api, ())
            })
            .await;
        let err = result.expect_err("the apply failed");
        assert!(matches!(err, Error::Api(_)), "{err}");
        delays.push(error_policy(typed.clone(), &err, harness.ctx.clone()));
    }
    assert_eq!(
        delays,
        [5, 10, 20].map(|s| Action::requeue(StdDuration::from_secs(s)))
    );
    let key = controller::key_of(&typed);
    assert_eq!(harness.ctx.backoff.failures(&key), 3);

    let script_server = server.clone();
    let (result, _) = harness
        .pass(&server, move |api| {
            apply_script(api, script_server, vec![], None, true)
        })
        .await;
    result.expect("reconciles");
    assert_eq!(harness.ctx.backoff.failures(&key), 0, "reset on success");
}

/// The server with `spec.autoscaling`: an HPA owns the replicas (3 now), a budget keeps one
/// pod down at most, and the scale subresource's status says 3 replicas and the selector.
#[tokio::test]
async fn an_autoscaled_server_gets_its_hpa_and_budget_and_reports_its_scale() {
    let policy = default_policy();
    let mut spec = image_spec();
    spec["autoscaling"] = json!({"minReplicas": 2, "maxReplicas": 5});
    let server = server_json(NAMESPACE, spec);
    let expected = rendered(&policy, &server, &[]);
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let (result, (deployment, budget, autoscaler, status)) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            // Each object it would write is read first; none exists yet.
            api.expect_absent(&[
                (NETWORK_POLICY_PATH, "networkpolicies.networking.k8s.io"),
                (SERVICE_PATH, "services"),
                (BUDGET_PATH, "poddisruptionbudgets.policy"),
                (AUTOSCALER_PATH, "horizontalpodautoscalers.autoscaling"),
                (DEPLOYMENT_PATH, "deployments.apps"),
            ])
            .await;
            let np = api.expect_apply(NETWORK_POLICY_PATH).await;
            np.ok(&stored(&np.body, "601"));
            let service = api.expect_apply(SERVICE_PATH).await;
            service.ok(&stored(&service.body, "602"));
            let deployment = api.expect_apply(DEPLOYMENT_PATH).await;
            // The HPA has scaled it to 3, two of them ready.
            let mut live = live_deployment(&deployment.body, "603", Some(2));
            live["spec"]["replicas"] = json!(3);
            live["status"]["replicas"] = json!(3);
            deployment.ok(&live);
            let budget = api.expect_apply(BUDGET_PATH).await;
            budget.ok(&stored(&budget.body, "604"));
            let autoscaler = api.expect_apply(AUTOSCALER_PATH).await;
            autoscaler.ok(&stored(&autoscaler.body, "605"));
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (
                api,
                (deployment.body, budget.body, autoscaler.body, status.body),
            )
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(deployment, expected.deployment);
    assert_eq!(deployment["spec"].get("replicas"), None, "the HPA's to set");
    assert_eq!(Some(budget), expected.pod_disruption_budget);
    assert_eq!(Some(autoscaler.clone()), expected.autoscaler);
    assert_eq!(
        autoscaler["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME})
    );
    assert_eq!(status["status"]["replicas"], 3);
    assert_eq!(status["status"]["selector"], SELECTOR);
    assert_eq!(status["status"]["readyReplicas"], 2);
    assert_eq!(
        status["status"]["conditions"][0],
        condition("Ready", "False", "Progressing", "2 of 3 replicas ready", T0)
    );
}

/// An HPA of the server's name that another owner holds is never taken over.
#[tokio::test]
async fn an_autoscaler_another_owner_holds_stops_the_server_with_a_conflict() {
    let policy = default_policy();
    let mut spec = image_spec();
    spec["autoscaling"] = json!({"maxReplicas": 3});
    let server = server_json(NAMESPACE, spec);
    let mut harness = Harness::new(policy);
    let script_server = server.clone();
    let foreign = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "0ther000-0000-4000-8000-000000000002",
                     "resourceVersion": "11"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
                 "maxReplicas": 10},
    });
    let (result, status) = harness
        .pass(&server, move |mut api| async move {
            api.expect_get(SERVER_PATH).await.ok(&script_server);
            api.expect_absent(&[
                (NETWORK_POLICY_PATH, "networkpolicies.networking.k8s.io"),
                (SERVICE_PATH, "services"),
                (BUDGET_PATH, "poddisruptionbudgets.policy"),
            ])
            .await;
            api.expect_get(AUTOSCALER_PATH).await.ok(&foreign);
            let status = api.expect(&apply_to(STATUS_PATH)).await;
            status.ok(&with_status(&script_server, &status.body["status"]));
            (api, status.body)
        })
        .await;
    assert_eq!(result.expect("reconciles"), Action::requeue(RESYNC));
    assert_eq!(
        status["status"]["conditions"][0]["message"],
        "HorizontalPodAutoscaler \"github\" already exists and is not owned by this MCPServer: nothing is written until it is removed, or the MCPServer renamed"
    );
}
