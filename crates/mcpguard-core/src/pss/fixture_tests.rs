//! Kubernetes' own Pod Security Admission fixtures, ported as data: every case the
//! fixture generators build, judged at every level and version PSA renders it for.
//!
//! Upstream: `kubernetes/kubernetes`, `staging/src/k8s.io/pod-security-admission/test/`
//! (the staging copy of `kubernetes/pod-security-admission`), newest stored versions:
//! `fixtures.go` (the OS-neutral minimal valid pods, per level and version, with the
//! `generatePass(pod, level)` signature; the Linux/Windows variants only feed PSA's
//! controller tests, not `testdata`), `helpers.go` (`tweak`, `ensureSecurityContext`,
//! `ensureSELinuxOptions`, `ensureAnnotation`), `fixtures_seccomp.go` (annotation keys),
//! and one `fixtures_<check>.go` per check: files read at commits
//! 0d173114bee8802a342f6c8a2d900282f8f50bd7 (privileged),
//! e6e4f3b68de49bd684d6fdbc0c194ef668a6fc66 (capabilities_baseline),
//! 7ed318129ff57a0e1d0834010a0aabd9b03adddd (appArmorProfile),
//! 1132fd0afdf051318d9a5e5c2077ce09d8e179fc (sysctls up to v1.29; v1.32 and v1.37 from testdata),
//! 78fc8e44052f699bf598f84b697b41e5a328c9c5 (allowPrivilegeEscalation),
//! f9cfc9d93491c42c0ee6b3705d4c46f7e173f356 (runAsUser),
//! c2c7d507620b919d8c6cd5d43e689e7656186df5 (restrictedVolumes),
//! 8a84988bd67138e9c3e40990ceb3c7ec4ef1e2ca (hostProbesAndHostLifecycle), and the
//! `ptr.To`-era copies of hostNamespaces, hostPorts, procMount (with its v1.35
//! baseline/restricted split), seccompProfile_baseline/_restricted, runAsNonRoot,
//! capabilities_restricted, seLinuxOptions and windowsHostProcess (found by content; the
//! index does not name their commit). The procMount split matches `policy/
//! check_procMount_restricted.go` at 7c0ae3a5333644c7efbf8037d235ba057c0480cb, where
//! `procMount_restricted` overrides `procMount` from v1.35.
//!
//! How PSA's `TestFixtures` renders `testdata/<level>/v1.N/{pass,fail}/<check><i>.yaml`,
//! and so what is asserted here:
//! * the minimal valid pod for (level, v1.N) is `GetMinimalValidPod`: the newest one
//!   registered at or below N;
//! * a generator registered for v1.x serves v1.x and later, until the check's next one;
//!   one registered at baseline serves restricted too;
//! * only checks in force at (level, v1.N) get fixtures (`checksForLevelAndVersion`: a
//!   restricted check's `overrides` remove the baseline check it replaces);
//! * `run.go` expects each pass pod to be admitted and each fail pod refused with an
//!   error that contains `expectErrorSubstring` (the check ID when unset).
//!
//! Pods are built as PSA serialises them (`omitempty`: a nil pointer or empty list is
//! absent) and go through the API server's defaults first, as `check --no-mutate` does.

use serde_json::{Map, Value, json};

use super::test_util::pod;
use super::{CheckResult, Level, NEWEST_KNOWN_MINOR, Version, check_ids_for, evaluate};

type Pod = Value;
/// `generatePass(pod, level)` / `generateFail(pod)`: PSA's fail generators take no level,
/// and none of the ported ones looks at it.
type Generate = fn(&Pod, Level) -> Vec<Pod>;

const B: Level = Level::Baseline;
const R: Level = Level::Restricted;

/// Where one generator's fixtures are rendered: `level` from `v1.from` up to (not
/// including) `v1.until`, or up to `latest` when `until` is `None`.
#[derive(Clone, Copy, Debug)]
struct Span {
    level: Level,
    from: u32,
    until: Option<u32>,
}

const fn span(level: Level, from: u32, until: Option<u32>) -> Span {
    Span { level, from, until }
}

/// One registered fixture generator.
struct Fixture {
    check: &'static str,
    /// The version it is registered at (`fixtureKey.version`).
    since: u32,
    expect: &'static str,
    spans: &'static [Span],
    pass: Generate,
    fail: Generate,
}

/// What a pod built by a later generator does at an older version (the version
/// boundaries): PSA renders no fixture for a check before it starts, so the cases are the
/// ones that follow from PSA's checks at that version.
enum Before {
    /// Admitted outright.
    Passes,
    /// Refused, by this check.
    FailsWith(&'static str),
}

struct Boundary {
    check: &'static str,
    since: u32,
    /// `true`: the generator's fail pods; `false`: its pass pods.
    fail_pods: bool,
    /// Which of them (`None`: every one).
    index: Option<usize>,
    level: Level,
    at: u32,
    expect: Before,
}

// ---- building pods as PSA's helpers do ------------------------------------------------

/// The value at `path`, with objects created on the way (`tweak` writing through nil
/// pointers after an `ensure*`). A numeric segment indexes an existing array.
fn at<'a>(pod: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut node = pod;
    for segment in path {
        node = match node {
            Value::Array(items) => {
                let i: usize = segment.parse().expect("array index");
                items.get_mut(i).expect("index in range")
            }
            other => {
                if !other.is_object() {
                    *other = Value::Object(Map::new());
                }
                other
                    .as_object_mut()
                    .expect("object")
                    .entry(segment.to_string())
                    .or_insert(Value::Null)
            }
        };
    }
    node
}

fn set(pod: &mut Value, path: &str, value: Value) {
    let segments: Vec<&str> = path.split('/').collect();
    *at(pod, &segments) = value;
}

/// A Go nil (or an `omitempty` zero value): the member is absent.
fn unset(pod: &mut Value, path: &str) {
    let segments: Vec<&str> = path.split('/').collect();
    let Some((last, parent)) = segments.split_last() else {
        return;
    };
    if let Some(object) = at(pod, parent).as_object_mut() {
        object.remove(*last);
    }
}

fn get<'a>(pod: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(pod, |node, segment| match node {
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => node.get(segment),
    })
}

/// `tweak`: a changed copy.
fn tweak(pod: &Pod, f: impl FnOnce(&mut Pod)) -> Pod {
    let mut out = pod.clone();
    f(&mut out);
    out
}

