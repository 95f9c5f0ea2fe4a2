//! The rows `mcpguard audit` reads back: `--since` parsing, Event times, the time format
//! and the table layout. Whole reports are checked end to end in tests/audit_cli.rs.

use serde_json::json;

use super::*;

#[test]
fn since_accepts_units_and_combinations() {
    assert_eq!(parse_since("24h"), Ok(SignedDuration::from_hours(24)));
    assert_eq!(parse_since("7d"), Ok(SignedDuration::from_hours(7 * 24)));
    assert_eq!(parse_since("30m"), Ok(SignedDuration::from_mins(30)));
    assert_eq!(parse_since("90s"), Ok(SignedDuration::from_secs(90)));
    assert_eq!(parse_since("2w"), Ok(SignedDuration::from_hours(2 * 168)));
    assert_eq!(parse_since("1h30m"), Ok(SignedDuration::from_mins(90)));
    assert_eq!(parse_since(" 1d "), Ok(SignedDuration::from_hours(24)));
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
    let at = |s: &str| crate::rfc3339::parse(s).expect("time");
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
    let at = crate::rfc3339::parse("2025-06-15T17:06:40.987654+02:00").expect("time");
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

/// One failing result of `rule` with `message`, about `resources` when given.
fn failing(rule: &str, message: &str, resources: Option<serde_json::Value>) -> serde_json::Value {
    let mut result = json!({"policy": "mcp-restricted", "rule": rule, "result": "fail",
                            "message": message, "severity": "high"});
    if let Some(resources) = resources {
        result["resources"] = resources;
    }
    result
}

#[test]
fn violations_are_read_from_both_report_layouts() {
    // mcpguard's own layout: one report per object, named by `scope`.
    let scoped = json!({
        "metadata": {"name": "mcpguard-1", "namespace": "mcp"},
        "scope": {"apiVersion": "v1", "kind": "Pod", "name": "legacy", "namespace": "mcp"},
        "summary": {"pass": 1, "fail": 1},
        "results": [
            failing("runAsNonRoot", "runAsNonRoot != true", None),
            {"policy": "mcp-restricted", "rule": "privileged", "result": "pass"},
        ],
    });
    // The per-namespace layout: no scope, each result names its objects.
    let per_namespace = json!({
        "metadata": {"name": "polr-ns-tools", "namespace": "tools"},
        "summary": {"pass": 0, "fail": 3},
        "results": [
            failing("privileged", "privileged", Some(json!([
                {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "tools"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            ]))),
            failing("hostPorts", "hostPort 80", Some(json!([{"kind": "Pod", "name": "web-2"}]))),
            // Neither scope nor resources: nothing names the object.
            failing("sysctls", "forbidden sysctls", None),
        ],
    });
    let (violations, pods) = violations_from(&[per_namespace, scoped]);
    let rows: Vec<(String, String, String)> = violations
        .into_iter()
        .map(|v| (v.namespace, v.object, v.check))
        .collect();
    let row =
        |ns: &str, object: &str, check: &str| (ns.to_owned(), object.to_owned(), check.to_owned());
    assert_eq!(
        rows,
        [
            row("mcp", "Pod/legacy", "runAsNonRoot"),
            row("tools", "?/?", "sysctls"),
            row("tools", "Deployment/web", "privileged"),
            row("tools", "Pod/web-1", "privileged"),
            row("tools", "Pod/web-2", "hostPorts"),
        ]
    );
    let pod = |namespace: &str, name: &str| PodRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    assert_eq!(
        pods,
        [
            pod("mcp", "legacy"),
            pod("tools", "web-1"),
            pod("tools", "web-2")
        ]
    );
}
