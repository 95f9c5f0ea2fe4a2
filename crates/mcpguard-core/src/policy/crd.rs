//! `MCPPolicy` as a cluster object: the CRD's schema for the spec's raw-JSON fields, the
//! status the leader writes, and loading a policy from an object the API server holds.
//!
//! The raw-JSON fields are described with their Kubernetes types' schemas, so the API server
//! already refuses a misspelt toleration; the loader still checks everything, because a
//! policy file never passes through the API server.

use k8s_openapi::api::core::v1::{Affinity, PodSecurityContext, SecurityContext, Toleration};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{KIND, MCPPolicy, Policy, PolicyError};
use crate::conditions::Condition;

/// What the leader reports on each `MCPPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPPolicyStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The namespaces this policy enforces now (its claims minus those an older policy holds).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// `Ready` (compiled and enforcing), `Conflict` (a namespace claimed by another policy),
    /// and, while an exception waives a Pod Security check on what a pod's author chooses,
    /// `ExceptionsTrustAuthors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The CRD as `kubectl apply` takes it.
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube_core::CustomResourceExt;
    MCPPolicy::crd()
}

/// Loads the policy an `MCPPolicy` object holds, with the checks and the error messages of a
/// policy file. Only what a file may carry is passed on: the server's bookkeeping
/// (`uid`, `managedFields`, `status`) is not the policy.
pub fn from_object(object: &Value) -> Result<Policy, PolicyError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut metadata = json!({ "name": name });
    for key in ["labels", "annotations"] {
        if let Some(value) = object.pointer(&format!("/metadata/{key}")) {
            metadata[key] = value.clone();
        }
    }
    let document = json!({
        "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": object.get("kind").cloned().unwrap_or(Value::Null),
        "metadata": metadata,
        "spec": object.get("spec").cloned().unwrap_or(Value::Null),
    });
    super::parse_value(document, &object_source(name))
}

/// How errors name a policy object: `MCPPolicy "name"`, where a file's name would be.
pub fn object_source(name: &str) -> String {
    format!("{KIND} {name:?}")
}

fn with_nullable(mut schema: Schema) -> Schema {
    schema.insert("nullable".into(), Value::Bool(true));
    schema
}

fn array_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let items = generator.subschema_for::<T>();
    schemars::json_schema!({ "type": "array", "items": items })
}

pub(super) fn peers(generator: &mut SchemaGenerator) -> Schema {
    array_of::<NetworkPolicyPeer>(generator)
}

pub(super) fn tolerations(generator: &mut SchemaGenerator) -> Schema {
    array_of::<Toleration>(generator)
}

pub(super) fn pod_security_context(generator: &mut SchemaGenerator) -> Schema {
    with_nullable(generator.subschema_for::<PodSecurityContext>())
}

pub(super) fn container_security_context(generator: &mut SchemaGenerator) -> Schema {
    with_nullable(generator.subschema_for::<SecurityContext>())
}

pub(super) fn affinity(generator: &mut SchemaGenerator) -> Schema {
    with_nullable(generator.subschema_for::<Affinity>())
}

/// `params` is whatever the policy's rules read, so the API server keeps it as written.
pub(super) fn params(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
