//! Log lines: text for a person at a terminal, flat JSON for log pipelines.
//!
//! tracing-subscriber's JSON formatter nests an event's message and fields under
//! `fields.message`, `fields.uid`, …, so every pipeline (Loki, Elasticsearch, Cloud Logging)
//! needed a rewrite rule before it could filter on them. [`FlatJson`] writes one object per
//! line with `ts`, `level` and `msg` first and every field at the top level after them, the
//! shape those tools (and klog's JSON, zap, slog) read as it is:
//!
//! ```text
//! {"ts":"2026-12-04T10:00:00.5Z","level":"info","msg":"admission review","uid":"…",…,"target":"mcpguard::webhook::routes"}
//! ```
//!
//! mcpguard opens no spans, so span fields are not written.

use std::fmt::{self, Write as _};

use jiff::Timestamp;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The keys [`FlatJson`] writes itself. A field of the same name is written with a `_`
/// appended (`msg_`), so no line holds one key twice (JSON readers disagree on which wins).
const RESERVED: &[&str] = &["ts", "level", "msg", "target"];

/// One JSON object per event, its fields at the top level.
#[derive(Clone, Copy)]
pub struct FlatJson {
    clock: fn() -> Timestamp,
}

impl Default for FlatJson {
    fn default() -> Self {
        FlatJson {
            clock: Timestamp::now,
        }
    }
}

impl FlatJson {
    /// Lines stamped by `clock` instead of the system clock (tests compare exact lines).
    pub fn with_clock(clock: fn() -> Timestamp) -> FlatJson {
        FlatJson { clock }
    }

    /// The line for `event`, without its newline.
    pub fn line(&self, event: &Event<'_>) -> String {
        let metadata = event.metadata();
        let mut fields = FlatFields::default();
        event.record(&mut fields);
        let mut out = String::with_capacity(128 + fields.rest.len() + fields.message.len());
        out.push_str("{\"ts\":");
        push_json_str(&mut out, &timestamp((self.clock)()));
        out.push_str(",\"level\":");
        push_json_str(&mut out, level_name(*metadata.level()));
        out.push_str(",\"msg\":");
        push_json_str(&mut out, &fields.message);
        out.push_str(&fields.rest);
        out.push_str(",\"target\":");
        // Events bridged from the `log` crate carry their real target as a field.
        push_json_str(
            &mut out,
            fields.log_target.as_deref().unwrap_or(metadata.target()),
        );
        out.push('}');
        out
    }
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(&self.line(event))?;
        writer.write_char('\n')
    }
}

/// RFC 3339 in UTC, to the nanosecond the clock gives (trailing zeros dropped).
fn timestamp(now: Timestamp) -> String {
    mcpguard_core::rfc3339::format(now)
        // Only a year before 0 fails; the Unix seconds still order the line.
        .unwrap_or_else(|| {
            mcpguard_core::rfc3339::floor_second(now)
                .as_second()
                .to_string()
        })
}

/// Lower case, as klog, zap and slog write it.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

#[derive(Default)]
struct FlatFields {
    message: String,
    /// `,"key":value` for every field but the message, in the order they were recorded.
    rest: String,
    log_target: Option<String>,
}

impl FlatFields {
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        // The `log` crate bridge's source location fields say nothing the target does not.
        if name.starts_with("log.") {
            return false;
        }
        self.rest.push(',');
        if RESERVED.contains(&name) {
            push_json_str(&mut self.rest, &format!("{name}_"));
        } else {
            push_json_str(&mut self.rest, name);
        }
        self.rest.push(':');
        true
    }
}

impl Visit for FlatFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "log.target" => self.log_target = Some(value.to_owned()),
            _ => {
                if self.key(field) {
                    push_json_str(&mut self.rest, value);
                }
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.rest.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            let _ = write!(self.rest, "{value}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            let _ = write!(self.rest, "{value}");
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            if value.is_finite() {
                let _ = write!(self.rest, "{value}");
            } else {
                // JSON has no NaN or infinity.
                push_json_str(&mut self.rest, &value.to_string());
            }
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and the message arrive here, already formatted.
        self.record_str(field, &format!("{value:?}"));
    }
}

fn push_json_str(out: &mut String, value: &str) {
    // Serialising a str into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(value) {
        out.push_str(&quoted);
    }
}

/// Whether text logs are coloured: only on a terminal (colour codes in a file or a pipe are
/// noise every reader must strip), and never when `NO_COLOR` is set to anything
/// (no-color.org).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests;
