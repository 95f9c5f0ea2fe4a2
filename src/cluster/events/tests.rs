//! `event_for`: the exact Event record for every decision that deserves one (denials, warned
//! and audited violations, mutations when asked), none for the rest, and the queue's two
//! ways of refusing a record.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use super::*;
use mcpguard_core::engine::{self, Context, Decision, Outcome};
use mcpguard_core::policy::{Policy, parse_str};
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mcpguard_core::violation::Violation;

// ---- fixtures ------------------------------------------------------------------------------

const USER: &str = "jane@example.com";
const POD_UID: &str = "5d3e1c52-5b6a-4f7e-9a43-0c5d1c3b8f10";
const BARE_POD_CHECKS: &str =
    "allowPrivilegeEscalation, capabilities_restricted, runAsNonRoot, seccompProfile_restricted";

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("valid timestamp")
}

fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy loads")
}

/// The default policy with `mode` replaced.
fn policy_in_mode(mode: &str) -> Policy {
    let text = mcpguard_core::policy::DEFAULT_POLICY_YAML
        .replace("mode: enforce", &format!("mode: {mode}"));
    assert_ne!(
        text,
        mcpguard_core::policy::DEFAULT_POLICY_YAML,
        "mode line found"
    );
    parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("policy loads: {e}"))
}

fn validate(policy: &Policy, request: &AdmissionRequest) -> Decision {
    let classes = StaticRuntimeClasses::default();
    engine::validate(
        request,
        Context {
            policy,
            runtime_classes: &classes,
            now: now(),
        },
    )
}

fn mutate(policy: &Policy, request: &AdmissionRequest) -> Decision {
    let classes = StaticRuntimeClasses::default();
    engine::mutate(
        request,
        Context {
            policy,
            runtime_classes: &classes,
            now: now(),
        },
    )
}

/// A pod `CREATE` in `mcp` as kube-apiserver sends it to the validating webhook.
fn pod_request(name: &str, object: Value) -> Value {
    json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": name,
        "namespace": "mcp",
        "operation": "CREATE",
        "userInfo": {"username": USER, "groups": ["system:authenticated"]},
        "object": object,
    })
}

fn build(request: Value) -> AdmissionRequest {
    serde_json::from_value(request).expect("valid AdmissionRequest")
}

/// Fails the restricted level on four checks (no MCP rule).
fn bare_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "mcp", "uid": POD_UID},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1", "imagePullPolicy": "Always"}]}
    })
}

/// Passes the restricted level and every rule of the default policy, and needs no mutation.
fn hardened_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "mcp", "uid": POD_UID},
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true,
                                "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "ghcr.io/x/app:1", "imagePullPolicy": "Always",
                "resources": {"requests": {"memory": "400Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                    "runAsGroup": 1000, "runAsNonRoot": true, "runAsUser": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}}
            }]
        }
    })
}

fn pod_reference(name: &str, uid: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(name.into()),
        namespace: Some("mcp".into()),
        uid: uid.map(str::to_owned),
        ..ObjectReference::default()
    }
}

fn denial_record(note: String, regarding: ObjectReference) -> EventRecord {
    EventRecord {
        event_type: EventType::Warning,
        reason: "PolicyViolation",
        action: "Denied",
        note,
        regarding,
        claimed_owner: None,
    }
}

/// A decision with the given outcome and violations of the named checks.
fn decision_with(outcome: Outcome, checks: &[&str]) -> Decision {
    Decision {
        outcome,
        patch: None,
        warnings: Vec::new(),
        violations: checks
            .iter()
            .map(|check| Violation {
                check: (*check).to_owned(),
                reason: format!("{check} reason"),
                detail: String::new(),
                fields: Vec::new(),
            })
            .collect(),
        status: None,
        audit_annotations: Default::default(),
    }
}

// ---- denials -------------------------------------------------------------------------------

#[test]
fn denied_pod_gets_a_warning_about_the_pod() {
    let request = build(pod_request("p", bare_pod("p")));
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(denial_record(
            format!(
                "policy \"mcp-restricted\" denied CREATE of pods \"p\" by {USER}: {BARE_POD_CHECKS}"
            ),
            pod_reference("p", Some(POD_UID)),
        ))
    );
    // The same with record_mutations on: it only adds mutation Events.
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", true),
        event_for(&request, &decision, "mcp-restricted", false)
    );
}

