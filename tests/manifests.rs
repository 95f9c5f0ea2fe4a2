//! The cluster-admin install, rendered offline with `kubectl kustomize` as
//! `kubectl apply -k` would, parsed into its k8s-openapi types and checked field by field.
//! Schema validation uses `kubernetes-validate` (installed by `.ci/run`).
//!
//! A missing `kubectl` / `kubernetes-validate` fails these tests, unless
//! `MCPGUARD_SKIP_EXTERNAL_TOOLS=1` opts in to skipping them (see tests/common/external_tools.rs).

mod cli_support;
#[path = "common/external_tools.rs"]
mod external_tools;

use std::path::Path;
use std::process::Command;

use cli_support::{check_restricted_as_written, run};
use external_tools::{kubernetes_validate_strict, stdout_of, tool_available};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn render(dir: &str) -> Option<Vec<Value>> {
    if !tool_available("kubectl") {
        return None;
    }
    let stdout = stdout_of(Command::new("kubectl").args(["kustomize", &format!("{ROOT}/{dir}")]));
    let text = String::from_utf8(stdout).expect("utf-8 output");
    Some(serde_saphyr::from_multiple::<Value>(&text).expect("rendered YAML parses"))
}

fn find<T: DeserializeOwned>(docs: &[Value], kind: &str, name: &str) -> T {
    let doc = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not rendered"));
    serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{kind}/{name} does not parse: {e}"))
}

fn expected_selector() -> Value {
    json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["mcp"]},
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
         "values": ["kube-system", "kube-public", "kube-node-lease", "mcpguard-system"]},
    ]})
}

fn rule(operations: &[&str], resources: &[&str]) -> RuleWithOperations {
    serde_json::from_value(json!({
        "apiGroups": [""], "apiVersions": ["v1"], "operations": operations,
        "resources": resources, "scope": "Namespaced",
    }))
    .expect("rule")
}

#[test]
fn every_document_parses_into_its_kubernetes_type() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "ClusterRole/mcpguard".to_owned(),
            "ClusterRoleBinding/mcpguard".into(),
            "ConfigMap/mcpguard-policy".into(),
            "Deployment/mcpguard".into(),
            "MutatingWebhookConfiguration/mcpguard".into(),
            "Namespace/mcpguard-system".into(),
            "PodDisruptionBudget/mcpguard".into(),
            "Role/mcpguard".into(),
            "RoleBinding/mcpguard".into(),
            "Secret/mcpguard-tls".into(),
            "Service/mcpguard".into(),
            "ServiceAccount/mcpguard".into(),
            "ValidatingAdmissionPolicy/mcpguard-webhook-fence".into(),
            "ValidatingAdmissionPolicyBinding/mcpguard-webhook-fence".into(),
            "ValidatingWebhookConfiguration/mcpguard".into(),
        ]
    );
    for doc in &docs {
        let namespaced = !matches!(
            doc["kind"].as_str(),
            Some(
                "Namespace"
                    | "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "MutatingWebhookConfiguration"
                    | "ValidatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
        );
        if namespaced {
            assert_eq!(
                doc["metadata"]["namespace"], "mcpguard-system",
                "{}",
                doc["kind"]
            );
        } else {
            assert_eq!(doc["metadata"]["namespace"], Value::Null, "{}", doc["kind"]);
        }
    }
}

#[test]
fn namespaces_carry_the_right_pod_security_labels_and_mcp_is_separate() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let system: Namespace = find(&docs, "Namespace", "mcpguard-system");
    let labels = system.metadata.labels.expect("labels");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == "mcp"),
        "kubectl delete -k webhook-manifests/ must never delete the MCP namespace"
    );

    let Some(mcp_docs) = render("webhook-manifests/mcp-namespace") else {
        return;
    };
    let mut mcp_kinds: Vec<String> = mcp_docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    mcp_kinds.sort();
    assert_eq!(
        mcp_kinds,
        vec![
            "Namespace/mcp".to_owned(),
            "Role/mcpguard-controller".into(),
            "RoleBinding/mcpguard-controller".into(),
        ]
    );
    let mcp: Namespace = find(&mcp_docs, "Namespace", "mcp");
    let labels = mcp.metadata.labels.expect("labels");
    assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    assert!(
        !labels.contains_key("pod-security.kubernetes.io/enforce"),
        "the enforce label belongs to mcpguard's leader alone"
    );
}

