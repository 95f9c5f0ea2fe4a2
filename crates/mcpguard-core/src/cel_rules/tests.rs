//! The rules API: compiling a policy's rules and evaluating them against a pod. The checker,
//! the cost model, the conversion of what is read and the wording of errors have their own
//! tests next to them; these helpers are shared with them.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::explain::MAX_ERROR_CHARS;
use super::*;

pub(super) fn rule(name: &str, expression: &str) -> CelRule {
    CelRule {
        name: name.into(),
        expression: expression.into(),
        message: None,
        message_expression: None,
    }
}

pub(super) fn with_message(name: &str, expression: &str, message: &str) -> CelRule {
    CelRule {
        message: Some(message.into()),
        ..rule(name, expression)
    }
}

pub(super) fn compile(rules: Vec<CelRule>, params: Option<Json>, cost_limit: u64) -> CompiledRules {
    CompiledRules::compile(&rules, params.as_ref(), cost_limit).expect("rules compile")
}

pub(super) fn rules(rules: Vec<CelRule>) -> CompiledRules {
    compile(rules, None, DEFAULT_COST_LIMIT)
}

pub(super) const NO_GROUPS: &[String] = &[];

pub(super) fn create() -> RuleInput<'static> {
    RuleInput::create("mcp", "web", "jane@example.com", NO_GROUPS)
}

pub(super) fn pod(labels: Json, images: &[&str]) -> Json {
    let containers: Vec<Json> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "mcp", "labels": labels},
        "spec": {"containers": containers},
    })
}

pub(super) fn team_pod() -> Json {
    pod(json!({"team": "platform"}), &["ghcr.io/acme/web:1.2"])
}

pub(super) fn unlabelled_pod() -> Json {
    pod(json!({"app": "web"}), &["ghcr.io/acme/web:1.2"])
}

pub(super) fn violation(check: &str, reason: &str, detail: &str) -> Violation {
    Violation {
        check: check.into(),
        reason: reason.into(),
        detail: detail.into(),
        fields: Vec::new(),
    }
}

pub(super) fn many_containers(count: usize) -> Json {
    let images: Vec<String> = (0..count).map(|i| format!("ghcr.io/acme/s{i}:1")).collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    pod(json!({"team": "a"}), &images)
}

/// What compiling `rules` answers: `compiles`, or the field path and the problem, as the
/// policy loader words them.
pub(super) fn compile_outcome(rules: Vec<CelRule>) -> String {
    match CompiledRules::compile(&rules, None, DEFAULT_COST_LIMIT) {
        Ok(_) => "compiles".into(),
        Err(err) => format!("{}: {}", err.path("spec.validate.rules"), err.problem),
    }
}

// ---- the variables, each both ways ------------------------------------------------------------

