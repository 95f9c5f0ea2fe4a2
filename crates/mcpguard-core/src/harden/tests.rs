//! Mutation: each default of the policy, explicit values kept, Windows, scopes, the
//! RuntimeClass and ServiceAccount plugins' work, warnings and the audit field list.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;
use crate::policy::{Policy, parse_str};
use crate::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};

pub(super) fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy loads")
}

fn policy(yaml: &str) -> Policy {
    parse_str(yaml, "test").expect("test policy loads")
}

/// A minimal policy whose `mutate` section is `mutate` and `validate` is `validate`
/// (both YAML flow mappings). The token setting is `leave` unless `mutate` names it, so that
/// a test sees only the changes it is about; [`policy_as_written`] keeps the real default.
pub(super) fn policy_with(mutate: &str, validate: &str) -> Policy {
    if mutate.contains("automountServiceAccountToken") {
        return policy_as_written(mutate, validate);
    }
    let mutate = match mutate.strip_prefix('{').map(str::trim_start) {
        Some(rest) if rest.starts_with('}') => "{automountServiceAccountToken: leave}".to_owned(),
        Some(rest) => format!("{{automountServiceAccountToken: leave, {rest}"),
        None => panic!("mutate must be a YAML flow mapping: {mutate}"),
    };
    policy_as_written(&mutate, validate)
}

/// As [`policy_with`], with every setting `mutate` leaves out at its documented default.
pub(super) fn policy_as_written(mutate: &str, validate: &str) -> Policy {
    policy(&format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: t}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
  mutate: {mutate}
  validate: {validate}
"
    ))
}

pub(super) fn no_classes() -> StaticRuntimeClasses {
    StaticRuntimeClasses::default()
}

/// [`super::harden_pod`], checking the patch it wrote down on the way (every test here goes
/// through this): `json_patch::patch` applied to the input gives exactly the hardened pod,
/// with no more operations than `json_patch::diff` needs for the same change; and hardening
/// the webhook's [`working_copy`] of the spec writes down the same patch.
pub(super) fn harden_pod(
    pod: &Value,
    scope: Scope<'_>,
    policy: &Policy,
    runtime_classes: &dyn crate::runtime_class::RuntimeClassLookup,
) -> Result<Mutation, MutationError> {
    let whole_pod = matches!(scope, Scope::WholePod);
    let result = super::harden_pod(pod, scope.clone(), policy, runtime_classes);
    if let Ok(mutation) = &result {
        assert_patch_reproduces(pod, mutation);
        let mut copy = working_copy(&pod["spec"]);
        let mut changes = Changes::recorded();
        harden_spec(&mut copy, scope, policy, runtime_classes, &mut changes)
            .expect("the working copy hardens like the pod");
        assert_eq!(
            changes.into_patch(),
            mutation.patch,
            "the working copy's patch"
        );
    }
    if whole_pod {
        super::typed::tests::assert_decoded_hardening_agrees(&pod["spec"], policy, runtime_classes);
        if let Ok(mutation) = &result {
            assert_resources_stay_consistent(pod, &mutation.pod);
            assert_reinvocation_changes_nothing(mutation, policy, runtime_classes);
        }
    }
    result
}

/// The idempotence property, over every pod these tests harden: the API server decodes the
/// patched pod, defaults it and encodes it again (dropping what Go's `omitempty` drops,
/// field by field: `api_round_trip`), and a reinvocation (`reinvocationPolicy: IfNeeded`)
/// hardens that. Its patch is empty: nothing is appended twice, nothing flips back.
fn assert_reinvocation_changes_nothing(
    mutation: &Mutation,
    policy: &Policy,
    runtime_classes: &dyn crate::runtime_class::RuntimeClassLookup,
) {
    let mut stored = mutation.pod.clone();
    crate::api_defaults::apply_pod_defaults(&mut stored);
    let stored = crate::api_round_trip::pod(&stored);
    if let Ok(again) = super::harden_pod(&stored, Scope::WholePod, policy, runtime_classes) {
        assert_eq!(
            serde_json::to_value(&again.patch).unwrap_or_default(),
            json!([]),
            "a reinvocation after the API server's round trip changed the pod\nstored: {stored}"
        );
    }
}

/// The API server's pod resource rules (`pod_resources::consistency_errors`): a pod that
/// keeps them before mutation keeps them after it, with the API defaults applied to both.
fn assert_resources_stay_consistent(input: &Value, mutated: &Value) {
    let defaulted = |pod: &Value| {
        let mut pod = pod.clone();
        crate::api_defaults::apply_pod_defaults(&mut pod);
        k8s_openapi::api::core::v1::PodSpec::deserialize(&pod["spec"]).ok()
    };
    let (Some(before), Some(after)) = (defaulted(input), defaulted(mutated)) else {
        return;
    };
    if pod_resources::consistency_errors(&before).is_empty() {
        assert_eq!(
            pod_resources::consistency_errors(&after),
            Vec::<String>::new(),
            "mutation of {input}"
        );
    }
}

fn assert_patch_reproduces(input: &Value, mutation: &Mutation) {
    let shown = serde_json::to_string(&mutation.patch).unwrap_or_default();
    let mut patched = input.clone();
    if let Err(err) = json_patch::patch(&mut patched, &mutation.patch) {
        panic!("the patch does not apply to its input: {err}\npatch: {shown}");
    }
    assert_eq!(patched, mutation.pod, "patch: {shown}");
    let diff = json_patch::diff(input, &mutation.pod);
    assert!(
        mutation.patch.len() <= diff.len(),
        "{} operations where json_patch::diff needs {}\npatch: {shown}\ndiff: {}",
        mutation.patch.len(),
        diff.len(),
        serde_json::to_string(&diff).unwrap_or_default()
    );
}

