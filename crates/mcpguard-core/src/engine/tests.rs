//! The decision function: scope, malformed requests, PSA's significant-update rule,
//! subresources, and the exact denials and audit annotations.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::policy::{Policy, parse_str};
use crate::review::{AdmissionRequest, ResponseStatus};
use crate::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};

fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy loads")
}

/// A fixed clock: decisions never read the real one.
fn test_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("valid timestamp")
}

/// Runs `f` with a context of `policy` and no RuntimeClasses.
fn with_context<T>(policy: &Policy, f: impl FnOnce(Context<'_>) -> T) -> T {
    let classes = StaticRuntimeClasses::default();
    f(Context {
        policy,
        runtime_classes: &classes,
        now: test_now(),
    })
}

fn mutate_default(request: &AdmissionRequest) -> Decision {
    with_context(&default_policy(), |context| mutate(request, context))
}

fn validate_default(request: &AdmissionRequest) -> Decision {
    with_context(&default_policy(), |context| validate(request, context))
}

/// An AdmissionRequest as kube-apiserver sends it, for a pod named `p` in `mcp`.
struct Req(Value);

impl Req {
    fn new(operation: &str) -> Req {
        Req(json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p",
            "namespace": "mcp",
            "operation": operation,
            "userInfo": {"username": "admin"}
        }))
    }
    fn create(object: Value) -> Req {
        Req::new("CREATE").object(object)
    }
    fn update(object: Value, old: Value) -> Req {
        Req::new("UPDATE").object(object).old(old)
    }
    fn object(mut self, object: Value) -> Req {
        self.0["object"] = object;
        self
    }
    fn old(mut self, old: Value) -> Req {
        self.0["oldObject"] = old;
        self
    }
    fn sub_resource(mut self, sub: &str) -> Req {
        self.0["subResource"] = json!(sub);
        self
    }
    fn namespace(mut self, namespace: Value) -> Req {
        self.0["namespace"] = namespace;
        self
    }
    fn name(mut self, name: &str) -> Req {
        self.0["name"] = json!(name);
        self
    }
    fn resource(mut self, group: &str, resource: &str) -> Req {
        self.0["resource"] = json!({"group": group, "version": "v1", "resource": resource});
        self
    }
    fn build(self) -> AdmissionRequest {
        serde_json::from_value(self.0).expect("valid AdmissionRequest")
    }
}

/// A pod that fails the restricted level on four checks and no MCP rule.
fn bare_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "mcp", "labels": {"app": "mcp"}},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1", "imagePullPolicy": "Always"}]}
    })
}

