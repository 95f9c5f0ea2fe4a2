//! Loading policies: the shipped files load, and every kind of mistake is refused with the
//! source, the field path and the problem.

use super::*;
use crate::pss::{Level, Version};

const RESTRICTED: &str = include_str!("../../../../policies/mcp-restricted.yaml");
const BASELINE: &str = include_str!("../../../../policies/mcp-baseline.yaml");

/// A valid policy with `spec` replaced by the given block (indented two spaces).
fn with_spec(spec: &str) -> String {
    format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
}

const MINIMAL_SPEC: &str =
    "  namespaces: [mcp]\n  podSecurity: {level: restricted, version: latest}\n";

/// The error's Display string for a policy that must be refused.
fn refusal(text: &str) -> String {
    match parse_str(text, "test.yaml") {
        Ok(policy) => panic!("policy {:?} was accepted", policy.name),
        Err(err) => err.to_string(),
    }
}

// ---- accepted ------------------------------------------------------------------------------

#[test]
fn the_shipped_restricted_policy_loads() {
    let policy = parse_str(RESTRICTED, "mcp-restricted.yaml").unwrap();
    assert_eq!(policy.name, "mcp-restricted");
    assert_eq!(policy.spec.namespaces, vec!["mcp".to_owned()]);
    assert_eq!(policy.spec.pod_security.level, Level::Restricted);
    assert_eq!(policy.spec.pod_security.version, Version::Latest);
    let mutate = &policy.spec.mutate;
    assert_eq!(mutate.runtime_class_name, None);
    assert_eq!(mutate.image_pull_policy, ImagePullPolicy::AlwaysExceptNever);
    assert_eq!(
        mutate.automount_service_account_token,
        ServiceAccountToken::KeepForNamedServiceAccounts
    );
    assert!(mutate.tolerations.is_empty());
    assert!(mutate.affinity.is_none());
    assert_eq!(
        serde_json::to_value(&mutate.container_security_context).unwrap(),
        serde_json::json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert!(policy.ceilings.is_empty());
    assert!(policy.spec.validate.forbid_secret_literals);
    assert!(policy.enforces_namespace("mcp"));
    assert!(!policy.enforces_namespace("default"));
}

#[test]
fn the_embedded_default_is_the_restricted_file() {
    let policy = Policy::embedded_default().unwrap();
    assert_eq!(policy.name, "mcp-restricted");
    assert_eq!(DEFAULT_POLICY_YAML, RESTRICTED);
}

#[test]
fn the_shipped_baseline_policy_loads() {
    let policy = parse_str(BASELINE, "mcp-baseline.yaml").unwrap();
    assert_eq!(policy.name, "mcp-baseline");
    // Its own namespace, as the README shows: applied unchanged it must not take `mcp`
    // over from the default policy.
    assert_eq!(policy.spec.namespaces, ["mcp-dev"]);
    assert_eq!(policy.spec.pod_security.level, Level::Baseline);
    let ceilings: Vec<(&str, &str)> = policy
        .ceilings
        .iter()
        .map(|c| (c.resource.as_str(), c.raw.as_str()))
        .collect();
    assert_eq!(ceilings, vec![("cpu", "4"), ("memory", "8Gi")]);
    assert_eq!(policy.spec.mutate.image_pull_policy, ImagePullPolicy::Leave);
    assert_eq!(
        policy.spec.mutate.automount_service_account_token,
        ServiceAccountToken::KeepForNamedServiceAccounts
    );
}

#[test]
fn a_minimal_policy_loads_with_defaults() {
    let policy = parse_str(&with_spec(MINIMAL_SPEC), "test.yaml").unwrap();
    assert!(policy.spec.mutate.container_security_context.is_none());
    assert!(policy.spec.validate.allowed_registries.is_empty());
    assert!(!policy.spec.validate.require_runtime_class);
    assert!(policy.spec.validate.forbid_secret_literals);
    // The documented defaults of the mutation settings that have one.
    assert_eq!(policy.spec.mutate.image_pull_policy, ImagePullPolicy::Leave);
    assert_eq!(
        policy.spec.mutate.automount_service_account_token,
        ServiceAccountToken::KeepForNamedServiceAccounts
    );
}

#[test]
fn every_pull_and_token_setting_loads() {
    for (pull, token, want_pull, want_token) in [
        (
            "always",
            "remove",
            ImagePullPolicy::Always,
            ServiceAccountToken::Remove,
        ),
        (
            "alwaysExceptNever",
            "keepForNamedServiceAccounts",
            ImagePullPolicy::AlwaysExceptNever,
            ServiceAccountToken::KeepForNamedServiceAccounts,
        ),
        (
            "leave",
            "leave",
            ImagePullPolicy::Leave,
            ServiceAccountToken::Leave,
        ),
    ] {
        let text = with_spec(&format!(
            "{MINIMAL_SPEC}  mutate:\n    imagePullPolicy: {pull}\n    automountServiceAccountToken: {token}\n"
        ));
        let policy = parse_str(&text, "test.yaml").unwrap();
        assert_eq!(policy.spec.mutate.image_pull_policy, want_pull);
        assert_eq!(
            policy.spec.mutate.automount_service_account_token,
            want_token
        );
    }
}

#[test]
fn a_json_policy_loads() {
    let json = r#"{"apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy", "metadata": {"name": "j"},
        "spec": {"namespaces": ["mcp", "tools"], "podSecurity": {"level": "baseline", "version": "v1.25"}}}"#;
    let policy = parse_str(json, "j.json").unwrap();
    assert_eq!(policy.spec.pod_security.version, Version::Minor(25));
    assert!(policy.enforces_namespace("tools"));
}

