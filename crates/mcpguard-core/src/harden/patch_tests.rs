//! The shape of the patch hardening writes down: one operation per change, a created object
//! or list whole, removals last index first, keys escaped. (Every hardening in `tests.rs`
//! also checks that its patch reproduces the hardened pod.)

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::Scope;
use super::tests::{
    bare_pod, default_policy, gvisor_classes, gvisor_toleration, harden, harden_pod,
    hardened_container_sc, no_classes, policy_as_written, policy_with, token_mount, token_volume,
};
use crate::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};

fn ops(patch: &json_patch::Patch) -> Value {
    serde_json::to_value(patch).expect("a patch serialises")
}

#[test]
fn removals_are_written_down_last_index_first() {
    let data_mount = json!({"name": "data", "mountPath": "/data"});
    let pod = json!({"spec": {
        "volumes": [token_volume("kube-api-access-a"), {"name": "data", "emptyDir": {}},
                    token_volume("kube-api-access-b")],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [token_mount("kube-api-access-a"), data_mount,
                                         token_mount("kube-api-access-b")]}]
    }});
    let policy = policy_with("{automountServiceAccountToken: remove}", "{}");
    let mutation = harden(&pod, &policy);
    assert_eq!(
        ops(&mutation.patch),
        json!([
            {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
            {"op": "remove", "path": "/spec/volumes/2"},
            {"op": "remove", "path": "/spec/volumes/0"},
            {"op": "remove", "path": "/spec/containers/0/volumeMounts/2"},
            {"op": "remove", "path": "/spec/containers/0/volumeMounts/0"}
        ])
    );
}

#[test]
fn keys_with_a_slash_or_a_tilde_are_escaped() {
    let info = RuntimeClassInfo {
        overhead_pod_fixed: None,
        node_selector: BTreeMap::from([("example.com/pool~a".to_owned(), "sandbox".to_owned())]),
        tolerations: vec![gvisor_toleration()],
    };
    let classes = StaticRuntimeClasses(HashMap::from([("sandbox".to_owned(), info)]));
    let pod = json!({"spec": {
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "other", "operator": "Exists"}],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]
    }});
    let policy = policy_with("{runtimeClassName: sandbox}", "{}");
    let mutation = harden_pod(&pod, Scope::WholePod, &policy, &classes).expect("hardens");
    assert_eq!(
        ops(&mutation.patch),
        json!([
            {"op": "add", "path": "/spec/runtimeClassName", "value": "sandbox"},
            {"op": "add", "path": "/spec/nodeSelector/example.com~1pool~0a", "value": "sandbox"},
            {"op": "add", "path": "/spec/tolerations/1", "value": gvisor_toleration()}
        ])
    );
}

#[test]
fn a_list_two_steps_create_is_one_operation() {
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always"}]}});
    let policy_toleration = json!({"key": "mcp", "operator": "Exists"});
    let policy = policy_with(
        "{runtimeClassName: gvisor, tolerations: [{key: mcp, operator: Exists}]}",
        "{}",
    );
    let mutation = harden_pod(&pod, Scope::WholePod, &policy, &gvisor_classes()).expect("hardens");
    assert_eq!(
        ops(&mutation.patch),
        json!([
            {"op": "add", "path": "/spec/runtimeClassName", "value": "gvisor"},
            {"op": "add", "path": "/spec/overhead", "value": {"cpu": "250m", "memory": "120Mi"}},
            {"op": "add", "path": "/spec/nodeSelector", "value": {"sandbox": "gvisor"}},
            {"op": "add", "path": "/spec/tolerations",
             "value": [gvisor_toleration(), policy_toleration]}
        ])
    );
}

#[test]
fn a_null_is_replaced_whole_and_an_empty_section_removed() {
    let mut pod = bare_pod();
    pod["spec"]["automountServiceAccountToken"] = json!(false);
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true, "runAsUser": 1000,
        "runAsGroup": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}});
    let container = &mut pod["spec"]["containers"][0];
    container["imagePullPolicy"] = json!("Always");
    container["securityContext"] = Value::Null;
    container["resources"] = json!({"limits": {}, "requests": {"cpu": "100m"}});
    let mutation = harden(&pod, &default_policy());
    // The pod sets the inherited fields itself, so the container gets only its own.
    assert_eq!(
        ops(&mutation.patch),
        json!([
            {"op": "replace", "path": "/spec/containers/0/securityContext",
             "value": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}},
            {"op": "add", "path": "/spec/containers/0/resources/requests/memory", "value": "400Mi"},
            {"op": "remove", "path": "/spec/containers/0/resources/limits"}
        ])
    );
}

