//! A policy file, as `mcpguard serve --policy` and the policy reloader read it: parsing must
//! answer Ok or Err, never panic; an accepted policy must then judge a small pod.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::admission::{self, Context};
use mcpguard_core::engine::Decision;
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use serde_json::json;

/// A CREATE of a small, noncompliant pod in the policy's first namespace, so it is in scope.
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

fn check_decision(request: &AdmissionRequest, decision: &Decision) {
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

fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = policy::parse_str(text, "fuzz") else {
        return;
    };
    let request = small_pod_request(&policy);
    let policies = PolicySet::single(std::sync::Arc::new(policy));
    let runtime_classes = StaticRuntimeClasses::default();
    let context = Context {
        policies: &policies,
        runtime_classes: &runtime_classes,
        now: "2030-01-01T00:00:00Z".parse().expect("a timestamp"),
        secret_access: mcpguard_core::admission::SecretAccess::Offline,
    };
    check_decision(&request, &admission::mutate(&request, context).decision);
    check_decision(&request, &admission::validate(&request, context).decision);
}

fuzz_target!(|data: &[u8]| policy(data));