#[test]
fn webhooks_fail_closed_only_in_the_mcp_namespaces() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let mutating: MutatingWebhookConfiguration =
        find(&docs, "MutatingWebhookConfiguration", "mcpguard");
    let validating: ValidatingWebhookConfiguration =
        find(&docs, "ValidatingWebhookConfiguration", "mcpguard");
    let [mutate] = mutating
        .webhooks
        .expect("webhooks")
        .try_into()
        .expect("one mutating webhook");
    let [validate] = validating
        .webhooks
        .expect("webhooks")
        .try_into()
        .expect("one validating webhook");

    assert_eq!(mutate.name, "mutate.mcpguard.dev");
    assert_eq!(mutate.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(mutate.side_effects, "NoneOnDryRun");
    assert_eq!(mutate.timeout_seconds, Some(5));
    assert_eq!(mutate.admission_review_versions, vec!["v1".to_owned()]);
    assert_eq!(mutate.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(
        serde_json::to_value(&mutate.namespace_selector).expect("selector"),
        expected_selector()
    );
    let service = mutate.client_config.service.expect("service reference");
    assert_eq!(
        (
            service.name.as_str(),
            service.namespace.as_str(),
            service.path.as_deref(),
            service.port
        ),
        ("mcpguard", "mcpguard-system", Some("/mutate"), Some(443))
    );
    assert_eq!(
        mutate.rules.expect("rules"),
        vec![
            rule(&["CREATE"], &["pods"]),
            rule(&["UPDATE"], &["pods/ephemeralcontainers"])
        ]
    );

    assert_eq!(validate.name, "validate.mcpguard.dev");
    assert_eq!(validate.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(validate.side_effects, "NoneOnDryRun");
    assert_eq!(validate.timeout_seconds, Some(5));
    assert_eq!(validate.admission_review_versions, vec!["v1".to_owned()]);
    assert_eq!(
        serde_json::to_value(&validate.namespace_selector).expect("selector"),
        expected_selector()
    );
    let service = validate.client_config.service.expect("service reference");
    assert_eq!(service.path.as_deref(), Some("/validate"));
    let workload_rule = |group: &str, resources: &[&str]| -> RuleWithOperations {
        serde_json::from_value(json!({
            "apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": resources, "scope": "Namespaced",
        }))
        .expect("rule")
    };
    assert_eq!(
        validate.rules.expect("rules"),
        vec![
            rule(
                &["CREATE", "UPDATE"],
                &["pods", "pods/ephemeralcontainers", "pods/resize"]
            ),
            workload_rule("", &["replicationcontrollers", "podtemplates"]),
            workload_rule(
                "apps",
                &["deployments", "statefulsets", "daemonsets", "replicasets"]
            ),
            workload_rule("batch", &["jobs", "cronjobs"]),
            serde_json::from_value(json!({
                "apiGroups": ["mcpguard.dev"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["mcpservers"], "scope": "Namespaced",
            }))
            .expect("rule"),
            workload_rule("networking.k8s.io", &["networkpolicies"]),
            serde_json::from_value(json!({
                "apiGroups": ["mcpguard.dev"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["mcppolicies"], "scope": "Cluster",
            }))
            .expect("rule"),
        ]
    );
}

#[test]
fn every_workload_the_engine_judges_is_routed_to_the_validating_webhook() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let validating: ValidatingWebhookConfiguration =
        find(&docs, "ValidatingWebhookConfiguration", "mcpguard");
    let mut routed: Vec<(String, String)> = Vec::new();
    for rule in validating.webhooks.expect("webhooks")[0]
        .rules
        .clone()
        .expect("rules")
    {
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                routed.push((group.clone(), resource));
            }
        }
    }
    for workload in mcpguard_core::workloads::WORKLOADS {
        assert!(
            routed.contains(&(workload.group.to_owned(), workload.resource.to_owned())),
            "{}/{} is judged by the engine but never sent to it",
            workload.group,
            workload.resource
        );
    }
}

#[test]
fn deployment_is_highly_available_probed_and_hardened() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let deployment: Deployment = find(&docs, "Deployment", "mcpguard");
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    // An upgrade (a new image via `kubectl apply -k`) starts a new pod before it stops an
    // old one, so a ready replica answers the API server throughout the rollout.
    let rolling = spec
        .strategy
        .as_ref()
        .filter(|s| s.type_.as_deref() == Some("RollingUpdate"))
        .and_then(|s| s.rolling_update.as_ref())
        .expect("a RollingUpdate strategy");
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    let anti_affinity = pod
        .affinity
        .and_then(|a| a.pod_anti_affinity)
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
        .expect("pod anti-affinity");
    assert_eq!(
        anti_affinity[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    let pod_security = pod.security_context.expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_owned())
    );
    let [container] = pod.containers.try_into().expect("one container");
    let security = container
        .security_context
        .expect("container securityContext");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let resources = container.resources.expect("resources");
    for section in [
        resources.requests.expect("requests"),
        resources.limits.expect("limits"),
    ] {
        assert!(
            section.contains_key("cpu") && section.contains_key("memory"),
            "{section:?}"
        );
    }
    let probe_target = |probe: Option<k8s_openapi::api::core::v1::Probe>| {
        let get = probe.and_then(|p| p.http_get).expect("httpGet probe");
        (get.path.unwrap_or_default(), get.port)
    };
    assert_eq!(
        probe_target(container.readiness_probe),
        ("/readyz".into(), IntOrString::String("probes".into()))
    );
    assert_eq!(
        probe_target(container.liveness_probe),
        ("/healthz".into(), IntOrString::String("probes".into()))
    );
    let ports: Vec<(String, i32)> = container
        .ports
        .expect("ports")
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        vec![("https".to_owned(), 8443), ("probes".to_owned(), 8080)]
    );
    // preStop keeps serving while endpoints go away; the grace period covers it, the
    // drain (MCPGUARD_DRAIN_SECONDS) and in-flight requests (25 s).
    let pre_stop = container
        .lifecycle
        .and_then(|l| l.pre_stop)
        .and_then(|p| p.sleep)
        .expect("preStop sleep");
    let env: std::collections::BTreeMap<String, String> = container
        .env
        .expect("env")
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect();
    let drain: i64 = env["MCPGUARD_DRAIN_SECONDS"]
        .parse()
        .expect("drain seconds");
    let grace = pod
        .termination_grace_period_seconds
        .expect("termination grace period");
    assert!(
        grace > pre_stop.seconds + drain + 25,
        "grace {grace}s too short"
    );
    assert_eq!(
        env["MCPGUARD_POLICY"],
        "/etc/mcpguard/policy/mcp-restricted.yaml"
    );
    assert_eq!(env["MCPGUARD_CERT_MANAGEMENT"], "self");
    assert_eq!(env["MCPGUARD_CERT_SECRET_NAME"], "mcpguard-tls");
    assert_eq!(env["MCPGUARD_CONTROLLER"], "true");

    let pdb: PodDisruptionBudget = find(&docs, "PodDisruptionBudget", "mcpguard");
    let pdb_spec = pdb.spec.expect("pdb spec");
    assert_eq!(pdb_spec.min_available, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb_spec.selector.and_then(|s| s.match_labels),
        spec.selector.match_labels
    );

    let service: Service = find(&docs, "Service", "mcpguard");
    let https = service
        .spec
        .and_then(|s| s.ports)
        .expect("ports")
        .into_iter()
        .find(|p| p.name.as_deref() == Some("https"))
        .expect("https port");
    assert_eq!(
        (https.port, https.target_port),
        (443, Some(IntOrString::String("https".into())))
    );
}

