//! The cluster's Kubernetes version, from the API server's `/version`: a cluster's Pod
//! Security admission knows no check newer than its own release, so the webhook judges
//! `latest` (and any newer pinned version) as that release. Without it, mcpguard's newest
//! checks would admit, on a 1.34 cluster, a sysctl that the cluster's kubelets refuse.

use std::time::Duration;

use mcpguard_core::pss::parse_kubernetes_minor;

/// Startup waits this long for `/version` before it goes on with its newest checks.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The API server's minor version: `minor` (`"34"`, `"34+"` on some managed clusters), or,
/// where a distribution leaves it empty, the minor of `gitVersion` (`v1.34.2-gke.100`).
pub async fn fetch_minor(client: &kube::Client) -> Result<u32, String> {
    let info = tokio::time::timeout(VERSION_TIMEOUT, client.apiserver_version())
        .await
        .map_err(|_| {
            format!(
                "GET /version: no answer within {} s",
                VERSION_TIMEOUT.as_secs()
            )
        })?
        .map_err(|err| format!("GET /version: {err}"))?;
    if info.major.trim_end_matches('+') != "1" && !info.major.is_empty() {
        return Err(format!(
            "GET /version: major version {:?} is not 1",
            info.major
        ));
    }
    parse_kubernetes_minor(&info.minor)
        .or_else(|_| parse_kubernetes_minor(&info.git_version))
        .map_err(|err| format!("GET /version: {err}"))
}