pub(super) fn harden(pod: &Value, policy: &Policy) -> Mutation {
    harden_pod(pod, Scope::WholePod, policy, &no_classes()).expect("pod hardens")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn bare_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "mcp"},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]}
    })
}

fn hardened_pod_sc() -> Value {
    json!({
        "fsGroup": 1000,
        "runAsGroup": 1000,
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

pub(super) fn hardened_container_sc() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsGroup": 1000,
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

const POD_WARNING: &str = "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false";
const APP_WARNING: &str = "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi";

const ALL_DEFAULT_FIELDS: &[&str] = &[
    "containers.imagePullPolicy",
    "containers.resources.requests.memory",
    "containers.securityContext.allowPrivilegeEscalation",
    "containers.securityContext.capabilities",
    "containers.securityContext.runAsGroup",
    "containers.securityContext.runAsNonRoot",
    "containers.securityContext.runAsUser",
    "containers.securityContext.seccompProfile",
    "spec.automountServiceAccountToken",
    "spec.securityContext.fsGroup",
    "spec.securityContext.runAsGroup",
    "spec.securityContext.runAsNonRoot",
    "spec.securityContext.runAsUser",
    "spec.securityContext.seccompProfile",
];

// ---- every default of the default policy -------------------------------------------------

#[test]
fn default_policy_fills_every_default_into_a_bare_pod() {
    let mutation = harden(&bare_pod(), &default_policy());
    assert_eq!(
        mutation.pod,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "mcp"},
            "spec": {
                "automountServiceAccountToken": false,
                "securityContext": hardened_pod_sc(),
                "containers": [{
                    "name": "app",
                    "image": "ghcr.io/x/app:1",
                    "imagePullPolicy": "Always",
                    "resources": {"requests": {"memory": "400Mi"}},
                    "securityContext": hardened_container_sc()
                }]
            }
        })
    );
    assert_eq!(mutation.warnings, strings(&[POD_WARNING, APP_WARNING]));
    assert_eq!(mutation.fields_set, strings(ALL_DEFAULT_FIELDS));
}

#[test]
fn image_pull_policy_is_set_even_when_present_with_another_value() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(mutation.warnings, strings(&[POD_WARNING, APP_WARNING]));
    assert!(
        mutation
            .fields_set
            .contains(&"containers.imagePullPolicy".to_owned())
    );
}

#[test]
fn image_pull_policy_already_equal_is_left_unreported() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            POD_WARNING,
            "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, requests.memory=400Mi",
        ])
    );
    assert!(
        !mutation
            .fields_set
            .contains(&"containers.imagePullPolicy".to_owned())
    );
}

#[test]
fn a_policy_that_leaves_image_pull_policy_leaves_it_alone() {
    let policy = policy_with(
        "{imagePullPolicy: leave, automountServiceAccountToken: leave}",
        "{}",
    );
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let mutation = harden(&pod, &policy);
    assert_eq!(mutation.pod, pod);
    assert_eq!(mutation.warnings, Vec::<String>::new());
    assert_eq!(mutation.fields_set, Vec::<String>::new());
}

// ---- explicit values are kept -------------------------------------------------------------

#[test]
fn explicit_container_run_as_user_zero_is_kept() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["securityContext"] = json!({"runAsUser": 0});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "runAsUser": 0,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        mutation.warnings[1],
        "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
    );
    assert!(
        !mutation
            .fields_set
            .contains(&"containers.securityContext.runAsUser".to_owned())
    );
}

#[test]
fn added_capabilities_are_kept_and_drop_all_is_merged_in() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"capabilities": {"add": ["NET_BIND_SERVICE"]}});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"]["capabilities"],
        json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]})
    );
    assert_eq!(
        mutation.warnings[1],
        "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
    );
    assert!(
        mutation
            .fields_set
            .contains(&"containers.securityContext.capabilities.drop".to_owned())
    );
    assert!(
        !mutation
            .fields_set
            .contains(&"containers.securityContext.capabilities".to_owned())
    );
}

#[test]
fn explicit_drop_list_is_not_extended() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"capabilities": {"drop": ["NET_RAW"]}});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"]["capabilities"],
        json!({"drop": ["NET_RAW"]})
    );
}

#[test]
fn localhost_seccomp_profile_is_kept_whole() {
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"]["seccompProfile"],
        json!({"type": "Localhost", "localhostProfile": "x"})
    );
    assert_eq!(
        mutation.warnings[1],
        "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, imagePullPolicy=Always, requests.memory=400Mi"
    );
    assert!(
        !mutation
            .fields_set
            .iter()
            .any(|f| f.starts_with("containers.securityContext.seccompProfile"))
    );
}

pub(super) fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
            ]
        }
    })
}

pub(super) fn token_mount(name: &str) -> Value {
    json!({"name": name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true})
}

#[test]
fn explicit_automount_true_is_kept_and_the_token_volume_stays() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {
            "automountServiceAccountToken": true,
            "volumes": [token_volume("kube-api-access-abcde")],
            "containers": [{"name": "app", "image": "x", "volumeMounts": [token_mount("kube-api-access-abcde")]}]
        }
    });
    let mutation = harden(&pod, &default_policy());
    let spec = &mutation.pod["spec"];
    assert_eq!(spec["automountServiceAccountToken"], true);
    assert_eq!(
        spec["volumes"],
        json!([token_volume("kube-api-access-abcde")])
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([token_mount("kube-api-access-abcde")])
    );
    assert_eq!(
        mutation.warnings[0],
        "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault"
    );
    assert!(
        !mutation
            .fields_set
            .contains(&"spec.automountServiceAccountToken".to_owned())
    );
}

