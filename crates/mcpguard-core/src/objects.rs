//! Validation of the other objects mcpguard admits, one validator per kind, which the front
//! door (`crate::admission`) calls by the request's resource:
//! - `MCPServer`s in enforced namespaces ([`validate_server`]): rendered and judged, so a
//!   noncompliant server fails at `kubectl apply`;
//! - `NetworkPolicy`s in enforced namespaces ([`validate_network_policy`]): they are additive,
//!   so one written by anyone could reopen what mcpguard's policies close; only mcpguard's
//!   own, or ones within the allowed peers, are admitted;
//! - `MCPPolicy`s ([`validate_policy`]): judged by the policy loader, whatever the policies
//!   say, and warned about the namespaces they would take from the policies in force.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use serde_json::Value;

use crate::engine::{AUDIT_MODE, AUDIT_POLICY, AUDIT_VIOLATIONS, Context, Decision, Outcome};
use crate::harden::truncate_warning;
use crate::mcpserver::access::{self, SecretAccess};
use crate::mcpserver::crd::MCPServer;
use crate::mcpserver::render::{self, RenderError, SecretVersion};
use crate::policy::{Mode, Policy};
use crate::policy_set::PolicySet;
use crate::redact;
use crate::review::{AdmissionRequest, Operation, ResponseStatus};
use crate::violation::Violation;

pub const MCPSERVER_SPEC: &str = "mcpServerSpec";
pub const MCPSERVER_PODS: &str = "mcpServerPods";
pub const MCPSERVER_NETWORK: &str = "mcpServerNetwork";
pub const NETWORK_POLICY_PEERS: &str = "networkPolicyPeers";
pub const MCPPOLICY_SPEC: &str = "mcpPolicySpec";

/// Whether a request writes the object itself (a CREATE or UPDATE, not a subresource such
/// as `status`): what every validator here judges.
fn is_write(request: &AdmissionRequest) -> bool {
    request.sub_resource().is_empty()
        && matches!(
            request.operation(),
            Some(Operation::Create | Operation::Update)
        )
}

/// The validator of `MCPPolicy` requests. Such objects are cluster-scoped and judged by the
/// policy loader, whatever the policies in force say: a broken policy is refused at
/// `kubectl apply` with the loader's error, the one `mcpguard check --policy` gives for the
/// same document as a file. An admitted one is warned about what it will do to the coverage
/// of the namespaces it claims, against `policies`, the set in force.
pub fn validate_policy(request: &AdmissionRequest, policies: &PolicySet) -> Decision {
    if !is_write(request) {
        return skipped();
    }
    let object = match changed_object(request) {
        Ok(object) => object,
        Err(decision) => return *decision,
    };
    match crate::policy::from_object(object) {
        Ok(policy) => {
            let mut warnings = coverage_warnings(policies, object);
            warnings.extend(
                crate::exceptions::trust_warnings(&policy)
                    .into_iter()
                    .map(|warning| truncate_warning(format!("mcpguard: {warning}"))),
            );
            Decision {
                outcome: Outcome::Allowed,
                warnings,
                ..skipped()
            }
        }
        Err(err) => {
            let mut decision = skipped();
            decision.outcome = Outcome::Denied;
            decision.status = Some(ResponseStatus::invalid(err.to_string()));
            decision
                .audit_annotations
                .insert(AUDIT_VIOLATIONS.into(), MCPPOLICY_SPEC.into());
            decision.violations = vec![Violation {
                check: MCPPOLICY_SPEC.into(),
                reason: "invalid MCPPolicy".into(),
                detail: err.to_string(),
                fields: Vec::new(),
            }];
            decision
        }
    }
}

/// For an admitted MCPPolicy `object`: what it will do to the coverage of the namespaces it
/// claims, against the policies in force.
fn coverage_warnings(policies: &PolicySet, object: &Value) -> Vec<String> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let namespaces: Vec<String> = object
        .pointer("/spec/namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ns| ns.as_str().map(str::to_owned))
        .collect();
    policies.claim_warnings(
        text("/metadata/name").unwrap_or_default(),
        text("/metadata/creationTimestamp"),
        &namespaces,
    )
}

