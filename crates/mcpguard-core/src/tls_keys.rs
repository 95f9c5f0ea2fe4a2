//! A serving certificate and key parsed into what rustls serves, and the one process-wide
//! crypto provider (ring). Pure: bytes in, a key or an error out. The webhook serves the
//! result; the rotation planner uses it to tell a usable pair from a broken one.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("private key: {0}")]
    Key(String),
    #[error("certificate and private key do not match: {0}")]
    Mismatch(String),
}

/// The process-wide provider. Installing it once keeps any library that asks for "the
/// default provider" on ring too.
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return installed.clone();
    }
    // A concurrent installer may win the race; either way ring is what ends up installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Parses a PEM chain and key into a key rustls can serve.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, KeyError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| KeyError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(KeyError::Certificate("no PEM certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| KeyError::Key(e.to_string()))?;
    // Loading the key on its own first tells an unreadable key from a mismatched one.
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| KeyError::Mismatch(e.to_string()))?;
    Ok(certified)
}
