//! Kubernetes status conditions, as MCPServer and MCPPolicy report them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `Ready`, `SecretsResolved`, `PolicyCompliant`, with the Kubernetes condition fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Stamps `now` (RFC 3339) on each wanted condition whose status differs from the current
/// one of its type, and keeps the current `lastTransitionTime` on the others, as Kubernetes
/// conditions do.
pub fn with_transition_times(
    wanted: Vec<Condition>,
    current: &[Condition],
    now: &str,
) -> Vec<Condition> {
    wanted
        .into_iter()
        .map(|mut condition| {
            condition.last_transition_time = current
                .iter()
                .find(|c| c.type_ == condition.type_ && c.status == condition.status)
                .and_then(|c| c.last_transition_time.clone())
                .or_else(|| Some(now.to_owned()));
            condition
        })
        .collect()
}
