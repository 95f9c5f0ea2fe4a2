//! What `mcpguard audit` reads back from a cluster, as rows: mcpguard's violation Events
//! (recent denials, and admissions with violations in warn and audit mode) and the failing
//! results of its PolicyReports (what fails today's policy). Pure: the command lists the
//! objects and passes them in, with `now`; this module filters, sorts and renders them.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use super::note::{REASON_VIOLATION, REPORTING_CONTROLLER, ViolationNote};

// --- --since ---------------------------------------------------------------------------

/// `--since`: one or more `<number><unit>` groups, units `s`, `m`, `h`, `d`, `w`
/// (`30m`, `24h`, `7d`, `1h30m`).
pub fn parse_since(text: &str) -> Result<SignedDuration, String> {
    let syntax = || {
        format!(
            "invalid duration {text:?}: expected a number and a unit (s, m, h, d or w), such as 30m, 24h or 7d"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(syntax());
    }
    let mut total: i64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(syntax)?;
        if digits == 0 {
            return Err(syntax());
        }
        let too_large = || format!("invalid duration {text:?}: too large");
        let number: i64 = rest[..digits].parse().map_err(|_| too_large())?;
        let unit = rest[digits..].chars().next().ok_or_else(syntax)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(syntax()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= MAX_SINCE_SECONDS)
            .ok_or_else(too_large)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(SignedDuration::from_secs(total))
}

/// 100 years: far beyond any Event's lifetime, and far from overflowing a date.
const MAX_SINCE_SECONDS: i64 = 100 * 365 * 86_400;

// --- rows --------------------------------------------------------------------------------

/// One violation Event: a denial (or, in warn/audit mode, an admission with violations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// When it last happened, RFC 3339 in UTC, to the second.
    pub time: String,
    pub namespace: String,
    /// `Kind/name` of the Event's `regarding` object.
    pub object: String,
    /// `Denied` or `Admitted`.
    pub action: String,
    /// `None` when the note does not have the expected shape.
    pub user: Option<String>,
    pub checks: Vec<String>,
    /// How many times (the Event's series count, else 1).
    pub count: u64,
}

/// One failing check of one object, from its PolicyReport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CurrentViolation {
    pub namespace: String,
    /// `Kind/name` of the report's scope.
    pub object: String,
    pub check: String,
    pub message: String,
}

/// A running pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditData {
    /// Denials are those at or after this instant.
    pub since: Timestamp,
    pub denials: Vec<Denial>,
    pub violations: Vec<CurrentViolation>,
    /// Pods whose PolicyReport has failing checks (what `--apply-policy` rolls).
    pub drifting_pods: Vec<PodRef>,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn parse_time(value: &Value, pointer: &str) -> Option<Timestamp> {
    crate::rfc3339::parse(text(value, pointer)?)
}

/// RFC 3339 in UTC, to the second (what `kubectl` prints).
pub fn format_time(at: Timestamp) -> String {
    crate::rfc3339::format_seconds(at).unwrap_or_default()
}

/// When an Event last happened: its series' last observation, else its eventTime, else its
/// creation.
pub fn event_time(event: &Value) -> Option<Timestamp> {
    parse_time(event, "/series/lastObservedTime")
        .or_else(|| parse_time(event, "/eventTime"))
        .or_else(|| parse_time(event, "/metadata/creationTimestamp"))
}

/// mcpguard's violation Events (`events.k8s.io/v1` objects) at or after `since`, oldest
/// first. Events of other controllers and reasons are left out.
pub fn denials_from(events: &[Value], since: Timestamp) -> Vec<Denial> {
    let mut found: Vec<(Timestamp, Denial)> = events
        .iter()
        .filter(|e| text(e, "/reportingController") == Some(REPORTING_CONTROLLER))
        .filter(|e| text(e, "/reason") == Some(REASON_VIOLATION))
        .filter_map(|event| {
            let at = event_time(event).filter(|at| *at >= since)?;
            let note = text(event, "/note").unwrap_or_default();
            let (user, checks) = match ViolationNote::parse(note) {
                Some(parsed) => (Some(parsed.user), parsed.checks),
                None => (None, Vec::new()),
            };
            let namespace = text(event, "/metadata/namespace")
                .or_else(|| text(event, "/regarding/namespace"))
                .unwrap_or_default();
            let object = format!(
                "{}/{}",
                text(event, "/regarding/kind").unwrap_or("?"),
                text(event, "/regarding/name").unwrap_or("?")
            );
            let count = event
                .pointer("/series/count")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            Some((
                at,
                Denial {
                    time: format_time(at),
                    namespace: namespace.to_owned(),
                    object,
                    action: text(event, "/action").unwrap_or_default().to_owned(),
                    user,
                    checks,
                    count,
                },
            ))
        })
        .collect();
    found.sort_by(|(a_at, a), (b_at, b)| {
        (a_at, &a.namespace, &a.object).cmp(&(b_at, &b.namespace, &b.object))
    });
    found.into_iter().map(|(_, denial)| denial).collect()
}

