//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the saved crash inputs
//! (`fuzz/regressions/<target>/`) on stable, through the same steps as the cargo-fuzz
//! targets in `fuzz/fuzz_targets/`, so an input that once found a bug, or that reaches a
//! corner of the code, is checked by every `cargo test`. The target bodies are duplicated
//! here rather than shared, so this test does not depend on the fuzz crate (which needs
//! libFuzzer and nightly flags). Keep the two in step.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use mcpguard_core::admission::{self, Context};
use mcpguard_core::documents;
use mcpguard_core::engine::{Decision, Outcome};
use mcpguard_core::harden::{self, Scope};
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::review::{
    API_VERSION, AdmissionRequest, AdmissionReview, AdmissionReviewOut, KIND,
};
use mcpguard_core::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};
use serde_json::json;

/// Every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `body` on every input of `target`; fails naming each input that panicked. `body`
/// answers whether the input got past parsing into the code under test; returns how many did.
fn replay(target: &str, body: fn(&[u8]) -> bool) -> usize {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no inputs for fuzz target {target:?} under fuzz/corpus or fuzz/regressions"
    );
    let (mut failed, mut deep) = (Vec::new(), 0);
    for path in &files {
        let data = std::fs::read(path).expect("readable corpus file");
        match panic::catch_unwind(AssertUnwindSafe(|| body(&data))) {
            Ok(reached) => deep += usize::from(reached),
            Err(_) => failed.push(path.display().to_string()),
        }
    }
    println!(
        "fuzz target {target}: replayed {} inputs, {deep} of them past parsing",
        files.len()
    );
    assert!(
        failed.is_empty(),
        "fuzz target {target}: {} of {} inputs panicked:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    deep
}

/// How many inputs of the checked-in corpus get past parsing today (`cargo test --test
/// fuzz_corpus -- --nocapture` prints it). The corpus only grows (a regression input is
/// added, none removed), so fewer means the parser started rejecting what it accepted.
const PARSED_POLICY_INPUTS: usize = 22;
/// As [`PARSED_POLICY_INPUTS`], for `documents::split`.
const PARSED_DOCUMENT_INPUTS: usize = 31;

/// Fails when fewer than `floor` inputs of `target` got past parsing: a parser that rejected
/// everything would otherwise replay "without panics" and pass.
#[track_caller]
fn assert_at_least(floor: usize, parsed: usize, target: &str) {
    assert!(
        parsed >= floor,
        "fuzz target {target}: only {parsed} inputs got past parsing; {floor} did when this floor was set"
    );
}

fn now() -> jiff::Timestamp {
    "2030-01-01T00:00:00Z".parse().expect("a timestamp")
}

// ---- review (fuzz/fuzz_targets/review.rs) -----------------------------------------------

/// The review target's inline policy: exceptions, warn/audit modes, maxResources, default
/// resources, a RuntimeClass, tolerations and affinity.
const FUZZ_POLICY: &str = r#"
apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: fuzz-exceptions}
spec:
  namespaces: [mcp, legacy]
  podSecurity: {level: restricted, version: v1.25}
  mode: warn
  namespaceModes: {legacy: audit}
  mutate:
    podSecurityContext:
      runAsNonRoot: true
      runAsUser: 1000
      fsGroup: 1000
      seccompProfile: {type: RuntimeDefault}
    containerSecurityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
    runtimeClassName: gvisor
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: "1", memory: 1Gi}
    tolerations: [{key: sandbox, operator: Exists, effect: NoSchedule}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions: [{key: pool, operator: In, values: [mcp]}]
    imagePullPolicy: alwaysExceptNever
    automountServiceAccountToken: remove
  validate:
    allowedRegistries: [ghcr.io, docker.io/mcp]
    requireRuntimeClass: true
    maxResources: {cpu: "2", memory: 4Gi, ephemeral-storage: 10Gi}
    forbidSecretLiterals: true
  exceptions:
    - name: browser
      reason: SEC-1 headless Chromium
      match:
        namespaces: [mcp]
        names: ["browser-*", "play?"]
        images: [mcr.microsoft.com/playwright]
        serviceAccounts: [default]
      checks: [privileged, allowPrivilegeEscalation, capabilities_restricted]
      expires: 2099-12-31
    - name: ops
      reason: SEC-2 on-call debugging
      match:
        users: [jane@example.com]
        groups: [platform]
      checks: [runAsNonRoot, runAsUser, maxResources, allowedRegistries]
    - name: expired
      reason: SEC-3 long gone
      match: {names: ["fetch"]}
      checks: [privileged]
      expires: 2020-01-01T00:00:00Z
"#;

struct Setup {
    /// One policy, judging every namespace.
    policies: PolicySet,
    runtime_classes: StaticRuntimeClasses,
}

impl Setup {
    fn context(&self) -> Context<'_> {
        Context {
            policies: &self.policies,
            runtime_classes: &self.runtime_classes,
            now: now(),
            secret_access: mcpguard_core::admission::SecretAccess::Offline,
        }
    }
}

