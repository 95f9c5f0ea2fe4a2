//! Denial Events end to end.
//!
//! * Publishing: `events::publish_all` with `events::publisher` against a mocked API server
//!   (tests/common/mock_api.rs); a scripted verifier asserts every request the worker makes
//!   (method, path, query, content type, body): one `POST` per new Event, a merge `PATCH` of
//!   its series for each repeat, nothing for a dry run, and a metadata `GET` of a pod's
//!   claimed controller before the Event is filed against it.
//! * The hot path: the real webhook over TLS with a queue that is full (or whose worker is
//!   gone) answers every review exactly and at once, and counts what it dropped.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::mock_api::{Expect, MockApi, Received, STEP_TIMEOUT};
use common::{TestServer, example_review, metric_value};
use jiff::Timestamp;
use mcpguard::cluster::events::{self, EventRecord};
use mcpguard_core::engine::{self, Context};
use mcpguard_core::policy::Policy;
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const INSTANCE: &str = "mcpguard-6d5f7b9c8-x2x9z";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/mcp/events";
const POD_UID: &str = "5d3e1c52-5b6a-4f7e-9a43-0c5d1c3b8f10";
const CHECKS: &str =
    "allowPrivilegeEscalation, capabilities_restricted, runAsNonRoot, seccompProfile_restricted";

// ---- requests and decisions ----------------------------------------------------------------

/// The example review's request (pod `github-mcp` in `mcp`, by jane@example.com), renamed.
fn example_request(name: &str, uid: &str) -> Value {
    let mut request = example_review()["request"].clone();
    request["name"] = json!(name);
    request["object"]["metadata"]["name"] = json!(name);
    request["object"]["metadata"]["uid"] = json!(uid);
    request
}

fn record_for(request: &Value, record_mutations: bool) -> Option<EventRecord> {
    let request: AdmissionRequest =
        serde_json::from_value(request.clone()).expect("valid AdmissionRequest");
    let policy = Policy::embedded_default().expect("embedded policy loads");
    let classes = StaticRuntimeClasses::default();
    let decision = engine::validate(
        &request,
        Context {
            policy: &policy,
            runtime_classes: &classes,
            now: Timestamp::now(),
        },
    );
    events::event_for(&request, &decision, &policy.name, record_mutations)
}

fn denial_note(name: &str) -> String {
    format!(
        "policy \"mcp-restricted\" denied CREATE of pods \"{name}\" by jane@example.com: {CHECKS}"
    )
}

fn pod_regarding(name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": "mcp", "uid": uid})
}

// ---- the mocked API server -----------------------------------------------------------------

/// The publisher's requests, as steps of the shared mock API server.
impl MockApi {
    /// Expects the `POST` of a new Event.
    async fn expect_post(&mut self) -> Received {
        self.expect(&Expect::post(EVENTS_PATH).content_type("application/json"))
            .await
    }

    /// Expects the merge `PATCH` of Event `name`'s series.
    async fn expect_patch(&mut self, name: &str) -> Received {
        let expect = Expect::patch(format!("{EVENTS_PATH}/{name}"))
            .content_type("application/merge-patch+json");
        self.expect(&expect).await
    }

    /// Expects a metadata-only `GET` of `path` (kube's metadata read sends a JSON content
    /// type, though no body).
    async fn expect_get(&mut self, path: &str) -> Received {
        let expect = Expect::get(path)
            .content_type("application/json")
            .accept("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
        self.expect(&expect).await
    }
}

/// What the API server stores for a created Event: the body plus server fields.
fn stored(body: &Value) -> Value {
    let mut stored = body.clone();
    stored["metadata"]["uid"] = json!("e0e0e0e0-0000-4000-8000-000000000001");
    stored["metadata"]["resourceVersion"] = json!("777");
    stored["metadata"]["creationTimestamp"] = json!("2026-11-19T10:00:00Z");
    stored
}

/// A worker publishing through a recorder on the mocked API; the test holds the queue.
struct Worker {
    sink: events::EventSink,
    task: JoinHandle<()>,
    api: MockApi,
}

fn start_worker() -> Worker {
    mcpguard::webhook::tls::provider();
    let (client, api) = MockApi::new("default");
    let publisher = events::publisher(client, INSTANCE.to_owned());
    let (sink, receiver) = events::channel(16, false);
    let task = tokio::spawn(events::publish_all(receiver, publisher));
    Worker { sink, task, api }
}

impl Worker {
    fn send(&self, record: EventRecord) {
        self.sink.try_record(record).expect("the queue has room");
    }

