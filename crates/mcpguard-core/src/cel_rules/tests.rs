use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::policy::{self, PolicyError};

fn rule(name: &str, expression: &str) -> CelRule {
    CelRule {
        name: name.into(),
        expression: expression.into(),
        message: None,
        message_expression: None,
    }
}

fn with_message(name: &str, expression: &str, message: &str) -> CelRule {
    CelRule {
        message: Some(message.into()),
        ..rule(name, expression)
    }
}

fn compile(rules: Vec<CelRule>, params: Option<Json>, cost_limit: u64) -> CompiledRules {
    let validate = ValidateSpec {
        rules,
        params,
        cost_limit,
        ..ValidateSpec::default()
    };
    CompiledRules::compile(&validate).expect("rules compile")
}

fn rules(rules: Vec<CelRule>) -> CompiledRules {
    compile(rules, None, DEFAULT_COST_LIMIT)
}

const NO_GROUPS: &[String] = &[];

fn create() -> RuleInput<'static> {
    RuleInput::create("mcp", "web", "jane@example.com", NO_GROUPS)
}

fn pod(labels: Json, images: &[&str]) -> Json {
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

fn team_pod() -> Json {
    pod(json!({"team": "platform"}), &["ghcr.io/acme/web:1.2"])
}

fn unlabelled_pod() -> Json {
    pod(json!({"app": "web"}), &["ghcr.io/acme/web:1.2"])
}

fn violation(check: &str, reason: &str, detail: &str) -> Violation {
    Violation {
        check: check.into(),
        reason: reason.into(),
        detail: detail.into(),
    }
}

/// A policy document with `validate` (indented YAML under `spec.validate`).
fn policy_with(validate: &str) -> Result<crate::policy::Policy, PolicyError> {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: p}}\nspec:\n  namespaces: [mcp]\n  podSecurity: {{level: baseline, version: latest}}\n  validate:\n{validate}"
    );
    policy::parse_str(&text, "p.yaml")
}