#[test]
fn an_object_the_pod_lacks_is_added_whole_and_one_it_has_member_by_member() {
    let mutation = harden(&bare_pod(), &default_policy());
    let patch = ops(&mutation.patch);
    assert!(
        patch.as_array().is_some_and(|ops| ops.contains(&json!(
            {"op": "add", "path": "/spec/containers/0/securityContext", "value": hardened_container_sc()}
        ))),
        "{patch}"
    );
    let mut pod = bare_pod();
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": false});
    let mutation =
        harden_pod(&pod, Scope::WholePod, &default_policy(), &no_classes()).expect("hardens");
    let paths: Vec<String> = mutation
        .patch
        .iter()
        .map(|op| op.path().to_string())
        .filter(|p| p.starts_with("/spec/containers/0/securityContext"))
        .collect();
    assert_eq!(
        paths,
        [
            "allowPrivilegeEscalation",
            "capabilities",
            "runAsGroup",
            "runAsNonRoot",
            "runAsUser",
            "seccompProfile"
        ]
        .map(|key| format!("/spec/containers/0/securityContext/{key}"))
    );
}

// ---- imagePullPolicy: always | alwaysExceptNever | leave ----------------------------------

/// The patch `setting` makes to a pod whose one container has `current` (absent: `None`).
fn pull_patch(setting: &str, current: Option<&str>) -> Value {
    let mut container = json!({"name": "app", "image": "ghcr.io/x/app:1"});
    if let Some(current) = current {
        container["imagePullPolicy"] = json!(current);
    }
    let pod = json!({"spec": {"automountServiceAccountToken": true, "containers": [container]}});
    let policy = policy_with(&format!("{{imagePullPolicy: {setting}}}"), "{}");
    ops(&harden(&pod, &policy).patch)
}

const REPLACED_BY_ALWAYS: &str = "replace";

fn to_always(op: &str) -> Value {
    json!([{"op": op, "path": "/spec/containers/0/imagePullPolicy", "value": "Always"}])
}

#[test]
fn always_pulls_every_container_even_one_that_says_never() {
    assert_eq!(
        pull_patch("always", Some("Never")),
        to_always(REPLACED_BY_ALWAYS)
    );
    assert_eq!(
        pull_patch("always", Some("IfNotPresent")),
        to_always(REPLACED_BY_ALWAYS)
    );
    assert_eq!(pull_patch("always", None), to_always("add"));
    assert_eq!(pull_patch("always", Some("Always")), json!([]));
}

#[test]
fn always_except_never_keeps_an_explicit_never_and_pulls_the_rest() {
    assert_eq!(pull_patch("alwaysExceptNever", Some("Never")), json!([]));
    assert_eq!(
        pull_patch("alwaysExceptNever", Some("IfNotPresent")),
        to_always(REPLACED_BY_ALWAYS)
    );
    assert_eq!(pull_patch("alwaysExceptNever", None), to_always("add"));
    assert_eq!(pull_patch("alwaysExceptNever", Some("Always")), json!([]));
}

#[test]
fn leave_changes_no_pull_policy() {
    for current in [None, Some("Never"), Some("IfNotPresent"), Some("Always")] {
        assert_eq!(pull_patch("leave", current), json!([]), "{current:?}");
    }
}

