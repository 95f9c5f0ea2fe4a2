//! mcpguard: an admission webhook and policy enforcer that hardens MCP servers on
//! Kubernetes. One engine (`engine`) decides; the webhook, the CLI and later the audit and
//! the reconciler only carry requests to it and answers away from it.

pub mod admission;
pub mod admission_objects;
pub mod api_defaults;
pub mod audit;
pub mod cel_rules;
pub mod certs;
pub mod cli;
pub mod cmd;
pub mod documents;
pub mod engine;
pub mod exceptions;
pub mod harden;
pub mod image_ref;
pub mod json_path;
pub mod kube_cache;
pub mod metrics;
pub mod namespace_labels;
pub mod policy;
pub mod policy_reload;
pub mod policy_set;
pub mod policy_store;
pub mod policy_watch;
pub mod pss;
pub mod quantity;
pub mod reconcile;
pub mod redact;
pub mod rotation;
pub mod rules;
pub mod runtime_class;
pub mod selfcert;
pub mod strict;
pub mod violation;
pub mod workloads;
