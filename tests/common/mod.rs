//! Test harness: the real mcpguard webhook, composed exactly as `mcpguard serve` composes it
//! (`src/cmd/serve.rs`), served over real TLS on loopback, plus clients that talk to it the way
//! kube-apiserver does (HTTPS, HTTP/1.1 keep-alive, verifying the server against its CA).
//!
//! ```ignore
//! let server = TestServer::start_default().await;
//! let reply = server.post_json("/mutate", &review).await;   // reqwest, trusts only the test CA
//! let text = server.metrics_text().await;                  // probe port, plain HTTP
//! server.begin_drain();                                     // as after SIGTERM: not ready, Connection: close
//! server.stop().await;                                      // stop accepting, finish in-flight requests
//! ```
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

pub mod crd_schema;
pub mod external_tools;
pub mod hardened;
pub mod mock_api;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use mcpguard::connections::ConnectionTable;
use mcpguard::metrics::Metrics;
use mcpguard::webhook::routes::{self, AppState};
use mcpguard::webhook::{server, tls};
use mcpguard_core::certs::{self, CertBundle};
use mcpguard_core::policy::Policy;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The AdmissionReview in `examples/`, as kube-apiserver sends it for `kubectl apply`.
pub const EXAMPLE_REVIEW: &str = include_str!("../../examples/admission-review.json");

/// Names on the serving certificate, as `serve --dev` uses.
pub fn dev_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

/// A fresh CA and serving certificate for `localhost` / `127.0.0.1`, valid from now.
pub fn generate_bundle() -> CertBundle {
    certs::generate(&dev_names(), jiff::Timestamp::now())
        .expect("rcgen generates a CA and serving certificate")
}

/// A running webhook (HTTPS) plus its probe listener (HTTP), both on `127.0.0.1:0`.
pub struct TestServer {
    /// `https://127.0.0.1:PORT`
    pub base_url: String,
    /// `http://127.0.0.1:PORT` (probes: `/healthz`, `/readyz`, `/metrics`)
    pub probe_url: String,
    pub addr: SocketAddr,
    pub probe_addr: SocketAddr,
    /// HTTP/1.1-only reqwest client that trusts only this server's CA.
    pub client: reqwest::Client,
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: String,
    /// The whole generated bundle (CA key included, for tests that sign a rotated cert).
    pub bundle: CertBundle,
    /// The live certificate resolver: `cert.swap(...)` rotates the serving certificate.
    pub cert: Arc<tls::SwappableCert>,
    pub state: Arc<AppState>,
    pub metrics: Arc<Metrics>,
    /// The webhook listener's connection table.
    pub connections: Arc<ConnectionTable>,
    shutdown: Option<oneshot::Sender<()>>,
    probe_shutdown: Option<oneshot::Sender<()>>,
    webhook_task: Option<JoinHandle<()>>,
    probe_task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts the server with the embedded default policy (`mcp-restricted`).
    pub async fn start_default() -> TestServer {
        let policy = Policy::embedded_default().expect("the embedded default policy loads");
        TestServer::start(policy).await
    }

    /// Starts the server with `policy` and a freshly generated certificate.
    pub async fn start(policy: Policy) -> TestServer {
        TestServer::start_with_bundle(policy, generate_bundle()).await
    }

    /// Starts the server with `policy`, serving `bundle.cert_pem`/`bundle.key_pem`.
    pub async fn start_with_bundle(policy: Policy, bundle: CertBundle) -> TestServer {
        let options = ServerOptions {
            policy,
            ..ServerOptions::new()
        };
        TestServer::start_composed(options, bundle).await
    }

    /// `https://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `http://127.0.0.1:PORT{path}` on the probe listener.
    pub fn probe(&self, path: &str) -> String {
        format!("{}{path}", self.probe_url)
    }

