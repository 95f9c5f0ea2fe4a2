//! The MCP rules: one exact `Violation` per failing rule, and a pass for the compliant twin.

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::{Value, json};

use super::*;
use crate::policy::{Policy, parse_str};
use crate::violation::Violation;

/// A policy whose `mutate` and `validate` sections are the given YAML flow mappings.
fn policy_with(mutate: &str, validate: &str) -> Policy {
    parse_str(
        &format!(
            "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: t}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
  mutate: {mutate}
  validate: {validate}
"
        ),
        "test",
    )
    .expect("test policy loads")
}

fn spec(raw: Value) -> PodSpec {
    serde_json::from_value(raw).expect("valid PodSpec")
}

fn one_container(container: Value) -> PodSpec {
    spec(json!({"containers": [container]}))
}

/// The rules' findings without the fields they name: these tests are about the words, and
/// `each_rule_names_the_fields_at_fault` about the fields.
fn evaluate(policy: &Policy, spec: &PodSpec) -> Vec<Violation> {
    super::evaluate(policy, spec)
        .into_iter()
        .map(|violation| Violation {
            fields: Vec::new(),
            ..violation
        })
        .collect()
}

/// The fields of each finding, relative to the PodSpec.
fn fields_of(policy: &Policy, spec: &PodSpec) -> Vec<Vec<String>> {
    super::evaluate(policy, spec)
        .into_iter()
        .map(|violation| violation.fields)
        .collect()
}

#[test]
fn each_rule_names_the_fields_at_fault() {
    let two = spec(json!({
        "initContainers": [{"name": "i", "image": "docker.io/mcp/init:1"}],
        "containers": [
            {"name": "a", "image": "docker.io/mcp/fetch:1"},
            {"name": "b", "image": "evil.example/x:1", "env": [
                {"name": "HOME", "value": "/home"},
                {"name": "API_TOKEN", "value": "hunter2hunter2"},
            ]},
        ],
    }));
    assert_eq!(
        fields_of(&registries_policy(), &two),
        [["containers[1].image"]]
    );
    let secrets = policy_with("{}", "{forbidSecretLiterals: true}");
    assert_eq!(fields_of(&secrets, &two), [["containers[1].env[1].value"]]);
    let compliant = spec(json!({"containers": [
        {"name": "a", "image": "docker.io/mcp/fetch:1"},
        {"name": "b", "image": "docker.io/mcp/other:1"},
    ]}));
    assert!(fields_of(&registries_policy(), &compliant).is_empty());
    let heavy = spec(json!({
        "resources": {"limits": {"cpu": "4"}},
        "containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "3", "memory": "2G"}}},
        ],
    }));
    assert_eq!(
        fields_of(&ceiling_policy(), &heavy),
        [["resources.limits", "containers[1].resources.requests"]]
    );
}

fn violation(check: &str, reason: &str, detail: &str) -> Violation {
    Violation {
        check: check.into(),
        reason: reason.into(),
        detail: detail.into(),
        fields: Vec::new(),
    }
}

// ---- allowedRegistries ---------------------------------------------------------------------

fn registries_policy() -> Policy {
    policy_with(
        "{}",
        "{allowedRegistries: [docker.io/mcp], forbidSecretLiterals: false}",
    )
}

#[test]
fn registry_prefix_allows_a_docker_hub_short_name_under_it() {
    let spec = one_container(json!({"name": "a", "image": "mcp/fetch:1.0"}));
    assert_eq!(
        evaluate(&registries_policy(), &spec),
        Vec::<Violation>::new()
    );
}

#[test]
fn registry_prefix_matches_at_path_boundaries_only() {
    let spec = one_container(json!({"name": "a", "image": "mcpevil/fetch"}));
    assert_eq!(
        evaluate(&registries_policy(), &spec),
        vec![violation(
            "allowedRegistries",
            "image registry not allowed",
            "container \"a\" must use images from docker.io/mcp; got \"mcpevil/fetch\""
        )]
    );
}