/// Whether the policy judges a namespaced object of this request: a write of the object
/// itself in a namespace it enforces.
fn in_scope(request: &AdmissionRequest, context: Context<'_>) -> bool {
    let enforced = request
        .namespace
        .as_deref()
        .is_some_and(|ns| context.policy.enforces_namespace(ns));
    enforced && is_write(request)
}

/// The object to judge, or the decision without judging: a missing object is invalid, and
/// an update that leaves the spec alone (status, labels, finalizers) is nothing policy
/// judges.
fn changed_object(request: &AdmissionRequest) -> Result<&Value, Box<Decision>> {
    let Some(object) = &request.object else {
        return Err(Box::new(invalid("request.object is missing".into())));
    };
    let unchanged_spec = request
        .old_object
        .as_ref()
        .is_some_and(|old| old.get("spec") == object.get("spec"));
    if unchanged_spec {
        return Err(Box::new(skipped()));
    }
    Ok(object)
}

/// The validator of `MCPServer` requests: a server whose spec cannot work, whose pods the
/// policy would deny, or whose network reaches peers the policy does not allow, is judged by
/// the policy's mode like a pod.
///
/// The Secrets it names must be ones its author may read (`access`): a server whose author
/// may not is denied whatever the policy's mode, since an MCPServer must not be a way to
/// Secrets its author cannot reach.
pub fn validate_server(
    request: &AdmissionRequest,
    context: Context<'_>,
    access: SecretAccess<'_>,
) -> Decision {
    let mut refused_access = Vec::new();
    let mut offline_notes = Vec::new();
    let mut decision = validate_with(request, context, &mut |object, request, context| {
        let mut violations = judge_server(object, request, context)?;
        let names = server_of(object, request)
            .map(|server| access::references_to_check(&server))
            .unwrap_or_default();
        let namespace = request.namespace.as_deref().unwrap_or("");
        match access {
            SecretAccess::Answered(answers) => {
                let user = request.user_info.username.as_deref().unwrap_or("");
                refused_access = access::access_violations(user, namespace, &names, answers);
                violations.extend(refused_access.iter().cloned());
            }
            SecretAccess::Offline => offline_notes = access::offline_notes(&names, namespace),
        }
        Ok(violations)
    });
    if !refused_access.is_empty() && decision.outcome != Outcome::Denied {
        decision = deny(request, context, decision.violations);
    }
    decision.warnings.extend(offline_notes);
    decision
}

