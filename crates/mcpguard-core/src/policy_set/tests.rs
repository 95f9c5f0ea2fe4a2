//! Claims, conflicts, the fallback, broken generations and the status each object gets.

use serde_json::{Value, json};

use super::*;

fn file_policy(namespaces: &[&str]) -> Arc<Policy> {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: file}}\nspec:\n  namespaces: {namespaces:?}\n  podSecurity: {{level: restricted, version: latest}}\n"
    );
    Arc::new(policy::parse_str(&text, "file.yaml").expect("the file policy loads"))
}

/// An MCPPolicy object as the API server serves it.
fn object(name: &str, created: &str, generation: i64, namespaces: Value) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPPolicy",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "generation": generation,
            "creationTimestamp": created,
            "resourceVersion": "1",
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {
            "namespaces": namespaces,
            "podSecurity": {"level": "baseline", "version": "v1.30"},
        },
    })
}

fn cluster(objects: &[Value]) -> ClusterPolicies {
    let mut cluster = ClusterPolicies::default();
    cluster.replace_all(objects);
    cluster
}

fn name_for(set: &PolicySet, namespace: &str) -> String {
    set.for_namespace(Some(namespace)).name.clone()
}

fn status<'a>(set: &'a PolicySet, name: &str) -> &'a MCPPolicyStatus {
    &set.statuses()
        .iter()
        .find(|report| report.name == name)
        .unwrap_or_else(|| panic!("no status for {name}"))
        .desired
}

fn condition<'a>(status: &'a MCPPolicyStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

const OLD: &str = "2026-01-01T00:00:00Z";
const NEW: &str = "2026-06-01T00:00:00Z";

#[test]
fn without_objects_the_file_policy_covers_its_namespaces_only() {
    let set = PolicySet::single(file_policy(&["mcp", "tools"]));
    assert_eq!(set.covered_namespaces(), vec!["mcp", "tools"]);
    assert_eq!(name_for(&set, "mcp"), "file");
    // Uncovered namespaces and cluster-scoped objects get the fallback, which does not
    // enforce them.
    assert!(
        !set.for_namespace(Some("default"))
            .enforces_namespace("default")
    );
    assert_eq!(set.for_namespace(None).name, "file");
    assert!(set.statuses().is_empty());
}

#[test]
fn an_object_takes_its_namespaces_and_the_file_keeps_the_rest() {
    let set = assemble(
        file_policy(&["mcp", "tools"]),
        &cluster(&[object("team-a", OLD, 1, json!(["tools", "team-a"]))]),
    );
    assert_eq!(set.covered_namespaces(), vec!["mcp", "team-a", "tools"]);
    assert_eq!(name_for(&set, "mcp"), "file");
    assert_eq!(name_for(&set, "tools"), "team-a");
    assert_eq!(name_for(&set, "team-a"), "team-a");
    let status = status(&set, "team-a");
    assert_eq!(status.namespaces, vec!["tools", "team-a"]);
    assert_eq!(status.observed_generation, Some(1));
    let ready = condition(status, READY);
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("True", "Enforcing", "enforcing in namespaces tools, team-a")
    );
    assert_eq!(ready.observed_generation, Some(1));
    let conflict = condition(status, CONFLICT);
    assert_eq!(
        (conflict.status.as_str(), conflict.reason.as_str()),
        ("False", "NoConflict")
    );
}

#[test]
fn adding_a_policy_for_another_namespace_never_leaves_mcp_unenforced() {
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[object("team-a", OLD, 1, json!(["team-a"]))]),
    );
    assert_eq!(name_for(&set, "mcp"), "file");
    assert!(set.for_namespace(Some("mcp")).enforces_namespace("mcp"));
}