const C0: &str = "spec/containers/0";
const I0: &str = "spec/initContainers/0";

fn ensure_object(pod: &mut Value, path: &str) {
    let node = at(pod, &path.split('/').collect::<Vec<_>>());
    if !node.is_object() {
        *node = json!({});
    }
}

/// `ensureSecurityContext`: the pod and every container have a security context.
fn ensure_security_context(p: &Pod) -> Pod {
    tweak(p, |p| {
        ensure_object(p, "spec/securityContext");
        for c in [C0, I0] {
            ensure_object(p, &format!("{c}/securityContext"));
        }
    })
}

/// `ensureSELinuxOptions`.
fn ensure_se_linux_options(p: &Pod) -> Pod {
    tweak(&ensure_security_context(p), |p| {
        ensure_object(p, "spec/securityContext/seLinuxOptions");
        for c in [C0, I0] {
            ensure_object(p, &format!("{c}/securityContext/seLinuxOptions"));
        }
    })
}

/// `ensureCapabilities` (fixtures_capabilities_baseline.go).
fn ensure_capabilities(p: &Pod) -> Pod {
    tweak(&ensure_security_context(p), |p| {
        for c in [C0, I0] {
            ensure_object(p, &format!("{c}/securityContext/capabilities"));
        }
    })
}

/// `ensureAnnotation`.
fn ensure_annotation(p: &Pod) -> Pod {
    tweak(p, |p| ensure_object(p, "metadata/annotations"))
}

/// `GetMinimalValidPod`: the newest minimal valid pod registered at or below the version.
fn minimal_pod(level: Level, minor: u32) -> Pod {
    let container = |name: &str| json!({"name": name, "image": "registry.k8s.io/pause"});
    let mut p = json!({"spec": {
        "initContainers": [container("initcontainer1")],
        "containers": [container("container1")],
    }});
    if level < R {
        return p;
    }
    // 1.0+: baseline + runAsNonRoot=true
    set(
        &mut p,
        "spec/securityContext",
        json!({"runAsNonRoot": true}),
    );
    if minor >= 8 {
        for c in [C0, I0] {
            set(
                &mut p,
                &format!("{c}/securityContext"),
                json!({"allowPrivilegeEscalation": false}),
            );
        }
    }
    if minor >= 19 {
        set(
            &mut p,
            "spec/securityContext/seccompProfile",
            json!({"type": "RuntimeDefault"}),
        );
    }
    if minor >= 22 {
        for c in [C0, I0] {
            set(
                &mut p,
                &format!("{c}/securityContext/capabilities"),
                json!({"drop": ["ALL"]}),
            );
        }
    }
    // 1.25+: the OS-neutral pod is the 1.22 one.
    p
}

// ---- the generators, transcribed ------------------------------------------------------

fn none(_: &Pod, _: Level) -> Vec<Pod> {
    Vec::new()
}

// fixtures_privileged.go, v1.0
fn privileged_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, &format!("{C0}/securityContext/privileged"), json!(false));
        set(p, &format!("{I0}/securityContext/privileged"), json!(false));
    })]
}
fn privileged_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    [C0, I0]
        .iter()
        .map(|c| {
            tweak(&p, |p| {
                set(p, &format!("{c}/securityContext/privileged"), json!(true));
                unset(p, &format!("{c}/securityContext/allowPrivilegeEscalation"));
            })
        })
        .collect()
}

// fixtures_hostNamespaces.go, v1.0
fn host_namespaces_fail(p: &Pod, _: Level) -> Vec<Pod> {
    ["hostIPC", "hostNetwork", "hostPID"]
        .iter()
        .map(|field| tweak(p, |p| set(p, &format!("spec/{field}"), json!(true))))
        .collect()
}

// fixtures_hostPathVolumes.go, v1.0
fn host_path_volumes_fail(p: &Pod, _: Level) -> Vec<Pod> {
    vec![
        // mix of hostPath and non-hostPath volumes
        tweak(p, |p| {
            set(
                p,
                "spec/volumes",
                json!([
                    {"name": "volume-emptydir", "emptyDir": {}},
                    {"name": "volume-hostpath", "hostPath": {"path": "/a"}}
                ]),
            )
        }),
        // just hostPath volumes
        tweak(p, |p| {
            set(
                p,
                "spec/volumes",
                json!([
                    {"name": "volume-hostpath-a", "hostPath": {"path": "/a"}},
                    {"name": "volume-hostpath-b", "hostPath": {"path": "/b"}}
                ]),
            )
        }),
    ]
}

// fixtures_hostPorts.go, v1.0
fn host_ports_pass(p: &Pod, _: Level) -> Vec<Pod> {
    vec![tweak(p, |p| {
        set(p, &format!("{C0}/ports"), json!([{"containerPort": 12345}]));
        set(p, &format!("{I0}/ports"), json!([{"containerPort": 12346}]));
    })]
}
fn host_ports_fail(p: &Pod, _: Level) -> Vec<Pod> {
    vec![
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/ports"),
                json!([{"containerPort": 12345, "hostPort": 12345}]),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{I0}/ports"),
                json!([{"containerPort": 12346, "hostPort": 12346}]),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/ports"),
                json!([{"containerPort": 12345, "hostPort": 12345}, {"containerPort": 12347}]),
            );
            set(
                p,
                &format!("{I0}/ports"),
                json!([{"containerPort": 12346, "hostPort": 12346}, {"containerPort": 12348}]),
            );
        }),
    ]
}

// fixtures_capabilities_baseline.go, v1.0
const BASELINE_ADDABLE: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
fn capabilities_baseline_pass(p: &Pod, _: Level) -> Vec<Pod> {
    // No fixtures when the minimal pod already drops ALL.
    let drops_all = get(p, &format!("{C0}/securityContext/capabilities/drop"))
        .and_then(Value::as_array)
        .is_some_and(|drop| drop.contains(&json!("ALL")));
    if drops_all {
        return Vec::new();
    }
    let p = ensure_capabilities(p);
    vec![tweak(&p, |p| {
        for c in [C0, I0] {
            set(
                p,
                &format!("{c}/securityContext/capabilities/add"),
                json!(BASELINE_ADDABLE),
            );
        }
    })]
}
fn capabilities_baseline_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_capabilities(p);
    [
        (C0, "NET_RAW"),
        (I0, "NET_RAW"),
        (C0, "chown"),
        (C0, "CAP_CHOWN"),
    ]
    .iter()
    .map(|(c, cap)| {
        tweak(&p, |p| {
            set(
                p,
                &format!("{c}/securityContext/capabilities/add"),
                json!([cap]),
            )
        })
    })
    .collect()
}

