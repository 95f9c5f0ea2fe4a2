//! Tests of the public types and of the registry as a whole; each check's own
//! behaviour is tested in its file.

use serde_json::json;

use super::test_util::{pod, v};
use super::*;

/// `evaluate` without the fields each result names: these tests are about the messages and
/// the registry; each check's own tests assert its fields.
fn evaluate(level: Level, version: Version, meta: &ObjectMeta, spec: &PodSpec) -> Vec<CheckResult> {
    super::evaluate(level, version, meta, spec)
        .into_iter()
        .map(|r| CheckResult {
            fields: Vec::new(),
            ..r
        })
        .collect()
}

#[test]
fn level_parses_and_displays() {
    for (s, l) in [
        ("privileged", Level::Privileged),
        ("baseline", Level::Baseline),
        ("restricted", Level::Restricted),
    ] {
        assert_eq!(s.parse::<Level>(), Ok(l));
        assert_eq!(l.to_string(), s);
        assert_eq!(serde_json::to_value(l).unwrap(), json!(s));
        assert_eq!(serde_json::from_value::<Level>(json!(s)).unwrap(), l);
    }
    assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
}

#[test]
fn level_rejects_unknown_names() {
    let err = r#"invalid Pod Security Standards level "Baseline": must be one of "privileged", "baseline", "restricted""#;
    assert_eq!("Baseline".parse::<Level>(), Err(err.to_string()));
    assert!("".parse::<Level>().is_err());
    assert!(" baseline".parse::<Level>().is_err());
}

#[test]
fn version_parses_good_inputs() {
    assert_eq!(Version::parse("latest"), Ok(Version::Latest));
    assert_eq!(Version::parse("v1.0"), Ok(Version::Minor(0)));
    assert_eq!(Version::parse("v1.25"), Ok(Version::Minor(25)));
    assert_eq!(Version::parse("v1.35"), Ok(Version::Minor(35)));
    // Any v1.N, as PSA's ParseVersion takes it: newer than the newest checks included.
    assert_eq!(Version::parse("v1.36"), Ok(Version::Minor(36)));
    assert_eq!(Version::parse("v1.99"), Ok(Version::Minor(99)));
}

#[test]
fn version_rejects_malformed_inputs() {
    for bad in [
        "1.25",
        "v2.0",
        "v1.x",
        "v1.25.3",
        "v1.",
        "v1.01",
        "v1.+5",
        "v1.-1",
        "V1.25",
        "Latest",
        "",
        " v1.25",
        "v1.2 5",
        "v1.99999999999999999999",
    ] {
        assert_eq!(
            Version::parse(bad),
            Err(format!(
                r#"invalid Pod Security Standards version {bad:?}: must be "latest" or "v1.N""#
            )),
            "{bad}"
        );
    }
}

#[test]
fn a_version_newer_than_the_newest_checks_is_judged_by_them() {
    let (meta, spec) = pod(json!({"spec": {
        "hostPID": true,
        "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]},
        "containers": [{"name": "a"}]
    }}));
    let newest = evaluate(Level::Baseline, v(NEWEST_KNOWN_MINOR), &meta, &spec);
    assert_eq!(evaluate(Level::Baseline, v(36), &meta, &spec).len(), 2);
    assert_eq!(
        newest,
        vec![result("hostNamespaces", "host namespaces", "hostPID=true")]
    );
    for later in [v(38), v(99), v(u32::MAX), Version::Latest] {
        assert_eq!(
            evaluate(Level::Baseline, later, &meta, &spec),
            newest,
            "{later}"
        );
    }
    assert_eq!(
        check_ids_for(Level::Restricted, v(99)),
        check_ids_for(Level::Restricted, Version::Latest)
    );
}

#[test]
fn a_cluster_judges_latest_and_newer_pins_by_its_own_minor() {
    assert_eq!(Version::Latest.for_cluster(34), v(34));
    assert_eq!(v(36).for_cluster(34), v(34));
    assert_eq!(v(30).for_cluster(34), v(30));
    assert_eq!(Version::Latest.for_cluster(40), v(40));
    // On a 1.34 cluster, latest does not allow the sysctls only v1.37 allows.
    let (meta, spec) = pod(json!({"spec": {
        "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]},
        "containers": [{"name": "a"}]
    }}));
    assert_eq!(
        evaluate(
            Level::Baseline,
            Version::Latest.for_cluster(34),
            &meta,
            &spec
        ),
        vec![result(
            "sysctls",
            "forbidden sysctls",
            "net.ipv4.tcp_notsent_lowat"
        )]
    );
    assert_eq!(
        evaluate(
            Level::Baseline,
            Version::Latest.for_cluster(37),
            &meta,
            &spec
        ),
        vec![]
    );
}

