//! `mcpguard bundle`: the install as plain YAML streams, for clusters where kustomize is not
//! used. The streams are `dist/*.yaml`, the committed `kubectl kustomize` renders of
//! `webhook-manifests/`, embedded at build time; `tests/manifests.rs` keeps each equal to a
//! fresh render, so the binary never prints an install the kustomizations would not.

use crate::cmd::args::BundlePart;

const CRDS: &str = include_str!("../../dist/crds.yaml");
const MCPGUARD: &str = include_str!("../../dist/mcpguard.yaml");
const MCP_NAMESPACE: &str = include_str!("../../dist/mcp-namespace.yaml");

/// The YAML stream of one install part.
pub fn stream(part: BundlePart) -> &'static str {
    match part {
        BundlePart::Crds => CRDS,
        BundlePart::Mcpguard => MCPGUARD,
        BundlePart::McpNamespace => MCP_NAMESPACE,
    }
}
