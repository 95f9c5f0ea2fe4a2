//! `mcpguard certs generate` and `mcpguard certs inject` as a user runs them: the real binary,
//! from the crate root, asserting exit codes, exact output lines, exact error messages, the
//! files written and what a TLS client makes of them.

mod common;

mod cli_support;

use cli_support::{assert_exit, run, stderr, stdout};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use common::{assert_untrusted_issuer, error_chain, raw_tls_connect, rustls_error};
use mcpguard::webhook::tls;
use mcpguard_core::certs::{self, CA_VALIDITY, SERVING_VALIDITY};
use mcpguard_core::rotation::{CertInfo, cert_info};
use pretty_assertions::assert_eq;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const WEBHOOKS: &str = "webhook-manifests/base/webhooks.yaml";

/// `certs generate --service svc --namespace ns --out DIR [extra args]`, asserted to succeed.
fn generate(dir: &Path, extra: &[&str]) -> Output {
    let out = dir.to_str().expect("temp dir path is UTF-8");
    let mut args = vec![
        "certs",
        "generate",
        "--service",
        "svc",
        "--namespace",
        "ns",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert_exit(&output, 0);
    assert_eq!(
        stderr(&output),
        "",
        "certs generate writes nothing to stderr"
    );
    output
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn info(path: &Path) -> CertInfo {
    cert_info(&read(path))
        .unwrap_or_else(|| panic!("{} is a PEM certificate x509-parser reads", path.display()))
}

fn svc_names() -> Vec<String> {
    ["svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"]
        .map(String::from)
        .to_vec()
}

#[test]
fn generate_writes_ca_serving_cert_and_owner_only_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("certs");
    let output = generate(&out, &[]);
    let d = out.display();
    assert_eq!(
        stdout(&output),
        format!(
            "wrote {d}/ca.crt, {d}/tls.crt and {d}/tls.key for svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local\n"
        )
    );

    // Exactly the three files: the CA key is never written to disk, nor any temporary file.
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir exists")
        .map(|e| e.expect("dir entry").file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["ca.crt", "tls.crt", "tls.key"]);

    let mode = |name: &str| {
        std::fs::metadata(out.join(name))
            .expect("file exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        format!("{:o}", mode("tls.key")),
        "600",
        "tls.key is owner-only"
    );

    let serving = info(&out.join("tls.crt"));
    assert_eq!(serving.dns_names, svc_names());
    assert_eq!(
        serving.not_after.duration_since(serving.not_before),
        SERVING_VALIDITY + jiff::SignedDuration::from_mins(5),
        "serving validity is SERVING_VALIDITY, backdated 5 minutes for clock skew"
    );
    let ca = info(&out.join("ca.crt"));
    assert_eq!(
        ca.not_after.duration_since(ca.not_before),
        CA_VALIDITY + jiff::SignedDuration::from_mins(5),
        "CA validity is CA_VALIDITY, backdated 5 minutes for clock skew"
    );
    assert!(
        ca.not_after > serving.not_after,
        "the serving certificate expires inside the CA's lifetime"
    );
    let now = jiff::Timestamp::now();
    assert!(serving.not_before < now && now < serving.not_after);

    // The key is a PEM private key that matches the certificate.
    tls::certified_key_from_files(&out.join("tls.crt"), &out.join("tls.key"))
        .expect("tls.crt and tls.key form a pair rustls can serve");
}

#[test]
fn generate_with_san_adds_the_extra_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = generate(dir.path(), &["--san", "extra.example"]);
    let d = dir.path().display();
    assert_eq!(
        stdout(&output),
        format!(
            "wrote {d}/ca.crt, {d}/tls.crt and {d}/tls.key for svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local, extra.example\n"
        )
    );
    let mut expected = svc_names();
    expected.push("extra.example".into());
    assert_eq!(info(&dir.path().join("tls.crt")).dns_names, expected);
}

#[test]
fn generate_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    let first = read(&dir.path().join("ca.crt"));
    let out = dir.path().to_str().expect("UTF-8 path");
    let refused = run(&[
        "certs",
        "generate",
        "--service",
        "svc",
        "--namespace",
        "ns",
        "--out",
        out,
    ]);
    assert_exit(&refused, 1);
    assert_eq!(stdout(&refused), "");
    assert_eq!(
        stderr(&refused),
        format!(
            "mcpguard certs generate: {out}/ca.crt exists; use --force to replace the certificates in {out}\n"
        )
    );
    assert_eq!(
        read(&dir.path().join("ca.crt")),
        first,
        "nothing was replaced"
    );
}

#[test]
fn generate_prints_each_path_once_joined_when_out_ends_in_a_slash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = format!("{}/gen/", dir.path().display());
    let output = generate(Path::new(&out), &[]);
    assert_eq!(
        stdout(&output),
        format!(
            "wrote {out}ca.crt, {out}tls.crt and {out}tls.key for svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local\n"
        )
    );
}

