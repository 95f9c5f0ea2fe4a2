//! The `MCPServer` custom resource (`mcpguard.dev/v1alpha1`, namespaced). The CRD is
//! generated from these types (`mcpguard crd`); `webhook-manifests/` ships that exact output.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::conditions::Condition;
pub use crate::egress::EgressProfile;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = ::kube_core, k8s_openapi = ::k8s_openapi, schemars = ::schemars, serde = ::serde, serde_json = ::serde_json),
    group = "mcpguard.dev",
    version = "v1alpha1",
    kind = "MCPServer",
    plural = "mcpservers",
    namespaced,
    status = "MCPServerStatus",
    shortname = "mcps",
    // `kubectl scale` and a user's HorizontalPodAutoscaler act on spec.replicas; the
    // controller reports the Deployment's replicas and the pods' selector in status.
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    category = "mcpguard",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerSpec {
    /// A container image that serves MCP itself (set either this or `package`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// An npx or uvx package, run on the policy's runtime image behind a stdio→HTTP bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(default)]
    pub transport: Transport,
    /// The port the server listens on (HTTP transports).
    #[serde(default = "default_port")]
    pub port: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Plain values only; credentials go in `secretEnv`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<PlainEnv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSecret>,
    /// Secrets mounted read-only under `/files/<secret name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FilesFromSecret>,
    /// ConfigMaps mounted read-only under `/config/<configmap name>` (server configuration);
    /// a change to one rolls the pods, as a changed Secret does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<ConfigFromConfigMap>,
    /// HTTP probes on the server's port; without them readiness is a TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
    /// A HorizontalPodAutoscaler (autoscaling/v2) on CPU; `replicas` is then the HPA's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// A PodTemplateSpec merged over the rendered pod, as ToolHive's MCPServer takes one:
    /// node placement, a ServiceAccount, labels and annotations, and the `mcp` container's
    /// security context and resources. The merged pod is mutated and judged like any pod,
    /// so nothing the policy forbids can be relaxed here; what the controller keeps for
    /// itself (the containers, volumes, image, command, ports) is refused by name. Kept as
    /// written by the API server (a full PodTemplateSpec schema would take the CRD over the
    /// size client-side `kubectl apply` can store) and decoded strictly by mcpguard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub pod_template_spec: Option<serde_json::Value>,
    #[serde(default = "default_replicas")]
    pub replicas: i32,
    /// Within the policy's ceilings; the policy's defaults fill what is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ServerNetwork>,
}

fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn default_port() -> i32 {
    8080
}

fn default_replicas() -> i32 {
    1
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub runtime: PackageRuntime,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A package cache on a PersistentVolumeClaim, for clusters that cannot reach npm or
    /// PyPI: mounted at `/cache`, used as npm's or uv's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<PackageCache>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageCache {
    /// The claim holding the cache (filled beforehand, or by a first start with egress).
    pub persistent_volume_claim: ClaimName,
    /// Never ask the registry: the package and every dependency must be in the cache
    /// (`NPM_CONFIG_OFFLINE`, `UV_OFFLINE`). Then the server needs no egress to a registry.
    /// Otherwise the cache is preferred and the registry asked only for what it lacks.
    #[serde(default)]
    pub offline: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimName {
    pub claim_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageRuntime {
    Npx,
    Uvx,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Transport {
    #[default]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    #[serde(rename = "sse")]
    Sse,
    #[serde(rename = "stdio")]
    Stdio,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlainEnv {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretEnv {
    pub name: String,
    pub secret_key_ref: SecretKeyRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSecret {
    pub secret_ref: SecretName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilesFromSecret {
    pub secret_ref: SecretName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretName {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFromConfigMap {
    pub config_map_ref: ConfigMapName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapName {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Probes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<HttpProbe>,
}

/// An HTTP GET on the server's port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpProbe {
    /// An absolute path such as `/health`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    pub max_replicas: i32,
    /// Average CPU utilization of the pods' requests to aim for; default 80. Spelt as the
    /// HPA's own field (autoscaling/v1), not `targetCpu…`.
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_cpu_utilization_percentage: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerNetwork {
    /// Extra NetworkPolicy peers allowed to call the server (within the policy's allowed peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_from: Vec<NetworkPolicyPeer>,
    /// Extra peers the server may reach (within the policy's allowed peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_to: Vec<NetworkPolicyPeer>,
    /// How much of the network the server may reach: `none` (only `egressTo`), `dns-only`
    /// (DNS, the policy's gateway peers and `egressTo`) or `public` (also the globally
    /// reachable internet). Absent: the policy's `spec.network.defaultEgress`; never more
    /// than its `maxEgress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressProfile>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The Deployment's replicas (the scale subresource's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The pods' label selector, as a string (the scale subresource's, for an HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    Pending,
    Ready,
    Failed,
}