#[test]
fn the_note_names_the_policy_it_is_given_the_operation_and_an_unknown_user() {
    let mut raw = pod_request("p", bare_pod("p"));
    raw["operation"] = json!("UPDATE");
    raw["userInfo"] = json!({});
    let request = build(raw);
    let decision = decision_with(Outcome::Denied, &["privileged", "hostNamespaces"]);
    assert_eq!(
        event_for(&request, &decision, "other-policy", false),
        Some(denial_record(
            "policy \"other-policy\" denied UPDATE of pods \"p\" by unknown user: privileged, hostNamespaces".into(),
            pod_reference("p", Some(POD_UID)),
        ))
    );
}

fn replica_set_claim() -> ClaimedOwner {
    ClaimedOwner {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "web-7d4b9c".into(),
        uid: "8a0e7c4e-0000-4000-8000-00000000a001".into(),
    }
}

/// The pod's author writes `ownerReferences`: the claimed controller is recorded for the
/// worker to verify, and the Event stays on the pod until it does.
#[test]
fn a_pods_claimed_controller_is_recorded_not_trusted() {
    let mut pod = bare_pod("web-7d4b9c-x2x9z");
    pod["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-the-controller", "uid": "cm-uid"},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
         "uid": "8a0e7c4e-0000-4000-8000-00000000a001", "controller": true, "blockOwnerDeletion": true},
    ]);
    let request = build(pod_request("web-7d4b9c-x2x9z", pod));
    let decision = validate(&default_policy(), &request);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(EventRecord {
            claimed_owner: Some(replica_set_claim()),
            ..denial_record(
                format!(
                    "policy \"mcp-restricted\" denied CREATE of pods \"web-7d4b9c-x2x9z\" by {USER}: {BARE_POD_CHECKS}"
                ),
                pod_reference("web-7d4b9c-x2x9z", Some(POD_UID)),
            )
        })
    );
}

#[test]
fn owners_that_are_not_controllers_are_not_claims() {
    let mut pod = bare_pod("p");
    pod["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": false},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-uid"},
    ]);
    let request = build(pod_request("p", pod));
    let decision = validate(&default_policy(), &request);
    let record = event_for(&request, &decision, "mcp-restricted", false).expect("an Event");
    assert_eq!(record.regarding, pod_reference("p", Some(POD_UID)));
    assert_eq!(record.claimed_owner, None);
}

/// A claim whose fields could not belong to a real object is dropped on the hot path, so
/// nothing odd reaches a URL path or a note.
#[test]
fn claims_that_name_no_possible_object_are_dropped() {
    let claim_of =
        |owner: Value| ClaimedOwner::of(&json!({"metadata": {"ownerReferences": [owner]}}));
    let valid = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                       "uid": "8a0e7c4e-0000-4000-8000-00000000a001", "controller": true});
    assert_eq!(claim_of(valid.clone()), Some(replica_set_claim()));
    let with = |key: &str, value: Value| {
        let mut owner = valid.clone();
        owner[key] = value;
        owner
    };
    for (key, value) in [
        (
            "name",
            json!("../../api/v1/namespaces/kube-system/secrets/x"),
        ),
        ("name", json!("web/x")),
        ("name", json!("Web")),
        ("name", json!("web..x")),
        ("name", json!("")),
        ("name", json!("a".repeat(254))),
        ("name", json!(7)),
        ("kind", json!("Replica Set")),
        ("kind", json!("")),
        ("kind", json!("K".repeat(64))),
        ("apiVersion", json!("apps/v1?x=y")),
        ("apiVersion", json!("")),
        ("uid", json!("a b")),
        ("uid", json!("")),
        ("uid", json!("u".repeat(129))),
    ] {
        assert_eq!(claim_of(with(key, value.clone())), None, "{key}: {value}");
    }
    let mut without_uid = valid.clone();
    without_uid.as_object_mut().expect("object").remove("uid");
    assert_eq!(claim_of(without_uid), None);
    // The longest valid name is kept.
    let longest = format!("{}.{}", "a".repeat(63), "b".repeat(189));
    assert_eq!(longest.len(), 253);
    assert_eq!(
        claim_of(with("name", json!(longest.clone()))).map(|c| c.name),
        Some(longest)
    );
    // Only a `controller: true` entry is a claim, and not a truthy string.
    assert_eq!(claim_of(with("controller", json!("true"))), None);
    assert_eq!(
        ClaimedOwner::of(&json!({"metadata": {"ownerReferences": "x"}})),
        None
    );
}

