//! `validate` on workloads (the pod templates of every controller kind), the enforcement
//! modes and exceptions, and the policy refusals for `mode`, `namespaceModes` and
//! `exceptions`. Every assertion is on the exact decision: outcome, status message,
//! warnings and audit annotations.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::policy::{Policy, PolicyError, parse_str};
use crate::review::{AdmissionRequest, ResponseStatus};
use crate::runtime_class::{RuntimeClassInfo, StaticRuntimeClasses};
use crate::violation::Violation;

// ---- fixtures ------------------------------------------------------------------------------

/// A fixed clock (2026-11-19): decisions never read the real one.
const NOW: i64 = 1_795_000_000;
/// 2027-03-01T12:00:00Z, 2027-03-01T23:59:59Z and 2027-03-02T00:00:00Z.
const MARCH_1_NOON: i64 = 1_803_902_400;
const MARCH_1_LAST_SECOND: i64 = 1_803_945_599;
const MARCH_2_MIDNIGHT: i64 = 1_803_945_600;

fn at(timestamp: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(timestamp).expect("valid timestamp")
}

fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy loads")
}

/// A policy named `p` enforcing `mcp` and `mcp-legacy` at restricted/latest, with the
/// default policy's mutation, plus `extra` (indented spec fields).
fn policy_with(extra: &str) -> Policy {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: p}}
spec:
  namespaces: [mcp, mcp-legacy]
  podSecurity: {{level: restricted, version: latest}}
  mutate:
    podSecurityContext:
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      fsGroup: 1000
      seccompProfile: {{type: RuntimeDefault}}
    containerSecurityContext:
      allowPrivilegeEscalation: false
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      capabilities: {{drop: [ALL]}}
      seccompProfile: {{type: RuntimeDefault}}
    resources:
      requests: {{memory: 400Mi}}
    imagePullPolicy: always
    automountServiceAccountToken: remove
{extra}"
    );
    parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

fn validate_at(policy: &Policy, request: &AdmissionRequest, now: i64) -> Decision {
    let classes = StaticRuntimeClasses::default();
    validate(
        request,
        Context {
            policy,
            runtime_classes: &classes,
            now: at(now),
        },
    )
}

fn validate_with(policy: &Policy, request: &AdmissionRequest) -> Decision {
    validate_at(policy, request, NOW)
}

fn mutate_with(policy: &Policy, request: &AdmissionRequest) -> Decision {
    let classes = StaticRuntimeClasses::default();
    mutate(
        request,
        Context {
            policy,
            runtime_classes: &classes,
            now: at(NOW),
        },
    )
}

/// An AdmissionRequest as kube-apiserver sends it: `web` in `mcp`, by `alice` of `dev`.
struct Req(Value);

impl Req {
    fn new(operation: &str, group: &str, resource: &str, kind: &str) -> Req {
        Req(json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "name": "web",
            "namespace": "mcp",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"]}
        }))
    }
    fn pod(object: Value) -> Req {
        Req::new("CREATE", "", "pods", "Pod").object(object)
    }
    fn workload(kind: &Kind, operation: &str, object: Value) -> Req {
        Req::new(operation, kind.group, kind.resource, kind.kind).object(object)
    }
    fn object(mut self, object: Value) -> Req {
        self.0["object"] = object;
        self
    }
    fn old(mut self, old: Value) -> Req {
        self.0["oldObject"] = old;
        self
    }
    fn name(mut self, name: &str) -> Req {
        self.0["name"] = json!(name);
        self
    }
    fn namespace(mut self, namespace: &str) -> Req {
        self.0["namespace"] = json!(namespace);
        self
    }
    fn sub_resource(mut self, sub: &str) -> Req {
        self.0["subResource"] = json!(sub);
        self
    }
    fn user(mut self, username: &str, groups: &[&str]) -> Req {
        self.0["userInfo"] = json!({"username": username, "groups": groups});
        self
    }
    fn build(self) -> AdmissionRequest {
        serde_json::from_value(self.0).expect("valid AdmissionRequest")
    }
}

/// One controller kind as the tests see it.
struct Kind {
    group: &'static str,
    resource: &'static str,
    kind: &'static str,
    api_version: &'static str,
    qualified: &'static str,
    template_pointer: &'static str,
}

const DEPLOYMENT: Kind = Kind {
    group: "apps",
    resource: "deployments",
    kind: "Deployment",
    api_version: "apps/v1",
    qualified: "deployments.apps",
    template_pointer: "/spec/template",
};
const STATEFULSET: Kind = Kind {
    group: "apps",
    resource: "statefulsets",
    kind: "StatefulSet",
    api_version: "apps/v1",
    qualified: "statefulsets.apps",
    template_pointer: "/spec/template",
};
const DAEMONSET: Kind = Kind {
    group: "apps",
    resource: "daemonsets",
    kind: "DaemonSet",
    api_version: "apps/v1",
    qualified: "daemonsets.apps",
    template_pointer: "/spec/template",
};
const REPLICASET: Kind = Kind {
    group: "apps",
    resource: "replicasets",
    kind: "ReplicaSet",
    api_version: "apps/v1",
    qualified: "replicasets.apps",
    template_pointer: "/spec/template",
};
const REPLICATIONCONTROLLER: Kind = Kind {
    group: "",
    resource: "replicationcontrollers",
    kind: "ReplicationController",
    api_version: "v1",
    qualified: "replicationcontrollers",
    template_pointer: "/spec/template",
};
const JOB: Kind = Kind {
    group: "batch",
    resource: "jobs",
    kind: "Job",
    api_version: "batch/v1",
    qualified: "jobs.batch",
    template_pointer: "/spec/template",
};
const CRONJOB: Kind = Kind {
    group: "batch",
    resource: "cronjobs",
    kind: "CronJob",
    api_version: "batch/v1",
    qualified: "cronjobs.batch",
    template_pointer: "/spec/jobTemplate/spec/template",
};
const PODTEMPLATE: Kind = Kind {
    group: "",
    resource: "podtemplates",
    kind: "PodTemplate",
    api_version: "v1",
    qualified: "podtemplates",
    template_pointer: "/template",
};

const ALL_KINDS: [&Kind; 8] = [
    &DEPLOYMENT,
    &STATEFULSET,
    &DAEMONSET,
    &REPLICASET,
    &REPLICATIONCONTROLLER,
    &JOB,
    &CRONJOB,
    &PODTEMPLATE,
];

/// The workload `web` of `kind` in `mcp`, with `template` where that kind keeps it.
fn workload(kind: &Kind, template: Value) -> Value {
    let selector = json!({"matchLabels": {"app": "web"}});
    let body = match kind.kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            json!({"spec": {"replicas": 1, "selector": selector, "template": template}})
        }
        "DaemonSet" => json!({"spec": {"selector": selector, "template": template}}),
        "ReplicationController" => {
            json!({"spec": {"replicas": 1, "selector": {"app": "web"}, "template": template}})
        }
        "Job" => json!({"spec": {"backoffLimit": 2, "template": template}}),
        "CronJob" => json!({"spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}}
        }}),
        "PodTemplate" => json!({"template": template}),
        other => panic!("no such kind {other}"),
    };
    let mut object = json!({
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "web", "namespace": "mcp", "labels": {"app": "web"}},
    });
    for (key, value) in body.as_object().expect("an object") {
        object[key] = value.clone();
    }
    object
}

/// A template that only needs the policy's mutation to pass.
fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]}
    })
}

fn privileged_template() -> Value {
    let mut template = template();
    template["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    template
}

fn host_network_template() -> Value {
    let mut template = template();
    template["spec"]["hostNetwork"] = json!(true);
    template
}

/// A pod that passes restricted/latest and every rule of `policy_with("")`.
fn hardened_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "mcp"},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                                "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [hardened_container("app", "ghcr.io/x/app:1")]
        }
    })
}

fn hardened_container(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "Always",
        "resources": {"requests": {"memory": "400Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
    })
}

/// A headless-browser container that adds `SYS_ADMIN` and sets no
/// `allowPrivilegeEscalation` (as written, before any mutation).
fn browser_container() -> Value {
    json!({
        "name": "browser", "image": "mcr.microsoft.com/playwright:v1.49.0-noble",
        "imagePullPolicy": "Always",
        "resources": {"requests": {"memory": "400Mi"}},
        "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}
    })
}