// fixtures_capabilities_restricted.go, v1.22
fn capabilities_restricted_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_capabilities(p);
    vec![tweak(&p, |p| {
        for c in [C0, I0] {
            set(
                p,
                &format!("{c}/securityContext/capabilities/drop"),
                json!(["ALL"]),
            );
            set(
                p,
                &format!("{c}/securityContext/capabilities/add"),
                json!(["NET_BIND_SERVICE"]),
            );
        }
    })]
}
fn capabilities_restricted_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_capabilities(p);
    let every_capability = json!([
        "SYS_TIME",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "NET_ADMIN",
        "SYSLOG",
        "CHOWN",
        "NET_RAW",
        "DAC_OVERRIDE",
        "FOWNER",
        "DAC_READ_SEARCH",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_BOOT",
        "LEASE",
        "SETFCAP",
        "WAKE_ALARM",
        "BLOCK_SUSPEND"
    ]);
    vec![
        // `Drop = []`: omitempty, so no `drop` at all
        tweak(&p, |p| {
            unset(p, &format!("{C0}/securityContext/capabilities/drop"))
        }),
        tweak(&p, |p| {
            unset(p, &format!("{I0}/securityContext/capabilities/drop"))
        }),
        // dropping every capability by name is not dropping ALL
        tweak(&p, |p| {
            for c in [C0, I0] {
                set(
                    p,
                    &format!("{c}/securityContext/capabilities/drop"),
                    every_capability.clone(),
                );
            }
        }),
        // adding back anything but NET_BIND_SERVICE
        tweak(&p, |p| {
            for c in [C0, I0] {
                set(
                    p,
                    &format!("{c}/securityContext/capabilities/drop"),
                    json!(["ALL"]),
                );
                set(
                    p,
                    &format!("{c}/securityContext/capabilities/add"),
                    json!(BASELINE_ADDABLE),
                );
            }
        }),
    ]
}

// fixtures_appArmorProfile.go, v1.0
const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
fn app_armor_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_annotation(p);
    // PSA names containers[0] twice, so the second value wins for container1 and the init
    // container gets none: the pod as rendered.
    vec![annotate(
        &p,
        &[(format!("{APPARMOR_PREFIX}container1"), "localhost/foo")],
    )]
}
fn app_armor_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_annotation(p);
    ["container1", "initcontainer1"]
        .iter()
        .map(|name| {
            tweak(&p, |p| {
                if let Some(a) = at(p, &["metadata", "annotations"]).as_object_mut() {
                    a.insert(format!("{APPARMOR_PREFIX}{name}"), json!("unconfined"));
                }
            })
        })
        .collect()
}

// fixtures_seLinuxOptions.go, v1.0
fn se_linux_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_se_linux_options(p);
    vec![
        tweak(&p, |p| {
            unset(p, "spec/securityContext/seLinuxOptions");
            unset(p, &format!("{C0}/securityContext/seLinuxOptions"));
            set(
                p,
                &format!("{I0}/securityContext/seLinuxOptions"),
                json!({}),
            );
        }),
        tweak(&p, |p| {
            set(
                p,
                "spec/securityContext/seLinuxOptions/type",
                json!("container_t"),
            );
            set(
                p,
                &format!("{C0}/securityContext/seLinuxOptions/type"),
                json!("container_init_t"),
            );
            set(
                p,
                &format!("{I0}/securityContext/seLinuxOptions/type"),
                json!("container_kvm_t"),
            );
            // empty level (omitempty) and an arbitrary one
            set(
                p,
                &format!("{C0}/securityContext/seLinuxOptions/level"),
                json!("somevalue"),
            );
        }),
    ]
}
fn se_linux_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_se_linux_options(p);
    [
        "spec/securityContext/seLinuxOptions/type".to_string(),
        format!("{C0}/securityContext/seLinuxOptions/type"),
        format!("{I0}/securityContext/seLinuxOptions/type"),
        "spec/securityContext/seLinuxOptions/user".to_string(),
        "spec/securityContext/seLinuxOptions/role".to_string(),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, json!("somevalue"))))
    .collect()
}

// fixtures_procMount.go, v1.0
fn proc_mount_in(p: &Pod, containers: &[&str], kind: &str, host_users: bool) -> Pod {
    tweak(p, |p| {
        for c in containers {
            set(p, &format!("{c}/securityContext/procMount"), json!(kind));
        }
        set(p, "spec/hostUsers", json!(host_users));
    })
}
fn proc_mount_pass_1_0(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![proc_mount_in(&p, &[C0, I0], "Default", false)]
}
fn proc_mount_fail_1_0(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![
        proc_mount_in(&p, &[C0], "Unmasked", false),
        proc_mount_in(&p, &[I0], "Unmasked", false),
    ]
}
// v1.35, baseline: an unmasked /proc is allowed in a user namespace
fn proc_mount_pass_1_35(p: &Pod, level: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    let mut pods = vec![proc_mount_in(&p, &[C0, I0], "Default", false)];
    if level != R {
        pods.push(proc_mount_in(&p, &[C0, I0], "Unmasked", false));
    }
    pods
}
fn proc_mount_fail_1_35(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![
        proc_mount_in(&p, &[C0], "Unmasked", true),
        proc_mount_in(&p, &[I0], "Unmasked", true),
    ]
}
// v1.35, procMount_restricted: never unmasked
fn proc_mount_restricted_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![proc_mount_in(&p, &[C0, I0], "Default", false)]
}
fn proc_mount_restricted_fail(p: &Pod, _: Level) -> Vec<Pod> {
    // The v1.0 fail pods.
    proc_mount_fail_1_0(p, R)
}