fn load_error(validate: &str) -> String {
    policy_with(validate)
        .expect_err("the policy is refused")
        .to_string()
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

// ---- compile errors, at policy load -----------------------------------------------------------

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

// ---- the cost limit ---------------------------------------------------------------------------

fn many_containers(count: usize) -> Json {
    let images: Vec<String> = (0..count).map(|i| format!("ghcr.io/acme/s{i}:1")).collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    pod(json!({"team": "a"}), &images)
}

/// Every pair of containers: quadratic in the container count.
const UNIQUE_IMAGES: &str =
    "object.spec.containers.all(a, object.spec.containers.exists_one(b, b.image == a.image))";

fn cost_of(expression: &str, object: &Json) -> u64 {
    let program = Program::compile(expression).expect("parses");
    let request = create().request_json();
    let params = json!({});
    let roots = [
        ("object", object),
        ("oldObject", &Json::Null),
        ("request", &request),
        ("params", &params),
    ];
    Estimator::new(roots).estimate(program.expression())
}

#[test]
fn a_nested_comprehension_over_many_containers_exceeds_a_small_limit_deterministically() {
    let object = many_containers(60);
    let cost = cost_of(UNIQUE_IMAGES, &object);
    let small = compile(vec![rule("unique-images", UNIQUE_IMAGES)], None, 100_000);
    let refused = small.evaluate(&object, &create());
    assert_eq!(
        refused,
        vec![violation(
            "unique-images",
            "rule \"unique-images\" was not evaluated: cost limit exceeded",
            &format!(
                "estimated cost {cost} for this object is above spec.validate.costLimit 100000"
            )
        )]
    );
    assert_eq!(small.evaluate(&object, &create()), refused, "deterministic");
    // The same pod under a larger limit is evaluated (and passes: the images are unique).
    let large = compile(vec![rule("unique-images", UNIQUE_IMAGES)], None, cost);
    assert_eq!(large.evaluate(&object, &create()), vec![]);
    // A pod with few containers fits the small limit.
    assert_eq!(small.evaluate(&many_containers(3), &create()), vec![]);
}

#[test]
fn nested_comprehensions_multiply_the_actual_lengths() {
    let (ten, twenty) = (
        cost_of(UNIQUE_IMAGES, &many_containers(10)),
        cost_of(UNIQUE_IMAGES, &many_containers(20)),
    );
    assert!(twenty > 3 * ten, "quadratic: {ten} then {twenty}");
    let single = "object.spec.containers.all(c, c.image != '')";
    let (ten, twenty) = (
        cost_of(single, &many_containers(10)),
        cost_of(single, &many_containers(20)),
    );
    assert!(twenty < 3 * ten, "linear: {ten} then {twenty}");
    // The inner loop of `containers.all(c, c.env.all(...))` runs over the longest actual env
    // list, not over the largest list anywhere in the pod.
    let mut object = many_containers(2);
    object["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    object["metadata"]["annotations"] = json!(
        (0..500)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
    );
    let env_rule = "object.spec.containers.all(c, !has(c.env) || c.env.all(e, e.name != 'X'))";
    assert!(
        cost_of(env_rule, &object) < 200,
        "{}",
        cost_of(env_rule, &object)
    );
}

#[test]
fn typical_rules_cost_little_and_built_values_are_bounded() {
    let object = team_pod();
    let label = "has(object.metadata.labels) && 'team' in object.metadata.labels";
    assert!(cost_of(label, &object) < 100, "{}", cost_of(label, &object));
    // lists.range: the literal bounds the iteration.
    let small = cost_of("lists.range(10).all(i, i < 100)", &object);
    let large = cost_of("lists.range(10000).all(i, i < 100)", &object);
    assert!(large > 500 * small / 2, "{small} {large}");
    // map() builds a list as long as its range; iterating it again costs its length.
    let twice = cost_of(
        "object.spec.containers.map(c, c.name).all(n, n != '')",
        &many_containers(50),
    );
    let once = cost_of(
        "object.spec.containers.all(c, c.name != '')",
        &many_containers(50),
    );
    assert!(twice > once, "{once} {twice}");
    // Growing string functions are bounded by their inputs.
    let replaced = cost_of(
        "object.metadata.name.replace('', 'xxxxxxxxxx').size() > 0",
        &object,
    );
    assert!(replaced > 30, "{replaced}");
}

#[test]
fn every_function_in_the_cost_table_is_registered() {
    // The table must name only functions the context has (a name it lacks would pass the load
    // check and fail on every object); that the table covers every registered function was
    // checked against the cel and kube-cel sources when they were pinned (137 names).
    let context = cel::Context::default().with_all();
    let tables = [SCALAR_FUNCTIONS, WITHIN_FUNCTIONS, GROWING_FUNCTIONS];
    assert_eq!(tables.iter().map(|t| t.len()).sum::<usize>(), 137);
    for name in tables.into_iter().flatten() {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            Program::compile(&format!("{name}()"))
                .expect("parses")
                .execute(&context)
        }));
        if let Ok(Err(cel::ExecutionError::UndeclaredReference(missing))) = outcome {
            panic!("{name} is not registered ({missing})");
        }
    }
    assert!(function_kind("shout").is_none());
    let unknown = Program::compile("shout(1)")
        .expect("parses")
        .execute(&context);
    assert!(matches!(
        unknown,
        Err(cel::ExecutionError::UndeclaredReference(_))
    ));
}

// ---- converting only what is read ---------------------------------------------------------------