#[test]
fn kubernetes_minors_parse_from_the_version_endpoint_and_from_users() {
    for (text, minor) in [
        ("34", 34),
        ("34+", 34),
        ("1.34", 34),
        ("v1.34", 34),
        ("v1.34.2", 34),
        ("v1.34.2-gke.100", 34),
        ("v1.37.0-rc.1", 37),
        ("v1.0", 0),
    ] {
        assert_eq!(parse_kubernetes_minor(text), Ok(minor), "{text}");
    }
    for bad in ["", "v2.1", "1.", "x", "v1.x", "-1", "1.34x", "99999999999"] {
        assert_eq!(
            parse_kubernetes_minor(bad),
            Err(format!(
                r#"invalid Kubernetes version {bad:?}: expected a minor ("34") or "1.34" ("v1.34.2")"#
            )),
            "{bad}"
        );
    }
}

#[test]
fn version_displays_and_round_trips_through_serde() {
    assert_eq!(Version::Minor(25).to_string(), "v1.25");
    assert_eq!(Version::Latest.to_string(), "latest");
    for s in ["v1.0", "v1.25", "latest"] {
        let parsed: Version = serde_json::from_value(json!(s)).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), json!(s));
    }
    assert_eq!(
        serde_json::from_value::<Version>(json!("v1.99")).unwrap(),
        Version::Minor(99)
    );
    assert!(serde_json::from_value::<Version>(json!("v1.x")).is_err());
    assert!(serde_json::from_value::<Version>(json!(25)).is_err());
}

#[test]
fn version_ordering() {
    assert!(Version::Minor(9) < Version::Minor(10));
    assert!(Version::Minor(35) < Version::Latest);
    assert!(Version::Minor(u32::MAX) < Version::Latest);
    assert_eq!(
        Version::Latest.cmp(&Version::Latest),
        std::cmp::Ordering::Equal
    );
    let mut vs = vec![Version::Latest, v(3), v(25), v(0)];
    vs.sort();
    assert_eq!(vs, [v(0), v(3), v(25), Version::Latest]);
}

#[test]
fn registry_is_in_psa_order() {
    // PSA sorts baseline IDs, then restricted IDs, by byte order.
    let ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(ids, all_check_ids());
    let split = CHECKS
        .iter()
        .position(|c| c.level == Level::Restricted)
        .unwrap();
    assert!(CHECKS[..split].iter().all(|c| c.level == Level::Baseline));
    assert!(CHECKS[split..].iter().all(|c| c.level == Level::Restricted));
    assert!(ids[..split].is_sorted());
    assert!(ids[split..].is_sorted());
}

#[test]
fn variants_are_valid() {
    let mut newest = 0;
    for c in CHECKS {
        assert!(!c.variants.is_empty(), "{}", c.id);
        assert!(
            c.variants
                .windows(2)
                .all(|w| w[0].min_minor < w[1].min_minor),
            "{}",
            c.id
        );
        for variant in c.variants {
            newest = newest.max(variant.min_minor);
            for o in variant.overrides {
                assert_eq!(c.level, Level::Restricted, "{} overrides", c.id);
                let target = CHECKS.iter().find(|t| t.id == *o).unwrap();
                assert_eq!(target.level, Level::Baseline, "{} overrides {o}", c.id);
            }
        }
    }
    assert_eq!(newest, NEWEST_KNOWN_MINOR);
}

#[test]
fn privileged_has_no_checks() {
    assert!(check_ids_for(Level::Privileged, Version::Latest).is_empty());
    let (meta, spec) = pod(json!({"spec": {"hostNetwork": true, "containers": [
        {"name": "a", "securityContext": {"privileged": true}},
    ]}}));
    assert_eq!(evaluate(Level::Privileged, v(0), &meta, &spec), vec![]);
}

#[test]
fn check_ids_at_v1_0() {
    let baseline = [
        "appArmorProfile",
        "capabilities_baseline",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "sysctls",
        "windowsHostProcess",
    ];
    assert_eq!(check_ids_for(Level::Baseline, v(0)), baseline);
    let restricted = [
        "appArmorProfile",
        "capabilities_baseline",
        "hostNamespaces",
        "hostPorts",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "sysctls",
        "windowsHostProcess",
        "restrictedVolumes",
        "runAsNonRoot",
    ];
    assert_eq!(check_ids_for(Level::Restricted, v(0)), restricted);
}

#[test]
fn check_ids_at_v1_24() {
    let restricted = [
        "appArmorProfile",
        "hostNamespaces",
        "hostPorts",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "sysctls",
        "windowsHostProcess",
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    ];
    assert_eq!(check_ids_for(Level::Restricted, v(24)), restricted);
    assert_eq!(check_ids_for(Level::Baseline, v(24)).len(), 11);
}