/// `hardened_pod` whose only container is the browser.
fn browser_pod(name: &str) -> Value {
    let mut pod = hardened_pod(name);
    pod["spec"]["containers"] = json!([browser_container()]);
    pod
}

/// The browser next to an app container that adds `NET_ADMIN` (with its
/// `allowPrivilegeEscalation: false`).
fn browser_and_app_pod() -> Value {
    let mut app = hardened_container("app", "ghcr.io/x/app:1");
    app["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"]);
    let mut pod = hardened_pod("web");
    pod["spec"]["containers"] = json!([browser_container(), app]);
    pod
}

fn violation(check: &str, reason: &str, detail: &str) -> Violation {
    Violation {
        check: check.into(),
        reason: reason.into(),
        detail: detail.into(),
        fields: Vec::new(),
    }
}

/// `violations` of a Deployment's pod, as named in the Deployment.
fn in_template(mut violations: Vec<Violation>) -> Vec<Violation> {
    for violation in &mut violations {
        violation.prefix_fields("spec.template");
    }
    violations
}

/// `violation` naming `fields` of the pod.
fn at_fields(mut violation: Violation, fields: &[&str]) -> Violation {
    violation.fields = strings(fields);
    violation
}

fn privileged_violations() -> Vec<Violation> {
    vec![
        at_fields(
            violation(
                "privileged",
                "privileged",
                "container \"app\" must not set securityContext.privileged=true",
            ),
            &["spec.containers[0].securityContext.privileged"],
        ),
        at_fields(
            violation(
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false",
                "container \"app\" must set securityContext.allowPrivilegeEscalation=false",
            ),
            &["spec.containers[0].securityContext.allowPrivilegeEscalation"],
        ),
    ]
}

const PRIVILEGED_SUMMARY: &str = "privileged (container \"app\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)";

fn host_network_violation() -> Violation {
    at_fields(
        violation("hostNamespaces", "host namespaces", "hostNetwork=true"),
        &["spec.hostNetwork"],
    )
}

fn browser_violations() -> Vec<Violation> {
    vec![
        at_fields(
            violation(
                "allowPrivilegeEscalation",
                "allowPrivilegeEscalation != false",
                "container \"browser\" must set securityContext.allowPrivilegeEscalation=false",
            ),
            &["spec.containers[0].securityContext.allowPrivilegeEscalation"],
        ),
        at_fields(
            violation(
                "capabilities_restricted",
                "unrestricted capabilities",
                "container \"browser\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add",
            ),
            &["spec.containers[0].securityContext.capabilities.add"],
        ),
    ]
}

const BROWSER_SUMMARY: &str = "allowPrivilegeEscalation != false (container \"browser\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"browser\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)";

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn skipped() -> Decision {
    Decision::new(Outcome::Skipped)
}

/// The mutation warnings for `template()`'s container "app", as a workload of `kind`
/// reports them.
fn will_get(kind: &Kind, privileged: bool) -> Vec<String> {
    let prefix = format!("mcpguard: pods of {} \"web\" will get: ", kind.kind);
    let container = if privileged {
        "container \"app\": set drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
    } else {
        "container \"app\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
    };
    vec![
        format!(
            "{prefix}pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false"
        ),
        format!("{prefix}{container}"),
    ]
}

fn denied_workload(
    kind: &Kind,
    policy: &str,
    summary: &str,
    warnings: Vec<String>,
    mut violations: Vec<Violation>,
) -> Decision {
    // The pod's fields, where the kind keeps its template.
    let template = kind
        .template_pointer
        .trim_start_matches('/')
        .replace('/', ".");
    for violation in &mut violations {
        violation.prefix_fields(&template);
    }
    let ids: Vec<&str> = violations.iter().map(|v| v.check.as_str()).collect();
    Decision {
        outcome: Outcome::Denied,
        patch: None,
        warnings,
        status: Some(ResponseStatus::forbidden(format!(
            "{} \"web\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"{policy}\": {summary}",
            kind.qualified
        ))),
        audit_annotations: annotations(&[("policy", policy), ("violations", &ids.join(","))]),
        violations,
    }
}

// ---- every workload kind ---------------------------------------------------------------------

fn assert_compliant_template_is_allowed_with_will_get_warnings(kind: &Kind) {
    let request = Req::workload(kind, "CREATE", workload(kind, template())).build();
    let decision = validate_with(&default_policy(), &request);
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Allowed,
            patch: None,
            warnings: will_get(kind, false),
            violations: Vec::new(),
            status: None,
            audit_annotations: annotations(&[("policy", "mcp-restricted")]),
        },
        "{}",
        kind.kind
    );
    assert!(decision.allowed());
}

fn assert_privileged_template_is_denied(kind: &Kind) {
    let request = Req::workload(kind, "CREATE", workload(kind, privileged_template())).build();
    let decision = validate_with(&default_policy(), &request);
    assert_eq!(
        decision,
        denied_workload(
            kind,
            "mcp-restricted",
            PRIVILEGED_SUMMARY,
            will_get(kind, true),
            privileged_violations()
        ),
        "{}",
        kind.kind
    );
    assert!(!decision.allowed());
    let status = decision.status.as_ref().expect("a status");
    assert_eq!(status.code, 403);
    assert!(
        status.message.starts_with(&format!(
            "{} \"web\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"mcp-restricted\": ",
            kind.qualified
        )),
        "{}",
        status.message
    );
}

fn assert_host_network_template_is_denied(kind: &Kind) {
    let request = Req::workload(kind, "CREATE", workload(kind, host_network_template())).build();
    assert_eq!(
        validate_with(&default_policy(), &request),
        denied_workload(
            kind,
            "mcp-restricted",
            "host namespaces (hostNetwork=true)",
            will_get(kind, false),
            vec![host_network_violation()]
        ),
        "{}",
        kind.kind
    );
}

fn assert_never_mutated(kind: &Kind) {
    let policy = default_policy();
    for template in [template(), privileged_template()] {
        let object = workload(kind, template);
        for operation in ["CREATE", "UPDATE"] {
            let request = Req::workload(kind, operation, object.clone())
                .old(object.clone())
                .build();
            assert_eq!(
                mutate_with(&policy, &request),
                skipped(),
                "{} {operation}",
                kind.kind
            );
        }
    }
}

fn assert_missing_template_is_invalid(kind: &Kind) {
    let expected = Decision {
        status: Some(ResponseStatus::bad_request(format!(
            "{} has no pod template at {}",
            kind.kind, kind.template_pointer
        ))),
        ..Decision::new(Outcome::Invalid)
    };
    let mut without = workload(kind, template());
    let (parent, field) = kind
        .template_pointer
        .rsplit_once('/')
        .expect("a pointer with a parent");
    let parent = if parent.is_empty() {
        without.as_object_mut()
    } else {
        without.pointer_mut(parent).and_then(Value::as_object_mut)
    }
    .expect("the template's parent");
    parent.remove(field);
    let decision = validate_with(
        &default_policy(),
        &Req::workload(kind, "CREATE", without).build(),
    );
    assert_eq!(decision, expected, "{} without a template", kind.kind);
    assert_eq!(decision.status.as_ref().map(|s| s.code), Some(400));
    assert!(!decision.allowed());

    let null_template = workload(kind, Value::Null);
    assert_eq!(
        validate_with(
            &default_policy(),
            &Req::workload(kind, "CREATE", null_template).build()
        ),
        expected,
        "{} with a null template",
        kind.kind
    );
}

/// A change outside the template: the workload's labels, and a count where the kind has one.
fn change_outside_template(kind: &Kind, object: &mut Value) {
    object["metadata"]["labels"]["rev"] = json!("2");
    match kind.kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => {
            object["spec"]["replicas"] = json!(5);
        }
        "Job" => object["spec"]["parallelism"] = json!(3),
        "CronJob" => object["spec"]["schedule"] = json!("0 * * * *"),
        _ => {}
    }
}

fn assert_update_outside_template_is_skipped(kind: &Kind) {
    let old = workload(kind, privileged_template());
    let mut new = old.clone();
    change_outside_template(kind, &mut new);
    assert_ne!(old, new);
    let request = Req::workload(kind, "UPDATE", new).old(old).build();
    assert_eq!(
        validate_with(&default_policy(), &request),
        skipped(),
        "{}",
        kind.kind
    );
}

