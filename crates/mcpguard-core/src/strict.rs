//! Strict decoding of Kubernetes-typed JSON. k8s-openapi's deserializers silently skip
//! fields they do not know, which would turn a typo (`runAsUsr`) into a setting that is
//! quietly ignored. A round trip through the type reveals every such field.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Checks that `raw` is a valid `T` and has no field that `T` does not know.
/// Errors are `(dotted path, message)`.
pub fn check_known_fields<T: DeserializeOwned + Serialize>(
    raw: &Value,
    path: &str,
) -> Result<(), (String, String)> {
    let typed: T = crate::redact::decode(raw, path).map_err(|err| (err.path, err.message))?;
    let round_trip = serde_json::to_value(&typed)
        .map_err(|err| (path.to_owned(), format!("cannot be represented: {err}")))?;
    match first_unknown_field(raw, &round_trip, path) {
        Some(unknown) => Err((unknown, "unknown field".to_owned())),
        None => Ok(()),
    }
}

fn first_unknown_field(raw: &Value, known: &Value, path: &str) -> Option<String> {
    match (raw, known) {
        (Value::Object(raw_map), Value::Object(known_map)) => {
            raw_map.iter().find_map(|(key, raw_child)| {
                let child_path = format!("{path}.{key}");
                match known_map.get(key) {
                    None if raw_child.is_null() => None,
                    None => Some(child_path),
                    Some(known_child) => first_unknown_field(raw_child, known_child, &child_path),
                }
            })
        }
        (Value::Array(raw_items), Value::Array(known_items)) => raw_items
            .iter()
            .zip(known_items)
            .enumerate()
            .find_map(|(index, (r, k))| first_unknown_field(r, k, &format!("{path}[{index}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::SecurityContext;
    use serde_json::json;

    #[test]
    fn known_fields_pass() {
        let raw = json!({"runAsUser": 1000, "capabilities": {"drop": ["ALL"]}});
        assert_eq!(check_known_fields::<SecurityContext>(&raw, "sc"), Ok(()));
    }

    #[test]
    fn a_typo_is_named_with_its_full_path() {
        let raw = json!({"capabilities": {"drop": ["ALL"], "dorp": ["NET_RAW"]}});
        assert_eq!(
            check_known_fields::<SecurityContext>(&raw, "spec.mutate.containerSecurityContext"),
            Err((
                "spec.mutate.containerSecurityContext.capabilities.dorp".to_owned(),
                "unknown field".to_owned()
            ))
        );
    }

    #[test]
    fn a_wrong_type_is_named_with_its_path() {
        let raw = json!({"runAsUser": "root"});
        assert_eq!(
            check_known_fields::<SecurityContext>(&raw, "sc"),
            Err((
                "sc.runAsUser".to_owned(),
                "invalid type: string, expected i64".to_owned()
            ))
        );
    }
}