#[test]
fn the_older_of_two_claims_keeps_the_namespace_and_both_statuses_say_so() {
    // Listed newest first: age decides, not the order the watch delivered them in.
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[
            object("newer", NEW, 3, json!(["shared", "own"])),
            object("older", OLD, 1, json!(["shared"])),
        ]),
    );
    assert_eq!(name_for(&set, "shared"), "older");
    assert_eq!(name_for(&set, "own"), "newer");
    let newer = status(&set, "newer");
    assert_eq!(newer.namespaces, vec!["own"]);
    let conflict = condition(newer, CONFLICT);
    assert_eq!(
        (
            conflict.status.as_str(),
            conflict.reason.as_str(),
            conflict.message.as_str()
        ),
        (
            "True",
            "NamespaceHeldElsewhere",
            r#"namespace "shared" is held by the older MCPPolicy "older""#
        )
    );
    assert_eq!(condition(newer, READY).status, "True");
    let older = status(&set, "older");
    assert_eq!(older.namespaces, vec!["shared"]);
    let conflict = condition(older, CONFLICT);
    assert_eq!(
        (
            conflict.status.as_str(),
            conflict.reason.as_str(),
            conflict.message.as_str()
        ),
        (
            "True",
            "NamespaceContested",
            r#"namespace "shared" is also claimed by the newer MCPPolicy "newer", which does not get it"#
        )
    );
}

#[test]
fn equal_ages_are_ordered_by_name() {
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[
            object("b", OLD, 1, json!(["shared"])),
            object("a", OLD, 1, json!(["shared"])),
        ]),
    );
    assert_eq!(name_for(&set, "shared"), "a");
}

#[test]
fn a_policy_that_loses_every_namespace_is_not_ready() {
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[
            object("older", OLD, 1, json!(["shared"])),
            object("newer", NEW, 1, json!(["shared"])),
        ]),
    );
    let ready = condition(status(&set, "newer"), READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NoNamespaces")
    );
    assert!(status(&set, "newer").namespaces.is_empty());
}

#[test]
fn a_broken_new_policy_claims_nothing_and_reports_the_loader_error() {
    let mut broken = object("broken", OLD, 1, json!(["mcp"]));
    broken["spec"]["podSecurity"]["level"] = json!("strict");
    let set = assemble(file_policy(&["mcp"]), &cluster(&[broken.clone()]));
    assert_eq!(name_for(&set, "mcp"), "file");
    let expected = policy::from_object(&broken)
        .expect_err("the object is broken")
        .to_string();
    assert!(expected.starts_with(r#"policy MCPPolicy "broken": spec.podSecurity.level: "#));
    let ready = condition(status(&set, "broken"), READY);
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("False", "InvalidSpec", expected.as_str())
    );
    assert!(status(&set, "broken").namespaces.is_empty());
}

#[test]
fn a_broken_edit_keeps_the_last_valid_generation_enforced() {
    let mut cluster = cluster(&[object("team", OLD, 1, json!(["team-a"]))]);
    let mut edited = object("team", OLD, 2, json!(["team-a", "team-b"]));
    edited["spec"]["mode"] = json!("block");
    cluster.apply(&edited);
    let set = assemble(file_policy(&["mcp"]), &cluster);
    assert_eq!(name_for(&set, "team-a"), "team");
    assert!(!set.covered_namespaces().contains(&"team-b".to_owned()));
    let status = status(&set, "team");
    assert_eq!(status.observed_generation, Some(2));
    let ready = condition(status, READY);
    assert_eq!(ready.status, "False");
    assert!(
        ready
            .message
            .ends_with("; generation 1, the last valid one, is still enforced"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains("spec.mode"), "{}", ready.message);
}

#[test]
fn an_unchanged_generation_is_not_recompiled() {
    let mut cluster = cluster(&[object("team", OLD, 1, json!(["team-a"]))]);
    let before = assemble(file_policy(&["mcp"]), &cluster);
    let mut status_only = object("team", OLD, 1, json!(["team-a"]));
    status_only["status"] = json!({"namespaces": ["team-a"]});
    cluster.apply(&status_only);
    let after = assemble(file_policy(&["mcp"]), &cluster);
    assert!(Arc::ptr_eq(
        before.for_namespace(Some("team-a")),
        after.for_namespace(Some("team-a"))
    ));
    let mut new_generation = object("team", OLD, 2, json!(["team-a"]));
    new_generation["spec"]["mode"] = json!("warn");
    cluster.apply(&new_generation);
    let changed = assemble(file_policy(&["mcp"]), &cluster);
    assert!(!Arc::ptr_eq(
        before.for_namespace(Some("team-a")),
        changed.for_namespace(Some("team-a"))
    ));
}

#[test]
fn a_deleted_policy_gives_its_namespaces_back() {
    let team = object("team", OLD, 1, json!(["mcp"]));
    let mut cluster = cluster(std::slice::from_ref(&team));
    assert_eq!(
        name_for(&assemble(file_policy(&["mcp"]), &cluster), "mcp"),
        "team"
    );
    cluster.remove(&team);
    assert!(cluster.is_empty());
    let set = assemble(file_policy(&["mcp"]), &cluster);
    assert_eq!(name_for(&set, "mcp"), "file");
    assert_eq!(set.covered_namespaces(), vec!["mcp"]);
}

#[test]
fn a_relist_drops_objects_that_are_gone() {
    let mut cluster = cluster(&[
        object("a", OLD, 1, json!(["team-a"])),
        object("b", OLD, 1, json!(["team-b"])),
    ]);
    cluster.replace_all(&[object("b", OLD, 1, json!(["team-b"]))]);
    assert_eq!(cluster.len(), 1);
    let set = assemble(file_policy(&["mcp"]), &cluster);
    assert_eq!(set.covered_namespaces(), vec!["mcp", "team-b"]);
}

#[test]
fn serving_lists_each_policy_once() {
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[object("team", OLD, 1, json!(["team-a", "team-b"]))]),
    );
    let names: Vec<String> = set.serving().iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, vec!["file", "team"]);
}