// fixtures_seccompProfile_baseline.go (annotation keys from fixtures_seccomp.go)
const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
fn annotate(p: &Pod, pairs: &[(String, &str)]) -> Pod {
    tweak(p, |p| {
        for (key, value) in pairs {
            if let Some(a) = at(p, &["metadata", "annotations"]).as_object_mut() {
                a.insert(key.clone(), json!(value));
            }
        }
    })
}
fn seccomp_baseline_pass_1_0(p: &Pod, _: Level) -> Vec<Pod> {
    if get(p, &format!("metadata/annotations/{SECCOMP_POD}")) == Some(&json!("runtime/default")) {
        return Vec::new();
    }
    let p = ensure_annotation(p);
    vec![annotate(
        &p,
        &[
            (SECCOMP_POD.to_string(), "runtime/default"),
            (
                format!("{SECCOMP_CONTAINER}container1"),
                "localhost/testing",
            ),
        ],
    )]
}
fn seccomp_baseline_fail_1_0(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_annotation(p);
    [
        SECCOMP_POD.to_string(),
        format!("{SECCOMP_CONTAINER}container1"),
        format!("{SECCOMP_CONTAINER}initcontainer1"),
    ]
    .into_iter()
    .map(|key| annotate(&p, &[(key, "unconfined")]))
    .collect()
}
fn seccomp_baseline_pass_1_19(p: &Pod, _: Level) -> Vec<Pod> {
    if get(p, "spec/securityContext/seccompProfile/type") == Some(&json!("RuntimeDefault")) {
        return Vec::new();
    }
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(
            p,
            "spec/securityContext/seccompProfile",
            json!({"type": "RuntimeDefault"}),
        );
        set(
            p,
            &format!("{C0}/securityContext/seccompProfile"),
            json!({"type": "RuntimeDefault"}),
        );
    })]
}
fn seccomp_baseline_fail_1_19(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    [
        "spec/securityContext/seccompProfile".to_string(),
        format!("{C0}/securityContext/seccompProfile"),
        format!("{I0}/securityContext/seccompProfile"),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, json!({"type": "Unconfined"}))))
    .collect()
}

// fixtures_seccompProfile_restricted.go, v1.19
fn seccomp_restricted_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    let localhost = json!({"type": "Localhost", "localhostProfile": "testing"});
    vec![
        tweak(&p, |p| {
            set(
                p,
                "spec/securityContext/seccompProfile",
                json!({"type": "RuntimeDefault"}),
            )
        }),
        tweak(&p, |p| {
            set(p, "spec/securityContext/seccompProfile", localhost.clone())
        }),
        tweak(&p, |p| {
            unset(p, "spec/securityContext/seccompProfile");
            set(
                p,
                &format!("{C0}/securityContext/seccompProfile"),
                json!({"type": "RuntimeDefault"}),
            );
            set(
                p,
                &format!("{I0}/securityContext/seccompProfile"),
                localhost.clone(),
            );
        }),
    ]
}
fn seccomp_restricted_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    let rd = json!({"type": "RuntimeDefault"});
    vec![
        // unset everywhere
        tweak(&p, |p| unset(p, "spec/securityContext/seccompProfile")),
        // unconfined, pod-level
        tweak(&p, |p| {
            set(
                p,
                "spec/securityContext/seccompProfile",
                json!({"type": "Unconfined"}),
            )
        }),
        // unset initContainer
        tweak(&p, |p| {
            unset(p, "spec/securityContext/seccompProfile");
            set(
                p,
                &format!("{C0}/securityContext/seccompProfile"),
                rd.clone(),
            );
        }),
        // unset container
        tweak(&p, |p| {
            unset(p, "spec/securityContext/seccompProfile");
            set(
                p,
                &format!("{I0}/securityContext/seccompProfile"),
                rd.clone(),
            );
        }),
        // unconfined, container-level
        tweak(&p, |p| {
            unset(p, "spec/securityContext/seccompProfile");
            set(
                p,
                &format!("{C0}/securityContext/seccompProfile"),
                rd.clone(),
            );
            set(
                p,
                &format!("{I0}/securityContext/seccompProfile"),
                json!({"type": "Unconfined"}),
            );
        }),
    ]
}

// fixtures_sysctls.go: v1.0, v1.27, v1.29 (each allowing a longer prefix of this list)
const SAFE_SYSCTLS: [(&str, &str); 10] = [
    ("kernel.shm_rmid_forced", "0"),
    ("net.ipv4.ip_local_port_range", "1024 65535"),
    ("net.ipv4.tcp_syncookies", "0"),
    ("net.ipv4.ping_group_range", "1 0"),
    ("net.ipv4.ip_unprivileged_port_start", "1024"),
    // v1.27
    ("net.ipv4.ip_local_reserved_ports", "1024-4999"),
    // v1.29
    ("net.ipv4.tcp_keepalive_time", "7200"),
    ("net.ipv4.tcp_fin_timeout", "60"),
    ("net.ipv4.tcp_keepalive_intvl", "75"),
    ("net.ipv4.tcp_keepalive_probes", "9"),
];
fn sysctls_pass(p: &Pod, allowed: usize) -> Vec<Pod> {
    let p = tweak(p, |p| ensure_object(p, "spec/securityContext"));
    let sysctls: Vec<Value> = SAFE_SYSCTLS
        .iter()
        .take(allowed)
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    vec![
        tweak(&p, |p| unset(p, "spec/securityContext/sysctls")),
        tweak(&p, |p| {
            set(p, "spec/securityContext/sysctls", Value::Array(sysctls))
        }),
    ]
}
fn sysctls_pass_1_0(p: &Pod, _: Level) -> Vec<Pod> {
    sysctls_pass(p, 5)
}
fn sysctls_pass_1_27(p: &Pod, _: Level) -> Vec<Pod> {
    sysctls_pass(p, 6)
}
fn sysctls_pass_1_29(p: &Pod, _: Level) -> Vec<Pod> {
    sysctls_pass(p, 10)
}
/// From v1.32 on, PSA's pass pod sets only the sysctls the version adds (as rendered in
/// `testdata/baseline/v1.34/pass/sysctls1.yaml` at 5e377f9484190488bbbcb3ac9d24cc8be55e792f
/// and `testdata/baseline/v1.37/pass/sysctls1.yaml` at
/// a61aa9e68df74b70c40f17a69247683e534baa47; their generators are not in the stored copy).
fn sysctls_pass_only(p: &Pod, added: &[(&str, &str)]) -> Vec<Pod> {
    let p = tweak(p, |p| ensure_object(p, "spec/securityContext"));
    let sysctls: Vec<Value> = added
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    vec![
        tweak(&p, |p| unset(p, "spec/securityContext/sysctls")),
        tweak(&p, |p| {
            set(p, "spec/securityContext/sysctls", Value::Array(sysctls))
        }),
    ]
}
fn sysctls_pass_1_32(p: &Pod, _: Level) -> Vec<Pod> {
    sysctls_pass_only(
        p,
        &[
            ("net.ipv4.tcp_rmem", "4096 87380 16777216"),
            ("net.ipv4.tcp_wmem", "4096 65536 16777216"),
        ],
    )
}
fn sysctls_pass_1_37(p: &Pod, _: Level) -> Vec<Pod> {
    sysctls_pass_only(
        p,
        &[
            ("net.ipv4.tcp_slow_start_after_idle", "0"),
            ("net.ipv4.tcp_notsent_lowat", "16384"),
        ],
    )
}
fn sysctls_fail(p: &Pod, _: Level) -> Vec<Pod> {
    vec![tweak(p, |p| {
        set(
            p,
            "spec/securityContext/sysctls",
            json!([{"name": "othersysctl", "value": "other"}]),
        )
    })]
}

