use std::io;
use std::sync::{Arc, Mutex};

use super::*;

/// 2026-12-04T10:00:00.5Z.
fn fixed_clock() -> Timestamp {
    Timestamp::from_nanosecond(1_796_378_400_500_000_000).expect("in range")
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lines_of(emit: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(FlatJson::with_clock(fixed_clock))
        .with_writer(move || writer.clone())
        .with_max_level(Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, emit);
    let bytes = captured.0.lock().expect("not poisoned").clone();
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn json_lines_are_flat_with_ts_level_msg_first() {
    let text = lines_of(|| {
        let listen = "127.0.0.1:8443";
        tracing::info!(
            listen,
            replicas = 2_u64,
            ready = true,
            "mcpguard is serving"
        );
        tracing::warn!(error = %"bad \"quote\"\n", status = 400_u16, "request refused");
    });
    assert_eq!(
        text,
        concat!(
            r#"{"ts":"2026-12-04T10:00:00.5Z","level":"info","msg":"mcpguard is serving","listen":"127.0.0.1:8443","replicas":2,"ready":true,"target":"mcpguard::logging::tests"}"#,
            "\n",
            r#"{"ts":"2026-12-04T10:00:00.5Z","level":"warn","msg":"request refused","error":"bad \"quote\"\n","status":400,"target":"mcpguard::logging::tests"}"#,
            "\n",
        )
    );
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("each line is one JSON object");
    }
}

#[test]
fn a_field_named_like_a_reserved_key_does_not_replace_it() {
    let text = lines_of(|| {
        tracing::error!(
            msg = "theirs",
            level = 3_i64,
            ts = -1.5_f64,
            nan = f64::NAN,
            "ours"
        );
    });
    assert_eq!(
        text,
        concat!(
            r#"{"ts":"2026-12-04T10:00:00.5Z","level":"error","msg":"ours","msg_":"theirs","level_":3,"ts_":-1.5,"nan":"NaN","target":"mcpguard::logging::tests"}"#,
            "\n"
        )
    );
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    use std::ffi::OsStr;
    assert!(colour(true, None));
    assert!(colour(true, Some(OsStr::new(""))));
    assert!(!colour(true, Some(OsStr::new("1"))));
    assert!(!colour(false, None));
    assert!(!colour(false, Some(OsStr::new(""))));
}
