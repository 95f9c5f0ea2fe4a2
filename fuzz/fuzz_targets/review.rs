//! A webhook request body, end to end as `webhook::routes::decide` handles it: the
//! JSON-object check, one `AdmissionReview` decode, the apiVersion/kind check, then the
//! front door's `admission::mutate` and `admission::validate` under two policies, the
//! response encoded as it goes on the wire. A returned patch must apply to the object it was computed from.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use mcpguard_core::review::{
    API_VERSION, AdmissionRequest, AdmissionReview, AdmissionReviewOut, KIND,
};
use mcpguard_core::admission::{self, Context};
use mcpguard_core::engine::Decision;
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};
use serde_json::json;

/// Exceptions (one live, one expired), warn mode with an audit namespace, maxResources,
/// default requests/limits, a RuntimeClass, tolerations and affinity: the policy paths the
/// embedded default leaves untouched.
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
    policies: PolicySet,
    runtime_classes: StaticRuntimeClasses,
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

fn now() -> jiff::Timestamp {
    "2030-01-01T00:00:00Z".parse().expect("a timestamp")
}

/// The response as `routes.rs` sends it; a patch must decode from the wire form and apply
/// to the request's own object.
fn check_decision(request: &AdmissionRequest, decision: &Decision, what: &str) {
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
}

fn review(data: &[u8]) {
    // routes.rs: an AdmissionReview is an object, anything else is refused up front.
    if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return;
    }
    let Ok(review) = serde_json::from_slice::<AdmissionReview>(data) else {
        return;
    };
    if review.api_version != API_VERSION || review.kind != KIND {
        return;
    }
    let Some(request) = review.request else {
        return;
    };
    for setup in SETUPS.iter() {
        let context = Context {
            policies: &setup.policies,
            runtime_classes: &setup.runtime_classes,
            now: now(),
            secret_access: mcpguard_core::admission::SecretAccess::Offline,
        };
        let mutated = admission::mutate(&request, context).decision;
        check_decision(&request, &mutated, "mutate");
        let validated = admission::validate(&request, context).decision;
        check_decision(&request, &validated, "validate");
    }
}

fuzz_target!(|data: &[u8]| review(data));
