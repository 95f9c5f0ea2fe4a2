//! The controller a pod's `ownerReferences` claim. The pod's author writes that list, so a
//! claim is only a hint: the hot path records it (bounded, and only if it could name a real
//! object), and the Event worker files the Event against it only after reading that object
//! back from the API server with the same UID. Only the workload kinds mcpguard judges can
//! become a subject, each read in the request's namespace, so no request can make mcpguard
//! file Events against, or read, anything else.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// `(apiVersion, kind, plural)` of the controllers a judged pod or template can have.
const WORKLOAD_KINDS: &[(&str, &str, &str)] = &[
    ("apps/v1", "ReplicaSet", "replicasets"),
    ("apps/v1", "Deployment", "deployments"),
    ("apps/v1", "StatefulSet", "statefulsets"),
    ("apps/v1", "DaemonSet", "daemonsets"),
    ("batch/v1", "Job", "jobs"),
    ("batch/v1", "CronJob", "cronjobs"),
    ("v1", "ReplicationController", "replicationcontrollers"),
];

/// Longer than any real value of the field: a claim over them names nothing.
const MAX_API_VERSION_LEN: usize = 253;
const MAX_KIND_LEN: usize = 63;
const MAX_NAME_LEN: usize = 253;
const MAX_UID_LEN: usize = 128;
const MAX_NAMESPACE_LEN: usize = 63;

/// Verifications remembered, and for how long: a burst of pods from one ReplicaSet costs one
/// read, and a flood of forged owners cannot grow the memory.
pub const VERIFIED_CAPACITY: usize = 512;
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// A read slower than this leaves the Event on the request's object.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A `controller: true` owner reference as written in the object: untrusted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClaimedOwner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl ClaimedOwner {
    /// The object's controller claim, if every field could belong to a real object (a kind
    /// is an identifier, a workload name a DNS subdomain, ...). Anything else is dropped
    /// here, so what the worker reads or writes into a note is short and plain.
    pub fn of(object: &Value) -> Option<ClaimedOwner> {
        let owner = object
            .pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))?;
        let field = |key: &str, max_len: usize, valid: fn(&str) -> bool| {
            let value = owner.get(key)?.as_str()?;
            (value.len() <= max_len && valid(value)).then(|| value.to_owned())
        };
        Some(ClaimedOwner {
            api_version: field("apiVersion", MAX_API_VERSION_LEN, is_api_version)?,
            kind: field("kind", MAX_KIND_LEN, is_kind)?,
            name: field("name", MAX_NAME_LEN, is_dns_subdomain)?,
            uid: field("uid", MAX_UID_LEN, is_uid)?,
        })
    }

    /// Where this owner would be read, if it is a workload kind mcpguard handles.
    fn workload(&self) -> Option<ApiResource> {
        let (api_version, kind, plural) =
            WORKLOAD_KINDS.iter().find(|(api_version, kind, _)| {
                *api_version == self.api_version && *kind == self.kind
            })?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", *api_version));
        Some(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ))
    }

    /// The owner as an Event's subject, in `namespace` (owners live in their dependents').
    pub fn reference(&self, namespace: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.api_version.clone()),
            kind: Some(self.kind.clone()),
            name: Some(self.name.clone()),
            namespace: Some(namespace.to_owned()),
            uid: Some(self.uid.clone()),
            ..ObjectReference::default()
        }
    }
}

fn is_api_version(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/')
        })
}

fn is_kind(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_uid(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// RFC 1123 subdomain: what every workload name is, and all that may go into a URL path.
fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= MAX_NAME_LEN && value.split('.').all(is_dns_label)
}

/// RFC 1123 label: lower-case letters, digits and inner `-`.
fn is_dns_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// Recent answers to "does this owner exist with this UID", bounded in count and age.
#[derive(Debug)]
pub struct VerifiedOwners {
    entries: HashMap<(String, ClaimedOwner), (bool, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl VerifiedOwners {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        VerifiedOwners {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The answer recorded within the TTL before `now`, if any.
    pub fn get(&self, namespace: &str, claim: &ClaimedOwner, now: Instant) -> Option<bool> {
        let (real, at) = self.entries.get(&(namespace.to_owned(), claim.clone()))?;
        (now.saturating_duration_since(*at) < self.ttl).then_some(*real)
    }

    /// Records an answer; when full, expired entries go first, then the oldest.
    pub fn insert(&mut self, namespace: &str, claim: &ClaimedOwner, real: bool, now: Instant) {
        let key = (namespace.to_owned(), claim.clone());
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(key, _)| key.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (real, now));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads claimed owners back from the API server (metadata only), remembering answers.
pub struct OwnerCheck {
    client: kube::Client,
    verified: VerifiedOwners,
}

impl OwnerCheck {
    pub fn new(client: kube::Client) -> Self {
        OwnerCheck {
            client,
            verified: VerifiedOwners::new(VERIFIED_CAPACITY, VERIFIED_TTL),
        }
    }

    /// Whether `claim` is a workload kind mcpguard handles that exists in `namespace` with
    /// the claimed UID. A failed read answers no and is not remembered, so the next Event
    /// asks again.
    pub async fn is_real(&mut self, namespace: &str, claim: &ClaimedOwner) -> bool {
        let Some(resource) = claim.workload() else {
            return false;
        };
        if namespace.len() > MAX_NAMESPACE_LEN || !is_dns_label(namespace) {
            return false;
        }
        let now = Instant::now();
        if let Some(real) = self.verified.get(namespace, claim, now) {
            return real;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let real = match tokio::time::timeout(LOOKUP_TIMEOUT, api.get_metadata_opt(&claim.name))
            .await
        {
            Ok(Ok(found)) => {
                found.is_some_and(|found| found.metadata.uid.as_deref() == Some(claim.uid.as_str()))
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, kind = %claim.kind, "cannot read a pod's claimed controller");
                return false;
            }
            Err(_) => {
                tracing::warn!(kind = %claim.kind, "reading a pod's claimed controller timed out");
                return false;
            }
        };
        self.verified.insert(namespace, claim, real, now);
        real
    }
}
