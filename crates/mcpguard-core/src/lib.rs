//! mcpguard's decisions, with no I/O: what a pod must look like under a policy, and why a
//! request is allowed, changed or denied. The binary crate (`mcpguard`) carries requests in
//! from the API server, the CLI and the cluster loops, and carries these answers back.
//!
//! - Inputs: [`review`] (the AdmissionRequest), [`object`] (its objects), [`policy`] (the
//!   MCPPolicy model and loader), [`policy_set`] (every policy in force), [`runtime_class`].
//! - Checks: [`pss`] (Pod Security Standards, per version), [`rules`] (MCP rules),
//!   [`cel_rules`] (CEL), [`exceptions`], reported as [`violation`]s.
//! - Decisions: [`admission`] (the front door: every request, routed by its resource to one
//!   validator per kind), [`engine`] (pods and workloads), [`objects`] (every other kind
//!   mcpguard admits), [`harden`] (the mutation).
//! - Outputs: [`mcpserver`] (the MCPServer render), [`audit`] (PolicyReports), [`crds`],
//!   [`rotation`] (the certificate rotation planner), [`certs`] (certificate generation).
//! - Time: instants are `jiff::Timestamp`s (as in k8s-openapi's `Time`), read and written as
//!   text by [`rfc3339`] alone.
//!
//! The front door, [`admission`], is what the webhook and the CLI call. Modules only the
//! core itself uses (the object and quantity parsers, image references, strict decoding,
//! the validators of other kinds behind the front door) are private to it.

pub mod admission;
pub mod api_defaults;
/// The API server's JSON round trip of a Pod, for tests of what a reinvocation sees.
#[cfg(any(test, feature = "test-support"))]
pub mod api_round_trip;
pub mod audit;
pub mod cel_rules;
pub mod certs;
pub mod conditions;
pub mod crds;
pub mod documents;
pub mod egress;
pub mod engine;
pub mod exceptions;
pub mod field_spans;
pub mod harden;
pub(crate) mod image_ref;
pub(crate) mod json_path;
pub mod mcpserver;
pub(crate) mod object;
pub(crate) mod objects;
pub mod policy;
pub mod policy_set;
pub mod pss;
pub(crate) mod quantity;
pub mod redact;
pub mod review;
pub mod rfc3339;
pub mod rotation;
pub mod rules;
pub mod runtime_class;
pub mod strict;
pub mod tls_keys;
pub mod violation;
pub mod workloads;
