//! Hot reload of the policy file. Polling by path follows a ConfigMap volume's `..data`
//! symlink swap. A new policy is swapped in atomically; one that does not load is refused,
//! logged and counted, and the previous policy keeps serving (readiness is unaffected).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Metrics, ResultLabels};
use crate::policy_store::PolicyStore;
use mcpguard_core::policy;

/// What one check of the file found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadResult {
    Unchanged,
    Reloaded,
    Refused(String),
    Unreadable(String),
}

/// Compares the file with the text last seen and swaps in a changed, valid policy.
pub fn reload_once(
    policies: &PolicyStore,
    path: &std::path::Path,
    last_seen: &mut Option<String>,
) -> ReloadResult {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => return ReloadResult::Unreadable(format!("{}: {err}", path.display())),
    };
    if last_seen.as_deref() == Some(text.as_str()) {
        return ReloadResult::Unchanged;
    }
    let result = match policy::parse_str(&text, &path.display().to_string()) {
        Ok(new_policy) => {
            policies.set_fallback(new_policy);
            ReloadResult::Reloaded
        }
        Err(err) => ReloadResult::Refused(err.to_string()),
    };
    *last_seen = Some(text);
    result
}

/// Checks the file every `interval` until the process ends.
pub async fn watch(
    policies: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    path: PathBuf,
    interval: Duration,
    initial_text: Option<String>,
) {
    let mut last_seen = initial_text;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = reload_once(&policies, &path, &mut last_seen);
        let label = match &result {
            ReloadResult::Unchanged => continue,
            ReloadResult::Reloaded => {
                let serving = policies.load();
                let policy = serving.fallback();
                tracing::info!(policy = %policy.name, file = %path.display(), "policy reloaded");
                log_trust_warnings(policy);
                crate::metrics::RESULT_SUCCESS
            }
            ReloadResult::Refused(message) => {
                tracing::error!(error = %message, "new policy refused; the previous policy keeps serving");
                crate::metrics::RESULT_FAILURE
            }
            ReloadResult::Unreadable(message) => {
                // A ConfigMap volume is briefly absent during kubelet's swap; say so at debug.
                tracing::debug!(error = %message, "policy file unreadable; keeping the current policy");
                continue;
            }
        };
        metrics
            .policy_reloads
            .get_or_create(&ResultLabels { result: label })
            .inc();
    }
}

/// Says loudly, once per load, which exceptions anyone who may create pods can match.
pub fn log_trust_warnings(policy: &mcpguard_core::policy::Policy) {
    for warning in mcpguard_core::exceptions::trust_warnings(policy) {
        tracing::warn!(policy = %policy.name, "{warning}");
    }
}
