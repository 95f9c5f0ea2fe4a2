//! Auditing: Events for denials (off the hot path), PolicyReports from a background scan,
//! and what `mcpguard audit` reads back.

pub mod events;
pub mod report;
pub mod scan;
