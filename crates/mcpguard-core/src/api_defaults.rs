//! The API server's defaulting that runs before any webhook, for the offline CLI: a pod on
//! disk has not been through it, and without it the CLI would answer differently from the
//! cluster (e.g. an `imagePullPolicy` the webhook overrides, a request copied from a limit).

use serde_json::{Map, Value};

use crate::harden::pod_resources::PodResources;
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
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
            default_volume_source(volume);
        }
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            default_image_pull_policy(container);
            copy_requests_from_limits(container);
        }
    }
    // After the containers' requests, which it reads.
    default_pod_requests(spec);
}

/// A pod that sets pod-level limits gets pod-level requests for what it leaves out
/// (`defaultPodRequests`, Kubernetes 1.34+): the containers' aggregate request, or the limit.
fn default_pod_requests(spec: &mut Map<String, Value>) {
    let limits = spec
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object);
    if limits.is_none_or(Map::is_empty) {
        return;
    }
    let defaults = PodResources::of_json(spec).default_pod_request_texts(|resource| {
        limits.and_then(|l| l.get(resource)).and_then(Value::as_str)
    });
    if defaults.is_empty() {
        return;
    }
    let Some(resources) = spec.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let requests = resources
        .entry("requests")
        .or_insert_with(|| Value::Object(Map::new()));
    if requests.is_null() {
        *requests = Value::Object(Map::new());
    }
    let Some(requests) = requests.as_object_mut() else {
        return;
    };
    for (resource, text) in defaults {
        requests.insert(resource, Value::String(text));
    }
}

/// A volume that names no source is an `emptyDir` (`SetDefaults_Volume`). Only a volume with
/// nothing but its name is one here: a member mcpguard does not know may be a source from a
/// newer Kubernetes, and is left for the checks to judge.
fn default_volume_source(volume: &mut Map<String, Value>) {
    let names_no_source = volume
        .iter()
        .all(|(key, value)| key == "name" || value.is_null());
    if names_no_source {
        volume.retain(|key, _| key == "name");
        volume.insert("emptyDir".into(), Value::Object(Map::new()));
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

    fn defaulted_volumes(volumes: Value) -> Value {
        let mut pod = json!({"spec": {"containers": [], "volumes": volumes}});
        apply_pod_defaults(&mut pod);
        pod["spec"]["volumes"].clone()
    }

    #[test]
    fn a_volume_with_no_source_is_an_empty_dir() {
        assert_eq!(
            defaulted_volumes(json!([
                {"name": "scratch"},
                {"name": "nulls", "hostPath": null, "emptyDir": null},
                {"name": "cm", "configMap": {"name": "c"}},
                {"name": "sized", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "newer", "someFutureSource": {"x": 1}}
            ])),
            json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "nulls", "emptyDir": {}},
                {"name": "cm", "configMap": {"name": "c"}},
                {"name": "sized", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "newer", "someFutureSource": {"x": 1}}
            ])
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
