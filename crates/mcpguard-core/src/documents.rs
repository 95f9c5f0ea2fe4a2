//! Splits CLI input into Kubernetes objects: multi-document YAML, a JSON value or a stream of
//! them, and `kind: List` wrappers, as `kubectl apply -f` accepts them.

use std::sync::Arc;

use serde_json::Value;

use crate::field_spans::{self, ObjectSpans};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {}{message}", document_prefix(*.index))]
pub struct DocumentError {
    pub source_name: String,
    /// 1-based position among the non-empty documents; 0 when the parser's own message
    /// carries the line and column instead.
    pub index: usize,
    pub message: String,
}

/// One object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedObject {
    pub source_name: String,
    pub index: usize,
    pub object: Value,
    /// Where the object's document starts: 1-based line of its first content line; 0 when
    /// unknown (a JSON stream, [`split`]).
    pub line: usize,
    /// The template a `helm template` document came from: its `# Source: chart/templates/x.yaml`
    /// comment, so that `helm template | mcpguard check -` names the file to fix.
    pub template: Option<String>,
    /// Where the object's fields are written in the file: YAML documents only (a JSON stream
    /// has no lines worth showing, [`split`] keeps none).
    pub spans: Option<Arc<ObjectSpans>>,
}

fn document_prefix(index: usize) -> String {
    if index == 0 {
        String::new()
    } else {
        format!("document {index}: ")
    }
}

pub fn split(text: &str, source_name: &str) -> Result<Vec<SourcedObject>, DocumentError> {
    let trimmed = text.trim_start();
    // JSON is parsed as a JSON stream first (fast, exact numbers); anything that starts
    // like JSON but is not (a flow-style YAML mapping, `{kind: Pod}`) is YAML, which is a
    // superset of JSON, as `kubectl apply -f` reads it.
    let looks_like_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    let values = match looks_like_json.then(|| split_json(text, source_name)) {
        Some(Ok(values)) => values,
        _ => split_yaml(text, source_name)?,
    };
    let mut objects = Vec::new();
    for (position, value) in values.into_iter().enumerate() {
        let index = position + 1;
        flatten(value, source_name, index, &mut objects)?;
    }
    Ok(objects)
}

/// Every object of `text`, and an error for each document that cannot be read, so that one
/// unreadable document does not hide the others (as `kubectl apply -f` applies the documents
/// before a broken one). YAML is split at its `---` lines first; JSON input is one stream.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    pub objects: Vec<SourcedObject>,
    pub errors: Vec<DocumentError>,
}

pub fn split_each(text: &str, source_name: &str) -> Split {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return match split(text, source_name) {
            Ok(objects) => Split {
                objects,
                errors: Vec::new(),
            },
            Err(error) => Split {
                objects: Vec::new(),
                errors: vec![error],
            },
        };
    }
    let mut result = Split::default();
    let mut index = 0;
    for (first_line, document) in yaml_documents(text) {
        let values = match split_yaml(document, source_name) {
            Ok(values) => values,
            Err(_) => {
                // Read again behind as many empty lines as precede the document, so that
                // the parser's line numbers are the file's.
                let padded = format!("{}{document}", "\n".repeat(first_line));
                let mut error =
                    split_yaml(&padded, source_name)
                        .err()
                        .unwrap_or_else(|| DocumentError {
                            source_name: source_name.to_owned(),
                            index: 0,
                            message: "invalid YAML".into(),
                        });
                index += 1;
                error.index = index;
                result.errors.push(error);
                continue;
            }
        };
        let first_new = result.objects.len();
        let is_list = matches!(
            values.as_slice(),
            [Value::Object(map)] if map.get("kind").and_then(Value::as_str) == Some("List")
        );
        for value in values {
            index += 1;
            if let Err(error) = flatten(value, source_name, index, &mut result.objects) {
                result.errors.push(error);
            }
        }
        let (line, template) = document_origin(first_line, document);
        let spans = document_field_spans(text, first_line, document, is_list);
        let objects = &mut result.objects[first_new..];
        // Spans only where each object has its own: a List nested in a List does not.
        let spans = spans.filter(|spans| spans.len() == objects.len());
        for (position, object) in objects.iter_mut().enumerate() {
            object.line = line;
            object.template.clone_from(&template);
            object.spans = spans
                .as_ref()
                .and_then(|spans| spans.get(position))
                .cloned()
                .map(Arc::new);
        }
    }
    result
}

