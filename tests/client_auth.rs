//! `serve --client-ca`: kube-apiserver presents a client certificate to webhooks (an
//! `AdmissionConfiguration` whose `kubeConfigFile` names one); with a client CA, mcpguard
//! answers only clients with a certificate it signed. The real server over real TLS.

mod common;

use std::sync::Arc;

use common::{
    ServerOptions, TestServer, error_chain, example_review_with_uid, generate_bundle, plain_client,
};
use mcpguard::webhook::tls;
use mcpguard_core::certs::{self, CaMaterial};
use pretty_assertions::assert_eq;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A client certificate (PEM chain, PEM key) for `common_name`, signed by `ca`, for
/// client authentication only, as kube-apiserver's webhook client certificate is.
fn issue_client(ca: &CaMaterial, common_name: &str) -> (String, String) {
    let ca_key = KeyPair::from_pem(&ca.key_pem).expect("CA key");
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).expect("CA issuer");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("client key");
    let cert = params.signed_by(&key, &issuer).expect("client certificate");
    (cert.pem(), key.serialize_pem())
}

fn new_ca() -> CaMaterial {
    certs::generate_ca(jiff::Timestamp::now()).expect("a CA")
}

/// A rustls client config trusting only `server_ca_pem`, presenting `client` when given.
fn client_config(server_ca_pem: &str, client: Option<&(String, String)>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server_ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("trust anchor");
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("client chain");
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key match")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn https_client(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .http1_only()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

async fn post_review(client: &reqwest::Client, server: &TestServer, uid: &str) -> (u16, Value) {
    let response = client
        .post(server.url("/validate"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&example_review_with_uid(uid)).expect("serialises"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("uid {uid}: {}", error_chain(&err)));
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

fn assert_reviewed(status: u16, body: &Value, uid: &str) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "AdmissionReview", "{body}");
    assert_eq!(body["response"]["uid"], uid, "{body}");
    assert_eq!(body["response"]["allowed"], false, "{body}");
}

async fn server_with_client_ca(client_ca: &CaMaterial) -> TestServer {
    TestServer::start_custom(ServerOptions {
        client_ca_pem: Some(client_ca.cert_pem.clone()),
        ..ServerOptions::new()
    })
    .await
}

fn metric(text: &str, sample: &str) -> Option<f64> {
    common::metric_value(text, sample)
}

async fn assert_no_request_refused_for_want_of_a_certificate(server: &TestServer) {
    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, "mcpguard_unauthenticated_requests_total"),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_client_certificate_signed_by_the_client_ca_gets_its_review_answered() {
    let client_ca = new_ca();
    let server = server_with_client_ca(&client_ca).await;
    let apiserver = issue_client(&client_ca, "kube-apiserver");
    let client = https_client(client_config(&server.ca_pem, Some(&apiserver)));
    for uid in ["signed-1", "signed-2"] {
        let (status, body) = post_review(&client, &server, uid).await;
        assert_reviewed(status, &body, uid);
    }
    assert_no_request_refused_for_want_of_a_certificate(&server).await;
}

#[tokio::test]
async fn a_review_without_a_client_certificate_is_401_with_an_exact_status() {
    let client_ca = new_ca();
    let server = server_with_client_ca(&client_ca).await;
    // The test server's own client presents no certificate.
    let reply = server
        .post_json("/validate", &example_review_with_uid("anonymous"))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(
        reply.json,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": "a client certificate signed by the webhook's client CA (--client-ca) is required",
            "reason": "Unauthorized",
            "code": 401,
        })
    );
    let reply = server
        .post_json("/mutate", &example_review_with_uid("anonymous-mutate"))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);

    let text = server.metrics_text().await;
    assert_eq!(
        metric(&text, "mcpguard_unauthenticated_requests_total"),
        Some(2.0)
    );
    assert!(
        !text.contains("mcpguard_admission_requests_total{"),
        "no review was judged:\n{text}"
    );
}

