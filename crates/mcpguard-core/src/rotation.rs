//! Self-managed certificates: what the leader should write next, as a pure function of
//! what the Secret and the webhook configurations hold now and of `now`.
//!
//! Renewal never breaks a connection or a handshake, in this order:
//! 1. publish the next CA next to the current one in `caBundle` (`ca-published`);
//! 2. after longer than kubelet's Secret sync, switch the serving certificate to one the
//!    next CA signed (`serving-switched`); replicas pick it up as their volume updates;
//! 3. after that wait again, drop the old CA from `caBundle` (`stable`).
//!
//! A serving certificate nearing expiry under a CA that is not is simply reissued by
//! the same CA: `caBundle` does not change, so no wait is needed.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

use crate::certs::{self, CertError};

pub const KEY_CA_CERT: &str = "ca.crt";
pub const KEY_CA_KEY: &str = "ca.key";
pub const KEY_TLS_CERT: &str = "tls.crt";
pub const KEY_TLS_KEY: &str = "tls.key";
pub const KEY_NEXT_CA_CERT: &str = "next-ca.crt";
pub const KEY_NEXT_CA_KEY: &str = "next-ca.key";
pub const KEY_PREVIOUS_CA_CERT: &str = "previous-ca.crt";
pub const ANNOTATION_PHASE: &str = "mcpguard.dev/rotation-phase";
pub const ANNOTATION_SINCE: &str = "mcpguard.dev/rotation-since";

#[derive(Clone, Copy, Debug)]
pub struct RotationSettings {
    /// Renew the serving certificate this long before it expires.
    pub serving_renew_before: SignedDuration,
    /// Start a CA rotation this long before the CA expires.
    pub ca_renew_before: SignedDuration,
    /// Longer than kubelet's Secret sync (sync period + cache TTL) and the API servers'
    /// webhook-configuration refresh.
    pub propagation_wait: SignedDuration,
}

impl Default for RotationSettings {
    fn default() -> Self {
        RotationSettings {
            serving_renew_before: SignedDuration::from_hours(30 * 24),
            ca_renew_before: SignedDuration::from_hours(180 * 24),
            propagation_wait: SignedDuration::from_mins(3),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Stable,
    CaPublished,
    ServingSwitched,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::CaPublished => "ca-published",
            Phase::ServingSwitched => "serving-switched",
        }
    }

    fn parse(value: Option<&str>) -> Phase {
        match value {
            Some("ca-published") => Phase::CaPublished,
            Some("serving-switched") => Phase::ServingSwitched,
            _ => Phase::Stable,
        }
    }
}

/// The certificate Secret as the leader reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    pub data: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// What to write. `None` fields need no write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub secret: Option<StoredState>,
    /// The `caBundle` both webhook configurations must carry (PEM).
    pub ca_bundle: String,
    /// Why, for the log.
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Generate(#[from] CertError),
    #[error("stored key cannot sign: {0}")]
    Key(String),
}

/// The validity window and names of a PEM certificate; `None` if it does not parse.
#[derive(Clone, Debug, PartialEq)]
pub struct CertInfo {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub dns_names: Vec<String>,
}

pub fn cert_info(pem: &str) -> Option<CertInfo> {
    let (_, pem) = parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertInfo {
        not_before: certs::from_x509_time(validity.not_before),
        not_after: certs::from_x509_time(validity.not_after),
        dns_names,
    })
}

