//! The front door's routing: each resource reaches its own validator and no other, an
//! unknown one is skipped, the policy is the one in force in the namespace, and an MCPPolicy
//! write is judged by the loader with the coverage warnings of the policy set in force.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::admission::SecretAccess;
use crate::engine::Outcome;
use crate::policy_set::{self, ClusterPolicies};
use crate::runtime_class::StaticRuntimeClasses;
use crate::workloads::WORKLOADS;

fn default_set() -> PolicySet {
    PolicySet::single(Arc::new(
        Policy::embedded_default().expect("embedded policy loads"),
    ))
}

/// A CREATE of `object` as `resource` of `group` in `mcp`, by `jane`.
fn request(group: &str, resource: &str, object: Value) -> AdmissionRequest {
    request_in("mcp", group, resource, object)
}

fn request_in(namespace: &str, group: &str, resource: &str, object: Value) -> AdmissionRequest {
    serde_json::from_value(json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": "v1", "kind": "X"},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "x",
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "jane"},
        "object": object,
    }))
    .expect("a request")
}

/// The answers for a request that names no Secret.
const NO_SECRETS_ASKED: &std::collections::BTreeMap<
    crate::mcpserver::access::Reference,
    crate::mcpserver::access::Access,
> = &std::collections::BTreeMap::new();

fn with_context<T>(policies: &PolicySet, judge: impl FnOnce(Context<'_>) -> T) -> T {
    let classes = StaticRuntimeClasses::default();
    judge(Context {
        policies,
        runtime_classes: &classes,
        now: jiff::Timestamp::UNIX_EPOCH,
        secret_access: crate::admission::SecretAccess::Answered(NO_SECRETS_ASKED),
    })
}

/// What the front door answers under `policies`: the decision, and the policy that answers for
/// it (`None` for the policy loader).
fn answered(
    policies: &PolicySet,
    request: &AdmissionRequest,
    door: for<'a> fn(&AdmissionRequest, Context<'a>) -> Answer<'a>,
) -> (Decision, Option<String>) {
    with_context(policies, |context| {
        let answer = door(request, context);
        let judge = match answer.judge {
            Judge::Policy(policy) => Some(policy.name.clone()),
            Judge::PolicyLoader => None,
        };
        (answer.decision, judge)
    })
}

/// The front door's validation under the embedded default policy.
fn validated(request: &AdmissionRequest) -> Decision {
    with_context(&default_set(), |context| {
        validate(request, context).decision
    })
}

fn mutated(request: &AdmissionRequest) -> Decision {
    with_context(&default_set(), |context| mutate(request, context).decision)
}

/// The front door's validation of `request`, checked to be exactly what `validator` alone
/// answers.
fn reaches(
    request: &AdmissionRequest,
    validator: impl FnOnce(&AdmissionRequest, engine::Context<'_>) -> Decision,
) -> Decision {
    let decision = validated(request);
    assert_eq!(
        decision,
        by_validator(request, validator),
        "{}",
        request.resource.resource
    );
    decision
}

/// What `validator` alone answers under the embedded default policy.
fn by_validator(
    request: &AdmissionRequest,
    validator: impl FnOnce(&AdmissionRequest, engine::Context<'_>) -> Decision,
) -> Decision {
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let classes = StaticRuntimeClasses::default();
    validator(
        request,
        engine::Context {
            policy: &policy,
            runtime_classes: &classes,
            now: jiff::Timestamp::UNIX_EPOCH,
        },
    )
}

fn bare_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "x", "namespace": "mcp"},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]},
    })
}

fn stdio_server() -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPServer",
        "metadata": {"name": "x", "namespace": "mcp", "uid": "s1"},
        "spec": {"image": "ghcr.io/x/y:1", "transport": "stdio"},
    })
}

fn open_network_policy() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "mcp"},
        "spec": {"podSelector": {}, "egress": [{}]},
    })
}

/// An MCPPolicy object claiming `namespaces`, at `level` (`"none"` does not load).
fn mcp_policy(name: &str, namespaces: &[&str], level: &str) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1,
                     "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"namespaces": namespaces, "podSecurity": {"level": level, "version": "latest"}},
    })
}

fn policy_write(object: Value) -> AdmissionRequest {
    let mut request = request("mcpguard.dev", "mcppolicies", object);
    request.namespace = None;
    request
}

fn status_message(decision: &Decision) -> Option<&str> {
    decision.status.as_ref().map(|s| s.message.as_str())
}

// ---- routing by resource -------------------------------------------------------------------

