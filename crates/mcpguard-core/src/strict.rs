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
                    // `null`, and an empty list or map that a custom type skips when it
                    // serializes (`skip_serializing_if = "Vec::is_empty"`), set nothing.
                    None if raw_child.is_null() || is_empty_container(raw_child) => None,
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

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Decodes a whole manifest of a kind mcpguard judges as the API server does under
/// `kubectl apply --validate=strict` (kubectl's default): a field of the wrong type, or one
/// the kind does not have, is an error naming the field's path (`spec.containers[0].image`).
/// `None` for a kind this does not know (it is not judged, or decoded elsewhere).
pub fn check_manifest(object: &Value) -> Option<Result<(), StrictError>> {
    use k8s_openapi::api::{apps, batch, core, networking};
    let api_version = object.get("apiVersion").and_then(Value::as_str)?;
    let kind = object.get("kind").and_then(Value::as_str)?;
    let check = match (api_version, kind) {
        ("v1", "Pod") => check_known_fields::<core::v1::Pod>,
        ("v1", "ReplicationController") => check_known_fields::<core::v1::ReplicationController>,
        ("v1", "PodTemplate") => check_known_fields::<core::v1::PodTemplate>,
        ("apps/v1", "Deployment") => check_known_fields::<apps::v1::Deployment>,
        ("apps/v1", "StatefulSet") => check_known_fields::<apps::v1::StatefulSet>,
        ("apps/v1", "DaemonSet") => check_known_fields::<apps::v1::DaemonSet>,
        ("apps/v1", "ReplicaSet") => check_known_fields::<apps::v1::ReplicaSet>,
        ("batch/v1", "Job") => check_known_fields::<batch::v1::Job>,
        ("batch/v1", "CronJob") => check_known_fields::<batch::v1::CronJob>,
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            check_known_fields::<networking::v1::NetworkPolicy>
        }
        ("mcpguard.dev/v1alpha1", "MCPServer") => {
            check_known_fields::<crate::mcpserver::crd::MCPServer>
        }
        _ => return None,
    };
    Some(check(object, "").map_err(|(path, message)| StrictError {
        path: path.trim_start_matches('.').to_owned(),
        message,
    }))
}

/// Why a manifest does not decode, in the words of the API server's strict decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct StrictError {
    /// Dotted path of the field; empty for the object itself.
    pub path: String,
    pub message: String,
}

impl StrictError {
    /// `spec.port: invalid type: string, expected i32`, for a message that names the kind.
    pub fn at_path(&self) -> String {
        match self.path.as_str() {
            "" => self.message.clone(),
            path => format!("{path}: {}", self.message),
        }
    }

    fn describe(&self) -> String {
        match (self.message.as_str(), self.path.as_str()) {
            ("unknown field", path) => format!("strict decoding error: unknown field {path:?}"),
            (message, "") => format!("cannot decode: {message}"),
            (message, path) => format!("cannot decode {path}: {message}"),
        }
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

#[cfg(test)]
mod manifest_tests {
    use super::*;
    use serde_json::json;

    fn pod(container: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [container]}})
    }

    #[test]
    fn a_pod_as_kubectl_writes_it_decodes() {
        let manifest = pod(json!({"name": "app", "image": "nginx:1.27",
            "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
            "resources": {"limits": {"memory": "128Mi"}}, "env": []}));
        assert_eq!(check_manifest(&manifest), Some(Ok(())));
    }

    #[test]
    fn a_misspelt_container_field_is_refused_with_its_path() {
        let manifest =
            pod(json!({"name": "app", "image": "nginx", "securityContex": {"privileged": true}}));
        let error = check_manifest(&manifest)
            .expect("pods are known")
            .unwrap_err();
        assert_eq!(error.path, "spec.containers[0].securityContex");
        assert_eq!(
            error.to_string(),
            r#"strict decoding error: unknown field "spec.containers[0].securityContex""#
        );
    }

    #[test]
    fn a_misspelt_deployment_field_is_refused() {
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"replica": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let error = check_manifest(&manifest).expect("known").unwrap_err();
        assert_eq!(error.path, "spec.replica");
    }

    #[test]
    fn a_wrong_type_is_refused_with_its_path_and_without_the_value() {
        let manifest = pod(json!({"name": "app", "image": "nginx",
            "securityContext": {"runAsUser": "secret-looking-value"}}));
        let error = check_manifest(&manifest).expect("known").unwrap_err();
        assert_eq!(error.path, "spec.containers[0].securityContext.runAsUser");
        assert!(
            !error.to_string().contains("secret-looking-value"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("cannot decode spec.containers[0].securityContext.runAsUser: "),
            "{error}"
        );
    }

    #[test]
    fn an_mcpserver_with_empty_lists_decodes_and_a_typo_does_not() {
        let server = json!({"apiVersion": "mcpguard.dev/v1alpha1", "kind": "MCPServer",
            "metadata": {"name": "s"}, "spec": {"image": "ghcr.io/x/y:1", "secretEnv": []}});
        assert_eq!(check_manifest(&server), Some(Ok(())));
        let mut typo = server.clone();
        typo["spec"]["imagee"] = json!("x");
        assert_eq!(
            check_manifest(&typo).expect("known").unwrap_err().path,
            "spec.imagee"
        );
    }

    #[test]
    fn kinds_it_does_not_judge_are_left_alone() {
        let config_map =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "dat": {}});
        assert_eq!(check_manifest(&config_map), None);
        assert_eq!(check_manifest(&json!({"kind": "Pod"})), None);
    }
}
