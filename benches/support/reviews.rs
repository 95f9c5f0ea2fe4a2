//! The AdmissionReviews both benches send (`benches/review.rs` in process, `benches/load.rs`
//! over HTTPS), built in one place so the two measure the same payloads.
//!
//! Included with `#[path]` (not a bench target of its own); each bench uses what it needs.
#![allow(dead_code)]

use serde_json::{Map, Value, json};

pub const EXAMPLE: &str = include_str!("../../examples/admission-review.json");
/// The typical review without its managedFields is padded to at least this many bytes of
/// compact JSON...
pub const MIN_BYTES: usize = 4000;
/// ...and no more than this.
pub const MAX_BYTES: usize = 4300;

/// The example review, padded the way real MCP pods grow: Helm/Argo labels and annotations,
/// then configuration env vars until the review without managedFields is 4000-4300 bytes of
/// compact JSON.
///
/// Then `metadata.managedFields` as kube-apiserver sends them: one entry whose `fieldsV1`
/// names every field the pod's manager set, about 2 KB and a few hundred JSON nodes of
/// bookkeeping that the webhook parses but never needs.
pub fn typical_review() -> Value {
    let mut review: Value =
        serde_json::from_str(EXAMPLE).expect("examples/admission-review.json parses");
    let pod = &mut review["request"]["object"];
    let labels = pod["metadata"]["labels"].as_object_mut().expect("labels");
    for (key, value) in [
        ("app.kubernetes.io/instance", "github-mcp-prod"),
        ("app.kubernetes.io/version", "v0.20.0"),
        ("app.kubernetes.io/managed-by", "Helm"),
        ("app.kubernetes.io/component", "mcp-server"),
        ("helm.sh/chart", "github-mcp-1.4.2"),
        ("team", "developer-platform"),
    ] {
        labels.insert(key.into(), json!(value));
    }
    let annotations = pod["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    for (key, value) in [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", "9090"),
        (
            "argocd.argoproj.io/tracking-id",
            "mcp-servers:/Pod:mcp/github-mcp",
        ),
        (
            "checksum/config",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
    ] {
        annotations.insert(key.into(), json!(value));
    }
    let env = pod["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env");
    env.push(json!({"name": "GITHUB_HOST", "value": "https://github.com"}));
    env.push(
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    );
    env.push(json!({"name": "OTEL_EXPORTER_OTLP_HEADERS", "valueFrom": {"secretKeyRef": {"name": "otel", "key": "headers"}}}));
    let settings = [
        ("MCP_TRANSPORT", "streamable-http"),
        ("MCP_LOG_FORMAT", "json"),
        ("MCP_READ_ONLY", "false"),
        ("MCP_DYNAMIC_TOOLSETS", "true"),
        ("OTEL_SERVICE_NAME", "github-mcp"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://otel-collector.observability:4317",
        ),
        ("HTTP_PROXY", "http://egress-proxy.mcp:3128"),
        ("NO_PROXY", "localhost,127.0.0.1,.svc,.cluster.local"),
        ("MCP_REQUEST_TIMEOUT_SECONDS", "30"),
        ("MCP_MAX_CONCURRENT_REQUESTS", "16"),
        ("MCP_RATE_LIMIT_PER_MINUTE", "600"),
        ("MCP_CACHE_DIR", "/cache"),
        ("MCP_CACHE_TTL_SECONDS", "300"),
        ("TZ", "UTC"),
        ("LANG", "C.UTF-8"),
    ];
    for (name, value) in settings {
        if size_without_managed_fields(&review) >= MIN_BYTES {
            break;
        }
        review["request"]["object"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env")
            .push(json!({"name": name, "value": value}));
    }
    set_managed_fields(&mut review["request"]["object"]);
    review
}

/// The review's size in compact JSON without `metadata.managedFields`: the pod's own size,
/// which [`MIN_BYTES`] and [`MAX_BYTES`] bound (the figure the targets were set for).
pub fn size_without_managed_fields(review: &Value) -> usize {
    let mut review = review.clone();
    if let Some(metadata) = review["request"]["object"]["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
    serde_json::to_vec(&review).expect("serialises").len()
}

/// A CREATE of a Deployment whose pod template has the typical pod's labels, annotations
/// and spec, with its own managedFields.
pub fn deployment_review(typical: &Value) -> Value {
    let mut deployment = typical.clone();
    let pod = &typical["request"]["object"];
    let labels = pod["metadata"]["labels"].clone();
    let request = &mut deployment["request"];
    let apps = |field: &str, value: &str| json!({"group": "apps", "version": "v1", field: value});
    request["kind"] = apps("kind", "Deployment");
    request["requestKind"] = apps("kind", "Deployment");
    request["resource"] = apps("resource", "deployments");
    request["requestResource"] = apps("resource", "deployments");
    request["object"] = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "github-mcp",
            "namespace": "mcp",
            "labels": labels.clone(),
            "managedFields": pod["metadata"]["managedFields"].clone(),
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "github-mcp"}},
            "template": {
                "metadata": {"labels": labels, "annotations": pod["metadata"]["annotations"]},
                "spec": pod["spec"],
            },
        },
    });
    set_managed_fields(&mut request["object"]);
    deployment
}