static SETUPS: LazyLock<Vec<Setup>> = LazyLock::new(|| {
    let gvisor = RuntimeClassInfo {
        overhead_pod_fixed: json!({"cpu": "250m", "memory": "120Mi"})
            .as_object()
            .cloned(),
        node_selector: [("sandbox.gke.io/runtime".to_owned(), "gvisor".to_owned())].into(),
        tolerations: vec![json!({"key": "sandbox.gke.io/runtime", "operator": "Equal",
            "value": "gvisor", "effect": "NoSchedule"})],
    };
    vec![
        Setup {
            policies: PolicySet::single(Arc::new(
                Policy::embedded_default().expect("embedded policy loads"),
            )),
            runtime_classes: StaticRuntimeClasses::default(),
        },
        Setup {
            policies: PolicySet::single(Arc::new(
                policy::parse_str(FUZZ_POLICY, "fuzz").expect("fuzz policy loads"),
            )),
            runtime_classes: StaticRuntimeClasses(HashMap::from([("gvisor".to_owned(), gvisor)])),
        },
    ]
});

/// Patches applied by the review replay, so the test shows it checked some.
static PATCHES_APPLIED: AtomicUsize = AtomicUsize::new(0);

fn check_review_decision(request: &AdmissionRequest, decision: &Decision, what: &str) {
    let out = decision.to_response(&request.uid).into_review();
    let bytes = serde_json::to_vec(&out).expect("response serialises");
    assert_eq!(
        decision.review_json(&request.uid),
        bytes,
        "{what}: the answer on the wire is not the response serde writes"
    );
    let Some(patch) = &decision.patch else {
        assert!(
            out.response.patch.is_none(),
            "{what}: patch on the wire without a patch"
        );
        return;
    };
    let back: AdmissionReviewOut = serde_json::from_slice(&bytes).expect("response reads back");
    let wire = back
        .response
        .decoded_patch()
        .expect("patch on the wire")
        .expect("patch decodes");
    assert_eq!(&wire, patch, "{what}: patch changed on the wire");
    // The object as sent, managedFields included: what the API server patches.
    let mut object = request
        .object
        .as_ref()
        .map(|object| object.full().into_owned())
        .unwrap_or_else(|| panic!("{what}: a patch for a request without an object"));
    if let Err(err) = json_patch::patch(&mut object, patch) {
        panic!(
            "{what}: patch does not apply to its own input: {err}\npatch: {}",
            serde_json::to_string(patch).unwrap_or_default()
        );
    }
    PATCHES_APPLIED.fetch_add(1, Ordering::Relaxed);
}

fn review_target(data: &[u8]) -> bool {
    if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let Ok(review) = serde_json::from_slice::<AdmissionReview>(data) else {
        return false;
    };
    if review.api_version != API_VERSION || review.kind != KIND {
        return false;
    }
    let Some(request) = review.request else {
        return false;
    };
    for setup in SETUPS.iter() {
        let context = setup.context();
        let mutated = admission::mutate(&request, context).decision;
        check_review_decision(&request, &mutated, "mutate");
        let validated = admission::validate(&request, context).decision;
        check_review_decision(&request, &validated, "validate");
    }
    true
}

#[test]
fn review_corpus_replays_without_panics_and_patches_apply() {
    replay("review", review_target);
    let patches = PATCHES_APPLIED.load(Ordering::Relaxed);
    println!("fuzz target review: {patches} patches applied to their own input");
    assert!(patches > 0, "the review corpus should produce some patches");
}

/// Mutations checked against the hardening they stand for, so the test shows it checked some.
static MUTATIONS_CHECKED: AtomicUsize = AtomicUsize::new(0);