/// The Secrets and ConfigMaps [`validate_server`] will check for `request`: none when it does not judge
/// the request (out of scope, spec unchanged, not an MCPServer it can read).
pub fn server_secrets_to_ask(
    request: &AdmissionRequest,
    policy: &Policy,
) -> Vec<access::Reference> {
    if !request
        .namespace
        .as_deref()
        .is_some_and(|ns| policy.enforces_namespace(ns))
        || !is_write(request)
    {
        return Vec::new();
    }
    match changed_object(request) {
        Ok(object) => server_of(object, request)
            .map(|server| access::references_to_check(&server))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The MCPServer of a request's object, in the request's namespace when it names none.
fn server_of(object: &Value, request: &AdmissionRequest) -> Option<MCPServer> {
    let mut server: MCPServer = redact::decode(object, "").ok()?;
    if server.metadata.namespace.is_none() {
        server.metadata.namespace = request.namespace.clone();
    }
    Some(server)
}

/// The validator of `NetworkPolicy` requests: only mcpguard's own, or ones whose peers the
/// policy allows, pass.
pub fn validate_network_policy(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    validate_with(request, context, &mut judge_network_policy)
}

/// How one kind's object is judged: its violations, or why it cannot be read.
type Judge<'j> =
    &'j mut dyn FnMut(&Value, &AdmissionRequest, Context<'_>) -> Result<Vec<Violation>, String>;

/// A namespaced object in scope, judged by `judge` when its spec changed.
fn validate_with(request: &AdmissionRequest, context: Context<'_>, judge: Judge<'_>) -> Decision {
    if !in_scope(request, context) {
        return skipped();
    }
    let object = match changed_object(request) {
        Ok(object) => object,
        Err(decision) => return *decision,
    };
    match judge(object, request, context) {
        Ok(violations) => decide(request, context, violations),
        Err(message) => invalid(message),
    }
}

fn judge_server(
    object: &Value,
    request: &AdmissionRequest,
    context: Context<'_>,
) -> Result<Vec<Violation>, String> {
    let mut server: MCPServer =
        redact::decode(object, "").map_err(|e| format!("not a valid MCPServer: {e}"))?;
    if server.metadata.namespace.is_none() {
        server.metadata.namespace = request.namespace.clone();
    }
    // Secret versions are unknown at admission; whether they exist is the reconciler's
    // concern (condition SecretsResolved), not a reason to refuse the object.
    let secrets: Vec<SecretVersion> = render::referenced_secrets(&server)
        .into_iter()
        .map(|(name, key)| SecretVersion {
            name,
            uid: String::new(),
            resource_version: String::new(),
            keys: key.into_iter().collect(),
        })
        .collect();
    let (check, reason, detail) = match render::render(&server, context, &secrets, &[]) {
        Ok(_) => return Ok(Vec::new()),
        Err(RenderError::Invalid(detail)) => (MCPSERVER_SPEC, "invalid MCPServer", detail),
        Err(RenderError::Denied(detail)) => {
            (MCPSERVER_PODS, "MCP server pods would be rejected", detail)
        }
        Err(RenderError::PeerNotAllowed(detail)) => {
            (MCPSERVER_NETWORK, "network peer not allowed", detail)
        }
        Err(RenderError::EgressNotAllowed(detail)) => {
            (MCPSERVER_NETWORK, "egress not allowed", detail)
        }
    };
    Ok(vec![Violation {
        check: check.into(),
        reason: reason.into(),
        detail,
        fields: Vec::new(),
    }])
}

fn judge_network_policy(
    object: &Value,
    request: &AdmissionRequest,
    context: Context<'_>,
) -> Result<Vec<Violation>, String> {
    let network = &context.policy.spec.network;
    let username = request.user_info.username.as_deref().unwrap_or("");
    if network.controller_users.iter().any(|user| user == username) {
        return Ok(Vec::new());
    }
    let policy: NetworkPolicy =
        redact::decode(object, "").map_err(|e| format!("not a valid NetworkPolicy: {e}"))?;
    let allowed: Vec<Value> = network
        .allowed_extra_peers
        .iter()
        .filter_map(|peer| serde_json::from_value::<NetworkPolicyPeer>(peer.clone()).ok())
        .filter_map(|peer| serde_json::to_value(peer).ok())
        .collect();
    let spec = policy.spec.unwrap_or_default();
    let mut problems = Vec::new();
    let mut judge_rules = |direction: &str, rules: Vec<Option<Vec<NetworkPolicyPeer>>>| {
        for (index, peers) in rules.into_iter().enumerate() {
            match peers {
                None => problems.push(format!("{direction}[{index}] allows every peer")),
                Some(peers) if peers.is_empty() => {
                    problems.push(format!("{direction}[{index}] allows every peer"))
                }
                Some(peers) => {
                    for peer in peers {
                        let value = serde_json::to_value(&peer).unwrap_or(Value::Null);
                        if !allowed.contains(&value) {
                            problems
                                .push(format!("{direction}[{index}] peer {value} is not allowed"));
                        }
                    }
                }
            }
        }
    };
    judge_rules(
        "ingress",
        spec.ingress
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.from)
            .collect(),
    );
    judge_rules(
        "egress",
        spec.egress
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.to)
            .collect(),
    );
    if problems.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Violation {
        check: NETWORK_POLICY_PEERS.into(),
        reason: "NetworkPolicies are additive".into(),
        detail: format!(
            "{}; only mcpguard's own NetworkPolicies and peers in spec.network.allowedExtraPeers are admitted",
            problems.join(", ")
        ),
        fields: Vec::new(),
    }])
}

fn decide(
    request: &AdmissionRequest,
    context: Context<'_>,
    violations: Vec<Violation>,
) -> Decision {
    let mode = context
        .policy
        .mode_for(request.namespace.as_deref().unwrap_or(""));
    decide_in_mode(request, context, violations, mode)
}