#[test]
fn explicit_requests_are_kept_and_only_missing_ones_filled() {
    let policy = policy_with(
        "{resources: {requests: {cpu: 100m, memory: 400Mi}, limits: {memory: 1Gi}}}",
        "{}",
    );
    let pod = json!({"spec": {"containers": [{
        "name": "app",
        "image": "x",
        "resources": {"requests": {"memory": "512Mi"}}
    }]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod,
        json!({"spec": {"containers": [{
            "name": "app",
            "image": "x",
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
        }]}})
    );
    assert_eq!(
        mutation.warnings,
        strings(&["mcpguard: container \"app\": set requests.cpu=100m, limits.memory=1Gi"])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "containers.resources.limits.memory",
            "containers.resources.requests.cpu"
        ])
    );
}

/// A filled default limit below the container's own request makes the API server refuse the
/// pod ("must be less than or equal to memory limit"), for a limit the user never wrote. The
/// ceiling fill already avoids this ("not when the container's own request is already above
/// it"); the policy's own default limits must too.
#[test]
fn a_default_limit_is_not_filled_below_an_explicit_request() {
    let policy = policy_with("{resources: {limits: {memory: 1Gi}}}", "{}");
    let pod = json!({"spec": {"containers": [{
        "name": "app",
        "image": "x",
        "resources": {"requests": {"memory": "2Gi"}}
    }]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"memory": "2Gi"}}),
        "a limit below the request was filled"
    );
}

// ---- pod-level explicit fields are inherited -----------------------------------------------

#[test]
fn pod_level_explicit_fields_are_inherited_not_overridden_per_container() {
    let mut pod = bare_pod();
    pod["spec"]["securityContext"] = json!({"runAsUser": 2000});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["securityContext"],
        json!({
            "fsGroup": 1000,
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "runAsUser": 2000,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, seccompProfile=RuntimeDefault, automountServiceAccountToken=false",
            "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi",
        ])
    );
}

#[test]
fn pod_level_seccomp_profile_is_inherited_too() {
    let mut pod = bare_pod();
    pod["spec"]["securityContext"] =
        json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "mcp.json"}});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["securityContext"]["seccompProfile"],
        json!({"type": "Localhost", "localhostProfile": "mcp.json"})
    );
    assert!(
        mutation.pod["spec"]["containers"][0]["securityContext"]
            .get("seccompProfile")
            .is_none()
    );
}

#[test]
fn a_null_pod_level_field_is_not_an_explicit_choice() {
    let mut pod = bare_pod();
    pod["spec"]["securityContext"] = json!({"runAsUser": null});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(mutation.pod["spec"]["securityContext"], hardened_pod_sc());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"],
        hardened_container_sc()
    );
}

// ---- Windows --------------------------------------------------------------------------------

#[test]
fn windows_pods_get_only_run_as_non_root() {
    let pod = json!({"spec": {
        "os": {"name": "windows"},
        "containers": [{"name": "app", "image": "x"}]
    }});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "os": {"name": "windows"},
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true},
            "containers": [{
                "name": "app",
                "image": "x",
                "imagePullPolicy": "Always",
                "resources": {"requests": {"memory": "400Mi"}},
                "securityContext": {"runAsNonRoot": true}
            }]
        }})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: pod: set runAsNonRoot, automountServiceAccountToken=false",
            "mcpguard: container \"app\": set runAsNonRoot, imagePullPolicy=Always, requests.memory=400Mi",
        ])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "containers.imagePullPolicy",
            "containers.resources.requests.memory",
            "containers.securityContext.runAsNonRoot",
            "spec.automountServiceAccountToken",
            "spec.securityContext.runAsNonRoot",
        ])
    );
}

#[test]
fn linux_pods_named_explicitly_are_hardened_fully() {
    let mut pod = bare_pod();
    pod["spec"]["os"] = json!({"name": "linux"});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(mutation.pod["spec"]["securityContext"], hardened_pod_sc());
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["securityContext"],
        hardened_container_sc()
    );
}

// ---- init and ephemeral containers ----------------------------------------------------------

#[test]
fn init_containers_are_hardened_and_named_as_such() {
    let pod = json!({"spec": {
        "initContainers": [{"name": "x", "image": "busybox"}],
        "containers": [{"name": "app", "image": "x"}]
    }});
    let mutation = harden(&pod, &default_policy());
    let init = &mutation.pod["spec"]["initContainers"][0];
    assert_eq!(init["securityContext"], hardened_container_sc());
    assert_eq!(init["imagePullPolicy"], "Always");
    assert_eq!(init["resources"], json!({"requests": {"memory": "400Mi"}}));
    assert_eq!(
        mutation.warnings,
        strings(&[
            POD_WARNING,
            "mcpguard: init container \"x\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi",
            APP_WARNING,
        ])
    );
    assert_eq!(mutation.fields_set, strings(ALL_DEFAULT_FIELDS));
}