/// Not a copy of a fuzz target: for every review in the corpus that `admission::mutate` hardens,
/// its patch applied by `json_patch::patch` to the request's object must give exactly the pod
/// `harden::harden_pod` returns, with no more operations than `json_patch::diff` needs.
fn mutation_target(data: &[u8]) -> bool {
    let Ok(AdmissionReview {
        request: Some(request),
        ..
    }) = serde_json::from_slice::<AdmissionReview>(data)
    else {
        return false;
    };
    let Some(object) = request.object.as_ref().map(|object| object.full()) else {
        return false;
    };
    let existing: Vec<String> = request
        .old_object
        .as_ref()
        .and_then(|old| old.pointer("/spec/ephemeralContainers"))
        .and_then(|list| list.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let scope = match request.sub_resource() {
        "" => Scope::WholePod,
        "ephemeralcontainers" => Scope::NewEphemeralContainers {
            existing: &existing,
        },
        _ => return false,
    };
    for setup in SETUPS.iter() {
        let decision = admission::mutate(&request, setup.context()).decision;
        if !matches!(decision.outcome, Outcome::Mutated | Outcome::Allowed)
            || decision.audit_annotations.is_empty()
        {
            continue;
        }
        let Ok(expected) = harden::harden_pod(
            &object,
            scope.clone(),
            setup.policies.fallback(),
            &setup.runtime_classes,
        ) else {
            panic!("mutate admitted a pod that harden_pod refuses");
        };
        let patch = decision.patch.unwrap_or_default();
        let mut patched = object.clone().into_owned();
        json_patch::patch(&mut patched, &patch).expect("the patch applies");
        let shown = serde_json::to_string(&patch).unwrap_or_default();
        assert_eq!(patched, expected.pod, "patch: {shown}");
        let diff = json_patch::diff(&object, &expected.pod);
        assert!(patch.len() <= diff.len(), "patch: {shown}");
        MUTATIONS_CHECKED.fetch_add(1, Ordering::Relaxed);
    }
    true
}

#[test]
fn review_corpus_patches_reproduce_the_hardened_pod() {
    replay("review", mutation_target);
    let checked = MUTATIONS_CHECKED.load(Ordering::Relaxed);
    println!("fuzz target review: {checked} mutations checked against harden_pod");
    assert!(
        checked > 0,
        "the review corpus should produce some mutations"
    );
}

// ---- policy (fuzz/fuzz_targets/policy.rs) -----------------------------------------------

fn small_pod_request(policy: &Policy) -> AdmissionRequest {
    let namespace = policy.spec.namespaces.first().cloned().unwrap_or_default();
    serde_json::from_value(json!({
        "uid": "fuzz",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "browser-1",
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "jane@example.com", "groups": ["platform"]},
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "browser-1", "namespace": namespace},
            "spec": {
                "containers": [{
                    "name": "server",
                    "image": "mcr.microsoft.com/playwright:v1.50.0",
                    "env": [{"name": "API_TOKEN", "value": "hunter2"}],
                    "resources": {"limits": {"cpu": "3", "memory": "5Gi"}},
                    "securityContext": {"privileged": true}
                }],
                "initContainers": [{"name": "init", "image": "busybox"}]
            }
        }
    }))
    .expect("the small pod request decodes")
}

fn check_policy_decision(request: &AdmissionRequest, decision: &Decision) {
    let out = decision.to_response(&request.uid).into_review();
    serde_json::to_vec(&out).expect("response serialises");
    if let Some(patch) = &decision.patch {
        let mut object = request
            .object
            .as_ref()
            .map(|object| object.full().into_owned())
            .expect("the request has an object");
        if let Err(err) = json_patch::patch(&mut object, patch) {
            panic!("patch does not apply to its own input: {err}");
        }
    }
}

fn policy_target(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(policy) = policy::parse_str(text, "fuzz") else {
        return false;
    };
    let request = small_pod_request(&policy);
    let policies = PolicySet::single(Arc::new(policy));
    let runtime_classes = StaticRuntimeClasses::default();
    let context = Context {
        policies: &policies,
        runtime_classes: &runtime_classes,
        now: now(),
        secret_access: mcpguard_core::admission::SecretAccess::Offline,
    };
    check_policy_decision(&request, &admission::mutate(&request, context).decision);
    check_policy_decision(&request, &admission::validate(&request, context).decision);
    true
}

#[test]
fn policy_corpus_replays_without_panics() {
    let parsed = replay("policy", policy_target);
    assert_at_least(PARSED_POLICY_INPUTS, parsed, "policy");
}

// ---- documents (fuzz/fuzz_targets/documents.rs) -----------------------------------------

fn documents_target(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(objects) = documents::split(text, "fuzz") else {
        return false;
    };
    for object in &objects {
        assert!(object.index >= 1, "document index is 1-based");
        assert!(
            object.object.get("kind").is_some_and(|k| k.is_string()),
            "split returned an object without a string kind"
        );
    }
    true
}

#[test]
fn documents_corpus_replays_without_panics() {
    let parsed = replay("documents", documents_target);
    assert_at_least(PARSED_DOCUMENT_INPUTS, parsed, "documents");
}