    /// Closes the queue: the worker finishes what it has and returns.
    async fn finish(self) -> MockApi {
        let Worker {
            sink,
            task,
            mut api,
        } = self;
        drop(sink);
        api.expect_no_more_requests().await;
        tokio::time::timeout(STEP_TIMEOUT, task)
            .await
            .expect("publish_all returns once the queue closes")
            .expect("publish_all does not panic");
        api
    }
}

fn parse_time(value: &Value) -> Timestamp {
    let text = value.as_str().expect("a timestamp string");
    mcpguard_core::rfc3339::parse(text).unwrap_or_else(|| panic!("{text:?} is RFC 3339"))
}

fn micros(at: Timestamp) -> i128 {
    at.as_nanosecond() / 1000
}

/// Asserts the POST body of a new Event for `regarding` with `note`, created between
/// `before` and `after`; returns its name.
fn assert_new_event(
    body: &Value,
    name_prefix: &str,
    regarding: Value,
    (event_type, reason, action): (&str, &str, &str),
    note: &str,
    (before, after): (Timestamp, Timestamp),
) -> String {
    // The name is `<regarding name>.<creation time in ns, hex>`, and eventTime is that
    // time in microseconds.
    let name = body["metadata"]["name"]
        .as_str()
        .expect("metadata.name")
        .to_owned();
    let hex = name
        .strip_prefix(&format!("{name_prefix}."))
        .unwrap_or_else(|| panic!("{name:?} starts with {name_prefix:?}."));
    let nanos = i128::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{hex:?} is hex: {e}"));
    assert!(
        before.as_nanosecond() <= nanos && nanos <= after.as_nanosecond(),
        "{name}: created during the test"
    );
    let event_time = parse_time(&body["eventTime"]);
    assert_eq!(
        micros(event_time),
        nanos / 1000,
        "eventTime is the creation time"
    );

    let mut rest = body.clone();
    rest["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("name");
    rest.as_object_mut().expect("event").remove("eventTime");
    assert_eq!(
        rest,
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"namespace": "mcp"},
            "type": event_type,
            "reason": reason,
            "action": action,
            "note": note,
            "regarding": regarding,
            "reportingController": "mcpguard.dev/webhook",
            "reportingInstance": INSTANCE,
        })
    );
    name
}

/// Asserts a series PATCH: the created Event as sent, plus `series` of `count`, observed
/// between `before` and `after`.
fn assert_series_patch(
    body: &Value,
    created: &Value,
    count: i64,
    (before, after): (Timestamp, Timestamp),
) {
    let observed = parse_time(&body["series"]["lastObservedTime"]);
    assert!(
        micros(before) <= micros(observed) && micros(observed) <= micros(after),
        "lastObservedTime {observed} is during the repeat"
    );
    let mut expected = created.clone();
    expected["series"] = json!({
        "count": count,
        "lastObservedTime": body["series"]["lastObservedTime"].clone(),
    });
    assert_eq!(body, &expected);
}

// ---- publishing ----------------------------------------------------------------------------