#[test]
fn require_runtime_class_with_a_runtime_class_name_loads() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{runtimeClassName: gvisor}}\n  validate: {{requireRuntimeClass: true}}\n"
    ));
    let policy = parse_str(&text, "test.yaml").unwrap();
    assert_eq!(
        policy.spec.mutate.runtime_class_name.as_deref(),
        Some("gvisor")
    );
}

#[test]
fn a_default_at_its_ceiling_loads() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{requests: {{memory: 4Gi}}}}}}\n  validate: {{maxResources: {{memory: 4096Mi}}}}\n"
    ));
    assert!(parse_str(&text, "test.yaml").is_ok());
}

// ---- refused -------------------------------------------------------------------------------

#[test]
fn an_unknown_top_level_spec_field_is_refused() {
    let text = with_spec(&format!("{MINIMAL_SPEC}  mutat: {{}}\n"));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutat: unknown field `mutat`, expected one of `namespaces`, `podSecurity`, `mutate`, `validate`, `mode`, `namespaceModes`, `exceptions`, `network`"
    );
}

#[test]
fn an_unknown_field_inside_the_kubernetes_typed_container_context_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    containerSecurityContext:\n      capabilities: {{drop: [ALL], dorp: [NET_RAW]}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.containerSecurityContext.capabilities.dorp: unknown field"
    );
}

#[test]
fn an_unknown_field_at_the_top_of_the_container_context_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    containerSecurityContext: {{runAsUsr: 1000}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.containerSecurityContext.runAsUsr: unknown field"
    );
}

#[test]
fn an_unknown_field_in_a_toleration_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    tolerations: [{{key: a, operator: Exists}}, {{key: b, efect: NoSchedule}}]\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.tolerations[1].efect: unknown field"
    );
}

#[test]
fn a_wrong_type_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    containerSecurityContext: {{runAsUser: root}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.containerSecurityContext.runAsUser: invalid type: string, expected i64"
    );
}

#[test]
fn a_kubernetes_pull_policy_value_is_refused_with_the_choices() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    imagePullPolicy: Always\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.imagePullPolicy: unknown variant, expected one of `always`, `alwaysExceptNever`, `leave`"
    );
}

#[test]
fn a_boolean_token_setting_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate:\n    automountServiceAccountToken: false\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.automountServiceAccountToken: invalid type: boolean, expected string or map"
    );
}

#[test]
fn an_unknown_level_is_refused() {
    let text = with_spec("  namespaces: [mcp]\n  podSecurity: {level: strict, version: latest}\n");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.podSecurity.level: unknown variant, expected one of `privileged`, `baseline`, `restricted`"
    );
}