/// README, "Memory and limits": the limit was measured (`benches/memory.sh`) for these
/// review limits; changing one means measuring again.
#[test]
fn the_memory_limit_is_the_one_measured_for_the_review_limits_set() {
    use mcpguard::webhook::routes::{DEFAULT_MAX_CONCURRENT_REVIEWS, DEFAULT_MAX_REVIEW_BYTES};
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let deployment: Deployment = find(&docs, "Deployment", "mcpguard");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    let container = &pod.containers[0];
    let env = |name: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        env("MCPGUARD_MAX_REVIEW_BYTES"),
        Some(DEFAULT_MAX_REVIEW_BYTES.to_string())
    );
    assert_eq!(
        env("MCPGUARD_MAX_CONCURRENT_REVIEWS"),
        Some(DEFAULT_MAX_CONCURRENT_REVIEWS.to_string())
    );
    let limit = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| q.0.clone());
    assert_eq!(limit.as_deref(), Some("512Mi"));
}

#[test]
fn rbac_grants_only_what_the_code_calls() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let rules = |rules: Option<Vec<PolicyRule>>| -> Value {
        serde_json::to_value(rules.expect("rules")).expect("json")
    };
    let cluster_role: ClusterRole = find(&docs, "ClusterRole", "mcpguard");
    assert_eq!(
        rules(cluster_role.rules),
        json!([
            {"apiGroups": ["admissionregistration.k8s.io"],
             "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
             "resourceNames": ["mcpguard"], "verbs": ["get", "patch"]},
            {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["mcp"], "verbs": ["get", "patch"]},
            {"apiGroups": [""], "resources": ["pods", "podtemplates"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "verbs": ["get", "list"]},
            {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list"]},
            {"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"], "verbs": ["list", "create", "patch"]},
            {"apiGroups": ["openreports.io"], "resources": ["reports"], "verbs": ["list", "create", "patch"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["mcpguard.dev"], "resources": ["mcpservers"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["mcpguard.dev"], "resources": ["mcpservers/status"], "verbs": ["patch"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            {"apiGroups": ["mcpguard.dev"], "resources": ["mcppolicies"], "verbs": ["list", "watch"]},
            {"apiGroups": ["mcpguard.dev"], "resources": ["mcppolicies/status"], "verbs": ["patch"]},
        ])
    );
    let role: Role = find(&docs, "Role", "mcpguard");
    assert_eq!(
        rules(role.rules),
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mcpguard-tls"],
             "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["mcpguard-leader"], "verbs": ["get", "update", "patch"]},
        ])
    );

    // The MCPServer controller's writes and Secret reads: in the MCP namespace only.
    let Some(mcp_docs) = render("webhook-manifests/mcp-namespace") else {
        return;
    };
    let controller_role: Role = find(&mcp_docs, "Role", "mcpguard-controller");
    assert_eq!(controller_role.metadata.namespace.as_deref(), Some("mcp"));
    assert_eq!(
        rules(controller_role.rules),
        json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
             "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
             "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
             "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
        ])
    );
    let binding: RoleBinding = find(&mcp_docs, "RoleBinding", "mcpguard-controller");
    assert_eq!(binding.metadata.namespace.as_deref(), Some("mcp"));
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", "mcpguard-controller")
    );
    assert_eq!(
        serde_json::to_value(binding.subjects).expect("json"),
        json!([{"kind": "ServiceAccount", "name": "mcpguard", "namespace": "mcpguard-system"}])
    );
}