#[tokio::test]
async fn one_denial_creates_exactly_one_event() {
    let mut worker = start_worker();
    let record = record_for(&example_request("github-mcp", POD_UID), false).expect("an Event");
    let before = Timestamp::now();
    worker.send(record);
    let post = worker.api.expect_post().await;
    let after = Timestamp::now();
    let name = assert_new_event(
        &post.body,
        "github-mcp",
        pod_regarding("github-mcp", POD_UID),
        ("Warning", "PolicyViolation", "Denied"),
        &denial_note("github-mcp"),
        (before, after),
    );
    assert!(name.starts_with("github-mcp."));
    post.reply(StatusCode::CREATED, &stored(&post.body));
    let api = worker.finish().await;
    assert_eq!(api.seen(), [format!("POST {EVENTS_PATH}")]);
}

#[tokio::test]
async fn repeated_denials_of_one_object_patch_the_series() {
    let mut worker = start_worker();
    let request = example_request("github-mcp", POD_UID);
    let record = record_for(&request, false).expect("an Event");

    let t0 = Timestamp::now();
    worker.send(record.clone());
    let post = worker.api.expect_post().await;
    let t1 = Timestamp::now();
    let name = assert_new_event(
        &post.body,
        "github-mcp",
        pod_regarding("github-mcp", POD_UID),
        ("Warning", "PolicyViolation", "Denied"),
        &denial_note("github-mcp"),
        (t0, t1),
    );
    let created = post.body.clone();
    post.reply(StatusCode::CREATED, &stored(&post.body));

    // The same denial again: the Event's series, not a new Event.
    let t2 = Timestamp::now();
    worker.send(record_for(&request, false).expect("an Event"));
    let second = worker.api.expect_patch(&name).await;
    let t3 = Timestamp::now();
    assert_series_patch(&second.body, &created, 2, (t2, t3));
    second.reply(StatusCode::OK, &stored(&second.body));

    let t4 = Timestamp::now();
    worker.send(record_for(&request, false).expect("an Event"));
    let third = worker.api.expect_patch(&name).await;
    let t5 = Timestamp::now();
    assert_series_patch(&third.body, &created, 3, (t4, t5));
    assert!(
        parse_time(&third.body["series"]["lastObservedTime"])
            >= parse_time(&second.body["series"]["lastObservedTime"])
    );
    third.reply(StatusCode::OK, &stored(&third.body));

    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [
            format!("POST {EVENTS_PATH}"),
            format!("PATCH {EVENTS_PATH}/{name}"),
            format!("PATCH {EVENTS_PATH}/{name}"),
        ]
    );
}

#[tokio::test]
async fn denials_of_different_objects_or_actions_are_separate_events() {
    let mut worker = start_worker();
    let first = record_for(
        &example_request("a", "aaaaaaaa-0000-4000-8000-000000000001"),
        false,
    )
    .expect("an Event");
    let second = record_for(
        &example_request("b", "bbbbbbbb-0000-4000-8000-000000000002"),
        false,
    )
    .expect("an Event");
    // The same pod, admitted (warn mode) instead of denied: another action, another Event.
    let mut admitted = first.clone();
    admitted.action = "Admitted";
    let window = (
        Timestamp::now(),
        Timestamp::now() + jiff::SignedDuration::from_secs(30),
    );
    worker.send(first);
    worker.send(second);
    worker.send(admitted);
    for (name, uid, action) in [
        ("a", "aaaaaaaa-0000-4000-8000-000000000001", "Denied"),
        ("b", "bbbbbbbb-0000-4000-8000-000000000002", "Denied"),
        ("a", "aaaaaaaa-0000-4000-8000-000000000001", "Admitted"),
    ] {
        let post = worker.api.expect_post().await;
        assert_new_event(
            &post.body,
            name,
            pod_regarding(name, uid),
            ("Warning", "PolicyViolation", action),
            &denial_note(name),
            window,
        );
        post.reply(StatusCode::CREATED, &stored(&post.body));
    }
    let api = worker.finish().await;
    assert_eq!(api.seen().len(), 3);
}

