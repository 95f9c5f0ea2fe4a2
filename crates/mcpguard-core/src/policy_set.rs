//! Which policy governs which namespace: the `MCPPolicy` objects of the cluster, each
//! covering its `spec.namespaces`, and the policy file (or the embedded default) covering
//! the namespaces no object claims. Two objects claiming one namespace are a conflict: the
//! older keeps it and both say so in their status.
//!
//! Pure: built from what the watch saw; the watch, the status writes and the webhook
//! configuration live in `policy_watch`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::conditions::Condition;
use crate::policy::{self, MCPPolicyStatus, Policy, PolicyError};

pub const READY: &str = "Ready";
pub const CONFLICT: &str = "Conflict";
/// Present (True) only while an exception waives a Pod Security check on what a pod's author
/// chooses ([`crate::exceptions::trust_warnings`]).
pub const EXCEPTIONS_TRUST_AUTHORS: &str = "ExceptionsTrustAuthors";

/// One `MCPPolicy` object as the watch last saw it, compiled.
#[derive(Clone, Debug)]
pub struct ClusterPolicy {
    pub name: String,
    pub uid: String,
    /// `metadata.creationTimestamp` (RFC 3339, UTC): the older policy wins a conflict.
    pub created: String,
    pub generation: i64,
    pub compiled: Result<Arc<Policy>, PolicyError>,
    /// The newest generation of this object that compiled, and its number: it keeps being
    /// enforced while a newer generation is broken, so a bad edit never opens a namespace.
    pub last_good: Option<(i64, Arc<Policy>)>,
    /// The status the object carries now.
    pub status: Option<Value>,
}

impl ClusterPolicy {
    /// Reads an object; compiles its spec unless `previous` (the same object) already did
    /// for this generation.
    pub fn from_object(object: &Value, previous: Option<&ClusterPolicy>) -> ClusterPolicy {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let name = text("/metadata/name");
        let uid = text("/metadata/uid");
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let previous = previous.filter(|p| p.uid == uid);
        let (compiled, last_good) = match previous {
            Some(p) if p.generation == generation => (p.compiled.clone(), p.last_good.clone()),
            _ => {
                let compiled = policy::from_object(object).map(Arc::new);
                let last_good = match &compiled {
                    Ok(policy) => Some((generation, policy.clone())),
                    Err(_) => previous.and_then(|p| p.last_good.clone()),
                };
                (compiled, last_good)
            }
        };
        ClusterPolicy {
            name,
            uid,
            created: text("/metadata/creationTimestamp"),
            generation,
            compiled,
            last_good,
            status: object.get("status").cloned(),
        }
    }

    /// The policy enforced for this object: the current generation, else the last good one.
    pub fn serving(&self) -> Option<&Arc<Policy>> {
        match &self.compiled {
            Ok(policy) => Some(policy),
            Err(_) => self.last_good.as_ref().map(|(_, policy)| policy),
        }
    }
}

/// Every `MCPPolicy` object the watch knows, by uid.
#[derive(Clone, Debug, Default)]
pub struct ClusterPolicies {
    by_uid: BTreeMap<String, ClusterPolicy>,
}

impl ClusterPolicies {
    /// An object was created or changed.
    pub fn apply(&mut self, object: &Value) {
        let uid = uid_of(object);
        let entry = ClusterPolicy::from_object(object, self.by_uid.get(&uid));
        self.by_uid.insert(uid, entry);
    }

    pub fn remove(&mut self, object: &Value) {
        self.by_uid.remove(&uid_of(object));
    }

