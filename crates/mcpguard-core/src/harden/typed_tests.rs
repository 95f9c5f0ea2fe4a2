//! The hardening of a decoded spec, against the JSON hardening it restates. Every test of
//! `harden/tests.rs` also runs [`assert_decoded_hardening_agrees`] on its pod.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::PodSpec;
use pretty_assertions::assert_eq;
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::harden::tests::{default_policy, no_classes, policy_with};
use crate::harden::{Changes, Scope, harden_spec};
use crate::runtime_class::StaticRuntimeClasses;

type Hardened = Result<Option<(PodSpec, Vec<String>)>, MutationError>;

/// The JSON way, as `engine::pod_of_workload` builds a workload's pod: the API defaults,
/// `harden_spec`, the API defaults again, decoded.
fn hardened_as_json(spec: &Value, policy: &Policy, classes: &dyn RuntimeClassLookup) -> Hardened {
    let mut pod = json!({ "spec": spec });
    api_defaults::apply_pod_defaults(&mut pod);
    let hardening = harden_spec(
        &mut pod["spec"],
        Scope::WholePod,
        policy,
        classes,
        &mut Changes::unrecorded(),
    )?;
    api_defaults::apply_pod_defaults(&mut pod);
    let decoded = PodSpec::deserialize(&pod["spec"]).ok();
    Ok(decoded.map(|spec| (spec, hardening.warnings)))
}

/// The decoded way; `Ok(None)` where it declines.
fn hardened_decoded(spec: &Value, policy: &Policy, classes: &dyn RuntimeClassLookup) -> Hardened {
    let Ok(mut decoded) = PodSpec::deserialize(spec) else {
        return Ok(None);
    };
    let warnings = harden_decoded(&mut decoded, spec, policy, classes)?;
    Ok(warnings.map(|warnings| (decoded, warnings)))
}

/// Where the decoded hardening answers, it answers exactly as the JSON hardening does, a
/// RuntimeClass conflict included. Whether it answered.
pub(crate) fn assert_decoded_hardening_agrees(
    spec: &Value,
    policy: &Policy,
    classes: &dyn RuntimeClassLookup,
) -> bool {
    match (
        hardened_decoded(spec, policy, classes),
        hardened_as_json(spec, policy, classes),
    ) {
        (Ok(None), _) => false,
        (Ok(Some(decoded)), Ok(Some(json))) => {
            assert_eq!(decoded, json, "decoded hardening of {spec}");
            true
        }
        (Err(decoded), Err(json)) => {
            assert_eq!(decoded, json, "decoded hardening of {spec}");
            true
        }
        (decoded, json) => panic!("decoded hardening of {spec}: {decoded:?}\nJSON: {json:?}"),
    }
}

fn agrees(spec: Value, policy: &Policy, classes: &dyn RuntimeClassLookup) {
    assert!(
        assert_decoded_hardening_agrees(&spec, policy, classes),
        "declined {spec}"
    );
}

fn declines(spec: Value, policy: &Policy) {
    assert_eq!(
        hardened_decoded(&spec, policy, &no_classes()).map(|h| h.is_some()),
        Ok(false),
        "answered {spec}"
    );
    // The JSON hardening still answers it.
    assert!(matches!(
        hardened_as_json(&spec, policy, &no_classes()),
        Ok(Some(_))
    ));
}

fn mcp_server() -> Value {
    json!({
        "serviceAccountName": "default",
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
        ],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "containers": [{
            "name": "github-mcp",
            "image": "ghcr.io/github/github-mcp-server:v0.4.0",
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "resources": {"limits": {"cpu": "500m"}},
            "volumeMounts": [
                {"name": "cache", "mountPath": "/cache"},
                {"name": "kube-api-access-x1", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
            ]
        }]
    })
}

#[test]
fn a_typical_mcp_server_is_hardened_as_decoded() {
    let spec = mcp_server();
    let (hardened, warnings) = hardened_decoded(&spec, &default_policy(), &no_classes())
        .expect("no conflict")
        .expect("answered");
    assert_eq!(
        warnings,
        [
            "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false, removed volume kube-api-access-x1",
            "mcpguard: container \"github-mcp\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi",
        ]
    );
    let container = &hardened.containers[0];
    let context = container
        .security_context
        .as_ref()
        .expect("a securityContext");
    assert_eq!(context.allow_privilege_escalation, Some(false));
    // The pod set none itself, so the container gets its own.
    assert_eq!(context.run_as_user, Some(1000));
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let shown: Vec<(&str, &str)> = requests
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_str()))
        .collect();
    assert_eq!(shown, [("cpu", "500m"), ("memory", "400Mi")]);
    let volumes: Vec<&str> = hardened
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(volumes, ["cache"]);
    assert_eq!(container.volume_mounts.as_ref().map(Vec::len), Some(1));
    agrees(spec, &default_policy(), &no_classes());
}

