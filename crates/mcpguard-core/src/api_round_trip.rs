//! Test support: a Pod as the API server hands it back after its Go `encoding/json` round
//! trip. Decoding drops unknown fields; encoding drops, per field, what `omitempty` drops
//! (a zero scalar, an empty slice or map, a nil pointer: never a pointer to a zero value, so
//! `allowPrivilegeEscalation: false` stays) and writes what has no `omitempty` even when it
//! was absent (`name: ""`, a struct such as `resources: {}`). Which field is which is read
//! from the Kubernetes types themselves: `testdata/k8s-types/pod-fields.json`, transcribed
//! from the json tags of `k8s.io/api/core/v1/types.go` (commit named in the table). A blanket
//! rule ("drop every empty string") would be wrong both ways, and k8s-openapi keeps
//! `Some("")` where Go would drop it.
//!
//! Used by the idempotence property: mutate, round trip, mutate again: the second patch is
//! empty (a reinvocation, `reinvocationPolicy: IfNeeded`, must change nothing).

use std::sync::OnceLock;

use serde_json::{Map, Value};

const TABLE: &str = include_str!("../testdata/k8s-types/pod-fields.json");

fn table() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(TABLE).unwrap_or(Value::Null))
}

/// `pod` (a `v1` Pod) as the API server would encode it after decoding it.
pub fn pod(pod: &Value) -> Value {
    let mut out = round_trip_struct(pod, "Pod", "");
    // TypeMeta, inline in every object: `kind` and `apiVersion`, both `omitempty` strings.
    if let (Value::Object(out), Value::Object(input)) = (&mut out, pod) {
        for key in ["apiVersion", "kind"] {
            if let Some(Value::String(value)) = input.get(key).filter(|v| !is_zero_scalar(v)) {
                out.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
    }
    out
}

/// The struct named `name` (a table key), in `package` (`"metav1."` or `""`) for resolving
/// unqualified names.
fn round_trip_struct(input: &Value, name: &str, package: &str) -> Value {
    let Some(entry) = resolve(name, package) else {
        return input.clone();
    };
    let package = if entry.0.starts_with("metav1.") {
        "metav1."
    } else {
        ""
    };
    let empty = Map::new();
    let fields_in = input.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (json_name, field) in all_fields(entry.1, package) {
        let raw = fields_in.get(&json_name).filter(|v| !v.is_null());
        let go = field.get("go").and_then(Value::as_str).unwrap_or("");
        let omitempty = field.get("omitempty").and_then(Value::as_bool) == Some(true);
        let omitzero = field.get("omitzero").and_then(Value::as_bool) == Some(true);
        if field.get("opaque").and_then(Value::as_bool) == Some(true) {
            if let Some(raw) = raw {
                out.insert(json_name, raw.clone());
            }
            continue;
        }
        if let Some(value) = encode_field(raw, go, omitempty, omitzero, package) {
            out.insert(json_name, value);
        }
    }
    Value::Object(out)
}

/// Every field of a struct entry, with its inline structs' promoted into it.
fn all_fields(entry: &Value, package: &str) -> Vec<(String, Value)> {
    let mut fields: Vec<(String, Value)> = entry
        .get("fields")
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for inline in entry
        .get("inline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some((_, inlined)) = resolve(inline, package) {
            fields.extend(all_fields(inlined, package));
        }
    }
    fields
}

fn resolve(name: &str, package: &str) -> Option<(String, &'static Value)> {
    let table = table();
    [format!("{package}{name}"), name.to_owned()]
        .into_iter()
        .find_map(|key| table.get(&key).map(|entry| (key, entry)))
}

/// One field's encoding: `None` when `encoding/json` leaves it out.
fn encode_field(
    raw: Option<&Value>,
    go: &str,
    omitempty: bool,
    omitzero: bool,
    package: &str,
) -> Option<Value> {
    if let Some(inner) = go.strip_prefix('*') {
        // A pointer: nil (absent) is omitted or `null`; a set pointer is written whatever
        // it points at.
        return match raw {
            None if omitempty || omitzero => None,
            None => Some(Value::Null),
            Some(raw) => Some(encode_value(raw, inner, package)),
        };
    }
    if let Some(element) = go.strip_prefix("[]") {
        return match raw {
            None if omitempty || omitzero => None,
            None => Some(Value::Null),
            Some(Value::Array(items)) if items.is_empty() && omitempty => None,
            Some(Value::Array(items)) => Some(Value::Array(
                items
                    .iter()
                    .map(|item| encode_value(item, element, package))
                    .collect(),
            )),
            Some(other) => Some(other.clone()),
        };
    }
    if let Some(value_type) = map_value_type(go) {
        return match raw {
            None if omitempty || omitzero => None,
            None => Some(Value::Null),
            Some(Value::Object(map)) if map.is_empty() && omitempty => None,
            Some(Value::Object(map)) => Some(Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), encode_value(v, value_type, package)))
                    .collect(),
            )),
            Some(other) => Some(other.clone()),
        };
    }
    match scalar_zero(go) {
        Some(zero) => {
            let value = raw.cloned().unwrap_or(zero);
            let zero = is_zero_scalar(&value);
            (!(zero && (omitempty || omitzero))).then_some(value)
        }
        // A struct (or an opaque struct-like type): `omitempty` never drops a struct;
        // `omitzero` drops a zero one.
        None => match raw {
            None if omitzero => None,
            None if is_time(go) => Some(Value::Null),
            None => Some(encode_value(&Value::Object(Map::new()), go, package)),
            Some(raw) => Some(encode_value(raw, go, package)),
        },
    }
}