    /// POSTs `body` as `application/json` to the webhook with the shared client.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("a serde_json::Value serialises");
        self.post_raw(path, "application/json", bytes).await
    }

    /// POSTs raw bytes with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {path} failed: {}", error_chain(&err)));
        Reply::read(response).await
    }

    /// POSTs an AdmissionReview, asserts HTTP 200 and an `admission.k8s.io/v1`
    /// AdmissionReview envelope, and returns its `response`.
    pub async fn review(&self, path: &str, review: &Value) -> Value {
        let reply = self.post_json(path, review).await;
        assert_eq!(
            reply.status, 200,
            "POST {path}: unexpected status, body: {}",
            reply.text
        );
        assert_eq!(
            reply.json["apiVersion"], "admission.k8s.io/v1",
            "body: {}",
            reply.text
        );
        assert_eq!(
            reply.json["kind"], "AdmissionReview",
            "body: {}",
            reply.text
        );
        reply.json["response"].clone()
    }

    /// `GET /metrics` text.
    pub async fn metrics_text(&self) -> String {
        let response = plain_client()
            .get(self.probe("/metrics"))
            .send()
            .await
            .expect("GET /metrics answers");
        assert_eq!(response.status(), 200, "GET /metrics status");
        response.text().await.expect("/metrics body is text")
    }

    /// `GET /readyz`: status and body.
    pub async fn readyz(&self) -> (u16, String) {
        let response = plain_client()
            .get(self.probe("/readyz"))
            .send()
            .await
            .expect("GET /readyz answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("/readyz body is text"))
    }

    /// What `serve` does first on SIGTERM: not ready, and `Connection: close` on every response.
    pub fn begin_drain(&self) {
        self.state
            .readiness
            .shutting_down
            .store(true, Ordering::Release);
    }

    /// Stops accepting on the webhook port and waits (bounded by the server's own grace) for
    /// in-flight requests; then stops the probe listener.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.webhook_task.take() {
            task.await.expect("serve_tls task does not panic");
        }
        if let Some(shutdown) = self.probe_shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.probe_task.take() {
            task.await
                .expect("probe task does not panic")
                .expect("probe server ends cleanly");
        }
    }

    /// Opens one raw TLS connection (verifying against this server's CA, SNI `127.0.0.1`).
    pub async fn raw_connect(&self) -> TlsStream<TcpStream> {
        raw_tls_connect(self.addr, "127.0.0.1", &self.ca_pem)
            .await
            .expect("TLS handshake with the test server")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.webhook_task {
            task.abort();
        }
        if let Some(task) = &self.probe_task {
            task.abort();
        }
    }
}

/// A status, the HTTP version, headers and the body (text and, when it parses, JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub version: reqwest::Version,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// `Value::Null` when the body is not JSON.
    pub json: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .expect("response body is readable text");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            version,
            headers,
            text,
            json,
        }
    }
}

/// A rustls client config with the ring provider whose only root is `ca_pem`, ALPN http/1.1
/// (what kube-apiserver offers a webhook).
pub fn tls_client_config(ca_pem: &str) -> rustls::ClientConfig {
    let roots = trust_anchors(&[ca_pem]);
    assert_eq!(roots.len(), 1, "exactly one trust anchor: the test CA");
    client_config_with_roots(roots)
}

/// As [`tls_client_config`], trusting every certificate in `ca_pems`, as kube-apiserver
/// trusts every certificate in `caBundle`.
pub fn tls_client_config_trusting(ca_pems: &[&str]) -> rustls::ClientConfig {
    client_config_with_roots(trust_anchors(ca_pems))
}

fn trust_anchors(ca_pems: &[&str]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.expect("CA PEM parses"))
                .expect("CA certificate is accepted as a trust anchor");
        }
    }
    roots
}

fn client_config_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// An HTTP/1.1-only reqwest client over `config` that ignores proxy settings and gives up
/// after `timeout` (its pool keeps connections alive).
pub fn reqwest_client(config: rustls::ClientConfig, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .http1_only()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client builds with a preconfigured rustls config")
}

/// An HTTP/1.1-only reqwest client that trusts only `ca_pem` and ignores proxy settings.
pub fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest_client(tls_client_config(ca_pem), Duration::from_secs(30))
}

/// The rustls error inside an I/O error from a handshake.
pub fn rustls_error(err: &std::io::Error) -> &rustls::Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("expected a rustls error, got: {}", error_chain(err)))
}