// ---- the note of an Event left on the request's object -------------------------------------

#[test]
fn an_unverified_owner_is_named_at_the_end_of_the_note() {
    assert_eq!(
        note_with_unverified_owner(
            "policy \"p\" denied CREATE of pods \"x\" by bob: privileged",
            &replica_set_claim()
        ),
        "policy \"p\" denied CREATE of pods \"x\" by bob: privileged [unverified owner: ReplicaSet \"web-7d4b9c\"]"
    );
}

#[test]
fn the_mention_always_fits_in_1024_bytes() {
    let mention = " [unverified owner: ReplicaSet \"web-7d4b9c\"]";
    let note = "n".repeat(MAX_NOTE_BYTES);
    let mentioned = note_with_unverified_owner(&note, &replica_set_claim());
    assert_eq!(mentioned.len(), MAX_NOTE_BYTES);
    let kept = MAX_NOTE_BYTES - mention.len() - 3;
    assert_eq!(mentioned, format!("{}...{mention}", "n".repeat(kept)));
    // A note that fits with its mention is not cut.
    let note = "n".repeat(MAX_NOTE_BYTES - mention.len());
    assert_eq!(
        note_with_unverified_owner(&note, &replica_set_claim()),
        format!("{note}{mention}")
    );
}

// ---- remembered verifications --------------------------------------------------------------

fn claim_named(name: &str) -> ClaimedOwner {
    ClaimedOwner {
        name: name.into(),
        ..replica_set_claim()
    }
}

#[test]
fn verifications_are_remembered_for_their_ttl_only() {
    let start = std::time::Instant::now();
    let ttl = std::time::Duration::from_secs(60);
    let mut seen = VerifiedOwners::new(4, ttl);
    assert_eq!(seen.get("mcp", &claim_named("a"), start), None);
    seen.insert("mcp", &claim_named("a"), true, start);
    seen.insert("mcp", &claim_named("b"), false, start);
    assert_eq!(
        seen.get("mcp", &claim_named("a"), start + ttl / 2),
        Some(true)
    );
    assert_eq!(
        seen.get("mcp", &claim_named("b"), start + ttl / 2),
        Some(false)
    );
    // Another namespace, UID or kind is another question.
    assert_eq!(seen.get("other", &claim_named("a"), start), None);
    let other_uid = ClaimedOwner {
        uid: "other".into(),
        ..claim_named("a")
    };
    assert_eq!(seen.get("mcp", &other_uid, start), None);
    assert_eq!(seen.get("mcp", &claim_named("a"), start + ttl), None);
}

#[test]
fn a_full_memory_forgets_expired_answers_first_then_the_oldest() {
    let start = std::time::Instant::now();
    let ttl = std::time::Duration::from_secs(60);
    let second = std::time::Duration::from_secs(1);
    let mut seen = VerifiedOwners::new(3, ttl);
    seen.insert("mcp", &claim_named("a"), true, start);
    seen.insert("mcp", &claim_named("b"), true, start + 30 * second);
    seen.insert("mcp", &claim_named("c"), true, start + 40 * second);
    // At 70 s, `a` has expired: it goes, `b` and `c` stay.
    let at = start + 70 * second;
    seen.insert("mcp", &claim_named("d"), true, at);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.get("mcp", &claim_named("b"), at), Some(true));
    assert_eq!(seen.get("mcp", &claim_named("c"), at), Some(true));
    assert_eq!(seen.get("mcp", &claim_named("d"), at), Some(true));
    // Nothing expired: the oldest (`b`) goes.
    seen.insert("mcp", &claim_named("e"), false, at);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.get("mcp", &claim_named("b"), at), None);
    assert_eq!(seen.get("mcp", &claim_named("c"), at), Some(true));
    // Answering a remembered question again replaces it and evicts nothing.
    seen.insert("mcp", &claim_named("c"), false, at);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.get("mcp", &claim_named("c"), at), Some(false));
    assert_eq!(seen.get("mcp", &claim_named("d"), at), Some(true));
}

