//! The rows `mcpguard audit` reads back: `--since` parsing, Event times, the time format
//! and the table layout. Whole reports are checked end to end in tests/audit_cli.rs.

use serde_json::json;
use time::Duration;
use time::format_description::well_known::Rfc3339;

use super::*;

#[test]
fn since_accepts_units_and_combinations() {
    assert_eq!(parse_since("24h"), Ok(Duration::hours(24)));
    assert_eq!(parse_since("7d"), Ok(Duration::days(7)));
    assert_eq!(parse_since("30m"), Ok(Duration::minutes(30)));
    assert_eq!(parse_since("90s"), Ok(Duration::seconds(90)));
    assert_eq!(parse_since("2w"), Ok(Duration::weeks(2)));
    assert_eq!(parse_since("1h30m"), Ok(Duration::minutes(90)));
    assert_eq!(parse_since(" 1d "), Ok(Duration::days(1)));
}

#[test]
fn since_rejects_bad_values_with_a_clear_error() {
    let syntax = |text: &str| {
        format!(
            "invalid duration {text:?}: expected a number and a unit (s, m, h, d or w), such as 30m, 24h or 7d"
        )
    };
    for bad in [
        "", "24", "h", "1.5h", "-1h", "24 h", "24H", "1y", "abc", "1h30",
    ] {
        assert_eq!(parse_since(bad), Err(syntax(bad)), "{bad:?}");
    }
    assert_eq!(
        parse_since("0h"),
        Err("invalid duration \"0h\": must be greater than zero".to_owned())
    );
    assert_eq!(
        parse_since("99999999999999999999d"),
        Err("invalid duration \"99999999999999999999d\": too large".to_owned())
    );
    assert_eq!(
        parse_since("36600000d"),
        Err("invalid duration \"36600000d\": too large".to_owned())
    );
}

#[test]
fn event_time_prefers_series_then_event_time_then_creation() {
    let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).expect("time");
    let event = json!({
        "metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"},
        "eventTime": "2025-06-02T00:00:00.000000Z",
        "series": {"count": 3, "lastObservedTime": "2025-06-03T00:00:00.500000Z"},
    });
    assert_eq!(event_time(&event), Some(at("2025-06-03T00:00:00.5Z")));
    let event = json!({
        "metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"},
        "eventTime": "2025-06-02T00:00:00.000000Z",
    });
    assert_eq!(event_time(&event), Some(at("2025-06-02T00:00:00Z")));
    let event =
        json!({"metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"}, "eventTime": null});
    assert_eq!(event_time(&event), Some(at("2025-06-01T00:00:00Z")));
    assert_eq!(event_time(&json!({"metadata": {}})), None);
}

#[test]
fn format_time_is_utc_to_the_second() {
    let at = OffsetDateTime::parse("2025-06-15T17:06:40.987654+02:00", &Rfc3339).expect("time");
    assert_eq!(format_time(at), "2025-06-15T15:06:40Z");
}

#[test]
fn table_aligns_columns_without_trailing_blanks() {
    let out = table(
        &["A", "LONGER", "C"],
        &[
            vec!["xxxx".into(), "y".into(), "".into()],
            vec!["x".into(), "".into(), "z".into()],
        ],
    );
    assert_eq!(out, "A      LONGER   C\nxxxx   y\nx               z\n");
}
