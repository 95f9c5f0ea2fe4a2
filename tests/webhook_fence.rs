//! A smoke test of the ValidatingAdmissionPolicy that fences mcpguard's ServiceAccount on
//! its webhook configurations (webhook-manifests/webhook-fence/webhook-fence.yaml).
//!
//! Its expressions run here on the CEL library mcpguard embeds (cel-rust, through kube-cel),
//! not on the API server's cel-go, so this proves the logic, not the API server's verdict:
//! the manifest keeps to the subset both share. Each case is an UPDATE of one of the two
//! shipped configurations, made the way the leader or a thief would make it, and the test
//! asserts exactly which validations deny it.

use std::path::Path;

use kube_cel::cel::{self, Program};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FENCE: &str = "webhook-manifests/webhook-fence/webhook-fence.yaml";
const WEBHOOKS: &str = "webhook-manifests/base/webhooks.yaml";
const MCPGUARD: &str = "system:serviceaccount:mcpguard-system:mcpguard";

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).expect(path);
    serde_saphyr::from_multiple::<Value>(&text).expect("the manifest parses")
}

fn policy() -> Value {
    documents(FENCE)
        .into_iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("the policy")
}

fn configuration(kind: &str) -> Value {
    documents(WEBHOOKS)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .expect("the configuration")
}

fn evaluate(expression: &str, variables: &Value) -> bool {
    let program = Program::compile(expression)
        .unwrap_or_else(|e| panic!("the expression parses: {e:?}\n{expression}"));
    let mut context = cel::Context::default();
    for (name, value) in variables.as_object().expect("variables") {
        context.add_variable_from_value(
            name.as_str(),
            cel::to_value(value).expect("JSON converts to CEL"),
        );
    }
    match program.execute(&context) {
        Ok(cel::Value::Bool(verdict)) => verdict,
        other => panic!("{expression} gave {other:?}, not a bool"),
    }
}

/// What the fence answers: `None` when the ServiceAccount is not fenced (a match condition
/// is false), else the messages of the validations that fail.
fn judge(operation: &str, user: &str, old: &Value, new: &Value) -> Option<Vec<String>> {
    let policy = policy();
    let variables = json!({
        "request": {"operation": operation, "userInfo": {"username": user}},
        "object": if operation == "DELETE" { Value::Null } else { new.clone() },
        "oldObject": if operation == "CREATE" { Value::Null } else { old.clone() },
    });
    let conditions = policy["spec"]["matchConditions"]
        .as_array()
        .expect("match conditions");
    if !conditions
        .iter()
        .all(|c| evaluate(c["expression"].as_str().expect("expression"), &variables))
    {
        return None;
    }
    Some(
        policy["spec"]["validations"]
            .as_array()
            .expect("validations")
            .iter()
            .filter(|v| !evaluate(v["expression"].as_str().expect("expression"), &variables))
            .map(|v| v["message"].as_str().expect("message").to_owned())
            .collect(),
    )
}

const CREATE_OR_DELETE: &str =
    "mcpguard's ServiceAccount may update its webhook configurations, never create or delete them";
const METADATA: &str = "mcpguard's ServiceAccount may not change the labels, annotations, owners or finalizers of its webhook configurations";
const WEBHOOK_LIST: &str =
    "mcpguard's ServiceAccount may not add, remove, rename or reorder webhooks";
const FIELDS: &str = "mcpguard's ServiceAccount may change only clientConfig.caBundle and namespaceSelector of its webhooks; rules, clientConfig service and URL, failure policy, timeouts and selectors on objects stay as installed";
const SELECTOR: &str = "mcpguard's ServiceAccount must keep namespaceSelector a kubernetes.io/metadata.name In list of at least one namespace that names none of kube-system, kube-public, kube-node-lease, mcpguard-system";

const KINDS: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Each case edits a copy of a shipped configuration; both configurations get each case.
fn denied_by(edit: impl Fn(&mut Value)) -> Vec<Vec<String>> {
    KINDS
        .iter()
        .map(|kind| {
            let old = configuration(kind);
            let mut new = old.clone();
            edit(&mut new);
            judge("UPDATE", MCPGUARD, &old, &new).expect("mcpguard's ServiceAccount is fenced")
        })
        .collect()
}

fn each(messages: &[&str]) -> Vec<Vec<String>> {
    let one: Vec<String> = messages.iter().map(|m| (*m).to_owned()).collect();
    vec![one.clone(), one]
}

#[test]
fn rotating_the_ca_bundle_is_allowed() {
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["clientConfig"]["caBundle"] = json!("bmV3LWNh")),
        each(&[])
    );
}

#[test]
fn moving_the_selector_to_other_namespaces_is_allowed() {
    assert_eq!(
        denied_by(|c| {
            c["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] =
                json!(["mcp", "mcp-tools", "team-a"]);
        }),
        each(&[])
    );
    // The selector the leader writes (cluster/selfcert.rs) passes the fence.
    let written = mcpguard::cluster::selfcert::namespace_selector(&["team-b".into(), "mcp".into()]);
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["namespaceSelector"] = written.clone()),
        each(&[])
    );
}