#[test]
fn a_version_newer_than_the_newest_checks_is_taken_as_psa_takes_it() {
    let text =
        with_spec("  namespaces: [mcp]\n  podSecurity: {level: restricted, version: v1.99}\n");
    let policy = parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"));
    assert_eq!(
        policy.spec.pod_security.version,
        crate::pss::Version::Minor(99)
    );
}

#[test]
fn a_malformed_version_is_refused() {
    let text =
        with_spec("  namespaces: [mcp]\n  podSecurity: {level: restricted, version: \"1.25\"}\n");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.podSecurity.version: invalid Pod Security Standards version \"<withheld>\": must be \"latest\" or \"v1.N\""
    );
}

#[test]
fn an_unquoted_numeric_version_is_refused() {
    let text =
        with_spec("  namespaces: [mcp]\n  podSecurity: {level: restricted, version: 1.25}\n");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.podSecurity.version: invalid type: floating point, expected a string"
    );
}

#[test]
fn an_invalid_quantity_in_max_resources_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  validate: {{maxResources: {{cpu: 2x}}}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.validate.maxResources.cpu: invalid quantity \"2x\": quantity parsing failed"
    );
}

#[test]
fn an_empty_quantity_in_max_resources_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  validate: {{maxResources: {{memory: \"\"}}}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.validate.maxResources.memory: invalid quantity \"\""
    );
}

#[test]
fn an_invalid_default_request_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{requests: {{memory: lots}}}}}}\n"
    ));
    assert!(
        refusal(&text).starts_with(
            "policy test.yaml: spec.mutate.resources.requests.memory: invalid quantity \"lots\""
        ),
        "{}",
        refusal(&text)
    );
}

#[test]
fn a_default_request_above_the_ceiling_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{requests: {{memory: 8Gi}}}}}}\n  validate: {{maxResources: {{memory: 4Gi}}}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.resources.requests.memory: default 8Gi is above validate.maxResources.memory (4Gi): every defaulted pod would be denied"
    );
}

#[test]
fn a_default_limit_above_the_ceiling_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{limits: {{cpu: 2001m}}}}}}\n  validate: {{maxResources: {{cpu: \"2\"}}}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.resources.limits.cpu: default 2001m is above validate.maxResources.cpu (2): every defaulted pod would be denied"
    );
}

#[test]
fn a_default_request_above_the_default_limit_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{requests: {{memory: 2Gi}}, limits: {{memory: 1Gi}}}}}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.mutate.resources.requests.memory: default request 2Gi is above the default limit 1Gi"
    );
}

#[test]
fn require_runtime_class_without_a_runtime_class_name_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  validate: {{requireRuntimeClass: true}}\n"
    ));
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.validate.requireRuntimeClass: requires spec.mutate.runtimeClassName to name the RuntimeClass pods must use"
    );
}

#[test]
fn a_protected_namespace_is_refused() {
    let text = with_spec(
        "  namespaces: [mcp, kube-system]\n  podSecurity: {level: restricted, version: latest}\n",
    );
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.namespaces[1]: namespace \"kube-system\" can never be enforced: a failing webhook there would lock out the control plane or mcpguard itself (protected: kube-system, kube-public, kube-node-lease, mcpguard-system)"
    );
}

#[test]
fn every_protected_namespace_is_refused() {
    for namespace in PROTECTED_NAMESPACES {
        let text = with_spec(&format!(
            "  namespaces: [{namespace}]\n  podSecurity: {{level: restricted, version: latest}}\n"
        ));
        let err = parse_str(&text, "test.yaml").unwrap_err();
        assert_eq!(err.path, "spec.namespaces[0]", "{namespace}");
    }
}

#[test]
fn an_empty_namespace_list_is_refused() {
    let text = with_spec("  namespaces: []\n  podSecurity: {level: restricted, version: latest}\n");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.namespaces: must list at least one namespace to enforce"
    );
}