#[test]
fn generate_with_force_regenerates_into_an_existing_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    let first = read(&dir.path().join("ca.crt"));
    generate(dir.path(), &["--san", "second.example", "--force"]);
    assert_ne!(
        read(&dir.path().join("ca.crt")),
        first,
        "a new CA is written"
    );
    let mode = std::fs::metadata(dir.path().join("tls.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(format!("{mode:o}"), "600");
    assert!(
        info(&dir.path().join("tls.crt"))
            .dns_names
            .contains(&"second.example".to_owned())
    );
}

/// Serves `cert`/`key` over TLS on loopback; every accepted connection completes its handshake
/// (or fails it) and is then dropped.
async fn serve_files(cert: &Path, key: &Path) -> std::net::SocketAddr {
    let certified = tls::certified_key_from_files(cert, key).expect("generated pair loads");
    let config = tls::server_config(tls::SwappableCert::new(certified)).expect("server config");
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    // Hold the connection briefly so the client sees a completed handshake.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    drop(stream);
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn generated_certificate_verifies_for_the_service_name_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    let ca = read(&dir.path().join("ca.crt"));
    let addr = serve_files(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).await;

    for name in svc_names() {
        let stream = raw_tls_connect(addr, &name, &ca).await.unwrap_or_else(|e| {
            panic!(
                "handshake for {name:?} trusting ca.crt: {}",
                error_chain(&e)
            )
        });
        let (_, connection) = stream.get_ref();
        assert_eq!(connection.alpn_protocol(), Some(&b"http/1.1"[..]));
        let served = connection
            .peer_certificates()
            .expect("server sent its chain")[0]
            .clone();
        let on_disk = rustls::pki_types::CertificateDer::from_pem_slice(
            read(&dir.path().join("tls.crt")).as_bytes(),
        )
        .expect("tls.crt is PEM");
        assert_eq!(served, on_disk);
    }

    let err = raw_tls_connect(addr, "other.example", &ca)
        .await
        .expect_err("a name not on the certificate must fail verification");
    let rustls_err = rustls_error(&err);
    assert!(
        matches!(
            rustls_err,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "expected NotValidForName, got {rustls_err:?}"
    );

    // And a client trusting another CA refuses the certificate outright.
    let other_ca = certs::generate_ca(jiff::Timestamp::now()).expect("CA");
    let err = raw_tls_connect(addr, "svc.ns.svc", &other_ca.cert_pem)
        .await
        .expect_err("an untrusted issuer must fail verification");
    assert_untrusted_issuer(&err);
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("output is YAML: {e}\n{text}"))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `caBundle` of every webhook, base64-decoded.
fn ca_bundles(configuration: &Value) -> Vec<Vec<u8>> {
    configuration["webhooks"]
        .as_array()
        .expect("webhooks is a list")
        .iter()
        .map(|webhook| {
            let encoded = webhook["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or_else(|| panic!("caBundle is a string in {webhook}"));
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("caBundle is standard base64")
        })
        .collect()
}

fn without_ca_bundles(configuration: &Value) -> Value {
    let mut copy = configuration.clone();
    for webhook in copy["webhooks"].as_array_mut().expect("webhooks") {
        webhook["clientConfig"]
            .as_object_mut()
            .expect("clientConfig")
            .remove("caBundle");
    }
    copy
}

#[test]
fn inject_sets_ca_bundle_on_both_webhook_configurations() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    let ca_path = dir.path().join("ca.crt");
    let ca_bytes = std::fs::read(&ca_path).expect("ca.crt");
    let output = run(&[
        "certs",
        "inject",
        "--ca",
        ca_path.to_str().unwrap(),
        WEBHOOKS,
    ]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let documents = yaml_documents(&stdout(&output));
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
    let input = yaml_documents(&read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(WEBHOOKS)));
    assert_eq!(input.len(), 2);
    for (injected, original) in documents.iter().zip(&input) {
        let bundles = ca_bundles(injected);
        assert_eq!(bundles.len(), 1, "one webhook per configuration");
        for bundle in bundles {
            assert_eq!(
                bundle, ca_bytes,
                "caBundle decodes to exactly the CA file's bytes"
            );
        }
        assert_eq!(
            without_ca_bundles(injected),
            *original,
            "inject changes nothing but caBundle"
        );
    }
}

#[test]
fn inject_with_a_two_ca_bundle_keeps_both_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = jiff::Timestamp::now();
    let old = certs::generate_ca(now).expect("CA");
    let new = certs::generate_ca(now).expect("CA");
    let bundle = mcpguard_core::rotation::join_bundle(&[&old.cert_pem, &new.cert_pem]);
    let ca_path = dir.path().join("bundle.crt");
    std::fs::write(&ca_path, &bundle).expect("write bundle");
    let output = run(&[
        "certs",
        "inject",
        "--ca",
        ca_path.to_str().unwrap(),
        WEBHOOKS,
    ]);
    assert_exit(&output, 0);
    for document in yaml_documents(&stdout(&output)) {
        for decoded in ca_bundles(&document) {
            assert_eq!(String::from_utf8(decoded).unwrap(), bundle);
        }
    }
}

#[test]
fn inject_refuses_a_ca_file_that_is_not_a_pem_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    // A PEM private key is PEM, but not a certificate.
    let key = dir.path().join("tls.key");
    let output = run(&["certs", "inject", "--ca", key.to_str().unwrap(), WEBHOOKS]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard certs inject: {}: not a PEM certificate\n",
            key.display()
        )
    );

    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let output = run(&[
        "certs",
        "inject",
        "--ca",
        garbage.to_str().unwrap(),
        WEBHOOKS,
    ]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard certs inject: {}: not a PEM certificate\n",
            garbage.display()
        )
    );
}

#[test]
fn inject_refuses_manifests_without_webhook_configurations() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path(), &[]);
    let ca = dir.path().join("ca.crt");
    let output = run(&[
        "certs",
        "inject",
        "--ca",
        ca.to_str().unwrap(),
        "webhook-manifests/base/service.yaml",
    ]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "mcpguard certs inject: no MutatingWebhookConfiguration or ValidatingWebhookConfiguration in the input\n"
    );
}