#[test]
fn pod_with_only_generate_name_is_named_by_its_prefix() {
    let mut pod = bare_pod("ignored");
    pod["metadata"] = json!({"generateName": "github-mcp-", "namespace": "mcp"});
    let request = build(pod_request("", pod));
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(denial_record(
            format!(
                "policy \"mcp-restricted\" denied CREATE of pods \"github-mcp-\" by {USER}: {BARE_POD_CHECKS}"
            ),
            pod_reference("github-mcp-", None),
        ))
    );
}

#[test]
fn denied_deployment_is_reported_on_the_deployment() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mcp", "uid": "d1d1d1d1-0000-4000-8000-000000000001"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"hostNetwork": true,
                         "containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]}
            }
        }
    });
    let request = build(json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800003",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web",
        "namespace": "mcp",
        "operation": "CREATE",
        "userInfo": {"username": USER},
        "object": deployment,
    }));
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(denial_record(
            format!(
                "policy \"mcp-restricted\" denied CREATE of deployments \"web\" by {USER}: hostNamespaces"
            ),
            ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some("web".into()),
                namespace: Some("mcp".into()),
                uid: Some("d1d1d1d1-0000-4000-8000-000000000001".into()),
                ..ObjectReference::default()
            },
        ))
    );
}

// ---- admitted violations -------------------------------------------------------------------

#[test]
fn warn_mode_records_the_violation_as_admitted() {
    let policy = policy_in_mode("warn");
    let request = build(pod_request("p", bare_pod("p")));
    let decision = validate(&policy, &request);
    assert_eq!(decision.outcome, Outcome::Warned);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(EventRecord {
            event_type: EventType::Warning,
            reason: "PolicyViolation",
            action: "Admitted",
            note: format!(
                "policy \"mcp-restricted\" admitted CREATE of pods \"p\" by {USER}: {BARE_POD_CHECKS}"
            ),
            regarding: pod_reference("p", Some(POD_UID)),
            claimed_owner: None,
        })
    );
}

#[test]
fn audit_mode_records_the_violation_as_admitted() {
    let policy = policy_in_mode("audit");
    let request = build(pod_request("p", bare_pod("p")));
    let decision = validate(&policy, &request);
    assert_eq!(decision.outcome, Outcome::Audited);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        Some(EventRecord {
            event_type: EventType::Warning,
            reason: "PolicyViolation",
            action: "Admitted",
            note: format!(
                "policy \"mcp-restricted\" admitted CREATE of pods \"p\" by {USER}: {BARE_POD_CHECKS}"
            ),
            regarding: pod_reference("p", Some(POD_UID)),
            claimed_owner: None,
        })
    );
}

// ---- no Event ------------------------------------------------------------------------------

#[test]
fn dry_run_denial_gets_no_event() {
    let mut raw = pod_request("p", bare_pod("p"));
    raw["dryRun"] = json!(true);
    let request = build(raw);
    let decision = validate(&default_policy(), &request);
    assert_eq!(
        decision.outcome,
        Outcome::Denied,
        "a dry run is still judged"
    );
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        None
    );
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);
    // dryRun: false is an ordinary request.
    let mut raw = pod_request("p", bare_pod("p"));
    raw["dryRun"] = json!(false);
    let request = build(raw);
    assert!(event_for(&request, &decision, "mcp-restricted", false).is_some());
}

#[test]
fn dry_run_mutation_gets_no_event_even_when_mutations_are_recorded() {
    let mut raw = pod_request("p", bare_pod("p"));
    raw["dryRun"] = json!(true);
    let request = build(raw);
    let decision = mutate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Mutated);
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);
}

#[test]
fn allowed_pod_gets_no_event() {
    let request = build(pod_request("p", hardened_pod()));
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        None
    );
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);
    // Nor does a mutation that changes nothing.
    let decision = mutate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Allowed);
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);
}

