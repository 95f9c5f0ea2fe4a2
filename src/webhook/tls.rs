//! TLS for the webhook: rustls with the ring provider, TLS 1.2 and 1.3, HTTP/1.1 only
//! (kube-apiserver speaks HTTP/1.1 to webhooks), a certificate that can be swapped
//! while connections stay open, and optional client-certificate verification
//! (`--client-ca`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

pub use mcpguard_core::tls_keys::{KeyError, certified_key, provider};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("client CA: {0}")]
    ClientCa(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub fn certified_key_from_files(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })
    };
    Ok(certified_key(&read(cert)?, &read(key)?)?)
}

/// Serves whatever certificate was stored last; new handshakes see a swap at once, open
/// connections keep the session they negotiated.
/// Empty until a first certificate arrives (self-managed installs start that way): until
/// then handshakes fail and the replica is not ready.
#[derive(Debug)]
pub struct SwappableCert {
    current: ArcSwapOption<CertifiedKey>,
    /// Set to the serving certificate's notAfter (Unix seconds) whenever one is stored, by
    /// whichever path stored it (files at start, the file reload, the self-managed leader).
    not_after: std::sync::OnceLock<prometheus_client::metrics::gauge::Gauge>,
}

impl SwappableCert {
    pub fn new(initial: CertifiedKey) -> Arc<Self> {
        Arc::new(SwappableCert {
            current: ArcSwapOption::from_pointee(initial),
            not_after: std::sync::OnceLock::new(),
        })
    }

    pub fn empty() -> Arc<Self> {
        Arc::new(SwappableCert {
            current: ArcSwapOption::empty(),
            not_after: std::sync::OnceLock::new(),
        })
    }

    pub fn swap(&self, next: CertifiedKey) {
        self.set_not_after(&next);
        self.current.store(Some(Arc::new(next)));
    }

    /// From now on `gauge` holds the notAfter of the certificate being served (it is set at
    /// once if one is loaded). The first gauge given is kept.
    pub fn report_not_after_to(&self, gauge: prometheus_client::metrics::gauge::Gauge) {
        if self.not_after.set(gauge).is_ok()
            && let Some(current) = self.current()
        {
            self.set_not_after(&current);
        }
    }

    fn set_not_after(&self, certified: &CertifiedKey) {
        if let (Some(gauge), Some(not_after)) = (self.not_after.get(), not_after(certified)) {
            gauge.set(not_after);
        }
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }
}

/// The notAfter (Unix seconds) of the leaf certificate of `certified`; `None` if it does not
/// parse (rustls accepted it, so that would be a certificate x509-parser cannot read).
pub fn not_after(certified: &CertifiedKey) -> Option<i64> {
    let leaf = certified.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

pub fn server_config(cert: Arc<SwappableCert>) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(cert, None)
}

/// [`server_config`] that asks clients for a certificate and verifies any presented one
/// with `verifier` (see [`client_verifier`]); the certificate itself stays swappable.
pub fn server_config_verifying_clients(
    cert: Arc<SwappableCert>,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(cert, Some(verifier))
}

fn build_server_config(
    cert: Arc<SwappableCert>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Verifies client certificates against the CA certificate(s) in `ca_pem` (PEM, one or
/// more: during a CA rotation both). A presented certificate that does not chain to one of
/// them fails the handshake; a client that presents none still completes it, and the
/// server refuses its requests with 401 (`server::ClientCertificates::Required`), which
/// kube-apiserver reports with the reason instead of a bare TLS alert.
pub fn client_verifier(ca_pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TlsError::ClientCa(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::ClientCa(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError::ClientCa("no PEM certificate found".into()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::ClientCa(e.to_string()))
}

/// [`client_verifier`] of the CA file at `path`.
pub fn client_verifier_from_file(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    client_verifier(&pem).map_err(|err| TlsError::File {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

/// Re-reads the certificate files every `interval` and swaps in a changed, valid pair.
/// Polling by path follows Kubernetes' `..data` symlink swap, which inotify on the
/// file itself misses. A bad pair is logged and the last good one keeps serving.
pub async fn reload_on_change(
    cert: Arc<SwappableCert>,
    cert_path: PathBuf,
    key_path: PathBuf,
    interval: Duration,
    on_reload: impl Fn(Result<(), &TlsError>) + Send + 'static,
) {
    let fingerprint = |cert_path: &Path, key_path: &Path| -> Option<(Vec<u8>, Vec<u8>)> {
        Some((
            std::fs::read(cert_path).ok()?,
            std::fs::read(key_path).ok()?,
        ))
    };
    let mut last = fingerprint(&cert_path, &key_path);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(current) = fingerprint(&cert_path, &key_path) else {
            continue;
        };
        if Some(&current) == last.as_ref() {
            continue;
        }
        match certified_key(&current.0, &current.1).map_err(TlsError::from) {
            Ok(next) => {
                cert.swap(next);
                tracing::info!(cert = %cert_path.display(), "serving certificate reloaded");
                on_reload(Ok(()));
            }
            Err(err) => {
                tracing::error!(cert = %cert_path.display(), error = %err, "new certificate refused; the previous one keeps serving");
                on_reload(Err(&err));
            }
        }
        last = Some(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpguard_core::certs;
    use prometheus_client::metrics::gauge::Gauge;

    fn certified_at(now: jiff::Timestamp) -> CertifiedKey {
        let bundle = certs::generate(&["mcpguard.test".to_owned()], now).expect("certificates");
        certified_key(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes()).expect("a pair")
    }

    #[test]
    fn the_expiry_gauge_follows_every_certificate_stored() {
        provider();
        let first_day: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("a timestamp");
        let later: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().expect("a timestamp");
        let expected = |now: jiff::Timestamp| (now + certs::SERVING_VALIDITY).as_second();

        let cert = SwappableCert::empty();
        let gauge = Gauge::default();
        cert.report_not_after_to(gauge.clone());
        assert_eq!(gauge.get(), 0, "nothing served yet");
        cert.swap(certified_at(first_day));
        assert_eq!(gauge.get(), expected(first_day));
        cert.swap(certified_at(later));
        assert_eq!(gauge.get(), expected(later));

        // Attached after the first load: set at once.
        let loaded = SwappableCert::new(certified_at(first_day));
        let gauge = Gauge::default();
        loaded.report_not_after_to(gauge.clone());
        assert_eq!(gauge.get(), expected(first_day));
    }
}