fn assert_update_of_template_is_judged(kind: &Kind) {
    let old = workload(kind, template());
    let new = workload(kind, privileged_template());
    let request = Req::workload(kind, "UPDATE", new.clone())
        .old(old.clone())
        .build();
    assert_eq!(
        validate_with(&default_policy(), &request),
        denied_workload(
            kind,
            "mcp-restricted",
            PRIVILEGED_SUMMARY,
            will_get(kind, true),
            privileged_violations()
        ),
        "{}",
        kind.kind
    );
    // And back: fixing the template is judged, and allowed.
    let request = Req::workload(kind, "UPDATE", old).old(new).build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Allowed,
        "{}",
        kind.kind
    );
}

macro_rules! every_kind {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn compliant_template_is_allowed_with_will_get_warnings() {
                assert_compliant_template_is_allowed_with_will_get_warnings(&$kind);
            }

            #[test]
            fn privileged_template_is_denied_with_the_exact_message() {
                assert_privileged_template_is_denied(&$kind);
            }

            #[test]
            fn host_network_template_is_denied_with_the_exact_message() {
                assert_host_network_template_is_denied(&$kind);
            }

            #[test]
            fn mutate_never_patches_the_workload() {
                assert_never_mutated(&$kind);
            }

            #[test]
            fn a_missing_template_is_invalid() {
                assert_missing_template_is_invalid(&$kind);
            }

            #[test]
            fn an_update_outside_the_template_is_skipped_even_when_noncompliant() {
                assert_update_outside_template_is_skipped(&$kind);
            }

            #[test]
            fn an_update_of_the_template_is_judged() {
                assert_update_of_template_is_judged(&$kind);
            }
        }
    )*};
}

every_kind! {
    deployment => DEPLOYMENT,
    statefulset => STATEFULSET,
    daemonset => DAEMONSET,
    replicaset => REPLICASET,
    replicationcontroller => REPLICATIONCONTROLLER,
    job => JOB,
    cronjob => CRONJOB,
    podtemplate => PODTEMPLATE,
}

#[test]
fn the_kind_table_matches_the_products() {
    for kind in ALL_KINDS {
        let found = crate::workloads::by_resource(kind.group, kind.resource)
            .unwrap_or_else(|| panic!("{} is a workload", kind.kind));
        assert_eq!(found.kind, kind.kind);
        assert_eq!(found.template, kind.template_pointer);
        assert_eq!(found.qualified_resource(), kind.qualified);
    }
}

#[test]
fn the_cronjob_template_is_read_from_the_job_template_not_spec_template() {
    // A template at the CronJob's `/spec/template` (where it does not live) is not judged.
    let mut object = workload(&CRONJOB, template());
    object["spec"]["template"] = privileged_template();
    let request = Req::workload(&CRONJOB, "CREATE", object).build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Allowed
    );
    let mut object = workload(&CRONJOB, privileged_template());
    object["spec"]["template"] = template();
    let request = Req::workload(&CRONJOB, "CREATE", object).build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Denied
    );
}

#[test]
fn an_update_outside_the_template_is_skipped_under_a_stricter_policy() {
    // Admitted under baseline; the policy is now restricted with a RuntimeClass required.
    let stricter = policy_with(
        "    runtimeClassName: gvisor\n  validate:\n    requireRuntimeClass: true\n    allowedRegistries: [registry.example.com]\n",
    );
    let old = workload(&DEPLOYMENT, template());
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(3);
    let request = Req::workload(&DEPLOYMENT, "UPDATE", new.clone())
        .old(old.clone())
        .build();
    assert_eq!(validate_with(&stricter, &request), skipped());
    // The same update creating it anew is judged against the stricter policy.
    let create = Req::workload(&DEPLOYMENT, "CREATE", new).build();
    let decision = validate_with(&stricter, &create);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision
            .audit_annotations
            .get("violations")
            .map(String::as_str),
        Some("allowedRegistries")
    );
}

#[test]
fn an_update_without_old_object_is_judged() {
    let request = Req::workload(
        &DEPLOYMENT,
        "UPDATE",
        workload(&DEPLOYMENT, privileged_template()),
    )
    .build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Denied
    );
}

#[test]
fn a_template_metadata_change_is_judged() {
    // Only the template's labels change (a `kubectl rollout restart` annotation does the
    // same): the template differs, so it is judged.
    let old = workload(&DEPLOYMENT, privileged_template());
    let mut new = old.clone();
    new["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "2026-11-19T00:00:00Z"});
    let request = Req::workload(&DEPLOYMENT, "UPDATE", new).old(old).build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Denied
    );
}

// ---- out of scope ----------------------------------------------------------------------------

#[test]
fn a_workload_in_a_namespace_not_enforced_is_skipped() {
    let object = workload(&DEPLOYMENT, privileged_template());
    for namespace in ["default", "kube-system", "mcp-other"] {
        let request = Req::workload(&DEPLOYMENT, "CREATE", object.clone())
            .namespace(namespace)
            .build();
        assert_eq!(
            validate_with(&default_policy(), &request),
            skipped(),
            "{namespace}"
        );
    }
    let mut request = Req::workload(&DEPLOYMENT, "CREATE", object.clone());
    request
        .0
        .as_object_mut()
        .expect("object")
        .remove("namespace");
    assert_eq!(
        validate_with(&default_policy(), &request.build()),
        skipped()
    );
    // ...and in an enforced one it is judged.
    let request = Req::workload(&DEPLOYMENT, "CREATE", object).build();
    assert_eq!(
        validate_with(&default_policy(), &request).outcome,
        Outcome::Denied
    );
}

#[test]
fn the_scale_and_status_subresources_are_skipped() {
    let object = workload(&DEPLOYMENT, privileged_template());
    for sub in ["scale", "status"] {
        let request = Req::workload(&DEPLOYMENT, "UPDATE", object.clone())
            .old(object.clone())
            .sub_resource(sub)
            .build();
        assert_eq!(
            validate_with(&default_policy(), &request),
            skipped(),
            "{sub}"
        );
        assert_eq!(mutate_with(&default_policy(), &request), skipped(), "{sub}");
    }
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                       "metadata": {"name": "web", "namespace": "mcp"}, "spec": {"replicas": 3}});
    let request = Req::workload(&DEPLOYMENT, "UPDATE", scale.clone())
        .old(scale)
        .sub_resource("scale")
        .build();
    assert_eq!(validate_with(&default_policy(), &request), skipped());
}

#[test]
fn delete_and_connect_of_a_workload_are_skipped() {
    let object = workload(&DEPLOYMENT, privileged_template());
    for operation in ["DELETE", "CONNECT"] {
        let request = Req::workload(&DEPLOYMENT, operation, Value::Null)
            .old(object.clone())
            .build();
        assert_eq!(
            validate_with(&default_policy(), &request),
            skipped(),
            "{operation}"
        );
    }
}

#[test]
fn lookalike_resources_are_skipped() {
    let object = workload(&DEPLOYMENT, privileged_template());
    for (group, resource) in [
        ("extensions", "deployments"),
        ("apps", "controllerrevisions"),
        ("example.com", "deployments"),
        ("", "deployments"),
    ] {
        let request = Req::new("CREATE", group, resource, "Deployment")
            .object(object.clone())
            .build();
        assert_eq!(
            validate_with(&default_policy(), &request),
            skipped(),
            "{group}/{resource}"
        );
    }
}

