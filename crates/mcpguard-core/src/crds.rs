//! The CustomResourceDefinitions mcpguard ships.

use kube_core::CustomResourceExt as _;

use crate::mcpserver::crd::MCPServer;

/// mcpguard's CRDs (MCPServer, then MCPPolicy) as one multi-document YAML stream, as
/// `kubectl apply` takes it.
pub fn crd_yaml() -> Result<String, String> {
    let server = serde_saphyr::to_string(&MCPServer::crd()).map_err(|e| e.to_string())?;
    let policy =
        serde_saphyr::to_string(&crate::policy::policy_crd()).map_err(|e| e.to_string())?;
    Ok(format!("{server}---\n{policy}"))
}
