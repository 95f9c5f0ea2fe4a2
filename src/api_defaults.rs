//! The API server's defaulting that runs before any webhook, for the offline CLI: a pod on
//! disk has not been through it, and without it the CLI would answer differently from the
//! cluster (e.g. an `imagePullPolicy` the webhook overrides, a request copied from a limit).

use serde_json::{Map, Value};

use crate::image_ref::ImageRef;

pub fn apply_pod_defaults(pod: &mut Value) {
    if let Some(spec) = pod.get_mut("spec") {
        apply_spec_defaults(spec);
    }
}

/// [`apply_pod_defaults`] on the spec alone.
pub fn apply_spec_defaults(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            default_image_pull_policy(container);
            copy_requests_from_limits(container);
        }
    }
}

/// `Always` for `:latest` or an untagged, undigested image; `IfNotPresent` otherwise.
fn default_image_pull_policy(container: &mut Map<String, Value>) {
    if container
        .get("imagePullPolicy")
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = default_pull_policy(image);
    container.insert("imagePullPolicy".into(), Value::String(policy.into()));
}

/// The `imagePullPolicy` the API server gives a container of `image` that sets none
/// (`IfNotPresent` for an image its parser refuses: it then sees no tag).
pub fn default_pull_policy(image: &str) -> &'static str {
    let Ok(image) = ImageRef::parse(image) else {
        return "IfNotPresent";
    };
    let always = match (&image.tag, &image.digest) {
        (Some(tag), _) => tag == "latest",
        (None, digest) => digest.is_none(),
    };
    if always { "Always" } else { "IfNotPresent" }
}

fn copy_requests_from_limits(container: &mut Map<String, Value>) {
    let Some(resources) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = resources
        .entry("requests")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(requests) = requests.as_object_mut() else {
        return;
    };
    for (resource, limit) in limits {
        requests.entry(resource).or_insert(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(container: Value) -> Value {
        let mut pod = json!({"spec": {"containers": [container]}});
        apply_pod_defaults(&mut pod);
        pod["spec"]["containers"][0].clone()
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(
            defaulted(json!({"image": "nginx"}))["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            defaulted(json!({"image": "nginx:latest"}))["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            defaulted(json!({"image": "nginx:1.27"}))["imagePullPolicy"],
            "IfNotPresent"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            defaulted(json!({"image": format!("nginx@{digest}")}))["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            defaulted(json!({"image": format!("nginx:latest@{digest}")}))["imagePullPolicy"],
            "Always"
        );
        // The API server's parser refuses `Nginx`, sees no tag, and does not pull always.
        assert_eq!(
            defaulted(json!({"image": "Nginx"}))["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            defaulted(json!({"image": "nginx", "imagePullPolicy": "Never"}))["imagePullPolicy"],
            "Never"
        );
    }

    #[test]
    fn missing_requests_are_copied_from_limits_and_explicit_ones_kept() {
        let container = defaulted(json!({
            "image": "x:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}}
        }));
        assert_eq!(
            container["resources"],
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "1Gi"}})
        );
        assert!(
            defaulted(json!({"image": "x:1"}))
                .get("resources")
                .is_none()
        );
    }
}