#[test]
fn changing_the_rules_is_denied() {
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["rules"] = json!([])),
        each(&[FIELDS])
    );
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["rules"][0]["operations"] = json!(["DELETE"])),
        each(&[FIELDS])
    );
}

#[test]
fn redirecting_the_client_config_is_denied() {
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["clientConfig"]["service"]["name"] = json!("thief")),
        each(&[FIELDS])
    );
    assert_eq!(
        denied_by(|c| {
            let client = &mut c["webhooks"][0]["clientConfig"];
            client
                .as_object_mut()
                .expect("clientConfig")
                .remove("service");
            client["url"] = json!("https://thief.example/");
        }),
        each(&[FIELDS])
    );
}

#[test]
fn weakening_the_failure_policy_or_timeout_is_denied() {
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["failurePolicy"] = json!("Ignore")),
        each(&[FIELDS])
    );
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["timeoutSeconds"] = json!(1)),
        each(&[FIELDS])
    );
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["objectSelector"] = json!({"matchLabels": {"x": "y"}})),
        each(&[FIELDS])
    );
}

#[test]
fn a_selector_that_takes_in_a_protected_namespace_is_denied() {
    for protected in mcpguard_core::policy::PROTECTED_NAMESPACES {
        assert_eq!(
            denied_by(|c| {
                c["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] =
                    json!(["mcp", protected]);
            }),
            each(&[SELECTOR]),
            "{protected}"
        );
    }
}

#[test]
fn a_selector_that_selects_everything_or_nothing_is_denied() {
    // Everything: no selector, an empty one, or one on another label.
    for selector in [
        json!({}),
        json!({"matchLabels": {"team": "a"}}),
        json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
        json!({"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
        ]}),
    ] {
        assert_eq!(
            denied_by(|c| c["webhooks"][0]["namespaceSelector"] = selector.clone()),
            each(&[SELECTOR]),
            "{selector}"
        );
    }
    assert_eq!(
        denied_by(|c| {
            c["webhooks"][0]
                .as_object_mut()
                .expect("webhook")
                .remove("namespaceSelector");
        }),
        each(&[SELECTOR])
    );
    // Nothing: an empty In list, or a NotIn that cancels the In list.
    assert_eq!(
        denied_by(|c| {
            c["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] = json!([]);
        }),
        each(&[SELECTOR])
    );
    assert_eq!(
        denied_by(|c| {
            c["webhooks"][0]["namespaceSelector"]["matchExpressions"][1]["values"] = json!(["mcp"]);
        }),
        each(&[SELECTOR])
    );
}

#[test]
fn renaming_removing_or_adding_webhooks_is_denied() {
    assert_eq!(
        denied_by(|c| c["webhooks"][0]["name"] = json!("other.mcpguard.dev")),
        each(&[WEBHOOK_LIST, FIELDS])
    );
    assert_eq!(
        denied_by(|c| c["webhooks"] = json!([])),
        each(&[WEBHOOK_LIST])
    );
    assert_eq!(
        denied_by(|c| {
            let copy = c["webhooks"][0].clone();
            c["webhooks"].as_array_mut().expect("webhooks").push(copy);
        }),
        each(&[WEBHOOK_LIST])
    );
}

#[test]
fn changing_labels_or_annotations_is_denied() {
    assert_eq!(
        denied_by(|c| c["metadata"]["labels"] = json!({"app.kubernetes.io/part-of": "other"})),
        each(&[METADATA])
    );
    assert_eq!(
        denied_by(|c| {
            c["metadata"]["annotations"] = json!({"cert-manager.io/inject-ca-from": "thief/ca"});
        }),
        each(&[METADATA])
    );
}

#[test]
fn creating_or_deleting_a_configuration_is_denied() {
    let old = configuration(KINDS[1]);
    assert_eq!(
        judge("DELETE", MCPGUARD, &old, &Value::Null),
        Some(vec![CREATE_OR_DELETE.to_owned()])
    );
    assert_eq!(
        judge("CREATE", MCPGUARD, &Value::Null, &old),
        Some(vec![CREATE_OR_DELETE.to_owned()])
    );
}

#[test]
fn other_users_are_not_fenced() {
    let old = configuration(KINDS[0]);
    let mut new = old.clone();
    new["webhooks"][0]["rules"] = json!([]);
    for user in [
        "kubernetes-admin",
        "system:serviceaccount:cert-manager:cert-manager-cainjector",
        "system:serviceaccount:other:mcpguard",
    ] {
        assert_eq!(judge("UPDATE", user, &old, &new), None, "{user}");
    }
    assert_eq!(
        judge("UPDATE", MCPGUARD, &old, &new),
        Some(vec![FIELDS.to_owned()])
    );
}

/// The fence's list of protected namespaces is the policy loader's.
#[test]
fn the_fence_protects_the_namespaces_policies_may_never_claim() {
    let expression = policy()["spec"]["validations"][4]["expression"]
        .as_str()
        .expect("selector expression")
        .to_owned();
    let listed = format!(
        "[{}]",
        mcpguard_core::policy::PROTECTED_NAMESPACES
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(expression.matches(&listed).count(), 2, "{expression}");
}