#[test]
fn each_resource_is_named_by_its_group_and_resource_whatever_the_version() {
    let mut pods_v2 = request("", "pods", bare_pod());
    pods_v2.resource.version = "v2".into();
    assert_eq!(Resource::of(&pods_v2), Resource::Pod);
    for (group, resource, expected) in [
        ("", "pods", Resource::Pod),
        ("mcpguard.dev", "mcpservers", Resource::McpServer),
        ("mcpguard.dev", "mcppolicies", Resource::McpPolicy),
        (
            "networking.k8s.io",
            "networkpolicies",
            Resource::NetworkPolicy,
        ),
        ("", "configmaps", Resource::Other),
        ("metrics.k8s.io", "pods", Resource::Other),
        ("", "mcpservers", Resource::Other),
        ("mcpguard.dev", "networkpolicies", Resource::Other),
        ("apps", "controllerrevisions", Resource::Other),
    ] {
        assert_eq!(
            Resource::of(&request(group, resource, json!({}))),
            expected,
            "{resource}.{group}"
        );
    }
    for workload in WORKLOADS {
        assert_eq!(
            Resource::of(&request(workload.group, workload.resource, json!({}))),
            Resource::Workload(workload),
            "{}",
            workload.kind
        );
    }
}

#[test]
fn a_pod_reaches_the_pod_validator() {
    let request = request("", "pods", bare_pod());
    let decision = reaches(&request, engine::validate_pod);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert!(
        status_message(&decision).is_some_and(|m| m
            .starts_with("pods \"x\" is forbidden: violates mcpguard policy \"mcp-restricted\": ")),
        "{decision:?}"
    );
}

#[test]
fn every_workload_controller_reaches_the_workload_validator() {
    for workload in WORKLOADS {
        // The template nested at the kind's pointer (`/spec/jobTemplate/spec/template`...).
        let template = json!({"metadata": {}, "spec": bare_pod()["spec"].clone()});
        let mut object = workload
            .template
            .rsplit('/')
            .filter(|key| !key.is_empty())
            .fold(template, |inner, key| json!({ key: inner }));
        object["metadata"] = json!({"name": "x", "namespace": "mcp"});
        let request = request(workload.group, workload.resource, object);
        let decision = reaches(&request, |request, context| {
            engine::validate_workload(request, workload, context)
        });
        // The template is mutated in memory before it is judged, so a bare one passes; what
        // tells the workload validator's answer from the others is its mutation warnings.
        assert_eq!(decision.outcome, Outcome::Allowed, "{}", workload.kind);
        assert!(
            decision.warnings.iter().all(|w| w.starts_with(&format!(
                "mcpguard: pods of {} \"x\" will get: ",
                workload.kind
            ))) && !decision.warnings.is_empty(),
            "{}: {:?}",
            workload.kind,
            decision.warnings
        );
    }
}

#[test]
fn an_mcpserver_reaches_the_server_validator() {
    let request = request("mcpguard.dev", "mcpservers", stdio_server());
    let decision = reaches(&request, |request, context| {
        objects::validate_server(request, context, SecretAccess::Answered(NO_SECRETS_ASKED))
    });
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(decision.violations[0].check, objects::MCPSERVER_SPEC);
}

#[test]
fn a_network_policy_reaches_the_network_policy_validator() {
    let request = request(
        "networking.k8s.io",
        "networkpolicies",
        open_network_policy(),
    );
    let decision = reaches(&request, objects::validate_network_policy);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(decision.violations[0].check, objects::NETWORK_POLICY_PEERS);
}

#[test]
fn an_mcppolicy_reaches_the_loader_and_no_policy_answers_for_it() {
    let broken = policy_write(mcp_policy("team", &["team-a"], "none"));
    let (decision, judge) = answered(&default_set(), &broken, validate);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(decision.violations[0].check, objects::MCPPOLICY_SPEC);
    assert_eq!(judge, None);
    assert_eq!(Judge::PolicyLoader.name(), "MCPPolicy");

    let sound = policy_write(mcp_policy("team", &["team-a"], "baseline"));
    let (decision, judge) = answered(&default_set(), &sound, validate);
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(judge, None);
}

#[test]
fn a_kind_sent_as_another_resource_is_not_judged_as_that_kind() {
    // The routing follows the request's resource, not what the object says it is.
    for (group, resource, object) in [
        ("", "configmaps", bare_pod()),
        ("metrics.k8s.io", "pods", bare_pod()),
        ("", "mcpservers", stdio_server()),
        ("extensions", "networkpolicies", open_network_policy()),
    ] {
        let request = request(group, resource, object);
        assert_eq!(
            validated(&request),
            Decision::skipped(),
            "{resource}.{group}"
        );
        assert_eq!(mutated(&request), Decision::skipped(), "{resource}.{group}");
    }
}

