//! `check -o yaml|sarif|junit`: the same reports in the formats CI systems read. SARIF 2.1.0
//! for code scanning (every result has a location, which GitHub requires), JUnit XML for CI
//! test tabs (one test case per object).

use serde_json::{Value, json};

use super::check_report::{FieldLocation, ObjectReport, ReportedViolation, Verdict};

/// SARIF's name for input that is not a file (`-`): an artifact URI must be a valid URI
/// reference, which `<stdin>` is not.
const STDIN_URI: &str = "stdin";
/// The rule of an entry that could not be read or decoded, and of a denial that names no
/// check (an object the webhook refuses as invalid).
const INPUT_ERROR_RULE: &str = "input-error";
const DENIED_RULE: &str = "denied";

pub fn yaml(reports: &[ObjectReport]) -> Result<String, String> {
    serde_saphyr::to_string(&reports).map_err(|e| e.to_string())
}

/// The file an entry points at: the Helm template that wrote a document of
/// `helm template | mcpguard check -`, else the file read.
fn artifact(report: &ObjectReport) -> &str {
    match (&report.template, report.source.as_str()) {
        (Some(template), _) => template,
        (None, "<stdin>") => STDIN_URI,
        (None, source) => source,
    }
}

/// Whether the report's lines are lines of the file SARIF names: a rendered stream's lines
/// are not the template's, and stdin is no file.
fn lines_are_the_artifacts(report: &ObjectReport) -> bool {
    report.template.is_none() && report.source != "<stdin>"
}

fn location(report: &ObjectReport) -> Value {
    let mut physical = json!({"artifactLocation": {"uri": artifact(report)}});
    if report.line > 0 && lines_are_the_artifacts(report) {
        physical["region"] = json!({"startLine": report.line, "startColumn": 1});
    }
    json!({"physicalLocation": physical})
}

/// Where a field is written, with its path for a message.
fn field_location(report: &ObjectReport, field: &FieldLocation) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": artifact(report)},
            "region": {"startLine": field.line, "startColumn": field.column},
        },
        "message": {"text": field.path},
    })
}

/// A violation's locations: its first field's, else the object's; and its other fields'.
fn violation_locations(
    report: &ObjectReport,
    violation: &ReportedViolation,
) -> (Value, Vec<Value>) {
    if !lines_are_the_artifacts(report) {
        return (location(report), Vec::new());
    }
    let mut fields = violation.fields.iter();
    let Some(first) = fields.next() else {
        return (location(report), Vec::new());
    };
    let related = fields
        .enumerate()
        .map(|(id, field)| {
            let mut related = field_location(report, field);
            related["id"] = json!(id);
            related
        })
        .collect();
    (field_location(report, first), related)
}

fn object_name(report: &ObjectReport) -> String {
    if report.kind.is_empty() {
        format!("document {}", report.document)
    } else {
        format!("{}/{}", report.kind.to_lowercase(), report.name)
    }
}

/// One SARIF run: a result per violation of each denied object, one per denial without a
/// check, and one per entry that could not be read. Rules are the check IDs seen.
pub fn sarif(reports: &[ObjectReport]) -> Result<String, String> {
    let mut rules: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut result = |rule: &str, text: String, (location, related): (Value, Vec<Value>)| {
        let index = match rules.iter().position(|r| r == rule) {
            Some(index) => index,
            None => {
                rules.push(rule.to_owned());
                rules.len() - 1
            }
        };
        let mut result = json!({
            "ruleId": rule,
            "ruleIndex": index,
            "level": "error",
            "message": {"text": text},
            "locations": [location],
        });
        if !related.is_empty() {
            result["relatedLocations"] = Value::Array(related);
        }
        results.push(result);
    };
    for report in reports {
        let subject = object_name(report);
        match report.verdict {
            Verdict::Error => result(
                INPUT_ERROR_RULE,
                format!("{subject}: {}", report.reason.as_deref().unwrap_or("")),
                (location(report), Vec::new()),
            ),
            Verdict::Denied if report.violations.is_empty() => result(
                DENIED_RULE,
                format!("{subject}: {}", report.reason.as_deref().unwrap_or("")),
                (location(report), Vec::new()),
            ),
            Verdict::Denied => {
                for violation in &report.violations {
                    result(
                        &violation.check,
                        format!("{subject}: {violation}"),
                        violation_locations(report, violation),
                    );
                }
            }
            Verdict::Admitted | Verdict::Skipped => {}
        }
    }
    let rules: Vec<Value> = rules
        .iter()
        .map(|rule| json!({"id": rule, "shortDescription": {"text": rule_description(rule)}}))
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mcpguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log)
        .map(|text| text + "\n")
        .map_err(|e| e.to_string())
}