#[test]
fn a_duplicate_namespace_is_refused() {
    let text = with_spec(
        "  namespaces: [mcp, tools, mcp]\n  podSecurity: {level: restricted, version: latest}\n",
    );
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.namespaces[2]: namespace \"mcp\" is listed twice"
    );
}

#[test]
fn an_invalid_namespace_name_is_refused() {
    let text =
        with_spec("  namespaces: [MCP]\n  podSecurity: {level: restricted, version: latest}\n");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: spec.namespaces[0]: namespace \"MCP\" is not a valid name (lowercase letters, digits, '-' and '.', at most 63 characters, starting and ending alphanumeric)"
    );
}

#[test]
fn a_wrong_api_version_is_refused() {
    let text = with_spec(MINIMAL_SPEC).replace("mcpguard.dev/v1alpha1", "mcpguard.dev/v1");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: apiVersion: must be \"mcpguard.dev/v1alpha1\", got \"mcpguard.dev/v1\""
    );
}

#[test]
fn a_wrong_kind_is_refused() {
    let text = with_spec(MINIMAL_SPEC).replace("kind: MCPPolicy", "kind: Policy");
    assert_eq!(
        refusal(&text),
        "policy test.yaml: kind: must be \"MCPPolicy\", got \"Policy\""
    );
}

#[test]
fn a_missing_spec_is_refused() {
    let text = "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {name: t}\n";
    assert_eq!(refusal(text), "policy test.yaml: missing field `spec`");
}

#[test]
fn a_document_that_is_not_a_mapping_is_refused() {
    assert_eq!(
        refusal("- a\n"),
        "policy test.yaml: expected a mapping with apiVersion, kind, metadata and spec"
    );
}

#[test]
fn invalid_yaml_is_refused() {
    let err = parse_str("spec: [unclosed\n", "test.yaml").unwrap_err();
    assert_eq!(err.source_name, "test.yaml");
    assert_eq!(err.path, "");
    assert!(
        err.message.starts_with("not a valid YAML/JSON document: "),
        "{}",
        err.message
    );
    assert!(
        err.to_string()
            .starts_with("policy test.yaml: not a valid YAML/JSON document: "),
        "{err}"
    );
}

#[test]
fn yaml_refusals_are_in_plain_words() {
    let text = include_str!("../../../../policies/mcp-restricted.yaml");
    let two = format!("{text}---\n{text}");
    assert_eq!(
        parse_str(&two, "two.yaml").unwrap_err().to_string(),
        format!(
            "policy two.yaml: not a valid YAML/JSON document: the file holds more than one \
             YAML document; only one is read here (remove the `---` separators, or split the \
             file) at line {}, column 1",
            // The second document's first key: after the first document, the `---` and the
            // second one's opening comment.
            text.lines().count() + 2 + text.lines().take_while(|l| l.starts_with('#')).count()
        )
    );
    assert_eq!(
        parse_str("kind: A\nspec: {}\nkind: B\n", "dup.yaml")
            .unwrap_err()
            .to_string(),
        "policy dup.yaml: not a valid YAML/JSON document: duplicate key `kind` at line 3, column 1"
    );
}

#[test]
fn errors_carry_source_path_and_message_separately() {
    let text = with_spec("  namespaces: []\n  podSecurity: {level: restricted, version: latest}\n");
    assert_eq!(
        parse_str(&text, "p.yaml").unwrap_err(),
        PolicyError {
            source_name: "p.yaml".into(),
            path: "spec.namespaces".into(),
            message: "must list at least one namespace to enforce".into(),
        }
    );
}