/// kube's Recorder keys a series on type, reason, action, reporter and object, not on the
/// note: a second denial of the same pod for other checks bumps the first Event's series and
/// keeps its note. This pins what is sent.
#[tokio::test]
async fn a_repeat_with_other_checks_bumps_the_series_and_keeps_the_first_note() {
    let mut worker = start_worker();
    let record = record_for(&example_request("github-mcp", POD_UID), false).expect("an Event");
    let mut other_checks = record.clone();
    other_checks.note = "policy \"mcp-restricted\" denied CREATE of pods \"github-mcp\" by jane@example.com: privileged".into();

    let window = (
        Timestamp::now(),
        Timestamp::now() + jiff::SignedDuration::from_secs(30),
    );
    worker.send(record);
    let post = worker.api.expect_post().await;
    let name = assert_new_event(
        &post.body,
        "github-mcp",
        pod_regarding("github-mcp", POD_UID),
        ("Warning", "PolicyViolation", "Denied"),
        &denial_note("github-mcp"),
        window,
    );
    let created = post.body.clone();
    post.reply(StatusCode::CREATED, &stored(&post.body));

    worker.send(other_checks);
    let patch = worker.api.expect_patch(&name).await;
    assert_series_patch(&patch.body, &created, 2, window);
    assert_eq!(patch.body["note"], json!(denial_note("github-mcp")));
    patch.reply(StatusCode::OK, &stored(&patch.body));
    worker.finish().await;
}

#[tokio::test]
async fn a_refused_event_is_not_retried_and_the_worker_goes_on() {
    let mut worker = start_worker();
    let record = record_for(&example_request("github-mcp", POD_UID), false).expect("an Event");
    let window = (
        Timestamp::now(),
        Timestamp::now() + jiff::SignedDuration::from_secs(30),
    );
    worker.send(record.clone());
    let post = worker.api.expect_post().await;
    post.reply(
        StatusCode::FORBIDDEN,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "events.events.k8s.io is forbidden", "reason": "Forbidden", "code": 403
        }),
    );
    // Not retried.
    worker.api.expect_no_more_requests().await;
    // The worker still runs; the refused Event was never created, so the same record is
    // created anew rather than patched.
    worker.send(record);
    let post = worker.api.expect_post().await;
    assert_new_event(
        &post.body,
        "github-mcp",
        pod_regarding("github-mcp", POD_UID),
        ("Warning", "PolicyViolation", "Denied"),
        &denial_note("github-mcp"),
        window,
    );
    post.reply(StatusCode::CREATED, &stored(&post.body));
    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [format!("POST {EVENTS_PATH}"), format!("POST {EVENTS_PATH}")]
    );
}

#[tokio::test]
async fn a_dry_run_denial_sends_nothing() {
    let mut dry_run = example_request("github-mcp", POD_UID);
    dry_run["dryRun"] = json!(true);
    let record = record_for(&dry_run, true);
    assert_eq!(record, None, "event_for has no Event for a dry run");

    let mut worker = start_worker();
    if let Some(record) = record {
        worker.send(record);
    }
    worker.api.expect_no_more_requests().await;
    // The same request without dryRun does get its Event, through the same worker.
    let window = (
        Timestamp::now(),
        Timestamp::now() + jiff::SignedDuration::from_secs(30),
    );
    worker.send(record_for(&example_request("github-mcp", POD_UID), false).expect("an Event"));
    let post = worker.api.expect_post().await;
    assert_new_event(
        &post.body,
        "github-mcp",
        pod_regarding("github-mcp", POD_UID),
        ("Warning", "PolicyViolation", "Denied"),
        &denial_note("github-mcp"),
        window,
    );
    post.reply(StatusCode::CREATED, &stored(&post.body));
    let api = worker.finish().await;
    assert_eq!(api.seen(), [format!("POST {EVENTS_PATH}")]);
}

#[tokio::test]
async fn an_empty_queue_sends_nothing_and_the_worker_ends_when_it_closes() {
    let worker = start_worker();
    let api = worker.finish().await;
    assert!(api.seen().is_empty());
}

// ---- the Event's subject: the request's object, or its controller once verified ------------