#[test]
fn converting_only_what_is_read_changes_no_result() {
    let mut object = many_containers(3);
    object["spec"]["containers"][1]["env"] = json!([{"name": "A", "value": "1"}, {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
    object["metadata"]["annotations"] = json!({"a": "x", "b": ""});
    let mut old = object.clone();
    old["spec"]["containers"][0]["image"] = json!("ghcr.io/acme/old:1");
    let expressions = [
        "has(object.metadata.labels) && 'team' in object.metadata.labels",
        "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "object.spec.containers.all(c, !has(c.env) || c.env.all(e, e.name != 'T' || has(e.valueFrom.secretKeyRef)))",
        "object.spec.containers.filter(c, c.name == 'c0') == oldObject.spec.containers.filter(c, c.name == 'c0')",
        "object.spec.containers.map(c, c) == oldObject.spec.containers",
        "object.spec.containers.exists(c, size(c) > 2)",
        "object.spec.containers.exists(c, true)",
        "object.spec.containers.map(c, c.env).size() == 3",
        "object.metadata.annotations.all(k, object.metadata.annotations[k] != '')",
        "object.metadata.annotations.exists(k, k == 'b')",
        "object.spec.containers[0].image == oldObject.spec.containers[0].image",
        "object == oldObject",
        "object.metadata == oldObject.metadata",
        "has(object.spec.hostNetwork) || has(object.spec.containers)",
        "[1, 2].all(object, object > 0) && object.metadata.name == 'web'",
        "object.spec.containers.all(c, c.missing == 1)",
        "object.spec.containers.map(c, c.name).all(n, object.spec.containers.exists(d, d.name == n))",
        "object.spec.containers.all(c, c.env.size() > 0)",
        "object.spec.containers.all(c, c.name.startsWith('c')) && object.spec.containers.all(c, c == c)",
        "oldObject.spec.containers.all(c, object.spec.containers.exists(n, n.image == c.image))",
        "object.spec.containers.exists_one(c, has(c.env)) && object.metadata.labels.team == 'a'",
        "object.spec.containers[1].env.map(e, e.valueFrom).size() == 2",
    ];
    let base = cel::Context::default().with_all();
    for expression in expressions {
        let mut reads = Reads::default();
        let program = compile_expression(expression, &mut reads).expect("compiles");
        let run = |object: cel::Value, old: cel::Value| {
            let mut context = base.new_inner_scope();
            context.add_variable_from_value("object", object);
            context.add_variable_from_value("oldObject", old);
            format!("{:?}", program.execute(&context))
        };
        let whole = run(to_cel(&object), to_cel(&old));
        let read = run(
            to_cel_reading(&object, &reads.object),
            to_cel_reading(&old, &reads.old_object),
        );
        assert_eq!(read, whole, "{expression} (reads {reads:?})");
    }
    // And what is read is small where the rule reads little.
    let mut reads = Reads::default();
    compile_expression(
        "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        &mut reads,
    )
    .expect("compiles");
    assert_eq!(
        format!("{:?}", to_cel_reading(&object, &reads.object)),
        format!(
            "{:?}",
            to_cel(&json!({"spec": {"containers": [
                {"image": "ghcr.io/acme/s0:1"}, {"image": "ghcr.io/acme/s1:1"}, {"image": "ghcr.io/acme/s2:1"},
            ]}}))
        )
    );
    assert_eq!(reads.old_object, Access::Nothing);
}

// ---- errors quote no input ----------------------------------------------------------------------

/// A value in the pod that no violation may quote; it is not a valid duration, pattern,
/// quantity, URL, IP, CIDR, version, base64 or number.
const CANARY: &str = "S3CR3T-canary-(";

fn canary_pod() -> Json {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "mcp", "labels": {"team": "platform"}},
        "spec": {"containers": [{
            "name": "server",
            "image": "ghcr.io/acme/web:1.2",
            "env": [{"name": "API_TOKEN", "value": CANARY}]
        }]}
    })
}