#[test]
fn new_ephemeral_containers_only_are_hardened_without_resources() {
    let pod = json!({"spec": {
        "containers": [{"name": "app", "image": "x"}],
        "ephemeralContainers": [
            {"name": "old", "image": "busybox"},
            {"name": "debug", "image": "busybox", "env": [{"name": "A", "value": "b"}]}
        ]
    }});
    let existing = strings(&["old"]);
    let mutation = harden_pod(
        &pod,
        Scope::NewEphemeralContainers {
            existing: &existing,
        },
        &default_policy(),
        &no_classes(),
    )
    .unwrap();
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "containers": [{"name": "app", "image": "x"}],
            "ephemeralContainers": [
                {"name": "old", "image": "busybox"},
                {
                    "name": "debug",
                    "image": "busybox",
                    "env": [{"name": "A", "value": "b"}],
                    "imagePullPolicy": "Always",
                    "securityContext": hardened_container_sc()
                }
            ]
        }})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: ephemeral container \"debug\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always"
        ])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "containers.imagePullPolicy",
            "containers.securityContext.allowPrivilegeEscalation",
            "containers.securityContext.capabilities",
            "containers.securityContext.runAsGroup",
            "containers.securityContext.runAsNonRoot",
            "containers.securityContext.runAsUser",
            "containers.securityContext.seccompProfile",
        ])
    );
}

#[test]
fn new_ephemeral_containers_inherit_the_pods_explicit_context() {
    let pod = json!({"spec": {
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "x"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "imagePullPolicy": "Always"}]
    }});
    let mutation = harden_pod(
        &pod,
        Scope::NewEphemeralContainers { existing: &[] },
        &default_policy(),
        &no_classes(),
    )
    .unwrap();
    assert_eq!(
        mutation.pod["spec"]["ephemeralContainers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: ephemeral container \"debug\": set allowPrivilegeEscalation=false, drop ALL"
        ])
    );
}

#[test]
fn ephemeral_scope_with_no_new_containers_changes_nothing() {
    let pod = json!({"spec": {
        "containers": [{"name": "app", "image": "x"}],
        "ephemeralContainers": [{"name": "old", "image": "busybox"}]
    }});
    let existing = strings(&["old"]);
    let mutation = harden_pod(
        &pod,
        Scope::NewEphemeralContainers {
            existing: &existing,
        },
        &default_policy(),
        &no_classes(),
    )
    .unwrap();
    assert_eq!(mutation.pod, pod);
    assert!(mutation.warnings.is_empty());
    assert!(mutation.fields_set.is_empty());
}

#[test]
fn whole_pod_scope_leaves_ephemeral_containers_alone() {
    let pod = json!({"spec": {
        "containers": [{"name": "app", "image": "x"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
    }});
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation.pod["spec"]["ephemeralContainers"],
        json!([{"name": "debug", "image": "busybox"}])
    );
}

// ---- ServiceAccount token volume -----------------------------------------------------------

#[test]
fn token_volume_and_its_mounts_are_removed_when_automount_is_turned_off() {
    let data_mount = json!({"name": "data", "mountPath": "/data"});
    let pod = json!({"spec": {
        "volumes": [token_volume("kube-api-access-abcde"), {"name": "data", "emptyDir": {}}],
        "initContainers": [{"name": "init", "image": "x", "imagePullPolicy": "Always",
                            "volumeMounts": [token_mount("kube-api-access-abcde")]}],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [data_mount.clone(), token_mount("kube-api-access-abcde")]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: remove}", "{}");
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "automountServiceAccountToken": false,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "x", "imagePullPolicy": "Always"}],
            "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                            "volumeMounts": [data_mount]}]
        }})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: pod: set automountServiceAccountToken=false, removed volume kube-api-access-abcde"
        ])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "containers.volumeMounts",
            "spec.automountServiceAccountToken",
            "spec.volumes"
        ])
    );
}

#[test]
fn removing_the_only_volume_and_mount_removes_the_empty_lists() {
    let pod = json!({"spec": {
        "volumes": [token_volume("kube-api-access-x1y2z")],
        "containers": [{"name": "app", "image": "x", "volumeMounts": [token_mount("kube-api-access-x1y2z")]}],
        "ephemeralContainers": [{"name": "debug", "image": "x", "volumeMounts": [token_mount("kube-api-access-x1y2z")]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: remove}", "{}");
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "x"}],
            "ephemeralContainers": [{"name": "debug", "image": "x"}]
        }})
    );
}

