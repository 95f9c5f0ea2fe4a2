//! What the default policy answers for the example pod, as the tests expect it: its denial
//! and its hardening, hand-written from the README and the policy, not computed by the code
//! under test.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use serde_json::{Value, json};

/// What /validate says about the unmutated example pod (README: four violations).
pub const EXAMPLE_DENIAL: &str = concat!(
    r#"pods "github-mcp" is forbidden: violates mcpguard policy "mcp-restricted": "#,
    r#"allowPrivilegeEscalation != false (container "server" must set securityContext.allowPrivilegeEscalation=false), "#,
    r#"unrestricted capabilities (container "server" must set securityContext.capabilities.drop=["ALL"]), "#,
    r#"runAsNonRoot != true (pod or container "server" must set securityContext.runAsNonRoot=true), "#,
    r#"seccompProfile (pod or container "server" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
);

/// The checks the example pod fails, as the `violations` audit annotation lists them.
pub const EXAMPLE_VIOLATIONS: &str =
    "allowPrivilegeEscalation,capabilities_restricted,runAsNonRoot,seccompProfile_restricted";

/// The container securityContext the default policy fills in when the pod sets nothing.
pub fn full_container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsGroup": 1000,
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// The JSON Patch /mutate must return for the example review's pod under the default policy,
/// in the order the hardening makes the changes: the pod, then each container.
pub fn expected_example_patch() -> Value {
    json!([
        {"op": "add", "path": "/spec/securityContext/fsGroup", "value": 1000},
        {"op": "add", "path": "/spec/securityContext/runAsGroup", "value": 1000},
        {"op": "add", "path": "/spec/securityContext/runAsNonRoot", "value": true},
        {"op": "add", "path": "/spec/securityContext/runAsUser", "value": 1000},
        {"op": "add", "path": "/spec/securityContext/seccompProfile", "value": {"type": "RuntimeDefault"}},
        {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
        {"op": "remove", "path": "/spec/volumes/1"},
        {"op": "remove", "path": "/spec/containers/0/volumeMounts/1"},
        {"op": "add", "path": "/spec/containers/0/securityContext", "value": full_container_security_context()},
        {"op": "replace", "path": "/spec/containers/0/imagePullPolicy", "value": "Always"}
    ])
}
