//! The Pod Security Admission `enforce` label on each enforced namespace. One party owns
//! it: mcpguard's leader, through server-side apply with its own field manager, so that
//! Kubernetes' built-in PSA never rejects a pod mcpguard admitted (and never lets through
//! less than the policy's level when mcpguard enforces).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::cluster::leader::{Cadence, run_while_leading};
use crate::policy_store::PolicyStore;
use mcpguard_core::policy::{Mode, Policy};
use mcpguard_core::policy_set::PolicySet;

pub const FIELD_MANAGER: &str = "mcpguard";
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// The labels mcpguard owns on an enforced namespace: the policy's PSS level and version
/// while mcpguard enforces there with no exception waiving a PSS check; `privileged`
/// otherwise, so that the built-in PSA never rejects what mcpguard deliberately admits.
pub fn enforce_labels(policy: &Policy, namespace: &str) -> BTreeMap<String, String> {
    let security = policy.spec.pod_security;
    let pss_checks = mcpguard_core::pss::all_check_ids();
    let waives_pss = policy.spec.exceptions.iter().any(|exception| {
        let covers = exception.match_.namespaces.is_empty()
            || exception.match_.namespaces.iter().any(|ns| ns == namespace);
        covers
            && exception
                .checks
                .iter()
                .any(|c| pss_checks.contains(&c.as_str()))
    });
    let level = if policy.mode_for(namespace) == Mode::Enforce && !waives_pss {
        security.level.to_string()
    } else {
        "privileged".to_owned()
    };
    BTreeMap::from([
        (ENFORCE_LABEL.to_owned(), level),
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

/// How often the leader applies the labels again.
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(60);

/// Applies the labels while this replica leads: on winning the lease and every `RESYNC`.
pub async fn run(
    client: Client,
    policies: Arc<PolicyStore>,
    leader: tokio::sync::watch::Receiver<bool>,
) {
    let (client, policies) = (&client, &policies);
    run_while_leading(leader, Cadence::Every(RESYNC), move |_| async move {
        match sync(client, &policies.load_full()).await {
            Ok(applied) => tracing::debug!(applied, "namespace enforce labels applied"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot apply namespace enforce labels; retrying")
            }
        }
    })
    .await;
}

/// Applies the labels to every covered namespace, from the policy that governs it. A
/// namespace that does not exist yet is skipped (SSA would create it, and creating
/// namespaces is not mcpguard's job).
pub async fn sync(client: &Client, policies: &PolicySet) -> Result<usize, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = 0;
    for (name, policy) in policies.covered() {
        let labelled = async {
            if namespaces.get_opt(name).await?.is_none() {
                return Ok(false);
            }
            let labels = enforce_labels(policy, name);
            namespaces
                .patch(name, &params, &Patch::Apply(apply_body(name, &labels)))
                .await?;
            Ok(true)
        };
        match labelled.await {
            Ok(true) => applied += 1,
            Ok(false) => {}
            // RBAC grants namespaces by name: one a new MCPPolicy claims is not granted
            // until the admin adds it, and must not stop the others from being labelled.
            Err(kube::Error::Api(status)) if status.code == 403 => tracing::warn!(
                namespace = name,
                "cannot set the PSA enforce label: add the namespace to the mcpguard ClusterRole's namespaces rule"
            ),
            Err(err) => return Err(err),
        }
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
            apply_body("mcp", &enforce_labels(&policy, "mcp")),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mcp", "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})
        );
        let baseline = mcpguard_core::policy::parse_str(
            include_str!("../../policies/mcp-baseline.yaml"),
            "mcp-baseline.yaml",
        )
        .expect("baseline policy");
        assert_eq!(
            enforce_labels(&baseline, "mcp-dev")[ENFORCE_LABEL],
            "baseline"
        );
    }

    fn policy_with(extra: &str) -> Policy {
        let text = format!(
            "{}{extra}",
            include_str!("../../policies/mcp-restricted.yaml")
                .replace("namespaces: [mcp]", "namespaces: [mcp, legacy]")
                .replace("  exceptions: []\n", "")
        );
        mcpguard_core::policy::parse_str(&text, "test.yaml").expect("policy")
    }

    #[test]
    fn the_label_is_lowered_where_mcpguard_does_not_enforce_or_waives_a_pss_check() {
        let warn_in_legacy = policy_with("  namespaceModes: {legacy: warn}\n");
        assert_eq!(
            enforce_labels(&warn_in_legacy, "mcp")[ENFORCE_LABEL],
            "restricted"
        );
        assert_eq!(
            enforce_labels(&warn_in_legacy, "legacy")[ENFORCE_LABEL],
            "privileged"
        );

        let pss_waiver = policy_with(
            "  exceptions:\n    - {name: browser, reason: SEC-1, match: {namespaces: [legacy]}, checks: [capabilities_restricted]}\n",
        );
        assert_eq!(
            enforce_labels(&pss_waiver, "mcp")[ENFORCE_LABEL],
            "restricted"
        );
        assert_eq!(
            enforce_labels(&pss_waiver, "legacy")[ENFORCE_LABEL],
            "privileged"
        );

        let mcp_rule_waiver = policy_with(
            "  exceptions:\n    - {name: tokens, reason: SEC-2, checks: [forbidSecretLiterals]}\n",
        );
        assert_eq!(
            enforce_labels(&mcp_rule_waiver, "legacy")[ENFORCE_LABEL],
            "restricted"
        );
    }
}