#[test]
fn a_user_volume_named_like_the_token_volume_without_a_token_source_is_kept() {
    let mine = json!({
        "name": "kube-api-access-mine",
        "projected": {"sources": [{"configMap": {"name": "settings"}}]}
    });
    let pod = json!({"spec": {
        "volumes": [mine.clone()],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [{"name": "kube-api-access-mine", "mountPath": "/etc/mine"}]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: remove}", "{}");
    assert_only_the_token_is_turned_off(&pod, &policy);
}

/// Hardening `pod` under `policy` only sets `automountServiceAccountToken: false`.
fn assert_only_the_token_is_turned_off(pod: &Value, policy: &Policy) {
    let mutation = harden(pod, policy);
    let mut expected = pod.clone();
    expected["spec"]["automountServiceAccountToken"] = json!(false);
    assert_eq!(mutation.pod, expected);
    assert_eq!(
        mutation.warnings,
        strings(&["mcpguard: pod: set automountServiceAccountToken=false"])
    );
}

#[test]
fn a_token_volume_with_another_name_is_kept() {
    let pod = json!({"spec": {
        "volumes": [token_volume("my-token")],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [token_mount("my-token")]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: remove}", "{}");
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["volumes"],
        json!([token_volume("my-token")])
    );
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["volumeMounts"],
        json!([token_mount("my-token")])
    );
}

#[test]
fn a_policy_that_leaves_the_token_removes_nothing() {
    let pod = json!({"spec": {
        "volumes": [token_volume("kube-api-access-abcde")],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [token_mount("kube-api-access-abcde")]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: leave}", "{}");
    let mutation = harden(&pod, &policy);
    assert_eq!(mutation.pod, pod);
    assert_eq!(mutation.warnings, Vec::<String>::new());
}

// ---- RuntimeClass --------------------------------------------------------------------------

pub(super) fn gvisor_toleration() -> Value {
    json!({"key": "sandbox", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"})
}

pub(super) fn gvisor_classes() -> StaticRuntimeClasses {
    let overhead = json!({"cpu": "250m", "memory": "120Mi"});
    let info = RuntimeClassInfo {
        overhead_pod_fixed: overhead.as_object().cloned(),
        node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
        tolerations: vec![gvisor_toleration()],
    };
    StaticRuntimeClasses(HashMap::from([("gvisor".to_owned(), info)]))
}

fn gvisor_policy() -> Policy {
    policy_with("{runtimeClassName: gvisor}", "{}")
}

fn sandbox_pod(node_selector: Value) -> Value {
    json!({"spec": {
        "nodeSelector": node_selector,
        "tolerations": [{"key": "other", "operator": "Exists"}],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
    }})
}

#[test]
fn runtime_class_is_set_and_the_plugins_work_finished() {
    let pod = sandbox_pod(json!({"disk": "ssd"}));
    let mutation = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &gvisor_classes()).unwrap();
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "runtimeClassName": "gvisor",
            "overhead": {"cpu": "250m", "memory": "120Mi"},
            "nodeSelector": {"disk": "ssd", "sandbox": "gvisor"},
            "tolerations": [{"key": "other", "operator": "Exists"}, gvisor_toleration()],
            "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
        }})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: pod: set runtimeClassName=gvisor, overhead, nodeSelector sandbox=gvisor, 1 RuntimeClass toleration(s)"
        ])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "spec.nodeSelector",
            "spec.overhead",
            "spec.runtimeClassName",
            "spec.tolerations"
        ])
    );
}

#[test]
fn runtime_class_fills_a_pod_without_node_selector_or_tolerations() {
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let mutation = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &gvisor_classes()).unwrap();
    assert_eq!(
        mutation.pod["spec"]["nodeSelector"],
        json!({"sandbox": "gvisor"})
    );
    assert_eq!(
        mutation.pod["spec"]["tolerations"],
        json!([gvisor_toleration()])
    );
}

#[test]
fn runtime_class_with_the_same_selector_value_and_toleration_adds_neither() {
    let mut pod = sandbox_pod(json!({"sandbox": "gvisor"}));
    pod["spec"]["tolerations"] = json!([gvisor_toleration()]);
    let mutation = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &gvisor_classes()).unwrap();
    assert_eq!(
        mutation.pod["spec"]["nodeSelector"],
        json!({"sandbox": "gvisor"})
    );
    assert_eq!(
        mutation.pod["spec"]["tolerations"],
        json!([gvisor_toleration()])
    );
    assert_eq!(
        mutation.warnings,
        strings(&["mcpguard: pod: set runtimeClassName=gvisor, overhead"])
    );
}

#[test]
fn a_conflicting_node_selector_is_refused_as_the_plugin_would() {
    let pod = sandbox_pod(json!({"sandbox": "other"}));
    let err = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &gvisor_classes()).unwrap_err();
    assert_eq!(
        err,
        MutationError::NodeSelectorConflict {
            class: "gvisor".into(),
            key: "sandbox".into(),
            class_value: "gvisor".into(),
            pod_value: "other".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "RuntimeClass \"gvisor\" requires nodeSelector sandbox=\"gvisor\" but the pod sets sandbox=\"other\""
    );
}

#[test]
fn an_unknown_runtime_class_is_set_with_a_warning() {
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let mutation = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &no_classes()).unwrap();
    assert_eq!(
        mutation.pod,
        json!({"spec": {
            "runtimeClassName": "gvisor",
            "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
        }})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: RuntimeClass \"gvisor\" is not known to mcpguard: its overhead and scheduling were not copied",
            "mcpguard: pod: set runtimeClassName=gvisor",
        ])
    );
    assert_eq!(mutation.fields_set, strings(&["spec.runtimeClassName"]));
}

#[test]
fn a_pod_that_sets_its_own_runtime_class_is_left_alone() {
    let mut pod = sandbox_pod(json!({"sandbox": "other"}));
    pod["spec"]["runtimeClassName"] = json!("kata");
    let mutation = harden_pod(&pod, Scope::WholePod, &gvisor_policy(), &gvisor_classes()).unwrap();
    assert_eq!(mutation.pod, pod);
    assert!(mutation.warnings.is_empty());
    assert!(mutation.fields_set.is_empty());
}

// ---- tolerations and affinity ---------------------------------------------------------------

#[test]
fn policy_tolerations_are_appended_only_when_missing() {
    let policy = policy_with(
        "{tolerations: [{key: dedicated, operator: Equal, value: mcp, effect: NoSchedule}, {key: spot, operator: Exists}]}",
        "{}",
    );
    let pod = json!({"spec": {
        "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "mcp"}],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
    }});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "value": "mcp", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists"}
        ])
    );
    assert_eq!(
        mutation.warnings,
        strings(&["mcpguard: pod: set 1 toleration(s)"])
    );
    assert_eq!(mutation.fields_set, strings(&["spec.tolerations"]));

    let again = harden(&mutation.pod, &policy);
    assert_eq!(again.pod, mutation.pod);
    assert!(again.warnings.is_empty());
    assert!(again.fields_set.is_empty());
}

