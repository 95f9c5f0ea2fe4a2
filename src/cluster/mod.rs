//! The loops that talk to the API server. Each takes only the state it needs (a policy
//! store, metrics, readiness), never the webhook's.

pub mod audit_scan;
pub mod cluster_version;
pub mod controller;
pub mod events;
pub mod leader;
pub mod namespace_labels;
pub mod policy_reload;
pub mod policy_watch;
pub mod runtime_classes;
pub mod selfcert;
