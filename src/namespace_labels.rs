//! The Pod Security Admission `enforce` label on each enforced namespace. One party owns
//! it: mcpguard's leader, through server-side apply with its own field manager, so that
//! Kubernetes' built-in PSA never rejects a pod mcpguard admitted (and never lets through
//! less than the policy's level when mcpguard enforces).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::policy::Policy;

pub const FIELD_MANAGER: &str = "mcpguard";
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// The labels mcpguard owns on an enforced namespace: the policy's PSS level and version.
pub fn enforce_labels(policy: &Policy) -> BTreeMap<String, String> {
    let security = policy.spec.pod_security;
    BTreeMap::from([
        (ENFORCE_LABEL.to_owned(), security.level.to_string()),
        (
            ENFORCE_VERSION_LABEL.to_owned(),
            security.version.to_string(),
        ),
    ])
}

/// The server-side apply body for one namespace: only the labels mcpguard owns.
pub fn apply_body(namespace: &str, labels: &BTreeMap<String, String>) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels},
    })
}

/// Applies the labels to every enforced namespace. A namespace that does not exist yet is
/// skipped (SSA would create it, and creating namespaces is not mcpguard's job).
pub async fn sync(client: &Client, policy: &Policy) -> Result<usize, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labels = enforce_labels(policy);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = 0;
    for name in &policy.spec.namespaces {
        if namespaces.get_opt(name).await?.is_none() {
            continue;
        }
        namespaces
            .patch(name, &params, &Patch::Apply(apply_body(name, &labels)))
            .await?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_policys_level_and_version() {
        let policy = Policy::embedded_default().expect("default policy");
        assert_eq!(
            apply_body("mcp", &enforce_labels(&policy)),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mcp", "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})
        );
        let baseline = crate::policy::parse_str(
            include_str!("../policies/mcp-baseline.yaml"),
            "mcp-baseline.yaml",
        )
        .expect("baseline policy");
        assert_eq!(enforce_labels(&baseline)[ENFORCE_LABEL], "baseline");
    }
}