#[test]
fn a_second_invocation_after_the_api_servers_round_trip_appends_no_duplicate_toleration() {
    // `reinvocationPolicy: IfNeeded`: the API server stored the first patch, dropping the
    // empty members (`omitempty` on every Toleration member), and calls the webhook again.
    let policy = policy_with(
        "{tolerations: [{key: dedicated, operator: Equal, value: \"\", effect: NoSchedule}, {key: spot, operator: Exists, value: \"\", effect: \"\"}]}",
        "{}",
    );
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let first = harden(&pod, &policy);
    assert_eq!(
        first.pod["spec"]["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "value": "", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists", "value": "", "effect": ""}
        ])
    );
    let mut stored = first.pod.clone();
    for toleration in stored["spec"]["tolerations"]
        .as_array_mut()
        .expect("a list")
    {
        toleration
            .as_object_mut()
            .expect("an object")
            .retain(|_, member| member != "");
    }
    assert_eq!(
        stored["spec"]["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists"}
        ])
    );
    let second = harden(&stored, &policy);
    assert_eq!(second.patch, json_patch::Patch(Vec::new()));
    assert_eq!(second.pod, stored);
    assert!(second.warnings.is_empty());
}

#[test]
fn a_toleration_without_an_operator_is_the_policys_equal_one() {
    let policy = policy_with(
        "{tolerations: [{key: dedicated, operator: Equal, value: mcp}]}",
        "{}",
    );
    let pod = json!({"spec": {
        "tolerations": [{"key": "dedicated", "value": "mcp"}],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
    }});
    assert_eq!(harden(&pod, &policy).patch, json_patch::Patch(Vec::new()));
    // A different value, effect or tolerationSeconds is another toleration.
    for other in [
        json!({"key": "dedicated", "value": "other"}),
        json!({"key": "dedicated", "value": "mcp", "effect": "NoExecute"}),
        json!({"key": "dedicated", "value": "mcp", "tolerationSeconds": 0}),
        json!({"key": "dedicated", "operator": "Exists"}),
    ] {
        let mut pod = pod.clone();
        pod["spec"]["tolerations"] = json!([other]);
        let mutation = harden(&pod, &policy);
        assert_eq!(
            mutation.pod["spec"]["tolerations"],
            json!([other, {"key": "dedicated", "operator": "Equal", "value": "mcp"}]),
            "{other}"
        );
    }
}

#[test]
fn affinity_is_filled_field_by_field() {
    let policy = policy_with(
        "{affinity: {
            nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [mcp]}]}]}},
            podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname}}]}
        }}",
        "{}",
    );
    let own_node_affinity = json!({"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
    }});
    let pod = json!({"spec": {
        "affinity": {"nodeAffinity": own_node_affinity.clone()},
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
    }});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["affinity"],
        json!({
            "nodeAffinity": own_node_affinity,
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
            ]}
        })
    );
    assert_eq!(mutation.warnings, strings(&["mcpguard: pod: set affinity"]));
    assert_eq!(
        mutation.fields_set,
        strings(&["spec.affinity.podAntiAffinity"])
    );
}

#[test]
fn affinity_is_set_whole_when_the_pod_has_none_and_not_reported_when_complete() {
    let policy = policy_with(
        "{affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: zone}]}}}",
        "{}",
    );
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["affinity"],
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]}})
    );
    assert_eq!(
        mutation.fields_set,
        strings(&["spec.affinity.podAntiAffinity"])
    );
    let again = harden(&mutation.pod, &policy);
    assert_eq!(again.pod, mutation.pod);
    assert!(again.warnings.is_empty());
}

// ---- pod-level resources --------------------------------------------------------------------

/// A pod with pod-level `resources` and `containers` (names), none with resources.
fn pod_with_pod_resources(resources: Value, containers: &[&str]) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|name| json!({"name": name, "image": "x:1", "imagePullPolicy": "Always"}))
        .collect();
    let mut pod = json!({"spec": {"containers": containers}});
    if !resources.is_null() {
        pod["spec"]["resources"] = resources;
    }
    pod
}