#[test]
fn errors_name_the_function_and_the_failure_never_the_value() {
    let value = "object.spec.containers[0].env[0].value";
    let env = "object.spec.containers[0].env[0]";
    let cases = [
        // The three of the issue, then every other error that quoted its input.
        (
            format!("duration({value}) > duration('0s')"),
            "duration() failed: its argument is not a valid duration",
        ),
        (
            format!("'x'.matches({value})"),
            "matches() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("quantity({value}).isLessThan(quantity('1Gi'))"),
            "quantity() failed: its argument is not a valid quantity",
        ),
        (
            format!("timestamp({value}) > timestamp('2020-01-01T00:00:00Z')"),
            "timestamp() failed: its argument is not a valid timestamp",
        ),
        (
            format!("'x'.find({value}) == ''"),
            "find() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("'x'.findAll({value}).size() == 0"),
            "findAll() failed: the pattern is not a valid regular expression",
        ),
        (
            format!("url({value}).getHost() == ''"),
            "url() failed: its argument is not a valid URL",
        ),
        (
            format!("ip({value}).family() == 4"),
            "ip() failed: its argument is not a valid IP address",
        ),
        (
            format!("cidr({value}).prefixLength() == 8"),
            "cidr() failed: its argument is not a valid CIDR",
        ),
        (
            format!("cidr('10.0.0.0/8').containsIP({value})"),
            "containsIP() failed: its argument is not a valid IP address",
        ),
        (
            format!("semver({value}).major() == 1"),
            "semver() failed: its argument is not a valid semantic version",
        ),
        (
            format!("base64.decode({value}) == b''"),
            "base64.decode() failed: its argument is not valid base64",
        ),
        (
            format!("int({value}) == 1"),
            "int() failed: its argument is not a number of that type",
        ),
        (
            format!("double({value}) == 1.0"),
            "double() failed: its argument is not a number of that type",
        ),
        (
            format!("int({env}) == 1"),
            "int() failed: its argument cannot be used (the value is not shown)",
        ),
        (
            format!("string({env}) == ''"),
            "string() failed: its argument cannot be used (the value is not shown)",
        ),
        (
            format!("{value}.charAt(100) == ''"),
            "charAt() failed: an index is out of range",
        ),
        (
            format!("{value} + 1 == 2"),
            "unsupported binary operator 'add' on types string and int",
        ),
        (format!("-{value} == 1"), "no such overload"),
        (
            format!("{value}.getHost() == ''"),
            "url() failed: expected URL type",
        ),
        (
            format!("object.metadata.labels[{value}] == ''"),
            "no such key (the key is input, not shown; test optional fields with has() first)",
        ),
        (
            format!("{{{value}: 1}}[{env}] == 1"),
            "type map cannot be a map key",
        ),
        (
            format!("[1][{value}] == 1"),
            "an argument has the wrong type (want int|uint)",
        ),
        (format!("[1][size({value})] == 1"), "index out of bounds"),
        (
            format!("1 / (size({value}) - {}) == 1", CANARY.len()),
            "division by zero",
        ),
        (format!("size({value}) % 0 == 1"), "remainder by zero"),
        (
            format!("size({value}) * 9223372036854775807 == 1"),
            "integer overflow in 'mul' on types int and int",
        ),
    ];
    let mut failures = Vec::new();
    for (expression, expected) in &cases {
        let compiled = rules(vec![rule("canary", expression)]);
        let violations = compiled.evaluate(&canary_pod(), &create());
        let details: Vec<&str> = violations.iter().map(|v| v.detail.as_str()).collect();
        if details != [*expected] {
            failures.push(format!(
                "{expression}\n  got {details:?}\n  want {expected:?}"
            ));
        }
        for violation in &violations {
            assert!(
                !violation.to_string().contains("S3CR3T"),
                "{expression}: {violation}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_failing_message_expression_quotes_no_value_either() {
    let compiled = rules(vec![CelRule {
        message_expression: Some(
            "duration(object.spec.containers[0].env[0].value) > duration('0s') ? 'long' : 'short'"
                .into(),
        ),
        ..with_message("timeouts", "false", "timeouts must be durations")
    }]);
    assert_eq!(
        compiled.evaluate(&canary_pod(), &create()),
        vec![violation(
            "timeouts",
            "timeouts must be durations",
            "messageExpression failed: duration() failed: its argument is not a valid duration"
        )]
    );
}

#[test]
fn every_fixed_failure_text_is_passed_on_and_any_other_is_replaced() {
    assert_eq!(
        function_failure("asInteger", "quantity too large for integer"),
        "asInteger() failed: quantity too large for integer"
    );
    assert_eq!(
        function_failure("semver", &format!("invalid semver '{CANARY}': bad")),
        "semver() failed: its argument is not a valid semantic version"
    );
    assert_eq!(
        function_failure("lowerAscii", &format!("{CANARY} is odd")),
        "lowerAscii() failed: its argument cannot be used (the value is not shown)"
    );
    // A key is named only when the expression spells it out.
    assert!(names_key("object.metadata.labels.team == 'a'", "team"));
    assert!(names_key("m['team'] == 1", "team"));
    assert!(names_key(r#"m["team"] == 1"#, "team"));
    assert!(!names_key("m[object.x] == 1", "team"));
    assert!(!names_key("object.teams == 1", ""));
}

// ---- hostile sources: length, nesting, and the stack they need ----------------------------------

fn compile_error(expression: &str) -> String {
    let validate = ValidateSpec {
        rules: vec![rule("r", expression)],
        ..ValidateSpec::default()
    };
    match CompiledRules::compile(&validate) {
        Ok(_) => "compiles".into(),
        Err((path, problem)) => format!("{path}: {problem}"),
    }
}

const TOO_DEEP: &str = "spec.validate.rules[0].expression: expression is nested more than 128 levels deep, the limit (each operator, field selection, index and call is a level)";
const TOO_MANY_BRACKETS: &str = "spec.validate.rules[0].expression: expression nests more than 96 levels of brackets, the parser's limit";

#[test]
fn the_length_limit_counts_characters_and_is_checked_before_parsing() {
    // An unterminated string: the parser would report it; the length comes first.
    let over = format!("'{}", "é".repeat(MAX_EXPRESSION_CHARS));
    assert_eq!(
        compile_error(&over),
        "spec.validate.rules[0].expression: expression is 100001 characters long, more than the limit of 100000"
    );
    let at_limit = format!("'{}' != ''", "é".repeat(MAX_EXPRESSION_CHARS - 8));
    assert_eq!(at_limit.chars().count(), MAX_EXPRESSION_CHARS);
    assert_eq!(compile_error(&at_limit), "compiles");
}

#[test]
fn a_policy_s_expressions_together_are_bounded_before_any_is_parsed() {
    let compile_all = |rules: Vec<CelRule>| {
        let validate = ValidateSpec {
            rules,
            ..ValidateSpec::default()
        };
        match CompiledRules::compile(&validate) {
            Ok(_) => "compiles".to_owned(),
            Err((path, problem)) => format!("{path}: {problem}"),
        }
    };
    // Ten rules of 10,000 characters each fill the budget exactly...
    let long_rule = |index: usize| {
        let source = format!("'{}' != ''", "a".repeat(10_000 - 8));
        assert_eq!(source.chars().count(), 10_000);
        rule(&format!("rule-{index}"), &source)
    };
    assert_eq!(compile_all((0..10).map(long_rule).collect()), "compiles");
    // ...and one more character anywhere, a messageExpression included, is refused, naming
    // the limit, though every expression alone is far under its own limit.
    let mut over: Vec<CelRule> = (0..10).map(long_rule).collect();
    over[9].message_expression = Some("'x'".into());
    assert_eq!(
        compile_all(over),
        "spec.validate.rules: the expressions and messageExpressions together are more than 100000 characters long, the limit per policy"
    );
    // An unterminated source never reaches the parser once the budget is spent.
    let mut unparsable: Vec<CelRule> = (0..10).map(long_rule).collect();
    unparsable.push(rule("broken", "'unterminated"));
    assert_eq!(
        compile_all(unparsable),
        "spec.validate.rules: the expressions and messageExpressions together are more than 100000 characters long, the limit per policy"
    );
}

/// Each shape at the deepest nesting accepted and one level more: `(shape, accepted, refused)`.
fn shapes_at_the_depth_limit() -> Vec<(&'static str, String, String)> {
    let sum = |terms: usize| format!("1{} > 0", "+1".repeat(terms - 1));
    let selects = |n: usize| format!("object{} == 1", ".a".repeat(n));
    let indexes = |n: usize| format!("object{} == 1", "[0]".repeat(n));
    let calls = |n: usize| format!("'a'{} == 'a'", ".lowerAscii()".repeat(n));
    // Depth counts the tree: `a + b` is a call over its operands, `x == 1` one level more.
    vec![
        ("sum", sum(127), sum(128)),
        ("selects", selects(126), selects(127)),
        ("indexes", indexes(126), indexes(127)),
        ("calls", calls(126), calls(127)),
    ]
}

#[test]
fn nesting_is_bounded_in_every_shape_not_only_in_brackets() {
    for (shape, accepted, refused) in shapes_at_the_depth_limit() {
        assert_eq!(compile_error(&accepted), "compiles", "{shape}");
        assert_eq!(compile_error(&refused), TOO_DEEP, "{shape}");
    }
    // `&&` and `||` chains are balanced by the parser: 5,000 terms are 14 levels deep.
    let ands = format!("{}true", "object.a == 1 && ".repeat(5_000));
    assert_eq!(compile_error(&ands), "compiles");
}

/// tokio's default worker stack (`thread_stack_size`): where the webhook evaluates rules.
const WORKER_STACK: usize = 2 * 1024 * 1024;

#[test]
fn the_deepest_accepted_rules_evaluate_and_drop_on_a_worker_sized_stack() {
    let on_small_stack = std::thread::Builder::new()
        .stack_size(WORKER_STACK / 2)
        .spawn(|| {
            for (shape, accepted, _) in shapes_at_the_depth_limit() {
                let compiled = rules(vec![rule("deep", &accepted)]);
                let violations = compiled.evaluate(&team_pod(), &create());
                assert!(violations.len() <= 1, "{shape}: {violations:?}");
                drop(compiled);
            }
        })
        .expect("thread starts");
    on_small_stack
        .join()
        .expect("evaluation fits half a worker's stack");
}

const REPEATED_NOT: &str = "spec.validate.rules[0].expression: a run of `!` (`!!x`) is refused: the CEL library mcpguard uses reads it as a single `!`, so the rule would be judged inverted; write `x`, or `!(!x)`";

/// The hostile sources of the issue, each at the length that crashed and at the longest
/// length allowed: `(shape, source, what the loader says)`.
fn hostile_sources() -> Vec<(String, String, &'static str)> {
    let max = MAX_EXPRESSION_CHARS;
    let sum = |terms: usize| format!("1{} > 0", "+1".repeat(terms - 1));
    let selects = |n: usize| format!("object{} == 1", ".a".repeat(n));
    let indexes = |n: usize| format!("object{} == 1", "[0]".repeat(n));
    let lists = |n: usize| format!("{}1{} == []", "[".repeat(n), "]".repeat(n));
    let nots = |n: usize| format!("{}true", "!".repeat(n));
    let negations = |n: usize| format!("{}1{} == 1", "-(".repeat(n), ")".repeat(n));
    vec![
        ("sum 8000".into(), sum(8_000), TOO_DEEP),
        ("sum max".into(), sum((max - 3) / 2), TOO_DEEP),
        ("selects 8000".into(), selects(8_000), TOO_DEEP),
        ("selects max".into(), selects((max - 11) / 2), TOO_DEEP),
        ("indexes 5000".into(), indexes(5_000), TOO_DEEP),
        ("indexes max".into(), indexes((max - 11) / 3), TOO_DEEP),
        ("lists 5000".into(), lists(5_000), TOO_MANY_BRACKETS),
        ("lists max".into(), lists((max - 7) / 2), TOO_MANY_BRACKETS),
        ("negations 5000".into(), negations(5_000), TOO_MANY_BRACKETS),
        (
            "negations max".into(),
            negations((max - 6) / 3),
            TOO_MANY_BRACKETS,
        ),
        (
            "comparisons max".into(),
            format!("1{}", "<1".repeat((max - 1) / 2)),
            TOO_DEEP,
        ),
        // `!!...!x` parses flat (one operator, many tokens), and a run of `!` is refused.
        ("nots max".into(), nots(max - 4), REPEATED_NOT),
    ]
}

#[test]
fn hostile_sources_are_refused_whatever_stack_the_caller_has() {
    in_child_process("cel_rules::tests::hostile_sources_compile_from_a_small_stack");
}

/// Compiles every hostile source from a thread with a 256 KiB stack: the parser must not run
/// on the caller's stack. Before it had its own, the first of them aborted the process, so
/// this runs in a child process ([`in_child_process`]).
#[test]
#[ignore = "run in a child process by hostile_sources_are_refused_whatever_stack_the_caller_has"]
fn hostile_sources_compile_from_a_small_stack() {
    let caller = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for (shape, source, expected) in hostile_sources() {
                assert!(source.chars().count() <= MAX_EXPRESSION_CHARS, "{shape}");
                assert_eq!(compile_error(&source), expected, "{shape}");
            }
        })
        .expect("thread starts");
    caller.join().expect("every hostile source is answered");
}

/// Runs the ignored test `name` of this test binary in a child process and fails, with the
/// child's output, unless it passed: a stack overflow aborts the child, not this run. Only a
/// test harness starts a process; the core itself never does.
#[allow(clippy::disallowed_methods)]
fn in_child_process(name: &str) {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} failed in a child process ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_run_of_logical_nots_is_refused_because_the_parser_would_fold_it() {
    for source in [
        "!!has(object.spec.hostNetwork)",
        "! !true",
        "!!!false",
        "object.metadata.name == 'a' && !\n!true",
    ] {
        assert_eq!(compile_error(source), REPEATED_NOT, "{source}");
    }
    // `!=`, a parenthesised double negation, and `!!` inside strings and comments are fine.
    for source in [
        "!(!true)",
        "1 != 2 && !false",
        r#"'!!' != "!!" || true"#,
        r#"r'\!!' == 'x' || true"#,
        "'''!!''' != '' // !!\n&& true",
        "'a\\'!!' != ''",
    ] {
        assert_eq!(compile_error(source), "compiles", "{source}");
    }
    // A parenthesised double negation means what CEL says it means.
    let double = rules(vec![rule("double-negation", "!(!true)")]);
    assert_eq!(
        double.evaluate(&team_pod(), &create()),
        Vec::<Violation>::new()
    );
}

#[test]
fn the_cel_parser_still_folds_a_run_of_nots() {
    // Why the refusal above exists: `!!true` is `true` in CEL, and cel 0.13 gives `false`.
    // When this fails, the parser was fixed and the refusal can go.
    let program = Program::compile("!!true").expect("parses");
    let value = program
        .execute(&cel::Context::default())
        .expect("evaluates");
    assert_eq!(value, cel::Value::Bool(false));
}