    /// The watch (re)listed: exactly these objects exist now. Compilations of unchanged
    /// generations are kept.
    pub fn replace_all(&mut self, objects: &[Value]) {
        let mut next = BTreeMap::new();
        for object in objects {
            let uid = uid_of(object);
            let entry = ClusterPolicy::from_object(object, self.by_uid.get(&uid));
            next.insert(uid, entry);
        }
        self.by_uid = next;
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    /// Oldest first: the order in which claims are granted.
    fn by_age(&self) -> Vec<&ClusterPolicy> {
        let mut entries: Vec<&ClusterPolicy> = self.by_uid.values().collect();
        entries.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
        entries
    }
}

fn uid_of(object: &Value) -> String {
    // An object always has a uid; the name keeps a malformed one from colliding with others.
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .or_else(|| object.pointer("/metadata/name").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// The status one object should carry (conditions without `lastTransitionTime`, which the
/// writer keeps or stamps), next to the status it carries now.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusReport {
    pub name: String,
    pub current: Option<Value>,
    pub desired: MCPPolicyStatus,
}

/// The policies in force, by namespace. Cheap to share; replaced whole on every change.
#[derive(Clone, Debug)]
pub struct PolicySet {
    fallback: Arc<Policy>,
    by_namespace: BTreeMap<String, Arc<Policy>>,
    /// The `MCPPolicy` object holding each claimed namespace: (creationTimestamp, name).
    holders: BTreeMap<String, (String, String)>,
    statuses: Vec<StatusReport>,
}

impl PolicySet {
    /// The policy file alone (no cluster, or no `MCPPolicy` objects).
    pub fn single(fallback: Arc<Policy>) -> PolicySet {
        assemble(fallback, &ClusterPolicies::default())
    }

    /// The policy that judges objects in `namespace`. One that no policy covers gets the
    /// fallback, which does not enforce it, so the engine admits it untouched.
    pub fn for_namespace(&self, namespace: Option<&str>) -> &Arc<Policy> {
        namespace
            .and_then(|ns| self.by_namespace.get(ns))
            .unwrap_or(&self.fallback)
    }

    /// The policy file's (or the embedded default's) policy.
    pub fn fallback(&self) -> &Arc<Policy> {
        &self.fallback
    }

    /// Every covered namespace with its policy, sorted by namespace.
    pub fn covered(&self) -> impl Iterator<Item = (&str, &Arc<Policy>)> {
        self.by_namespace.iter().map(|(ns, p)| (ns.as_str(), p))
    }

    /// Whether a policy in force covers `namespace`.
    pub fn covers(&self, namespace: &str) -> bool {
        self.by_namespace.contains_key(namespace)
    }

    pub fn covered_namespaces(&self) -> Vec<String> {
        self.by_namespace.keys().cloned().collect()
    }

    /// The distinct policies that cover at least one namespace, and the fallback.
    pub fn serving(&self) -> Vec<Arc<Policy>> {
        let mut serving = vec![self.fallback.clone()];
        for policy in self.by_namespace.values() {
            if !serving.iter().any(|p| Arc::ptr_eq(p, policy)) {
                serving.push(policy.clone());
            }
        }
        serving
    }

    /// Whether both sets enforce the same compiled policies in the same namespaces (a status
    /// change rebuilds the set without changing what is enforced).
    pub fn same_enforcement(&self, other: &PolicySet) -> bool {
        Arc::ptr_eq(&self.fallback, &other.fallback)
            && self.by_namespace.len() == other.by_namespace.len()
            && self
                .by_namespace
                .iter()
                .zip(&other.by_namespace)
                .all(|((a, p), (b, q))| a == b && Arc::ptr_eq(p, q))
    }

    /// The same routing with every distinct policy changed by `adjust` (a command line's
    /// `--pss-level`, or the webhook's `latest` resolved to its cluster's version); a policy
    /// that judges several namespaces stays one shared policy.
    pub fn adjusted(&self, adjust: impl Fn(&mut Policy)) -> PolicySet {
        self.map_policies(|policy| {
            let mut copy = Policy::clone(policy);
            adjust(&mut copy);
            Arc::new(copy)
        })
    }

    /// The same routing with every distinct policy replaced by `map(policy)`, called once
    /// per distinct policy: a caller that returns the same `Arc` for an unchanged policy
    /// keeps [`PolicySet::same_enforcement`] true across rebuilds.
    pub fn map_policies(&self, mut map: impl FnMut(&Arc<Policy>) -> Arc<Policy>) -> PolicySet {
        let mut mapped: Vec<(Arc<Policy>, Arc<Policy>)> = Vec::new();
        let mut change = |policy: &Arc<Policy>| -> Arc<Policy> {
            if let Some((_, new)) = mapped.iter().find(|(old, _)| Arc::ptr_eq(old, policy)) {
                return new.clone();
            }
            let new = map(policy);
            mapped.push((policy.clone(), new.clone()));
            new
        };
        let fallback = change(&self.fallback);
        let by_namespace = self
            .by_namespace
            .iter()
            .map(|(namespace, policy)| (namespace.clone(), change(policy)))
            .collect();
        PolicySet {
            fallback,
            by_namespace,
            holders: self.holders.clone(),
            statuses: self.statuses.clone(),
        }
    }

    /// Each `MCPPolicy` object's conflict over a namespace, in the words of its `Conflict`
    /// condition: `MCPPolicy "b": namespace "mcp" is held by the older MCPPolicy "a"`.
    pub fn conflicts(&self) -> Vec<String> {
        self.statuses
            .iter()
            .flat_map(|report| {
                report
                    .desired
                    .conditions
                    .iter()
                    .filter(|c| c.type_ == CONFLICT && c.status == "True")
                    .map(|c| format!("MCPPolicy {:?}: {}", report.name, c.message))
            })
            .collect()
    }

    /// The status each `MCPPolicy` object should carry, by name.
    pub fn statuses(&self) -> &[StatusReport] {
        &self.statuses
    }

    /// What writing an `MCPPolicy` named `name` (created at `created`, `None` when it is
    /// new) that claims `namespaces` will do to the namespaces' coverage, for the warnings
    /// `kubectl apply` prints: the status says it later, the admin reads it now.
    pub fn claim_warnings(
        &self,
        name: &str,
        created: Option<&str>,
        namespaces: &[String],
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        for namespace in namespaces {
            match self.holders.get(namespace) {
                Some((_, holder)) if holder == name => {}
                Some((held_since, holder)) => {
                    let newer_than_holder = created
                        .is_none_or(|created| (created, name) > (held_since.as_str(), holder.as_str()));
                    warnings.push(if newer_than_holder {
                        format!(
                            "namespace {namespace:?} is held by the older MCPPolicy {holder:?}: this policy will not enforce it (see its Conflict condition)"
                        )
                    } else {
                        format!(
                            "namespace {namespace:?} is held by the newer MCPPolicy {holder:?}: this policy takes it over"
                        )
                    });
                }
                None if self.fallback.enforces_namespace(namespace) => warnings.push(format!(
                    "namespace {namespace:?} is covered by the policy file's {:?}: this MCPPolicy takes it over",
                    self.fallback.name
                )),
                None => {}
            }
        }
        warnings
    }
}

/// The cluster's routing, offline (`check`, `mutate`, `render`): `fallback` plays the
/// webhook's policy file, and each of `objects` an `MCPPolicy` object, routed exactly as
/// [`assemble`] routes the watch's. Objects read from files carry no `creationTimestamp`, so
/// claims on one namespace go by name, as if all were created at once. Offline there is no
/// last good generation: an object that does not compile is an error.
pub fn offline(fallback: Arc<Policy>, objects: &[Value]) -> Result<PolicySet, PolicyError> {
    let mut cluster = ClusterPolicies::default();
    for object in objects {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if cluster.by_uid.values().any(|known| known.name == name) {
            // The cluster keeps one object per name; a second document of the same name
            // would replace the first, which is never what a policy author meant offline.
            return Err(PolicyError {
                source_name: format!("{name:?}"),
                path: "metadata.name".into(),
                message: "two MCPPolicy objects have this name".into(),
            });
        }
        cluster.apply(object);
    }
    if let Some(Err(err)) = cluster
        .by_uid
        .values()
        .map(|p| p.compiled.as_ref())
        .find(|c| c.is_err())
    {
        return Err(err.clone());
    }
    Ok(assemble(fallback, &cluster))
}

/// Grants claims oldest first, then gives the fallback what no object claimed.
pub fn assemble(fallback: Arc<Policy>, cluster: &ClusterPolicies) -> PolicySet {
    let mut by_namespace: BTreeMap<String, Arc<Policy>> = BTreeMap::new();
    let mut holder: BTreeMap<&str, &str> = BTreeMap::new();
    let mut holders: BTreeMap<String, (String, String)> = BTreeMap::new();
    let entries = cluster.by_age();
    let mut kept: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
    let mut lost: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
    let mut contested: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
    for (index, entry) in entries.iter().enumerate() {
        let Some(policy) = entry.serving() else {
            continue;
        };
        for namespace in &policy.spec.namespaces {
            match holder.get(namespace.as_str()) {
                Some(older) => {
                    lost[index].push(format!(
                        "namespace {namespace:?} is held by the older MCPPolicy {older:?}"
                    ));
                    if let Some(older_index) = entries.iter().position(|e| e.name == *older) {
                        contested[older_index].push(format!(
                            "namespace {namespace:?} is also claimed by the newer MCPPolicy {:?}, which does not get it",
                            entry.name
                        ));
                    }
                }
                None => {
                    holder.insert(namespace, &entry.name);
                    holders.insert(
                        namespace.clone(),
                        (entry.created.clone(), entry.name.clone()),
                    );
                    by_namespace.insert(namespace.clone(), policy.clone());
                    kept[index].push(namespace.clone());
                }
            }
        }
    }
    for namespace in &fallback.spec.namespaces {
        by_namespace
            .entry(namespace.clone())
            .or_insert_with(|| fallback.clone());
    }
    let statuses = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| StatusReport {
            name: entry.name.clone(),
            current: entry.status.clone(),
            desired: desired_status(entry, &kept[index], &lost[index], &contested[index]),
        })
        .collect();
    PolicySet {
        fallback,
        by_namespace,
        holders,
        statuses,
    }
}

fn desired_status(
    entry: &ClusterPolicy,
    kept: &[String],
    lost: &[String],
    contested: &[String],
) -> MCPPolicyStatus {
    let ready = match (&entry.compiled, &entry.last_good, kept.is_empty()) {
        (Ok(_), _, false) => wanted(
            READY,
            "True",
            "Enforcing",
            format!("enforcing in namespaces {}", kept.join(", ")),
        ),
        (Ok(_), _, true) => wanted(
            READY,
            "False",
            "NoNamespaces",
            "every namespace this policy claims is held by an older policy".to_owned(),
        ),
        (Err(err), Some((generation, _)), _) => wanted(
            READY,
            "False",
            "InvalidSpec",
            format!("{err}; generation {generation}, the last valid one, is still enforced"),
        ),
        (Err(err), None, _) => wanted(READY, "False", "InvalidSpec", err.to_string()),
    };
    let mut problems: Vec<String> = lost.to_vec();
    problems.extend(contested.iter().cloned());
    let conflict = if problems.is_empty() {
        wanted(CONFLICT, "False", "NoConflict", String::new())
    } else {
        let reason = if lost.is_empty() {
            "NamespaceContested"
        } else {
            "NamespaceHeldElsewhere"
        };
        wanted(CONFLICT, "True", reason, problems.join("; "))
    };
    let trusting = match &entry.compiled {
        Ok(policy) => crate::exceptions::trust_warnings(policy),
        Err(_) => Vec::new(),
    };
    let exceptions = (!trusting.is_empty()).then(|| {
        wanted(
            EXCEPTIONS_TRUST_AUTHORS,
            "True",
            "AuthorChosenMatch",
            trusting.join("; "),
        )
    });
    let generation = Some(entry.generation);
    let conditions = [Some(ready), Some(conflict), exceptions]
        .into_iter()
        .flatten()
        .map(|mut condition| {
            condition.observed_generation = generation;
            condition
        })
        .collect();
    MCPPolicyStatus {
        observed_generation: generation,
        namespaces: kept.to_vec(),
        conditions,
    }
}

fn wanted(type_: &str, status: &str, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: None,
        observed_generation: None,
    }
}

/// The status to write for `report` at `now` (RFC 3339), or `None` when the object already
/// carries it. A condition keeps its `lastTransitionTime` while its status stays the same.
pub fn status_to_write(report: &StatusReport, now: &str) -> Option<MCPPolicyStatus> {
    let current: MCPPolicyStatus = report
        .current
        .clone()
        .and_then(|status| serde_json::from_value(status).ok())
        .unwrap_or_default();
    let mut next = report.desired.clone();
    next.conditions =
        crate::conditions::with_transition_times(next.conditions, &current.conditions, now);
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests;
