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
}

impl PolicyStore {
    pub fn new(fallback: Policy, metrics: Arc<Metrics>) -> PolicyStore {
        let set = PolicySet::single(Arc::new(fallback));
        metrics.set_policies(&set.serving());
        PolicyStore {
            sources: Mutex::new(Sources {
                fallback: set.fallback().clone(),
                cluster: ClusterPolicies::default(),
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

    /// Wakes on every rebuild.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    fn rebuild(&self, change: impl FnOnce(&mut Sources)) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut sources);
        let set = policy_set::assemble(sources.fallback.clone(), &sources.cluster);
        self.metrics.set_policies(&set.serving());
        self.current.store(Arc::new(set));
        self.changes.send_replace(());
    }
}