#[test]
fn skipped_and_invalid_decisions_get_no_event() {
    let mut raw = pod_request("p", bare_pod("p"));
    raw["namespace"] = json!("default");
    let request = build(raw);
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Skipped);
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);

    let mut raw = pod_request("p", bare_pod("p"));
    raw.as_object_mut().expect("object").remove("object");
    let request = build(raw);
    let decision = validate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Invalid);
    assert_eq!(event_for(&request, &decision, "mcp-restricted", true), None);
}

#[test]
fn a_request_without_an_object_gets_no_event_even_when_denied() {
    let mut raw = pod_request("p", bare_pod("p"));
    raw.as_object_mut().expect("object").remove("object");
    let request = build(raw);
    let decision = decision_with(Outcome::Denied, &["privileged"]);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        None
    );
}

// ---- mutations -----------------------------------------------------------------------------

const MUTATED_FIELDS: &str = "containers.resources.requests.memory,containers.securityContext.allowPrivilegeEscalation,containers.securityContext.capabilities,containers.securityContext.runAsGroup,containers.securityContext.runAsNonRoot,containers.securityContext.runAsUser,containers.securityContext.seccompProfile,spec.automountServiceAccountToken,spec.securityContext.fsGroup,spec.securityContext.runAsGroup,spec.securityContext.runAsNonRoot,spec.securityContext.runAsUser,spec.securityContext.seccompProfile";

#[test]
fn mutated_pod_is_recorded_only_when_mutations_are() {
    let request = build(pod_request("p", bare_pod("p")));
    let decision = mutate(&default_policy(), &request);
    assert_eq!(decision.outcome, Outcome::Mutated);
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", true),
        Some(EventRecord {
            event_type: EventType::Normal,
            reason: "PolicyMutated",
            action: "Mutated",
            note: format!(
                "policy \"mcp-restricted\" mutated pods \"p\" for {USER}: set {MUTATED_FIELDS}"
            ),
            regarding: pod_reference("p", Some(POD_UID)),
            claimed_owner: None,
        })
    );
    assert_eq!(
        event_for(&request, &decision, "mcp-restricted", false),
        None
    );
}

// ---- the 1 KiB limit -----------------------------------------------------------------------

/// `policy "mcp-restricted" denied CREATE of pods "p" by ` is 53 bytes.
const NOTE_PREFIX: &str = "policy \"mcp-restricted\" denied CREATE of pods \"p\" by ";

fn note_for_user(user: &str, checks: &[&str]) -> String {
    let mut raw = pod_request("p", bare_pod("p"));
    raw["userInfo"] = json!({"username": user});
    let request = build(raw);
    let decision = decision_with(Outcome::Denied, checks);
    event_for(&request, &decision, "mcp-restricted", false)
        .expect("an Event")
        .note
}

#[test]
fn a_note_of_exactly_1024_bytes_is_kept_whole() {
    assert_eq!(NOTE_PREFIX.len(), 53);
    // 53 + 959 + ": privileged" (12) = 1024.
    let user = "u".repeat(959);
    let note = note_for_user(&user, &["privileged"]);
    assert_eq!(note, format!("{NOTE_PREFIX}{user}: privileged"));
    assert_eq!(note.len(), 1024);
}

#[test]
fn a_note_of_1025_bytes_is_cut_to_1024_ending_in_dots() {
    let user = "u".repeat(960);
    let note = note_for_user(&user, &["privileged"]);
    assert_eq!(note.len(), 1024);
    // 53 + 960 = 1013 bytes, then 8 of ": privileged" make 1021, then "...".
    assert_eq!(note, format!("{NOTE_PREFIX}{user}: privil..."));
}

#[test]
fn a_long_note_is_cut_on_a_character_boundary() {
    // The user starts at byte 53; "x" then two-byte "é"s put character boundaries on even
    // offsets, so byte 1021 falls inside a character and the cut moves back to 1020.
    let user = format!("x{}", "é".repeat(600));
    let full = format!("{NOTE_PREFIX}{user}: privileged");
    assert!(
        !full.is_char_boundary(1021),
        "the test exercises a mid-character cut"
    );
    let note = note_for_user(&user, &["privileged"]);
    assert_eq!(note, format!("{NOTE_PREFIX}x{}...", "é".repeat(483)));
    assert_eq!(note.len(), 1023);
    assert!(note.len() <= MAX_NOTE_BYTES);
}