// fixtures_allowPrivilegeEscalation.go, v1.8
fn allow_privilege_escalation_fail(p: &Pod, _: Level) -> Vec<Pod> {
    vec![
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/securityContext/allowPrivilegeEscalation"),
                json!(true),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{I0}/securityContext/allowPrivilegeEscalation"),
                json!(true),
            )
        }),
        tweak(p, |p| {
            unset(p, &format!("{C0}/securityContext/allowPrivilegeEscalation"))
        }),
        tweak(p, |p| unset(p, &format!("{C0}/securityContext"))),
    ]
}

// fixtures_runAsNonRoot.go, v1.0
fn run_as_non_root_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| {
            set(p, "spec/securityContext/runAsNonRoot", json!(true));
            unset(p, &format!("{C0}/securityContext/runAsNonRoot"));
            unset(p, &format!("{I0}/securityContext/runAsNonRoot"));
        }),
        tweak(&p, |p| {
            unset(p, "spec/securityContext/runAsNonRoot");
            set(
                p,
                &format!("{C0}/securityContext/runAsNonRoot"),
                json!(true),
            );
            set(
                p,
                &format!("{I0}/securityContext/runAsNonRoot"),
                json!(true),
            );
        }),
    ]
}
fn run_as_non_root_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![
        tweak(&p, |p| {
            unset(p, "spec/securityContext/runAsNonRoot");
            unset(p, &format!("{C0}/securityContext/runAsNonRoot"));
            unset(p, &format!("{I0}/securityContext/runAsNonRoot"));
        }),
        tweak(&p, |p| {
            set(p, "spec/securityContext/runAsNonRoot", json!(false))
        }),
        tweak(&p, |p| {
            set(
                p,
                &format!("{C0}/securityContext/runAsNonRoot"),
                json!(false),
            )
        }),
        tweak(&p, |p| {
            set(
                p,
                &format!("{I0}/securityContext/runAsNonRoot"),
                json!(false),
            )
        }),
    ]
}

// fixtures_runAsUser.go, v1.23
fn run_as_user_pass(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    vec![tweak(&p, |p| {
        set(p, "spec/securityContext/runAsUser", json!(1000));
        set(p, &format!("{C0}/securityContext/runAsUser"), json!(1000));
        set(p, &format!("{I0}/securityContext/runAsUser"), json!(1000));
    })]
}
fn run_as_user_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = ensure_security_context(p);
    [
        "spec/securityContext/runAsUser".to_string(),
        format!("{C0}/securityContext/runAsUser"),
        format!("{I0}/securityContext/runAsUser"),
    ]
    .iter()
    .map(|path| tweak(&p, |p| set(p, path, json!(0))))
    .collect()
}

// fixtures_restrictedVolumes.go, v1.0
fn restricted_volumes_pass(p: &Pod, _: Level) -> Vec<Pod> {
    vec![tweak(p, |p| {
        set(
            p,
            "spec/volumes",
            json!([
                // implicit emptyDir
                {"name": "volume0"},
                {"name": "volume1", "emptyDir": {}},
                {"name": "volume2", "secret": {"secretName": "test"}},
                {"name": "volume3", "persistentVolumeClaim": {"claimName": "test"}},
                {"name": "volume4", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "volume5", "configMap": {"name": "test"}},
                {"name": "volume6", "projected": {"sources": []}}
            ]),
        )
    })]
}
fn restricted_volumes_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let sources = [
        json!({"gcePersistentDisk": {"pdName": "test"}}),
        json!({"awsElasticBlockStore": {"volumeID": "test"}}),
        json!({"gitRepo": {"repository": "github.com/kubernetes/kubernetes"}}),
        json!({"nfs": {"server": "test", "path": "/test"}}),
        json!({"iscsi": {"targetPortal": "test", "iqn": "iqn.2001-04.com.example:storage.kube.sys1.xyz", "lun": 0}}),
        json!({"glusterfs": {"path": "test", "endpoints": "test"}}),
        json!({"rbd": {"monitors": ["test"], "image": "test"}}),
        json!({"flexVolume": {"driver": "test"}}),
        json!({"cinder": {"volumeID": "test"}}),
        json!({"cephfs": {"monitors": ["test"]}}),
        json!({"flocker": {"datasetName": "test"}}),
        json!({"fc": {"wwids": ["test"]}}),
        json!({"azureFile": {"secretName": "test", "shareName": "test"}}),
        json!({"vsphereVolume": {"volumePath": "test"}}),
        json!({"quobyte": {"registry": "localhost:1234", "volume": "test"}}),
        json!({"azureDisk": {"diskName": "test", "diskURI": "https://test.blob.core.windows.net/test/test.vhd"}}),
        json!({"portworxVolume": {"volumeID": "test", "fsType": "ext4"}}),
        // `secretRef` has no omitempty: PSA renders `secretRef: null`, which k8s-openapi's
        // required field cannot hold; an empty reference stands in for it.
        json!({"scaleIO": {"volumeName": "test", "gateway": "localhost", "system": "test", "secretRef": {}}}),
        json!({"storageos": {"volumeName": "test"}}),
        json!({"hostPath": {"path": "/dev/null"}}),
    ];
    sources
        .into_iter()
        .map(|source| {
            tweak(p, |p| {
                let mut volume = json!({"name": "volume1"});
                if let (Some(v), Value::Object(s)) = (volume.as_object_mut(), source) {
                    v.extend(s);
                }
                set(p, "spec/volumes", json!([volume]));
            })
        })
        .collect()
}

