//! Certificate rotation and shutdown under load, the way they happen in a cluster: the serving
//! certificate is swapped while kube-apiserver keeps calling (kept-alive and fresh
//! connections), a CA rotation passes through a two-CA `caBundle`, kubelet replaces a mounted
//! Secret with its `..data` symlink swap, and the real binary drains on SIGTERM.
//!
//! Every assertion is an outcome: requests counted by result, certificates compared by DER,
//! exit statuses, probe statuses. Nothing asserts how long something took; every wait is
//! bounded so a hang fails instead of blocking the suite.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    RawResponse, TestServer, assert_untrusted_issuer, dev_names, error_chain,
    example_review_with_uid, generate_bundle, plain_client, raw_read_response, reqwest_client,
    tls_client_config_trusting,
};
use mcpguard::webhook::tls;
use mcpguard_core::certs::{self, Issued};
use mcpguard_core::policy::Policy;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for any single wait in these tests.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An HTTP/1.1 reqwest client trusting `ca_pems` (its pool keeps connections alive).
fn reqwest_trusting(ca_pems: &[&str]) -> reqwest::Client {
    reqwest_client(tls_client_config_trusting(ca_pems), Duration::from_secs(20))
}

/// One fresh TLS connection to `addr` (SNI `127.0.0.1`), verifying against `ca_pems`.
async fn handshake(addr: SocketAddr, ca_pems: &[&str]) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(tls_client_config_trusting(ca_pems)));
    let tcp = tokio::time::timeout(BOUND, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let name = ServerName::try_from("127.0.0.1").expect("valid server name");
    tokio::time::timeout(BOUND, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The leaf certificate the server presented on `stream`.
fn peer_der(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("the server presented a certificate")[0]
        .clone()
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
}

/// A serving certificate for `localhost`/`127.0.0.1` signed by the given CA.
fn issue(ca_cert_pem: &str, ca_key_pem: &str) -> Issued {
    certs::issue_serving(
        ca_cert_pem,
        ca_key_pem,
        &dev_names(),
        jiff::Timestamp::now(),
    )
    .expect("the CA issues a serving certificate")
}

fn certified(issued: &Issued) -> rustls::sign::CertifiedKey {
    tls::certified_key(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
        .expect("issued certificate and key form a pair")
}

fn review_body(uid: &str) -> Vec<u8> {
    serde_json::to_vec(&example_review_with_uid(uid)).expect("review serialises")
}

/// Checks a webhook answer: 200, an AdmissionReview envelope, our uid echoed.
fn check_answer(status: u16, body: &[u8], uid: &str) -> Result<(), String> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!(
            "uid {uid}: status {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    if json["kind"] != "AdmissionReview" || json["response"]["uid"] != uid {
        return Err(format!(
            "uid {uid}: not our AdmissionReview: {}",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(())
}

/// POSTs a review with `client`; Ok only for a complete, correct answer.
async fn post_review(client: &reqwest::Client, base: &str, uid: &str) -> Result<(), String> {
    let path = if uid.len().is_multiple_of(2) {
        "/mutate"
    } else {
        "/validate"
    };
    let response = client
        .post(format!("{base}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(review_body(uid))
        .send()
        .await
        .map_err(|e| format!("uid {uid}: {}", error_chain(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("uid {uid}: body: {}", error_chain(&e)))?;
    check_answer(status, &body, uid)
}

/// One request on an open raw TLS connection (no panics: every failure is returned).
async fn raw_request<S>(stream: S, uid: &str) -> Result<RawResponse, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let body = review_body(uid);
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut reader = BufReader::new(stream);
    let write = async {
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.flush().await
    };
    write
        .await
        .map_err(|e| format!("uid {uid}: write: {}", error_chain(&e)))?;
    let response = tokio::time::timeout(BOUND, raw_read_response(&mut reader))
        .await
        .map_err(|_| format!("uid {uid}: no response within {BOUND:?}"))?
        .map_err(|e| format!("uid {uid}: read: {}", error_chain(&e)))?;
    check_answer(response.status, &response.body, uid)?;
    Ok(response)
}

/// Awaits a load task, bounded.
async fn join<T>(task: JoinHandle<T>) -> T {
    tokio::time::timeout(BOUND, task)
        .await
        .expect("load task stops within the bound")
        .expect("load task does not panic")
}

/// Requests counted by the load tasks; failures keep their message.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(message) => self.failures.lock().unwrap().push(message),
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// One shared kept-alive client (its pool).
    Pooled,
    /// A new reqwest client, hence a new connection and handshake, per request.
    FreshClient,
    /// A raw TLS connection per request; records the certificate each handshake saw.
    FreshRaw,
}

/// Sends reviews until `stop`; returns (requests sent, distinct certificates seen by raw handshakes).
fn spawn_load(
    mode: Mode,
    id: usize,
    server: &TestServer,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> JoinHandle<(Mode, usize, usize)> {
    let shared = server.client.clone();
    let base = server.base_url.clone();
    let addr = server.addr;
    let ca = server.ca_pem.clone();
    tokio::spawn(async move {
        let mut sent = 0;
        let mut seen: HashSet<CertificateDer<'static>> = HashSet::new();
        while !stop.load(Ordering::Acquire) {
            sent += 1;
            let uid = format!("load-{id}-{sent}");
            let result = match mode {
                Mode::Pooled => post_review(&shared, &base, &uid).await,
                Mode::FreshClient => post_review(&reqwest_trusting(&[&ca]), &base, &uid).await,
                Mode::FreshRaw => match handshake(addr, &[&ca]).await {
                    Ok(stream) => {
                        seen.insert(peer_der(&stream));
                        raw_request(stream, &uid).await.map(|_| ())
                    }
                    Err(e) => Err(format!("uid {uid}: handshake: {}", error_chain(&e))),
                },
            };
            tally.record(result);
        }
        (mode, sent, seen.len())
    })
}

// ---------------------------------------------------------------------------------------------
// 1. Serving certificate rotation under load
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_certificate_rotation_under_load_fails_no_request() {
    let server = TestServer::start_default().await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let modes = [
        Mode::Pooled,
        Mode::Pooled,
        Mode::FreshClient,
        Mode::FreshRaw,
    ];
    let tasks: Vec<_> = modes
        .iter()
        .enumerate()
        .map(|(id, &mode)| spawn_load(mode, id, &server, stop.clone(), tally.clone()))
        .collect();

    // Rotate six times, about every 300 ms, while the load runs (~2 s in all). Every new
    // certificate comes from the same CA, so no client needs new trust.
    let mut issued_all = Vec::new();
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let issued = issue(&server.bundle.ca_cert_pem, &server.bundle.ca_key_pem);
        server.cert.swap(certified(&issued));
        let stream = handshake(server.addr, &[&server.ca_pem])
            .await
            .unwrap_or_else(|e| panic!("round {round}: handshake: {}", error_chain(&e)));
        assert!(
            peer_der(&stream) == der(&issued.cert_pem),
            "round {round}: a handshake after the swap sees the new certificate"
        );
        issued_all.push(issued);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Release);
    let mut report = Vec::new();
    for task in tasks {
        report.push(join(task).await);
    }

    let failures = tally.failures();
    let ok = tally.ok.load(Ordering::Relaxed);
    println!(
        "rotation under load: {ok} ok, {} failed; per task (mode, sent, distinct certs seen): {report:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during rotation:\n{}",
        failures.len(),
        ok + failures.len(),
        failures.join("\n")
    );
    for (mode, sent, _) in &report {
        assert!(*sent > 1, "{mode:?} load task sent requests");
    }

    // After the last swap a fresh handshake sees the last certificate, and the pooled
    // connections (negotiated under older certificates) still answer.
    let last = issued_all.last().expect("rotated at least once");
    let stream = handshake(server.addr, &[&server.ca_pem])
        .await
        .expect("handshake after the last swap");
    assert!(
        peer_der(&stream) == der(&last.cert_pem),
        "a fresh handshake sees the last issued certificate"
    );
    raw_request(stream, "after-rotation")
        .await
        .expect("a request on the new certificate is answered");
    post_review(&server.client, &server.base_url, "pooled-after-rotation")
        .await
        .expect("the kept-alive client still works after rotation");
}

// ---------------------------------------------------------------------------------------------
// 2. CA rotation: caBundle holds the old and the new CA while the serving certificate switches
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_keeps_two_ca_clients_working_and_switches_new_ca_clients() {
    let old = generate_bundle();
    let server = TestServer::start_with_bundle(
        Policy::embedded_default().expect("default policy"),
        old.clone(),
    )
    .await;
    let new_ca = certs::generate_ca(jiff::Timestamp::now()).expect("new CA");
    let new_serving = issue(&new_ca.cert_pem, &new_ca.key_pem);
    let both: &[&str] = &[&old.ca_cert_pem, &new_ca.cert_pem];
    let new_only: &[&str] = &[&new_ca.cert_pem];
    let old_only: &[&str] = &[&old.ca_cert_pem];

    // Before the switch: the two-CA client works (pooled and fresh); a new-CA-only client fails.
    let both_pooled = reqwest_trusting(both);
    post_review(&both_pooled, &server.base_url, "both-pooled-before")
        .await
        .expect("two-CA client before the switch");
    let stream = handshake(server.addr, both)
        .await
        .expect("two-CA handshake before the switch");
    assert!(peer_der(&stream) == der(&old.cert_pem));
    let err = handshake(server.addr, new_only)
        .await
        .expect_err("a client trusting only the new CA must fail before the switch");
    assert_untrusted_issuer(&err);
    let err = post_review(
        &reqwest_trusting(new_only),
        &server.base_url,
        "new-only-before",
    )
    .await
    .expect_err("reqwest trusting only the new CA fails before the switch");
    assert!(err.contains("invalid peer certificate"), "{err}");

    // A connection an old-CA-only client opened before the switch keeps its session.
    let kept_old = handshake(server.addr, old_only)
        .await
        .expect("old-CA handshake before the switch");

    // Load from two-CA clients (pooled and fresh) across the switch.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for id in 0..2 {
        let stop = stop.clone();
        let tally = tally.clone();
        let pooled = both_pooled.clone();
        let base = server.base_url.clone();
        let cas: Vec<String> = both.iter().map(|s| (*s).to_owned()).collect();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while !stop.load(Ordering::Acquire) {
                sent += 1;
                let uid = format!("ca-rotation-{id}-{sent}");
                let result = if id == 0 {
                    post_review(&pooled, &base, &uid).await
                } else {
                    let refs: Vec<&str> = cas.iter().map(String::as_str).collect();
                    post_review(&reqwest_trusting(&refs), &base, &uid).await
                };
                tally.record(result);
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.cert.swap(certified(&new_serving));
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Release);
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(join(task).await);
    }
    let failures = tally.failures();
    println!(
        "CA rotation: {} ok, {} failed, sent per task (pooled, fresh) {sent:?}",
        tally.ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "two-CA clients failed across the switch:\n{}",
        failures.join("\n")
    );
    assert!(sent.iter().all(|&n| n > 1), "both load tasks sent requests");

    // After the switch.
    let stream = handshake(server.addr, new_only)
        .await
        .unwrap_or_else(|e| panic!("new-CA-only client after the switch: {}", error_chain(&e)));
    assert!(peer_der(&stream) == der(&new_serving.cert_pem));
    raw_request(stream, "new-only-raw-after")
        .await
        .expect("new-CA-only client is answered after the switch");
    post_review(
        &reqwest_trusting(new_only),
        &server.base_url,
        "new-only-after",
    )
    .await
    .expect("reqwest trusting only the new CA works after the switch");
    let stream = handshake(server.addr, both)
        .await
        .expect("two-CA handshake after the switch");
    assert!(peer_der(&stream) == der(&new_serving.cert_pem));
    post_review(&both_pooled, &server.base_url, "both-pooled-after")
        .await
        .expect("two-CA pooled client after the switch");
    let err = handshake(server.addr, old_only)
        .await
        .expect_err("a fresh old-CA-only connection fails after the switch");
    assert_untrusted_issuer(&err);
    raw_request(kept_old, "old-kept-after")
        .await
        .expect("a connection opened before the switch keeps working after it");
}

// ---------------------------------------------------------------------------------------------
// 3. File reload through kubelet's `..data` symlink swap
// ---------------------------------------------------------------------------------------------

/// A directory laid out the way kubelet mounts a Secret volume.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
    current: Option<PathBuf>,
}

impl SecretVolume {
    /// `DIR/..<timestamp>/{tls.crt,tls.key}`, `..data -> ..<timestamp>`, and the user-visible
    /// `tls.crt -> ..data/tls.crt`, `tls.key -> ..data/tls.key`.
    fn create(dir: &Path, cert_pem: &str, key_pem: &str) -> SecretVolume {
        let mut volume = SecretVolume {
            dir: dir.to_owned(),
            generation: 0,
            current: None,
        };
        volume.update(cert_pem, key_pem);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name))
                .expect("user-visible symlink");
        }
        volume
    }

    /// kubelet's AtomicWriter: write a new timestamped directory, point `..data_tmp` at it,
    /// rename `..data_tmp` over `..data`, then remove the old directory.
    fn update(&mut self, cert_pem: &str, key_pem: &str) {
        self.generation += 1;
        let name = format!(
            "..2026_11_22_00_00_{:02}.{:04}",
            self.generation, self.generation
        );
        let target = self.dir.join(&name);
        std::fs::create_dir(&target).expect("timestamped dir");
        std::fs::write(target.join("tls.crt"), cert_pem).expect("write tls.crt");
        std::fs::write(target.join("tls.key"), key_pem).expect("write tls.key");
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("..data_tmp symlink");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("rename ..data_tmp over ..data");
        if let Some(old) = self.current.replace(target) {
            std::fs::remove_dir_all(old).expect("remove the old timestamped dir");
        }
    }
}

/// A PEM `PRIVATE KEY` block whose content ("garbage key") is no key at all.
const GARBAGE_PEM_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZSBrZXk=\n-----END PRIVATE KEY-----\n";

/// The certificate a fresh handshake sees now.
async fn served(server: &TestServer) -> CertificateDer<'static> {
    let stream = handshake(server.addr, &[&server.ca_pem])
        .await
        .unwrap_or_else(|e| panic!("handshake: {}", error_chain(&e)));
    peer_der(&stream)
}

/// Waits (bounded) for the next reload report.
async fn next_report(
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<Result<(), String>>,
    what: &str,
) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(5), reports.recv())
        .await
        .unwrap_or_else(|_| panic!("no reload report within 5 s after {what}"))
        .expect("the reload task is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_follows_kubelet_data_symlink_swap_and_keeps_the_last_good_pair() {
    let bundle = generate_bundle();
    let server = TestServer::start_with_bundle(
        Policy::embedded_default().expect("default policy"),
        bundle.clone(),
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut volume = SecretVolume::create(dir.path(), &bundle.cert_pem, &bundle.key_pem);

    let (report_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let reload = tokio::spawn(tls::reload_on_change(
        server.cert.clone(),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        Duration::from_millis(100),
        move |result: Result<(), &tls::TlsError>| {
            let _ = report_tx.send(result.map_err(ToString::to_string));
        },
    ));
    // Nothing changed yet: nothing is reloaded.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        reports.try_recv().is_err(),
        "no reload before the files change"
    );
    assert!(served(&server).await == der(&bundle.cert_pem));

    // kubelet swaps in a renewed certificate.
    let renewed = issue(&bundle.ca_cert_pem, &bundle.ca_key_pem);
    volume.update(&renewed.cert_pem, &renewed.key_pem);
    assert_eq!(
        next_report(&mut reports, "the ..data swap").await,
        Ok(()),
        "the renewed pair is loaded"
    );
    let mut seen_new = false;
    for _ in 0..50 {
        if served(&server).await == der(&renewed.cert_pem) {
            seen_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen_new,
        "a fresh handshake sees the renewed certificate after the ..data swap"
    );

    // A broken pair: a new certificate with a garbage key. Refused; the renewed one keeps serving.
    let next = issue(&bundle.ca_cert_pem, &bundle.ca_key_pem);
    volume.update(&next.cert_pem, "this is not a private key\n");
    let report = next_report(&mut reports, "the garbage-key swap").await;
    let message = report.expect_err("a garbage key is refused");
    assert!(message.starts_with("private key"), "{message}");
    let stream = handshake(server.addr, &[&server.ca_pem])
        .await
        .expect("handshakes still succeed after a refused reload");
    assert!(
        peer_der(&stream) == der(&renewed.cert_pem),
        "the last good certificate keeps serving"
    );
    raw_request(stream, "after-garbage-key")
        .await
        .expect("requests are still answered after a refused reload");

    // Another broken pair: a valid key that belongs to a different certificate.
    let other = issue(&bundle.ca_cert_pem, &bundle.ca_key_pem);
    volume.update(&next.cert_pem, &other.key_pem);
    let message = next_report(&mut reports, "the mismatched-key swap")
        .await
        .expect_err("a key that does not match the certificate is refused");
    assert!(
        message.starts_with("certificate and private key do not match"),
        "{message}"
    );
    assert!(served(&server).await == der(&renewed.cert_pem));

    // A PEM-framed key whose content is garbage is refused too.
    volume.update(&next.cert_pem, GARBAGE_PEM_KEY);
    next_report(&mut reports, "the garbage PEM key swap")
        .await
        .expect_err("a PEM block that holds no key is refused");
    assert!(served(&server).await == der(&renewed.cert_pem));

    // A good pair again is picked up.
    volume.update(&next.cert_pem, &next.key_pem);
    assert_eq!(next_report(&mut reports, "the repaired swap").await, Ok(()));
    let mut seen_next = false;
    for _ in 0..50 {
        if served(&server).await == der(&next.cert_pem) {
            seen_next = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_next, "the repaired pair is served");
    reload.abort();
}

/// Regression: a key file holding a PEM block that is not a key was reported as a
/// certificate/key *mismatch* ("certificate and private key do not match: unexpected error:
/// failed to parse private key as RSA, ECDSA, or EdDSA"), which sends an operator looking for
/// the wrong certificate. `KeyError::Key` ("private key: ...") is the error for a key that
/// cannot be read, and a mismatch should mean two readable halves that do not belong together.
#[test]
fn unreadable_pem_key_is_reported_as_a_key_error_not_a_mismatch() {
    let bundle = generate_bundle();
    let err = tls::certified_key(bundle.cert_pem.as_bytes(), GARBAGE_PEM_KEY.as_bytes())
        .expect_err("a garbage key is refused");
    assert!(
        matches!(err, tls::KeyError::Key(_)),
        "expected KeyError::Key, got {err:?} ({err})"
    );
    // A readable key of another certificate is the mismatch case.
    let other = issue(&bundle.ca_cert_pem, &bundle.ca_key_pem);
    let err = tls::certified_key(bundle.cert_pem.as_bytes(), other.key_pem.as_bytes())
        .expect_err("a key of another certificate is refused");
    assert!(
        matches!(err, tls::KeyError::Mismatch(_)),
        "expected KeyError::Mismatch, got {err:?} ({err})"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. SIGTERM drain of the real binary under load
// ---------------------------------------------------------------------------------------------

/// Kills the child if the test fails before it exits.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A field of a JSON log line: flat, at the top level (`msg` is the message).
fn log_field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line[name].as_str()
}

#[derive(Default)]
struct DrainTally {
    ok_before_sigterm: AtomicUsize,
    ok_after_sigterm: AtomicUsize,
    /// Responses after SIGTERM carrying `Connection: close`.
    close_after_sigterm: AtomicUsize,
    /// Requests sent after `/readyz` said 503, and how many of their answers lacked `Connection: close`.
    sent_while_draining: AtomicUsize,
    no_close_while_draining: AtomicUsize,
    /// Connection refused after SIGTERM (the listener is closed): expected.
    refused_after_sigterm: AtomicUsize,
    /// TCP or TLS setup failed after SIGTERM for another reason (reset from a closing
    /// listener's backlog): the request never reached the server; expected, counted apart.
    connect_failed_after_sigterm: AtomicUsize,
    /// Everything that must not happen: error statuses, requests cut after they were sent,
    /// incomplete bodies, timeouts, and connection failures before SIGTERM.
    failures: Mutex<Vec<String>>,
}

impl DrainTally {
    fn fail(&self, message: String) {
        self.failures.lock().unwrap().push(message);
    }
}

/// `mcpguard serve` under continuous load gets SIGTERM: /readyz turns 503, answers carry
/// `Connection: close`, the process exits 0, and no request that reached it is lost.
/// It found 1–3 requests per run written on freshly accepted connections and closed
/// unanswered at the end of the drain — see
/// `shutdown_answers_a_request_sent_before_it_on_a_fresh_connection` for the mechanism.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = certs::generate(&dev_names(), jiff::Timestamp::now()).expect("certs");
    mcpguard::cmd::cert_files::write_dir(dir.path(), &bundle).expect("write certs");

    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpguard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MCPGUARD_") {
            command.env_remove(key);
        }
    }
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    command
        .args(["--log-format", "json", "serve", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
            "--cluster",
            "off",
            "--drain-seconds",
            "2",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(command.spawn().expect("mcpguard serve starts"));
    let pid = child.0.id().to_string();

    // Collect stderr (JSON log lines) on a thread, for the addresses and for the report.
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let log_writer = log.clone();
    let log_thread = std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log_writer.lock().unwrap().push(line);
        }
    });
    let log_text = |log: &Arc<Mutex<Vec<String>>>| log.lock().unwrap().join("\n");

    let mut addresses = None;
    for _ in 0..600 {
        addresses = log.lock().unwrap().iter().find_map(|line| {
            let json: Value = serde_json::from_str(line).ok()?;
            if log_field(&json, "msg")? != "mcpguard is serving" {
                return None;
            }
            let listen: SocketAddr = log_field(&json, "listen")?.parse().ok()?;
            let probes: SocketAddr = log_field(&json, "probes")?.parse().ok()?;
            Some((listen, probes))
        });
        if addresses.is_some() {
            break;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "mcpguard serve exited early with {status}:\n{}",
                log_text(&log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (listen, probes) = addresses.unwrap_or_else(|| {
        panic!(
            "no \"mcpguard is serving\" log line within the bound:\n{}",
            log_text(&log)
        )
    });
    let base = format!("https://{listen}");
    let readyz = format!("http://{probes}/readyz");

    // Continuous load for the whole test: four kept-alive clients.
    let stop = Arc::new(AtomicBool::new(false));
    let sigterm_sent = Arc::new(AtomicBool::new(false));
    let draining_seen = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(DrainTally::default());
    let mut tasks = Vec::new();
    for id in 0..4 {
        let client = reqwest_trusting(&[&bundle.ca_cert_pem]);
        let base = base.clone();
        let stop = stop.clone();
        let sigterm_sent = sigterm_sent.clone();
        let draining_seen = draining_seen.clone();
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while !stop.load(Ordering::Acquire) {
                sent += 1;
                let uid = format!("drain-{id}-{sent}");
                let while_draining = draining_seen.load(Ordering::Acquire);
                if while_draining {
                    tally.sent_while_draining.fetch_add(1, Ordering::Relaxed);
                }
                let result = client
                    .post(format!("{base}/validate"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(review_body(&uid))
                    .send()
                    .await;
                let after_sigterm = sigterm_sent.load(Ordering::Acquire);
                match result {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let close = response
                            .headers()
                            .get(reqwest::header::CONNECTION)
                            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                        match response.bytes().await {
                            Ok(body) => match check_answer(status, &body, &uid) {
                                Ok(()) => {
                                    if after_sigterm {
                                        tally.ok_after_sigterm.fetch_add(1, Ordering::Relaxed);
                                    } else {
                                        tally.ok_before_sigterm.fetch_add(1, Ordering::Relaxed);
                                    }
                                    if after_sigterm && close {
                                        tally.close_after_sigterm.fetch_add(1, Ordering::Relaxed);
                                    }
                                    if while_draining && !close {
                                        tally
                                            .no_close_while_draining
                                            .fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                Err(message) => tally.fail(format!("error answer: {message}")),
                            },
                            Err(e) => tally.fail(format!(
                                "uid {uid}: body cut after headers (status {status}): {}",
                                error_chain(&e)
                            )),
                        }
                    }
                    Err(e) => {
                        let chain = error_chain(&e);
                        if e.is_connect() && after_sigterm {
                            if chain.contains("Connection refused") {
                                tally.refused_after_sigterm.fetch_add(1, Ordering::Relaxed);
                            } else {
                                tally
                                    .connect_failed_after_sigterm
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                            // The server is going away: do not spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else {
                            let when = if after_sigterm {
                                "after SIGTERM"
                            } else {
                                "before SIGTERM"
                            };
                            tally.fail(format!("uid {uid} ({when}): {chain}"));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            sent
        }));
    }

    // Wait until the load is flowing, and the replica is ready.
    for _ in 0..600 {
        if tally.ok_before_sigterm.load(Ordering::Relaxed) >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tally.ok_before_sigterm.load(Ordering::Relaxed) >= 20,
        "load flows before SIGTERM; failures: {:?}",
        tally.failures.lock().unwrap()
    );
    let probe = plain_client();
    let before = probe.get(&readyz).send().await.expect("GET /readyz");
    assert_eq!(before.status().as_u16(), 200, "ready before SIGTERM");

    sigterm_sent.store(true, Ordering::Release);
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "kill -TERM {pid}");

    // While draining, /readyz says 503 (the probe port stays open through the drain).
    let mut not_ready = None;
    for _ in 0..100 {
        if let Ok(response) = probe.get(&readyz).send().await {
            let status = response.status().as_u16();
            if status == 503 {
                not_ready = Some(response.text().await.unwrap_or_default());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        not_ready.as_deref(),
        Some("not ready"),
        "/readyz turns 503 after SIGTERM, while draining"
    );
    draining_seen.store(true, Ordering::Release);

    // The process exits 0, within the bound (drain 2 s + in-flight grace).
    let mut status = None;
    for _ in 0..600 {
        if let Some(exit) = child.0.try_wait().expect("try_wait") {
            status = Some(exit);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the load observe the closed port for a moment, then stop it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Release);
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(join(task).await);
    }
    let status = status.unwrap_or_else(|| {
        panic!(
            "mcpguard serve did not exit within 30 s of SIGTERM:\n{}",
            log_text(&log)
        )
    });
    let _ = log_thread.join();
    let failures = tally.failures.lock().unwrap().clone();
    let counts = format!(
        "ok before SIGTERM {}, ok after SIGTERM {} ({} with Connection: close), sent while /readyz was 503 {} ({} answered without Connection: close), refused after SIGTERM {}, other connect failures after SIGTERM {}, failures {}; sent per client {sent:?}",
        tally.ok_before_sigterm.load(Ordering::Relaxed),
        tally.ok_after_sigterm.load(Ordering::Relaxed),
        tally.close_after_sigterm.load(Ordering::Relaxed),
        tally.sent_while_draining.load(Ordering::Relaxed),
        tally.no_close_while_draining.load(Ordering::Relaxed),
        tally.refused_after_sigterm.load(Ordering::Relaxed),
        tally.connect_failed_after_sigterm.load(Ordering::Relaxed),
        failures.len(),
    );
    println!("SIGTERM drain: {counts}");

    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM; log:\n{}",
        log_text(&log)
    );
    let messages: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let json: Value = serde_json::from_str(line).ok()?;
            log_field(&json, "msg").map(str::to_owned)
        })
        .collect();
    for expected in ["shutting down: not ready, draining", "stopped"] {
        assert!(
            messages.iter().any(|m| m == expected),
            "log has {expected:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "requests failed around SIGTERM ({counts}):\n{}",
        failures.join("\n")
    );
    assert!(
        tally.ok_after_sigterm.load(Ordering::Relaxed) > 0
            && tally.close_after_sigterm.load(Ordering::Relaxed) > 0,
        "requests were answered during the drain, with Connection: close ({counts})"
    );
    assert_eq!(
        tally.no_close_while_draining.load(Ordering::Relaxed),
        0,
        "every answer to a request sent after /readyz turned 503 carries Connection: close ({counts})"
    );
}

/// Regression: once shutdown started, `serve_tls` called hyper's `graceful_shutdown` on every
/// connection at once; hyper closes a connection that has not read anything yet
/// (`has_initial_read_write_state`) without reading it. A client that completed its
/// handshake and had already written its whole request before shutdown was signalled gets no
/// answer ("connection closed before message completed"): kube-apiserver does not retry a
/// webhook call, so with `failurePolicy: Fail` the admission fails. Under load this happened
/// at the end of every drain, because during the drain each request opens a fresh connection
/// (`Connection: close`) — `sigterm_drains_in_flight_requests_and_exits_zero` saw it with the
/// real binary. Deterministic here: on a current-thread runtime the server has not polled
/// the socket when the stop signal arrives.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_answers_a_request_sent_before_it_on_a_fresh_connection() {
    let mut server = TestServer::start_default().await;
    server.begin_drain();
    let stream = server.raw_connect().await;
    // Let the server finish its side of the handshake and wait for the first request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut reader = BufReader::new(stream);
    let body = review_body("sent-before-shutdown");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = reader.get_mut();
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body).await.expect("write body");
    stream.flush().await.expect("flush");
    // The request is on the wire; now the server stops accepting and drains.
    let (_, response) = tokio::time::timeout(BOUND, async {
        tokio::join!(server.stop(), raw_read_response(&mut reader))
    })
    .await
    .expect("shutdown finishes within the bound");
    let response = response.unwrap_or_else(|e| {
        panic!(
            "a request written before shutdown got no answer: {}",
            error_chain(&e)
        )
    });
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    check_answer(response.status, &response.body, "sent-before-shutdown")
        .expect("the answer is our AdmissionReview");
}