/// Asserts that a handshake failed because the verifier does not trust the certificate's
/// issuer; returns the rustls error. Every mcpguard CA has the same subject ("O=mcpguard,
/// CN=mcpguard CA"), so webpki may match another CA by name and then fail on the signature
/// (BadSignature); a CA with another name gives UnknownIssuer. Both mean "not issued by a
/// trusted CA".
#[track_caller]
pub fn assert_untrusted_issuer(err: &std::io::Error) -> &rustls::Error {
    let rustls_err = rustls_error(err);
    assert!(
        matches!(
            rustls_err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature | rustls::CertificateError::UnknownIssuer
            )
        ),
        "expected the issuer to be untrusted, got {rustls_err:?}"
    );
    rustls_err
}

/// A client for the plain-HTTP probe port.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("plain reqwest client builds")
}

/// A raw TLS connection to `addr` with SNI `server_name`, trusting only `ca_pem`.
pub async fn raw_tls_connect(
    addr: SocketAddr,
    server_name: &str,
    ca_pem: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(tls_client_config(ca_pem)));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).expect("valid server name");
    connector.connect(name, tcp).await
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in wire order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("response body is JSON")
    }
}

/// Writes one `POST path` with `body` (Content-Length framing) on `stream`.
pub async fn raw_post<S>(stream: &mut S, path: &str, content_type: &str, body: &[u8])
where
    S: tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write request head");
    stream.write_all(body).await.expect("write request body");
    stream.flush().await.expect("flush request");
}

/// Reads one HTTP/1.1 response (Content-Length or chunked framing) from `reader`.
pub async fn raw_read_response<R>(reader: &mut BufReader<R>) -> std::io::Result<RawResponse>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| std::io::Error::other(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(std::io::Error::other)?;
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).await?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// The example review as JSON.
pub fn example_review() -> Value {
    serde_json::from_str(EXAMPLE_REVIEW).expect("examples/admission-review.json is JSON")
}

/// The example review with its uid replaced.
pub fn example_review_with_uid(uid: &str) -> Value {
    let mut review = example_review();
    review["request"]["uid"] = Value::String(uid.to_owned());
    review
}

/// An AdmissionReview of an MCPPolicy write by `admin`, named after the object, as
/// kube-apiserver sends it: `oldObject` only on UPDATE.
pub fn mcppolicy_review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let mut review = admission_review(
        uid,
        ("mcpguard.dev", "v1alpha1", "MCPPolicy", "mcppolicies"),
        operation,
        "admin",
        object,
    );
    review["request"]["oldObject"] = old.cloned().unwrap_or(Value::Null);
    review
}

/// An AdmissionReview of a pod's CREATE by `username`, named and namespaced after the pod.
pub fn pod_create_review(uid: &str, username: &str, pod: &Value) -> Value {
    admission_review(uid, ("", "v1", "Pod", "pods"), "CREATE", username, pod)
}

/// An AdmissionReview as kube-apiserver sends it: `operation` by `username` on `object` of
/// (group, version, kind, resource), named and (when it has one) namespaced after the object.
pub fn admission_review(
    uid: &str,
    (group, version, kind, resource): (&str, &str, &str, &str),
    operation: &str,
    username: &str,
    object: &Value,
) -> Value {
    let mut review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "operation": operation,
            "userInfo": {"username": username},
            "object": object,
        }
    });
    if let Some(namespace) = object["metadata"].get("namespace") {
        review["request"]["namespace"] = namespace.clone();
    }
    review
}

/// Decodes `response.patch` (base64 of a JSON Patch document) into JSON.
pub fn decode_patch(response: &Value) -> Value {
    let encoded = response["patch"]
        .as_str()
        .expect("response.patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("response.patch is standard base64");
    serde_json::from_slice(&bytes).expect("the decoded patch is JSON")
}

/// Applies the JSON Patch in `response` to `object` with the `json-patch` crate.
pub fn apply_patch(object: &Value, response: &Value) -> Value {
    let patch: json_patch::Patch =
        serde_json::from_value(decode_patch(response)).expect("the patch is an RFC 6902 document");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch)
        .expect("the patch applies to the object it was computed for");
    patched
}

/// `err` and all its sources, joined with ": ".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(next) = source {
        parts.push(next.to_string());
        source = next.source();
    }
    parts.join(": ")
}