#[test]
fn object_is_the_pod() {
    let compiled = rules(vec![with_message(
        "require-team-label",
        "has(object.metadata.labels) && 'team' in object.metadata.labels",
        "MCP servers must carry a team label",
    )]);
    assert_eq!(compiled.evaluate(&team_pod(), &create()), vec![]);
    assert_eq!(
        compiled.evaluate(&unlabelled_pod(), &create()),
        vec![violation(
            "require-team-label",
            "MCP servers must carry a team label",
            ""
        )]
    );
    let mut no_labels = unlabelled_pod();
    no_labels["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    assert_eq!(compiled.evaluate(&no_labels, &create()).len(), 1);
}

#[test]
fn old_object_is_null_on_create_and_the_old_pod_on_update() {
    let compiled = rules(vec![with_message(
        "image-pinned-on-update",
        "oldObject == null || object.spec.containers[0].image == oldObject.spec.containers[0].image",
        "the image may not change",
    )]);
    let new = pod(json!({}), &["ghcr.io/acme/web:2.0"]);
    let old = pod(json!({}), &["ghcr.io/acme/web:1.2"]);
    assert_eq!(compiled.evaluate(&new, &create()), vec![]);
    let update = |old_object| RuleInput {
        operation: "UPDATE",
        old_object: Some(old_object),
        ..create()
    };
    assert_eq!(
        compiled.evaluate(&new, &update(&old)),
        vec![violation(
            "image-pinned-on-update",
            "the image may not change",
            ""
        )]
    );
    assert_eq!(compiled.evaluate(&new, &update(&new)), vec![]);
    assert!(compiled.uses_old_object());
    assert!(!rules(vec![rule("a", "true")]).uses_old_object());
}

#[test]
fn rules_that_may_read_managed_fields_are_told_apart() {
    let reads = |expression: &str| rules(vec![rule("r", expression)]).reads_managed_fields();
    assert!(!reads("object.spec.containers.all(c, c.image != '')"));
    assert!(!reads(
        "has(object.metadata.labels) && object.metadata.name != ''"
    ));
    assert!(reads("!has(object.metadata.managedFields)"));
    assert!(reads(
        "oldObject == null || oldObject.metadata.managedFields.size() > 0"
    ));
    assert!(reads("object.metadata.size() > 0"));
    assert!(reads("object == oldObject"));
    assert!(!CompiledRules::default().reads_managed_fields());
}

#[test]
fn request_carries_the_user_and_the_operation() {
    let compiled = rules(vec![
        with_message(
            "argocd-only",
            "request.userInfo.username == 'system:serviceaccount:argocd:argocd-application-controller' || 'platform' in request.userInfo.groups",
            "only Argo CD or the platform team deploy MCP servers",
        ),
        with_message(
            "no-updates",
            "request.operation != 'UPDATE'",
            "update denied",
        ),
        rule(
            "namespace-and-name",
            "request.namespace == 'mcp' && request.name == 'web'",
        ),
    ]);
    let object = team_pod();
    let argocd = RuleInput {
        username: "system:serviceaccount:argocd:argocd-application-controller",
        ..create()
    };
    assert_eq!(compiled.evaluate(&object, &argocd), vec![]);
    let platform = ["platform".to_owned()];
    let in_group = RuleInput {
        groups: &platform,
        ..create()
    };
    assert_eq!(compiled.evaluate(&object, &in_group), vec![]);
    assert_eq!(
        compiled.evaluate(&object, &create()),
        vec![violation(
            "argocd-only",
            "only Argo CD or the platform team deploy MCP servers",
            ""
        )]
    );
    let update = RuleInput {
        operation: "UPDATE",
        old_object: Some(&object),
        ..argocd
    };
    assert_eq!(
        compiled.evaluate(&object, &update),
        vec![violation("no-updates", "update denied", "")]
    );
}

#[test]
fn params_are_the_policy_values() {
    let expression =
        "object.spec.containers.all(c, params.registries.exists(r, c.image.startsWith(r + '/')))";
    let params = Some(json!({"registries": ["ghcr.io/acme", "registry.internal"]}));
    let compiled = compile(
        vec![with_message(
            "trusted-registry",
            expression,
            "untrusted registry",
        )],
        params,
        DEFAULT_COST_LIMIT,
    );
    assert_eq!(compiled.evaluate(&team_pod(), &create()), vec![]);
    let elsewhere = pod(json!({}), &["ghcr.io/acme/web:1", "docker.io/evil/x:1"]);
    assert_eq!(
        compiled.evaluate(&elsewhere, &create()),
        vec![violation("trusted-registry", "untrusted registry", "")]
    );
    // Absent params are an empty map, so has() works on them.
    let defaults = rules(vec![rule("p", "!has(params.registries) && params == {}")]);
    assert_eq!(defaults.evaluate(&team_pod(), &create()), vec![]);
}

// ---- runtime errors and results that are not bools ---------------------------------------------

#[test]
fn a_missing_field_without_has_is_a_violation_that_says_so() {
    let compiled = rules(vec![rule(
        "team-is-platform",
        "object.metadata.labels.team == 'platform'",
    )]);
    assert_eq!(compiled.evaluate(&team_pod(), &create()), vec![]);
    assert_eq!(
        compiled.evaluate(&unlabelled_pod(), &create()),
        vec![violation(
            "team-is-platform",
            "rule \"team-is-platform\" could not be evaluated",
            "no such key: team (test optional fields with has() first)"
        )]
    );
    // An error names the operator and the types, not the values.
    let quoting = rules(vec![rule("add", "object.spec + 1 == 2")]);
    assert_eq!(
        quoting.evaluate(&many_containers(40), &create())[0].detail,
        "unsupported binary operator 'add' on types map and int"
    );
    // A key the expression spells out is named, cut short when long.
    let long_key = "k".repeat(300);
    let long = rules(vec![rule(
        "long-key",
        &format!("object.metadata.labels.{long_key} == 'x'"),
    )]);
    let detail = &long.evaluate(&team_pod(), &create())[0].detail;
    assert_eq!(
        detail,
        &format!(
            "{}...",
            &format!("no such key: {long_key}")[..MAX_ERROR_CHARS]
        )
    );
    let overflow = rules(vec![rule(
        "div",
        "1 / (size(object.spec.containers) - 1) == 1",
    )]);
    assert_eq!(
        overflow.evaluate(&team_pod(), &create()),
        vec![violation(
            "div",
            "rule \"div\" could not be evaluated",
            "division by zero"
        )]
    );
}

#[test]
fn a_result_that_is_not_a_bool_is_a_violation() {
    let compiled = rules(vec![rule("name", "object.metadata.name")]);
    assert_eq!(
        compiled.evaluate(&team_pod(), &create()),
        vec![violation(
            "name",
            "rule \"name\" could not be evaluated",
            "expression returned string, want bool"
        )]
    );
}

// ---- messages ---------------------------------------------------------------------------------

#[test]
fn message_expression_gives_the_reason_and_falls_back_to_message() {
    let mut with_expression = with_message(
        "require-team-label",
        "has(object.metadata.labels) && 'team' in object.metadata.labels",
        "MCP servers must carry a team label",
    );
    with_expression.message_expression =
        Some("'pod ' + object.metadata.name + ' has no team label'".into());
    let compiled = rules(vec![with_expression.clone()]);
    assert_eq!(
        compiled.evaluate(&unlabelled_pod(), &create()),
        vec![violation(
            "require-team-label",
            "pod web has no team label",
            ""
        )]
    );
    // A workload template has no name: the expression fails and `message` is used.
    let mut template = unlabelled_pod();
    template["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("name");
    assert_eq!(
        compiled.evaluate(&template, &create()),
        vec![violation(
            "require-team-label",
            "MCP servers must carry a team label",
            "messageExpression failed: no such key: name (test optional fields with has() first)"
        )]
    );
    with_expression.message_expression = Some("size(object.spec.containers)".into());
    assert_eq!(
        rules(vec![with_expression]).evaluate(&unlabelled_pod(), &create()),
        vec![violation(
            "require-team-label",
            "MCP servers must carry a team label",
            "messageExpression returned int, want string"
        )]
    );
    // Without a message, the reason quotes the expression.
    assert_eq!(
        rules(vec![rule("f", "size(object.spec.containers) > 3")]).evaluate(&team_pod(), &create()),
        vec![violation(
            "f",
            "failed expression: size(object.spec.containers) > 3",
            ""
        )]
    );
}

// ---- the README's examples ---------------------------------------------------------------------

#[test]
fn readme_forbidden_latest_tag() {
    let compiled = rules(vec![with_message(
        "no-latest-tag",
        "object.spec.containers.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))",
        "images must be pinned to a tag other than :latest",
    )]);
    assert_eq!(compiled.evaluate(&team_pod(), &create()), vec![]);
    for images in [
        &["ghcr.io/acme/web:1.2", "mcp/fetch:latest"][..],
        &["mcp/fetch"][..],
    ] {
        assert_eq!(
            compiled.evaluate(&pod(json!({}), images), &create()),
            vec![violation(
                "no-latest-tag",
                "images must be pinned to a tag other than :latest",
                ""
            )],
            "{images:?}"
        );
    }
}

#[test]
fn readme_env_var_from_a_secret() {
    let compiled = rules(vec![with_message(
        "github-token-from-secret",
        "object.spec.containers.all(c, !has(c.env) || c.env.all(e, e.name != 'GITHUB_TOKEN' || (has(e.valueFrom) && has(e.valueFrom.secretKeyRef))))",
        "GITHUB_TOKEN must come from a Secret (valueFrom.secretKeyRef)",
    )]);
    let with_env = |env: Json| {
        json!({"metadata": {"name": "gh"}, "spec": {"containers": [
            {"name": "sidecar", "image": "a:1"},
            {"name": "server", "image": "b:1", "env": env},
        ]}})
    };
    let from_secret = with_env(
        json!([{"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "token"}}}]),
    );
    assert_eq!(compiled.evaluate(&from_secret, &create()), vec![]);
    for env in [
        json!([{"name": "GITHUB_TOKEN", "value": "ghp_x"}]),
        json!([{"name": "GITHUB_TOKEN", "valueFrom": {"configMapKeyRef": {"name": "gh", "key": "token"}}}]),
    ] {
        assert_eq!(
            compiled.evaluate(&with_env(env.clone()), &create()),
            vec![violation(
                "github-token-from-secret",
                "GITHUB_TOKEN must come from a Secret (valueFrom.secretKeyRef)",
                ""
            )],
            "{env}"
        );
    }
}

// ---- a policy's expressions together --------------------------------------------------------

#[test]
fn a_policy_s_expressions_together_are_bounded_before_any_is_parsed() {
    // Ten rules of 10,000 characters each fill the budget exactly...
    let long_rule = |index: usize| {
        let source = format!("'{}' != ''", "a".repeat(10_000 - 8));
        assert_eq!(source.chars().count(), 10_000);
        rule(&format!("rule-{index}"), &source)
    };
    assert_eq!(
        compile_outcome((0..10).map(long_rule).collect()),
        "compiles"
    );
    // ...and one more character anywhere, a messageExpression included, is refused, naming
    // the limit, though every expression alone is far under its own limit.
    let mut over: Vec<CelRule> = (0..10).map(long_rule).collect();
    over[9].message_expression = Some("'x'".into());
    assert_eq!(
        compile_outcome(over),
        "spec.validate.rules: the expressions and messageExpressions together are more than 100000 characters long, the limit per policy"
    );
    // An unterminated source never reaches the parser once the budget is spent.
    let mut unparsable: Vec<CelRule> = (0..10).map(long_rule).collect();
    unparsable.push(rule("broken", "'unterminated"));
    assert_eq!(
        compile_outcome(unparsable),
        "spec.validate.rules: the expressions and messageExpressions together are more than 100000 characters long, the limit per policy"
    );
}
