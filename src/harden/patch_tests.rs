//! The shape of the patch hardening writes down: one operation per change, a created object
//! or list whole, removals last index first, keys escaped. (Every hardening in `tests.rs`
//! also checks that its patch reproduces the hardened pod.)

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::Scope;
use super::tests::{
    bare_pod, default_policy, gvisor_classes, gvisor_toleration, harden, harden_pod,
    hardened_container_sc, no_classes, policy_with, token_mount, token_volume,
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
    let policy = policy_with("{automountServiceAccountToken: false}", "{}");
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
