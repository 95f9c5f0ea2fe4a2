//! The webhook used exactly as kube-apiserver uses it: the real server over real TLS on
//! loopback, AdmissionReview `admission.k8s.io/v1` bodies, HTTP/1.1 keep-alive, a client that
//! verifies the serving certificate against the generated CA. Every assertion is an exact
//! outcome: status codes, JSON fields, patch operations, messages, metric samples.

mod common;

use common::hardened::{EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS, expected_example_patch};
use common::{
    Reply, TestServer, apply_patch, assert_untrusted_issuer, client_trusting, decode_patch,
    error_chain, example_review, example_review_with_uid, generate_bundle, raw_post,
    raw_read_response, raw_tls_connect,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::io::BufReader;

const POLICY: &str = "mcp-restricted";

fn expected_example_warnings() -> Value {
    json!([
        "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false, removed volume kube-api-access-x7k2p",
        "mcpguard: container \"server\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always"
    ])
}

fn expected_example_mutated_annotation() -> &'static str {
    concat!(
        "containers.imagePullPolicy,",
        "containers.securityContext.allowPrivilegeEscalation,",
        "containers.securityContext.capabilities,",
        "containers.securityContext.runAsGroup,",
        "containers.securityContext.runAsNonRoot,",
        "containers.securityContext.runAsUser,",
        "containers.securityContext.seccompProfile,",
        "containers.volumeMounts,",
        "spec.automountServiceAccountToken,",
        "spec.securityContext.fsGroup,",
        "spec.securityContext.runAsGroup,",
        "spec.securityContext.runAsNonRoot,",
        "spec.securityContext.runAsUser,",
        "spec.securityContext.seccompProfile,",
        "spec.volumes"
    )
}

/// The example review, with fields from a newer Kubernetes that mcpguard must not drop.
fn review_with_future_fields(uid: &str) -> Value {
    let mut review = example_review_with_uid(uid);
    let object = &mut review["request"]["object"];
    object["metadata"]["futureMeta"] = json!("y");
    object["spec"]["someFutureField"] = json!({"x": 1});
    object["spec"]["containers"][0]["futureContainerField"] = json!({"mode": "strict", "level": 3});
    review
}

/// The example review with `request.object` replaced.
fn review_of(uid: &str, object: Value) -> Value {
    let mut review = example_review_with_uid(uid);
    review["request"]["object"] = object;
    review
}

