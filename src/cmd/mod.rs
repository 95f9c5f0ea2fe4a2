//! One module per subcommand: each wires I/O around the library's pure parts.

pub mod audit;
pub mod bundle;
pub mod certs;
pub mod check;
pub mod check_changes;
pub mod copy_self;
pub mod render;
pub mod serve;

use std::path::Path;

use crate::policy::{self, Policy, PolicyError};

/// The policy from `--policy`, or the embedded default.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, PolicyError> {
    match path {
        Some(path) => policy::load_file(path),
        None => Policy::embedded_default(),
    }
}
