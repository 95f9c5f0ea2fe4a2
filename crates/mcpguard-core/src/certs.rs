//! Certificates: an rcgen CA and a serving certificate signed by it.
//!
//! The caller passes `now`, so generation is deterministic in its validity window and
//! testable; only the key material is random.

use std::net::IpAddr;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub const CA_FILE: &str = "ca.crt";
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

/// CA lifetime; the serving certificate is renewed well inside it.
pub const CA_VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 5 * 24);
pub const SERVING_VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 24);
/// How far back a certificate's validity starts, for clocks a little behind ours.
const BACKDATE: SignedDuration = SignedDuration::from_mins(5);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid subject alternative name {0:?}")]
    InvalidName(String),
}

/// A CA and a serving certificate it signed, all PEM.
#[derive(Clone)]
pub struct CertBundle {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertBundle {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertBundle").finish_non_exhaustive()
    }
}

/// The names a webhook Service is reached by, as kube-apiserver resolves it.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// The names of the `serve --dev` certificate.
pub fn dev_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

/// A CA certificate and its key (PEM).
#[derive(Clone)]
pub struct CaMaterial {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A serving certificate and its key (PEM).
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a fresh CA and a serving certificate for `names` (DNS names or IP addresses).
pub fn generate(names: &[String], now: Timestamp) -> Result<CertBundle, CertError> {
    let ca = generate_ca(now)?;
    let issued = issue_serving(&ca.cert_pem, &ca.key_pem, names, now)?;
    Ok(CertBundle {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    })
}

/// A self-signed CA valid from `now` (minus clock-skew slack) for [`CA_VALIDITY`].
pub fn generate_ca(now: Timestamp) -> Result<CaMaterial, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("mcpguard CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_rcgen_time(now - BACKDATE)?;
    params.not_after = to_rcgen_time(now + CA_VALIDITY)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CaMaterial {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A serving certificate for `names`, signed by the given CA, valid for [`SERVING_VALIDITY`].
pub fn issue_serving(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    names: &[String],
    now: Timestamp,
) -> Result<Issued, CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    let mut params = CertificateParams::default();
    params.distinguished_name =
        distinguished_name(names.first().map_or("mcpguard", String::as_str));
    params.subject_alt_names = names
        .iter()
        .map(|name| san(name))
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = to_rcgen_time(now - BACKDATE)?;
    params.not_after = to_rcgen_time(now + SERVING_VALIDITY)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "mcpguard");
    name.push(DnType::CommonName, common_name);
    name
}

fn san(name: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    name.to_owned()
        .try_into()
        .map(SanType::DnsName)
        .map_err(|_| CertError::InvalidName(name.to_owned()))
}

// --- the `time` crate's edge ----------------------------------------------------------------
//
// rcgen takes validity dates as the `time` crate's `OffsetDateTime`, and x509-parser's
// `ASN1Time` wraps one (read here through its Unix seconds); everything else in mcpguard
// keeps instants as `jiff::Timestamp`. These two functions are the only crossings.

/// `at` as rcgen's `not_before` / `not_after` take it (rcgen drops the fraction itself).
/// Every `Timestamp` fits (jiff's range, about years -9999 to 9999, lies within `time`'s).
fn to_rcgen_time(at: Timestamp) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond())
        .map_err(|_| CertError::Generate(rcgen::Error::Time))
}

/// A certificate's validity date as x509-parser reads it. The X.509 "no expiry" date,
/// 9999-12-31T23:59:59Z, is past jiff's last instant (9999-12-30T22:00Z): it reads as that
/// instant, still later than any `now`.
pub(crate) fn from_x509_time(at: x509_parser::time::ASN1Time) -> Timestamp {
    let second = at.timestamp();
    Timestamp::from_second(second).unwrap_or(if second > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

#[cfg(test)]
mod tests;