/// Where the fields of the objects of `document` (a slice of `text` starting on its 0-based
/// line `first_line`) are written: one tree per object, the items of a List each their own.
fn document_field_spans(
    text: &str,
    first_line: usize,
    document: &str,
    is_list: bool,
) -> Option<Vec<ObjectSpans>> {
    // A `--- {kind: Pod}` document starts after the marker, mid-line.
    let offset = (document.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    let line_start = text
        .get(..offset)
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |newline| newline + 1);
    let first_column = text
        .get(line_start..offset)
        .map_or(0, |s| s.chars().count());
    let spans = field_spans::document_spans(document, first_line, first_column, yaml_options())?;
    Some(if is_list {
        field_spans::list_items(spans)
    } else {
        vec![spans]
    })
}

/// The 1-based line of a document's first content line (not blank, not a comment), and the
/// template Helm names in a `# Source: ` comment before it.
fn document_origin(first_line: usize, document: &str) -> (usize, Option<String>) {
    let mut template = None;
    for (offset, line) in document.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(source) = trimmed.strip_prefix("# Source: ") {
            // A template path is short; a hostile comment is not kept whole.
            template = Some(source.trim().chars().take(MAX_TEMPLATE_CHARS).collect());
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') && trimmed != "---" {
            return (first_line + offset + 1, template);
        }
    }
    (0, template)
}

/// Longest `# Source:` path kept (Helm's are `chart/templates/name.yaml`).
const MAX_TEMPLATE_CHARS: usize = 512;

/// The documents of a YAML stream, each with the 0-based line it starts on: split at lines
/// that are `---` (optionally followed by a space and content) or `...`, as YAML ends a
/// document. A `---` inside a block scalar is indented, so it never splits one.
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let (mut start, mut start_line) = (0, 0);
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let separator = bare == "---" || bare.starts_with("--- ") || bare == "...";
        if separator {
            documents.push((start_line, &text[start..offset]));
            // `--- {kind: Pod}`: the content after the marker belongs to the next document.
            start = if bare.starts_with("--- ") {
                offset + 4
            } else {
                offset + line.len()
            };
            start_line = if bare.starts_with("--- ") {
                number
            } else {
                number + 1
            };
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents
        .into_iter()
        .filter(|(_, document)| {
            document
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .collect()
}

fn split_json(text: &str, source_name: &str) -> Result<Vec<Value>, DocumentError> {
    let mut values = Vec::new();
    for (position, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value.map_err(|err| DocumentError {
            source_name: source_name.to_owned(),
            index: position + 1,
            message: format!("invalid JSON: {}", crate::redact::json_error(&err)),
        })?;
        match value {
            Value::Array(items) => values.extend(items),
            other => values.push(other),
        }
    }
    Ok(values)
}

/// YAML as kubectl and Helm read it: through go-yaml, with YAML 1.1's octal integers
/// (`defaultMode: 0440` is 288, as the API reference writes it). YAML 1.1's booleans (`yes`,
/// `on`, …) are serde-saphyr's default already.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options
}

fn split_yaml(text: &str, source_name: &str) -> Result<Vec<Value>, DocumentError> {
    // Empty documents (a trailing `---`, a comment-only document) are dropped by the parser.
    let parse =
        |text: &str| serde_saphyr::from_multiple_with_options::<Value>(text, yaml_options());
    parse(text).or_else(|err| {
        // go-yaml takes a comment glued to a quoted scalar (`key: "value"# note`, which
        // Helm's whitespace trimming writes); YAML does not. Read it as go-yaml does, and
        // report the original error if that does not help.
        glued_comments_spaced(text)
            .and_then(|spaced| parse(&spaced).ok())
            .ok_or_else(|| DocumentError {
                source_name: source_name.to_owned(),
                index: 0,
                message: format!("invalid YAML: {}", crate::redact::yaml_error(&err)),
            })
    })
}

/// `text` with a space put between a quoted scalar and a `#` right after it, on lines that
/// are not inside a block scalar (`|`, `>`); `None` when there is nothing to change.
fn glued_comments_spaced(text: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + 16);
    // The indentation of the line that opened a block scalar: deeper lines are its content.
    let mut block_owner_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(owner) = block_owner_indent {
            if blank || indent > owner {
                out.push_str(line);
                continue;
            }
            block_owner_indent = None;
        }
        let (spaced, glued) = space_glued_comment(line);
        changed |= glued;
        out.push_str(&spaced);
        if opens_block_scalar(&spaced) {
            block_owner_indent = Some(indent);
        }
    }
    changed.then_some(out)
}

