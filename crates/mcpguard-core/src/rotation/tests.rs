//! The rotation planner, phase by phase and in both directions (just before and just after
//! each threshold), with a fixed clock. Certificates are inspected, not trusted: SANs and
//! validity via `cert_info`, chaining via rustls' WebPKI verifier with the CA as the only root.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::*;
use crate::certs::{CA_VALIDITY, SERVING_VALIDITY, service_names};

/// 2025-06-15T15:06:40Z.
const T0: i64 = 1_750_000_000;
const BACKDATE: SignedDuration = SignedDuration::from_mins(5);

fn t0() -> Timestamp {
    Timestamp::from_second(T0).expect("valid timestamp")
}

fn names() -> Vec<String> {
    service_names("mcpguard", "mcpguard-system")
}

fn settings() -> RotationSettings {
    RotationSettings::default()
}

fn run(stored: &StoredState, now: Timestamp) -> Plan {
    plan(stored, &names(), now, settings()).expect("plan succeeds")
}

fn written(plan: &Plan) -> StoredState {
    plan.secret
        .clone()
        .unwrap_or_else(|| panic!("expected a Secret write, got none ({})", plan.reason))
}

fn keys(state: &StoredState) -> Vec<&str> {
    state.data.keys().map(String::as_str).collect()
}

fn value<'a>(state: &'a StoredState, key: &str) -> &'a str {
    state
        .data
        .get(key)
        .unwrap_or_else(|| panic!("missing data key {key}"))
}

fn rfc3339(at: Timestamp) -> String {
    crate::rfc3339::format(at).expect("formats")
}

fn stamped(phase: &str, at: Timestamp) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ANNOTATION_PHASE.to_owned(), phase.to_owned()),
        (ANNOTATION_SINCE.to_owned(), rfc3339(at)),
    ])
}

fn info(pem: &str) -> CertInfo {
    cert_info(pem).expect("certificate parses")
}

fn unix(at: Timestamp) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.as_second()).expect("after 1970"),
    ))
}

/// Verifies `serving_pem` as kube-apiserver would: `ca_pem` as the only root, the Service's
/// DNS name, at time `at`.
fn verify(serving_pem: &str, ca_pem: &str, at: Timestamp) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("CA is a usable trust anchor");
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::tls_keys::provider())
            .build()
            .expect("verifier");
    let serving = CertificateDer::from_pem_slice(serving_pem.as_bytes()).expect("serving PEM");
    let name = ServerName::try_from("mcpguard.mcpguard-system.svc").expect("DNS name");
    verifier
        .verify_server_cert(&serving, &[], &name, &[], unix(at))
        .map(|_| ())
}

/// The serving certificate's issuer DN is the CA's subject DN. (Every mcpguard CA has the
/// same subject, so only `verify` tells two CAs apart.)
fn issuer_is_subject_of(serving_pem: &str, ca_pem: &str) -> bool {
    let (_, serving) = parse_x509_pem(serving_pem.as_bytes()).expect("serving PEM");
    let (_, ca) = parse_x509_pem(ca_pem.as_bytes()).expect("CA PEM");
    let serving = serving.parse_x509().expect("serving DER");
    let ca = ca.parse_x509().expect("CA DER");
    serving.issuer().as_raw() == ca.subject().as_raw()
}

/// A serving certificate issued at `issued`: the Service's names, a year of validity from
/// `issued` (backdated five minutes), signed by `ca_pem`.
fn assert_serving(serving_pem: &str, ca_pem: &str, issued: Timestamp) {
    let serving = info(serving_pem);
    assert_eq!(serving.dns_names, names());
    assert_eq!(serving.not_before, issued - BACKDATE);
    assert_eq!(serving.not_after, issued + SERVING_VALIDITY);
    // The validity is a year from `now`, within the backdating slack either way.
    let lifetime = serving.not_after.duration_since(issued);
    assert!(
        lifetime >= SERVING_VALIDITY - BACKDATE && lifetime <= SERVING_VALIDITY + BACKDATE,
        "{lifetime}"
    );
    assert!(issuer_is_subject_of(serving_pem, ca_pem));
    verify(serving_pem, ca_pem, issued + SignedDuration::from_mins(1))
        .expect("serving certificate chains to the CA");
}