const RS_NAME: &str = "web-7d4b9c";
const RS_UID: &str = "8a0e7c4e-0000-4000-8000-00000000a001";
const RS_PATH: &str = "/apis/apps/v1/namespaces/mcp/replicasets/web-7d4b9c";

fn controller(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
           "controller": true, "blockOwnerDeletion": true})
}

fn replica_set(uid: &str) -> Value {
    controller("apps/v1", "ReplicaSet", RS_NAME, uid)
}

/// The denial record of pod `name` whose `ownerReferences` are `owners`.
fn owned_pod_record(name: &str, uid: &str, owners: Value) -> EventRecord {
    let mut request = example_request(name, uid);
    request["object"]["metadata"]["ownerReferences"] = owners;
    record_for(&request, false).expect("an Event")
}

/// What the API server answers to a metadata `GET` of an object that exists.
fn object_metadata(name: &str, uid: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"name": name, "namespace": "mcp", "uid": uid, "resourceVersion": "42",
                     "creationTimestamp": "2026-11-19T09:00:00Z"},
    })
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{reason} (mocked)"), "reason": reason, "code": code})
}

fn with_unverified_owner(note: String, kind: &str, name: &str) -> String {
    format!("{note} [unverified owner: {kind} \"{name}\"]")
}

fn rs_regarding() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": RS_NAME, "namespace": "mcp",
           "uid": RS_UID})
}

/// Asserts the next request is the POST of a new denial Event about `regarding` with `note`,
/// answers it, and returns the Event's name.
async fn expect_denial_event(
    api: &mut MockApi,
    name_prefix: &str,
    regarding: Value,
    note: &str,
) -> String {
    let window = (
        Timestamp::now() - jiff::SignedDuration::from_secs(30),
        Timestamp::now() + jiff::SignedDuration::from_secs(30),
    );
    let post = api.expect_post().await;
    let name = assert_new_event(
        &post.body,
        name_prefix,
        regarding,
        ("Warning", "PolicyViolation", "Denied"),
        note,
        window,
    );
    post.reply(StatusCode::CREATED, &stored(&post.body));
    name
}

#[tokio::test]
async fn a_controller_read_back_with_its_uid_is_the_events_subject() {
    let mut worker = start_worker();
    let pod = "web-7d4b9c-x2x9z";
    let record = owned_pod_record(pod, POD_UID, json!([replica_set(RS_UID)]));
    worker.send(record.clone());
    let get = worker.api.expect_get(RS_PATH).await;
    get.reply(StatusCode::OK, &object_metadata(RS_NAME, RS_UID));
    let event =
        expect_denial_event(&mut worker.api, RS_NAME, rs_regarding(), &denial_note(pod)).await;

    // The next denial is the same Event's series: the verification is remembered, not
    // asked again.
    worker.send(record);
    let patch = worker.api.expect_patch(&event).await;
    assert_eq!(patch.body["regarding"], rs_regarding());
    patch.reply(StatusCode::OK, &stored(&patch.body));
    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [
            format!("GET {RS_PATH}"),
            format!("POST {EVENTS_PATH}"),
            format!("PATCH {EVENTS_PATH}/{event}"),
        ]
    );
}

#[tokio::test]
async fn a_controller_with_another_uid_leaves_the_event_on_the_pod() {
    let mut worker = start_worker();
    let pod = "web-7d4b9c-forged";
    let forged_uid = "ffffffff-0000-4000-8000-00000000f001";
    worker.send(owned_pod_record(
        pod,
        POD_UID,
        json!([replica_set(forged_uid)]),
    ));
    // The ReplicaSet exists, but is not the one the pod names.
    let get = worker.api.expect_get(RS_PATH).await;
    get.reply(StatusCode::OK, &object_metadata(RS_NAME, RS_UID));
    expect_denial_event(
        &mut worker.api,
        pod,
        pod_regarding(pod, POD_UID),
        &with_unverified_owner(denial_note(pod), "ReplicaSet", RS_NAME),
    )
    .await;
    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [format!("GET {RS_PATH}"), format!("POST {EVENTS_PATH}")]
    );
}