/// A pod that passes the restricted level and every rule of the default policy.
fn hardened_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "mcp"},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                                "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "ghcr.io/x/app:1", "imagePullPolicy": "Always",
                "resources": {"requests": {"memory": "400Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

const BARE_POD_VIOLATIONS: &str = "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";
const BARE_POD_IDS: &str =
    "allowPrivilegeEscalation,capabilities_restricted,runAsNonRoot,seccompProfile_restricted";

fn skipped() -> Decision {
    Decision {
        outcome: Outcome::Skipped,
        patch: None,
        warnings: Vec::new(),
        violations: Vec::new(),
        status: None,
        audit_annotations: BTreeMap::new(),
    }
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn assert_denied_bare_pod(decision: &Decision, name: &str) {
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status,
        Some(ResponseStatus::forbidden(format!(
            "pods {name:?} is forbidden: violates mcpguard policy \"mcp-restricted\": {BARE_POD_VIOLATIONS}"
        )))
    );
    assert_eq!(
        decision.audit_annotations,
        annotations(&[("policy", "mcp-restricted"), ("violations", BARE_POD_IDS)])
    );
}

fn patch_paths(patch: &json_patch::Patch) -> Vec<String> {
    patch.iter().map(|op| op.path().to_string()).collect()
}

fn applied(original: &Value, patch: &json_patch::Patch) -> Value {
    let mut doc = original.clone();
    json_patch::patch(&mut doc, patch).expect("patch applies");
    doc
}

// ---- mutate: the normal path ---------------------------------------------------------------

#[test]
fn mutate_create_patches_the_pod_to_its_hardened_form() {
    let pod = bare_pod();
    let decision = mutate_default(&Req::create(pod.clone()).build());
    assert_eq!(decision.outcome, Outcome::Mutated);
    assert!(decision.allowed());
    let patch = decision.patch.as_ref().expect("a patch");
    let expected = harden::harden_pod(
        &pod,
        Scope::WholePod,
        &default_policy(),
        &StaticRuntimeClasses::default(),
    )
    .unwrap();
    assert_eq!(applied(&pod, patch), expected.pod);
    assert_eq!(
        decision.warnings,
        vec![
            "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false".to_owned(),
            "mcpguard: container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, requests.memory=400Mi".to_owned(),
        ]
    );
    assert_eq!(
        decision.audit_annotations,
        annotations(&[
            ("policy", "mcp-restricted"),
            (
                "mutated",
                "containers.resources.requests.memory,containers.securityContext.allowPrivilegeEscalation,containers.securityContext.capabilities,containers.securityContext.runAsGroup,containers.securityContext.runAsNonRoot,containers.securityContext.runAsUser,containers.securityContext.seccompProfile,spec.automountServiceAccountToken,spec.securityContext.fsGroup,spec.securityContext.runAsGroup,spec.securityContext.runAsNonRoot,spec.securityContext.runAsUser,spec.securityContext.seccompProfile"
            )
        ])
    );
    assert!(decision.violations.is_empty());
    assert_eq!(decision.status, None);
}

#[test]
fn mutated_pod_then_passes_validation() {
    let pod = bare_pod();
    let decision = mutate_default(&Req::create(pod.clone()).build());
    let mutated = applied(&pod, decision.patch.as_ref().unwrap());
    let verdict = validate_default(&Req::create(mutated).build());
    assert_eq!(verdict.outcome, Outcome::Allowed);
}

#[test]
fn mutate_create_of_a_hardened_pod_is_allowed_without_patch() {
    let decision = mutate_default(&Req::create(hardened_pod()).build());
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Allowed,
            patch: None,
            warnings: Vec::new(),
            violations: Vec::new(),
            status: None,
            audit_annotations: annotations(&[("policy", "mcp-restricted")]),
        }
    );
}

#[test]
fn the_response_echoes_the_uid_and_carries_the_base64_patch() {
    let pod = bare_pod();
    let decision = mutate_default(&Req::create(pod.clone()).build());
    let response = decision.to_response("uid-1");
    assert_eq!(response.uid, "uid-1");
    assert!(response.allowed);
    assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
    let patch = response.decoded_patch().unwrap().unwrap();
    assert_eq!(Some(&patch), decision.patch.as_ref());
    assert_eq!(response.warnings, decision.warnings);
    assert_eq!(response.audit_annotations, decision.audit_annotations);
}

#[test]
fn the_answer_on_the_wire_is_byte_for_byte_what_serde_writes_of_the_response() {
    let pod = bare_pod();
    let mut decisions = vec![
        mutate_default(&Req::create(pod.clone()).build()),
        validate_default(&Req::create(pod).build()),
        mutate_default(&Req::create(hardened_pod()).build()),
        Decision::skipped(),
        Decision::invalid_request("body \"quoted\" \u{1f600}".into()),
    ];
    let mut many = decisions[0].clone();
    many.warnings = (0..150).map(|i| format!("warning {i}")).collect();
    let mut one = decisions[2].clone();
    one.warnings = vec!["only \"one\"".into()];
    decisions.extend([many, one]);
    assert!(decisions[0].patch.is_some() && decisions[1].status.is_some());
    for decision in &decisions {
        let expected = serde_json::to_vec(&decision.to_response("uid-\"1\"").into_review())
            .expect("serialises");
        assert_eq!(
            String::from_utf8_lossy(&decision.review_json("uid-\"1\"")),
            String::from_utf8_lossy(&expected)
        );
    }
}

// ---- validate: the normal path -------------------------------------------------------------

#[test]
fn validate_denies_a_bare_pod_with_the_exact_message_and_audit_annotations() {
    let decision = validate_default(&Req::create(bare_pod()).build());
    assert_denied_bare_pod(&decision, "p");
    assert!(!decision.allowed());
    assert_eq!(decision.patch, None);
    let ids: Vec<&str> = decision
        .violations
        .iter()
        .map(|v| v.check.as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsNonRoot",
            "seccompProfile_restricted"
        ]
    );
    let response = decision.to_response("u");
    assert!(!response.allowed);
    assert_eq!(response.status.as_ref().map(|s| s.code), Some(403));
}