#[test]
fn the_pull_setting_covers_init_and_ephemeral_containers() {
    let pod = json!({"spec": {
        "automountServiceAccountToken": true,
        "initContainers": [{"name": "init", "image": "x:1", "imagePullPolicy": "Never"}],
        "containers": [{"name": "app", "image": "x:1", "imagePullPolicy": "IfNotPresent"}],
        "ephemeralContainers": [{"name": "debug", "image": "x:1", "imagePullPolicy": "IfNotPresent"}]
    }});
    let policy = policy_with("{imagePullPolicy: alwaysExceptNever}", "{}");
    assert_eq!(
        ops(&harden(&pod, &policy).patch),
        json!([
            {"op": "replace", "path": "/spec/containers/0/imagePullPolicy", "value": "Always"}
        ])
    );
    let existing = ["app".to_owned()];
    let mut with_new = pod.clone();
    with_new["spec"]["ephemeralContainers"][0]["name"] = json!("new");
    let mutation = harden_pod(
        &with_new,
        Scope::NewEphemeralContainers {
            existing: &existing,
        },
        &policy,
        &no_classes(),
    )
    .expect("hardens");
    assert_eq!(
        ops(&mutation.patch),
        json!([
            {"op": "replace", "path": "/spec/ephemeralContainers/0/imagePullPolicy", "value": "Always"}
        ])
    );
}

// ---- automountServiceAccountToken: remove | keepForNamedServiceAccounts | leave ---------

/// A pod as the ServiceAccount admission plugin leaves it: its ServiceAccount named
/// (`default` when the author named none) and the token volume mounted.
fn pod_of_service_account(service_account: &str) -> Value {
    json!({"spec": {
        "serviceAccountName": service_account,
        "volumes": [token_volume("kube-api-access-q7x2k")],
        "containers": [{"name": "app", "image": "x", "imagePullPolicy": "Always",
                        "volumeMounts": [token_mount("kube-api-access-q7x2k")]}]
    }})
}

fn token_patch(setting: &str, pod: &Value) -> Value {
    let policy = policy_with(
        &format!("{{automountServiceAccountToken: {setting}}}"),
        "{}",
    );
    ops(&harden(pod, &policy).patch)
}

fn token_removed() -> Value {
    json!([
        {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
        {"op": "remove", "path": "/spec/volumes"},
        {"op": "remove", "path": "/spec/containers/0/volumeMounts"}
    ])
}

#[test]
fn remove_takes_the_token_from_every_pod() {
    assert_eq!(
        token_patch("remove", &pod_of_service_account("default")),
        token_removed()
    );
    assert_eq!(
        token_patch("remove", &pod_of_service_account("mcp-reader")),
        token_removed()
    );
}

#[test]
fn keep_for_named_service_accounts_keeps_the_token_of_a_named_service_account() {
    let setting = "keepForNamedServiceAccounts";
    assert_eq!(
        token_patch(setting, &pod_of_service_account("mcp-reader")),
        json!([])
    );
    assert_eq!(
        token_patch(setting, &pod_of_service_account("default")),
        token_removed()
    );
}

#[test]
fn keep_for_named_service_accounts_reads_the_deprecated_field_as_the_api_server_does() {
    let setting = "keepForNamedServiceAccounts";
    let mut pod = pod_of_service_account("");
    pod["spec"]["serviceAccount"] = json!("mcp-reader");
    assert_eq!(token_patch(setting, &pod), json!([]));
    // A pod template names none: its pods run as `default`.
    let mut template = pod_of_service_account("");
    template["spec"]
        .as_object_mut()
        .map(|spec| spec.remove("serviceAccountName"));
    assert_eq!(token_patch(setting, &template), token_removed());
}

#[test]
fn keep_for_named_service_accounts_is_the_default() {
    let policy = policy_as_written("{}", "{}");
    let named = pod_of_service_account("mcp-reader");
    assert_eq!(ops(&harden(&named, &policy).patch), json!([]));
    let unnamed = pod_of_service_account("default");
    assert_eq!(ops(&harden(&unnamed, &policy).patch), token_removed());
}

#[test]
fn leave_takes_no_token() {
    assert_eq!(
        token_patch("leave", &pod_of_service_account("default")),
        json!([])
    );
}

#[test]
fn an_explicit_automount_is_kept_whatever_the_setting() {
    for explicit in [true, false] {
        let mut pod = pod_of_service_account("default");
        pod["spec"]["automountServiceAccountToken"] = json!(explicit);
        assert_eq!(token_patch("remove", &pod), json!([]), "{explicit}");
    }
}