/// One line with a space put after each closing quote that a `#` follows directly.
fn space_glued_comment(line: &str) -> (String, bool) {
    let mut out = String::with_capacity(line.len() + 2);
    let mut quote: Option<char> = None;
    let mut glued = false;
    // A quote opens a quoted scalar only where a scalar starts: at the line's start, after
    // `: `, `- ` or `? `, or after a flow indicator. Elsewhere (`it's "fine"`) it is text.
    let mut scalar_start = true;
    let mut previous: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match quote {
            None => match c {
                ' ' | '\t' => {
                    if matches!(previous, Some(':' | '-' | '?')) {
                        scalar_start = true;
                    }
                }
                '[' | '{' | ',' => scalar_start = true,
                '"' | '\'' if scalar_start => quote = Some(c),
                '#' if previous.is_none_or(|p| p == ' ' || p == '\t') => {
                    // The rest is a comment already.
                    out.extend(chars.by_ref());
                    break;
                }
                _ => scalar_start = false,
            },
            Some('"') if c == '\\' => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            // `''` is an escaped quote inside a single-quoted scalar.
            Some('\'') if c == '\'' && chars.peek() == Some(&'\'') => {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            Some(open) if c == open => {
                quote = None;
                scalar_start = false;
                if chars.peek() == Some(&'#') {
                    out.push(' ');
                    glued = true;
                }
            }
            Some(_) => {}
        }
        previous = Some(c);
    }
    (out, glued)
}

/// Whether a line ends by opening a block scalar (`key: |`, `- >-`, `key: |2+ # note`).
fn opens_block_scalar(line: &str) -> bool {
    let code = match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    };
    let last = code.trim_end().rsplit([' ', '\t']).next().unwrap_or("");
    let mut indicators = last.chars();
    matches!(indicators.next(), Some('|' | '>'))
        && indicators.all(|c| matches!(c, '+' | '-' | '1'..='9'))
}

