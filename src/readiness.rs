//! What `/readyz` answers: the conditions a replica must meet before kube-apiserver's
//! calls reach it. The webhook serves it; the loops that sync caches and policies set it,
//! so it lives beside them rather than in the HTTP layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::webhook::tls::SwappableCert;

/// `/readyz` is true only while every condition holds.
#[derive(Debug)]
pub struct Readiness {
    pub tls_listening: AtomicBool,
    pub caches_synced: AtomicBool,
    /// The MCPPolicy objects have been listed (true when they are not watched).
    pub policies_synced: AtomicBool,
    pub shutting_down: AtomicBool,
    /// The serving certificate, when it may be absent at first (self-managed installs).
    pub certificate: std::sync::OnceLock<Arc<SwappableCert>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            tls_listening: AtomicBool::new(false),
            caches_synced: AtomicBool::new(true),
            policies_synced: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            certificate: std::sync::OnceLock::new(),
        }
    }
}

impl Readiness {
    /// The policy file is loaded before the replica starts serving, so it is not a condition
    /// here; the MCPPolicy objects are.
    pub fn is_ready(&self) -> bool {
        self.tls_listening.load(Ordering::Acquire)
            && self.caches_synced.load(Ordering::Acquire)
            && self.policies_synced.load(Ordering::Acquire)
            && !self.shutting_down.load(Ordering::Acquire)
            && self.certificate.get().is_none_or(|cert| cert.is_loaded())
    }
}