/// The decision on `violations` as under `enforce`, whatever the namespace's mode.
fn deny(request: &AdmissionRequest, context: Context<'_>, violations: Vec<Violation>) -> Decision {
    decide_in_mode(request, context, violations, Mode::Enforce)
}

fn decide_in_mode(
    request: &AdmissionRequest,
    context: Context<'_>,
    violations: Vec<Violation>,
    mode: Mode,
) -> Decision {
    let policy = &context.policy.name;
    let mut decision = skipped();
    decision.outcome = Outcome::Allowed;
    decision
        .audit_annotations
        .insert(AUDIT_POLICY.into(), policy.clone());
    if violations.is_empty() {
        return decision;
    }
    let ids: Vec<&str> = violations.iter().map(|v| v.check.as_str()).collect();
    decision
        .audit_annotations
        .insert(AUDIT_VIOLATIONS.into(), ids.join(","));
    let resource = format!("{}.{}", request.resource.resource, request.resource.group);
    let name = request.display_name();
    match mode {
        Mode::Enforce => {
            decision.outcome = Outcome::Denied;
            decision.status = Some(ResponseStatus::forbidden(format!(
                "{resource} {name:?} is forbidden: {}",
                crate::violation::violation_summary(policy, &violations)
            )));
        }
        mode @ (Mode::Warn | Mode::Audit) => {
            decision
                .audit_annotations
                .insert(AUDIT_MODE.into(), mode.as_str().into());
            if mode == Mode::Warn {
                decision.outcome = Outcome::Warned;
                decision.warnings = violations
                    .iter()
                    .map(|v| {
                        truncate_warning(format!("mcpguard: would violate policy {policy:?}: {v}"))
                    })
                    .collect();
            } else {
                decision.outcome = Outcome::Audited;
            }
        }
    }
    decision.violations = violations;
    decision
}

fn skipped() -> Decision {
    crate::engine::Decision::skipped()
}