#[test]
fn a_template_without_spec_is_invalid() {
    let request = Req::workload(
        &DEPLOYMENT,
        "CREATE",
        workload(&DEPLOYMENT, json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .build();
    assert_eq!(
        validate_with(&default_policy(), &request),
        Decision {
            status: Some(ResponseStatus::bad_request("object has no spec".into())),
            ..Decision::new(Outcome::Invalid)
        }
    );
}

#[test]
fn a_missing_object_on_a_workload_create_is_invalid() {
    let request = Req::new("CREATE", "apps", "deployments", "Deployment").build();
    assert_eq!(
        validate_with(&default_policy(), &request),
        Decision {
            status: Some(ResponseStatus::bad_request(
                "request.object is missing".into()
            )),
            ..Decision::new(Outcome::Invalid)
        }
    );
}

#[test]
fn a_generate_name_only_workload_is_named_by_its_generate_name() {
    let mut object = workload(&JOB, privileged_template());
    object["metadata"] = json!({"generateName": "migrate-", "namespace": "mcp"});
    let request = Req::workload(&JOB, "CREATE", object).name("").build();
    let decision = validate_with(&default_policy(), &request);
    assert_eq!(
        decision.status.map(|s| s.message),
        Some(format!(
            "jobs.batch \"migrate-\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"mcp-restricted\": {PRIVILEGED_SUMMARY}"
        ))
    );
    assert_eq!(
        decision.warnings[0],
        "mcpguard: pods of Job \"migrate-\" will get: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false"
    );
}

#[test]
fn a_runtime_class_conflict_in_a_template_is_denied_and_recorded() {
    let policy = policy_with("    runtimeClassName: gvisor\n");
    let classes = StaticRuntimeClasses(HashMap::from([(
        "gvisor".to_owned(),
        RuntimeClassInfo {
            overhead_pod_fixed: None,
            node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
            tolerations: Vec::new(),
        },
    )]));
    let mut conflicting = template();
    conflicting["spec"]["nodeSelector"] = json!({"sandbox": "other"});
    let request = Req::workload(&DEPLOYMENT, "CREATE", workload(&DEPLOYMENT, conflicting)).build();
    let decision = validate(
        &request,
        Context {
            policy: &policy,
            runtime_classes: &classes,
            now: at(NOW),
        },
    );
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
                "deployments.apps \"web\" is forbidden: the pods it would create would be rejected: mcpguard policy \"p\": RuntimeClass \"gvisor\" requires nodeSelector sandbox=\"gvisor\" but the pod sets sandbox=\"other\"".into()
            )),
            // As for a pod's conflict (engine::tests): the policy and the check are recorded.
            audit_annotations: annotations(&[("policy", "p"), ("violations", "runtimeClassScheduling")]),
        }
    );
}

// ---- modes -----------------------------------------------------------------------------------

/// A hardened pod that shares the host network and adds NET_ADMIN: two violations that no
/// mutation fixes.
fn two_violation_pod() -> Value {
    let mut pod = hardened_pod("web");
    pod["spec"]["hostNetwork"] = json!(true);
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"]);
    pod
}

fn two_violations() -> Vec<Violation> {
    vec![
        host_network_violation(),
        at_fields(
            violation(
                "capabilities_restricted",
                "unrestricted capabilities",
                "container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add",
            ),
            &["spec.containers[0].securityContext.capabilities.add"],
        ),
    ]
}

const TWO_SUMMARY: &str = "host namespaces (hostNetwork=true), unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)";
const TWO_IDS: &str = "hostNamespaces,capabilities_restricted";

fn pod_denied(policy: &str, summary: &str, violations: Vec<Violation>) -> Decision {
    let ids: Vec<&str> = violations.iter().map(|v| v.check.as_str()).collect();
    Decision {
        outcome: Outcome::Denied,
        patch: None,
        warnings: Vec::new(),
        status: Some(ResponseStatus::forbidden(format!(
            "pods \"web\" is forbidden: violates mcpguard policy \"{policy}\": {summary}"
        ))),
        audit_annotations: annotations(&[("policy", policy), ("violations", &ids.join(","))]),
        violations,
    }
}

#[test]
fn enforce_mode_denies_the_pod() {
    for extra in ["", "  mode: enforce\n"] {
        let policy = policy_with(extra);
        let decision = validate_with(&policy, &Req::pod(two_violation_pod()).build());
        assert_eq!(decision, pod_denied("p", TWO_SUMMARY, two_violations()));
        assert!(!decision.allowed());
    }
}

#[test]
fn warn_mode_admits_the_pod_with_one_warning_per_violation() {
    let policy = policy_with("  mode: warn\n");
    let decision = validate_with(&policy, &Req::pod(two_violation_pod()).build());
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Warned,
            patch: None,
            warnings: strings(&[
                "mcpguard: would violate policy \"p\": host namespaces (hostNetwork=true)",
                "mcpguard: would violate policy \"p\": unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            ]),
            violations: two_violations(),
            status: None,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("violations", TWO_IDS),
                ("mode", "warn")
            ]),
        }
    );
    assert!(decision.allowed());
    let response = decision.to_response("u");
    assert!(response.allowed);
    assert_eq!(response.status, None);
}

#[test]
fn audit_mode_admits_the_pod_and_only_records_it() {
    let policy = policy_with("  mode: audit\n");
    let decision = validate_with(&policy, &Req::pod(two_violation_pod()).build());
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Audited,
            patch: None,
            warnings: Vec::new(),
            violations: two_violations(),
            status: None,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("violations", TWO_IDS),
                ("mode", "audit")
            ]),
        }
    );
    assert!(decision.allowed());
}

#[test]
fn a_compliant_pod_is_allowed_without_a_mode_annotation_in_every_mode() {
    for mode in ["enforce", "warn", "audit"] {
        let policy = policy_with(&format!("  mode: {mode}\n"));
        assert_eq!(
            validate_with(&policy, &Req::pod(hardened_pod("web")).build()),
            Decision {
                audit_annotations: annotations(&[("policy", "p")]),
                ..Decision::new(Outcome::Allowed)
            },
            "{mode}"
        );
    }
}

#[test]
fn warn_mode_admits_a_workload_with_would_violate_warnings() {
    let policy = policy_with("  mode: warn\n");
    let request = Req::workload(
        &DEPLOYMENT,
        "CREATE",
        workload(&DEPLOYMENT, privileged_template()),
    )
    .build();
    let mut warnings = will_get(&DEPLOYMENT, true);
    warnings.extend(strings(&[
        "mcpguard: pods of Deployment \"web\" would violate policy \"p\": privileged (container \"app\" must not set securityContext.privileged=true)",
        "mcpguard: pods of Deployment \"web\" would violate policy \"p\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
    ]));
    assert_eq!(
        validate_with(&policy, &request),
        Decision {
            outcome: Outcome::Warned,
            patch: None,
            warnings,
            violations: in_template(privileged_violations()),
            status: None,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("violations", "privileged,allowPrivilegeEscalation"),
                ("mode", "warn")
            ]),
        }
    );
}

#[test]
fn audit_mode_admits_a_workload_with_only_its_will_get_warnings() {
    let policy = policy_with("  mode: audit\n");
    let request = Req::workload(
        &STATEFULSET,
        "CREATE",
        workload(&STATEFULSET, privileged_template()),
    )
    .build();
    assert_eq!(
        validate_with(&policy, &request),
        Decision {
            outcome: Outcome::Audited,
            patch: None,
            warnings: will_get(&STATEFULSET, true),
            violations: in_template(privileged_violations()),
            status: None,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("violations", "privileged,allowPrivilegeEscalation"),
                ("mode", "audit")
            ]),
        }
    );
}

#[test]
fn enforce_mode_denies_the_workload_named_by_policy_p() {
    let policy = policy_with("  mode: enforce\n");
    let request = Req::workload(
        &DEPLOYMENT,
        "CREATE",
        workload(&DEPLOYMENT, privileged_template()),
    )
    .build();
    assert_eq!(
        validate_with(&policy, &request),
        denied_workload(
            &DEPLOYMENT,
            "p",
            PRIVILEGED_SUMMARY,
            will_get(&DEPLOYMENT, true),
            privileged_violations()
        )
    );
}

#[test]
fn namespace_modes_warn_in_the_legacy_namespace_and_deny_elsewhere() {
    let policy = policy_with("  mode: enforce\n  namespaceModes: {mcp-legacy: warn}\n");
    let in_mcp = validate_with(&policy, &Req::pod(two_violation_pod()).build());
    assert_eq!(in_mcp, pod_denied("p", TWO_SUMMARY, two_violations()));

    let in_legacy = validate_with(
        &policy,
        &Req::pod(two_violation_pod())
            .namespace("mcp-legacy")
            .build(),
    );
    assert_eq!(in_legacy.outcome, Outcome::Warned);
    assert_eq!(
        in_legacy.warnings,
        strings(&[
            "mcpguard: would violate policy \"p\": host namespaces (hostNetwork=true)",
            "mcpguard: would violate policy \"p\": unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
        ])
    );
    assert_eq!(
        in_legacy.audit_annotations,
        annotations(&[("policy", "p"), ("violations", TWO_IDS), ("mode", "warn")])
    );
    assert_eq!(in_legacy.status, None);
}