#[test]
fn registry_violation_names_every_offending_container_of_every_kind() {
    let policy = policy_with(
        "{}",
        "{allowedRegistries: [ghcr.io, docker.io/mcp], forbidSecretLiterals: false}",
    );
    let spec = spec(json!({
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [
            {"name": "ok1", "image": "ghcr.io/github/github-mcp-server:v1"},
            {"name": "bad", "image": "quay.io/x/y"},
            {"name": "ok2", "image": "docker.io/mcp/fetch@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
        ],
        "ephemeralContainers": [{"name": "debug", "image": "ghcr.io.evil.com/x"}]
    }));
    assert_eq!(
        evaluate(&policy, &spec),
        vec![violation(
            "allowedRegistries",
            "image registry not allowed",
            "containers \"init\", \"bad\", \"debug\" must use images from ghcr.io, docker.io/mcp; got \"busybox\", \"quay.io/x/y\", \"ghcr.io.evil.com/x\""
        )]
    );
}

#[test]
fn ephemeral_container_images_are_judged() {
    let ok = spec(json!({
        "containers": [{"name": "a", "image": "mcp/fetch"}],
        "ephemeralContainers": [{"name": "debug", "image": "mcp/debug"}]
    }));
    assert_eq!(evaluate(&registries_policy(), &ok), Vec::<Violation>::new());
    let bad = spec(json!({
        "containers": [{"name": "a", "image": "mcp/fetch"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
    }));
    assert_eq!(
        evaluate(&registries_policy(), &bad),
        vec![violation(
            "allowedRegistries",
            "image registry not allowed",
            "container \"debug\" must use images from docker.io/mcp; got \"busybox\""
        )]
    );
}

/// Finding: `Evil/x:1` and `Mcp/fetch` were admitted as Docker Hub images; the runtime
/// pulls them from hosts called `Evil` and `Mcp`.
#[test]
fn a_capitalised_first_component_is_a_registry_host_not_docker_hub() {
    let policy = policy_with(
        "{}",
        "{allowedRegistries: [docker.io], forbidSecretLiterals: false}",
    );
    let spec = spec(json!({"containers": [
        {"name": "a", "image": "Evil/x:1"},
        {"name": "b", "image": "Mcp/fetch"},
        {"name": "ok", "image": "mcp/fetch"}
    ]}));
    assert_eq!(
        evaluate(&policy, &spec),
        vec![violation(
            "allowedRegistries",
            "image registry not allowed",
            "containers \"a\", \"b\" must use images from docker.io; got \"Evil/x:1\", \"Mcp/fetch\""
        )]
    );
    // The same images pass a rule that names their host.
    let policy = policy_with(
        "{}",
        "{allowedRegistries: [Evil, Mcp/fetch, docker.io], forbidSecretLiterals: false}",
    );
    assert_eq!(evaluate(&policy, &spec), Vec::<Violation>::new());
}

#[test]
fn invalid_references_are_denied_by_name_before_registry_matching() {
    let policy = policy_with(
        "{}",
        "{allowedRegistries: [docker.io, ghcr.io], forbidSecretLiterals: false}",
    );
    let spec = spec(json!({
        "initContainers": [{"name": "init", "image": "Foo/Bar"}],
        "containers": [
            {"name": "digest", "image": "mcp/fetch@sha256:abc"},
            {"name": "ok", "image": "ghcr.io/github/github-mcp-server:v1"},
            {"name": "elsewhere", "image": "quay.io/x/y"},
            {"name": "empty", "image": ""}
        ],
        "ephemeralContainers": [{"name": "debug", "image": "docker.io/mcp/fetch@md5:ffffffffffffffffffffffffffffffff"}]
    }));
    assert_eq!(
        evaluate(&policy, &spec),
        vec![
            violation(
                "allowedRegistries",
                "invalid image reference",
                "container \"init\" image \"Foo/Bar\" is not a valid reference: repository name must be lowercase; \
                 container \"digest\" image \"mcp/fetch@sha256:abc\" is not a valid reference: invalid reference format; \
                 container \"empty\" image \"\" is not a valid reference: repository name must have at least one component; \
                 container \"debug\" image \"docker.io/mcp/fetch@md5:ffffffffffffffffffffffffffffffff\" is not a valid reference: unsupported digest algorithm"
            ),
            violation(
                "allowedRegistries",
                "image registry not allowed",
                "container \"elsewhere\" must use images from docker.io, ghcr.io; got \"quay.io/x/y\""
            ),
        ]
    );
}

#[test]
fn valid_references_under_an_allowed_registry_pass() {
    let policy = policy_with(
        "{}",
        "{allowedRegistries: [docker.io, ghcr.io], forbidSecretLiterals: false}",
    );
    let spec = spec(json!({"containers": [
        {"name": "a", "image": "mcp/fetch:1.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"name": "b", "image": "GHCR.io/github/github-mcp-server:V1"},
        {"name": "c", "image": "nginx"}
    ]}));
    assert_eq!(evaluate(&policy, &spec), Vec::<Violation>::new());
}

#[test]
fn a_hostile_image_is_quoted_cut_in_the_denial() {
    let image = format!("quay.io/{}", "a".repeat(5000));
    let spec = one_container(json!({"name": "a", "image": image}));
    let shown = format!("\"{}\"...", &image[..1024]);
    assert_eq!(
        evaluate(&registries_policy(), &spec),
        vec![violation(
            "allowedRegistries",
            "invalid image reference",
            &format!(
                "container \"a\" image {shown} is not a valid reference: repository name must not be more than 255 characters"
            )
        )]
    );
}

#[test]
fn an_empty_registry_list_allows_any_image() {
    let policy = policy_with("{}", "{allowedRegistries: []}");
    let spec = one_container(json!({"name": "a", "image": "anything.example/x:1"}));
    assert_eq!(evaluate(&policy, &spec), Vec::<Violation>::new());
}

// ---- requireRuntimeClass -------------------------------------------------------------------

fn runtime_class_policy() -> Policy {
    policy_with("{runtimeClassName: gvisor}", "{requireRuntimeClass: true}")
}

#[test]
fn required_runtime_class_present_passes() {
    let spec =
        spec(json!({"runtimeClassName": "gvisor", "containers": [{"name": "a", "image": "x"}]}));
    assert_eq!(
        evaluate(&runtime_class_policy(), &spec),
        Vec::<Violation>::new()
    );
}

#[test]
fn required_runtime_class_missing_is_denied() {
    let spec = one_container(json!({"name": "a", "image": "x"}));
    assert_eq!(
        evaluate(&runtime_class_policy(), &spec),
        vec![violation(
            "requireRuntimeClass",
            "runtimeClassName != \"gvisor\"",
            "pod must set spec.runtimeClassName=\"gvisor\""
        )]
    );
}

#[test]
fn required_runtime_class_wrong_is_denied_naming_the_actual_one() {
    let spec =
        spec(json!({"runtimeClassName": "runc", "containers": [{"name": "a", "image": "x"}]}));
    assert_eq!(
        evaluate(&runtime_class_policy(), &spec),
        vec![violation(
            "requireRuntimeClass",
            "runtimeClassName != \"gvisor\"",
            "pod must set spec.runtimeClassName=\"gvisor\"; got \"runc\""
        )]
    );
}

#[test]
fn runtime_class_is_not_required_when_the_rule_is_off() {
    let policy = policy_with("{runtimeClassName: gvisor}", "{requireRuntimeClass: false}");
    let spec =
        spec(json!({"runtimeClassName": "runc", "containers": [{"name": "a", "image": "x"}]}));
    assert_eq!(evaluate(&policy, &spec), Vec::<Violation>::new());
}

// ---- maxResources --------------------------------------------------------------------------

fn ceiling_policy() -> Policy {
    policy_with("{}", "{maxResources: {cpu: \"2\", memory: 1000M}}")
}

fn with_resources(resources: Value) -> PodSpec {
    one_container(json!({"name": "app", "image": "x", "resources": resources}))
}

#[test]
fn requests_and_limits_at_or_below_the_ceiling_pass() {
    let spec = with_resources(json!({
        "requests": {"cpu": "500m", "memory": "1000M"},
        "limits": {"cpu": "2000m", "memory": "1000000k"}
    }));
    assert_eq!(evaluate(&ceiling_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn one_gibibyte_is_above_a_thousand_megabytes() {
    let spec = with_resources(json!({"requests": {"memory": "1Gi"}}));
    assert_eq!(
        evaluate(&ceiling_policy(), &spec),
        vec![violation(
            "maxResources",
            "resources above policy ceiling",
            "container \"app\" requests memory=1Gi above the ceiling 1000M"
        )]
    );
}

#[test]
fn limits_above_the_ceiling_are_denied() {
    let spec = with_resources(json!({"limits": {"cpu": "2001m"}}));
    assert_eq!(
        evaluate(&ceiling_policy(), &spec),
        vec![violation(
            "maxResources",
            "resources above policy ceiling",
            "container \"app\" limits cpu=2001m above the ceiling 2"
        )]
    );
}

#[test]
fn every_excess_is_listed_pod_level_first_then_init_then_regular_containers() {
    let spec = spec(json!({
        "resources": {"limits": {"cpu": "3"}},
        "initContainers": [{"name": "init", "image": "x", "resources": {"requests": {"memory": "2G"}}}],
        "containers": [{"name": "app", "image": "x",
                        "resources": {"requests": {"cpu": "4", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}]
    }));
    assert_eq!(
        evaluate(&ceiling_policy(), &spec),
        vec![violation(
            "maxResources",
            "resources above policy ceiling",
            "pod limits cpu=3 above the ceiling 2, container \"init\" requests memory=2G above the ceiling 1000M, container \"app\" requests cpu=4 above the ceiling 2, container \"app\" requests memory=1Gi above the ceiling 1000M, container \"app\" limits memory=2Gi above the ceiling 1000M"
        )]
    );
}

#[test]
fn init_container_within_the_ceiling_passes() {
    let spec = spec(json!({
        "initContainers": [{"name": "init", "image": "x", "resources": {"requests": {"memory": "100M"}}}],
        "containers": [{"name": "app", "image": "x"}]
    }));
    assert_eq!(evaluate(&ceiling_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn pod_level_resources_within_the_ceiling_pass() {
    let spec = spec(json!({
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1000M"}},
        "containers": [{"name": "app", "image": "x"}]
    }));
    assert_eq!(evaluate(&ceiling_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn resources_without_a_ceiling_are_not_limited() {
    let spec = with_resources(json!({"requests": {"ephemeral-storage": "100Gi"}}));
    assert_eq!(evaluate(&ceiling_policy(), &spec), Vec::<Violation>::new());
}

// ---- forbidSecretLiterals ------------------------------------------------------------------

fn secrets_policy() -> Policy {
    policy_with("{}", "{forbidSecretLiterals: true}")
}

fn with_env(env: Value) -> PodSpec {
    one_container(json!({"name": "app", "image": "x", "env": env}))
}

#[test]
fn a_literal_token_is_denied() {
    let spec = with_env(json!([{"name": "GITHUB_TOKEN", "value": "ghp_abc"}]));
    assert_eq!(
        evaluate(&secrets_policy(), &spec),
        vec![violation(
            "forbidSecretLiterals",
            "secret literal in env",
            "container \"app\" sets GITHUB_TOKEN (the name marks a credential) as literal value; use valueFrom.secretKeyRef"
        )]
    );
}

#[test]
fn a_token_from_a_secret_key_ref_is_allowed() {
    let spec = with_env(json!([{
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "github", "key": "token"}}
    }]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn a_credential_name_whose_value_is_where_the_file_is_mounted_is_allowed() {
    // Real manifests (mcpguard's own Deployment included) name mounted credentials this way.
    let spec = with_env(json!([
        {"name": "MCPGUARD_TLS_KEY", "value": "/etc/mcpguard/tls/tls.key"},
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/secrets/google/key.json"},
        {"name": "SSL_PRIVATE_KEY", "value": "/certs/server-key.pem"},
        {"name": "DB_PASSWORD", "value": "/run/secrets/db"}
    ]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn a_credential_name_whose_value_only_resembles_a_path_is_denied() {
    // Base64 secrets contain `/` (and `+`, `=`); a relative path or one segment says nothing
    // about a mount; a long segment is a key, not a directory.
    let values = [
        "/wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "/abc/def==",
        "/hunter2",
        "relative/path/key.pem",
        "/x/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/notadir/secretvalue",
    ];
    for value in values {
        let spec = with_env(json!([{"name": "API_KEY", "value": value}]));
        assert_eq!(
            evaluate(&secrets_policy(), &spec),
            vec![violation(
                "forbidSecretLiterals",
                "secret literal in env",
                "container \"app\" sets API_KEY (the name marks a credential) as literal value; use valueFrom.secretKeyRef"
            )],
            "{value}"
        );
    }
}

#[test]
fn everyday_names_that_only_resemble_credentials_are_allowed() {
    let spec = with_env(json!([
        {"name": "MAX_TOKENS", "value": "4096"},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "KEY_PREFIX", "value": "mcp:"}
    ]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn every_literal_credential_of_a_container_is_listed() {
    let spec = with_env(json!([
        {"name": "OPENAI_API_KEY", "value": "sk-1"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "CLIENT_SECRET", "value": "s"}
    ]));
    assert_eq!(
        evaluate(&secrets_policy(), &spec),
        vec![violation(
            "forbidSecretLiterals",
            "secret literal in env",
            "container \"app\" sets OPENAI_API_KEY (the name marks a credential), DB_PASSWORD (the name marks a credential), CLIENT_SECRET (the name marks a credential) as literal values; use valueFrom.secretKeyRef"
        )]
    );
}

#[test]
fn literal_credentials_are_reported_per_container_including_init_and_ephemeral() {
    let spec = spec(json!({
        "initContainers": [{"name": "init", "image": "x", "env": [{"name": "DB_PASSWORD", "value": "p"}]}],
        "containers": [{"name": "app", "image": "x", "env": [{"name": "SLACK_BOT_TOKEN", "value": "xoxb"}]}],
        "ephemeralContainers": [{"name": "debug", "image": "x", "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "k"}]}]
    }));
    assert_eq!(
        evaluate(&secrets_policy(), &spec),
        vec![violation(
            "forbidSecretLiterals",
            "secret literal in env",
            "container \"init\" sets DB_PASSWORD (the name marks a credential) as literal value, container \"app\" sets SLACK_BOT_TOKEN (the name marks a credential) as literal value, container \"debug\" sets AWS_SECRET_ACCESS_KEY (the name marks a credential) as literal value; use valueFrom.secretKeyRef"
        )]
    );
}

#[test]
fn an_empty_value_is_allowed() {
    let spec = with_env(json!([{"name": "GITHUB_TOKEN", "value": ""}]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn a_value_that_only_references_another_variable_is_allowed() {
    let spec = with_env(json!([
        {"name": "UPSTREAM_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "GITHUB_TOKEN", "value": "$(UPSTREAM_TOKEN)"}
    ]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn a_value_mixing_a_reference_with_literal_text_is_denied() {
    let spec = with_env(json!([{"name": "GITHUB_TOKEN", "value": "ghp_$(SUFFIX)"}]));
    assert_eq!(
        evaluate(&secrets_policy(), &spec),
        vec![violation(
            "forbidSecretLiterals",
            "secret literal in env",
            "container \"app\" sets GITHUB_TOKEN (the name marks a credential) as literal value; use valueFrom.secretKeyRef"
        )]
    );
    let two_refs = with_env(json!([{"name": "GITHUB_TOKEN", "value": "$(A)$(B)"}]));
    assert_eq!(evaluate(&secrets_policy(), &two_refs).len(), 1);
}

#[test]
fn forbid_secret_literals_false_disables_the_rule() {
    let policy = policy_with("{}", "{forbidSecretLiterals: false}");
    let spec = with_env(json!([{"name": "GITHUB_TOKEN", "value": "ghp_abc"}]));
    assert_eq!(evaluate(&policy, &spec), Vec::<Violation>::new());
}

#[test]
fn forbid_secret_literals_is_on_by_default() {
    let policy = policy_with("{}", "{}");
    let spec = with_env(json!([{"name": "GITHUB_TOKEN", "value": "ghp_abc"}]));
    assert_eq!(evaluate(&policy, &spec).len(), 1);
}

// ---- looks_like_credential -----------------------------------------------------------------

#[test]
fn credential_names_are_recognised() {
    for name in [
        "GITHUB_TOKEN",
        "token",
        "github-token",
        "OPENAI_API_KEY",
        "ANTHROPIC_APIKEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY",
        "SSH_PRIVATE_KEY",
        "JWT_SECRET_KEY",
        "X_AUTH_KEY",
        "CLIENT_SECRET",
        "OAUTH_CLIENT_SECRET",
        "DB_PASSWORD",
        "MYSQL_PASSWD",
        "GCP_CREDENTIALS",
        "GITLAB_PAT",
        "COOKIE_SIGNING_KEY",
        "DATA_ENCRYPTION_KEY",
        "DB_PWD",
        "openai.api-key",
    ] {
        assert!(
            looks_like_credential(name),
            "{name} should look like a credential"
        );
    }
}

#[test]
fn ordinary_names_are_not_credentials() {
    for name in [
        "MAX_TOKENS",
        "TOKEN_LIMIT",
        "LOG_LEVEL",
        "KEY_PREFIX",
        "API_URL",
        "PUBLIC_KEY_ID",
        "KEY",
        "SECRETS_DIR_MODE",
        "",
        "___",
        "PWD",
        "pwd",
    ] {
        assert!(
            !looks_like_credential(name),
            "{name} should not look like a credential"
        );
    }
}

/// README: "literal env[].values whose name *ends* like a credential"; the doc comment of
/// `looks_like_credential`: "names whose *last word* marks a credential". The `_FILE`
/// convention (Docker/official images: `POSTGRES_PASSWORD_FILE=/run/secrets/db`) holds a
/// path, not a secret, and does not end like a credential.
#[test]
fn a_password_file_path_variable_is_not_a_credential() {
    assert!(!looks_like_credential("POSTGRES_PASSWORD_FILE"));
    assert!(!looks_like_credential("PASSWORD_MIN_LENGTH"));
    let spec = with_env(json!([{"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/db"}]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

/// `PWD` is the shell's working-directory variable (`PWD=/app`), not a password.
#[test]
fn the_working_directory_variable_pwd_is_not_a_credential() {
    assert!(!looks_like_credential("PWD"));
    let spec = with_env(json!([{"name": "PWD", "value": "/app"}]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

/// Issue #13, finding 7: the nine literal secrets the name-only, `SCREAMING_SNAKE`-only
/// heuristic let through (it flagged 2), each denied with the variable and the reason.
#[test]
fn the_nine_literal_secrets_of_issue_13_are_all_denied_with_their_reason() {
    let name = "the name marks a credential";
    let cases = [
        ("githubToken", "gho-free text", name),
        ("OPENAI_KEY", "not-a-known-shape", name),
        ("DB_PASS", "hunter2", name),
        ("SLACK_BOT_TOKEN2", "plain", name),
        ("API_TOKEN_VALUE", "plain", name),
        (
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal:5432/app",
            "the value is a URL with a password",
        ),
        ("BEARER", "plain", name),
        (
            "EXPECTED_AUTH",
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
            "the value is an HTTP Bearer credential",
        ),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG", name),
    ];
    for (variable, value, reason) in cases {
        let spec = with_env(json!([{"name": variable, "value": value}]));
        assert_eq!(
            evaluate(&secrets_policy(), &spec),
            vec![violation(
                "forbidSecretLiterals",
                "secret literal in env",
                &format!(
                    "container \"app\" sets {variable} ({reason}) as literal value; use valueFrom.secretKeyRef"
                )
            )],
            "{variable}"
        );
    }
}

/// Token formats are found by value whatever the variable is called; the reason names the
/// format and never quotes the value or its prefix.
#[test]
fn known_token_shapes_are_found_by_value() {
    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    let cases = [
        (
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "the value looks like a GitHub token",
        ),
        (
            "--token=gho_0123456789abcdefghijABCDEFGHIJ012345",
            "the value looks like a GitHub token",
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "the value looks like a GitHub fine-grained personal access token",
        ),
        (
            "glpat-xxxxXXXX0123456789ab",
            "the value looks like a GitLab personal access token",
        ),
        (
            "xoxb-1234567890-abcdefghij",
            "the value looks like a Slack token",
        ),
        (
            "sk-proj-abcdefghijklmnop0123456789",
            "the value looks like an OpenAI-style secret API key",
        ),
        (
            "sk-ant-api03-abcdefghijklmnopqrstu",
            "the value looks like an OpenAI-style secret API key",
        ),
        (
            "AKIAIOSFODNN7EXAMPLE",
            "the value looks like an AWS access key ID",
        ),
        (
            "bearer   abcdefgh12345678==",
            "the value is an HTTP Bearer credential",
        ),
        (pem, "the value contains a PEM private key"),
        (
            "https://bot:s3cr%40t@api.example.com",
            "the value is a URL with a password",
        ),
        (
            "redis://:hunter2@redis:6379/0",
            "the value is a URL with a password",
        ),
    ];
    for (value, reason) in cases {
        let spec = with_env(json!([{"name": "CONFIG", "value": value}]));
        let violations = evaluate(&secrets_policy(), &spec);
        assert_eq!(
            violations,
            vec![violation(
                "forbidSecretLiterals",
                "secret literal in env",
                &format!(
                    "container \"app\" sets CONFIG ({reason}) as literal value; use valueFrom.secretKeyRef"
                )
            )],
            "{value}"
        );
    }
}

#[test]
fn values_that_only_resemble_tokens_are_allowed() {
    for value in [
        "ghp_short",
        "task-0123456789abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLEX",
        "Bearer",
        "Bearer $(API_TOKEN)",
        "Bearer authentication is required for every call",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----",
        "https://api.example.com:8443/v1",
        "ssh://git@github.com:22/org/repo",
        "postgres://app:@db/app",
        "postgres://app:$(DB_PASSWORD)@db:5432/app",
        "https://example.com/login?next=a:b@c",
        "4096",
    ] {
        let spec = with_env(json!([{"name": "CONFIG", "value": value}]));
        assert_eq!(
            evaluate(&secrets_policy(), &spec),
            Vec::<Violation>::new(),
            "{value}"
        );
    }
}

/// The shapes are matched in linear time: a megabyte of near-misses is judged, not stalled.
#[test]
fn a_hostile_value_of_near_misses_is_judged() {
    let near_misses = "ghp_sk-xoxb-AKIA://a:@".repeat(50_000);
    let spec = with_env(json!([{"name": "CONFIG", "value": near_misses}]));
    assert_eq!(evaluate(&secrets_policy(), &spec), Vec::<Violation>::new());
}

#[test]
fn credential_names_in_every_case_style_are_recognised() {
    for name in [
        "githubToken",
        "GithubToken",
        "github-token",
        "OPENAI_KEY",
        "openaiKey",
        "DB_PASS",
        "dbPass",
        "SLACK_BOT_TOKEN2",
        "SLACK_BOT_TOKEN_2",
        "API_TOKEN_VALUE",
        "apiTokenValue",
        "BEARER",
        "NGROK_AUTHTOKEN",
        "SSH_PASSPHRASE",
        "BASIC_AUTH",
        "HTTPToken",
        "TLS_KEY",
        "LICENSE_KEY",
        "SESSION_KEY",
        "DB_CREDS",
    ] {
        assert!(
            looks_like_credential(name),
            "{name} should look like a credential"
        );
    }
}

#[test]
fn names_of_counts_paths_identifiers_and_public_keys_are_not_credentials() {
    for name in [
        "maxTokens",
        "MAX_TOKEN",
        "MAX_OUTPUT_TOKENS",
        "NUM_TOKENS",
        "TOKENIZER",
        "TOKEN_URL",
        "TOKEN_TYPE",
        "KEY_ID",
        "AWS_ACCESS_KEY_ID",
        "PUBLIC_KEY",
        "sshPublicKey",
        "SSH_KNOWN_HOSTS",
        "PASSWORD_FILE",
        "SSH_KEY_PATH",
        "TLS_KEY_FILE",
        "SECRET_NAME",
        "PARTITION_KEY",
        "CACHE_KEY",
        "ROUTING_KEY",
        "AUTH_MODE",
        "ENABLE_AUTH",
        "KEY_1",
        "BYPASS",
    ] {
        assert!(
            !looks_like_credential(name),
            "{name} should not look like a credential"
        );
    }
}

/// A credential name with an empty value, blanks or only a `$(VAR)` reference is no literal.
#[test]
fn credential_names_without_a_literal_value_are_allowed() {
    for value in ["", "   ", "$(UPSTREAM_TOKEN)"] {
        let spec = with_env(json!([{"name": "DB_PASS", "value": value}]));
        assert_eq!(
            evaluate(&secrets_policy(), &spec),
            Vec::<Violation>::new(),
            "{value:?}"
        );
    }
}

#[test]
fn rule_ids_are_the_policy_field_names() {
    assert_eq!(
        ALL_RULE_IDS,
        &[
            "allowedRegistries",
            "requireRuntimeClass",
            "maxResources",
            "forbidSecretLiterals"
        ]
    );
}

#[test]
fn violations_of_several_rules_come_in_rule_order() {
    let policy = policy_with(
        "{runtimeClassName: gvisor}",
        "{allowedRegistries: [ghcr.io], requireRuntimeClass: true, maxResources: {cpu: \"1\"}}",
    );
    let spec = one_container(json!({
        "name": "app",
        "image": "busybox",
        "resources": {"limits": {"cpu": "2"}},
        "env": [{"name": "API_TOKEN", "value": "t"}]
    }));
    let checks: Vec<String> = evaluate(&policy, &spec)
        .into_iter()
        .map(|v| v.check)
        .collect();
    assert_eq!(
        checks,
        vec![
            "allowedRegistries",
            "requireRuntimeClass",
            "maxResources",
            "forbidSecretLiterals"
        ]
    );
}