fn assert_ca(ca_pem: &str, issued: Timestamp) {
    let ca = info(ca_pem);
    assert_eq!(ca.not_before, issued - BACKDATE);
    assert_eq!(ca.not_after, issued + CA_VALIDITY);
    assert!(ca.dns_names.is_empty());
}

/// What a first pass writes at `now`.
fn fresh_state(now: Timestamp) -> StoredState {
    written(&run(&StoredState::default(), now))
}

/// `fresh_state(t0)` whose serving certificate was last renewed (by the same CA) at `renewed`.
fn renewed_state(renewed: Timestamp) -> StoredState {
    let stored = fresh_state(t0());
    let mut state = stored.clone();
    let issued = certs::issue_serving(
        value(&stored, KEY_CA_CERT),
        value(&stored, KEY_CA_KEY),
        &names(),
        renewed,
    )
    .expect("issue");
    state.data.insert(KEY_TLS_CERT.into(), issued.cert_pem);
    state.data.insert(KEY_TLS_KEY.into(), issued.key_pem);
    state.annotations = stamped("stable", renewed);
    state
}

/// The first instant at which the t0 CA is inside `ca_renew_before`.
fn ca_window() -> Timestamp {
    t0() + CA_VALIDITY - settings().ca_renew_before
}

/// A CA rotation started at `ca_window()`: (state before, state written, time).
fn published() -> (StoredState, StoredState, Timestamp) {
    let at = ca_window();
    let before = renewed_state(at - SignedDuration::from_hours(10 * 24));
    let after = written(&run(&before, at));
    (before, after, at)
}

/// The serving certificate switched one propagation wait after `published()`.
fn switched() -> (StoredState, StoredState, Timestamp) {
    let (_, published, at) = published();
    let at = at + settings().propagation_wait;
    let switched = written(&run(&published, at));
    (published, switched, at)
}

// --- fresh ---------------------------------------------------------------------------------