fn flatten(
    value: Value,
    source_name: &str,
    index: usize,
    out: &mut Vec<SourcedObject>,
) -> Result<(), DocumentError> {
    let fail = |message: String| DocumentError {
        source_name: source_name.to_owned(),
        index,
        message,
    };
    match value {
        // An empty document (`---` at the end, a comment-only file) is not an object.
        Value::Null => Ok(()),
        Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            let Some(Value::Array(items)) = map.get("items") else {
                return Err(fail("kind List without an items array".into()));
            };
            for item in items.clone() {
                flatten(item, source_name, index, out)?;
            }
            Ok(())
        }
        Value::Object(ref map) => {
            if !map.get("kind").is_some_and(Value::is_string) {
                return Err(fail("object has no kind".into()));
            }
            out.push(SourcedObject {
                source_name: source_name.to_owned(),
                index,
                object: value,
                line: 0,
                template: None,
                spans: None,
            });
            Ok(())
        }
        other => Err(fail(format!(
            "expected a Kubernetes object (a mapping), got {}",
            json_type(&other)
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(objects: &[SourcedObject]) -> Vec<(&str, usize)> {
        objects
            .iter()
            .map(|o| (o.object["kind"].as_str().unwrap_or(""), o.index))
            .collect()
    }

    /// kubectl reads YAML through go-yaml's YAML 1.1 rules: `0440` is octal (the form the
    /// API reference shows for `defaultMode`), and `yes`/`on`/`off` are booleans.
    #[test]
    fn yaml_1_1_octal_integers_and_booleans_read_as_kubectl_reads_them() {
        let text = "kind: Pod\nspec:\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0440}\n  hostNetwork: off\n  enableServiceLinks: yes\n  quoted: \"0440\"\n  decimal: 440\n";
        let objects = split(text, "p.yaml").expect("reads");
        let spec = &objects[0].object["spec"];
        assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], json!(288));
        assert_eq!(spec["hostNetwork"], json!(false));
        assert_eq!(spec["enableServiceLinks"], json!(true));
        assert_eq!(spec["quoted"], json!("0440"));
        assert_eq!(spec["decimal"], json!(440));
    }

    /// Helm's whitespace trimming writes `key: "value"# note`; go-yaml takes it as a value
    /// and a comment, so kubectl and Helm install the chart.
    #[test]
    fn a_comment_glued_to_a_quoted_scalar_is_a_comment() {
        let text =
            "kind: Pod\nmetadata:\n  name: \"web\"# from values.yaml\n  namespace: 'mcp'# ns\n";
        let objects = split(text, "chart.yaml").expect("reads as go-yaml does");
        assert_eq!(
            objects[0].object["metadata"],
            json!({"name": "web", "namespace": "mcp"})
        );
    }

    #[test]
    fn glued_comment_spacing_leaves_block_scalars_and_plain_text_alone() {
        let text =
            "data:\n  script: |\n    echo \"a\"#b\n  other: \"x\"#c\nnote: it's \"fine\"#d\n";
        assert_eq!(
            glued_comments_spaced(text).as_deref(),
            Some(
                "data:\n  script: |\n    echo \"a\"#b\n  other: \"x\" #c\nnote: it's \"fine\"#d\n"
            )
        );
        assert_eq!(glued_comments_spaced("a: \"x\" # ok\nb: 'it''s'\n"), None);
        assert_eq!(
            space_glued_comment("a: \"say \\\"hi\\\"\"#c"),
            ("a: \"say \\\"hi\\\"\" #c".to_owned(), true)
        );
    }

    #[test]
    fn a_broken_document_is_reported_alone_and_the_others_are_read() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\nkind: Service\nmetadata: [unclosed\n---\n# c\n---\nkind: ConfigMap\n";
        let each = split_each(text, "m.yaml");
        assert_eq!(kinds(&each.objects), vec![("Pod", 1), ("ConfigMap", 3)]);
        assert_eq!(each.errors.len(), 1);
        let error = &each.errors[0];
        assert_eq!((error.source_name.as_str(), error.index), ("m.yaml", 2));
        assert!(
            error.message.starts_with("invalid YAML"),
            "{}",
            error.message
        );
        // The line is the file's (line 5 or 6: where the flow sequence runs out), not the
        // document's.
        assert!(
            error.message.contains("line 5") || error.message.contains("line 6"),
            "{}",
            error.message
        );
        // Whole-stream reading still refuses the stream.
        assert!(split(text, "m.yaml").is_err());
    }

    #[test]
    fn split_each_agrees_with_split_on_readable_input() {
        for text in [
            "---\nkind: Pod\n---\n# only a comment\n---\nkind: Service\n---\n",
            "kind: List\nitems:\n- kind: Pod\n- kind: Secret\n",
            "{\"kind\": \"Pod\"}\n{\"kind\": \"Service\"}",
            "--- {kind: Pod}\n--- {kind: Service}\n",
        ] {
            let without_origin: Vec<SourcedObject> = split_each(text, "s")
                .objects
                .into_iter()
                .map(|object| SourcedObject {
                    line: 0,
                    template: None,
                    spans: None,
                    ..object
                })
                .collect();
            assert_eq!(
                without_origin,
                split(text, "s").expect("readable"),
                "{text}"
            );
        }
    }

    #[test]
    fn split_each_says_where_each_object_starts_and_which_helm_template_wrote_it() {
        let text = "\n---\n# Source: mcp/templates/server.yaml\napiVersion: v1\nkind: Pod\n---\n\n# a comment\nkind: Service\n--- {kind: ConfigMap}\n";
        let split = split_each(text, "s");
        let origins: Vec<(usize, Option<&str>)> = split
            .objects
            .iter()
            .map(|o| (o.line, o.template.as_deref()))
            .collect();
        assert_eq!(
            origins,
            [
                (4, Some("mcp/templates/server.yaml")),
                (9, None),
                (10, None),
            ]
        );
    }

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let text = "---\nkind: Pod\n---\n# only a comment\n---\nkind: Service\n---\n";
        let objects = split(text, "a.yaml").unwrap();
        assert_eq!(kinds(&objects), vec![("Pod", 1), ("Service", 2)]);
    }

    #[test]
    fn json_streams_arrays_and_lists_are_flattened() {
        let text = r#"{"kind":"Pod"} {"kind":"List","items":[{"kind":"Deployment"},{"kind":"Pod"}]} [{"kind":"Service"}]"#;
        let objects = split(text, "b.json").unwrap();
        assert_eq!(
            kinds(&objects),
            vec![("Pod", 1), ("Deployment", 2), ("Pod", 2), ("Service", 3)]
        );
        assert_eq!(objects[0].object, json!({"kind": "Pod"}));
    }

    #[test]
    fn a_flow_style_yaml_mapping_is_yaml_not_broken_json() {
        let objects = split("{kind: Pod, metadata: {name: a}}\n", "flow.yaml").unwrap();
        assert_eq!(
            objects[0].object,
            json!({"kind": "Pod", "metadata": {"name": "a"}})
        );
        let err = split("{\"kind\": \"Pod\",", "broken.json").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
    }

    #[test]
    fn errors_name_the_source_and_document() {
        let err = split("kind: Pod\n---\nkind: [unclosed\n", "c.yaml").unwrap_err();
        assert_eq!(err.source_name, "c.yaml");
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
        assert!(err.message.contains("line 3"), "{}", err.message);

        let err = split("kind: Pod\n---\n- 1\n- 2\n", "d.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.yaml: document 2: expected a Kubernetes object (a mapping), got a list"
        );

        let err = split("apiVersion: v1\n", "e.yaml").unwrap_err();
        assert_eq!(err.to_string(), "e.yaml: document 1: object has no kind");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = split(&deep, "deep.json").unwrap_err();
        assert!(err.message.contains("recursion limit"), "{}", err.message);
        let deep_yaml = format!(
            "kind: Pod\nx: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = split(&deep_yaml, "deep.yaml").unwrap_err();
        assert!(
            err.message.contains("recursion limit exceeded"),
            "{}",
            err.message
        );
    }
}
