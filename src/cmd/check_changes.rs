//! The changes `check` reports under an admitted object: one per operation of the
//! mutation's patch, each with the policy setting (or the admission plugin's work) that
//! made it.

use json_patch::{Patch, PatchOperation};
use serde::Serialize;
use serde_json::Value;

use mcpguard_core::policy::{ImagePullPolicy, Policy, ServiceAccountToken};

/// One operation of the mutation, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `add`, `replace` or `remove`.
    pub op: &'static str,
    /// An RFC 6901 pointer into the pod (for a workload, into its pods).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    pub reason: String,
}

/// The changes of `patch`, in its order.
pub fn changes_of(patch: &Patch, policy: &Policy) -> Vec<Change> {
    patch
        .0
        .iter()
        .map(|operation| {
            let (op, path, value) = match operation {
                PatchOperation::Add(o) => ("add", o.path.to_string(), Some(o.value.clone())),
                PatchOperation::Replace(o) => {
                    ("replace", o.path.to_string(), Some(o.value.clone()))
                }
                PatchOperation::Remove(o) => ("remove", o.path.to_string(), None),
                // Hardening writes only the three above; report any other as it is.
                other => ("other", other.path().to_string(), None),
            };
            let reason = reason_for(&path, op, value.as_ref(), policy);
            Change {
                op,
                path,
                value,
                reason,
            }
        })
        .collect()
}

fn reason_for(path: &str, op: &str, value: Option<&Value>, policy: &Policy) -> String {
    let mutate = &policy.spec.mutate;
    let tokens: Vec<&str> = path.split('/').skip(1).collect();
    let last_field = tokens
        .iter()
        .rev()
        .find(|t| t.parse::<usize>().is_err())
        .copied()
        .unwrap_or("");
    let in_container = matches!(
        tokens.get(1).copied(),
        Some("containers" | "initContainers" | "ephemeralContainers")
    );
    match (tokens.get(1).copied().unwrap_or(""), last_field) {
        (_, "imagePullPolicy") => format!(
            "mutate.imagePullPolicy: {}{}",
            setting_name(&mutate.image_pull_policy),
            match mutate.image_pull_policy {
                ImagePullPolicy::AlwaysExceptNever => " (the container does not say Never)",
                ImagePullPolicy::Always | ImagePullPolicy::Leave => "",
            }
        ),
        (_, "automountServiceAccountToken") => format!(
            "mutate.automountServiceAccountToken: {}{}",
            setting_name(&mutate.automount_service_account_token),
            match mutate.automount_service_account_token {
                ServiceAccountToken::KeepForNamedServiceAccounts => {
                    " (the pod runs as the default ServiceAccount)"
                }
                ServiceAccountToken::Remove | ServiceAccountToken::Leave => "",
            }
        ),
        ("volumes", _) | (_, "volumeMounts") if op == "remove" => {
            "the ServiceAccount token is turned off: the token volume the ServiceAccount \
             admission plugin mounted is removed"
                .to_owned()
        }
        (_, "runtimeClassName") => "mutate.runtimeClassName".to_owned(),
        ("overhead" | "nodeSelector", _) => {
            "the RuntimeClass's overhead and scheduling, as its admission plugin adds them"
                .to_owned()
        }
        ("tolerations", _) => "mutate.tolerations, or the RuntimeClass's scheduling".to_owned(),
        ("affinity", _) => "mutate.affinity".to_owned(),
        ("securityContext", _) => "mutate.podSecurityContext".to_owned(),
        _ if in_container && tokens.get(3) == Some(&"securityContext") => {
            "mutate.containerSecurityContext".to_owned()
        }
        _ if in_container && tokens.get(3) == Some(&"resources") => {
            if sets_a_ceiling_limit(&tokens, value, policy) {
                "mutate.resources, and the validate.maxResources ceiling for a limit".to_owned()
            } else {
                "mutate.resources".to_owned()
            }
        }
        _ => "mutate".to_owned(),
    }
}

/// Whether a change under a container's `resources` (at `tokens`) sets a limit that
/// `mutate.resources.limits` does not name, so the `validate.maxResources` ceiling filled it.
fn sets_a_ceiling_limit(tokens: &[&str], value: Option<&Value>, policy: &Policy) -> bool {
    let defaulted = |resource: &str| {
        policy
            .spec
            .mutate
            .resources
            .as_ref()
            .is_some_and(|r| r.limits.contains_key(resource))
    };
    let names_outside_defaults = |limits: Option<&Value>| {
        limits
            .and_then(Value::as_object)
            .is_some_and(|l| l.keys().any(|k| !defaulted(k)))
    };
    match tokens.get(4..).unwrap_or_default() {
        [] => names_outside_defaults(value.and_then(|v| v.get("limits"))),
        ["limits"] => names_outside_defaults(value),
        ["limits", resource] => !defaulted(resource),
        _ => false,
    }
}

/// A setting as the policy spells it.
fn setting_name(setting: &impl Serialize) -> String {
    serde_json::to_value(setting)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
