//! mcpguard's edges. Every decision is `mcpguard_core`'s; this crate carries requests to it
//! and answers away from it:
//!
//! - [`webhook`]: the HTTPS server kube-apiserver calls (routes, limits, TLS).
//! - [`cluster`]: the loops that talk to the API server (policy watch and reload,
//!   RuntimeClass watch, namespace labels, the MCPServer controller, self-managed
//!   certificates, Events and the PolicyReport scan), each run by the leader where it must.
//! - [`cmd`]: one module per subcommand, and the arguments ([`cmd::args`]).
//! - [`logging`]: the log line formats.
//! - [`metrics`], [`policy_store`] and [`readiness`]: the state the webhook and the loops
//!   share.

pub mod bridge;
pub mod cluster;
pub mod cmd;
pub mod connections;
pub mod logging;
pub mod metrics;
pub mod policy_store;
pub mod readiness;
pub mod webhook;
