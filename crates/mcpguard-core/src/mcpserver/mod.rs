//! MCPServer: the custom resource (`crd`) and the pure function from one MCPServer to the
//! hardened Deployment, Service and NetworkPolicy it owns (`render`). The controller that
//! applies them is the binary's `cluster::controller`.

pub mod access;
pub mod crd;
pub mod render;
