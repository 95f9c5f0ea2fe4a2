//! `spec.podTemplateSpec`: a PodTemplateSpec merged over the rendered pod template, as
//! ToolHive's MCPServer takes one. It places and dresses the pod (node selectors,
//! tolerations, affinity, priority, a ServiceAccount, labels and annotations, the pod's and
//! the `mcp` container's security context and resources); it never changes what the
//! controller keeps for itself (the containers' images, commands, ports, environment and
//! mounts, the volumes, the init containers, the selector labels and the rollout
//! annotations), since those are how the server's Secrets and ConfigMaps reach it and how the
//! author's rights over them are checked. The merged template is mutated and judged like
//! any pod afterwards, so an override relaxes nothing the policy forbids.

use serde_json::{Map, Value};

use super::{
    CONFIG_HASH_ANNOTATION, CONTAINER_NAME, MANAGED_BY_LABEL, NAME_LABEL, RenderError,
    SECRETS_HASH_ANNOTATION,
};

/// The pod spec fields an override may set.
pub const POD_FIELDS: [&str; 10] = [
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "serviceAccountName",
    "topologySpreadConstraints",
    "securityContext",
    "terminationGracePeriodSeconds",
    "runtimeClassName",
    "containers",
];

/// The `mcp` container's fields an override may set.
pub const CONTAINER_FIELDS: [&str; 3] = ["name", "securityContext", "resources"];

/// Longest DNS subdomain, the bound of a ServiceAccount name.
const MAX_NAME: usize = 253;

fn refused(path: &str, why: &str) -> RenderError {
    RenderError::Invalid(format!("podTemplateSpec.{path} cannot be set: {why}"))
}

/// The ServiceAccount the override names, when it names a valid one.
pub fn service_account(overrides: Option<&Value>) -> Option<String> {
    let name = overrides?.pointer("/spec/serviceAccountName")?.as_str()?;
    is_dns_subdomain(name).then(|| name.to_owned())
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Merges `overrides` over `template` (`{metadata, spec}`): objects merge key by key, lists
/// and scalars replace. Refuses anything outside [`POD_FIELDS`], [`CONTAINER_FIELDS`] and
/// the labels and annotations the controller does not keep.
pub fn apply(template: &mut Value, overrides: &Value) -> Result<(), RenderError> {
    crate::strict::check_known_fields::<k8s_openapi::api::core::v1::PodTemplateSpec>(
        overrides,
        "podTemplateSpec",
    )
    .map_err(|(path, message)| RenderError::Invalid(format!("{path}: {message}")))?;
    let Some(overrides) = overrides.as_object() else {
        return Ok(());
    };
    for (key, value) in overrides {
        match key.as_str() {
            "metadata" => merge_metadata(template, value)?,
            "spec" => merge_spec(template, value)?,
            other => return Err(refused(other, "only metadata and spec can")),
        }
    }
    Ok(())
}

fn merge_metadata(template: &mut Value, metadata: &Value) -> Result<(), RenderError> {
    let Some(metadata) = metadata.as_object() else {
        return Ok(());
    };
    for (key, value) in metadata {
        let reserved: &[&str] = match key.as_str() {
            "labels" => &[NAME_LABEL, MANAGED_BY_LABEL],
            "annotations" => &[SECRETS_HASH_ANNOTATION, CONFIG_HASH_ANNOTATION],
            other => {
                return Err(refused(
                    &format!("metadata.{other}"),
                    "only labels and annotations can",
                ));
            }
        };
        let Some(entries) = value.as_object() else {
            continue;
        };
        for (name, entry) in entries {
            if reserved.contains(&name.as_str()) {
                return Err(refused(
                    &format!("metadata.{key}.{name}"),
                    "the controller keeps it",
                ));
            }
            if let Some(target) = object_at(template, &["metadata", key.as_str()]) {
                target.insert(name.clone(), entry.clone());
            }
        }
    }
    Ok(())
}

fn merge_spec(template: &mut Value, spec: &Value) -> Result<(), RenderError> {
    let Some(spec) = spec.as_object() else {
        return Ok(());
    };
    for (key, value) in spec {
        if !POD_FIELDS.contains(&key.as_str()) {
            return Err(refused(
                &format!("spec.{key}"),
                &format!(
                    "the controller keeps it (an override may set spec.{}, and the {CONTAINER_NAME} container's {})",
                    POD_FIELDS.join(", spec."),
                    CONTAINER_FIELDS[1..].join(" and ")
                ),
            ));
        }
        if key == "serviceAccountName" && !value.as_str().is_some_and(is_dns_subdomain) {
            return Err(refused(
                "spec.serviceAccountName",
                "it must be a ServiceAccount's name (a DNS subdomain)",
            ));
        }
        if key == "containers" {
            merge_containers(template, value)?;
            continue;
        }
        if let Some(target) = object_at(template, &["spec"]) {
            merge_value(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
    Ok(())
}

fn merge_containers(template: &mut Value, containers: &Value) -> Result<(), RenderError> {
    let Some(containers) = containers.as_array() else {
        return Ok(());
    };
    for (index, container) in containers.iter().enumerate() {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        if name != CONTAINER_NAME {
            return Err(refused(
                &format!("spec.containers[{index}]"),
                &format!("only the server's container, {CONTAINER_NAME:?}, can be adjusted"),
            ));
        }
        let Some(fields) = container.as_object() else {
            continue;
        };
        for (key, value) in fields {
            if !CONTAINER_FIELDS.contains(&key.as_str()) {
                return Err(refused(
                    &format!("spec.containers[{index}].{key}"),
                    "the controller keeps it (only securityContext and resources can be adjusted)",
                ));
            }
            if key == "name" {
                continue;
            }
            let Some(rendered) = template
                .pointer_mut("/spec/containers")
                .and_then(Value::as_array_mut)
                .and_then(|list| {
                    list.iter_mut()
                        .find(|c| c.get("name").and_then(Value::as_str) == Some(CONTAINER_NAME))
                })
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            merge_value(rendered.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
    Ok(())
}

/// Objects merge key by key (recursively); anything else replaces.
fn merge_value(target: &mut Value, value: &Value) {
    match (target, value) {
        (Value::Object(target), Value::Object(value)) => {
            for (key, child) in value {
                merge_value(target.entry(key.clone()).or_insert(Value::Null), child);
            }
        }
        (target, value) => *target = value.clone(),
    }
}

/// The object at `path` under `root`, missing objects created on the way; `None` where a
/// non-object stands in the way (never in a template the render built).
fn object_at<'v>(root: &'v mut Value, path: &[&str]) -> Option<&'v mut Map<String, Value>> {
    let mut current = root.as_object_mut()?;
    for key in path {
        current = current
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()?;
    }
    Some(current)
}
