//! Splits CLI input into Kubernetes objects: multi-document YAML, a JSON value or a stream of
//! them, and `kind: List` wrappers, as `kubectl apply -f` accepts them.

use serde_json::Value;

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

fn split_yaml(text: &str, source_name: &str) -> Result<Vec<Value>, DocumentError> {
    // Empty documents (a trailing `---`, a comment-only document) are dropped by the parser.
    serde_saphyr::from_multiple::<Value>(text).map_err(|err| DocumentError {
        source_name: source_name.to_owned(),
        index: 0,
        message: format!("invalid YAML: {}", crate::redact::yaml_error(&err)),
    })
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