/// Fields an admission plugin or the API server added after the manager wrote the object:
/// not in its managedFields.
const NOT_MANAGED: &[&str] = &[
    "tolerations",
    "priority",
    "preemptionPolicy",
    "serviceAccount",
];

/// Rewrites the object's single managedFields entry to cover its labels, annotations and
/// spec, as the manager that created it would own them.
fn set_managed_fields(object: &mut Value) {
    let mut owned = Map::new();
    let metadata = &object["metadata"];
    let mut metadata_fields = Map::new();
    for key in ["labels", "annotations"] {
        if let Some(value) = metadata.get(key) {
            metadata_fields.insert(format!("f:{key}"), field_set(key, value));
        }
    }
    owned.insert("f:metadata".into(), Value::Object(metadata_fields));
    if let Some(spec) = object.get("spec") {
        owned.insert("f:spec".into(), field_set("spec", spec));
    }
    object["metadata"]["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": object["apiVersion"].clone(),
        "time": "2026-11-21T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": owned,
    }]);
}

/// FieldsV1 of one field: `{}` for a scalar, an empty object or an atomic list, `f:<field>`
/// per member of an object (with `.` for the object itself, except a spec), `k:<key>` per
/// item of a list merged by key.
fn field_set(name: &str, value: &Value) -> Value {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut fields = Map::new();
            if name != "spec" {
                fields.insert(".".into(), json!({}));
            }
            for (key, item) in map {
                if name == "spec" && NOT_MANAGED.contains(&key.as_str()) {
                    continue;
                }
                fields.insert(format!("f:{key}"), field_set(key, item));
            }
            Value::Object(fields)
        }
        Value::Array(items) => {
            let mut fields = Map::new();
            for item in items {
                let Some(key) = merge_key(name, item) else {
                    return json!({});
                };
                if item["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-api-access-"))
                {
                    // Added by the ServiceAccount admission plugin, not by the manager.
                    continue;
                }
                fields.insert(format!("k:{key}"), field_set("", item));
            }
            Value::Object(fields)
        }
        _ => json!({}),
    }
}

/// The key a list is merged by in the API (`name`, `mountPath`, `containerPort`+`protocol`);
/// `None` for an atomic list.
fn merge_key(list: &str, item: &Value) -> Option<String> {
    let key = match list {
        "volumeMounts" => json!({"mountPath": item.get("mountPath")?}),
        "ports" => json!({"containerPort": item.get("containerPort")?,
            "protocol": item.get("protocol")?}),
        _ => json!({"name": item.get("name")?.as_str()?}),
    };
    Some(key.to_string())
}