#[test]
fn validate_allows_a_hardened_pod() {
    let decision = validate_default(&Req::create(hardened_pod()).build());
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Allowed,
            patch: None,
            warnings: Vec::new(),
            violations: Vec::new(),
            status: None,
            audit_annotations: annotations(&[("policy", "mcp-restricted")]),
        }
    );
}

#[test]
fn validate_names_mcp_rule_violations_after_pss_ones() {
    let mut pod = hardened_pod();
    pod["spec"]["containers"][0]["env"] = json!([{"name": "GITHUB_TOKEN", "value": "ghp_x"}]);
    let decision = validate_default(&Req::create(pod).build());
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status,
        Some(ResponseStatus::forbidden(
            "pods \"p\" is forbidden: violates mcpguard policy \"mcp-restricted\": secret literal in env (container \"app\" sets GITHUB_TOKEN (the name marks a credential) as literal value; use valueFrom.secretKeyRef)".into()
        ))
    );
    assert_eq!(
        decision.audit_annotations,
        annotations(&[
            ("policy", "mcp-restricted"),
            ("violations", "forbidSecretLiterals")
        ])
    );
}

#[test]
fn a_generate_name_only_pod_is_named_by_its_generate_name() {
    let mut pod = bare_pod();
    pod["metadata"] = json!({"generateName": "github-mcp-", "namespace": "mcp"});
    let decision = validate_default(&Req::create(pod).name("").build());
    assert_denied_bare_pod(&decision, "github-mcp-");
}

#[test]
fn the_object_name_is_used_when_the_request_has_none() {
    let decision = validate_default(&Req::create(bare_pod()).name("").build());
    assert_denied_bare_pod(&decision, "p");
}

// ---- scope ---------------------------------------------------------------------------------

