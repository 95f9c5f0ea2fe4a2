//! Denial Events (`events.k8s.io/v1`), recorded off the hot path. The admission handler
//! only builds a small record and `try_send`s it into a bounded queue; a full queue drops
//! the record and counts it, so recording can never delay or fail an admission. A worker
//! publishes through kube's `Recorder`, which aggregates repeats into the Event's series
//! instead of creating new Events.
//!
//! An Event is filed against the object the request names. A pod's controller (a denied
//! ReplicaSet pod never exists, so its Events are more useful on the ReplicaSet) becomes
//! the subject only once the worker has read it back with the claimed UID: the pod's author
//! writes `ownerReferences`, and must not be able to file Events against other objects.

mod owner;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

pub use owner::{ClaimedOwner, OwnerCheck, VerifiedOwners};

use mcpguard_core::audit::note::{self, Verdict, ViolationNote};
use mcpguard_core::engine::{Decision, Outcome};
use mcpguard_core::review::AdmissionRequest;

/// The note's format and its reader are the core's, with the names `mcpguard audit` reads.
pub use mcpguard_core::audit::note::{
    MAX_NOTE_BYTES, REASON_MUTATED, REASON_VIOLATION, REPORTING_CONTROLLER, UNVERIFIED_OWNER_MARK,
};
/// Records waiting for the worker; beyond this they are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;

/// One Event to publish: what and about which object.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub event_type: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
    /// The object the request names.
    pub regarding: ObjectReference,
    /// The controller the object claims, for the worker to verify.
    pub claimed_owner: Option<ClaimedOwner>,
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
    // A verdict for a violation; none for a mutation.
    let (event_type, reason, verdict) = match decision.outcome {
        Outcome::Denied => (EventType::Warning, REASON_VIOLATION, Some(Verdict::Denied)),
        Outcome::Warned | Outcome::Audited => (
            EventType::Warning,
            REASON_VIOLATION,
            Some(Verdict::Admitted),
        ),
        Outcome::Mutated if record_mutations => (EventType::Normal, REASON_MUTATED, None),
        _ => return None,
    };
    let action = verdict.map_or("Mutated", Verdict::action);
    let user = request
        .user_info
        .username
        .as_deref()
        .unwrap_or("unknown user");
    let resource = &request.resource.resource;
    let note = match verdict {
        None => {
            let fields = decision
                .audit_annotations
                .get(mcpguard_core::engine::AUDIT_MUTATED)
                .map_or("", String::as_str);
            note::mutation_note(policy, resource, &request.display_name(), user, fields)
        }
        Some(verdict) => ViolationNote {
            policy: policy.to_owned(),
            verdict,
            operation: request.operation.clone(),
            resource: resource.clone(),
            object: request.display_name(),
            user: user.to_owned(),
            checks: decision
                .violations
                .iter()
                .map(|v| v.check.clone())
                .collect(),
        }
        .format(),
    };
    Some(EventRecord {
        event_type,
        reason,
        action,
        note,
        regarding: regarding(request)?,
        claimed_owner: request.object.as_deref().and_then(ClaimedOwner::of),
    })
}

/// The object the request names (for a pod created from `generateName`, the prefix: its
/// name is not known yet).
pub fn regarding(request: &AdmissionRequest) -> Option<ObjectReference> {
    let object = request.object.as_ref()?;
    let group = &request.kind.group;
    let api_version = if group.is_empty() {
        request.kind.version.clone()
    } else {
        format!("{group}/{}", request.kind.version)
    };
    let uid = object
        .pointer("/metadata/uid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Some(ObjectReference {
        api_version: Some(api_version),
        kind: Some(request.kind.kind.clone()),
        name: Some(request.display_name()),
        namespace: request.namespace.clone(),
        uid,
        ..ObjectReference::default()
    })
}

/// `note` for an Event left on the request's object: the claimed controller is named (it
/// may be real and unreadable) with the mark, which always fits, the note cut to make room.
pub fn note_with_unverified_owner(note: &str, claim: &ClaimedOwner) -> String {
    note::with_unverified_owner(note, &claim.kind, &claim.name)
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

/// The worker's means: kube's `Recorder`, and reads of claimed controllers.
pub struct Publisher {
    recorder: Recorder,
    owners: OwnerCheck,
}

impl Publisher {
    /// The Event's subject and note: the claimed controller once verified, else the
    /// request's object, with the claim named in the note.
    async fn subject(&mut self, record: EventRecord) -> (ObjectReference, String) {
        let Some(claim) = &record.claimed_owner else {
            return (record.regarding, record.note);
        };
        if let Some(namespace) = record.regarding.namespace.as_deref()
            && self.owners.is_real(namespace, claim).await
        {
            return (claim.reference(namespace), record.note);
        }
        let note = note_with_unverified_owner(&record.note, claim);
        (record.regarding, note)
    }
}

/// Publishes queued records until the queue closes. Failures are logged, never retried:
/// an Event is a courtesy, and the audit log has the same facts.
pub async fn publish_all(mut receiver: mpsc::Receiver<EventRecord>, mut publisher: Publisher) {
    while let Some(record) = receiver.recv().await {
        let (event_type, reason, action) = (record.event_type, record.reason, record.action);
        let (regarding, note) = publisher.subject(record).await;
        let event = Event {
            type_: event_type,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(err) = publisher.recorder.publish(&event, &regarding).await {
            tracing::warn!(error = %err, reason, "cannot record Event");
        }
    }
}

/// The publisher for this replica: `reportingInstance` is the pod name, as the API requires.
pub fn publisher(client: kube::Client, instance: String) -> Publisher {
    Publisher {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: REPORTING_CONTROLLER.to_owned(),
                instance: Some(instance),
            },
        ),
        owners: OwnerCheck::new(client),
    }
}

#[cfg(test)]
mod tests;