fn container_resources(mutation: &Mutation) -> Vec<Value> {
    mutation.pod["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c.get("resources").cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn default_requests_never_add_up_past_the_pods_requests() {
    // The pod: 256Mi for the pod, two containers; the default is 400Mi each, which
    // the API server would refuse (800Mi of container requests in a 256Mi pod).
    let policy = default_policy();
    let pod = pod_with_pod_resources(json!({"requests": {"memory": "256Mi"}}), &["a", "b"]);
    let mutation = harden(&pod, &policy);
    assert_eq!(container_resources(&mutation), [Value::Null, Value::Null]);
    assert!(
        mutation
            .warnings
            .iter()
            .all(|w| !w.contains("requests.memory")),
        "{:?}",
        mutation.warnings
    );
    // What fits is filled, container by container: two of three in 1Gi.
    let pod = pod_with_pod_resources(json!({"requests": {"memory": "1Gi"}}), &["a", "b", "c"]);
    let mutation = harden(&pod, &policy);
    let filled = json!({"requests": {"memory": "400Mi"}});
    assert_eq!(
        container_resources(&mutation),
        [filled.clone(), filled, Value::Null]
    );
}

#[test]
fn a_pod_limit_alone_bounds_requests_through_the_api_servers_default() {
    // Pod limits without pod requests: the API server defaults the pod's requests to the
    // limit (no container requests anything), before the webhook sees the pod.
    let policy = default_policy();
    let mut pod = pod_with_pod_resources(json!({"limits": {"memory": "512Mi"}}), &["a", "b"]);
    crate::api_defaults::apply_pod_defaults(&mut pod);
    assert_eq!(
        pod["spec"]["resources"],
        json!({"limits": {"memory": "512Mi"}, "requests": {"memory": "512Mi"}})
    );
    let mutation = harden(&pod, &policy);
    assert_eq!(
        container_resources(&mutation),
        [json!({"requests": {"memory": "400Mi"}}), Value::Null]
    );
}

#[test]
fn ceilings_are_filled_as_limits_only_up_to_the_pods_limit() {
    let policy = policy_with(
        "{resources: {requests: {memory: 100Mi}}}",
        "{maxResources: {cpu: \"2\", memory: 1Gi}}",
    );
    let pod = pod_with_pod_resources(
        json!({"requests": {"memory": "2Gi", "cpu": "4"}, "limits": {"memory": "512Mi", "cpu": "4"}}),
        &["a"],
    );
    // memory: the 1Gi ceiling is above the pod's 512Mi limit, so no container limit; cpu:
    // the 2 ceiling fits under the pod's 4.
    let mutation = harden(&pod, &policy);
    assert_eq!(
        container_resources(&mutation),
        [json!({"requests": {"memory": "100Mi"}, "limits": {"cpu": "2"}})]
    );
    // Without pod-level resources, both ceilings are filled as before.
    let plain = pod_with_pod_resources(json!(null), &["a"]);
    let mutation = harden(&plain, &policy);
    assert_eq!(
        container_resources(&mutation),
        [json!({"requests": {"memory": "100Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}})]
    );
}

#[test]
fn a_limit_on_a_container_without_a_request_must_fit_the_request_budget_too() {
    // The API server copies a container's limit into its missing request: a 1Gi ceiling on a
    // container that requests no memory is a 1Gi request, which a 512Mi pod cannot hold.
    let policy = policy_with("{}", "{maxResources: {memory: 1Gi}}");
    let pod = pod_with_pod_resources(
        json!({"requests": {"memory": "512Mi"}, "limits": {"memory": "4Gi"}}),
        &["a"],
    );
    let mutation = harden(&pod, &policy);
    assert_eq!(container_resources(&mutation), [Value::Null]);
    let roomy = pod_with_pod_resources(
        json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "4Gi"}}),
        &["a"],
    );
    let mutation = harden(&roomy, &policy);
    assert_eq!(
        container_resources(&mutation),
        [json!({"limits": {"memory": "1Gi"}})]
    );
}

// ---- maxResources ceilings -----------------------------------------------------------------

#[test]
fn missing_limits_are_filled_with_the_ceilings() {
    let policy = policy_with(
        "{resources: {requests: {memory: 400Mi}}}",
        "{maxResources: {cpu: \"2\", memory: 4Gi}}",
    );
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"memory": "400Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}})
    );
    assert_eq!(
        mutation.warnings,
        strings(&[
            "mcpguard: container \"app\": set requests.memory=400Mi, limits.cpu=2, limits.memory=4Gi"
        ])
    );
    assert_eq!(
        mutation.fields_set,
        strings(&[
            "containers.resources.limits.cpu",
            "containers.resources.limits.memory",
            "containers.resources.requests.memory",
        ])
    );
}

#[test]
fn no_limit_is_filled_when_the_explicit_request_is_above_the_ceiling() {
    let policy = policy_with("{}", "{maxResources: {cpu: \"2\", memory: 4Gi}}");
    let pod = json!({"spec": {"containers": [{
        "name": "app", "image": "x", "imagePullPolicy": "Always",
        "resources": {"requests": {"cpu": "3", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    }]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "3", "memory": "1Gi"}, "limits": {"memory": "2Gi"}})
    );
    assert!(mutation.warnings.is_empty());
    assert!(mutation.fields_set.is_empty());
}

#[test]
fn a_request_exactly_at_the_ceiling_still_gets_the_limit() {
    let policy = policy_with("{}", "{maxResources: {cpu: \"2\"}}");
    let pod = json!({"spec": {"containers": [{
        "name": "app", "image": "x", "imagePullPolicy": "Always",
        "resources": {"requests": {"cpu": "2000m"}}
    }]}});
    let mutation = harden(&pod, &policy);
    assert_eq!(
        mutation.pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"cpu": "2000m"}, "limits": {"cpu": "2"}})
    );
}

// ---- unknown fields, warnings, idempotence, errors ----------------------------------------

#[test]
fn unknown_fields_anywhere_survive_unchanged() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "futureMeta": {"a": 1}},
        "futureTopLevel": [1, 2, 3],
        "spec": {
            "futurePodField": {"nested": true},
            "securityContext": {"futurePodSc": "x"},
            "containers": [{
                "name": "app",
                "image": "x",
                "futureContainerField": 7,
                "securityContext": {"futureContainerSc": {"deep": [1]},
                                    "capabilities": {"futureCaps": true}},
                "resources": {"futureResources": "y", "requests": {"example.com/gpu": "1"}}
            }]
        },
        "status": {"phase": "Pending"}
    });
    let mutation = harden(&pod, &default_policy());
    let out = &mutation.pod;
    assert_eq!(out["metadata"], pod["metadata"]);
    assert_eq!(out["futureTopLevel"], json!([1, 2, 3]));
    assert_eq!(out["status"], json!({"phase": "Pending"}));
    assert_eq!(out["spec"]["futurePodField"], json!({"nested": true}));
    assert_eq!(out["spec"]["securityContext"]["futurePodSc"], "x");
    let container = &out["spec"]["containers"][0];
    assert_eq!(container["futureContainerField"], 7);
    assert_eq!(
        container["securityContext"]["futureContainerSc"],
        json!({"deep": [1]})
    );
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"futureCaps": true, "drop": ["ALL"]})
    );
    assert_eq!(
        container["resources"],
        json!({"futureResources": "y", "requests": {"example.com/gpu": "1", "memory": "400Mi"}})
    );
}