#[test]
fn a_pod_in_another_namespace_is_skipped() {
    let request = Req::create(bare_pod()).namespace(json!("default")).build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_request_without_namespace_is_skipped() {
    let mut raw = Req::create(bare_pod());
    raw.0.as_object_mut().unwrap().remove("namespace");
    let request = raw.build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_non_pod_resource_is_skipped() {
    let configmap = json!({"metadata": {"name": "c"}, "data": {"a": "b"}});
    let request = Req::create(configmap).resource("", "configmaps").build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn workloads_are_never_mutated() {
    let deployment = json!({"metadata": {"name": "d"}, "spec": {"template": bare_pod()}});
    let request = Req::create(deployment)
        .resource("apps", "deployments")
        .build();
    assert_eq!(mutate_default(&request), skipped());
}

#[test]
fn a_pods_named_resource_of_another_group_is_skipped() {
    let request = Req::create(bare_pod())
        .resource("metrics.k8s.io", "pods")
        .build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_pod_status_update_is_skipped() {
    let mut new = bare_pod();
    new["spec"]["containers"][0]["image"] = json!("ghcr.io/x/app:2");
    let request = Req::update(new, bare_pod()).sub_resource("status").build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_delete_is_skipped() {
    let request = Req::new("DELETE").old(bare_pod()).build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_connect_is_skipped() {
    let request = Req::new("CONNECT")
        .sub_resource("exec")
        .object(json!({"kind": "PodExecOptions"}))
        .build();
    assert_eq!(mutate_default(&request), skipped());
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn an_unknown_operation_is_allowed_with_a_warning() {
    let request = Req::new("PATCH").object(bare_pod()).build();
    let expected = Decision {
        outcome: Outcome::Allowed,
        patch: None,
        warnings: vec!["mcpguard: unknown operation \"PATCH\": admitted without checks".into()],
        violations: Vec::new(),
        status: None,
        audit_annotations: BTreeMap::new(),
    };
    assert_eq!(mutate_default(&request), expected);
    assert_eq!(validate_default(&request), expected);
}

#[test]
fn a_missing_object_is_invalid_with_status_400() {
    let request = Req::new("CREATE").build();
    let expected = Decision {
        outcome: Outcome::Invalid,
        patch: None,
        warnings: Vec::new(),
        violations: Vec::new(),
        status: Some(ResponseStatus {
            code: 400,
            message: "request.object is missing".into(),
            reason: "BadRequest".into(),
            status: "Failure".into(),
        }),
        audit_annotations: BTreeMap::new(),
    };
    assert_eq!(mutate_default(&request), expected);
    assert_eq!(validate_default(&request), expected);
    assert!(!expected.allowed());
}

#[test]
fn a_missing_old_object_on_update_is_invalid() {
    let request = Req::new("UPDATE").object(bare_pod()).build();
    let decision = validate_default(&request);
    assert_eq!(decision.outcome, Outcome::Invalid);
    assert_eq!(
        decision.status,
        Some(ResponseStatus::bad_request(
            "request.oldObject is missing on UPDATE".into()
        ))
    );
}

#[test]
fn an_object_without_spec_is_invalid() {
    let request = Req::create(json!({"metadata": {"name": "p"}})).build();
    for decision in [mutate_default(&request), validate_default(&request)] {
        assert_eq!(decision.outcome, Outcome::Invalid);
        assert_eq!(
            decision.status,
            Some(ResponseStatus::bad_request("object has no spec".into()))
        );
    }
}

// ---- PSA's significant-update rule ----------------------------------------------------------

fn update_of_bare_pod(change: impl FnOnce(&mut Value)) -> AdmissionRequest {
    let old = bare_pod();
    let mut new = old.clone();
    change(&mut new);
    Req::update(new, old).build()
}

#[test]
fn an_unchanged_update_is_skipped() {
    assert_eq!(validate_default(&update_of_bare_pod(|_| {})), skipped());
}

#[test]
fn a_label_change_is_skipped() {
    let request = update_of_bare_pod(|pod| pod["metadata"]["labels"]["app"] = json!("other"));
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_finalizer_change_is_skipped() {
    let request =
        update_of_bare_pod(|pod| pod["metadata"]["finalizers"] = json!(["example.com/hold"]));
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn an_owner_reference_change_is_skipped() {
    let request = update_of_bare_pod(|pod| {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1234"
        }])
    });
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn a_plain_update_is_never_mutated() {
    let request =
        update_of_bare_pod(|pod| pod["spec"]["containers"][0]["image"] = json!("ghcr.io/x/app:2"));
    assert_eq!(mutate_default(&request), skipped());
}

#[test]
fn an_image_change_is_judged() {
    let request =
        update_of_bare_pod(|pod| pod["spec"]["containers"][0]["image"] = json!("ghcr.io/x/app:2"));
    assert_denied_bare_pod(&validate_default(&request), "p");
}

#[test]
fn an_added_container_is_judged() {
    let request = update_of_bare_pod(|pod| {
        pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "side", "image": "ghcr.io/x/side:1"}))
    });
    let decision = validate_default(&request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.audit_annotations,
        annotations(&[("policy", "mcp-restricted"), ("violations", BARE_POD_IDS)])
    );
}

#[test]
fn an_init_container_image_change_is_judged() {
    let old = {
        let mut pod = bare_pod();
        pod["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox:1"}]);
        pod
    };
    let mut new = old.clone();
    new["spec"]["initContainers"][0]["image"] = json!("busybox:2");
    let decision = validate_default(&Req::update(new, old).build());
    assert_eq!(decision.outcome, Outcome::Denied);
}

#[test]
fn a_seccomp_annotation_change_is_skipped_as_psa_skips_it() {
    // PSA stopped comparing the seccomp annotations in 1.27; kubelets ignore them.
    for annotation in [
        "seccomp.security.alpha.kubernetes.io/pod",
        "container.seccomp.security.alpha.kubernetes.io/app",
    ] {
        let request = update_of_bare_pod(|pod| {
            pod["metadata"]["annotations"] = json!({annotation: "unconfined"})
        });
        assert_eq!(validate_default(&request), skipped(), "{annotation}");
    }
}

#[test]
fn removing_a_seccomp_annotation_from_an_old_pod_is_skipped() {
    let mut old = bare_pod();
    old["metadata"]["annotations"] = json!({
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
        "container.seccomp.security.alpha.kubernetes.io/app": "runtime/default",
        "example.com/owner": "team-a"
    });
    let mut new = old.clone();
    new["metadata"]["annotations"] = json!({"example.com/owner": "team-a"});
    assert_eq!(validate_default(&Req::update(new, old).build()), skipped());
}

#[test]
fn an_unrelated_annotation_change_is_skipped() {
    let request = update_of_bare_pod(|pod| {
        pod["metadata"]["annotations"] = json!({"example.com/note": "hello"})
    });
    assert_eq!(validate_default(&request), skipped());
}

#[test]
fn an_ephemeral_container_added_in_a_plain_update_is_judged() {
    let request = update_of_bare_pod(|pod| {
        pod["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}])
    });
    assert_eq!(validate_default(&request).outcome, Outcome::Denied);
}

#[test]
fn a_metadata_update_of_a_compliant_pod_is_skipped_and_an_image_change_allowed() {
    let old = hardened_pod();
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"x": "y"});
    assert_eq!(
        validate_default(&Req::update(relabelled, old.clone()).build()),
        skipped()
    );
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("ghcr.io/x/app:2");
    assert_eq!(
        validate_default(&Req::update(new_image, old).build()).outcome,
        Outcome::Allowed
    );
}

// ---- subresources --------------------------------------------------------------------------

/// A policy `name` enforcing `mcp` at restricted/latest with no mutation, whose `validate:`
/// is followed by `validate` (a flow mapping, or a block starting on the next line).
fn restricted_policy(name: &str, validate: &str) -> Policy {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: {name}}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
  validate:{validate}
"
    );
    parse_str(&text, "test").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