// fixtures_windowsHostProcess.go, v1.0
fn windows_host_process_fail(p: &Pod, _: Level) -> Vec<Pod> {
    let p = tweak(&ensure_security_context(p), |p| {
        ensure_object(p, "spec/securityContext/windowsOptions");
        for c in [C0, I0] {
            ensure_object(p, &format!("{c}/securityContext/windowsOptions"));
        }
    });
    vec![
        // HostNetwork is required for HostProcess pods, to get past validation.
        tweak(&p, |p| {
            set(p, "spec/hostNetwork", json!(true));
            set(
                p,
                "spec/securityContext/windowsOptions/hostProcess",
                json!(true),
            );
        }),
        tweak(&p, |p| {
            set(p, "spec/hostNetwork", json!(true));
            for c in [C0, I0] {
                set(
                    p,
                    &format!("{c}/securityContext/windowsOptions/hostProcess"),
                    json!(true),
                );
            }
        }),
    ]
}

// fixtures_hostProbesAndHostLifecycle.go, v1.34
fn host_probes_pass(p: &Pod, _: Level) -> Vec<Pod> {
    vec![
        p.clone(),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/livenessProbe"),
                json!({"httpGet": {"port": 8080}}),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/readinessProbe"),
                json!({"tcpSocket": {"port": 8080}}),
            )
        }),
    ]
}
fn host_probes_fail(p: &Pod, _: Level) -> Vec<Pod> {
    vec![
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/livenessProbe"),
                json!({"httpGet": {"host": "bad.host", "port": 8080}}),
            )
        }),
        tweak(p, |p| {
            set(p, &format!("{I0}/restartPolicy"), json!("Always"));
            set(
                p,
                &format!("{I0}/readinessProbe"),
                json!({"tcpSocket": {"host": "8.8.8.8", "port": 8080}}),
            );
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/lifecycle"),
                json!({"postStart": {"httpGet": {"host": "bad.host", "port": 8080}}}),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/livenessProbe"),
                json!({"httpGet": {"host": "127.0.0.1", "port": 8080}}),
            )
        }),
        tweak(p, |p| {
            set(
                p,
                &format!("{C0}/readinessProbe"),
                json!({"tcpSocket": {"host": "::1", "port": 8080}}),
            )
        }),
    ]
}

// ---- the table ------------------------------------------------------------------------

const BOTH_FROM_0: &[Span] = &[span(B, 0, None), span(R, 0, None)];

static FIXTURES: &[Fixture] = &[
    Fixture {
        check: "appArmorProfile",
        since: 0,
        expect: "forbidden AppArmor profile",
        spans: BOTH_FROM_0,
        pass: app_armor_pass,
        fail: app_armor_fail,
    },
    Fixture {
        check: "capabilities_baseline",
        since: 0,
        expect: "non-default capabilities",
        // restricted replaces it with capabilities_restricted from v1.22
        spans: &[span(B, 0, None), span(R, 0, Some(22))],
        pass: capabilities_baseline_pass,
        fail: capabilities_baseline_fail,
    },
    Fixture {
        check: "hostNamespaces",
        since: 0,
        expect: "host namespaces",
        spans: BOTH_FROM_0,
        pass: none,
        fail: host_namespaces_fail,
    },
    Fixture {
        check: "hostPathVolumes",
        since: 0,
        expect: "hostPath volumes",
        // restrictedVolumes replaces it at restricted, at every version
        spans: &[span(B, 0, None)],
        pass: none,
        fail: host_path_volumes_fail,
    },
    Fixture {
        check: "hostPorts",
        since: 0,
        expect: "hostPort",
        spans: BOTH_FROM_0,
        pass: host_ports_pass,
        fail: host_ports_fail,
    },
    Fixture {
        check: "hostProbesAndHostLifecycle",
        since: 34,
        expect: "probe or lifecycle host",
        spans: &[span(B, 34, None), span(R, 34, None)],
        pass: host_probes_pass,
        fail: host_probes_fail,
    },
    Fixture {
        check: "privileged",
        since: 0,
        expect: "privileged",
        spans: BOTH_FROM_0,
        pass: privileged_pass,
        fail: privileged_fail,
    },
    Fixture {
        check: "procMount",
        since: 0,
        expect: "procMount",
        spans: &[span(B, 0, Some(35)), span(R, 0, Some(35))],
        pass: proc_mount_pass_1_0,
        fail: proc_mount_fail_1_0,
    },
    Fixture {
        check: "procMount",
        since: 35,
        expect: "procMount",
        // procMount_restricted replaces it at restricted from v1.35
        spans: &[span(B, 35, None)],
        pass: proc_mount_pass_1_35,
        fail: proc_mount_fail_1_35,
    },
    Fixture {
        check: "seLinuxOptions",
        since: 0,
        expect: "seLinuxOptions",
        spans: BOTH_FROM_0,
        pass: se_linux_pass,
        fail: se_linux_fail,
    },
    Fixture {
        check: "seccompProfile_baseline",
        since: 0,
        expect: "seccompProfile",
        spans: &[span(B, 0, Some(19)), span(R, 0, Some(19))],
        pass: seccomp_baseline_pass_1_0,
        fail: seccomp_baseline_fail_1_0,
    },
    Fixture {
        check: "seccompProfile_baseline",
        since: 19,
        expect: "seccompProfile",
        // seccompProfile_restricted replaces it at restricted from v1.19
        spans: &[span(B, 19, None)],
        pass: seccomp_baseline_pass_1_19,
        fail: seccomp_baseline_fail_1_19,
    },
    Fixture {
        check: "sysctls",
        since: 0,
        expect: "forbidden sysctl",
        spans: &[span(B, 0, Some(27)), span(R, 0, Some(27))],
        pass: sysctls_pass_1_0,
        fail: sysctls_fail,
    },
    Fixture {
        check: "sysctls",
        since: 27,
        expect: "forbidden sysctl",
        spans: &[span(B, 27, Some(29)), span(R, 27, Some(29))],
        pass: sysctls_pass_1_27,
        fail: sysctls_fail,
    },
    Fixture {
        check: "sysctls",
        since: 29,
        expect: "forbidden sysctl",
        spans: &[span(B, 29, Some(32)), span(R, 29, Some(32))],
        pass: sysctls_pass_1_29,
        fail: sysctls_fail,
    },
    Fixture {
        check: "sysctls",
        since: 32,
        expect: "forbidden sysctl",
        spans: &[span(B, 32, Some(37)), span(R, 32, Some(37))],
        pass: sysctls_pass_1_32,
        fail: sysctls_fail,
    },
    Fixture {
        check: "sysctls",
        since: 37,
        expect: "forbidden sysctl",
        spans: &[span(B, 37, None), span(R, 37, None)],
        pass: sysctls_pass_1_37,
        fail: sysctls_fail,
    },
    Fixture {
        check: "windowsHostProcess",
        since: 0,
        expect: "hostProcess",
        spans: BOTH_FROM_0,
        pass: none,
        fail: windows_host_process_fail,
    },
    Fixture {
        check: "allowPrivilegeEscalation",
        since: 8,
        expect: "allowPrivilegeEscalation",
        spans: &[span(R, 8, None)],
        pass: none,
        fail: allow_privilege_escalation_fail,
    },
    Fixture {
        check: "capabilities_restricted",
        since: 22,
        expect: "unrestricted capabilities",
        spans: &[span(R, 22, None)],
        pass: capabilities_restricted_pass,
        fail: capabilities_restricted_fail,
    },
    Fixture {
        check: "procMount_restricted",
        since: 35,
        expect: "procMount",
        spans: &[span(R, 35, None)],
        pass: proc_mount_restricted_pass,
        fail: proc_mount_restricted_fail,
    },
    Fixture {
        check: "restrictedVolumes",
        since: 0,
        expect: "restricted volume types",
        spans: &[span(R, 0, None)],
        pass: restricted_volumes_pass,
        fail: restricted_volumes_fail,
    },
    Fixture {
        check: "runAsNonRoot",
        since: 0,
        expect: "runAsNonRoot",
        spans: &[span(R, 0, None)],
        pass: run_as_non_root_pass,
        fail: run_as_non_root_fail,
    },
    Fixture {
        check: "runAsUser",
        since: 23,
        expect: "runAsUser",
        spans: &[span(R, 23, None)],
        pass: run_as_user_pass,
        fail: run_as_user_fail,
    },
    Fixture {
        check: "seccompProfile_restricted",
        since: 19,
        expect: "seccompProfile",
        spans: &[span(R, 19, None)],
        pass: seccomp_restricted_pass,
        fail: seccomp_restricted_fail,
    },
];