fn rule_description(rule: &str) -> String {
    match rule {
        INPUT_ERROR_RULE => "the manifest cannot be read or decoded".into(),
        DENIED_RULE => "the webhook refuses the object".into(),
        check => format!("mcpguard check {check}"),
    }
}

/// JUnit XML: one test case per object (class: its file; name: the object), failed when
/// denied, in error when unreadable, skipped when mcpguard does not judge it.
pub fn junit(reports: &[ObjectReport]) -> String {
    let count = |verdict: Verdict| reports.iter().filter(|r| r.verdict == verdict).count();
    let (failures, errors, skipped) = (
        count(Verdict::Denied),
        count(Verdict::Error),
        count(Verdict::Skipped),
    );
    let totals = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\"",
        reports.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<testsuites name=\"mcpguard check\" {totals}>\n"));
    out.push_str(&format!("  <testsuite name=\"mcpguard check\" {totals}>\n"));
    for report in reports {
        let name = if report.kind.is_empty() {
            format!("document {}", report.document)
        } else {
            format!(
                "{} (namespace {}, document {})",
                object_name(report),
                report.namespace,
                report.document
            )
        };
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(artifact(report)),
            xml_escape(&name)
        ));
        let reason = xml_escape(report.reason.as_deref().unwrap_or(""));
        match report.verdict {
            Verdict::Admitted => out.push_str("/>\n"),
            Verdict::Skipped => {
                out.push_str(&format!(
                    ">\n      <skipped message=\"{reason}\"/>\n    </testcase>\n"
                ));
            }
            Verdict::Error => {
                out.push_str(&format!(
                    ">\n      <error message=\"{reason}\" type=\"input-error\"/>\n    </testcase>\n"
                ));
            }
            Verdict::Denied => {
                let details: String = report
                    .violations
                    .iter()
                    .map(|v| {
                        let mut detail = format!("{}: {v}\n", v.check);
                        for field in v.fields.iter().filter(|_| report.template.is_none()) {
                            detail.push_str(&format!(
                                "  at {}:{}:{} {}\n",
                                report.source, field.line, field.column, field.path
                            ));
                        }
                        detail
                    })
                    .collect();
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"denied\">{}</failure>\n    </testcase>\n",
                    xml_escape(&denial_summary(report)),
                    xml_escape(&details).replace("&#10;", "\n")
                ));
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The failure's message: the reason of a denial without violations, else their count and
/// where the first offending field is written (not for a Helm template: the lines are the
/// rendered stream's).
fn denial_summary(report: &ObjectReport) -> String {
    if report.violations.is_empty() {
        return report.reason.clone().unwrap_or_default();
    }
    let count = format!("{} violation(s)", report.violations.len());
    let first_field = report
        .violations
        .iter()
        .find_map(|v| v.fields.first())
        .filter(|_| report.template.is_none());
    match first_field {
        Some(field) => format!(
            "{count}, the first at {}:{}:{}",
            report.source, field.line, field.column
        ),
        None => count,
    }
}

/// Text and attribute values escaped for XML 1.0. Characters XML 1.0 cannot carry at all
/// (most C0 controls, which a hostile object name may hold) become U+FFFD, so the document
/// stays well-formed whatever the manifests say. Hand-written: five replacements do not
/// justify an XML crate.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_keeps_the_document_well_formed() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'d'\u{1}\u{7}e\nf"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{FFFD}\u{FFFD}e&#10;f"
        );
    }
}