#[test]
fn an_unknown_resource_is_skipped_and_answered_for_by_the_namespaces_policy() {
    let request = request(
        "",
        "configmaps",
        json!({"metadata": {"name": "x"}, "data": {}}),
    );
    let answer = answered(&default_set(), &request, validate);
    assert_eq!(
        answer,
        (Decision::skipped(), Some("mcp-restricted".to_owned()))
    );
    let answer = answered(&default_set(), &request, mutate);
    assert_eq!(
        answer,
        (Decision::skipped(), Some("mcp-restricted".to_owned()))
    );
}

// ---- mutation ------------------------------------------------------------------------------

#[test]
fn only_pods_are_mutated() {
    let pod = request("", "pods", bare_pod());
    let decision = mutated(&pod);
    assert_eq!(decision, by_validator(&pod, engine::mutate_pod));
    assert_eq!(decision.outcome, Outcome::Mutated);

    let deployment = json!({"metadata": {"name": "x", "namespace": "mcp"},
                            "spec": {"template": {"spec": bare_pod()["spec"].clone()}}});
    for request in [
        request("apps", "deployments", deployment),
        request("mcpguard.dev", "mcpservers", stdio_server()),
        request(
            "networking.k8s.io",
            "networkpolicies",
            open_network_policy(),
        ),
        policy_write(mcp_policy("team", &["team-a"], "none")),
    ] {
        assert_eq!(
            mutated(&request),
            Decision::skipped(),
            "{}",
            request.resource.resource
        );
    }
}

// ---- the policy in force -------------------------------------------------------------------

#[test]
fn the_policy_in_force_in_the_namespace_judges_the_request() {
    let mut cluster = ClusterPolicies::default();
    cluster.apply(&mcp_policy("team", &["team-a"], "baseline"));
    let fallback = Arc::new(Policy::embedded_default().expect("embedded policy loads"));
    let policies = policy_set::assemble(fallback, &cluster);

    // Baseline admits the bare pod that the restricted fallback denies in `mcp`.
    let in_team = request_in("team-a", "", "pods", bare_pod());
    let (decision, judge) = answered(&policies, &in_team, validate);
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(judge.as_deref(), Some("team"));

    let in_mcp = request_in("mcp", "", "pods", bare_pod());
    let (decision, judge) = answered(&policies, &in_mcp, validate);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(judge.as_deref(), Some("mcp-restricted"));
}

// ---- MCPPolicy writes ----------------------------------------------------------------------

#[test]
fn an_admitted_mcppolicy_is_warned_about_the_namespaces_it_takes_over() {
    let claims_mcp = policy_write(mcp_policy("team", &["mcp", "team-a"], "baseline"));
    let decision = with_context(&default_set(), |context| {
        validate(&claims_mcp, context).decision
    });
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(
        decision.warnings,
        vec![
            "namespace \"mcp\" is covered by the policy file's \"mcp-restricted\": this MCPPolicy takes it over"
                .to_owned()
        ]
    );

    // Claiming nothing that the policies in force cover: no warning.
    let claims_new = policy_write(mcp_policy("team", &["team-a"], "baseline"));
    let decision = with_context(&default_set(), |context| {
        validate(&claims_new, context).decision
    });
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(decision.warnings, Vec::<String>::new());
}

#[test]
fn a_refused_mcppolicy_carries_no_coverage_warnings() {
    let broken = policy_write(mcp_policy("team", &["mcp"], "none"));
    let decision = with_context(&default_set(), |context| {
        validate(&broken, context).decision
    });
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(decision.warnings, Vec::<String>::new());
}

#[test]
fn only_writes_of_an_mcppolicy_itself_are_judged() {
    let broken = mcp_policy("team", &["mcp"], "none");
    let mut status = policy_write(broken.clone());
    status.operation = "UPDATE".into();
    status.sub_resource = Some("status".into());
    status.old_object = Some(mcp_policy("team", &["team-a"], "baseline").into());
    assert_eq!(validated(&status), Decision::skipped());

    let mut delete = policy_write(broken.clone());
    delete.operation = "DELETE".into();
    delete.old_object = delete.object.take();
    assert_eq!(validated(&delete), Decision::skipped());

    let mut update = policy_write(broken);
    update.operation = "UPDATE".into();
    update.old_object = Some(mcp_policy("team", &["team-a"], "baseline").into());
    assert_eq!(validated(&update).outcome, Outcome::Denied);
}