fn invalid(message: String) -> Decision {
    crate::engine::Decision::invalid_request(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, parse_str};
    use crate::runtime_class::StaticRuntimeClasses;
    use serde_json::json;

    fn policy(extra: &str) -> Policy {
        let text = include_str!("../../../policies/mcp-restricted.yaml")
            .replace("  exceptions: []\n", "")
            .replace(
                "maxResources: {}              # e.g. {cpu: \"2\", memory: 4Gi}",
                "maxResources: {cpu: \"2\"}",
            );
        parse_str(&format!("{text}{extra}"), "test.yaml").expect("policy")
    }

    fn request(group: &str, resource: &str, object: Value, username: &str) -> AdmissionRequest {
        serde_json::from_value(json!({
            "uid": "u1",
            "kind": {"group": group, "version": "v1", "kind": "X"},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "name": "x",
            "namespace": "mcp",
            "operation": "CREATE",
            "userInfo": {"username": username},
            "object": object,
        }))
        .expect("request")
    }

    /// The validator of the request's kind (the front door's routing is tested with it, in
    /// `admission/tests.rs`).
    fn judge(policy: &Policy, request: &AdmissionRequest) -> Decision {
        let classes = StaticRuntimeClasses::default();
        let context = Context {
            policy,
            runtime_classes: &classes,
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        // The author may read every Secret the server names, unless a test says otherwise.
        let allowed: std::collections::BTreeMap<access::Reference, access::Access> =
            server_secrets_to_ask(request, policy)
                .into_iter()
                .map(|name| (name, access::Access::Allowed))
                .collect();
        match request.resource.resource.as_str() {
            "mcpservers" => validate_server(request, context, SecretAccess::Answered(&allowed)),
            "networkpolicies" => validate_network_policy(request, context),
            other => panic!("no validator here for {other}"),
        }
    }

    fn server(spec: Value) -> Value {
        json!({"apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPServer",
               "metadata": {"name": "x", "namespace": "mcp", "uid": "s1"}, "spec": spec})
    }

    #[test]
    fn a_compliant_server_is_admitted_and_a_broken_one_denied_with_the_reason() {
        let policy = policy("");
        let ok = request(
            "mcpguard.dev",
            "mcpservers",
            server(json!({"image": "ghcr.io/x/y:1"})),
            "jane",
        );
        let decision = judge(&policy, &ok);
        assert_eq!(
            (decision.outcome, decision.violations.len()),
            (Outcome::Allowed, 0)
        );

        let stdio = request(
            "mcpguard.dev",
            "mcpservers",
            server(json!({"image": "ghcr.io/x/y:1", "transport": "stdio"})),
            "jane",
        );
        let decision = judge(&policy, &stdio);
        assert_eq!(decision.outcome, Outcome::Denied);
        assert_eq!(
            decision.status.map(|s| s.message),
            Some("mcpservers.mcpguard.dev \"x\" is forbidden: violates mcpguard policy \"mcp-restricted\": invalid MCPServer (an image with transport stdio runs behind mcpguard's bridge, which needs the policy's spec.mutate.bridgeImage (mcpguard's image, pinned by digest))".to_owned())
        );
        assert_eq!(decision.audit_annotations[AUDIT_VIOLATIONS], MCPSERVER_SPEC);
    }

    #[test]
    fn applying_an_mcppolicy_warns_about_exceptions_that_trust_the_author() {
        let policy_object = |criteria: Value| {
            json!({
                "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy",
                "metadata": {"name": "team"},
                "spec": {
                    "namespaces": ["team-a"],
                    "podSecurity": {"level": "restricted", "version": "latest"},
                    "exceptions": [{"name": "browsers", "reason": "SEC-1", "match": criteria,
                                    "checks": ["capabilities_restricted"]}],
                },
            })
        };
        let policies = PolicySet::single(std::sync::Arc::new(policy("")));
        let mut write = request(
            "mcpguard.dev",
            "mcppolicies",
            policy_object(json!({"serviceAccounts": ["browser"]})),
            "admin",
        );
        write.namespace = None;
        let decision = validate_policy(&write, &policies);
        assert_eq!(decision.outcome, Outcome::Allowed);
        assert_eq!(
            decision.warnings,
            [
                "mcpguard: exception \"browsers\" waives Pod Security check capabilities_restricted on author-chosen fields only (match.serviceAccounts): any pod author in its namespaces can match it; add match.users/groups or pin match.images by digest"
            ]
        );
        write.object = serde_json::from_value(policy_object(
            json!({"serviceAccounts": ["browser"], "groups": ["platform"]}),
        ))
        .ok();
        assert_eq!(
            validate_policy(&write, &policies).warnings,
            Vec::<String>::new()
        );
    }

    /// The confused deputy: an author who may create MCPServers but not read a Secret.
    fn deputy_request(username: &str) -> AdmissionRequest {
        request(
            "mcpguard.dev",
            "mcpservers",
            server(json!({
                "image": "docker.io/attacker/exfil:1",
                "envFrom": [{"secretRef": {"name": "argocd-repo-creds"}}],
                "files": [{"secretRef": {"name": "db-admin"}}],
            })),
            username,
        )
    }

    fn judge_with_access(
        policy: &Policy,
        request: &AdmissionRequest,
        access: SecretAccess<'_>,
    ) -> Decision {
        let classes = StaticRuntimeClasses::default();
        let context = Context {
            policy,
            runtime_classes: &classes,
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        validate_server(request, context, access)
    }

    #[test]
    fn a_server_naming_a_secret_its_author_may_not_read_is_denied_by_name() {
        let request = deputy_request("intern");
        assert_eq!(
            server_secrets_to_ask(&request, &policy("")),
            [
                access::Reference::secret("argocd-repo-creds"),
                access::Reference::secret("db-admin")
            ]
        );
        let answers = std::collections::BTreeMap::from([
            (
                access::Reference::secret("argocd-repo-creds"),
                access::Access::Denied,
            ),
            (
                access::Reference::secret("db-admin"),
                access::Access::Allowed,
            ),
        ]);
        let decision = judge_with_access(&policy(""), &request, SecretAccess::Answered(&answers));
        assert_eq!(decision.outcome, Outcome::Denied);
        assert_eq!(
            decision.status.map(|s| s.message),
            Some("mcpservers.mcpguard.dev \"x\" is forbidden: violates mcpguard policy \"mcp-restricted\": author may not read a referenced Secret (user \"intern\" may not get Secret \"argocd-repo-creds\" in namespace \"mcp\", so an MCPServer of theirs may not read it either)".to_owned())
        );
        assert_eq!(
            decision.audit_annotations[AUDIT_VIOLATIONS],
            access::MCPSERVER_SECRET_ACCESS
        );
        // Allowed for both: admitted.
        let allowed = std::collections::BTreeMap::from([
            (
                access::Reference::secret("argocd-repo-creds"),
                access::Access::Allowed,
            ),
            (
                access::Reference::secret("db-admin"),
                access::Access::Allowed,
            ),
        ]);
        let decision = judge_with_access(&policy(""), &request, SecretAccess::Answered(&allowed));
        assert_eq!(decision.outcome, Outcome::Allowed);
    }

    #[test]
    fn a_refused_secret_is_denied_even_where_the_policy_only_warns() {
        let warn = policy("  namespaceModes: {mcp: warn}\n");
        let answers = std::collections::BTreeMap::from([(
            access::Reference::secret("argocd-repo-creds"),
            access::Access::Unverified("the API server did not answer".into()),
        )]);
        let decision = judge_with_access(
            &warn,
            &deputy_request("intern"),
            SecretAccess::Answered(&answers),
        );
        assert_eq!(decision.outcome, Outcome::Denied);
        let checks: Vec<&str> = decision
            .violations
            .iter()
            .map(|v| v.check.as_str())
            .collect();
        assert_eq!(
            checks,
            [
                access::MCPSERVER_SECRET_ACCESS,
                access::MCPSERVER_SECRET_ACCESS
            ]
        );
        // Other findings keep the namespace's mode.
        let stdio = request(
            "mcpguard.dev",
            "mcpservers",
            server(json!({"image": "ghcr.io/x/y:1", "transport": "stdio"})),
            "jane",
        );
        let decision = judge_with_access(
            &warn,
            &stdio,
            SecretAccess::Answered(&std::collections::BTreeMap::new()),
        );
        assert_eq!(decision.outcome, Outcome::Warned);
    }

    #[test]
    fn offline_the_references_are_reported_not_refused() {
        let decision = judge_with_access(
            &policy(""),
            &deputy_request("intern"),
            SecretAccess::Offline,
        );
        assert_eq!(decision.outcome, Outcome::Allowed);
        assert_eq!(
            decision.warnings,
            [
                "not verified offline: the webhook will ask whether the author may get Secret \"argocd-repo-creds\" in namespace \"mcp\"",
                "not verified offline: the webhook will ask whether the author may get Secret \"db-admin\" in namespace \"mcp\"",
            ]
        );
    }

    #[test]
    fn secrets_are_asked_about_only_for_a_changed_spec_in_an_enforced_namespace() {
        let policy = policy("");
        let mut elsewhere = deputy_request("intern");
        elsewhere.namespace = Some("default".into());
        assert_eq!(
            server_secrets_to_ask(&elsewhere, &policy),
            Vec::<access::Reference>::new()
        );
        let mut relabelled = deputy_request("intern");
        relabelled.operation = "UPDATE".into();
        relabelled.old_object = relabelled.object.clone();
        assert_eq!(
            server_secrets_to_ask(&relabelled, &policy),
            Vec::<access::Reference>::new()
        );
        // An update that changes only the image still asks: it redirects the Secrets.
        let mut redirected = deputy_request("intern");
        redirected.operation = "UPDATE".into();
        let mut old = server(json!({
            "image": "ghcr.io/acme/honest:1",
            "envFrom": [{"secretRef": {"name": "argocd-repo-creds"}}],
            "files": [{"secretRef": {"name": "db-admin"}}],
        }));
        old["metadata"]["name"] = json!("x");
        redirected.old_object = serde_json::from_value(old).ok();
        assert_eq!(
            server_secrets_to_ask(&redirected, &policy),
            [
                access::Reference::secret("argocd-repo-creds"),
                access::Reference::secret("db-admin")
            ]
        );
    }

    #[test]
    fn a_server_whose_pods_would_be_denied_is_denied_at_apply() {
        let policy = policy("");
        let greedy = request(
            "mcpguard.dev",
            "mcpservers",
            server(json!({"image": "ghcr.io/x/y:1", "resources": {"limits": {"cpu": "4"}}})),
            "jane",
        );
        let decision = judge(&policy, &greedy);
        assert_eq!(decision.outcome, Outcome::Denied);
        assert_eq!(decision.violations[0].check, MCPSERVER_PODS);
        assert!(
            decision.violations[0]
                .detail
                .starts_with("the pods of MCPServer \"x\" would be rejected: violates mcpguard policy \"mcp-restricted\": resources above policy ceiling"),
            "{}",
            decision.violations[0].detail
        );
    }

    #[test]
    fn network_extras_must_be_allowed_by_the_policy() {
        let metadata_endpoint = json!({"ipBlock": {"cidr": "169.254.169.254/32"}});
        let spec = json!({"image": "ghcr.io/x/y:1", "network": {"egressTo": [metadata_endpoint]}});
        let decision = judge(
            &policy(""),
            &request("mcpguard.dev", "mcpservers", server(spec.clone()), "jane"),
        );
        assert_eq!(decision.violations[0].check, MCPSERVER_NETWORK);
        let allowing =
            policy("  network:\n    allowedExtraPeers: [{ipBlock: {cidr: 169.254.169.254/32}}]\n");
        let decision = judge(
            &allowing,
            &request("mcpguard.dev", "mcpservers", server(spec), "jane"),
        );
        assert_eq!(decision.outcome, Outcome::Allowed);
    }

    #[test]
    fn warn_mode_admits_with_a_warning_and_unchanged_specs_are_not_judged() {
        let warn = policy("  namespaceModes: {mcp: warn}\n");
        let stdio = server(json!({"image": "ghcr.io/x/y:1", "transport": "stdio"}));
        let decision = judge(
            &warn,
            &request("mcpguard.dev", "mcpservers", stdio.clone(), "jane"),
        );
        assert_eq!(decision.outcome, Outcome::Warned);
        assert_eq!(decision.warnings.len(), 1);
        assert!(
            decision.warnings[0].starts_with(
                "mcpguard: would violate policy \"mcp-restricted\": invalid MCPServer"
            )
        );

        let mut update = request("mcpguard.dev", "mcpservers", stdio.clone(), "jane");
        update.operation = "UPDATE".into();
        let mut old = stdio;
        old["metadata"]["labels"] = json!({"team": "a"});
        update.old_object = Some(old.into());
        assert_eq!(judge(&policy(""), &update).outcome, Outcome::Skipped);
    }

    #[test]
    fn network_policies_are_admitted_from_mcpguard_or_within_the_allowed_peers() {
        let open_egress = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "x", "namespace": "mcp"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}, {}]},
        });
        let mcpguard = "system:serviceaccount:mcpguard-system:mcpguard";
        let decision = judge(
            &policy(""),
            &request(
                "networking.k8s.io",
                "networkpolicies",
                open_egress.clone(),
                mcpguard,
            ),
        );
        assert_eq!(decision.outcome, Outcome::Allowed);

        let decision = judge(
            &policy(""),
            &request("networking.k8s.io", "networkpolicies", open_egress, "jane"),
        );
        assert_eq!(decision.outcome, Outcome::Denied);
        assert_eq!(
            decision.violations[0].detail,
            "egress[0] peer {\"ipBlock\":{\"cidr\":\"10.0.0.0/8\"}} is not allowed, egress[1] allows every peer; only mcpguard's own NetworkPolicies and peers in spec.network.allowedExtraPeers are admitted"
        );

        let allowed_peer = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "x", "namespace": "mcp"},
            "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}]}]},
        });
        let allowing =
            policy("  network:\n    allowedExtraPeers: [{ipBlock: {cidr: 10.1.2.3/32}}]\n");
        let decision = judge(
            &allowing,
            &request("networking.k8s.io", "networkpolicies", allowed_peer, "jane"),
        );
        assert_eq!(decision.outcome, Outcome::Allowed);
    }
}