#[test]
fn certificate_secret_ships_empty_and_policy_is_the_shipped_default() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let secret: Secret = find(&docs, "Secret", "mcpguard-tls");
    // No data at all (and so type Opaque: kubernetes.io/tls requires tls.crt and tls.key):
    // client-side `kubectl apply` of a new version resets every field the manifest sets,
    // which would empty the certificate the leader wrote and the CA the API server trusts.
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.data, None, "the Secret ships without data");
    assert_eq!(secret.string_data, None, "the Secret ships without data");
    // A stable name (no content hash), so edits are hot-reloaded rather than rolled out.
    let configmap: ConfigMap = find(&docs, "ConfigMap", "mcpguard-policy");
    let original = std::fs::read_to_string(Path::new(ROOT).join("policies/mcp-restricted.yaml"))
        .expect("policy");
    assert_eq!(
        configmap.data.expect("data")["mcp-restricted.yaml"],
        original
    );
}

#[test]
fn the_policy_copy_inside_the_kustomization_matches_the_original() {
    let original = std::fs::read_to_string(Path::new(ROOT).join("policies/mcp-restricted.yaml"))
        .expect("original");
    let copy = std::fs::read_to_string(
        Path::new(ROOT).join("webhook-manifests/base/policy/mcp-restricted.yaml"),
    )
    .expect("copy");
    assert_eq!(
        copy, original,
        "run: cp policies/mcp-restricted.yaml webhook-manifests/base/policy/"
    );
}