/// Decides the next step. Idempotent: applied to its own output at the same `now`, it asks
/// for no further Secret write.
pub fn plan(
    stored: &StoredState,
    names: &[String],
    now: Timestamp,
    settings: RotationSettings,
) -> Result<Plan, RotationError> {
    let get = |key: &str| stored.data.get(key).filter(|v| !v.is_empty()).cloned();
    let (Some(ca_cert), Some(ca_key), Some(tls_cert), Some(tls_key)) = (
        get(KEY_CA_CERT),
        get(KEY_CA_KEY),
        get(KEY_TLS_CERT),
        get(KEY_TLS_KEY),
    ) else {
        return fresh(names, now, "no certificate stored yet");
    };
    let (Some(ca), Some(serving)) = (cert_info(&ca_cert), cert_info(&tls_cert)) else {
        return fresh(names, now, "stored certificate does not parse");
    };
    if !ca_key_matches(&ca_cert, &ca_key) {
        return fresh(names, now, "stored CA key is unusable");
    }
    let serving_usable =
        crate::tls_keys::certified_key(tls_cert.as_bytes(), tls_key.as_bytes()).is_ok();
    if ca.not_after <= now {
        // Too late for a seamless rotation: nothing trusts the old CA any more anyway.
        return fresh(names, now, "CA expired");
    }
    let phase = Phase::parse(stored.annotations.get(ANNOTATION_PHASE).map(String::as_str));
    let since = stored
        .annotations
        .get(ANNOTATION_SINCE)
        .and_then(|s| crate::rfc3339::parse(s));
    let since = match (phase, since) {
        (Phase::Stable, _) => now,
        (_, Some(since)) => since,
        (_, None) => {
            // Without a start time the wait could never end: start it now, and record that.
            let mut restamped = stored.clone();
            stamp(&mut restamped, phase, now);
            let bundle = match phase {
                Phase::CaPublished => {
                    join_bundle(&[&ca_cert, &get(KEY_NEXT_CA_CERT).unwrap_or_default()])
                }
                _ => join_bundle(&[&get(KEY_PREVIOUS_CA_CERT).unwrap_or_default(), &ca_cert]),
            };
            return Ok(Plan {
                secret: Some(restamped),
                ca_bundle: bundle,
                reason: "rotation start time missing: waiting from now",
            });
        }
    };
    let waited = now.duration_since(since) >= settings.propagation_wait;
    match phase {
        Phase::CaPublished => {
            let (Some(next_cert), Some(next_key)) = (get(KEY_NEXT_CA_CERT), get(KEY_NEXT_CA_KEY))
            else {
                return fresh(names, now, "CA rotation lost its next CA");
            };
            let bundle = join_bundle(&[&ca_cert, &next_cert]);
            if !waited {
                return Ok(Plan {
                    secret: None,
                    ca_bundle: bundle,
                    reason: "waiting for the next CA to propagate",
                });
            }
            let issued = certs::issue_serving(&next_cert, &next_key, names, now)?;
            let mut next = StoredState::default();
            next.data.insert(KEY_CA_CERT.into(), next_cert);
            next.data.insert(KEY_CA_KEY.into(), next_key);
            next.data.insert(KEY_TLS_CERT.into(), issued.cert_pem);
            next.data.insert(KEY_TLS_KEY.into(), issued.key_pem);
            next.data.insert(KEY_PREVIOUS_CA_CERT.into(), ca_cert);
            stamp(&mut next, Phase::ServingSwitched, now);
            Ok(Plan {
                secret: Some(next),
                ca_bundle: bundle,
                reason: "switching the serving certificate to the next CA",
            })
        }
        Phase::ServingSwitched => {
            let previous = get(KEY_PREVIOUS_CA_CERT).unwrap_or_default();
            if !waited {
                return Ok(Plan {
                    secret: None,
                    ca_bundle: join_bundle(&[&previous, &ca_cert]),
                    reason: "waiting for every replica to serve the new certificate",
                });
            }
            let mut next = stored.clone();
            next.data.remove(KEY_PREVIOUS_CA_CERT);
            stamp(&mut next, Phase::Stable, now);
            Ok(Plan {
                secret: Some(next),
                ca_bundle: join_bundle(&[&ca_cert]),
                reason: "dropping the previous CA",
            })
        }
        Phase::Stable if ca.not_after.duration_since(now) <= settings.ca_renew_before => {
            let next_ca = certs::generate_ca(now)?;
            let mut next = stored.clone();
            next.data
                .insert(KEY_NEXT_CA_CERT.into(), next_ca.cert_pem.clone());
            next.data.insert(KEY_NEXT_CA_KEY.into(), next_ca.key_pem);
            stamp(&mut next, Phase::CaPublished, now);
            Ok(Plan {
                secret: Some(next),
                ca_bundle: join_bundle(&[&ca_cert, &next_ca.cert_pem]),
                reason: "CA nears expiry: publishing the next CA",
            })
        }
        Phase::Stable => {
            let names_differ = !names
                .iter()
                .all(|n| serving.dns_names.contains(n) || n.parse::<std::net::IpAddr>().is_ok());
            let expiring = serving.not_after.duration_since(now) <= settings.serving_renew_before;
            let bundle = join_bundle(&[&ca_cert]);
            if !(expiring || names_differ || !serving_usable) {
                return Ok(Plan {
                    secret: None,
                    ca_bundle: bundle,
                    reason: "certificate is current",
                });
            }
            let issued = certs::issue_serving(&ca_cert, &ca_key, names, now)?;
            let mut next = stored.clone();
            next.data.insert(KEY_TLS_CERT.into(), issued.cert_pem);
            next.data.insert(KEY_TLS_KEY.into(), issued.key_pem);
            stamp(&mut next, Phase::Stable, now);
            Ok(Plan {
                secret: Some(next),
                ca_bundle: bundle,
                reason: if !serving_usable {
                    "stored serving key is unusable: reissued by the same CA"
                } else if expiring {
                    "serving certificate nears expiry: reissued by the same CA"
                } else {
                    "service names changed: serving certificate reissued"
                },
            })
        }
    }
}

