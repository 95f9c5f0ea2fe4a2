//! MCPServer: one object in, a hardened Deployment, Service, Secret wiring and
//! NetworkPolicy out. `crd` holds the types, `render` the pure function from an MCPServer
//! to the objects it owns, `controller` the kube-runtime loop that keeps them as declared.

pub mod controller;
pub mod crd;
pub mod render;
