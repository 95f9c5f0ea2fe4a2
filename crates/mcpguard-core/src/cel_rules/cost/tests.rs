//! The cost model: estimates follow the actual input and grow as the work does, and a rule
//! over its limit is not evaluated.

use kube_cel::cel::Program;
use pretty_assertions::assert_eq;
use serde_json::{Value as Json, json};

use super::*;
use crate::cel_rules::tests::{compile, create, many_containers, rule, team_pod, violation};

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