/// The API server refuses negative requests and limits ("must be greater than or equal to
/// 0"), so a negative default makes every defaulted pod unschedulable and a negative ceiling
/// denies every pod that names the resource: both are invalid quantities for a policy.
#[test]
fn a_negative_ceiling_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  validate: {{maxResources: {{cpu: \"-1\"}}}}\n"
    ));
    let err = parse_str(&text, "test.yaml").expect_err("a negative ceiling must be refused");
    assert_eq!(err.path, "spec.validate.maxResources.cpu");
}

#[test]
fn a_negative_default_request_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  mutate: {{resources: {{requests: {{memory: \"-1Gi\"}}}}}}\n"
    ));
    let err = parse_str(&text, "test.yaml").expect_err("a negative default must be refused");
    assert_eq!(err.path, "spec.mutate.resources.requests.memory");
}

/// A default egress above the most allowed would refuse every server that names none.
#[test]
fn a_default_egress_above_the_maximum_is_refused() {
    let text = with_spec(&format!(
        "{MINIMAL_SPEC}  network: {{defaultEgress: public, maxEgress: dns-only}}\n"
    ));
    let err = parse_str(&text, "p.yaml").unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.message.as_str()),
        (
            "spec.network.defaultEgress",
            "public is more than spec.network.maxEgress (dns-only): a server that names no profile would be refused"
        )
    );
    for (default, max) in [
        ("none", "none"),
        ("none", "public"),
        ("dns-only", "dns-only"),
    ] {
        let text = with_spec(&format!(
            "{MINIMAL_SPEC}  network: {{defaultEgress: {default}, maxEgress: {max}}}\n"
        ));
        let policy = parse_str(&text, "p.yaml").unwrap_or_else(|e| panic!("{default}/{max}: {e}"));
        assert_eq!(policy.spec.network.default_egress.as_str(), default);
        assert_eq!(policy.spec.network.max_egress.as_str(), max);
    }
    let unknown = with_spec(&format!(
        "{MINIMAL_SPEC}  network: {{maxEgress: everything}}\n"
    ));
    assert!(parse_str(&unknown, "p.yaml").is_err());
}

// ---- custom rules in CEL (spec.validate.rules) ----------------------------------------------

/// A policy document with `validate` (indented YAML under `spec.validate`).
fn policy_with(validate: &str) -> Result<Policy, PolicyError> {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: p}}\nspec:\n  namespaces: [mcp]\n  podSecurity: {{level: baseline, version: latest}}\n  validate:\n{validate}"
    );
    parse_str(&text, "p.yaml")
}

fn load_error(validate: &str) -> String {
    policy_with(validate)
        .expect_err("the policy is refused")
        .to_string()
}

#[test]
fn a_syntax_error_refuses_the_policy_with_the_field_path() {
    assert_eq!(
        load_error("    rules:\n      - {name: broken, expression: \"object.metadata.name ==\"}\n"),
        "policy p.yaml: spec.validate.rules[0].expression: 1:24: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"
    );
}

#[test]
fn unknown_variables_and_functions_are_refused_at_load() {
    assert_eq!(
        load_error(
            "    rules:\n      - {name: ok, expression: \"true\"}\n      - {name: typo, expression: \"has(obejct.metadata.labels)\"}\n"
        ),
        "policy p.yaml: spec.validate.rules[1].expression: undeclared reference to \"obejct\" (variables: object, oldObject, request, params)"
    );
    assert_eq!(
        load_error(
            "    rules:\n      - {name: f, expression: \"object.metadata.name.shout() == 'X'\"}\n"
        ),
        "policy p.yaml: spec.validate.rules[0].expression: undeclared function \"shout\""
    );
    assert_eq!(
        load_error(
            "    rules:\n      - name: m\n        expression: \"true\"\n        messageExpression: \"'pod ' + pod.metadata.name\"\n"
        ),
        "policy p.yaml: spec.validate.rules[0].messageExpression: undeclared reference to \"pod\" (variables: object, oldObject, request, params)"
    );
    assert_eq!(
        load_error(
            "    rules:\n      - {name: r, expression: \"lists.range(object.spec.replicas).size() > 0\"}\n"
        ),
        "policy p.yaml: spec.validate.rules[0].expression: lists.range() needs an integer literal or size(...) as its argument, so that its cost can be bounded"
    );
    // Comprehension variables and qualified functions are known.
    policy_with(
        "    rules:\n      - {name: ok, expression: \"object.spec.containers.all(c, sets.contains(['a'], [c.name]) || c.name.lowerAscii() != '')\"}\n",
    )
    .expect("loads");
}

