//! `mcpguard audit --apply-policy`: which Deployments to restart (as `kubectl rollout
//! restart` does) so the webhook judges their drifted pods again, which to leave alone, and
//! the patch that restarts one. Pure: the command resolves each pod's owner and applies.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::findings::{CurrentViolation, PodRef, format_time};

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Who controls a drifting pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodOwner {
    Deployment(String),
    /// Not rollable; why (e.g. `controller: StatefulSet/db`).
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub namespace: String,
    pub deployment: String,
    pub pods: Vec<String>,
}

/// A Deployment whose own template fails today's policy: restarting it would not fix its
/// pods (and under `enforce` the new pods would be denied), so it is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub namespace: String,
    pub deployment: String,
    pub pods: Vec<String>,
    pub checks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub pod: PodRef,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub restarts: Vec<Restart>,
    pub blocked: Vec<Blocked>,
    pub skipped: Vec<Skipped>,
}

/// Which Deployments to restart (each once, its pods listed), which to leave because their
/// own template fails today's policy (per `violations`), and which pods cannot be rolled.
pub fn plan(owners: &[(PodRef, PodOwner)], violations: &[CurrentViolation]) -> Plan {
    let mut deployments: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut plan = Plan::default();
    for (pod, owner) in owners {
        match owner {
            PodOwner::Deployment(name) => deployments
                .entry((pod.namespace.clone(), name.clone()))
                .or_default()
                .push(pod.name.clone()),
            PodOwner::Other(why) => plan.skipped.push(Skipped {
                pod: pod.clone(),
                reason: why.clone(),
            }),
        }
    }
    for ((namespace, deployment), mut pods) in deployments {
        pods.sort();
        pods.dedup();
        let object = format!("Deployment/{deployment}");
        let checks: Vec<String> = violations
            .iter()
            .filter(|v| v.namespace == namespace && v.object == object)
            .map(|v| v.check.clone())
            .collect();
        if checks.is_empty() {
            plan.restarts.push(Restart {
                namespace,
                deployment,
                pods,
            });
        } else {
            plan.blocked.push(Blocked {
                namespace,
                deployment,
                pods,
                checks,
            });
        }
    }
    plan.skipped.sort_by(|a, b| a.pod.cmp(&b.pod));
    plan
}

/// The plan as the user confirms it.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.restarts.is_empty() && plan.blocked.is_empty() && plan.skipped.is_empty() {
        out.push_str("No running pod fails today's policy: nothing to restart.\n");
        return out;
    }
    for restart in &plan.restarts {
        out.push_str(&format!(
            "will restart deployment {}/{} (pods: {})\n",
            restart.namespace,
            restart.deployment,
            restart.pods.join(", ")
        ));
    }
    for blocked in &plan.blocked {
        out.push_str(&format!(
            "will not restart deployment {}/{} (pods: {}): its pod template fails today's policy ({}); fix the Deployment first\n",
            blocked.namespace,
            blocked.deployment,
            blocked.pods.join(", "),
            blocked.checks.join(", ")
        ));
    }
    for skipped in &plan.skipped {
        out.push_str(&format!(
            "cannot roll pod {}/{}: not owned by a Deployment ({})\n",
            skipped.pod.namespace, skipped.pod.name, skipped.reason
        ));
    }
    if plan.restarts.is_empty() {
        out.push_str("Nothing to restart.\n");
    }
    out
}

/// The merge patch `kubectl rollout restart` sends.
pub fn restart_patch(now: Timestamp) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: format_time(now)}}}}})
}

#[cfg(test)]
mod tests;