fn report(current: Option<Value>) -> StatusReport {
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[object("team", OLD, 1, json!(["team-a"]))]),
    );
    StatusReport {
        current,
        ..set.statuses()[0].clone()
    }
}

#[test]
fn a_new_status_is_stamped_with_now() {
    let written = status_to_write(&report(None), "2026-11-22T00:00:00Z").expect("a write");
    assert_eq!(written.namespaces, vec!["team-a"]);
    for condition in &written.conditions {
        assert_eq!(
            condition.last_transition_time.as_deref(),
            Some("2026-11-22T00:00:00Z")
        );
    }
}

#[test]
fn an_unchanged_status_is_not_written_again() {
    let first = status_to_write(&report(None), "2026-11-22T00:00:00Z").expect("a write");
    let current = serde_json::to_value(&first).expect("status serialises");
    assert_eq!(
        status_to_write(&report(Some(current)), "2026-11-23T00:00:00Z"),
        None
    );
}

#[test]
fn a_changed_condition_gets_a_new_transition_time_and_the_others_keep_theirs() {
    let first = status_to_write(&report(None), "2026-11-22T00:00:00Z").expect("a write");
    let mut current = serde_json::to_value(&first).expect("status serialises");
    // As if the Conflict condition had been True before.
    current["conditions"][1]["status"] = json!("True");
    let written = status_to_write(&report(Some(current)), "2026-11-23T00:00:00Z").expect("a write");
    let times: Vec<Option<&str>> = written
        .conditions
        .iter()
        .map(|c| c.last_transition_time.as_deref())
        .collect();
    assert_eq!(
        times,
        vec![Some("2026-11-22T00:00:00Z"), Some("2026-11-23T00:00:00Z")]
    );
}

#[test]
fn claim_warnings_say_what_a_write_will_do_to_each_namespace() {
    let set = assemble(
        file_policy(&["mcp", "tools"]),
        &cluster(&[object("held", "2026-03-01T00:00:00Z", 1, json!(["team-a"]))]),
    );
    let claims = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    // A new policy: it is the newest, so a held namespace stays with its holder.
    assert_eq!(
        set.claim_warnings("new", None, &claims(&["team-a", "mcp", "free"])),
        vec![
            r#"namespace "team-a" is held by the older MCPPolicy "held": this policy will not enforce it (see its Conflict condition)"#.to_owned(),
            r#"namespace "mcp" is covered by the policy file's "file": this MCPPolicy takes it over"#.into(),
        ]
    );
    // An older policy adding the namespace takes it over.
    assert_eq!(
        set.claim_warnings("ancient", Some(OLD), &claims(&["team-a"])),
        vec![r#"namespace "team-a" is held by the newer MCPPolicy "held": this policy takes it over"#.to_owned()]
    );
    // The holder itself, and namespaces nobody covers, need no warning.
    assert!(
        set.claim_warnings(
            "held",
            Some("2026-03-01T00:00:00Z"),
            &claims(&["team-a", "free"])
        )
        .is_empty()
    );
}

/// An exception that waives a Pod Security check on a pod name anyone can choose shows in
/// the status, naming the exception and the field; one matched by user does not.
#[test]
fn the_status_says_which_exceptions_trust_the_pods_author() {
    let with_exception = |name: &str, criteria: Value| {
        let mut policy = object(name, OLD, 1, json!([name]));
        policy["spec"]["exceptions"] = json!([{
            "name": "browsers",
            "reason": "SEC-1",
            "match": criteria,
            "checks": ["hostPorts"],
        }]);
        policy
    };
    let set = assemble(
        file_policy(&["mcp"]),
        &cluster(&[
            with_exception("by-name", json!({"names": ["playwright-*"]})),
            with_exception(
                "by-user",
                json!({"users": ["ci-bot"], "names": ["playwright-*"]}),
            ),
        ]),
    );
    let by_name = status(&set, "by-name");
    let warned = condition(by_name, EXCEPTIONS_TRUST_AUTHORS);
    assert_eq!(
        (
            warned.status.as_str(),
            warned.reason.as_str(),
            warned.message.as_str(),
            warned.observed_generation
        ),
        (
            "True",
            "AuthorChosenMatch",
            "exception \"browsers\" waives Pod Security check hostPorts on author-chosen fields only (match.names): any pod author in its namespaces can match it; add match.users/groups or pin match.images by digest",
            Some(1)
        )
    );
    let types: Vec<&str> = status(&set, "by-user")
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types, [READY, CONFLICT]);
}