/// A replica serves only `tls.crt` and `tls.key`; the CA keys a self-managed Secret also
/// holds stay out of every pod's filesystem, in every install.
#[test]
fn replicas_mount_only_the_serving_pair() {
    for dir in [
        "webhook-manifests",
        "webhook-manifests/overlays/cert-manager",
        "webhook-manifests/overlays/network-policy-kind",
    ] {
        let Some(docs) = render(dir) else { return };
        let deployment = docs
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .expect("Deployment");
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes");
        let secrets: Vec<&Value> = volumes
            .iter()
            .filter(|v| v.get("secret").is_some())
            .collect();
        assert_eq!(
            secrets,
            vec![&json!({
                "name": "tls",
                "secret": {
                    "secretName": "mcpguard-tls",
                    "defaultMode": 0o400,
                    "items": [
                        {"key": "tls.crt", "path": "tls.crt"},
                        {"key": "tls.key", "path": "tls.key"},
                    ],
                    // Until the leader writes them, the keys are absent: no pod may wait
                    // on a Secret only a running pod fills.
                    "optional": true,
                },
            })],
            "{dir}"
        );
    }
}

#[test]
fn cert_manager_overlay_hands_certificates_to_cert_manager() {
    let Some(docs) = render("webhook-manifests/overlays/cert-manager") else {
        return;
    };
    assert!(
        !docs.iter().any(|d| d["kind"] == "Secret"),
        "cert-manager creates the Secret"
    );
    let named = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
    };
    // The serving certificate is signed by a CA of mcpguard's own, so its renewals never
    // change what caBundle trusts.
    let certificate = named("Certificate", "mcpguard");
    assert_eq!(certificate["spec"]["secretName"], "mcpguard-tls");
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": "mcpguard-ca", "kind": "Issuer"})
    );
    let ca_issuer = named("Issuer", "mcpguard-ca");
    assert_eq!(
        ca_issuer["spec"],
        json!({"ca": {"secretName": "mcpguard-ca"}})
    );
    // The CA is made once by the self-signed issuer; its renewals keep its key, so every
    // serving certificate it signed still verifies, and it lives ten years.
    let ca = named("Certificate", "mcpguard-ca");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(ca["spec"]["secretName"], "mcpguard-ca");
    assert_eq!(ca["spec"]["duration"], "87600h");
    assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never");
    assert_eq!(
        ca["spec"]["issuerRef"],
        json!({"name": "mcpguard-selfsigned", "kind": "Issuer"})
    );
    assert_eq!(
        named("Issuer", "mcpguard-selfsigned")["spec"],
        json!({"selfSigned": {}})
    );
    // No pod mounts the CA's Secret (it holds the CA key).
    let mounted: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter_map(|volume| volume.pointer("/secret/secretName"))
        .collect();
    assert_eq!(mounted, vec![&json!("mcpguard-tls")]);
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!(mcpguard_core::certs::service_names(
            "mcpguard",
            "mcpguard-system"
        ))
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let configuration = docs
            .iter()
            .find(|d| d["kind"] == kind)
            .expect("configuration");
        assert_eq!(
            configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "mcpguard-system/mcpguard-ca",
            "caBundle holds the CA, not the serving certificate"
        );
    }
    let deployment: Deployment = find(&docs, "Deployment", "mcpguard");
    let env = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod")
        .containers[0]
        .env
        .clone()
        .expect("env");
    let management = env
        .iter()
        .find(|e| e.name == "MCPGUARD_CERT_MANAGEMENT")
        .expect("env var");
    assert_eq!(management.value.as_deref(), Some("external"));
}