// ---- the queue -----------------------------------------------------------------------------

fn sample_record(name: &str) -> EventRecord {
    denial_record(format!("note for {name}"), pod_reference(name, None))
}

#[test]
fn a_full_queue_refuses_at_once_and_keeps_what_it_has() {
    let (sink, mut receiver) = channel(2, true);
    assert!(sink.record_mutations);
    assert_eq!(sink.try_record(sample_record("a")), Ok(()));
    assert_eq!(sink.try_record(sample_record("b")), Ok(()));
    assert_eq!(sink.try_record(sample_record("c")), Err(Dropped::QueueFull));
    assert_eq!(receiver.try_recv().ok(), Some(sample_record("a")));
    assert_eq!(sink.try_record(sample_record("d")), Ok(()));
    assert_eq!(receiver.try_recv().ok(), Some(sample_record("b")));
    assert_eq!(receiver.try_recv().ok(), Some(sample_record("d")));
    assert!(receiver.try_recv().is_err());
}

#[test]
fn a_zero_capacity_queue_still_holds_one_record() {
    let (sink, mut receiver) = channel(0, false);
    assert!(!sink.record_mutations);
    assert_eq!(sink.try_record(sample_record("a")), Ok(()));
    assert_eq!(sink.try_record(sample_record("b")), Err(Dropped::QueueFull));
    assert_eq!(receiver.try_recv().ok(), Some(sample_record("a")));
}

#[test]
fn a_gone_worker_refuses_every_record() {
    let (sink, receiver) = channel(4, false);
    drop(receiver);
    assert_eq!(
        sink.try_record(sample_record("a")),
        Err(Dropped::WorkerGone)
    );
    assert_eq!(
        sink.try_record(sample_record("b")),
        Err(Dropped::WorkerGone)
    );
}

// ---- denials without violations ------------------------------------------------------------

/// DESIGN.md: "Each denial ... is recorded where kubectl can find it later." A Deployment
/// whose pods' RuntimeClass needs a nodeSelector its template contradicts is denied (no
/// check fails, the mutation cannot be applied), and gets no Event.
#[test]
fn a_denial_for_a_runtime_class_conflict_gets_an_event() {
    use std::collections::{BTreeMap, HashMap};

    use mcpguard_core::runtime_class::RuntimeClassInfo;

    let text = mcpguard_core::policy::DEFAULT_POLICY_YAML
        .replace("runtimeClassName: null", "runtimeClassName: gvisor");
    let policy = parse_str(&text, "test.yaml").expect("policy loads");
    let classes = StaticRuntimeClasses(HashMap::from([(
        "gvisor".to_owned(),
        RuntimeClassInfo {
            node_selector: BTreeMap::from([("sandbox".to_owned(), "gvisor".to_owned())]),
            ..RuntimeClassInfo::default()
        },
    )]));
    let request = build(json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800004",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web",
        "namespace": "mcp",
        "operation": "CREATE",
        "userInfo": {"username": USER},
        "object": {
            "metadata": {"name": "web", "namespace": "mcp", "uid": "d1d1d1d1-0000-4000-8000-000000000002"},
            "spec": {"template": {"metadata": {}, "spec": {
                "nodeSelector": {"sandbox": "none"},
                "containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]
            }}}
        },
    }));
    let decision = engine::validate(
        &request,
        Context {
            policy: &policy,
            runtime_classes: &classes,
            now: now(),
        },
    );
    assert_eq!(decision.outcome, Outcome::Denied);
    assert_eq!(decision.violations[0].check, "runtimeClassScheduling");
    let record = event_for(&request, &decision, "mcp-restricted", false);
    let record = record.expect("a RuntimeClass conflict denial is recorded as an Event");
    assert!(
        record.note.ends_with(": runtimeClassScheduling"),
        "{}",
        record.note
    );
    assert_eq!(
        (record.event_type, record.reason, record.action),
        (EventType::Warning, "PolicyViolation", "Denied")
    );
    assert_eq!(record.regarding.kind.as_deref(), Some("Deployment"));
}