#[test]
fn namespace_modes_override_a_warn_default_in_both_directions() {
    let policy = policy_with("  mode: warn\n  namespaceModes: {mcp: enforce, mcp-legacy: audit}\n");
    assert_eq!(policy.mode_for("mcp"), Mode::Enforce);
    assert_eq!(policy.mode_for("mcp-legacy"), Mode::Audit);
    assert_eq!(policy.mode_for("elsewhere"), Mode::Warn);
    let request = |ns: &str| {
        Req::workload(
            &DEPLOYMENT,
            "CREATE",
            workload(&DEPLOYMENT, host_network_template()),
        )
        .namespace(ns)
        .build()
    };
    assert_eq!(
        validate_with(&policy, &request("mcp")).outcome,
        Outcome::Denied
    );
    let legacy = validate_with(&policy, &request("mcp-legacy"));
    assert_eq!(legacy.outcome, Outcome::Audited);
    assert_eq!(legacy.warnings, will_get(&DEPLOYMENT, false));
}

#[test]
fn mutation_is_the_same_in_every_mode() {
    let mut bare = hardened_pod("web");
    bare["spec"] = json!({"hostNetwork": true,
                          "containers": [{"name": "app", "image": "ghcr.io/x/app:1", "imagePullPolicy": "Always"}]});
    let decisions: Vec<Decision> = ["enforce", "warn", "audit"]
        .iter()
        .map(|mode| {
            let policy = policy_with(&format!("  mode: {mode}\n"));
            mutate_with(&policy, &Req::pod(bare.clone()).build())
        })
        .collect();
    assert_eq!(decisions[0].outcome, Outcome::Mutated);
    assert!(decisions[0].patch.as_ref().is_some_and(|p| !p.0.is_empty()));
    assert_eq!(decisions[0], decisions[1], "warn mutates as enforce does");
    assert_eq!(decisions[0], decisions[2], "audit mutates as enforce does");
    // A namespace whose mode is overridden gets the same patch.
    let legacy = Req::pod(bare.clone()).namespace("mcp-legacy").build();
    let per_namespace = mutate_with(
        &policy_with("  namespaceModes: {mcp-legacy: audit}\n"),
        &legacy,
    );
    assert_eq!(per_namespace.patch, decisions[0].patch);
    // The mutated pod's remaining violation is then only warned about.
    let mut mutated = bare;
    json_patch::patch(&mut mutated, decisions[1].patch.as_ref().expect("a patch"))
        .expect("the patch applies");
    let warned = validate_with(&policy_with("  mode: warn\n"), &Req::pod(mutated).build());
    assert_eq!(
        warned.warnings,
        strings(&["mcpguard: would violate policy \"p\": host namespaces (hostNetwork=true)"])
    );
    assert_eq!(warned.outcome, Outcome::Warned);
}

// ---- exceptions ------------------------------------------------------------------------------

/// `policy_with` plus one exception `legacy-browser-server` with `match` and `checks`.
fn exception_policy(matcher: &str, checks: &str, expires: Option<&str>) -> Policy {
    let expires = expires.map_or(String::new(), |e| format!("      expires: {e}\n"));
    policy_with(&format!(
        "  exceptions:
    - name: legacy-browser-server
      reason: SEC-1234, headless Chromium needs SYS_ADMIN until the sandbox rework
      match: {matcher}
      checks: [{checks}]
{expires}"
    ))
}

const BROWSER_CHECKS: &str = "allowPrivilegeEscalation, capabilities_restricted";
const WAIVES_FOR_POD: &str = "mcpguard: exception \"legacy-browser-server\" waives allowPrivilegeEscalation, capabilities_restricted for the pod";
const WAIVES_FOR_BROWSER: &str = "mcpguard: exception \"legacy-browser-server\" waives allowPrivilegeEscalation, capabilities_restricted for container \"browser\"";

fn waived_pod(warning: &str) -> Decision {
    Decision {
        warnings: strings(&[warning]),
        audit_annotations: annotations(&[("policy", "p"), ("exceptions", "legacy-browser-server")]),
        ..Decision::new(Outcome::Allowed)
    }
}

fn browser_denied() -> Decision {
    pod_denied("p", BROWSER_SUMMARY, browser_violations())
}

/// The README's exception example, read from the README itself, on the default policy.
fn readme_exception_policy() -> Policy {
    const README: &str = include_str!("../../../../README.md");
    let block = README
        .split_once("## Exceptions\n\n```yaml\nspec:\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("the README has an exceptions example");
    let text = crate::policy::DEFAULT_POLICY_YAML.replace("  exceptions: []\n", block);
    parse_str(&text, "readme.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

#[test]
fn the_readme_exception_example_admits_its_playwright_server_after_mutation() {
    // `SYS_ADMIN` (not the literal `CAP_SYS_ADMIN` the API server compares) leaves room for
    // `allowPrivilegeEscalation: false`: mutation fills it, and the exception waives only the
    // capabilities checks it names.
    let policy = readme_exception_policy();
    let argocd = "system:serviceaccount:argocd:argocd-application-controller";
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "playwright-mcp", "namespace": "mcp"},
        "spec": {"containers": [{
            "name": "browser", "image": "mcr.microsoft.com/playwright:v1.49.0-noble",
            "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}
        }]}
    });
    let request = |pod: Value| {
        Req::pod(pod)
            .name("playwright-mcp")
            .user(argocd, &["system:serviceaccounts"])
            .build()
    };
    let mutation = mutate_with(&policy, &request(pod.clone()));
    assert_eq!(mutation.outcome, Outcome::Mutated);
    let mut mutated = pod;
    json_patch::patch(&mut mutated, mutation.patch.as_ref().expect("a patch")).expect("applies");
    assert_eq!(
        mutated["spec"]["containers"][0]["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]},
            "runAsGroup": 1000, "runAsNonRoot": true, "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    let decision = validate_with(&policy, &request(mutated));
    assert_eq!(
        decision,
        Decision {
            warnings: strings(&[
                "mcpguard: exception \"legacy-browser-server\" waives capabilities_restricted for container \"browser\""
            ]),
            audit_annotations: annotations(&[
                ("policy", "mcp-restricted"),
                ("exceptions", "legacy-browser-server")
            ]),
            ..Decision::new(Outcome::Allowed)
        }
    );
}

#[test]
fn an_exception_matching_the_name_glob_waives_its_checks_for_the_pod() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    let request = Req::pod(browser_pod("playwright-7d4b9-x2"))
        .name("playwright-7d4b9-x2")
        .build();
    let decision = validate_with(&policy, &request);
    assert_eq!(decision, waived_pod(WAIVES_FOR_POD));
    assert!(decision.allowed());
}

#[test]
fn an_exception_whose_name_glob_does_not_match_waives_nothing() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    for name in ["web", "my-playwright-1", "playwright"] {
        let request = Req::pod(browser_pod(name)).name(name).build();
        let mut expected = browser_denied();
        expected.status = Some(ResponseStatus::forbidden(format!(
            "pods {name:?} is forbidden: violates mcpguard policy \"p\": {BROWSER_SUMMARY}"
        )));
        assert_eq!(validate_with(&policy, &request), expected, "{name}");
    }
}

#[test]
fn a_pod_named_only_by_generate_name_matches_the_name_glob() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    let mut pod = browser_pod("x");
    pod["metadata"] = json!({"generateName": "playwright-7d4b9-", "namespace": "mcp"});
    let request = Req::pod(pod).name("").build();
    assert_eq!(validate_with(&policy, &request), waived_pod(WAIVES_FOR_POD));
}

#[test]
fn an_exception_by_image_waives_its_checks_for_the_matching_container() {
    let policy = exception_policy(
        "{images: [mcr.microsoft.com/playwright]}",
        BROWSER_CHECKS,
        None,
    );
    let request = Req::pod(browser_pod("web")).build();
    assert_eq!(
        validate_with(&policy, &request),
        waived_pod(WAIVES_FOR_BROWSER)
    );
}