/// The failing results of mcpguard's PolicyReports (by namespace and object, each report's
/// results in its order), and the pods whose reports have failures.
///
/// Both layouts of the PolicyReport API are read: one report per object, named by the
/// report's `scope` (how mcpguard and Kyverno write them today), and a report of many
/// objects whose results each name theirs in `results[].resources` (the layout of the
/// per-namespace reports Kyverno wrote before 1.10, and of other tools). A result with
/// resources is one violation per resource; one without is the scope's.
pub fn violations_from(reports: &[Value]) -> (Vec<CurrentViolation>, Vec<PodRef>) {
    let mut violations = Vec::new();
    let mut pods = BTreeSet::new();
    for report in reports {
        let report_namespace = text(report, "/scope/namespace")
            .or_else(|| text(report, "/metadata/namespace"))
            .unwrap_or_default();
        let scope = Subject {
            namespace: report_namespace,
            kind: text(report, "/scope/kind").unwrap_or("?"),
            name: text(report, "/scope/name").unwrap_or("?"),
        };
        let results = report.get("results").and_then(Value::as_array);
        for result in results.into_iter().flatten() {
            if result.get("result").and_then(Value::as_str) != Some("fail") {
                continue;
            }
            let resources = result.get("resources").and_then(Value::as_array);
            let subjects: Vec<Subject<'_>> = match resources {
                Some(resources) if !resources.is_empty() => resources
                    .iter()
                    .map(|resource| Subject {
                        namespace: text(resource, "/namespace").unwrap_or(report_namespace),
                        kind: text(resource, "/kind").unwrap_or("?"),
                        name: text(resource, "/name").unwrap_or("?"),
                    })
                    .collect(),
                _ => vec![scope],
            };
            for subject in subjects {
                violations.push(CurrentViolation {
                    namespace: subject.namespace.to_owned(),
                    object: format!("{}/{}", subject.kind, subject.name),
                    check: text(result, "/rule").unwrap_or_default().to_owned(),
                    message: text(result, "/message").unwrap_or_default().to_owned(),
                });
                subject.add_pod_to(&mut pods);
            }
        }
        // A report whose summary counts failures it does not list still marks its pod.
        let failing = report
            .pointer("/summary/fail")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if failing > 0 && report.get("scope").is_some() {
            scope.add_pod_to(&mut pods);
        }
    }
    violations.sort_by(|a, b| (&a.namespace, &a.object).cmp(&(&b.namespace, &b.object)));
    (violations, pods.into_iter().collect())
}

/// The object one result is about.
#[derive(Clone, Copy)]
struct Subject<'a> {
    namespace: &'a str,
    kind: &'a str,
    name: &'a str,
}

impl Subject<'_> {
    fn add_pod_to(&self, pods: &mut BTreeSet<PodRef>) {
        if self.kind == "Pod" && self.name != "?" {
            pods.insert(PodRef {
                namespace: self.namespace.to_owned(),
                name: self.name.to_owned(),
            });
        }
    }
}

// --- rendering ---------------------------------------------------------------------------

/// Columns separated by three spaces, as `kubectl get` aligns them; no trailing blanks.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 3));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[derive(Serialize)]
struct Document<'a> {
    denials: &'a [Denial],
    violations: &'a [CurrentViolation],
}

impl AuditData {
    fn document(&self) -> Document<'_> {
        Document {
            denials: &self.denials,
            violations: &self.violations,
        }
    }

    /// The report as pretty JSON; ends with a newline.
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and lists: serialising cannot fail.
        let mut out = serde_json::to_string_pretty(&self.document()).unwrap_or_default();
        out.push('\n');
        out
    }

    /// The report as YAML; ends with a newline.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.document()).unwrap_or_default()
    }

    /// The report as aligned tables, one for denials and one for current violations.
    pub fn to_table(&self) -> String {
        render_table(self)
    }
}

fn render_table(data: &AuditData) -> String {
    let since = format_time(data.since);
    let mut out = String::new();
    if data.denials.is_empty() {
        out.push_str(&format!("No denials since {since}.\n"));
    } else {
        out.push_str(&format!("Denials since {since}:\n"));
        let rows: Vec<Vec<String>> = data
            .denials
            .iter()
            .map(|d| {
                vec![
                    d.time.clone(),
                    d.namespace.clone(),
                    d.object.clone(),
                    d.action.clone(),
                    d.user.clone().unwrap_or_else(|| "<unknown>".to_owned()),
                    d.checks.join(", "),
                    d.count.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "TIME",
                "NAMESPACE",
                "OBJECT",
                "ACTION",
                "USER",
                "CHECKS",
                "COUNT",
            ],
            &rows,
        ));
    }
    out.push('\n');
    if data.violations.is_empty() {
        out.push_str("No current violations.\n");
    } else {
        out.push_str("Current violations (PolicyReports):\n");
        let rows: Vec<Vec<String>> = data
            .violations
            .iter()
            .map(|v| {
                vec![
                    v.namespace.clone(),
                    v.object.clone(),
                    v.check.clone(),
                    v.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["NAMESPACE", "OBJECT", "CHECK", "MESSAGE"], &rows));
    }
    out
}

#[cfg(test)]
mod tests;