/// `stored` with its propagation wait started again at `now`, when it is waiting for one
/// (`ca-published`, `serving-switched`); `None` in `stable`, which waits for nothing.
///
/// For when a waiting pass had to publish the bundle again: a webhook configuration lost
/// it (restored from a backup), or a second leader's pass overwrote it with a CA that
/// leader never managed to store. The wait measures how long the API servers have had the
/// bundle, so it counts from the last time it had to be written.
pub fn restart_wait(stored: &StoredState, now: Timestamp) -> Option<StoredState> {
    let phase = Phase::parse(stored.annotations.get(ANNOTATION_PHASE).map(String::as_str));
    if phase == Phase::Stable {
        return None;
    }
    let mut restarted = stored.clone();
    stamp(&mut restarted, phase, now);
    Some(restarted)
}

/// Whether `key_pem` is a key rcgen can sign with and the public half of `cert_pem`.
fn ca_key_matches(cert_pem: &str, key_pem: &str) -> bool {
    use rcgen::PublicKeyData as _;
    let Ok(key) = rcgen::KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok((_, pem)) = parse_x509_pem(cert_pem.as_bytes()) else {
        return false;
    };
    pem.parse_x509()
        .is_ok_and(|cert| cert.public_key().subject_public_key.data.as_ref() == key.der_bytes())
}

fn fresh(names: &[String], now: Timestamp, reason: &'static str) -> Result<Plan, RotationError> {
    let bundle = certs::generate(names, now)?;
    let mut next = StoredState::default();
    next.data
        .insert(KEY_CA_CERT.into(), bundle.ca_cert_pem.clone());
    next.data.insert(KEY_CA_KEY.into(), bundle.ca_key_pem);
    next.data.insert(KEY_TLS_CERT.into(), bundle.cert_pem);
    next.data.insert(KEY_TLS_KEY.into(), bundle.key_pem);
    stamp(&mut next, Phase::Stable, now);
    Ok(Plan {
        secret: Some(next),
        ca_bundle: join_bundle(&[&bundle.ca_cert_pem]),
        reason,
    })
}

fn stamp(state: &mut StoredState, phase: Phase, now: Timestamp) {
    state
        .annotations
        .insert(ANNOTATION_PHASE.into(), phase.as_str().into());
    let since = crate::rfc3339::format(now).unwrap_or_default();
    state.annotations.insert(ANNOTATION_SINCE.into(), since);
}

/// Concatenated PEM certificates, each ending in a newline; empty parts are skipped.
pub fn join_bundle(parts: &[&str]) -> String {
    let mut bundle = String::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        bundle.push_str(part);
        bundle.push('\n');
    }
    bundle
}

#[cfg(test)]
mod tests;