/// A value of Go type `go` (no pointer prefix).
fn encode_value(raw: &Value, go: &str, package: &str) -> Value {
    if let Some(element) = go.strip_prefix("[]") {
        return match raw {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| encode_value(item, element, package))
                    .collect(),
            ),
            other => other.clone(),
        };
    }
    if let Some(value_type) = map_value_type(go) {
        return match raw {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), encode_value(v, value_type, package)))
                    .collect(),
            ),
            other => other.clone(),
        };
    }
    if scalar_zero(go).is_some() || is_opaque(go) {
        return raw.clone();
    }
    round_trip_struct(raw, go, package)
}

/// `map[K]V` → `V`; `ResourceList` is `map[ResourceName]resource.Quantity`.
fn map_value_type(go: &str) -> Option<&str> {
    if go == "ResourceList" {
        return Some("resource.Quantity");
    }
    let rest = go.strip_prefix("map[")?;
    let close = rest.find(']')?;
    Some(&rest[close + 1..])
}

/// The zero value of a scalar Go type, as JSON; `None` for a struct.
fn scalar_zero(go: &str) -> Option<Value> {
    match go {
        "bool" => Some(Value::Bool(false)),
        "int" | "int32" | "int64" | "uint32" | "uint64" | "float64" => Some(Value::from(0)),
        // A Quantity is a struct in Go, but marshals as a string; a zero one as "0".
        "resource.Quantity" => Some(Value::from("0")),
        // IntOrString: a struct marshalled as its int (0) when zero.
        "intstr.IntOrString" => Some(Value::from(0)),
        _ if is_opaque(go) || is_time(go) || table_has(go) => None,
        // Every other name in the table's opaque list is a named string type.
        _ => Some(Value::from("")),
    }
}

fn is_time(go: &str) -> bool {
    matches!(
        go,
        "Time" | "metav1.Time" | "MicroTime" | "metav1.MicroTime"
    )
}

fn is_opaque(go: &str) -> bool {
    matches!(go, "metav1.FieldsV1" | "FieldsV1" | "PodStatus")
}

fn table_has(go: &str) -> bool {
    let table = table();
    table.get(go).is_some() || table.get(format!("metav1.{go}")).is_some()
}

/// Whether `encoding/json`'s `omitempty` counts a scalar as empty. A Quantity's "0" and an
/// IntOrString's 0 are structs to Go, never empty.
fn is_zero_scalar(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_is_readable_and_names_its_source() {
        assert_eq!(
            table()["_source"]["commit"],
            "3fed8b5a8558cb508dd58c8cfb228d04cc9a52a5"
        );
        assert!(table().get("PodSpec").is_some());
    }

    #[test]
    fn omitempty_drops_zero_scalars_and_empty_lists_but_not_pointers_to_zero() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {}, "futureField": 1},
            "spec": {
                "hostNetwork": false,
                "serviceAccountName": "",
                "automountServiceAccountToken": false,
                "tolerations": [{"key": "k", "operator": "Exists", "value": "", "effect": ""}],
                "containers": [{
                    "name": "c", "image": "i", "args": [],
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 0},
                    "ports": [{"containerPort": 80, "hostPort": 0}],
                }],
            },
        });
        assert_eq!(
            super::pod(&pod),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {
                    "automountServiceAccountToken": false,
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                    "containers": [{
                        "name": "c", "image": "i",
                        "resources": {},
                        "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 0},
                        "ports": [{"containerPort": 80}],
                    }],
                },
            })
        );
    }

    #[test]
    fn fields_without_omitempty_are_written_even_when_absent() {
        let pod = json!({"spec": {"containers": [{"image": "i",
            "livenessProbe": {"httpGet": {"path": "/h"}}}]}});
        let spec = &super::pod(&pod)["spec"];
        // Container.name has no omitempty; HTTPGetAction.port is an IntOrString without it.
        assert_eq!(spec["containers"][0]["name"], "");
        assert_eq!(
            spec["containers"][0]["livenessProbe"]["httpGet"],
            json!({"path": "/h", "port": 0})
        );
    }
}