#[test]
fn a_long_warning_is_truncated_to_255_bytes_ending_in_an_ellipsis() {
    let name = "c".repeat(300);
    let pod = json!({"spec": {"containers": [{"name": name, "image": "x"}]}});
    let mutation = harden(&pod, &default_policy());
    let warning = &mutation.warnings[1];
    assert_eq!(warning.len(), MAX_WARNING_LEN);
    assert_eq!(
        *warning,
        format!("mcpguard: container \"{}...", "c".repeat(252 - 21))
    );
    // The short pod-level one is untouched.
    assert_eq!(mutation.warnings[0], POD_WARNING);
}

#[test]
fn truncation_never_splits_a_multibyte_character() {
    // "mcpguard: container \"" is 21 bytes; 'é' is 2 bytes, so byte 252 falls inside one.
    let name = "é".repeat(200);
    let pod = json!({"spec": {"containers": [{"name": name, "image": "x"}]}});
    let mutation = harden(&pod, &default_policy());
    let warning = &mutation.warnings[1];
    assert_eq!(warning.len(), 254);
    assert_eq!(
        *warning,
        format!("mcpguard: container \"{}...", "é".repeat(115))
    );
}

#[test]
fn a_warning_of_exactly_255_bytes_is_kept_whole() {
    let long = "x".repeat(MAX_WARNING_LEN);
    assert_eq!(truncate_warning(long.clone()), long);
    let longer = "x".repeat(MAX_WARNING_LEN + 1);
    assert_eq!(truncate_warning(longer), format!("{}...", "x".repeat(252)));
}

fn already_hardened_pod() -> Value {
    json!({
        "metadata": {"name": "p"},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": hardened_pod_sc(),
            "initContainers": [{
                "name": "init", "image": "x", "imagePullPolicy": "Always",
                "resources": {"requests": {"memory": "100Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }],
            "containers": [{
                "name": "app", "image": "x", "imagePullPolicy": "Always",
                "resources": {"requests": {"memory": "400Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

#[test]
fn an_already_hardened_pod_is_returned_identical_without_warnings() {
    let pod = already_hardened_pod();
    let mutation = harden(&pod, &default_policy());
    assert_eq!(
        mutation,
        Mutation {
            pod,
            patch: json_patch::Patch(Vec::new()),
            warnings: Vec::new(),
            fields_set: Vec::new(),
        }
    );
}

#[test]
fn hardening_twice_equals_hardening_once() {
    let policy = default_policy();
    let once = harden(&bare_pod(), &policy);
    let twice = harden(&once.pod, &policy);
    assert_eq!(twice.pod, once.pod);
    assert!(twice.warnings.is_empty());
    assert!(twice.fields_set.is_empty());
}

#[test]
fn an_empty_mutate_section_only_removes_the_default_service_accounts_token() {
    let policy = policy_as_written("{}", "{}");
    let pod = bare_pod();
    assert_only_the_token_is_turned_off(&pod, &policy);
}

#[test]
fn an_object_without_spec_is_not_a_pod() {
    let pod = json!({"metadata": {"name": "p"}});
    let err = harden_pod(&pod, Scope::WholePod, &default_policy(), &no_classes()).unwrap_err();
    assert_eq!(err, MutationError::NotAPod("object has no spec".into()));
    assert_eq!(err.to_string(), "object has no spec");
}

#[test]
fn a_non_object_spec_is_not_a_pod() {
    let pod = json!({"spec": [1]});
    let err = harden_pod(&pod, Scope::WholePod, &default_policy(), &no_classes()).unwrap_err();
    assert_eq!(err, MutationError::NotAPod("object has no spec".into()));
}

#[test]
fn no_privilege_escalation_is_not_filled_where_the_api_server_would_refuse_it() {
    let policy = Policy::embedded_default().expect("default policy");
    for security_context in [
        json!({"privileged": true}),
        json!({"capabilities": {"add": ["CAP_SYS_ADMIN"]}}),
    ] {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "securityContext": security_context}
        ]}});
        let mutation = harden_pod(
            &pod,
            Scope::WholePod,
            &policy,
            &StaticRuntimeClasses::default(),
        )
        .expect("mutation");
        let filled = &mutation.pod["spec"]["containers"][0]["securityContext"];
        assert_eq!(
            filled.get("allowPrivilegeEscalation"),
            None,
            "{security_context}"
        );
        assert_eq!(filled["runAsNonRoot"], json!(true), "{security_context}");
    }
    // `SYS_ADMIN`, the spelling most manifests use, is not what the API server compares:
    // `allowPrivilegeEscalation: false` is valid next to it, and is filled.
    for added in ["NET_BIND_SERVICE", "SYS_ADMIN", "cap_sys_admin"] {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "securityContext": {"capabilities": {"add": [added]}}}
        ]}});
        let mutation = harden_pod(
            &pod,
            Scope::WholePod,
            &policy,
            &StaticRuntimeClasses::default(),
        )
        .expect("mutation");
        assert_eq!(
            mutation.pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
            json!(false),
            "{added}"
        );
    }
}
