//! The policies a replica enforces: the policy file (hot-reloaded) and the `MCPPolicy`
//! objects (watched), combined into one `PolicySet` that reviews read without locking.
//! Every change rebuilds the set and swaps it in whole, so a review sees either the old
//! policies or the new ones, never a mix.

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use mcpguard_core::policy::Policy;
use mcpguard_core::policy_set::{self, ClusterPolicies, PolicySet};

pub struct PolicyStore {
    current: ArcSwap<PolicySet>,
    /// Serialises rebuilds; reviews never take it.
    sources: Mutex<Sources>,
    changes: tokio::sync::watch::Sender<()>,
    metrics: Arc<Metrics>,
}

struct Sources {
    fallback: Arc<Policy>,
    cluster: ClusterPolicies,
    /// The API server's minor version, once known: PSA in that cluster knows no check newer
    /// than its own release, so `latest` (and any newer pin) is judged as that version.
    cluster_minor: Option<u32>,
    /// Each compiled policy and its version-resolved copy, reused across rebuilds so that a
    /// status-only change keeps `same_enforcement` (no needless re-reconcile or re-scan).
    resolved: Vec<(Arc<Policy>, Arc<Policy>)>,
}

impl PolicyStore {
    pub fn new(fallback: Policy, metrics: Arc<Metrics>) -> PolicyStore {
        let set = PolicySet::single(Arc::new(fallback));
        metrics.set_policies(&set.serving());
        PolicyStore {
            sources: Mutex::new(Sources {
                fallback: set.fallback().clone(),
                cluster: ClusterPolicies::default(),
                cluster_minor: None,
                resolved: Vec::new(),
            }),
            current: ArcSwap::from_pointee(set),
            changes: tokio::sync::watch::Sender::new(()),
            metrics,
        }
    }

    /// The set in force now, for one review.
    pub fn load(&self) -> arc_swap::Guard<Arc<PolicySet>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// A new policy file (hot reload).
    pub fn set_fallback(&self, policy: Policy) {
        self.rebuild(|sources| sources.fallback = Arc::new(policy));
    }

    /// What the `MCPPolicy` watch saw.
    pub fn update_cluster(&self, update: impl FnOnce(&mut ClusterPolicies)) {
        self.rebuild(|sources| update(&mut sources.cluster));
    }

    /// The cluster's Kubernetes minor version (from the API server's `/version`): from now
    /// on every policy's Pod Security version is judged as that cluster's PSA judges it.
    pub fn set_cluster_minor(&self, minor: u32) {
        self.rebuild(|sources| sources.cluster_minor = Some(minor));
    }

    /// Wakes on every rebuild.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    fn rebuild(&self, change: impl FnOnce(&mut Sources)) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut sources);
        let assembled = policy_set::assemble(sources.fallback.clone(), &sources.cluster);
        let set = match sources.cluster_minor {
            None => assembled,
            Some(minor) => {
                let previous = std::mem::take(&mut sources.resolved);
                let mut resolved = Vec::new();
                let set = assembled.map_policies(|policy| {
                    let known = previous
                        .iter()
                        .find(|(compiled, _)| Arc::ptr_eq(compiled, policy))
                        .map(|(_, copy)| copy.clone());
                    let copy = known.unwrap_or_else(|| for_cluster(policy, minor));
                    resolved.push((policy.clone(), copy.clone()));
                    copy
                });
                sources.resolved = resolved;
                set
            }
        };
        self.metrics.set_policies(&set.serving());
        self.current.store(Arc::new(set));
        self.changes.send_replace(());
    }
}

/// `policy` with its Pod Security version as a cluster of `minor` judges it; the same `Arc`
/// when that changes nothing (a version pinned at or below the cluster's).
fn for_cluster(policy: &Arc<Policy>, minor: u32) -> Arc<Policy> {
    let version = policy.spec.pod_security.version;
    let resolved = version.for_cluster(minor);
    if resolved == version {
        return policy.clone();
    }
    tracing::info!(
        policy = %policy.name,
        configured = %version,
        judged_as = %resolved,
        "Pod Security version resolved to the cluster's Kubernetes version"
    );
    let mut copy = Policy::clone(policy);
    copy.spec.pod_security.version = resolved;
    Arc::new(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpguard_core::pss::Version;
    use serde_json::json;

    fn store() -> PolicyStore {
        let fallback = Policy::embedded_default().expect("the default loads");
        PolicyStore::new(fallback, Arc::new(Metrics::new()))
    }

    fn object(name: &str, namespace: &str, version: &str, generation: i64) -> serde_json::Value {
        json!({
            "apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPPolicy",
            "metadata": {"name": name, "uid": name, "generation": generation,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"namespaces": [namespace], "podSecurity": {"level": "restricted", "version": version}},
        })
    }

    #[test]
    fn latest_and_newer_pins_are_judged_as_the_clusters_version_once_it_is_known() {
        let store = store();
        store.update_cluster(|cluster| {
            cluster.replace_all(&[
                object("newer", "a", "v1.99", 1),
                object("older", "b", "v1.30", 1),
            ])
        });
        let version = |namespace: &str| {
            store
                .load()
                .for_namespace(Some(namespace))
                .spec
                .pod_security
                .version
        };
        assert_eq!(
            version("mcp"),
            Version::Latest,
            "unknown until /version answers"
        );
        store.set_cluster_minor(34);
        assert_eq!(version("mcp"), Version::Minor(34));
        assert_eq!(version("a"), Version::Minor(34));
        assert_eq!(
            version("b"),
            Version::Minor(30),
            "a pin below the cluster's stays"
        );
    }

    #[test]
    fn a_status_only_change_keeps_the_same_enforcement() {
        let store = store();
        store.set_cluster_minor(34);
        store.update_cluster(|cluster| cluster.replace_all(&[object("p", "a", "latest", 1)]));
        let before = store.load_full();
        let mut with_status = object("p", "a", "latest", 1);
        with_status["status"] = json!({"observedGeneration": 1});
        store.update_cluster(|cluster| cluster.apply(&with_status));
        assert!(store.load_full().same_enforcement(&before));
        // A new generation is a new policy.
        store.update_cluster(|cluster| cluster.apply(&object("p", "a", "latest", 2)));
        assert!(!store.load_full().same_enforcement(&before));
    }
}
