//! Converting only what the expressions read gives every expression the result the whole
//! input would.

use kube_cel::KubeCelExt;
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::cel_rules::check::compile_expression;
use crate::cel_rules::tests::many_containers;

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