#[test]
fn the_webhooks_own_pods_pass_mcpguards_restricted_check() {
    let Some(docs) = render("webhook-manifests") else {
        return;
    };
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deployment");
    let template = &deployment["spec"]["template"];
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mcpguard-webhook", "namespace": "mcp", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pod.json");
    std::fs::write(&path, serde_json::to_vec(&pod).expect("json")).expect("write");
    let output = check_restricted_as_written(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!(
            "ADMITTED pod/mcpguard-webhook (namespace mcp, {}#1)",
            path.display()
        )
    );
}

#[test]
fn every_rendered_document_passes_the_kubernetes_schema() {
    if !tool_available("kubernetes-validate") {
        return;
    }
    for dir in [
        "webhook-manifests",
        "webhook-manifests/crds",
        "webhook-manifests/mcp-namespace",
        "webhook-manifests/overlays/cert-manager",
        "webhook-manifests/overlays/network-policy-kind",
        "webhook-manifests/policyreport-crd",
        "webhook-manifests/monitoring",
    ] {
        let Some(docs) = render(dir) else { return };
        validate_strict(dir, &docs);
    }
    // The release bundles, as `kubectl apply -f` reads them.
    for file in DIST {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file.1)).expect(file.1);
        let docs = serde_saphyr::from_multiple::<Value>(&text).expect("bundle parses");
        validate_strict(file.1, &docs);
    }
}

fn validate_strict(dir: &str, docs: &[Value]) {
    let report = kubernetes_validate_strict(dir, docs);
    // Only cert-manager's and the Prometheus Operator's own kinds may lack a built-in schema.
    for line in report.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            line.contains("cert-manager.io/v1") || line.contains("monitoring.coreos.com/v1"),
            "{dir}: {line}"
        );
    }
}

#[test]
fn the_shipped_crds_are_exactly_what_mcpguard_crd_prints() {
    let output = run(&["crd"]);
    assert_eq!(output.status.code(), Some(0));
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("webhook-manifests/crds/crds.yaml"))
        .expect("shipped CRD");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        shipped,
        "regenerate with: cargo run -- crd > webhook-manifests/crds/crds.yaml"
    );
}

#[test]
fn network_policy_admits_the_webhook_only_from_the_api_server_and_probes_from_the_nodes() {
    let Some(docs) = render("webhook-manifests/overlays/network-policy-kind") else {
        return;
    };
    let policy: NetworkPolicy = find(&docs, "NetworkPolicy", "mcpguard");
    assert_eq!(
        serde_json::to_value(&policy).expect("serialises"),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "mcpguard",
                "namespace": "mcpguard-system",
                "labels": {
                    "app.kubernetes.io/name": "mcpguard",
                    "app.kubernetes.io/part-of": "mcpguard",
                },
            },
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mcpguard"}},
                // Ingress only: mcpguard itself must still reach the API server.
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
                     "ports": [{"port": "https", "protocol": "TCP"}]},
                    {"from": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
                     "ports": [{"port": "probes", "protocol": "TCP"}]},
                ],
            },
        })
    );
    // It selects the webhook's pods, and its named ports are theirs.
    let deployment: Deployment = find(&docs, "Deployment", "mcpguard");
    let template = deployment.spec.expect("spec").template;
    let pod_labels = template.metadata.expect("metadata").labels.expect("labels");
    assert_eq!(
        pod_labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("mcpguard")
    );
    let container = &template.spec.expect("pod spec").containers[0];
    let ports: Vec<(Option<&str>, i32)> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    assert_eq!(ports, vec![(Some("https"), 8443), (Some("probes"), 8080)]);
    // Everything else is the default install, unchanged.
    let Some(default_install) = render("webhook-manifests") else {
        return;
    };
    let rest: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] != "NetworkPolicy")
        .collect();
    assert_eq!(rest, default_install);
}