#[test]
fn a_resize_of_a_noncompliant_pod_is_allowed_and_not_mutated() {
    // PSA allows every resize: a pod admitted in warn mode, under an exception or before
    // the policy tightened can still be resized in place (VPA, kubectl --subresource resize).
    let old = bare_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "1"}});
    let request = Req::update(new, old).sub_resource("resize").build();
    assert_eq!(
        validate_default(&request),
        Decision {
            audit_annotations: annotations(&[("policy", "mcp-restricted")]),
            ..Decision::new(Outcome::Allowed)
        }
    );
    assert_eq!(mutate_default(&request), skipped());
}

#[test]
fn a_resize_is_judged_by_the_cel_rules_with_the_old_object() {
    let policy = restricted_policy(
        "cel",
        "
    rules:
      - name: no-cpu-growth
        expression: >-
          oldObject == null || !has(object.spec.containers[0].resources.requests) ||
          object.spec.containers[0].resources.requests.cpu == '100m'
        message: resizes may not grow cpu",
    );
    let old = bare_pod();
    let resized = |cpu: &str| {
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": cpu}});
        Req::update(new, old.clone()).sub_resource("resize").build()
    };
    let grown = with_context(&policy, |context| validate(&resized("2"), context));
    assert_eq!(grown.outcome, Outcome::Denied);
    assert_eq!(
        grown
            .violations
            .iter()
            .map(|v| v.check.as_str())
            .collect::<Vec<_>>(),
        ["no-cpu-growth"]
    );
    let kept = with_context(&policy, |context| validate(&resized("100m"), context));
    assert_eq!(kept.outcome, Outcome::Allowed);
}

#[test]
fn a_resize_of_a_compliant_pod_past_the_ceiling_is_denied() {
    let policy = restricted_policy("ceil", " {maxResources: {cpu: \"1\"}}");
    let old = hardened_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "2"}, "limits": {"cpu": "2"}});
    let request = Req::update(new, old).sub_resource("resize").build();
    let decision = with_context(&policy, |context| validate(&request, context));
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status.unwrap().message,
        "pods \"p\" is forbidden: violates mcpguard policy \"ceil\": resources above policy ceiling (container \"app\" requests cpu=2 above the ceiling 1, container \"app\" limits cpu=2 above the ceiling 1)"
    );
}

fn with_ephemeral(pod: &Value, names: &[&str]) -> Value {
    let mut pod = pod.clone();
    pod["spec"]["ephemeralContainers"] = names
        .iter()
        .map(|n| json!({"name": n, "image": "busybox"}))
        .collect();
    pod
}