#[test]
fn explicit_pod_and_privileged_container_choices_are_kept_as_the_json_keeps_them() {
    let spec = json!({
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
        "initContainers": [{"name": "setup", "image": "busybox", "securityContext": {"privileged": true}}],
        "containers": [
            {"name": "admin", "image": "x:1", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
            {"name": "app", "image": "x:latest", "volumeMounts": [], "resources": {}}
        ],
        "volumes": [{"name": "kube-api-access-a", "projected": {"sources": [{"serviceAccountToken": {}}]}}]
    });
    agrees(spec, &default_policy(), &no_classes());
}

#[test]
fn runtime_class_scheduling_is_copied_as_the_json_copies_it() {
    let info = RuntimeClassInfo {
        overhead_pod_fixed: json!({"memory": "100Mi"}).as_object().cloned(),
        node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
        tolerations: vec![
            json!({"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}),
            json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
        ],
    };
    let classes = StaticRuntimeClasses(HashMap::from([("gvisor".to_owned(), info)]));
    let gvisor = policy_with(
        "{runtimeClassName: gvisor, tolerations: [{key: mcp, operator: Exists}]}",
        "{}",
    );
    agrees(mcp_server(), &gvisor, &classes);
    agrees(
        json!({"nodeSelector": {"zone": "a"}, "containers": [{"name": "app", "image": "x"}]}),
        &gvisor,
        &classes,
    );
    // The same conflict, from either.
    agrees(
        json!({"nodeSelector": {"sandbox": "kata"}, "containers": [{"name": "app", "image": "x"}]}),
        &gvisor,
        &classes,
    );
    // A class mcpguard does not know: named, and warned about.
    let (_, warnings) = hardened_decoded(&mcp_server(), &gvisor, &no_classes())
        .expect("no conflict")
        .expect("answered");
    assert_eq!(
        warnings[0],
        "mcpguard: RuntimeClass \"gvisor\" is not known to mcpguard: its overhead and scheduling were not copied"
    );
    agrees(mcp_server(), &gvisor, &no_classes());
}

#[test]
fn affinity_and_resource_ceilings_are_filled_as_the_json_fills_them() {
    let policy = policy_with(
        "{affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [mcp]}]}]}}, podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: zone}}]}}, resources: {requests: {cpu: 100m}, limits: {memory: 1Gi}}}",
        "{maxResources: {cpu: '2', memory: 2Gi}}",
    );
    agrees(mcp_server(), &policy, &no_classes());
    agrees(
        json!({
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
            "containers": [
                {"name": "big", "image": "x:1", "resources": {"requests": {"cpu": "3", "memory": "3Gi"}}},
                {"name": "small", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}
            ]
        }),
        &policy,
        &no_classes(),
    );
}

#[test]
fn what_could_decode_differently_is_left_to_the_json_hardening() {
    let policy = default_policy();
    // An explicit null: the JSON keeps an object the decoded spec would not have.
    declines(
        json!({"securityContext": null, "containers": [{"name": "app", "image": "x"}]}),
        &policy,
    );
    declines(
        json!({"containers": [{"name": "app", "image": "x", "resources": {"requests": null}}]}),
        &policy,
    );
    // The API defaults copy no limit into a null `requests`, not even an ephemeral
    // container's.
    declines(
        json!({"containers": [{"name": "app", "image": "x"}],
               "ephemeralContainers": [{"name": "debug", "image": "x", "resources": {"requests": null, "limits": {"cpu": "1"}}}]}),
        &policy,
    );
    // Windows pods skip Linux-only defaults.
    declines(
        json!({"os": {"name": "windows"}, "containers": [{"name": "app", "image": "x"}]}),
        &policy,
    );
    // A toleration member the decoded Toleration would drop.
    declines(
        json!({"tolerations": [{"key": "a", "operator": "Exists", "futureField": 1}], "containers": [{"name": "app", "image": "x"}]}),
        &policy,
    );
    // A default that k8s-openapi does not know (the loader refuses one today; a newer
    // Kubernetes schema may not).
    let mut future = default_policy();
    future
        .spec
        .mutate
        .container_security_context
        .as_mut()
        .expect("the default policy has container defaults")
        .insert("futureGuard".into(), json!(true));
    declines(
        json!({"containers": [{"name": "app", "image": "x"}]}),
        &future,
    );
    // And the same pods without those answer here.
    agrees(
        json!({"securityContext": {}, "tolerations": [{"key": "a", "operator": "Exists"}], "containers": [{"name": "app", "image": "x"}]}),
        &policy,
        &no_classes(),
    );
}

#[test]
fn pull_and_token_settings_are_applied_as_the_json_applies_them() {
    let token_volume = json!({"name": "kube-api-access-q7x2k",
        "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}});
    let token_mount = json!({"name": "kube-api-access-q7x2k",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true});
    for pull in ["always", "alwaysExceptNever", "leave"] {
        for token in ["remove", "keepForNamedServiceAccounts", "leave"] {
            let policy = policy_with(
                &format!("{{imagePullPolicy: {pull}, automountServiceAccountToken: {token}}}"),
                "{}",
            );
            for (name_field, account) in [
                ("serviceAccountName", "default"),
                ("serviceAccountName", "mcp-reader"),
                ("serviceAccount", "mcp-reader"),
                ("serviceAccountName", ""),
            ] {
                let spec = json!({
                    name_field: account,
                    "volumes": [token_volume.clone()],
                    "initContainers": [{"name": "init", "image": "x:1", "imagePullPolicy": "Never",
                                        "volumeMounts": [token_mount.clone()]}],
                    "containers": [
                        {"name": "app", "image": "x:1", "imagePullPolicy": "IfNotPresent",
                         "volumeMounts": [token_mount.clone()]},
                        {"name": "tool", "image": "x"}
                    ]
                });
                agrees(spec, &policy, &no_classes());
            }
        }
    }
}