// ---- offline routing (check, mutate, render) ------------------------------------------------

/// An MCPPolicy as a file holds it: no uid, no creationTimestamp, no generation.
fn file_object(name: &str, namespaces: Value) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPPolicy",
        "metadata": {"name": name},
        "spec": {"namespaces": namespaces, "podSecurity": {"level": "baseline", "version": "v1.30"}},
    })
}

#[test]
fn offline_routes_objects_over_the_file_policy_as_the_cluster_does() {
    let set = offline(
        file_policy(&["mcp", "tools"]),
        &[file_object("team-a", json!(["tools", "extra"]))],
    )
    .expect("both compile");
    assert_eq!(name_for(&set, "mcp"), "file");
    assert_eq!(name_for(&set, "tools"), "team-a");
    assert_eq!(name_for(&set, "extra"), "team-a");
    assert!(!set.covers("default"));
    assert_eq!(set.covered_namespaces(), ["extra", "mcp", "tools"]);
    assert!(set.conflicts().is_empty());
}

#[test]
fn offline_claims_on_one_namespace_go_by_name_and_the_loser_is_told() {
    let set = offline(
        file_policy(&["other"]),
        &[
            file_object("zeta", json!(["mcp"])),
            file_object("alpha", json!(["mcp"])),
        ],
    )
    .expect("both compile");
    assert_eq!(name_for(&set, "mcp"), "alpha");
    assert_eq!(
        set.conflicts(),
        [
            r#"MCPPolicy "alpha": namespace "mcp" is also claimed by the newer MCPPolicy "zeta", which does not get it"#,
            r#"MCPPolicy "zeta": namespace "mcp" is held by the older MCPPolicy "alpha""#,
        ]
    );
}

#[test]
fn offline_refuses_an_object_that_does_not_compile_and_a_repeated_name() {
    let mut broken = file_object("broken", json!(["mcp"]));
    broken["spec"]["podSecurity"]["level"] = json!("lax");
    let err = offline(file_policy(&["other"]), &[broken]).unwrap_err();
    assert_eq!(err.path, "spec.podSecurity.level", "{err}");

    let twice = [
        file_object("a", json!(["x"])),
        file_object("a", json!(["y"])),
    ];
    let err = offline(file_policy(&["other"]), &twice).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"policy "a": metadata.name: two MCPPolicy objects have this name"#
    );
}

#[test]
fn adjusted_changes_every_policy_once_and_keeps_the_routing() {
    let set = offline(
        file_policy(&["mcp"]),
        &[file_object("team", json!(["a", "b"]))],
    )
    .expect("both compile");
    let adjusted = set.adjusted(|policy| policy.name.push_str("-adjusted"));
    assert_eq!(name_for(&adjusted, "mcp"), "file-adjusted");
    assert_eq!(name_for(&adjusted, "a"), "team-adjusted");
    assert!(Arc::ptr_eq(
        adjusted.for_namespace(Some("a")),
        adjusted.for_namespace(Some("b"))
    ));
    assert_eq!(adjusted.fallback().name, "file-adjusted");
    assert_eq!(name_for(&set, "a"), "team", "the original set is unchanged");
}