#[test]
fn the_network_policy_component_ships_placeholders_the_api_server_refuses() {
    // Unpatched, `kubectl apply` must fail on the NetworkPolicy rather than apply one that
    // shuts kube-apiserver out of a failurePolicy: Fail webhook.
    let text = std::fs::read_to_string(
        Path::new(ROOT).join("webhook-manifests/network-policy/networkpolicy.yaml"),
    )
    .expect("the component's NetworkPolicy");
    let policy: NetworkPolicy = serde_saphyr::from_str(&text).expect("a NetworkPolicy");
    let cidrs: Vec<String> = policy
        .spec
        .expect("spec")
        .ingress
        .into_iter()
        .flatten()
        .flat_map(|rule| rule.from.into_iter().flatten())
        .filter_map(|peer| peer.ip_block.map(|block| block.cidr))
        .collect();
    assert_eq!(cidrs, ["API-SERVER-CIDR", "NODE-CIDR"]);
    for cidr in &cidrs {
        let is_cidr = cidr.split_once('/').is_some_and(|(address, prefix)| {
            address.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok()
        });
        assert!(!is_cidr, "{cidr} would be accepted by the API server");
    }
    // And the default install does not include it.
    let top = std::fs::read_to_string(Path::new(ROOT).join("webhook-manifests/kustomization.yaml"))
        .expect("kustomization");
    assert!(!top.contains("network-policy"), "{top}");
}

fn kind_and_name(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// Deleting a CRD deletes every object of its kind (and the garbage collector then deletes
/// each MCPServer's Deployment, Service and NetworkPolicy); deleting a namespace deletes
/// everything in it. So `kubectl delete -k` of the mcpguard install, or of any overlay on
/// it, must contain neither a CRD nor a namespace the policy enforces.
#[test]
fn uninstalling_mcpguard_cannot_delete_a_crd_or_the_mcp_namespace() {
    let policy = mcpguard_core::policy::Policy::embedded_default().expect("default policy");
    let baseline =
        mcpguard::cmd::load_policy_file(&Path::new(ROOT).join("policies/mcp-baseline.yaml"))
            .expect("baseline policy");
    let mut mcp_namespaces = policy.spec.namespaces.clone();
    mcp_namespaces.extend(baseline.spec.namespaces.iter().cloned());
    assert_eq!(mcp_namespaces, ["mcp", "mcp-dev"]);
    for dir in [
        "webhook-manifests",
        "webhook-manifests/base",
        "webhook-manifests/overlays/cert-manager",
    ] {
        let Some(docs) = render(dir) else { return };
        let crds: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .map(kind_and_name)
            .collect();
        assert_eq!(crds, Vec::<String>::new(), "{dir} contains a CRD");
        let namespaces: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "Namespace")
            .map(kind_and_name)
            .collect();
        assert_eq!(namespaces, ["Namespace/mcpguard-system"], "{dir}");
        let in_mcp_namespaces: Vec<String> = docs
            .iter()
            .filter(|d| {
                d["metadata"]["namespace"]
                    .as_str()
                    .is_some_and(|ns| mcp_namespaces.iter().any(|m| m == ns))
            })
            .map(kind_and_name)
            .collect();
        assert_eq!(in_mcp_namespaces, Vec::<String>::new(), "{dir}");
    }
}