#[test]
fn an_exception_by_image_does_not_match_a_lookalike_image() {
    let policy = exception_policy(
        "{images: [mcr.microsoft.com/playwright]}",
        BROWSER_CHECKS,
        None,
    );
    for image in [
        "mcr.microsoft.com/playwrightx:v1",
        "ghcr.io/mcr.microsoft.com/playwright:v1",
        "docker.io/playwright:v1",
    ] {
        let mut pod = browser_pod("web");
        pod["spec"]["containers"][0]["image"] = json!(image);
        assert_eq!(
            validate_with(&policy, &Req::pod(pod).build()),
            browser_denied(),
            "{image}"
        );
    }
}

#[test]
fn an_exception_by_image_waives_only_its_container_and_the_other_keeps_its_violation() {
    let policy = exception_policy(
        "{images: [mcr.microsoft.com/playwright]}",
        BROWSER_CHECKS,
        None,
    );
    let decision = validate_with(&policy, &Req::pod(browser_and_app_pod()).build());
    let remaining = at_fields(
        violation(
            "capabilities_restricted",
            "unrestricted capabilities",
            "container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add",
        ),
        // The app's own index: the judgement without the browser is renumbered to the pod.
        &["spec.containers[1].securityContext.capabilities.add"],
    );
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Denied,
            patch: None,
            warnings: strings(&[WAIVES_FOR_BROWSER]),
            violations: vec![remaining],
            status: Some(ResponseStatus::forbidden(
                "pods \"web\" is forbidden: violates mcpguard policy \"p\": unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)".into()
            )),
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("exceptions", "legacy-browser-server"),
                ("violations", "capabilities_restricted"),
            ]),
        }
    );
}

#[test]
fn without_the_exception_both_containers_are_named() {
    let decision = validate_with(&policy_with(""), &Req::pod(browser_and_app_pod()).build());
    assert_eq!(
        decision.status.map(|s| s.message),
        Some("pods \"web\" is forbidden: violates mcpguard policy \"p\": allowPrivilegeEscalation != false (container \"browser\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers \"browser\", \"app\" must not include \"NET_ADMIN\", \"SYS_ADMIN\" in securityContext.capabilities.add)".into())
    );
}

#[test]
fn an_image_exception_on_a_pod_level_check_waives_nothing_and_claims_nothing() {
    // hostNetwork is the pod's, not a container's: removing the browser container cannot
    // clear it, so nothing is waived, and no waiver may be announced or recorded.
    let policy = exception_policy(
        "{images: [mcr.microsoft.com/playwright]}",
        "hostNamespaces",
        None,
    );
    let mut pod = browser_pod("web");
    pod["spec"]["containers"] = json!([hardened_container(
        "browser",
        "mcr.microsoft.com/playwright:v1.49.0-noble"
    )]);
    pod["spec"]["hostNetwork"] = json!(true);
    assert_eq!(
        validate_with(&policy, &Req::pod(pod).build()),
        pod_denied(
            "p",
            "host namespaces (hostNetwork=true)",
            vec![host_network_violation()]
        )
    );
}

#[test]
fn an_image_exception_for_a_compliant_container_claims_no_waiver() {
    // The exception's image is a compliant sidecar; the violation is the app's alone.
    let policy = exception_policy(
        "{images: [mcr.microsoft.com/playwright]}",
        "capabilities_restricted",
        None,
    );
    let mut app = hardened_container("app", "ghcr.io/x/app:1");
    app["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"]);
    let mut pod = hardened_pod("web");
    pod["spec"]["containers"] = json!([
        hardened_container("browser", "mcr.microsoft.com/playwright:v1.49.0-noble"),
        app
    ]);
    let only_app = at_fields(
        violation(
            "capabilities_restricted",
            "unrestricted capabilities",
            "container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add",
        ),
        // The app's own index: the judgement without the browser is renumbered to the pod.
        &["spec.containers[1].securityContext.capabilities.add"],
    );
    assert_eq!(
        validate_with(&policy, &Req::pod(pod).build()),
        pod_denied(
            "p",
            "unrestricted capabilities (container \"app\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)",
            vec![only_app]
        )
    );
}

#[test]
fn an_exception_by_service_account_matches_only_that_account() {
    let policy = exception_policy("{serviceAccounts: [browser-sa]}", BROWSER_CHECKS, None);
    let mut pod = browser_pod("web");
    pod["spec"]["serviceAccountName"] = json!("browser-sa");
    assert_eq!(
        validate_with(&policy, &Req::pod(pod.clone()).build()),
        waived_pod(WAIVES_FOR_POD)
    );
    pod["spec"]["serviceAccountName"] = json!("other-sa");
    assert_eq!(
        validate_with(&policy, &Req::pod(pod).build()),
        browser_denied()
    );
    // No serviceAccountName is the `default` account.
    assert_eq!(
        validate_with(&policy, &Req::pod(browser_pod("web")).build()),
        browser_denied()
    );
    let default_sa = exception_policy("{serviceAccounts: [default]}", BROWSER_CHECKS, None);
    assert_eq!(
        validate_with(&default_sa, &Req::pod(browser_pod("web")).build()),
        waived_pod(WAIVES_FOR_POD)
    );
}

#[test]
fn an_exception_by_user_matches_only_the_requesting_user() {
    let user = "system:serviceaccount:argocd:argocd-application-controller";
    let policy = exception_policy(&format!("{{users: [\"{user}\"]}}"), BROWSER_CHECKS, None);
    let by = |username: &str| {
        validate_with(
            &policy,
            &Req::pod(browser_pod("web"))
                .user(username, &["dev"])
                .build(),
        )
    };
    assert_eq!(by(user), waived_pod(WAIVES_FOR_POD));
    assert_eq!(by("alice"), browser_denied());
    assert_eq!(by(""), browser_denied());
}

#[test]
fn an_exception_by_group_matches_only_a_member() {
    let policy = exception_policy("{groups: [platform-admins]}", BROWSER_CHECKS, None);
    let by = |groups: &[&str]| {
        validate_with(
            &policy,
            &Req::pod(browser_pod("web")).user("bob", groups).build(),
        )
    };
    assert_eq!(
        by(&["system:authenticated", "platform-admins"]),
        waived_pod(WAIVES_FOR_POD)
    );
    assert_eq!(by(&["system:authenticated", "dev"]), browser_denied());
    assert_eq!(by(&[]), browser_denied());
    assert_eq!(by(&["platform-admins-readonly"]), browser_denied());
}

#[test]
fn an_exception_by_namespace_matches_only_that_namespace() {
    let policy = exception_policy("{namespaces: [mcp-legacy]}", BROWSER_CHECKS, None);
    assert_eq!(
        validate_with(
            &policy,
            &Req::pod(browser_pod("web")).namespace("mcp-legacy").build()
        ),
        waived_pod(WAIVES_FOR_POD)
    );
    assert_eq!(
        validate_with(&policy, &Req::pod(browser_pod("web")).build()),
        browser_denied()
    );
}

#[test]
fn every_criterion_must_match() {
    let policy = exception_policy(
        "{names: [playwright-*], users: [alice]}",
        BROWSER_CHECKS,
        None,
    );
    let request = |name: &str, user: &str| {
        Req::pod(browser_pod(name))
            .name(name)
            .user(user, &[])
            .build()
    };
    assert_eq!(
        validate_with(&policy, &request("playwright-1", "alice")),
        waived_pod(WAIVES_FOR_POD)
    );
    assert_eq!(
        validate_with(&policy, &request("playwright-1", "mallory")).outcome,
        Outcome::Denied
    );
    assert_eq!(
        validate_with(&policy, &request("web", "alice")).outcome,
        Outcome::Denied
    );
}

#[test]
fn labels_and_annotations_never_exempt_a_pod() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    let mut pod = browser_pod("web");
    pod["metadata"]["labels"] = json!({
        "mcpguard.dev/exception": "legacy-browser-server",
        "exempt": "true",
        "app": "playwright-mcp"
    });
    pod["metadata"]["annotations"] = json!({
        "mcpguard.dev/exception": "legacy-browser-server",
        "mcpguard.dev/exempt": "true",
        "exempt": "true"
    });
    assert_eq!(
        validate_with(&policy, &Req::pod(pod).build()),
        browser_denied()
    );
}