#[test]
fn adding_an_ephemeral_container_mutates_only_the_new_one() {
    let old = with_ephemeral(&hardened_pod(), &["first"]);
    let new = with_ephemeral(&hardened_pod(), &["first", "second"]);
    let request = Req::update(new.clone(), old)
        .sub_resource("ephemeralcontainers")
        .build();
    let decision = mutate_default(&request);
    assert_eq!(decision.outcome, Outcome::Mutated);
    let patch = decision.patch.as_ref().unwrap();
    assert!(
        patch_paths(patch)
            .iter()
            .all(|p| p.starts_with("/spec/ephemeralContainers/1/")),
        "{:?}",
        patch_paths(patch)
    );
    let result = applied(&new, patch);
    assert_eq!(
        result["spec"]["ephemeralContainers"],
        json!([
            {"name": "first", "image": "busybox"},
            {"name": "second", "image": "busybox", "imagePullPolicy": "Always",
             "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}
        ])
    );
    assert_eq!(
        decision.warnings,
        vec!["mcpguard: ephemeral container \"second\": set allowPrivilegeEscalation=false, drop ALL, imagePullPolicy=Always".to_owned()]
    );
    assert_eq!(
        decision.audit_annotations,
        annotations(&[
            ("policy", "mcp-restricted"),
            (
                "mutated",
                "containers.imagePullPolicy,containers.securityContext.allowPrivilegeEscalation,containers.securityContext.capabilities"
            )
        ])
    );
}

#[test]
fn an_ephemeral_containers_update_is_judged() {
    let old = with_ephemeral(&hardened_pod(), &[]);
    let new = with_ephemeral(&hardened_pod(), &["debug"]);
    let request = Req::update(new, old)
        .sub_resource("ephemeralcontainers")
        .build();
    let decision = validate_default(&request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status.unwrap().message,
        "pods \"p\" is forbidden: violates mcpguard policy \"mcp-restricted\": allowPrivilegeEscalation != false (container \"debug\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"debug\" must set securityContext.capabilities.drop=[\"ALL\"])"
    );
}

#[test]
fn a_hardened_ephemeral_container_is_allowed() {
    let old = with_ephemeral(&hardened_pod(), &[]);
    let mut new = with_ephemeral(&hardened_pod(), &["debug"]);
    new["spec"]["ephemeralContainers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let request = Req::update(new, old)
        .sub_resource("ephemeralcontainers")
        .build();
    assert_eq!(validate_default(&request).outcome, Outcome::Allowed);
}

// ---- RuntimeClass conflict -----------------------------------------------------------------

#[test]
fn a_node_selector_conflict_denies_the_pod_in_mutation() {
    let policy = parse_str(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: sandboxed}
spec:
  namespaces: [mcp]
  podSecurity: {level: restricted, version: latest}
  mutate: {runtimeClassName: gvisor}
",
        "test",
    )
    .unwrap();
    let classes = StaticRuntimeClasses(HashMap::from([(
        "gvisor".to_owned(),
        RuntimeClassInfo {
            overhead_pod_fixed: None,
            node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
            tolerations: Vec::new(),
        },
    )]));
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: test_now(),
    };
    let mut pod = hardened_pod();
    pod["spec"]["nodeSelector"] = json!({"sandbox": "other"});
    let decision = mutate(&Req::create(pod.clone()).build(), context);
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Denied,
            patch: None,
            warnings: Vec::new(),
            violations: vec![Violation {
                check: "runtimeClassScheduling".into(),
                reason: "RuntimeClass scheduling conflict".into(),
                detail: "RuntimeClass \"gvisor\" requires nodeSelector sandbox=\"gvisor\" but the pod sets sandbox=\"other\"".into(),
                fields: Vec::new(),
            }],
            status: Some(ResponseStatus::forbidden(
                "pods \"p\" is forbidden: mcpguard policy \"sandboxed\": RuntimeClass \"gvisor\" requires nodeSelector sandbox=\"gvisor\" but the pod sets sandbox=\"other\"".into()
            )),
            audit_annotations: annotations(&[
                ("policy", "sandboxed"),
                ("violations", "runtimeClassScheduling")
            ]),
        }
    );
    assert!(!decision.allowed());

    pod["spec"]["nodeSelector"] = json!({"sandbox": "gvisor"});
    let decision = mutate(&Req::create(pod).build(), context);
    assert_eq!(decision.outcome, Outcome::Mutated);
}