#[test]
fn rule_names_are_unique_dns_labels_and_not_built_in_checks() {
    assert_eq!(
        load_error("    rules:\n      - {name: Team, expression: \"true\"}\n"),
        "policy p.yaml: spec.validate.rules[0].name: rule name \"Team\" is not a valid name (lowercase letters, digits, '-' and '.', at most 63 characters, starting and ending alphanumeric)"
    );
    assert_eq!(
        load_error("    rules:\n      - {name: a.b, expression: \"true\"}\n"),
        "policy p.yaml: spec.validate.rules[0].name: rule name \"a.b\" must not contain '.'"
    );
    assert_eq!(
        load_error(
            "    rules:\n      - {name: team, expression: \"true\"}\n      - {name: team, expression: \"false\"}\n"
        ),
        "policy p.yaml: spec.validate.rules[1].name: rule \"team\" is defined twice"
    );
    assert_eq!(
        load_error("    rules:\n      - {name: privileged, expression: \"true\"}\n"),
        "policy p.yaml: spec.validate.rules[0].name: rule name \"privileged\" is a built-in check ID; choose another name"
    );
    assert_eq!(
        load_error("    rules:\n      - {name: e, expression: \" \"}\n"),
        "policy p.yaml: spec.validate.rules[0].expression: must not be empty"
    );
    assert_eq!(
        load_error("    costLimit: 0\n"),
        "policy p.yaml: spec.validate.costLimit: must be at least 1"
    );
    assert_eq!(
        load_error("    rules:\n      - {name: x, expression: \"true\", severity: high}\n"),
        "policy p.yaml: spec.validate.rules[0].severity: unknown field `severity`, expected one of `name`, `expression`, `message`, `messageExpression`"
    );
}

#[test]
fn exceptions_may_name_rules() {
    let policy = policy_with(
        "    rules:\n      - {name: require-team-label, expression: \"true\"}\n  exceptions:\n    - {name: legacy, reason: SEC-1, checks: [require-team-label]}\n",
    )
    .expect("an exception may waive a rule");
    assert_eq!(
        policy.rules.names().collect::<Vec<_>>(),
        ["require-team-label"]
    );
    let refused = policy_with(
        "    rules: []\n  exceptions:\n    - {name: legacy, reason: SEC-1, checks: [require-team-label]}\n",
    )
    .expect_err("no such rule");
    assert!(
        refused.to_string().starts_with(
            "policy p.yaml: spec.exceptions[0].checks[0]: unknown check \"require-team-label\""
        ),
        "{refused}"
    );
}

#[test]
fn a_policy_over_its_cel_budget_is_refused_at_the_rule_list() {
    // Eleven rules of 10,000 characters: each is far under its own limit, together they are
    // over the policy's; the error names the list, not a rule.
    let long_rule = |index: usize| {
        format!(
            "      - {{name: rule-{index}, expression: \"'{}' != ''\"}}\n",
            "a".repeat(10_000 - 8)
        )
    };
    let rules: String = (0..11).map(long_rule).collect();
    assert_eq!(
        load_error(&format!("    rules:\n{rules}")),
        "policy p.yaml: spec.validate.rules: the expressions and messageExpressions together are more than 100000 characters long, the limit per policy"
    );
    let within: String = (0..10).map(long_rule).collect();
    policy_with(&format!("    rules:\n{within}")).expect("ten such rules fit the budget");
}

#[test]
fn the_bridge_image_must_be_pinned_by_digest() {
    let text = |image: &str| {
        format!(
            "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: t}}\nspec:\n  namespaces: [mcp]\n  podSecurity: {{level: restricted, version: latest}}\n  mutate:\n    bridgeImage: {image}\n"
        )
    };
    let err = parse_str(&text("ghcr.io/mcpguard/mcpguard:v0.1.0"), "p.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy p.yaml: spec.mutate.bridgeImage: must be pinned by digest (image@sha256:…): the bridge runs next to every stdio server's credentials"
    );
    let pinned = format!("ghcr.io/mcpguard/mcpguard@sha256:{}", "a".repeat(64));
    let policy = parse_str(&text(&pinned), "p.yaml").expect("a pinned image loads");
    assert_eq!(
        policy.spec.mutate.bridge_image.as_deref(),
        Some(pinned.as_str())
    );
}