/// A CA named `common_name` (the CA `certs::generate_ca` makes is always "mcpguard CA").
fn ca_named(common_name: &str) -> CaMaterial {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    CaMaterial {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Connects presenting `client`, sends a review, and returns how the connection ended.
async fn review_presenting(
    server: &TestServer,
    client: &(String, String),
) -> std::io::Result<Vec<u8>> {
    let connector = TlsConnector::from(Arc::new(client_config(&server.ca_pem, Some(client))));
    let tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    // In TLS 1.3 the client's certificate travels in its last flight: the client's side of
    // the handshake ends before the server has judged it, and the refusal is the next read.
    let mut stream = connector.connect(name, tcp).await?;
    let body = serde_json::to_vec(&example_review_with_uid("stranger")).expect("serialises");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.map(|_| buf)
}

/// The TLS alert the server refused the connection with.
fn alert_of(outcome: std::io::Result<Vec<u8>>) -> Option<rustls::Error> {
    let err = outcome.expect_err("the server refuses the certificate");
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_handshake() {
    let client_ca = new_ca();
    let server = server_with_client_ca(&client_ca).await;

    // Another CA: no trust anchor issued it.
    let stranger = issue_client(&ca_named("some other CA"), "kube-apiserver");
    assert_eq!(
        alert_of(review_presenting(&server, &stranger).await),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::UnknownCA
        ))
    );
    // A CA that copies the client CA's name: the signature does not verify.
    let forger = issue_client(&new_ca(), "kube-apiserver");
    assert_eq!(
        alert_of(review_presenting(&server, &forger).await),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::DecryptError
        ))
    );

    let text = server.metrics_text().await;
    assert!(
        !text.contains("mcpguard_admission_requests_total{"),
        "no review was judged:\n{text}"
    );
}

#[tokio::test]
async fn probes_need_no_client_certificate() {
    let client_ca = new_ca();
    let server = server_with_client_ca(&client_ca).await;
    let probes = plain_client();
    for (path, body) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = probes
            .get(server.probe(path))
            .send()
            .await
            .expect("probe answers");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.expect("text"), body, "{path}");
    }
    assert!(
        server
            .metrics_text()
            .await
            .contains("# TYPE mcpguard_unauthenticated_requests counter")
    );
}

#[tokio::test]
async fn the_serving_certificate_still_rotates_with_a_client_ca() {
    let client_ca = new_ca();
    let server = server_with_client_ca(&client_ca).await;
    let apiserver = issue_client(&client_ca, "kube-apiserver");

    let rotated = generate_bundle();
    server.cert.swap(
        tls::certified_key(rotated.cert_pem.as_bytes(), rotated.key_pem.as_bytes())
            .expect("rotated pair"),
    );
    let client = https_client(client_config(&rotated.ca_cert_pem, Some(&apiserver)));
    let (status, body) = post_review(&client, &server, "after-rotation").await;
    assert_reviewed(status, &body, "after-rotation");
    // And still refused without a certificate.
    let anonymous = https_client(client_config(&rotated.ca_cert_pem, None));
    let (status, body) = post_review(&anonymous, &server, "anonymous-after-rotation").await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn without_a_client_ca_a_client_certificate_is_neither_asked_for_nor_needed() {
    let server = TestServer::start_default().await;
    let apiserver = issue_client(&new_ca(), "kube-apiserver");
    for (uid, client) in [
        (
            "with-cert",
            https_client(client_config(&server.ca_pem, Some(&apiserver))),
        ),
        (
            "without-cert",
            https_client(client_config(&server.ca_pem, None)),
        ),
    ] {
        let (status, body) = post_review(&client, &server, uid).await;
        assert_reviewed(status, &body, uid);
    }
    assert_no_request_refused_for_want_of_a_certificate(&server).await;
}

#[test]
fn a_client_ca_file_without_a_certificate_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("client-ca.crt");
    std::fs::write(&path, "not a certificate\n").expect("write");
    let err = tls::client_verifier_from_file(&path).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("{}: client CA: no PEM certificate found", path.display())
    );
    let missing = dir.path().join("missing.crt");
    let err = tls::client_verifier_from_file(&missing).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );
}
