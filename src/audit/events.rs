//! Denial Events (`events.k8s.io/v1`), recorded off the hot path. The admission handler
//! only builds a small record and `try_send`s it into a bounded queue; a full queue drops
//! the record and counts it, so recording can never delay or fail an admission. A worker
//! publishes through kube's `Recorder`, which aggregates repeats into the Event's series
//! instead of creating new Events.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::admission::review::AdmissionRequest;
use crate::engine::{Decision, Outcome};
use crate::harden::truncate_at;

pub const REPORTING_CONTROLLER: &str = "mcpguard.dev/webhook";
pub const REASON_VIOLATION: &str = "PolicyViolation";
pub const REASON_MUTATED: &str = "PolicyMutated";
/// The API refuses an Event note over 1 KiB.
pub const MAX_NOTE_BYTES: usize = 1024;
/// Records waiting for the worker; beyond this they are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;

/// One Event to publish: what and about which object.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub event_type: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
    pub regarding: ObjectReference,
}

/// The Event for a decision, if it deserves one: violations (denied, warned or audited),
/// and mutations when `record_mutations` is on. Dry runs never get one.
pub fn event_for(
    request: &AdmissionRequest,
    decision: &Decision,
    policy: &str,
    record_mutations: bool,
) -> Option<EventRecord> {
    if request.is_dry_run() {
        return None;
    }
    let (event_type, reason, action) = match decision.outcome {
        Outcome::Denied => (EventType::Warning, REASON_VIOLATION, "Denied"),
        Outcome::Warned | Outcome::Audited => (EventType::Warning, REASON_VIOLATION, "Admitted"),
        Outcome::Mutated if record_mutations => (EventType::Normal, REASON_MUTATED, "Mutated"),
        _ => return None,
    };
    let user = request
        .user_info
        .username
        .as_deref()
        .unwrap_or("unknown user");
    let object = format!("{} {:?}", request.resource.resource, request.display_name());
    let note = if reason == REASON_MUTATED {
        let fields = decision
            .audit_annotations
            .get(crate::engine::AUDIT_MUTATED)
            .map_or("", String::as_str);
        format!("policy {policy:?} mutated {object} for {user}: set {fields}")
    } else {
        let checks: Vec<&str> = decision
            .violations
            .iter()
            .map(|v| v.check.as_str())
            .collect();
        format!(
            "policy {policy:?} {} {} of {object} by {user}: {}",
            action.to_lowercase(),
            request.operation,
            checks.join(", ")
        )
    };
    Some(EventRecord {
        event_type,
        reason,
        action,
        note: truncate_at(note, MAX_NOTE_BYTES),
        regarding: regarding(request)?,
    })
}

/// The object an Event is about: the pod's controller when it has one (a denied pod from a
/// ReplicaSet never exists, and its generated name is not known yet), else the object.
pub fn regarding(request: &AdmissionRequest) -> Option<ObjectReference> {
    let namespace = request.namespace.clone();
    let object = request.object.as_ref()?;
    let controller = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|owners| {
            owners
                .iter()
                .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        });
    if let Some(owner) = controller {
        let text = |key: &str| owner.get(key).and_then(Value::as_str).map(str::to_owned);
        return Some(ObjectReference {
            api_version: text("apiVersion"),
            kind: text("kind"),
            name: text("name"),
            namespace,
            uid: text("uid"),
            ..ObjectReference::default()
        });
    }
    let group = &request.kind.group;
    let api_version = if group.is_empty() {
        request.kind.version.clone()
    } else {
        format!("{group}/{}", request.kind.version)
    };
    let uid = object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(ObjectReference {
        api_version: Some(api_version),
        kind: Some(request.kind.kind.clone()),
        name: Some(request.display_name()),
        namespace,
        uid,
        ..ObjectReference::default()
    })
}

/// The handler's end of the queue.
#[derive(Clone, Debug)]
pub struct EventSink {
    sender: mpsc::Sender<EventRecord>,
    pub record_mutations: bool,
}

/// Why a record was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Dropped {
    QueueFull,
    WorkerGone,
}

impl EventSink {
    /// Never waits: a full queue drops the record.
    pub fn try_record(&self, record: EventRecord) -> Result<(), Dropped> {
        self.sender.try_send(record).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => Dropped::QueueFull,
            mpsc::error::TrySendError::Closed(_) => Dropped::WorkerGone,
        })
    }
}

/// A queue of `capacity` and its receiving end.
pub fn channel(
    capacity: usize,
    record_mutations: bool,
) -> (EventSink, mpsc::Receiver<EventRecord>) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (
        EventSink {
            sender,
            record_mutations,
        },
        receiver,
    )
}

/// Publishes queued records until the queue closes. Failures are logged, never retried:
/// an Event is a courtesy, and the audit log has the same facts.
pub async fn publish_all(mut receiver: mpsc::Receiver<EventRecord>, recorder: Recorder) {
    while let Some(record) = receiver.recv().await {
        let event = Event {
            type_: record.event_type,
            reason: record.reason.to_owned(),
            note: Some(record.note),
            action: record.action.to_owned(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&event, &record.regarding).await {
            tracing::warn!(error = %err, reason = record.reason, "cannot record Event");
        }
    }
}

/// The recorder for this replica: `reportingInstance` is the pod name, as the API requires.
pub fn recorder(client: kube::Client, instance: String) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: REPORTING_CONTROLLER.to_owned(),
            instance: Some(instance),
        },
    )
}
#[cfg(test)]
mod tests;