/// The value of the sample `name{labels}` in a Prometheus text exposition, if present.
pub fn metric_value(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name_and_labels)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// What [`TestServer::start_custom`] varies: the policy, the RuntimeClass lookup, the
/// review slots (`AppState::with_review_limit`), the connection limit and the client CA
/// (`server::serve_tls_with`).
pub struct ServerOptions {
    pub policy: Policy,
    pub runtime_classes: Arc<dyn mcpguard_core::runtime_class::RuntimeClassLookup>,
    pub max_concurrent_reviews: usize,
    pub max_connections: usize,
    /// PEM of the client CA (`serve --client-ca`): reviews then need a client certificate.
    pub client_ca_pem: Option<String>,
}

impl ServerOptions {
    /// The embedded default policy, no RuntimeClasses, and the server's default limits.
    pub fn new() -> ServerOptions {
        ServerOptions {
            policy: Policy::embedded_default().expect("the embedded default policy loads"),
            runtime_classes: Arc::new(StaticRuntimeClasses::default()),
            max_concurrent_reviews: routes::DEFAULT_MAX_CONCURRENT_REVIEWS,
            max_connections: server::DEFAULT_MAX_CONNECTIONS,
            client_ca_pem: None,
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions::new()
    }
}

impl TestServer {
    /// Like [`TestServer::start`], composed the same way, but with `options`' lookup, review
    /// slots and connection limit.
    pub async fn start_custom(options: ServerOptions) -> TestServer {
        TestServer::start_composed(options, generate_bundle()).await
    }

    /// The one place a test server is put together, as `cmd/serve.rs` does it.
    async fn start_composed(options: ServerOptions, bundle: CertBundle) -> TestServer {
        tls::provider();
        let certified = tls::certified_key(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())
            .expect("the generated certificate and key form a valid pair");
        let cert = tls::SwappableCert::new(certified);
        let tls_config = match &options.client_ca_pem {
            Some(ca) => tls::server_config_verifying_clients(
                cert.clone(),
                tls::client_verifier(ca.as_bytes()).expect("the client CA is usable"),
            ),
            None => tls::server_config(cert.clone()),
        }
        .expect("server TLS config builds");

        let metrics = Arc::new(Metrics::new());
        cert.report_not_after_to(metrics.certificate_not_after.clone());
        let connections = ConnectionTable::counting(
            options.max_connections,
            metrics.connections_evicted.clone(),
            metrics.connections_refused.clone(),
        );
        let client_certificates = match options.client_ca_pem {
            Some(_) => server::ClientCertificates::Required {
                refused: metrics.unauthenticated_requests.clone(),
            },
            None => server::ClientCertificates::NotRequired,
        };
        let state = AppState::with_review_limit(
            options.policy,
            options.runtime_classes,
            metrics.clone(),
            options.max_concurrent_reviews,
        );

        let webhook_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook port on loopback");
        let probe_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind probe port on loopback");
        let addr = webhook_listener
            .local_addr()
            .expect("webhook listener has an address");
        let probe_addr = probe_listener
            .local_addr()
            .expect("probe listener has an address");

        let (shutdown, webhook_stopped) = oneshot::channel::<()>();
        let (probe_shutdown, probes_stopped) = oneshot::channel::<()>();
        let router = server::close_connections_when_draining(
            state.clone(),
            routes::webhook_router(state.clone()),
        );
        let webhook_task = tokio::spawn(server::serve_tls_with(
            webhook_listener,
            tls_config,
            router,
            async {
                let _ = webhook_stopped.await;
            },
            server::ServeOptions {
                connections: connections.clone(),
                client_certificates,
            },
        ));
        let probe_task = tokio::spawn(
            axum::serve(probe_listener, routes::probe_router(state.clone()))
                .with_graceful_shutdown(async {
                    let _ = probes_stopped.await;
                })
                .into_future(),
        );
        state.readiness.tls_listening.store(true, Ordering::Release);

        let client = client_trusting(&bundle.ca_cert_pem);
        TestServer {
            base_url: format!("https://{addr}"),
            probe_url: format!("http://{probe_addr}"),
            addr,
            probe_addr,
            client,
            ca_pem: bundle.ca_cert_pem.clone(),
            bundle,
            cert,
            state,
            metrics,
            connections,
            shutdown: Some(shutdown),
            probe_shutdown: Some(probe_shutdown),
            webhook_task: Some(webhook_task),
            probe_task: Some(probe_task),
        }
    }
}