#[test]
fn check_ids_at_latest() {
    let baseline = [
        "appArmorProfile",
        "capabilities_baseline",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "hostProbesAndHostLifecycle",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "sysctls",
        "windowsHostProcess",
    ];
    assert_eq!(check_ids_for(Level::Baseline, Version::Latest), baseline);
    assert_eq!(check_ids_for(Level::Baseline, v(35)), baseline);
    let restricted = [
        "appArmorProfile",
        "hostNamespaces",
        "hostPorts",
        "hostProbesAndHostLifecycle",
        "privileged",
        "seLinuxOptions",
        "sysctls",
        "windowsHostProcess",
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "procMount_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    ];
    assert_eq!(
        check_ids_for(Level::Restricted, Version::Latest),
        restricted
    );
    // A version built by hand past the newest known behaves like the newest,
    // as PSA clamps it.
    assert_eq!(check_ids_for(Level::Restricted, v(1000)), restricted);
}

fn restricted_pod() -> serde_json::Value {
    let sc = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    });
    json!({"spec": {
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [{"name": "init", "image": "busybox", "securityContext": sc}],
        "containers": [
            {"name": "app", "image": "nginx", "securityContext": sc, "ports": [{"containerPort": 8080}],
             "livenessProbe": {"httpGet": {"port": 8080, "path": "/healthz"}}},
            {"name": "sidecar", "image": "envoy", "securityContext": sc},
        ],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}],
    }})
}

#[test]
fn compliant_restricted_pod_passes_every_version() {
    let (meta, spec) = pod(restricted_pod());
    for m in 0..=NEWEST_KNOWN_MINOR {
        assert_eq!(
            evaluate(Level::Restricted, v(m), &meta, &spec),
            vec![],
            "v1.{m}"
        );
    }
    assert_eq!(
        evaluate(Level::Restricted, Version::Latest, &meta, &spec),
        vec![]
    );
}

fn result(id: &'static str, reason: &str, detail: &str) -> CheckResult {
    CheckResult {
        check_id: id,
        forbidden_reason: reason.to_string(),
        forbidden_detail: detail.to_string(),
        fields: Vec::new(),
    }
}

#[test]
fn results_come_in_registry_order() {
    let (meta, spec) = pod(json!({"spec": {
        "hostPID": true,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "a", "securityContext": {"privileged": true, "runAsUser": 0}}],
    }}));
    assert_eq!(
        evaluate(Level::Baseline, Version::Latest, &meta, &spec),
        vec![
            result("hostNamespaces", "host namespaces", "hostPID=true"),
            result("hostPathVolumes", "hostPath volumes", r#"volume "h""#),
            result(
                "privileged",
                "privileged",
                r#"container "a" must not set securityContext.privileged=true"#
            ),
        ]
    );
    assert_eq!(
        evaluate(Level::Restricted, v(24), &meta, &spec),
        vec![
            result("hostNamespaces", "host namespaces", "hostPID=true"),
            result(
                "privileged",
                "privileged",
                r#"container "a" must not set securityContext.privileged=true"#
            ),
            result(
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false",
                r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
            ),
            result(
                "capabilities_restricted",
                "unrestricted capabilities",
                r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
            ),
            result(
                "restrictedVolumes",
                "restricted volume types",
                r#"volume "h" uses restricted volume type "hostPath""#
            ),
            result(
                "runAsNonRoot",
                "runAsNonRoot != true",
                r#"pod or container "a" must set securityContext.runAsNonRoot=true"#
            ),
            result(
                "runAsUser",
                "runAsUser=0",
                r#"container "a" must not set runAsUser=0"#
            ),
            result(
                "seccompProfile_restricted",
                "seccompProfile",
                r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#
            ),
        ]
    );
}

#[test]
fn user_namespace_and_windows_pod_at_latest() {
    // hostUsers: false relaxes runAsNonRoot, runAsUser and baseline procMount
    // (v1.35); a Windows pod skips the Linux-only restricted checks (v1.25).
    let (meta, spec) = pod(json!({"spec": {
        "hostUsers": false,
        "os": {"name": "windows"},
        "containers": [{"name": "a", "securityContext": {"runAsUser": 0, "procMount": "Unmasked"}}],
    }}));
    assert_eq!(
        evaluate(Level::Baseline, Version::Latest, &meta, &spec),
        vec![]
    );
    assert_eq!(
        evaluate(Level::Restricted, Version::Latest, &meta, &spec),
        vec![result(
            "procMount_restricted",
            "procMount",
            r#"container "a" must not set securityContext.procMount to "Unmasked""#
        )]
    );
}

/// Run with `cargo test --release --lib -- --ignored --nocapture`. A manual probe that
/// prints a time and asserts none, so it may read the clock the core otherwise never does.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)]
fn compliant_restricted_pod_timing() {
    let (meta, spec) = pod(restricted_pod());
    let _ = evaluate(Level::Restricted, Version::Latest, &meta, &spec);
    let n = 200_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        let r = evaluate(
            std::hint::black_box(Level::Restricted),
            std::hint::black_box(Version::Latest),
            std::hint::black_box(&meta),
            std::hint::black_box(&spec),
        );
        assert!(r.is_empty());
    }
    let per = start.elapsed() / n;
    println!("evaluate(restricted, latest) on a compliant pod: {per:?}");
}