#[test]
fn empty_secret_gets_a_fresh_ca_and_serving_certificate() {
    let now = t0();
    let plan = run(&StoredState::default(), now);
    assert_eq!(plan.reason, "no certificate stored yet");
    let state = written(&plan);
    assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    assert_eq!(
        state.annotations,
        BTreeMap::from([
            (
                "mcpguard.dev/rotation-phase".to_owned(),
                "stable".to_owned()
            ),
            (
                "mcpguard.dev/rotation-since".to_owned(),
                "2025-06-15T15:06:40Z".to_owned()
            ),
        ])
    );
    let ca = value(&state, KEY_CA_CERT);
    assert_eq!(plan.ca_bundle, join_bundle(&[ca]));
    assert_eq!(plan.ca_bundle, format!("{}\n", ca.trim()));
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(value(&state, KEY_CA_KEY).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(value(&state, KEY_TLS_KEY).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_ca(ca, now);
    assert_serving(value(&state, KEY_TLS_CERT), ca, now);
}

#[test]
fn shipped_empty_tls_secret_gets_fresh_certificates() {
    // webhook-manifests/base/certificate-secret.yaml: tls.crt and tls.key present but empty.
    let shipped = StoredState {
        data: BTreeMap::from([
            (KEY_TLS_CERT.to_owned(), String::new()),
            (KEY_TLS_KEY.to_owned(), String::new()),
        ]),
        annotations: BTreeMap::new(),
    };
    let now = t0();
    let plan = run(&shipped, now);
    assert_eq!(plan.reason, "no certificate stored yet");
    let state = written(&plan);
    assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    assert_eq!(state.annotations, stamped("stable", now));
    assert_serving(value(&state, KEY_TLS_CERT), value(&state, KEY_CA_CERT), now);
}

#[test]
fn garbage_pem_gets_fresh_certificates() {
    let garbage = StoredState {
        data: [KEY_CA_CERT, KEY_CA_KEY, KEY_TLS_CERT, KEY_TLS_KEY]
            .into_iter()
            .map(|key| (key.to_owned(), format!("not a {key}")))
            .collect(),
        annotations: stamped("stable", t0()),
    };
    let now = t0() + SignedDuration::from_hours(1);
    let plan = run(&garbage, now);
    assert_eq!(plan.reason, "stored certificate does not parse");
    let state = written(&plan);
    assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    assert_eq!(state.annotations, stamped("stable", now));
    for key in [KEY_CA_CERT, KEY_CA_KEY, KEY_TLS_CERT, KEY_TLS_KEY] {
        assert_ne!(value(&state, key), value(&garbage, key));
    }
    assert_eq!(plan.ca_bundle, join_bundle(&[value(&state, KEY_CA_CERT)]));
    assert_serving(value(&state, KEY_TLS_CERT), value(&state, KEY_CA_CERT), now);

    // A good CA with a garbage serving certificate is no better.
    let mut half = fresh_state(t0());
    half.data.insert(
        KEY_TLS_CERT.into(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
    );
    let plan = run(&half, now);
    assert_eq!(plan.reason, "stored certificate does not parse");
    assert_ne!(
        value(&written(&plan), KEY_CA_CERT),
        value(&half, KEY_CA_CERT)
    );
}

#[test]
fn expired_ca_gets_fresh_certificates() {
    let stored = renewed_state(t0() + CA_VALIDITY - SignedDuration::from_hours(100 * 24));
    // The instant the CA's notAfter is reached, and later.
    for now in [
        t0() + CA_VALIDITY,
        t0() + CA_VALIDITY + SignedDuration::from_hours(3 * 24),
    ] {
        let plan = run(&stored, now);
        assert_eq!(plan.reason, "CA expired");
        let state = written(&plan);
        assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        assert_eq!(state.annotations, stamped("stable", now));
        let ca = value(&state, KEY_CA_CERT);
        assert_ne!(ca, value(&stored, KEY_CA_CERT));
        assert_eq!(plan.ca_bundle, join_bundle(&[ca]));
        assert_ca(ca, now);
        assert_serving(value(&state, KEY_TLS_CERT), ca, now);
    }
    // One second before, it is still rotated seamlessly, not replaced.
    let plan = run(&stored, t0() + CA_VALIDITY - SignedDuration::from_secs(1));
    assert_eq!(plan.reason, "CA nears expiry: publishing the next CA");
}

// --- stable: serving certificate -----------------------------------------------------------

#[test]
fn current_certificate_needs_no_write() {
    let stored = fresh_state(t0());
    for now in [
        t0(),
        t0() + SignedDuration::from_hours(24),
        t0() + SignedDuration::from_hours(200 * 24),
    ] {
        let plan = run(&stored, now);
        assert_eq!(
            plan,
            Plan {
                secret: None,
                ca_bundle: join_bundle(&[value(&stored, KEY_CA_CERT)]),
                reason: "certificate is current",
            }
        );
    }
}

#[test]
fn serving_certificate_in_renew_window_is_reissued_by_the_same_ca() {
    let stored = fresh_state(t0());
    let window = t0() + SERVING_VALIDITY - settings().serving_renew_before;
    // At the first instant of the window, deep inside it, and after expiry.
    for now in [
        window,
        window + SignedDuration::from_hours(20 * 24),
        t0() + SERVING_VALIDITY + SignedDuration::from_hours(24),
    ] {
        let plan = run(&stored, now);
        assert_eq!(
            plan.reason,
            "serving certificate nears expiry: reissued by the same CA"
        );
        let ca = value(&stored, KEY_CA_CERT);
        assert_eq!(plan.ca_bundle, join_bundle(&[ca]));
        let state = written(&plan);
        assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        assert_eq!(value(&state, KEY_CA_CERT), ca);
        assert_eq!(value(&state, KEY_CA_KEY), value(&stored, KEY_CA_KEY));
        assert_ne!(value(&state, KEY_TLS_CERT), value(&stored, KEY_TLS_CERT));
        assert_ne!(value(&state, KEY_TLS_KEY), value(&stored, KEY_TLS_KEY));
        assert_eq!(state.annotations, stamped("stable", now));
        assert_serving(value(&state, KEY_TLS_CERT), ca, now);
    }
}

#[test]
fn serving_certificate_just_outside_renew_window_is_kept() {
    let stored = fresh_state(t0());
    let now =
        t0() + SERVING_VALIDITY - settings().serving_renew_before - SignedDuration::from_secs(1);
    let plan = run(&stored, now);
    assert_eq!(plan.reason, "certificate is current");
    assert_eq!(plan.secret, None);
    assert_eq!(plan.ca_bundle, join_bundle(&[value(&stored, KEY_CA_CERT)]));
}

#[test]
fn short_settings_move_the_renew_window() {
    let short = RotationSettings {
        serving_renew_before: SignedDuration::from_hours(364 * 24),
        ca_renew_before: SignedDuration::from_hours(30 * 24),
        propagation_wait: SignedDuration::from_secs(10),
    };
    let stored = fresh_state(t0());
    let edge = t0() + SignedDuration::from_hours(24);
    let kept = plan(
        &stored,
        &names(),
        edge - SignedDuration::from_secs(1),
        short,
    )
    .expect("plan");
    assert_eq!(kept.secret, None);
    let renewed = plan(&stored, &names(), edge, short).expect("plan");
    assert_eq!(
        renewed.reason,
        "serving certificate nears expiry: reissued by the same CA"
    );
    assert_serving(
        value(&written(&renewed), KEY_TLS_CERT),
        value(&stored, KEY_CA_CERT),
        edge,
    );
}

#[test]
fn changed_service_names_reissue_the_serving_certificate() {
    let now = t0();
    let old_names = service_names("mcpguard-old", "mcpguard-system");
    let stored =
        written(&plan(&StoredState::default(), &old_names, now, settings()).expect("plan"));
    assert_eq!(info(value(&stored, KEY_TLS_CERT)).dns_names, old_names);

    let later = now + SignedDuration::from_hours(2 * 24);
    let plan = run(&stored, later);
    assert_eq!(
        plan.reason,
        "service names changed: serving certificate reissued"
    );
    let state = written(&plan);
    let ca = value(&stored, KEY_CA_CERT);
    assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    assert_eq!(value(&state, KEY_CA_CERT), ca);
    assert_eq!(value(&state, KEY_CA_KEY), value(&stored, KEY_CA_KEY));
    assert_ne!(value(&state, KEY_TLS_KEY), value(&stored, KEY_TLS_KEY));
    assert_eq!(state.annotations, stamped("stable", later));
    assert_eq!(plan.ca_bundle, join_bundle(&[ca]));
    assert_serving(value(&state, KEY_TLS_CERT), ca, later);
    assert_eq!(run(&state, later).secret, None);
}

// --- CA rotation ---------------------------------------------------------------------------

#[test]
fn ca_just_outside_its_renew_window_is_kept() {
    let at = ca_window() - SignedDuration::from_secs(1);
    let stored = renewed_state(ca_window() - SignedDuration::from_hours(10 * 24));
    let plan = run(&stored, at);
    assert_eq!(
        plan,
        Plan {
            secret: None,
            ca_bundle: join_bundle(&[value(&stored, KEY_CA_CERT)]),
            reason: "certificate is current",
        }
    );
}

#[test]
fn ca_in_its_renew_window_publishes_the_next_ca() {
    let (before, after, at) = published();
    let plan = run(&before, at);
    assert_eq!(plan.reason, "CA nears expiry: publishing the next CA");
    assert_eq!(
        keys(&after),
        [
            "ca.crt",
            "ca.key",
            "next-ca.crt",
            "next-ca.key",
            "tls.crt",
            "tls.key"
        ]
    );
    for key in [KEY_CA_CERT, KEY_CA_KEY, KEY_TLS_CERT, KEY_TLS_KEY] {
        assert_eq!(value(&after, key), value(&before, key), "{key} unchanged");
    }
    assert_eq!(after.annotations, stamped("ca-published", at));
    let next_ca = value(&after, KEY_NEXT_CA_CERT);
    assert_ne!(next_ca, value(&before, KEY_CA_CERT));
    assert_ca(next_ca, at);
    assert!(value(&after, KEY_NEXT_CA_KEY).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_ne!(value(&after, KEY_NEXT_CA_KEY), value(&before, KEY_CA_KEY));
    let old_ca = value(&before, KEY_CA_CERT);
    // `plan` generated a new CA of its own: compare against the one in that plan's secret.
    let plan_state = written(&plan);
    assert_eq!(
        plan.ca_bundle,
        join_bundle(&[old_ca, value(&plan_state, KEY_NEXT_CA_CERT)])
    );
    assert_eq!(
        plan.ca_bundle,
        format!(
            "{}\n{}\n",
            old_ca.trim(),
            value(&plan_state, KEY_NEXT_CA_CERT).trim()
        )
    );
    // The serving certificate still chains to the current CA, and not yet to the next.
    verify(value(&after, KEY_TLS_CERT), old_ca, at).expect("chains to the current CA");
    assert!(verify(value(&after, KEY_TLS_CERT), next_ca, at).is_err());
}

#[test]
fn ca_published_waits_for_propagation() {
    let (before, published, at) = published();
    let bundle = join_bundle(&[
        value(&before, KEY_CA_CERT),
        value(&published, KEY_NEXT_CA_CERT),
    ]);
    for now in [
        at,
        at + SignedDuration::from_mins(1),
        at + settings().propagation_wait - SignedDuration::from_secs(1),
    ] {
        assert_eq!(
            run(&published, now),
            Plan {
                secret: None,
                ca_bundle: bundle.clone(),
                reason: "waiting for the next CA to propagate",
            }
        );
    }
}

#[test]
fn a_restarted_wait_counts_from_the_restart() {
    let (_, published, at) = published();
    let restart = at + SignedDuration::from_mins(2);
    let restarted = restart_wait(&published, restart).expect("ca-published waits");
    assert_eq!(
        restarted.data, published.data,
        "only the start time changes"
    );
    assert_eq!(restarted.annotations, stamped("ca-published", restart));
    // One wait after the publish, but not after the restart: still waiting.
    let first_end = at + settings().propagation_wait;
    assert_eq!(run(&restarted, first_end).secret, None);
    assert_eq!(
        run(&restarted, first_end).reason,
        "waiting for the next CA to propagate"
    );
    // One wait after the restart: the switch.
    let switch = run(&restarted, restart + settings().propagation_wait);
    assert_eq!(
        switch.reason,
        "switching the serving certificate to the next CA"
    );
    assert!(switch.secret.is_some());

    let (_, switched, at) = switched();
    let restarted = restart_wait(&switched, at).expect("serving-switched waits");
    assert_eq!(restarted.annotations, stamped("serving-switched", at));
}

#[test]
fn a_stable_state_has_no_wait_to_restart() {
    let state = fresh_state(t0());
    assert_eq!(
        restart_wait(&state, t0() + SignedDuration::from_hours(24)),
        None
    );
}

#[test]
fn ca_published_after_the_wait_switches_serving_to_the_next_ca() {
    let (published, switched, at) = switched();
    let plan = run(&published, at);
    assert_eq!(
        plan.reason,
        "switching the serving certificate to the next CA"
    );
    let old_ca = value(&published, KEY_CA_CERT);
    let new_ca = value(&published, KEY_NEXT_CA_CERT);
    assert_eq!(plan.ca_bundle, join_bundle(&[old_ca, new_ca]));
    assert_eq!(
        keys(&switched),
        ["ca.crt", "ca.key", "previous-ca.crt", "tls.crt", "tls.key"]
    );
    assert_eq!(value(&switched, KEY_CA_CERT), new_ca);
    assert_eq!(
        value(&switched, KEY_CA_KEY),
        value(&published, KEY_NEXT_CA_KEY)
    );
    assert_eq!(value(&switched, KEY_PREVIOUS_CA_CERT), old_ca);
    assert_ne!(
        value(&switched, KEY_TLS_CERT),
        value(&published, KEY_TLS_CERT)
    );
    assert_ne!(
        value(&switched, KEY_TLS_KEY),
        value(&published, KEY_TLS_KEY)
    );
    assert_eq!(switched.annotations, stamped("serving-switched", at));
    assert_serving(value(&switched, KEY_TLS_CERT), new_ca, at);
    assert!(
        verify(value(&switched, KEY_TLS_CERT), old_ca, at).is_err(),
        "the new serving certificate must not verify against the old CA"
    );
    // The bundle kube-apiserver holds trusts both the old and the new serving certificate.
    assert_eq!(
        plan.ca_bundle,
        join_bundle(&[
            value(&switched, KEY_PREVIOUS_CA_CERT),
            value(&switched, KEY_CA_CERT)
        ])
    );
}

#[test]
fn serving_switched_waits_for_every_replica() {
    let (published, switched, at) = switched();
    let bundle = join_bundle(&[
        value(&published, KEY_CA_CERT),
        value(&published, KEY_NEXT_CA_CERT),
    ]);
    for now in [
        at,
        at + SignedDuration::from_mins(2),
        at + settings().propagation_wait - SignedDuration::from_secs(1),
    ] {
        assert_eq!(
            run(&switched, now),
            Plan {
                secret: None,
                ca_bundle: bundle.clone(),
                reason: "waiting for every replica to serve the new certificate",
            }
        );
    }
}

#[test]
fn serving_switched_after_the_wait_drops_the_previous_ca() {
    let (_, switched, at) = switched();
    let now = at + settings().propagation_wait;
    let plan = run(&switched, now);
    assert_eq!(plan.reason, "dropping the previous CA");
    let new_ca = value(&switched, KEY_CA_CERT);
    assert_eq!(plan.ca_bundle, join_bundle(&[new_ca]));
    assert_eq!(plan.ca_bundle, format!("{}\n", new_ca.trim()));
    let stable = written(&plan);
    assert_eq!(keys(&stable), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
    for key in [KEY_CA_CERT, KEY_CA_KEY, KEY_TLS_CERT, KEY_TLS_KEY] {
        assert_eq!(
            value(&stable, key),
            value(&switched, key),
            "{key} unchanged"
        );
    }
    assert_eq!(stable.annotations, stamped("stable", now));
    // And from there on it is an ordinary stable state under the new CA.
    let later = now + SignedDuration::from_hours(30 * 24);
    assert_eq!(
        run(&stable, later),
        Plan {
            secret: None,
            ca_bundle: join_bundle(&[new_ca]),
            reason: "certificate is current",
        }
    );
}

#[test]
fn ca_published_without_its_next_ca_starts_fresh() {
    let (_, published, at) = published();
    for missing in [
        &[KEY_NEXT_CA_CERT][..],
        &[KEY_NEXT_CA_KEY][..],
        &[KEY_NEXT_CA_CERT, KEY_NEXT_CA_KEY][..],
    ] {
        let mut lost = published.clone();
        for key in missing {
            lost.data.remove(*key);
        }
        let now = at + SignedDuration::from_mins(1);
        let plan = run(&lost, now);
        assert_eq!(plan.reason, "CA rotation lost its next CA", "{missing:?}");
        let state = written(&plan);
        assert_eq!(keys(&state), ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        assert_eq!(state.annotations, stamped("stable", now));
        let ca = value(&state, KEY_CA_CERT);
        assert_ne!(ca, value(&published, KEY_CA_CERT));
        assert_eq!(plan.ca_bundle, join_bundle(&[ca]));
        assert_ca(ca, now);
        assert_serving(value(&state, KEY_TLS_CERT), ca, now);
    }
}

// --- idempotence ---------------------------------------------------------------------------

#[test]
fn every_write_fed_back_at_the_same_now_writes_nothing() {
    let stored = fresh_state(t0());
    let renew = t0() + SERVING_VALIDITY - SignedDuration::from_hours(24);
    let (_, published, published_at) = published();
    let (_, switched, switched_at) = switched();
    let dropped_at = switched_at + settings().propagation_wait;
    let cases: Vec<(&str, StoredState, Timestamp)> = vec![
        ("fresh", StoredState::default(), t0()),
        ("reissue", stored.clone(), renew),
        (
            "names",
            {
                let mut other = stored.clone();
                other.data.insert(
                    KEY_TLS_CERT.into(),
                    certs::issue_serving(
                        value(&stored, KEY_CA_CERT),
                        value(&stored, KEY_CA_KEY),
                        &["elsewhere".to_owned()],
                        t0(),
                    )
                    .expect("issue")
                    .cert_pem,
                );
                other
            },
            t0() + SignedDuration::from_hours(3 * 24),
        ),
        (
            "publish",
            renewed_state(ca_window() - SignedDuration::from_hours(10 * 24)),
            published_at,
        ),
        ("switch", published, switched_at),
        ("drop", switched, dropped_at),
        ("expired", stored.clone(), t0() + CA_VALIDITY),
    ];
    for (case, input, now) in cases {
        let first = run(&input, now);
        let output = written(&first);
        let again = run(&output, now);
        assert_eq!(again.secret, None, "{case}: {}", again.reason);
        assert_eq!(again.ca_bundle, first.ca_bundle, "{case}");
    }
}

// --- lost bookkeeping ----------------------------------------------------------------------

/// Regression: a rotation whose `rotation-since` annotation is missing or unreadable used to
/// take "since" as `now` on every pass without writing it, and so waited forever. Now the
/// first pass records `now` (phase and data unchanged) and the rotation goes on one wait later.
#[test]
fn rotation_with_lost_since_annotation_restarts_its_wait_and_progresses() {
    let (_, published, published_at) = published();
    let (_, switched, switched_at) = switched();
    let wait = settings().propagation_wait;
    let published_bundle = join_bundle(&[
        value(&published, KEY_CA_CERT),
        value(&published, KEY_NEXT_CA_CERT),
    ]);
    let switched_bundle = join_bundle(&[
        value(&switched, KEY_PREVIOUS_CA_CERT),
        value(&switched, KEY_CA_CERT),
    ]);
    for (phase, state, start, bundle, next_reason) in [
        (
            "ca-published",
            published,
            published_at,
            published_bundle,
            "switching the serving certificate to the next CA",
        ),
        (
            "serving-switched",
            switched,
            switched_at,
            switched_bundle,
            "dropping the previous CA",
        ),
    ] {
        for since in [None, Some("yesterday")] {
            let mut lost = state.clone();
            match since {
                None => lost.annotations.remove(ANNOTATION_SINCE),
                Some(bad) => lost.annotations.insert(ANNOTATION_SINCE.into(), bad.into()),
            };
            let now = start + SignedDuration::from_hours(24);
            let first = run(&lost, now);
            let mut restamped = state.clone();
            restamped.annotations = stamped(phase, now);
            assert_eq!(
                first,
                Plan {
                    secret: Some(restamped.clone()),
                    ca_bundle: bundle.clone(),
                    reason: "rotation start time missing: waiting from now",
                },
                "{phase}, since {since:?}"
            );
            assert_eq!(run(&restamped, now).secret, None, "{phase}: idempotent");
            let waiting = run(&restamped, now + wait - SignedDuration::from_secs(1));
            assert_eq!(waiting.secret, None, "{phase}: waits again");
            assert_eq!(waiting.ca_bundle, bundle);
            let next = run(&restamped, now + wait);
            assert_eq!(next.reason, next_reason, "{phase}, since {since:?}");
            assert!(next.secret.is_some());
        }
    }
}

/// BUG (self-healing): the planner checks that the stored certificates parse, but not the
/// keys. A garbage or mismatched `tls.key` next to a current `tls.crt` is planned as
/// "certificate is current" (no write), so `SelfManagedCerts::reconcile` fails in
/// `serve_stored` on every pass and never reaches the webhook configurations; a garbage
/// `ca.key` makes every renewal of the serving certificate fail with "certificate generation
/// failed: Could not parse key pair" until it expires. Expected: like a garbage certificate,
/// a stored key that cannot be used is replaced (a write whose tls.crt/tls.key can be served).
#[test]
fn unusable_stored_key_gets_fresh_certificates() {
    let stored = fresh_state(t0());
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned();
    let other_key = value(&fresh_state(t0()), KEY_TLS_KEY).to_owned();
    let current = t0() + SignedDuration::from_hours(1);
    let renew = t0() + SERVING_VALIDITY - SignedDuration::from_hours(24);
    let mut failures = Vec::new();
    for (key, what, replacement, now) in [
        (KEY_TLS_KEY, "garbage", &garbage, current),
        (
            KEY_TLS_KEY,
            "another certificate's key",
            &other_key,
            current,
        ),
        (KEY_TLS_KEY, "garbage", &garbage, renew),
        (KEY_CA_KEY, "garbage", &garbage, renew),
    ] {
        let mut state = stored.clone();
        state.data.insert(key.into(), replacement.clone());
        let case = format!("{key} = {what}, at {}", rfc3339(now));
        match plan(&state, &names(), now, settings()) {
            Ok(plan) => match &plan.secret {
                Some(next)
                    if crate::tls_keys::certified_key(
                        value(next, KEY_TLS_CERT).as_bytes(),
                        value(next, KEY_TLS_KEY).as_bytes(),
                    )
                    .is_ok() => {}
                Some(_) => failures.push(format!("{case}: writes an unservable pair")),
                None => failures.push(format!("{case}: no write, {:?}", plan.reason)),
            },
            Err(err) => failures.push(format!("{case}: error {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "unusable keys are kept:\n{}",
        failures.join("\n")
    );
}