#[test]
fn a_workload_template_cannot_exempt_itself_by_labels() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    let mut template = template();
    template["metadata"]["labels"]["mcpguard.dev/exception"] = json!("legacy-browser-server");
    template["metadata"]["annotations"] = json!({"exempt": "true"});
    template["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let mut object = workload(&DEPLOYMENT, template);
    object["metadata"]["labels"]["mcpguard.dev/exception"] = json!("legacy-browser-server");
    let decision = validate_with(
        &policy,
        &Req::workload(&DEPLOYMENT, "CREATE", object).build(),
    );
    assert_eq!(decision.outcome, Outcome::Denied);
    assert!(
        !decision.audit_annotations.contains_key("exceptions"),
        "{decision:?}"
    );
}

#[test]
fn a_check_the_exception_does_not_name_still_denies() {
    let policy = exception_policy("{names: [web]}", "capabilities_restricted", None);
    let decision = validate_with(&policy, &Req::pod(browser_pod("web")).build());
    let remaining = browser_violations()[0].clone();
    assert_eq!(
        decision,
        Decision {
            outcome: Outcome::Denied,
            patch: None,
            warnings: strings(&[
                "mcpguard: exception \"legacy-browser-server\" waives capabilities_restricted for the pod"
            ]),
            violations: vec![remaining],
            status: Some(ResponseStatus::forbidden(
                "pods \"web\" is forbidden: violates mcpguard policy \"p\": allowPrivilegeEscalation != false (container \"browser\" must set securityContext.allowPrivilegeEscalation=false)".into()
            )),
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("exceptions", "legacy-browser-server"),
                ("violations", "allowPrivilegeEscalation"),
            ]),
        }
    );
}

#[test]
fn an_exception_is_silent_when_the_pod_has_no_violation() {
    let policy = exception_policy("{names: [web]}", BROWSER_CHECKS, None);
    assert_eq!(
        validate_with(&policy, &Req::pod(hardened_pod("web")).build()),
        Decision {
            audit_annotations: annotations(&[("policy", "p")]),
            ..Decision::new(Outcome::Allowed)
        }
    );
}

#[test]
fn an_exception_waives_a_workload_by_the_workloads_name() {
    let policy = exception_policy("{names: [playwright-*]}", BROWSER_CHECKS, None);
    let mut template = template();
    template["spec"]["containers"] = json!([{
        "name": "browser",
        "image": "mcr.microsoft.com/playwright:v1.49.0-noble",
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}
    }]);
    let mut object = workload(&DEPLOYMENT, template);
    object["metadata"]["name"] = json!("playwright-mcp");
    let prefix = "mcpguard: pods of Deployment \"playwright-mcp\" will get: ";
    let mutation_warnings = vec![
        format!(
            "{prefix}pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false"
        ),
        format!(
            "{prefix}container \"browser\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
        ),
    ];
    let request = Req::workload(&DEPLOYMENT, "CREATE", object.clone())
        .name("playwright-mcp")
        .build();
    // Mutation fills `allowPrivilegeEscalation: false` next to `SYS_ADMIN` (only the
    // literal `CAP_SYS_ADMIN` forbids it), so only the capabilities are left to waive.
    let mut warnings = mutation_warnings.clone();
    warnings.push(
        "mcpguard: exception \"legacy-browser-server\" waives capabilities_restricted for the pod"
            .to_owned(),
    );
    assert_eq!(
        validate_with(&policy, &request),
        Decision {
            warnings,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("exceptions", "legacy-browser-server"),
            ]),
            ..Decision::new(Outcome::Allowed)
        }
    );
    // The same workload under another name is denied.
    let mut other = object;
    other["metadata"]["name"] = json!("web");
    let decision = validate_with(
        &policy,
        &Req::workload(&DEPLOYMENT, "CREATE", other).build(),
    );
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status.map(|s| s.message),
        Some(
            "deployments.apps \"web\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"p\": unrestricted capabilities (container \"browser\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)"
                .to_owned()
        )
    );
}

#[test]
fn an_exception_by_service_account_reads_the_workload_template() {
    let policy = exception_policy(
        "{serviceAccounts: [browser-sa]}",
        "privileged, allowPrivilegeEscalation",
        None,
    );
    let mut template = privileged_template();
    template["spec"]["serviceAccountName"] = json!("browser-sa");
    let request = Req::workload(&DAEMONSET, "CREATE", workload(&DAEMONSET, template)).build();
    let mut warnings = will_get(&DAEMONSET, true);
    warnings.push(
        "mcpguard: exception \"legacy-browser-server\" waives privileged, allowPrivilegeEscalation for the pod".into(),
    );
    assert_eq!(
        validate_with(&policy, &request),
        Decision {
            warnings,
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("exceptions", "legacy-browser-server"),
            ]),
            ..Decision::new(Outcome::Allowed)
        }
    );
    let request = Req::workload(
        &DAEMONSET,
        "CREATE",
        workload(&DAEMONSET, privileged_template()),
    )
    .build();
    assert_eq!(validate_with(&policy, &request).outcome, Outcome::Denied);
}

#[test]
fn an_exception_is_valid_through_its_expiry_date() {
    let policy = exception_policy("{names: [web]}", BROWSER_CHECKS, Some("2027-03-01"));
    let request = Req::pod(browser_pod("web")).build();
    for now in [NOW, MARCH_1_NOON, MARCH_1_LAST_SECOND] {
        assert_eq!(
            validate_at(&policy, &request, now),
            waived_pod(WAIVES_FOR_POD),
            "at {now}"
        );
    }
}

#[test]
fn an_expired_exception_no_longer_applies_and_says_so() {
    let policy = exception_policy("{names: [web]}", BROWSER_CHECKS, Some("2027-03-01"));
    let request = Req::pod(browser_pod("web")).build();
    for now in [MARCH_2_MIDNIGHT, MARCH_2_MIDNIGHT + 86_400] {
        let mut expected = browser_denied();
        expected.warnings = strings(&[
            "mcpguard: exception \"legacy-browser-server\" expired (2027-03-01) and no longer applies",
        ]);
        assert_eq!(validate_at(&policy, &request, now), expected, "at {now}");
    }
}

#[test]
fn an_rfc3339_expiry_is_exact() {
    let policy = exception_policy(
        "{names: [web]}",
        BROWSER_CHECKS,
        Some("\"2027-03-01T12:00:00Z\""),
    );
    let request = Req::pod(browser_pod("web")).build();
    assert_eq!(
        validate_at(&policy, &request, MARCH_1_NOON - 1),
        waived_pod(WAIVES_FOR_POD)
    );
    let mut expected = browser_denied();
    expected.warnings = strings(&[
        "mcpguard: exception \"legacy-browser-server\" expired (2027-03-01T12:00:00Z) and no longer applies",
    ]);
    assert_eq!(validate_at(&policy, &request, MARCH_1_NOON), expected);
}

#[test]
fn an_expired_exception_in_warn_mode_warns_of_both() {
    let policy = policy_with(
        "  mode: warn
  exceptions:
    - name: legacy-browser-server
      reason: SEC-1234
      match: {names: [web]}
      checks: [capabilities_restricted]
      expires: 2027-03-01
",
    );
    let decision = validate_at(
        &policy,
        &Req::pod(browser_pod("web")).build(),
        MARCH_2_MIDNIGHT,
    );
    assert_eq!(decision.outcome, Outcome::Warned);
    assert_eq!(
        decision.warnings,
        strings(&[
            "mcpguard: exception \"legacy-browser-server\" expired (2027-03-01) and no longer applies",
            "mcpguard: would violate policy \"p\": allowPrivilegeEscalation != false (container \"browser\" must set securityContext.allowPrivilegeEscalation=false)",
            "mcpguard: would violate policy \"p\": unrestricted capabilities (container \"browser\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)",
        ])
    );
}

#[test]
fn two_exceptions_are_each_announced_and_recorded() {
    let policy = policy_with(
        "  exceptions:
    - name: browser-caps
      reason: SEC-1
      match: {images: [mcr.microsoft.com/playwright]}
      checks: [capabilities_restricted]
    - name: browser-escalation
      reason: SEC-2
      match: {names: [web]}
      checks: [allowPrivilegeEscalation]
",
    );
    let decision = validate_with(&policy, &Req::pod(browser_pod("web")).build());
    assert_eq!(
        decision,
        Decision {
            warnings: strings(&[
                "mcpguard: exception \"browser-escalation\" waives allowPrivilegeEscalation for the pod",
                "mcpguard: exception \"browser-caps\" waives capabilities_restricted for container \"browser\"",
            ]),
            audit_annotations: annotations(&[
                ("policy", "p"),
                ("exceptions", "browser-escalation,browser-caps"),
            ]),
            ..Decision::new(Outcome::Allowed)
        }
    );
}