#[tokio::test]
async fn a_controller_that_does_not_exist_leaves_the_event_on_the_pod() {
    let mut worker = start_worker();
    let pod = "ghost-x2x9z";
    let ghost = controller("apps/v1", "Deployment", "ghost", RS_UID);
    let record = owned_pod_record(pod, POD_UID, json!([ghost]));
    let path = "/apis/apps/v1/namespaces/mcp/deployments/ghost";
    worker.send(record.clone());
    let get = worker.api.expect_get(path).await;
    get.reply(StatusCode::NOT_FOUND, &status(404, "NotFound"));
    let note = with_unverified_owner(denial_note(pod), "Deployment", "ghost");
    let event = expect_denial_event(&mut worker.api, pod, pod_regarding(pod, POD_UID), &note).await;
    // "Not found" is remembered too: a flood of pods naming it costs one read.
    worker.send(record);
    let patch = worker.api.expect_patch(&event).await;
    patch.reply(StatusCode::OK, &stored(&patch.body));
    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [
            format!("GET {path}"),
            format!("POST {EVENTS_PATH}"),
            format!("PATCH {EVENTS_PATH}/{event}"),
        ]
    );
}

/// Owners that are no workload mcpguard handles, or not the controller, are never read and
/// never a subject.
#[tokio::test]
async fn owners_that_cannot_be_the_subject_are_never_read() {
    let mut worker = start_worker();
    let cases = [
        // Not the controller: not a claim at all, so not mentioned.
        (
            "not-controller",
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": RS_NAME,
                    "uid": RS_UID, "controller": false}]),
            None,
        ),
        // A kind mcpguard does not handle.
        (
            "configmap-owner",
            json!([controller("v1", "ConfigMap", "settings", RS_UID)]),
            Some(("ConfigMap", "settings")),
        ),
        // A handled kind under an API version it is not served at.
        (
            "old-api",
            json!([controller(
                "extensions/v1beta1",
                "ReplicaSet",
                RS_NAME,
                RS_UID
            )]),
            Some(("ReplicaSet", RS_NAME)),
        ),
        // A name that is no object name (and would be a path outside the namespace).
        (
            "traversal",
            json!([controller(
                "apps/v1",
                "ReplicaSet",
                "../../../api/v1/secrets",
                RS_UID
            )]),
            None,
        ),
    ];
    for (i, (pod, owners, mention)) in cases.into_iter().enumerate() {
        let uid = format!("cccccccc-0000-4000-8000-{i:012}");
        worker.send(owned_pod_record(pod, &uid, owners));
        let note = match mention {
            Some((kind, name)) => with_unverified_owner(denial_note(pod), kind, name),
            None => denial_note(pod),
        };
        expect_denial_event(&mut worker.api, pod, pod_regarding(pod, &uid), &note).await;
    }
    let api = worker.finish().await;
    assert_eq!(api.seen(), vec![format!("POST {EVENTS_PATH}"); 4]);
}

#[tokio::test]
async fn a_failed_read_is_not_remembered() {
    let mut worker = start_worker();
    let pod = "web-7d4b9c-x2x9z";
    let record = owned_pod_record(pod, POD_UID, json!([replica_set(RS_UID)]));
    worker.send(record.clone());
    let get = worker.api.expect_get(RS_PATH).await;
    get.reply(StatusCode::FORBIDDEN, &status(403, "Forbidden"));
    let note = with_unverified_owner(denial_note(pod), "ReplicaSet", RS_NAME);
    expect_denial_event(&mut worker.api, pod, pod_regarding(pod, POD_UID), &note).await;
    // Asked again next time; now readable, the Event goes to the ReplicaSet.
    worker.send(record);
    let get = worker.api.expect_get(RS_PATH).await;
    get.reply(StatusCode::OK, &object_metadata(RS_NAME, RS_UID));
    expect_denial_event(&mut worker.api, RS_NAME, rs_regarding(), &denial_note(pod)).await;
    let api = worker.finish().await;
    assert_eq!(
        api.seen(),
        [
            format!("GET {RS_PATH}"),
            format!("POST {EVENTS_PATH}"),
            format!("GET {RS_PATH}"),
            format!("POST {EVENTS_PATH}"),
        ]
    );
}