/// A pod UPDATE review (`subresource` empty for a plain update).
fn update_review(uid: &str, subresource: Option<&str>, old: Value, new: Value) -> Value {
    let mut review = example_review_with_uid(uid);
    let request = &mut review["request"];
    request["operation"] = json!("UPDATE");
    request["object"] = new;
    request["oldObject"] = old;
    request["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
    if let Some(subresource) = subresource {
        request["subResource"] = json!(subresource);
        request["requestSubResource"] = json!(subresource);
    }
    review
}

/// The example pod as the webhook would leave it: mutated, compliant.
async fn hardened_example_pod(server: &TestServer) -> Value {
    let review = example_review_with_uid("harden-first");
    let response = server.review("/mutate", &review).await;
    apply_patch(&review["request"]["object"], &response)
}

fn allowed_untouched(uid: &str) -> Value {
    json!({"uid": uid, "allowed": true})
}

fn allowed_by_policy(uid: &str) -> Value {
    json!({"uid": uid, "allowed": true, "auditAnnotations": {"policy": POLICY}})
}

fn denied(uid: &str, message: &str, violations: &str) -> Value {
    json!({
        "uid": uid,
        "allowed": false,
        "status": {"code": 403, "message": message, "reason": "Forbidden", "status": "Failure"},
        "auditAnnotations": {"policy": POLICY, "violations": violations}
    })
}

/// Asserts a refusal in the shape of a Kubernetes `Status`, and returns its message.
fn assert_status_refusal(reply: &Reply, code: u16, reason: &str) -> String {
    assert_eq!(reply.status, code, "HTTP status; body: {}", reply.text);
    let content_type = reply
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(content_type, "application/json", "refusals are JSON");
    let body = &reply.json;
    assert_eq!(body["kind"], "Status", "body: {}", reply.text);
    assert_eq!(body["apiVersion"], "v1", "body: {}", reply.text);
    assert_eq!(body["status"], "Failure", "body: {}", reply.text);
    assert_eq!(body["code"], code, "body: {}", reply.text);
    assert_eq!(body["reason"], reason, "body: {}", reply.text);
    let keys: Vec<&str> = body
        .as_object()
        .expect("Status body is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["apiVersion", "code", "kind", "message", "reason", "status"]
    );
    body["message"]
        .as_str()
        .expect("Status message is a string")
        .to_owned()
}

/// The same server still answers a well-formed review correctly.
async fn assert_still_serving(server: &TestServer, uid: &str) {
    let response = server
        .review("/validate", &example_review_with_uid(uid))
        .await;
    assert_eq!(response, denied(uid, EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS));
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tls_client_verifying_against_the_generated_ca_gets_answers() {
    let server = TestServer::start_default().await;
    let reply = server.post_json("/validate", &example_review()).await;
    assert_eq!(reply.status, 200, "body: {}", reply.text);
    assert_eq!(reply.version, reqwest::Version::HTTP_11);
    assert_eq!(
        reply.json["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );

    // The certificate also carries the DNS name `localhost`, and ALPN settles on http/1.1.
    let tls = raw_tls_connect(server.addr, "localhost", &server.ca_pem)
        .await
        .expect("handshake with SNI localhost verifies against the CA");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn tls_client_trusting_a_different_ca_fails_the_handshake() {
    let server = TestServer::start_default().await;
    let other = generate_bundle();
    assert_ne!(other.ca_cert_pem, server.ca_pem, "a second, independent CA");

    let stranger = client_trusting(&other.ca_cert_pem);
    let err = stranger
        .post(server.url("/validate"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&example_review()).expect("serialises"))
        .send()
        .await
        .expect_err("a client that does not trust the server's CA must not get an answer");
    assert!(
        err.is_connect(),
        "fails while connecting: {}",
        error_chain(&err)
    );
    let chain = error_chain(&err);
    assert!(
        chain.contains("invalid peer certificate: "),
        "error chain: {chain}"
    );

    // The same failure at the TLS layer: the certificate does not chain to the trusted CA.
    // Every generated CA is named "mcpguard CA", so webpki finds the stranger CA as a
    // candidate issuer by name and rejects the signature (BadSignature); a CA with another
    // name would give UnknownIssuer. Both mean "not issued by a trusted CA".
    let raw = raw_tls_connect(server.addr, "127.0.0.1", &other.ca_cert_pem)
        .await
        .expect_err("handshake against the wrong CA fails");
    let rustls_error = assert_untrusted_issuer(&raw);
    assert!(
        chain.contains(&rustls_error.to_string()),
        "reqwest saw the same error: {chain}"
    );

    // Plain HTTP on the TLS port gets a TLS alert and a closed connection, no HTTP.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .expect("write plain HTTP");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut answer),
    )
    .await
    .expect("the server closes a non-TLS connection promptly");
    read.expect("the server closes the connection after its alert");
    // One TLS record: alert (21), TLS 1.2 record version, length 2, fatal (2) decode_error (50).
    assert_eq!(
        answer,
        [21, 3, 3, 0, 2, 2, 50],
        "a TLS alert, never an HTTP answer"
    );

    // A failed handshake costs the server nothing.
    assert_still_serving(&server, "after-bad-handshake").await;
}

// ---------------------------------------------------------------------------------------
// 1. uid and envelope
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn uid_and_envelope_are_echoed_on_mutate_and_validate() {
    let server = TestServer::start_default().await;
    for (path, uid) in [
        ("/mutate", "0f6a3c2e-uid-for-mutate"),
        ("/validate", "9b1d7e44-uid-for-validate"),
    ] {
        let reply = server.post_json(path, &example_review_with_uid(uid)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_eq!(
            reply
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert_eq!(reply.json["apiVersion"], "admission.k8s.io/v1", "{path}");
        assert_eq!(reply.json["kind"], "AdmissionReview", "{path}");
        assert_eq!(reply.json["response"]["uid"], uid, "{path}");
        let top: Vec<&str> = reply
            .json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(top, ["apiVersion", "kind", "response"], "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// 2, 3, 5. mutation: exact patch, warnings, audit annotations, idempotence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mutate_returns_the_exact_patch_which_applies_keeps_unknown_fields_and_validates() {
    let server = TestServer::start_default().await;
    let review = review_with_future_fields("mutate-patch");
    let response = server.review("/mutate", &review).await;

    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert_eq!(decode_patch(&response), expected_example_patch());

    let original = &review["request"]["object"];
    let patched = apply_patch(original, &response);
    // Unknown and future fields survive, untouched.
    assert_eq!(patched["metadata"]["futureMeta"], json!("y"));
    assert_eq!(patched["spec"]["someFutureField"], json!({"x": 1}));
    assert_eq!(
        patched["spec"]["containers"][0]["futureContainerField"],
        json!({"mode": "strict", "level": 3})
    );
    // Everything outside the patched paths is exactly what was sent.
    assert_eq!(patched["metadata"], original["metadata"]);
    assert_eq!(patched["status"], original["status"]);
    assert_eq!(
        patched["spec"]["tolerations"],
        original["spec"]["tolerations"]
    );
    assert_eq!(
        patched["spec"]["containers"][0]["env"],
        original["spec"]["containers"][0]["env"]
    );
    assert_eq!(
        patched["spec"]["volumes"],
        json!([{"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}}])
    );
    assert_eq!(
        patched["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "cache", "mountPath": "/cache"}])
    );

    // The mutated pod passes validation.
    let response = server
        .review("/validate", &review_of("validate-patched", patched))
        .await;
    assert_eq!(response, allowed_by_policy("validate-patched"));
}

#[tokio::test]
async fn mutate_reports_exact_warnings_and_audit_annotations() {
    let server = TestServer::start_default().await;
    let mut response = server
        .review("/mutate", &example_review_with_uid("mutate-warnings"))
        .await;
    let patch = response
        .as_object_mut()
        .expect("response is an object")
        .remove("patch")
        .expect("a patch is present");
    assert!(patch.is_string(), "patch is a base64 string");
    assert_eq!(
        response,
        json!({
            "uid": "mutate-warnings",
            "allowed": true,
            "patchType": "JSONPatch",
            "auditAnnotations": {"policy": POLICY, "mutated": expected_example_mutated_annotation()},
            "warnings": expected_example_warnings()
        })
    );
}

#[tokio::test]
async fn mutate_of_an_already_hardened_pod_returns_no_patch() {
    let server = TestServer::start_default().await;
    let hardened = hardened_example_pod(&server).await;
    let response = server
        .review("/mutate", &review_of("mutate-again", hardened))
        .await;
    assert_eq!(response, allowed_by_policy("mutate-again"));
    assert!(response.get("patch").is_none() && response.get("patchType").is_none());
}

// ---------------------------------------------------------------------------------------
// 4. denial
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn validate_denies_the_unmutated_pod_with_exact_status_and_violations() {
    let server = TestServer::start_default().await;
    let response = server
        .review("/validate", &example_review_with_uid("deny-me"))
        .await;
    assert_eq!(
        response,
        denied("deny-me", EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
    );
}

#[tokio::test]
async fn pod_create_without_an_object_is_answered_invalid() {
    let server = TestServer::start_default().await;
    let mut review = example_review_with_uid("no-object");
    review["request"]["object"] = Value::Null;
    for path in ["/mutate", "/validate"] {
        let response = server.review(path, &review).await;
        assert_eq!(
            response,
            json!({
                "uid": "no-object",
                "allowed": false,
                "status": {"code": 400, "message": "request.object is missing", "reason": "BadRequest", "status": "Failure"}
            }),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 6, 7. scope
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn out_of_scope_requests_are_admitted_untouched() {
    let server = TestServer::start_default().await;

    // A namespace the policy does not enforce.
    let mut other_namespace = example_review_with_uid("ns-default");
    other_namespace["request"]["namespace"] = json!("default");
    other_namespace["request"]["object"]["metadata"]["namespace"] = json!("default");

    // A kind mcpguard does not handle, in an enforced namespace (with a secret-looking literal).
    let mut config_map = example_review_with_uid("configmap");
    let request = &mut config_map["request"];
    request["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    request["resource"] = json!({"group": "", "version": "v1", "resource": "configmaps"});
    request["requestKind"] = request["kind"].clone();
    request["requestResource"] = request["resource"].clone();
    request["name"] = json!("settings");
    request["object"] = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "mcp"},
        "data": {"GITHUB_TOKEN": "ghp_literal", "LOG_LEVEL": "info"}
    });

    // DELETE of a noncompliant pod in an enforced namespace.
    let mut delete = example_review_with_uid("delete");
    let request = &mut delete["request"];
    request["operation"] = json!("DELETE");
    request["oldObject"] = request["object"].clone();
    request["object"] = Value::Null;
    request["options"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"});

    for review in [&other_namespace, &config_map, &delete] {
        let uid = review["request"]["uid"].as_str().expect("uid");
        for path in ["/mutate", "/validate"] {
            let response = server.review(path, review).await;
            assert_eq!(response, allowed_untouched(uid), "{path} {uid}");
        }
    }
}

#[tokio::test]
async fn unknown_operation_is_admitted_with_a_warning() {
    let server = TestServer::start_default().await;
    let mut review = example_review_with_uid("frob");
    review["request"]["operation"] = json!("FROB");
    for path in ["/mutate", "/validate"] {
        let response = server.review(path, &review).await;
        assert_eq!(
            response,
            json!({
                "uid": "frob",
                "allowed": true,
                "warnings": ["mcpguard: unknown operation \"FROB\": admitted without checks"]
            }),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 8. updates
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_only_update_of_a_noncompliant_pod_is_allowed() {
    let server = TestServer::start_default().await;
    let mut old = example_review()["request"]["object"].clone();
    old["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let mut new = old.clone();
    new["metadata"]["labels"]["tier"] = json!("gold");
    new["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("app.kubernetes.io/part-of");
    new["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("finalizers");
    let review = update_review("metadata-update", None, old, new);
    for path in ["/mutate", "/validate"] {
        let response = server.review(path, &review).await;
        assert_eq!(response, allowed_untouched("metadata-update"), "{path}");
    }
}

#[tokio::test]
async fn update_that_changes_an_image_is_judged() {
    let server = TestServer::start_default().await;
    let old = example_review()["request"]["object"].clone();
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("ghcr.io/github/github-mcp-server:v0.21.0");
    let review = update_review("image-update", None, old, new);

    let response = server.review("/validate", &review).await;
    assert_eq!(
        response,
        denied("image-update", EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
    );
    // A plain pod update is never mutated: the API server would refuse most spec changes.
    let response = server.review("/mutate", &review).await;
    assert_eq!(response, allowed_untouched("image-update"));
}

#[tokio::test]
async fn ephemeral_container_update_mutates_only_the_new_container_and_is_judged() {
    let server = TestServer::start_default().await;
    let hardened = hardened_example_pod(&server).await;

    // An ephemeral container added earlier: compliant, but with a pull policy the mutation
    // would change, so touching it would show in the patch.
    let mut old = hardened;
    old["spec"]["ephemeralContainers"] = json!([{
        "name": "debugger-1",
        "image": "busybox:1.36",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    }]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .expect("ephemeralContainers")
        .push(json!({
            "name": "debugger-2",
            "image": "busybox:1.36",
            "command": ["sh"],
            "stdin": true,
            "tty": true,
            "targetContainerName": "server",
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"
        }));
    let review = update_review("debug", Some("ephemeralcontainers"), old, new.clone());

    let mut response = server.review("/mutate", &review).await;
    // The pod sets runAsNonRoot, runAsUser, runAsGroup and seccompProfile itself, so the
    // container inherits them; only what the pod cannot set is filled.
    assert_eq!(
        decode_patch(&response),
        json!([
            {"op": "add", "path": "/spec/ephemeralContainers/1/securityContext",
             "value": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}},
            {"op": "replace", "path": "/spec/ephemeralContainers/1/imagePullPolicy", "value": "Always"}
        ])
    );
    let patched = apply_patch(&new, &response);
    response.as_object_mut().expect("object").remove("patch");
    assert_eq!(
        response,
        json!({
            "uid": "debug",
            "allowed": true,
            "patchType": "JSONPatch",
            "auditAnnotations": {
                "policy": POLICY,
                "mutated": "containers.imagePullPolicy,containers.securityContext.allowPrivilegeEscalation,containers.securityContext.capabilities"
            },
            "warnings": ["mcpguard: ephemeral container \"debugger-2\": set allowPrivilegeEscalation=false, drop ALL, imagePullPolicy=Always"]
        })
    );

    // /validate judges the subresource update: the unmutated debug container is denied...
    let response = server.review("/validate", &review).await;
    assert_eq!(
        response,
        denied(
            "debug",
            concat!(
                r#"pods "github-mcp" is forbidden: violates mcpguard policy "mcp-restricted": "#,
                r#"allowPrivilegeEscalation != false (container "debugger-2" must set securityContext.allowPrivilegeEscalation=false), "#,
                r#"unrestricted capabilities (container "debugger-2" must set securityContext.capabilities.drop=["ALL"])"#
            ),
            "allowPrivilegeEscalation,capabilities_restricted"
        )
    );
    // ...and the mutated one is admitted.
    let old = review["request"]["oldObject"].clone();
    let response = server
        .review(
            "/validate",
            &update_review("debug-patched", Some("ephemeralcontainers"), old, patched),
        )
        .await;
    assert_eq!(response, allowed_by_policy("debug-patched"));
}

// ---------------------------------------------------------------------------------------
// 9. bad input
// ---------------------------------------------------------------------------------------

const NOT_A_REVIEW: &str = "body is not an AdmissionReview: ";

#[tokio::test]
async fn malformed_json_is_400_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    let reply = server
        .post_raw("/validate", "application/json", b"{\"kind\":".to_vec())
        .await;
    let message = assert_status_refusal(&reply, 400, "BadRequest");
    assert_eq!(
        message,
        format!("{NOT_A_REVIEW}EOF while parsing a value at line 1 column 8")
    );
    assert_still_serving(&server, "after-malformed").await;
}

#[tokio::test]
async fn json_that_is_not_an_admission_review_is_400_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    // A JSON array is not an AdmissionReview; what serde says about it is its own business.
    for body in ["[1,2]", "[]", "null", "5"] {
        let reply = server
            .post_raw("/mutate", "application/json", body.as_bytes().to_vec())
            .await;
        let message = assert_status_refusal(&reply, 400, "BadRequest");
        assert!(message.starts_with(NOT_A_REVIEW), "body {body}: {message}");
    }
    for (body, expected) in [
        (
            r#"{"request": 5}"#,
            "request: invalid type: integer, expected struct AdmissionRequest at line 1 column 13",
        ),
        ("\"AdmissionReview\"", "expected a JSON object"),
    ] {
        let reply = server
            .post_raw("/mutate", "application/json", body.as_bytes().to_vec())
            .await;
        let message = assert_status_refusal(&reply, 400, "BadRequest");
        assert_eq!(message, format!("{NOT_A_REVIEW}{expected}"), "body {body}");
    }
    assert_still_serving(&server, "after-not-a-review").await;
}

/// Regression: serde accepts a struct in sequence form, so a JSON array whose elements line
/// up with (apiVersion, kind, request) was answered as if it were an AdmissionReview.
#[tokio::test]
async fn array_shaped_body_is_refused_not_reviewed() {
    let server = TestServer::start_default().await;
    let request = example_review_with_uid("array-form")["request"].clone();
    let body = json!(["admission.k8s.io/v1", "AdmissionReview", request]);
    let reply = server.post_json("/validate", &body).await;
    let message = assert_status_refusal(&reply, 400, "BadRequest");
    assert!(message.starts_with(NOT_A_REVIEW), "message: {message}");
    assert_still_serving(&server, "after-array-form").await;
}

#[tokio::test]
async fn a_review_of_another_api_version_is_refused() {
    let server = TestServer::start_default().await;
    let mut review = example_review_with_uid("beta");
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let reply = server.post_json("/validate", &review).await;
    let message = assert_status_refusal(&reply, 400, "BadRequest");
    assert_eq!(
        message,
        "expected kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind \"AdmissionReview\" of apiVersion \"admission.k8s.io/v1beta1\""
    );
    assert_still_serving(&server, "after-beta").await;
}

#[tokio::test]
async fn review_without_request_is_400_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    for body in [
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": null}),
    ] {
        let reply = server.post_json("/validate", &body).await;
        let message = assert_status_refusal(&reply, 400, "BadRequest");
        assert_eq!(message, "AdmissionReview has no request");
    }
    assert_still_serving(&server, "after-no-request").await;
}

#[tokio::test]
async fn review_without_uid_is_400_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    let mut review = example_review();
    review["request"]
        .as_object_mut()
        .expect("request")
        .remove("uid");
    let reply = server.post_json("/mutate", &review).await;
    let message = assert_status_refusal(&reply, 400, "BadRequest");
    assert!(
        message.starts_with(&format!(
            "{NOT_A_REVIEW}request: missing field `uid` at line "
        )),
        "message: {message}"
    );
    assert_still_serving(&server, "after-no-uid").await;
}

/// The example review padded with trailing whitespace (still valid JSON) to exactly `size` bytes.
fn padded_review(uid: &str, size: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&example_review_with_uid(uid)).expect("serialises");
    assert!(body.len() < size);
    body.resize(size, b' ');
    body
}

#[tokio::test]
async fn body_over_7_mib_is_413_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    const LIMIT: usize = 7 * 1024 * 1024;

    let reply = server
        .post_raw(
            "/validate",
            "application/json",
            padded_review("too-big", LIMIT + 1),
        )
        .await;
    let message = assert_status_refusal(&reply, 413, "RequestEntityTooLarge");
    assert_eq!(message, "body is larger than 7340032 bytes");

    // Exactly at the limit is a review like any other.
    let reply = server
        .post_raw(
            "/validate",
            "application/json",
            padded_review("at-limit", LIMIT),
        )
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text);
    assert_eq!(
        reply.json["response"],
        denied("at-limit", EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
    );

    assert_still_serving(&server, "after-too-large").await;
    let metrics = server.metrics_text().await;
    assert!(
        metrics.lines().any(
            |l| l == r#"mcpguard_bad_requests_total{endpoint="validate",reason="too_large"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn chunked_body_over_7_mib_is_413() {
    // Without a Content-Length the limit is enforced while reading.
    let server = TestServer::start_default().await;
    let mut tls = server.raw_connect().await;
    let head = "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = padded_review("chunked-too-big", 7 * 1024 * 1024 + 1);
    let mut wire = head.as_bytes().to_vec();
    for chunk in body.chunks(64 * 1024) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let (reader, mut writer) = tokio::io::split(&mut tls);
    let write = async move {
        // The server may answer and close before all of it is sent.
        let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, &wire).await;
        let _ = tokio::io::AsyncWriteExt::flush(&mut writer).await;
    };
    let read = async move {
        let mut reader = BufReader::new(reader);
        raw_read_response(&mut reader).await
    };
    let ((), response) = tokio::join!(write, read);
    let response = response.expect("the server answers the oversized chunked body");
    assert_eq!(response.status, 413);
    let body = response.json();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["code"], 413);
    assert_eq!(body["reason"], "RequestEntityTooLarge");
    assert_eq!(body["message"], "body is larger than 7340032 bytes");
    drop(tls);
    assert_still_serving(&server, "after-chunked-too-large").await;
}

#[tokio::test]
async fn connection_is_closed_after_a_413_so_the_unread_body_is_never_parsed_as_a_request() {
    let server = TestServer::start_default().await;
    let mut tls = server.raw_connect().await;
    // The declared length is over the limit; the body's own bytes look like a second request.
    let smuggled = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let mut body = smuggled.repeat((7 * 1024 * 1024 + 1) / smuggled.len() + 1);
    body.truncate(7 * 1024 * 1024 + 1);
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (reader, mut writer) = tokio::io::split(&mut tls);
    let mut reader = BufReader::new(reader);
    let write = async {
        // The server answers from the declared length and closes: the write may fail.
        let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, head.as_bytes()).await;
        let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, &body).await;
    };
    let ((), response) = tokio::join!(write, raw_read_response(&mut reader));
    let response = response.expect("the 413 arrives before the connection closes");
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["reason"], "RequestEntityTooLarge");
    let next = raw_read_response(&mut reader).await;
    assert!(
        next.is_err(),
        "nothing follows the 413 on that connection, got {next:?}"
    );
    assert_still_serving(&server, "after-413-close").await;
}

#[tokio::test]
async fn expect_100_continue_as_curl_sends_it_gets_100_then_the_answer() {
    let server = TestServer::start_default().await;
    let tls = server.raw_connect().await;
    let (reader, mut writer) = tokio::io::split(tls);
    let mut reader = BufReader::new(reader);
    let body = serde_json::to_vec(&example_review_with_uid("curl")).expect("serialises");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut writer, head.as_bytes())
        .await
        .expect("write head");
    let interim = raw_read_response(&mut reader)
        .await
        .expect("interim response");
    assert_eq!(interim.status, 100);
    tokio::io::AsyncWriteExt::write_all(&mut writer, &body)
        .await
        .expect("write body");
    let response = raw_read_response(&mut reader)
        .await
        .expect("final response");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["response"],
        denied("curl", EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
    );
}

#[tokio::test]
async fn wrong_content_type_is_415_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    let body = serde_json::to_vec(&example_review()).expect("serialises");
    let reply = server.post_raw("/mutate", "text/plain", body.clone()).await;
    let message = assert_status_refusal(&reply, 415, "UnsupportedMediaType");
    assert_eq!(
        message,
        r#"content type must be application/json, got "text/plain""#
    );

    // A charset parameter is still JSON.
    let reply = server
        .post_raw("/validate", "application/json; charset=utf-8", body)
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text);
    assert_still_serving(&server, "after-wrong-type").await;
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_the_server_keeps_serving() {
    let server = TestServer::start_default().await;
    let reply = server
        .post_raw("/validate", "application/json", vec![b'['; 100_000])
        .await;
    assert_status_refusal(&reply, 400, "BadRequest");

    // Nesting where the review holds arbitrary JSON (the object) hits the depth limit.
    let review = serde_json::to_string(&example_review()).expect("serialises");
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = review.replacen("\"oldObject\":null", &format!("\"oldObject\":{nested}"), 1);
    assert_ne!(body, review, "the nesting was inserted");
    let reply = server
        .post_raw("/validate", "application/json", body.into_bytes())
        .await;
    let message = assert_status_refusal(&reply, 400, "BadRequest");
    assert!(
        message.starts_with(&format!(
            "{NOT_A_REVIEW}recursion limit exceeded at line 1 column "
        )),
        "message: {message}"
    );
    assert_still_serving(&server, "after-deep-nesting").await;
}

// ---------------------------------------------------------------------------------------
// 10. keep-alive
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sequential_reviews_share_one_kept_alive_http11_connection() {
    let server = TestServer::start_default().await;
    for i in 0..6 {
        let uid = format!("keepalive-{i}");
        let path = if i % 2 == 0 { "/validate" } else { "/mutate" };
        let reply = server.post_json(path, &example_review_with_uid(&uid)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_eq!(reply.version, reqwest::Version::HTTP_11);
        assert_eq!(
            reply.headers.get(reqwest::header::CONNECTION),
            None,
            "no Connection: close"
        );
        assert_eq!(reply.json["response"]["uid"], uid.as_str());
    }

    // One raw TLS connection carries several requests, one after another.
    let tls = server.raw_connect().await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (reader, mut writer) = tokio::io::split(tls);
    let mut reader = BufReader::new(reader);
    for i in 0..4 {
        let uid = format!("raw-{i}");
        let body = serde_json::to_vec(&example_review_with_uid(&uid)).expect("serialises");
        raw_post(&mut writer, "/validate", "application/json", &body).await;
        let response = raw_read_response(&mut reader)
            .await
            .unwrap_or_else(|err| panic!("response {i} on the same connection: {err}"));
        assert_eq!(response.status, 200);
        assert_eq!(response.header("connection"), None);
        assert_eq!(
            response.json()["response"],
            denied(&uid, EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
        );
    }
}

// ---------------------------------------------------------------------------------------
// 11. probes and metrics
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_is_200_while_serving() {
    let server = TestServer::start_default().await;
    assert_eq!(server.readyz().await, (200, "ready".to_owned()));
    let health = common::plain_client()
        .get(server.probe("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("text"), "ok");
}

#[tokio::test]
async fn draining_turns_readyz_503_and_closes_connections_then_stop_refuses_new_ones() {
    let mut server = TestServer::start_default().await;
    server.begin_drain();
    assert_eq!(server.readyz().await, (503, "not ready".to_owned()));
    let reply = server
        .post_json("/validate", &example_review_with_uid("draining"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply
            .headers
            .get(reqwest::header::CONNECTION)
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    assert_eq!(
        reply.json["response"],
        denied("draining", EXAMPLE_DENIAL, EXAMPLE_VIOLATIONS)
    );

    server.stop().await;
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "the webhook port is closed after stop"
    );
}

#[tokio::test]
async fn metrics_count_requests_and_denials_exactly() {
    let server = TestServer::start_default().await;
    for uid in ["m1", "m2"] {
        let response = server
            .review("/validate", &example_review_with_uid(uid))
            .await;
        assert_eq!(response["allowed"], false);
    }
    let hardened = hardened_example_pod(&server).await; // one mutate CREATE, mutated
    let response = server.review("/validate", &review_of("m3", hardened)).await;
    assert_eq!(response["allowed"], true);
    let mut other_namespace = example_review_with_uid("m4");
    other_namespace["request"]["namespace"] = json!("default");
    server.review("/validate", &other_namespace).await;
    let mut frob = example_review_with_uid("m5");
    frob["request"]["operation"] = json!("FROB");
    server.review("/validate", &frob).await;
    server
        .post_raw("/validate", "text/plain", b"{}".to_vec())
        .await;

    let text = server.metrics_text().await;
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",decision="denied"} 2"#,
        r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",decision="allowed"} 1"#,
        r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",decision="skipped"} 1"#,
        r#"mcpguard_admission_requests_total{endpoint="validate",kind="Pod",operation="UNKNOWN",decision="allowed"} 1"#,
        r#"mcpguard_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",decision="mutated"} 1"#,
        r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="mcp"} 2"#,
        r#"mcpguard_denials_total{policy="mcp-restricted",check="allowPrivilegeEscalation",namespace="mcp"} 2"#,
        r#"mcpguard_denials_total{policy="mcp-restricted",check="capabilities_restricted",namespace="mcp"} 2"#,
        r#"mcpguard_denials_total{policy="mcp-restricted",check="seccompProfile_restricted",namespace="mcp"} 2"#,
        r#"mcpguard_bad_requests_total{endpoint="validate",reason="content_type"} 1"#,
        r#"mcpguard_policy_info{policy="mcp-restricted",level="restricted",version="latest"} 1"#,
        r#"mcpguard_admission_duration_seconds_count{endpoint="validate"} 6"#,
        r#"mcpguard_admission_duration_seconds_count{endpoint="mutate"} 1"#,
    ] {
        assert!(has(line), "missing {line:?} in:\n{text}");
    }
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("mcpguard_admission_requests_total{"))
        .collect();
    assert_eq!(requests.len(), 5, "no other request series: {requests:#?}");
    let denials = text
        .lines()
        .filter(|l| l.starts_with("mcpguard_denials_total{"))
        .count();
    assert_eq!(denials, 4, "one series per violated check:\n{text}");
}

// ---------------------------------------------------------------------------------------
// 12. registry policy
// ---------------------------------------------------------------------------------------

const REGISTRY_POLICY: &str = r#"
apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata:
  name: mcp-registries
spec:
  namespaces: [mcp]
  podSecurity: {level: restricted, version: latest}
  mutate:
    podSecurityContext:
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      fsGroup: 1000
      seccompProfile: {type: RuntimeDefault}
    containerSecurityContext:
      allowPrivilegeEscalation: false
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    resources:
      requests: {memory: 400Mi}
    imagePullPolicy: always
    automountServiceAccountToken: remove
  validate:
    allowedRegistries: [docker.io/mcp]
    forbidSecretLiterals: true
"#;

#[tokio::test]
async fn allowed_registries_policy_denies_other_registries_and_admits_docker_hub_mcp() {
    let policy = mcpguard_core::policy::parse_str(REGISTRY_POLICY, "registry-policy.yaml")
        .expect("the registry policy is valid");
    let server = TestServer::start(policy).await;

    // The hardened example pod: compliant in every respect except its registry.
    let review = example_review_with_uid("harden");
    let response = server.review("/mutate", &review).await;
    assert_eq!(response["auditAnnotations"]["policy"], "mcp-registries");
    let hardened = apply_patch(&review["request"]["object"], &response);

    let response = server
        .review("/validate", &review_of("ghcr", hardened.clone()))
        .await;
    assert_eq!(
        response,
        json!({
            "uid": "ghcr",
            "allowed": false,
            "status": {
                "code": 403,
                "message": concat!(
                    r#"pods "github-mcp" is forbidden: violates mcpguard policy "mcp-registries": "#,
                    r#"image registry not allowed (container "server" must use images from docker.io/mcp; "#,
                    r#"got "ghcr.io/github/github-mcp-server:v0.20.0")"#
                ),
                "reason": "Forbidden",
                "status": "Failure"
            },
            "auditAnnotations": {"policy": "mcp-registries", "violations": "allowedRegistries"}
        })
    );

    let mut fetch = hardened;
    fetch["spec"]["containers"][0]["image"] = json!("mcp/fetch:1");
    let response = server.review("/validate", &review_of("fetch", fetch)).await;
    assert_eq!(
        response,
        json!({"uid": "fetch", "allowed": true, "auditAnnotations": {"policy": "mcp-registries"}})
    );
}
