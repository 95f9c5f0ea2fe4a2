//! The audit formats: the PolicyReport a background scan writes for each object it judges.
//! The scan itself and the Event publisher are I/O, in the binary's `cluster/`.

pub mod report;