// ---- the hot path: a full queue never delays or fails an admission --------------------------

const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

fn denied_review(i: usize) -> (Value, String) {
    let name = format!("github-mcp-{i}");
    let mut review = example_review();
    review["request"] = example_request(&name, &format!("5d3e1c52-0000-4000-8000-{i:012}"));
    review["request"]["uid"] = json!(format!("705ab4f5-0000-4000-8000-{i:012}"));
    (review, name)
}

/// The exact answer to a denial of the example pod named `name`.
fn denial_answer(uid: &str, name: &str) -> Value {
    json!({
        "uid": uid,
        "allowed": false,
        "status": {
            "code": 403,
            "message": format!("pods \"{name}\" is forbidden: violates mcpguard policy \"mcp-restricted\": allowPrivilegeEscalation != false (container \"server\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"server\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"server\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"server\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
            "reason": "Forbidden",
            "status": "Failure",
        },
        "auditAnnotations": {
            "policy": "mcp-restricted",
            "violations": "allowPrivilegeEscalation,capabilities_restricted,runAsNonRoot,seccompProfile_restricted",
        },
    })
}

/// Sends denial `i` and asserts its exact answer, within [`REVIEW_TIMEOUT`].
async fn deny(server: &TestServer, i: usize) {
    let (review, name) = denied_review(i);
    let uid = review["request"]["uid"].as_str().expect("uid").to_owned();
    let answer = tokio::time::timeout(REVIEW_TIMEOUT, server.review("/validate", &review))
        .await
        .unwrap_or_else(|_| panic!("review {i} was delayed"));
    assert_eq!(answer, denial_answer(&uid, &name), "review {i}");
}

async fn dropped(server: &TestServer) -> Option<f64> {
    metric_value(
        &server.metrics_text().await,
        "mcpguard_events_dropped_total",
    )
}

fn denied_metric(server: &TestServer) -> Option<f64> {
    metric_value(
        &server.metrics.encode(),
        "mcpguard_admission_requests_total{endpoint=\"validate\",kind=\"Pod\",operation=\"CREATE\",decision=\"denied\"}",
    )
}

fn expected_record(i: usize) -> EventRecord {
    let name = format!("github-mcp-{i}");
    EventRecord {
        event_type: kube::runtime::events::EventType::Warning,
        reason: "PolicyViolation",
        action: "Denied",
        note: denial_note(&name),
        regarding: serde_json::from_value(pod_regarding(
            &name,
            &format!("5d3e1c52-0000-4000-8000-{i:012}"),
        ))
        .expect("an ObjectReference"),
        claimed_owner: None,
    }
}

fn set_sink(server: &TestServer, sink: events::EventSink) {
    assert!(
        server.state.events.set(sink).is_ok(),
        "no sink was set before"
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_delaying_any_admission() {
    let server = TestServer::start_default().await;
    let (sink, mut receiver) = events::channel(1, false);
    set_sink(&server, sink);
    assert_eq!(dropped(&server).await, Some(0.0));

    for i in 0..20 {
        deny(&server, i).await;
    }
    assert_eq!(dropped(&server).await, Some(19.0), "all but the first");
    assert_eq!(denied_metric(&server), Some(20.0));

    // The one queued record is the first denial's.
    assert_eq!(receiver.try_recv(), Ok(expected_record(0)));
    assert_eq!(receiver.try_recv(), Err(mpsc::error::TryRecvError::Empty));

    // Once the worker took it, the next denial is queued again and nothing more is dropped.
    deny(&server, 20).await;
    assert_eq!(receiver.try_recv(), Ok(expected_record(20)));
    assert_eq!(dropped(&server).await, Some(19.0));
}

#[tokio::test]
async fn concurrent_denials_into_a_full_queue_are_all_answered() {
    let server = std::sync::Arc::new(TestServer::start_default().await);
    let (sink, mut receiver) = events::channel(1, false);
    set_sink(&server, sink);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move { deny(&server, i).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("every review is answered exactly");
    }
    assert_eq!(dropped(&server).await, Some(19.0));
    let queued = receiver.try_recv().expect("one record queued");
    assert!(
        (0..20).any(|i| queued == expected_record(i)),
        "the queued record is one of the denials: {queued:?}"
    );
    assert_eq!(receiver.try_recv(), Err(mpsc::error::TryRecvError::Empty));
}

#[tokio::test]
async fn a_gone_worker_never_fails_an_admission() {
    let server = TestServer::start_default().await;
    let (sink, receiver) = events::channel(1, false);
    drop(receiver);
    set_sink(&server, sink);
    for i in 0..5 {
        deny(&server, i).await;
    }
    assert_eq!(dropped(&server).await, Some(5.0));
    assert_eq!(denied_metric(&server), Some(5.0));
}

#[tokio::test]
async fn dry_runs_allowed_and_skipped_reviews_queue_nothing() {
    let server = TestServer::start_default().await;
    let (sink, mut receiver) = events::channel(4, true);
    set_sink(&server, sink);

    // A dry-run denial: denied all the same, but no Event.
    let (mut review, name) = denied_review(0);
    review["request"]["dryRun"] = json!(true);
    let answer = server.review("/validate", &review).await;
    assert_eq!(
        answer,
        denial_answer("705ab4f5-0000-4000-8000-000000000000", &name)
    );
    // Out of scope: another namespace.
    let (mut review, _) = denied_review(1);
    review["request"]["namespace"] = json!("default");
    review["request"]["object"]["metadata"]["namespace"] = json!("default");
    let answer = server.review("/validate", &review).await;
    assert_eq!(
        answer,
        json!({"uid": "705ab4f5-0000-4000-8000-000000000001", "allowed": true})
    );
    // Allowed: in scope (the policy annotates it), the example pod with the four restricted
    // settings it lacked.
    let (mut review, _) = denied_review(2);
    let pod = &mut review["request"]["object"];
    pod["spec"]["securityContext"] =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let answer = server.review("/validate", &review).await;
    assert_eq!(
        answer,
        json!({"uid": "705ab4f5-0000-4000-8000-000000000002", "allowed": true,
               "auditAnnotations": {"policy": "mcp-restricted"}})
    );
    assert_eq!(receiver.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    assert_eq!(dropped(&server).await, Some(0.0));
}

#[tokio::test]
async fn mutations_are_queued_only_when_recorded() {
    for record_mutations in [true, false] {
        let server = TestServer::start_default().await;
        let (sink, mut receiver) = events::channel(4, record_mutations);
        set_sink(&server, sink);
        let (review, name) = denied_review(7);
        let answer = server.review("/mutate", &review).await;
        assert_eq!(answer["allowed"], json!(true));
        assert_eq!(answer["patchType"], json!("JSONPatch"));
        let queued = receiver.try_recv().ok();
        if record_mutations {
            let queued = queued.expect("a mutation record");
            assert_eq!(queued.event_type, kube::runtime::events::EventType::Normal);
            assert_eq!((queued.reason, queued.action), ("PolicyMutated", "Mutated"));
            assert_eq!(
                queued.note,
                format!(
                    "policy \"mcp-restricted\" mutated pods \"{name}\" for jane@example.com: set {}",
                    answer["auditAnnotations"]["mutated"]
                        .as_str()
                        .expect("the mutated fields")
                )
            );
            assert_eq!(queued.regarding, expected_record(7).regarding);
        } else {
            assert_eq!(queued, None);
        }
        assert_eq!(receiver.try_recv().ok(), None);
        assert_eq!(dropped(&server).await, Some(0.0));
    }
}
