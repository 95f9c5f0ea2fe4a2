//! Test helpers: pods from JSON, and evaluation narrowed to one check so each
//! check's tests can assert exact results through the real registry.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::{CheckResult, Level, Version, evaluate};

pub(crate) const B: Level = Level::Baseline;
pub(crate) const R: Level = Level::Restricted;

pub(crate) fn v(minor: u32) -> Version {
    Version::Minor(minor)
}

/// `{"metadata": {...}, "spec": {...}}`; `spec.containers` may be omitted.
pub(crate) fn pod(json: Value) -> (ObjectMeta, PodSpec) {
    let metadata = json.get("metadata").cloned().unwrap_or(Value::Null);
    let mut spec = json
        .get("spec")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    if let Value::Object(map) = &mut spec {
        map.entry("containers")
            .or_insert_with(|| serde_json::json!([]));
    }
    let metadata: ObjectMeta = if metadata.is_null() {
        ObjectMeta::default()
    } else {
        serde_json::from_value(metadata).expect("metadata JSON")
    };
    (metadata, serde_json::from_value(spec).expect("spec JSON"))
}

/// The results of `evaluate` that came from check `id`, without the fields they name
/// (which [`fields`] asserts), so that the messages are compared on their own.
pub(crate) fn run(id: &str, level: Level, version: Version, json: Value) -> Vec<CheckResult> {
    let (metadata, spec) = pod(json);
    evaluate(level, version, &metadata, &spec)
        .into_iter()
        .filter(|r| r.check_id == id)
        .map(|r| CheckResult {
            fields: Vec::new(),
            ..r
        })
        .collect()
}

/// The fields check `id` names, one list per result (empty when the pod passes).
pub(crate) fn fields(id: &str, level: Level, version: Version, json: Value) -> Vec<Vec<String>> {
    let (metadata, spec) = pod(json);
    evaluate(level, version, &metadata, &spec)
        .into_iter()
        .filter(|r| r.check_id == id)
        .map(|r| r.fields)
        .collect()
}

pub(crate) fn fail(id: &'static str, reason: &str, detail: &str) -> Vec<CheckResult> {
    vec![CheckResult {
        check_id: id,
        forbidden_reason: reason.to_string(),
        forbidden_detail: detail.to_string(),
        fields: Vec::new(),
    }]
}

pub(crate) fn pass() -> Vec<CheckResult> {
    Vec::new()
}