/// The version boundaries: what a generator's pods do just before it is registered.
static BOUNDARIES: &[Boundary] = &[
    // A check that starts at v1.N lets its fail pods through at v1.(N-1).
    Boundary {
        check: "allowPrivilegeEscalation",
        since: 8,
        fail_pods: true,
        index: None,
        level: R,
        at: 7,
        expect: Before::Passes,
    },
    Boundary {
        check: "seccompProfile_restricted",
        since: 19,
        fail_pods: true,
        index: None,
        level: R,
        at: 18,
        expect: Before::Passes,
    },
    Boundary {
        check: "capabilities_restricted",
        since: 22,
        fail_pods: true,
        index: None,
        level: R,
        at: 21,
        expect: Before::Passes,
    },
    Boundary {
        check: "runAsUser",
        since: 23,
        fail_pods: true,
        index: None,
        level: R,
        at: 22,
        expect: Before::Passes,
    },
    Boundary {
        check: "hostProbesAndHostLifecycle",
        since: 34,
        fail_pods: true,
        index: None,
        level: B,
        at: 33,
        expect: Before::Passes,
    },
    Boundary {
        check: "hostProbesAndHostLifecycle",
        since: 34,
        fail_pods: true,
        index: None,
        level: R,
        at: 33,
        expect: Before::Passes,
    },
    // Before v1.19 seccomp was judged by the alpha annotations alone: the field is not
    // looked at.
    Boundary {
        check: "seccompProfile_baseline",
        since: 19,
        fail_pods: true,
        index: None,
        level: B,
        at: 18,
        expect: Before::Passes,
    },
    // procMount_restricted's fail pods are the v1.0 procMount fail pods: at v1.34 the
    // baseline check, still in force at restricted, refuses them.
    Boundary {
        check: "procMount_restricted",
        since: 35,
        fail_pods: true,
        index: None,
        level: R,
        at: 34,
        expect: Before::FailsWith("procMount"),
    },
    // A relaxation's new pass pod is refused by the version before it.
    Boundary {
        check: "procMount",
        since: 35,
        fail_pods: false,
        index: Some(1),
        level: B,
        at: 34,
        expect: Before::FailsWith("procMount"),
    },
    Boundary {
        check: "sysctls",
        since: 27,
        fail_pods: false,
        index: Some(1),
        level: B,
        at: 26,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 27,
        fail_pods: false,
        index: Some(1),
        level: R,
        at: 26,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 29,
        fail_pods: false,
        index: Some(1),
        level: B,
        at: 28,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 29,
        fail_pods: false,
        index: Some(1),
        level: R,
        at: 28,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 32,
        fail_pods: false,
        index: Some(1),
        level: B,
        at: 31,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 32,
        fail_pods: false,
        index: Some(1),
        level: R,
        at: 31,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 37,
        fail_pods: false,
        index: Some(1),
        level: B,
        at: 36,
        expect: Before::FailsWith("sysctls"),
    },
    Boundary {
        check: "sysctls",
        since: 37,
        fail_pods: false,
        index: Some(1),
        level: R,
        at: 36,
        expect: Before::FailsWith("sysctls"),
    },
];

// ---- judging --------------------------------------------------------------------------

fn versions(span: &Span) -> Vec<Version> {
    let last = span.until.map_or(NEWEST_KNOWN_MINOR, |u| u - 1);
    let mut out: Vec<Version> = (span.from..=last).map(Version::Minor).collect();
    if span.until.is_none() {
        out.push(Version::Latest);
    }
    out
}

fn minor_of(version: Version) -> u32 {
    match version {
        Version::Minor(m) => m,
        Version::Latest => NEWEST_KNOWN_MINOR,
    }
}

/// `check --no-mutate`: the API server's defaults, then PSA's evaluation.
fn judge(level: Level, version: Version, mut fixture_pod: Pod) -> Vec<CheckResult> {
    crate::api_defaults::apply_pod_defaults(&mut fixture_pod);
    let (metadata, spec) = pod(fixture_pod);
    evaluate(level, version, &metadata, &spec)
}

/// PSA's error text for a refused pod: each failing check's `reason (detail)`.
fn message(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| format!("{} ({})", r.forbidden_reason, r.forbidden_detail))
        .collect::<Vec<_>>()
        .join("; ")
}