// ---- the note read back ----------------------------------------------------------------

/// What `mcpguard audit` reads back from the notes `event_for` writes (the reader is
/// `mcpguard_core::audit::note`; its own tests cover the format alone).
mod notes_read_back {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use mcpguard_core::audit::note::ViolationNote;

    /// The user and the checks, as the audit's rows take them.
    fn parse_note(note: &str) -> Option<(String, Vec<String>)> {
        ViolationNote::parse(note).map(|parsed| (parsed.user, parsed.checks))
    }

    /// A pod `CREATE` by `user` (none: no user name), named or from `generate_name`.
    fn request(user: Option<&str>, name: &str, generate_name: &str) -> AdmissionRequest {
        let mut request = pod_request(
            name,
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"generateName": generate_name, "namespace": "mcp"}}),
        );
        request["userInfo"] = match user {
            Some(user) => json!({"username": user}),
            None => json!({}),
        };
        build(request)
    }

    fn note_of(request: &AdmissionRequest, decision: &Decision, policy: &str) -> String {
        event_for(request, decision, policy, false)
            .expect("a violation Event")
            .note
    }

    fn owned(checks: &[&str]) -> Vec<String> {
        checks.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn parse_note_reads_back_what_event_for_writes() {
        let note = note_of(
            &request(Some("system:serviceaccount:mcp:deployer"), "web-1", ""),
            &decision_with(Outcome::Denied, &["runAsNonRoot", "allowedRegistries"]),
            "mcp-restricted",
        );
        assert_eq!(
            note,
            "policy \"mcp-restricted\" denied CREATE of pods \"web-1\" by system:serviceaccount:mcp:deployer: runAsNonRoot, allowedRegistries"
        );
        assert_eq!(
            parse_note(&note),
            Some((
                "system:serviceaccount:mcp:deployer".to_owned(),
                owned(&["runAsNonRoot", "allowedRegistries"])
            ))
        );
    }

    #[test]
    fn parse_note_handles_admitted_unknown_users_and_awkward_names() {
        // Warn mode, no user name, a generateName, and a policy name that needs escaping.
        let note = note_of(
            &request(None, "", "web-7d4b9c-"),
            &decision_with(Outcome::Warned, &["privileged"]),
            "odd \"policy\": by x",
        );
        assert_eq!(
            parse_note(&note),
            Some(("unknown user".to_owned(), owned(&["privileged"])))
        );
        // A user name with ": " in it: the checks are after the last one.
        let note = note_of(
            &request(Some("oidc: alice@example.com"), "web-1", ""),
            &decision_with(Outcome::Audited, &["hostPorts"]),
            "p",
        );
        assert_eq!(
            parse_note(&note),
            Some(("oidc: alice@example.com".to_owned(), owned(&["hostPorts"])))
        );
    }

    #[test]
    fn parse_note_keeps_the_checks_of_a_truncated_note() {
        let checks: Vec<String> = (0..120).map(|i| format!("check{i}")).collect();
        let refs: Vec<&str> = checks.iter().map(String::as_str).collect();
        let note = note_of(
            &request(Some("bob"), "web-1", ""),
            &decision_with(Outcome::Denied, &refs),
            "p",
        );
        assert!(note.ends_with("..."), "{note}");
        let (user, parsed) = parse_note(&note).expect("parses");
        assert_eq!(user, "bob");
        assert_eq!(parsed[..3], owned(&["check0", "check1", "check2"])[..]);
        assert!(parsed.last().is_some_and(|c| c.ends_with("...")));
    }

    #[test]
    fn parse_note_ignores_an_unverified_owner_mention() {
        let note = note_of(
            &request(Some("bob"), "web-1", ""),
            &decision_with(Outcome::Denied, &["runAsNonRoot", "privileged"]),
            "p",
        );
        let claim = ClaimedOwner {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "u-1".into(),
        };
        let mentioned = note_with_unverified_owner(&note, &claim);
        assert_eq!(
            mentioned,
            format!("{note} [unverified owner: ReplicaSet \"web\"]")
        );
        assert_eq!(
            parse_note(&mentioned),
            Some(("bob".to_owned(), owned(&["runAsNonRoot", "privileged"])))
        );
    }
}