// ---- policy refusals -------------------------------------------------------------------------

fn refusal(extra: &str) -> String {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: p}}
spec:
  namespaces: [mcp, mcp-legacy]
  podSecurity: {{level: restricted, version: latest}}
{extra}"
    );
    match parse_str(&text, "t.yaml") {
        Ok(_) => panic!("policy with {extra:?} loaded"),
        Err(error) => error.to_string(),
    }
}

fn loads(extra: &str) -> Policy {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: p}}
spec:
  namespaces: [mcp, mcp-legacy]
  podSecurity: {{level: restricted, version: latest}}
{extra}"
    );
    parse_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

const ONE_EXCEPTION: &str = "  exceptions:
    - name: x
      reason: SEC-1
      match: {names: [web]}
      checks: [capabilities_restricted]
";

#[test]
fn valid_new_fields_load() {
    let policy = loads(&format!(
        "  mode: audit\n  namespaceModes: {{mcp-legacy: warn}}\n{ONE_EXCEPTION}      expires: 2027-03-01\n"
    ));
    assert_eq!(policy.spec.mode, Mode::Audit);
    assert_eq!(policy.mode_for("mcp"), Mode::Audit);
    assert_eq!(policy.mode_for("mcp-legacy"), Mode::Warn);
    assert_eq!(policy.spec.exceptions.len(), 1);
    assert_eq!(
        policy.spec.exceptions[0].expires.as_deref(),
        Some("2027-03-01")
    );
    assert_eq!(policy.exception_expiry, vec![Some(at(MARCH_2_MIDNIGHT))]);
    let defaults = loads("");
    assert_eq!(defaults.spec.mode, Mode::Enforce);
    assert_eq!(defaults.mode_for("mcp-legacy"), Mode::Enforce);
    assert!(defaults.spec.exceptions.is_empty());
}

#[test]
fn an_unknown_mode_is_refused() {
    assert_eq!(
        refusal("  mode: dryrun\n"),
        "policy t.yaml: spec.mode: unknown variant, expected one of `enforce`, `warn`, `audit`"
    );
    assert_eq!(
        refusal("  mode: Enforce\n"),
        "policy t.yaml: spec.mode: unknown variant, expected one of `enforce`, `warn`, `audit`"
    );
    assert_eq!(
        refusal("  namespaceModes: {mcp: deny}\n"),
        "policy t.yaml: spec.namespaceModes.mcp: unknown variant, expected one of `enforce`, `warn`, `audit`"
    );
}

#[test]
fn a_namespace_mode_for_a_namespace_not_enforced_is_refused() {
    assert_eq!(
        refusal("  namespaceModes: {mcp: warn, other: audit}\n"),
        "policy t.yaml: spec.namespaceModes.other: namespace \"other\" is not in spec.namespaces"
    );
    loads("  namespaceModes: {mcp: warn, mcp-legacy: audit}\n");
}

#[test]
fn an_exception_with_an_unknown_check_is_refused() {
    assert_eq!(
        refusal(
            "  exceptions:
    - name: x
      reason: SEC-1
      checks: [capabilities_restricted, hostNetwork]
"
        ),
        "policy t.yaml: spec.exceptions[0].checks[1]: unknown check \"hostNetwork\" (known: appArmorProfile, capabilities_baseline, hostNamespaces, hostPathVolumes, hostPorts, hostProbesAndHostLifecycle, privileged, procMount, seLinuxOptions, seccompProfile_baseline, sysctls, windowsHostProcess, allowPrivilegeEscalation, capabilities_restricted, procMount_restricted, restrictedVolumes, runAsNonRoot, runAsUser, seccompProfile_restricted, allowedRegistries, requireRuntimeClass, maxResources, forbidSecretLiterals)"
    );
    // MCP rule IDs are checks too.
    loads(
        "  exceptions:
    - name: x
      reason: SEC-1
      checks: [allowedRegistries, forbidSecretLiterals]
",
    );
}

#[test]
fn a_duplicate_exception_name_is_refused() {
    assert_eq!(
        refusal(&format!(
            "{ONE_EXCEPTION}    - name: x\n      reason: SEC-2\n      checks: [privileged]\n"
        )),
        "policy t.yaml: spec.exceptions[1].name: exception \"x\" is defined twice"
    );
    loads(&format!(
        "{ONE_EXCEPTION}    - name: second\n      reason: SEC-2\n      checks: [privileged]\n"
    ));
}

#[test]
fn an_exception_without_a_reason_is_refused() {
    for reason in ["\"\"", "\"   \""] {
        assert_eq!(
            refusal(&format!(
                "  exceptions:\n    - name: x\n      reason: {reason}\n      checks: [privileged]\n"
            )),
            "policy t.yaml: spec.exceptions[0].reason: must say why the exception was granted",
            "{reason}"
        );
    }
}

#[test]
fn an_exception_without_checks_is_refused() {
    assert_eq!(
        refusal("  exceptions:\n    - name: x\n      reason: SEC-1\n      checks: []\n"),
        "policy t.yaml: spec.exceptions[0].checks: must name at least one check to waive"
    );
}

#[test]
fn an_exception_with_a_bad_expiry_is_refused() {
    for (raw, shown) in [
        ("\"2027-02-30\"", "2027-02-30"),
        ("next-week", "next-week"),
        ("\"2027-3-1\"", "2027-3-1"),
        ("\"2027-03-01T12:00:00\"", "2027-03-01T12:00:00"),
    ] {
        assert_eq!(
            refusal(&format!("{ONE_EXCEPTION}      expires: {raw}\n")),
            format!(
                "policy t.yaml: spec.exceptions[0].expires: \"{shown}\" is not a date (YYYY-MM-DD) or an RFC 3339 time"
            ),
            "{raw}"
        );
    }
}

#[test]
fn an_exception_for_a_namespace_not_enforced_is_refused() {
    assert_eq!(
        refusal(
            "  exceptions:
    - name: x
      reason: SEC-1
      match: {namespaces: [mcp, other]}
      checks: [privileged]
"
        ),
        "policy t.yaml: spec.exceptions[0].match.namespaces[1]: namespace \"other\" is not in spec.namespaces"
    );
}

#[test]
fn an_exception_cannot_match_on_labels() {
    let message = refusal(
        "  exceptions:
    - name: x
      reason: SEC-1
      match: {labels: {exempt: \"true\"}}
      checks: [privileged]
",
    );
    assert!(
        message.starts_with("policy t.yaml: spec.exceptions[0].match")
            && message.contains("unknown field `labels`"),
        "{message}"
    );
}

#[test]
fn refusals_carry_the_field_path_separately() {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: p}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
{ONE_EXCEPTION}      expires: soon
"
    );
    assert_eq!(
        parse_str(&text, "t.yaml").unwrap_err(),
        PolicyError {
            source_name: "t.yaml".into(),
            path: "spec.exceptions[0].expires".into(),
            message: "\"soon\" is not a date (YYYY-MM-DD) or an RFC 3339 time".into(),
        }
    );
}

#[test]
fn a_template_over_the_container_limit_is_denied_naming_the_limit() {
    let mut over = template();
    over["spec"]["containers"] = (0..=MAX_CONTAINERS_PER_POD)
        .map(|i| json!({"name": format!("c{i}"), "image": "ghcr.io/x/app:1"}))
        .collect();
    let request = Req::workload(&DEPLOYMENT, "CREATE", workload(&DEPLOYMENT, over)).build();
    let decision = validate_with(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        decision.status.map(|s| s.message),
        Some(
            "deployments.apps \"web\" is forbidden: the pods it would create would be rejected: \
             mcpguard: 1001 containers (initContainers, containers and ephemeralContainers \
             together) exceed the limit of 1000 per pod"
                .to_owned()
        )
    );
    // One fewer is judged: the mutation makes them pass.
    let mut at = template();
    at["spec"]["containers"] = (0..MAX_CONTAINERS_PER_POD)
        .map(|i| json!({"name": format!("c{i}"), "image": "ghcr.io/x/app:1"}))
        .collect();
    let request = Req::workload(&DEPLOYMENT, "CREATE", workload(&DEPLOYMENT, at)).build();
    assert_eq!(validate_with(&default_policy(), &request).status, None);
}