#[test]
fn outcome_names_are_stable() {
    let names: Vec<&str> = [
        Outcome::Skipped,
        Outcome::Allowed,
        Outcome::Mutated,
        Outcome::Denied,
        Outcome::Invalid,
    ]
    .iter()
    .map(|o| o.as_str())
    .collect();
    assert_eq!(
        names,
        vec!["skipped", "allowed", "mutated", "denied", "invalid"]
    );
}

// ---- containers per pod ----------------------------------------------------------------------

/// The hardened pod with `count` containers, split over the three lists.
fn pod_with_containers(count: usize) -> Value {
    let mut pod = hardened_pod();
    let template = pod["spec"]["containers"][0].clone();
    let container = |i: usize| {
        let mut container = template.clone();
        container["name"] = json!(format!("c{i}"));
        container
    };
    let init = count / 4;
    let ephemeral = count / 4;
    pod["spec"]["initContainers"] = (0..init).map(container).collect();
    pod["spec"]["ephemeralContainers"] = (init..init + ephemeral).map(container).collect();
    pod["spec"]["containers"] = (init + ephemeral..count).map(container).collect();
    pod
}

fn too_many_containers_denial(count: usize) -> Decision {
    let detail = format!(
        "{count} containers (initContainers, containers and ephemeralContainers together) exceed the limit of 1000 per pod"
    );
    Decision {
        status: Some(ResponseStatus::forbidden(format!(
            "pods \"p\" is forbidden: mcpguard: {detail}"
        ))),
        violations: vec![Violation {
            check: "maxContainersPerPod".into(),
            reason: "too many containers".into(),
            detail,
            fields: Vec::new(),
        }],
        audit_annotations: annotations(&[
            ("policy", "mcp-restricted"),
            ("violations", "maxContainersPerPod"),
        ]),
        ..Decision::new(Outcome::Denied)
    }
}

#[test]
fn a_pod_over_the_container_limit_is_denied_naming_the_limit_on_both_webhooks() {
    assert_eq!(MAX_CONTAINERS_PER_POD, 1000);
    let request = Req::create(pod_with_containers(1001)).build();
    assert_eq!(validate_default(&request), too_many_containers_denial(1001));
    assert_eq!(mutate_default(&request), too_many_containers_denial(1001));
    assert!(!mutate_default(&request).to_response("u").allowed);
}

#[test]
fn a_pod_at_the_container_limit_is_judged_as_usual() {
    let request = Req::create(pod_with_containers(1000)).build();
    for decision in [validate_default(&request), mutate_default(&request)] {
        assert!(decision.allowed(), "{:?}", decision.status);
        assert_eq!(decision.status, None);
    }
}

#[test]
fn the_limit_holds_in_every_mode_and_for_added_ephemeral_containers() {
    let text = crate::policy::DEFAULT_POLICY_YAML.replace("mode: enforce", "mode: audit");
    assert_ne!(
        text,
        crate::policy::DEFAULT_POLICY_YAML,
        "the mode was replaced"
    );
    let audit = parse_str(&text, "audit.yaml").expect("policy loads");
    let request = Req::create(pod_with_containers(1001)).build();
    with_context(&audit, |context| {
        assert_eq!(validate(&request, context).outcome, Outcome::Denied);
    });
    let old = pod_with_containers(1000);
    let mut new = old.clone();
    let added = json!({"name": "debugger", "image": "busybox"});
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .expect("ephemeral containers")
        .push(added);
    let request = Req::update(new, old)
        .sub_resource("ephemeralcontainers")
        .build();
    assert_eq!(mutate_default(&request), too_many_containers_denial(1001));
    assert_eq!(validate_default(&request), too_many_containers_denial(1001));
}

#[test]
fn a_metadata_update_of_a_pod_over_the_limit_is_not_judged() {
    // PSA's rule: a label or finalizer change must pass, or such a pod could not be
    // cleaned up.
    let old = pod_with_containers(1001);
    let mut new = old.clone();
    new["metadata"]["labels"]["tier"] = json!("x");
    let request = Req::update(new, old).build();
    assert_eq!(validate_default(&request), skipped());
}