fn whole_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            {
                // Exact: a whole float below 2^53 converts without loss.
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *value = json!(integer);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(members) => members.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// The CRDs kustomization is the CRDs and nothing else: exactly what `mcpguard crd`
/// prints, with the install's `part-of` label.
#[test]
fn the_crds_kustomization_holds_exactly_the_crds() {
    let Some(docs) = render("webhook-manifests/crds") else {
        return;
    };
    let output = run(&["crd"]);
    let printed = serde_saphyr::from_multiple::<Value>(&String::from_utf8_lossy(&output.stdout))
        .expect("mcpguard crd prints YAML");
    let mut expected: Vec<Value> = printed
        .into_iter()
        .map(|mut crd| {
            crd["metadata"]["labels"] = json!({"app.kubernetes.io/part-of": "mcpguard"});
            crd
        })
        .collect();
    expected.sort_by_key(kind_and_name);
    let mut rendered = docs;
    rendered.sort_by_key(kind_and_name);
    // kustomize writes a whole float (`minimum: 0.0`) as an integer; the API server reads both
    // as the same JSON number.
    expected.iter_mut().for_each(whole_floats_as_integers);
    rendered.iter_mut().for_each(whole_floats_as_integers);
    assert_eq!(
        rendered.iter().map(kind_and_name).collect::<Vec<_>>(),
        [
            "CustomResourceDefinition/mcppolicies.mcpguard.dev",
            "CustomResourceDefinition/mcpservers.mcpguard.dev",
        ]
    );
    assert_eq!(rendered, expected);
}

/// The release bundles `mcpguard bundle PART` prints: (kustomization, committed render).
const DIST: [(&str, &str); 3] = [
    ("webhook-manifests/crds", "dist/crds.yaml"),
    ("webhook-manifests", "dist/mcpguard.yaml"),
    ("webhook-manifests/mcp-namespace", "dist/mcp-namespace.yaml"),
];

/// The binary embeds `dist/`; each file must be what `kubectl kustomize` renders today, the
/// same objects in the same order (compared parsed, so kubectl's YAML layout may differ).
#[test]
fn the_release_bundles_equal_the_kustomize_renders() {
    for (dir, file) in DIST {
        let Some(rendered) = render(dir) else { return };
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect(file);
        let bundled = serde_saphyr::from_multiple::<Value>(&text).expect("bundle parses");
        assert!(
            bundled == rendered,
            "{file} is stale; regenerate with: kubectl kustomize {dir}/ > {file}"
        );
    }
}

/// One place names the image: the file IMAGE, which build/image.sh tags and the manifests
/// deploy, at the crate's version.
#[test]
fn the_manifests_deploy_the_image_the_build_script_tags() {
    let image = std::fs::read_to_string(Path::new(ROOT).join("IMAGE")).expect("IMAGE");
    let image = image.trim();
    assert_eq!(
        image,
        format!("ghcr.io/mcpguard/mcpguard:v{}", env!("CARGO_PKG_VERSION")),
        "the image tag is the crate version"
    );
    let script =
        std::fs::read_to_string(Path::new(ROOT).join("build/image.sh")).expect("build script");
    assert!(
        script.contains("image=\"$(tr -d '[:space:]' < IMAGE)\""),
        "build/image.sh tags the image from IMAGE"
    );
    for dir in [
        "webhook-manifests",
        "webhook-manifests/overlays/cert-manager",
    ] {
        let Some(docs) = render(dir) else { return };
        let deployment: Deployment = find(&docs, "Deployment", "mcpguard");
        let pod = deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod spec");
        let images: Vec<Option<String>> = pod.containers.into_iter().map(|c| c.image).collect();
        assert_eq!(images, [Some(image.to_owned())], "{dir}");
    }
}