fn fixture(check: &str, since: u32) -> &'static Fixture {
    FIXTURES
        .iter()
        .find(|f| f.check == check && f.since == since)
        .expect("fixture in the table")
}

#[test]
fn every_pass_fixture_passes_and_every_fail_fixture_fails_with_its_check() {
    let mut problems = Vec::new();
    let mut judged = 0;
    for f in FIXTURES {
        for span in f.spans {
            for version in versions(span) {
                let minimal = minimal_pod(span.level, minor_of(version));
                let at = format!("{} {}:{version}", f.check, span.level);
                for (i, p) in (f.pass)(&minimal, span.level).into_iter().enumerate() {
                    judged += 1;
                    let results = judge(span.level, version, p);
                    if !results.is_empty() {
                        problems.push(format!("{at} pass{i}: refused: {}", message(&results)));
                    }
                }
                let fails = (f.fail)(&minimal, span.level);
                assert!(!fails.is_empty(), "{at}: PSA requires a fail pod");
                for (i, p) in fails.into_iter().enumerate() {
                    judged += 1;
                    let results = judge(span.level, version, p);
                    let by_check = results.iter().any(|r| r.check_id == f.check);
                    if !by_check || !message(&results).contains(f.expect) {
                        problems.push(format!(
                            "{at} fail{i}: want {} with {:?}, got {:?}",
                            f.check,
                            f.expect,
                            results.iter().map(|r| r.check_id).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
    }
    assert!(judged > 2000, "{judged} fixture pods judged");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_minimal_valid_pods_pass_at_every_version() {
    for level in [B, R] {
        for span in [span(level, 0, None)] {
            for version in versions(&span) {
                let p = minimal_pod(level, minor_of(version));
                assert_eq!(judge(level, version, p), vec![], "{level}:{version}");
            }
        }
    }
}

#[test]
fn fail_fixtures_pass_at_the_privileged_level() {
    for f in FIXTURES {
        for span in f.spans {
            let minimal = minimal_pod(span.level, span.from);
            for p in (f.fail)(&minimal, span.level) {
                assert_eq!(
                    judge(Level::Privileged, Version::Latest, p),
                    vec![],
                    "{}",
                    f.check
                );
            }
        }
    }
}

/// PSA renders fixtures for exactly the checks in force at each (level, version); so the
/// table's spans are those checks, and our registry must agree on when each applies.
#[test]
fn fixture_spans_are_the_checks_in_force_at_each_level_and_version() {
    for level in [B, R] {
        for minor in 0..=NEWEST_KNOWN_MINOR {
            let mut from_fixtures: Vec<&str> = FIXTURES
                .iter()
                .filter(|f| {
                    f.spans.iter().any(|s| {
                        s.level == level && s.from <= minor && s.until.is_none_or(|u| minor < u)
                    })
                })
                .map(|f| f.check)
                .collect();
            from_fixtures.sort_unstable();
            let mut in_force = check_ids_for(level, Version::Minor(minor));
            in_force.sort_unstable();
            assert_eq!(in_force, from_fixtures, "{level}:v1.{minor}");
        }
    }
}

#[test]
fn version_boundaries() {
    let mut problems = Vec::new();
    for b in BOUNDARIES {
        let f = fixture(b.check, b.since);
        let minimal = minimal_pod(b.level, b.since);
        let pods = if b.fail_pods {
            (f.fail)(&minimal, b.level)
        } else {
            (f.pass)(&minimal, b.level)
        };
        let chosen: Vec<(usize, Pod)> = match b.index {
            Some(i) => vec![(i, pods.get(i).cloned().expect("pod index"))],
            None => pods.into_iter().enumerate().collect(),
        };
        for (i, p) in chosen {
            let results = judge(b.level, Version::Minor(b.at), p);
            let ok = match b.expect {
                Before::Passes => results.is_empty(),
                Before::FailsWith(id) => results.iter().any(|r| r.check_id == id),
            };
            if !ok {
                problems.push(format!(
                    "{} v1.{} {}{i} at {}:v1.{}: got {:?}",
                    b.check,
                    b.since,
                    if b.fail_pods { "fail" } else { "pass" },
                    b.level,
                    b.at,
                    results.iter().map(|r| r.check_id).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A stored rendering of `testdata/baseline/v1.34/fail/hostprobesandhostlifecycle1.yaml`
/// (at 33155ee7fca2db95998aa41701f23ddc2cf73f14) probes from a plain init container, with no
/// `restartPolicy: Always`: PSA visits every container's probes, sidecar or not.
#[test]
fn testdata_host_probe_on_a_plain_init_container_fails() {
    for level in [B, R] {
        for version in versions(&span(level, 33, None)) {
            let p = tweak(&minimal_pod(level, minor_of(version)), |p| {
                set(
                    p,
                    &format!("{I0}/readinessProbe"),
                    json!({"tcpSocket": {"host": "8.8.8.8", "port": 80}}),
                )
            });
            let ids: Vec<&str> = judge(level, version, p)
                .iter()
                .map(|r| r.check_id)
                .collect();
            // The check starts at v1.34.
            let want: &[&str] = if version == Version::Minor(33) {
                &[]
            } else {
                &["hostProbesAndHostLifecycle"]
            };
            assert_eq!(ids, want, "{level}:{version}");
        }
    }
}

/// `fixtures.go`'s OS-specific minimal pods (`addLinux`, `addWindows`): a Linux pod is the
/// OS-neutral one with `os.name: linux`; from v1.25 a Windows pod needs none of the
/// restricted requirements added after v1.0 (`restricted_1_25_windows`), which the
/// versions before v1.25 still ask of it.
#[test]
fn os_specific_minimal_pods() {
    let with_os = |p: Pod, os: &str| tweak(&p, |p| set(p, "spec/os", json!({"name": os})));
    for version in versions(&span(R, 0, None)) {
        let linux = with_os(minimal_pod(R, minor_of(version)), "linux");
        assert_eq!(judge(R, version, linux), vec![], "linux {version}");
    }
    let windows = with_os(minimal_pod(R, 0), "windows");
    for version in versions(&span(R, 25, None)) {
        assert_eq!(
            judge(R, version, windows.clone()),
            vec![],
            "windows {version}"
        );
    }
    let ids: Vec<&str> = judge(R, Version::Minor(24), windows)
        .iter()
        .map(|r| r.check_id)
        .collect();
    assert_eq!(
        ids,
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "seccompProfile_restricted"
        ]
    );
}
