//! What mcpguard records about its decisions, and reads back:
//!
//! - [`note`]: the note of its Events (the format and its reader, together);
//! - [`report`]: the PolicyReport a background scan writes for each object it judges;
//! - [`findings`]: those Events and PolicyReports read back as rows, filtered, sorted and
//!   rendered (`mcpguard audit`);
//! - [`restart`]: the `--apply-policy` plan (which Deployments to restart).
//!
//! The scan, the Event publisher and the command's cluster reads are I/O, in the binary.

pub mod findings;
pub mod note;
pub mod report;
pub mod restart;
