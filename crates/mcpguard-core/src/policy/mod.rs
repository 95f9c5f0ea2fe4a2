//! `MCPPolicy`: what a hardened MCP pod is and what is allowed, as a Kubernetes-style document.
//!
//! The field names are the public contract (README "Policy reference"). Every struct refuses
//! unknown fields so that a typo in a policy file is an error at load, never a silently
//! ignored setting.

mod crd;
mod load;

pub use crd::{MCPPolicyStatus, crd as policy_crd, from_object, object_source};
pub use load::{PolicyError, parse_str, parse_value};

use std::collections::BTreeMap;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::cel_rules::CelRule;
use crate::cel_rules::{CompiledRules, DEFAULT_COST_LIMIT};
use crate::egress::EgressProfile;
use crate::pss::{Level, Version};
use crate::quantity::Ceiling;

pub const API_VERSION: &str = "mcpguard.dev/v1alpha1";
pub const KIND: &str = "MCPPolicy";

/// Namespaces a policy may never claim: enforcing on them can lock the control plane or
/// mcpguard itself out of the cluster.
pub const PROTECTED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "mcpguard-system",
];

/// The default policy, embedded so that `mcpguard` runs with no files at all.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../../policies/mcp-restricted.yaml");
pub const DEFAULT_POLICY_SOURCE: &str = "<embedded policies/mcp-restricted.yaml>";

/// A loaded and validated policy. Built only by [`parse_str`] / [`parse_value`], so holders
/// can rely on every field having been checked.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub spec: PolicySpec,
    /// `validate.maxResources`, parsed once at load.
    pub ceilings: Vec<Ceiling>,
    /// `spec.exceptions[i].expires`, parsed once at load (same order as the spec).
    pub exception_expiry: Vec<Option<jiff::Timestamp>>,
    /// `validate.rules`, compiled once at load.
    pub rules: CompiledRules,
}

impl Policy {
    pub fn embedded_default() -> Result<Policy, PolicyError> {
        parse_str(DEFAULT_POLICY_YAML, DEFAULT_POLICY_SOURCE)
    }

    pub fn enforces_namespace(&self, namespace: &str) -> bool {
        self.spec.namespaces.iter().any(|ns| ns == namespace)
    }

    /// The mode in force in `namespace`.
    pub fn mode_for(&self, namespace: &str) -> Mode {
        self.spec
            .namespace_modes
            .get(namespace)
            .copied()
            .unwrap_or(self.spec.mode)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: PolicyMetadata,
    pub spec: PolicySpec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The spec of a policy file and of an `MCPPolicy` object alike: the CRD is generated from
/// these types (`mcpguard crd`), so `kubectl apply -f policies/...` takes the files as they are.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = ::kube_core, k8s_openapi = ::k8s_openapi, schemars = ::schemars, serde = ::serde, serde_json = ::serde_json),
    group = "mcpguard.dev",
    version = "v1alpha1",
    kind = "MCPPolicy",
    plural = "mcppolicies",
    status = "MCPPolicyStatus",
    shortname = "mcpp",
    category = "mcpguard",
    doc = "A cluster-wide mcpguard policy: the namespaces it covers and what pods there must be.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Namespaces","type":"string","jsonPath":".status.namespaces"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Enforced namespaces; objects anywhere else are admitted untouched.
    pub namespaces: Vec<String>,
    pub pod_security: PodSecurity,
    #[serde(default)]
    pub mutate: MutateSpec,
    #[serde(default)]
    pub validate: ValidateSpec,
    /// What a violation does: deny (`enforce`), admit with warnings (`warn`), or admit and
    /// only record it (`audit`). Mutation applies in every mode.
    #[serde(default)]
    pub mode: Mode,
    /// Per-namespace overrides of `mode`, to migrate one namespace at a time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_modes: BTreeMap<String, Mode>,
    /// Reviewed waivers of named checks for matching pods and containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Exception>,
    /// How MCPServers are isolated on the network.
    #[serde(default)]
    pub network: NetworkSpec,
}

/// NetworkPolicies rendered for MCPServers.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// Render a NetworkPolicy per MCPServer.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Namespaces whose pods may call MCP servers (matched on kubernetes.io/metadata.name).
    #[serde(default = "default_client_namespaces")]
    pub client_namespaces: Vec<String>,
    /// Where DNS is answered; default: kube-system's kube-dns pods. E.g. NodeLocal DNSCache:
    /// `[{ipBlock: {cidr: 169.254.20.10/32}}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crd::peers")]
    pub dns_peers: Vec<Value>,
    /// In-cluster peers every MCP server may reach (an egress gateway or proxy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crd::peers")]
    pub gateway_peers: Vec<Value>,
    /// The only peers an MCPServer's `network.ingressFrom` / `egressTo`, or a NetworkPolicy
    /// someone else writes in an enforced namespace, may name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crd::peers")]
    pub allowed_extra_peers: Vec<Value>,
    /// Users whose NetworkPolicies are admitted as they are: mcpguard's own controller.
    #[serde(default = "default_controller_users")]
    pub controller_users: Vec<String>,
    /// The egress profile of an MCPServer that names none: `none`, `dns-only` or `public`.
    #[serde(default)]
    pub default_egress: EgressProfile,
    /// The most egress an MCPServer may ask for; a server asking more is refused.
    #[serde(default)]
    pub max_egress: EgressProfile,
}

fn default_controller_users() -> Vec<String> {
    vec!["system:serviceaccount:mcpguard-system:mcpguard".to_owned()]
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            enabled: true,
            client_namespaces: default_client_namespaces(),
            dns_peers: Vec::new(),
            gateway_peers: Vec::new(),
            allowed_extra_peers: Vec::new(),
            controller_users: default_controller_users(),
            default_egress: EgressProfile::default(),
            max_egress: EgressProfile::default(),
        }
    }
}

fn default_client_namespaces() -> Vec<String> {
    vec!["mcp-clients".to_owned()]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Warn,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exception {
    pub name: String,
    /// Why it was granted (a ticket, a review); required so every waiver is explained.
    pub reason: String,
    #[serde(rename = "match", default)]
    pub match_: ExceptionMatch,
    /// Check IDs waived (PSS IDs such as `capabilities_baseline`, or MCP rule IDs).
    pub checks: Vec<String>,
    /// `YYYY-MM-DD` (valid through that day, UTC) or an RFC 3339 time; absent = no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// All criteria given must match (AND); an empty list matches anything. Labels and
/// annotations are never criteria: the pod's author controls them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionMatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Object names, with `*` and `?` wildcards (`playwright-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Image prefixes matched per container at path boundaries on the normalised reference,
    /// or exact references with a digest (`repo@sha256:...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// `request.userInfo.username`: the strongest criterion, since the requester cannot
    /// choose it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurity {
    pub level: Level,
    pub version: Version,
}

/// Defaults filled into pods. The Kubernetes-typed parts are kept as raw JSON because the
/// mutation merges raw JSON; load checks them against their k8s-openapi types.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crd::pod_security_context")]
    pub pod_security_context: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crd::container_security_context")]
    pub container_security_context: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceDefaults>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crd::tolerations")]
    pub tolerations: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crd::affinity")]
    pub affinity: Option<Map<String, Value>>,
    /// What the mutation does to each container's `imagePullPolicy`: `always` sets `Always`;
    /// `alwaysExceptNever` sets `Always` except where a container says `Never`; `leave`
    /// (the default) changes nothing.
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,
    /// What the mutation does to the ServiceAccount token of a pod that does not set
    /// `automountServiceAccountToken`: `remove` turns it off and removes the mounted token;
    /// `keepForNamedServiceAccounts` (the default) does so only for pods of the `default`
    /// ServiceAccount; `leave` changes nothing.
    #[serde(default)]
    pub automount_service_account_token: ServiceAccountToken,
    /// Images that run `package` MCPServers, with the stdio→HTTP bridge on them.
    #[serde(default)]
    pub package_runtime_images: PackageRuntimeImages,
    /// mcpguard's own image, pinned by digest (`ghcr.io/mcpguard/mcpguard@sha256:…`): an init
    /// container copies its static binary into the pod, and `mcpguard bridge` serves stdio
    /// MCPServers over Streamable HTTP. Required for `image` servers with `transport: stdio`;
    /// with it, `package` servers use it too instead of fetching a bridge from npm or PyPI
    /// at every start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_image: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageRuntimeImages {
    #[serde(default = "default_npx_image")]
    pub npx: String,
    #[serde(default = "default_uvx_image")]
    pub uvx: String,
}

impl Default for PackageRuntimeImages {
    fn default() -> Self {
        PackageRuntimeImages {
            npx: default_npx_image(),
            uvx: default_uvx_image(),
        }
    }
}

fn default_npx_image() -> String {
    "docker.io/library/node:22-bookworm-slim".to_owned()
}

fn default_uvx_image() -> String {
    "ghcr.io/astral-sh/uv:python3.12-bookworm-slim".to_owned()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceDefaults {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

/// How containers' images are pulled. By the time a webhook sees a pod, the API server has
/// already defaulted `imagePullPolicy` (`Always` for `:latest` or no tag, `IfNotPresent`
/// otherwise), so only `Never` is surely the author's own choice: it is never a default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ImagePullPolicy {
    /// `Always` on every container: a private image cached on the node is never run by a pod
    /// without pull credentials. Breaks images loaded into kind or minikube.
    Always,
    /// `Always`, except on a container that says `Never` (an image loaded onto the node).
    AlwaysExceptNever,
    /// Unchanged.
    #[default]
    Leave,
}

impl ImagePullPolicy {
    /// The `imagePullPolicy` a container that has `current` is given, if it changes.
    pub fn wanted(self, current: Option<&str>) -> Option<&'static str> {
        let wanted = match (self, current) {
            (ImagePullPolicy::Leave, _) => return None,
            (ImagePullPolicy::AlwaysExceptNever, Some("Never")) => return None,
            (ImagePullPolicy::Always | ImagePullPolicy::AlwaysExceptNever, _) => "Always",
        };
        (current != Some(wanted)).then_some(wanted)
    }
}

/// What happens to the ServiceAccount token the ServiceAccount admission plugin mounts into a
/// pod that does not set `automountServiceAccountToken` itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ServiceAccountToken {
    /// `automountServiceAccountToken: false`, and the mounted token volume removed.
    Remove,
    /// Kept for a pod that names a ServiceAccount other than `default` (naming one is
    /// intent); removed as by `remove` otherwise.
    #[default]
    KeepForNamedServiceAccounts,
    /// Unchanged.
    Leave,
}

impl ServiceAccountToken {
    /// Whether the token of a pod that runs as `service_account` (its `serviceAccountName`,
    /// or the deprecated `serviceAccount`; `None` or empty: `default`) is removed.
    pub fn removes_token(self, service_account: Option<&str>) -> bool {
        match self {
            ServiceAccountToken::Remove => true,
            ServiceAccountToken::KeepForNamedServiceAccounts => {
                matches!(service_account, None | Some("" | "default"))
            }
            ServiceAccountToken::Leave => false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateSpec {
    /// Registry/repository prefixes, matched at path boundaries on the normalised reference.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    #[serde(default)]
    pub require_runtime_class: bool,
    #[serde(default)]
    pub max_resources: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    pub forbid_secret_literals: bool,
    /// Custom rules in CEL; each rule's name is its check ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<CelRule>,
    /// Values the rules read as `params` (`{}` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crd::params")]
    pub params: Option<Value>,
    /// The most work one rule may take on one object, in the units of the cost model
    /// (`cel_rules::Estimator`); a rule over it is not evaluated and is a violation.
    #[serde(default = "default_cost_limit")]
    pub cost_limit: u64,
}

impl Default for ValidateSpec {
    fn default() -> Self {
        ValidateSpec {
            allowed_registries: Vec::new(),
            require_runtime_class: false,
            max_resources: BTreeMap::new(),
            forbid_secret_literals: true,
            rules: Vec::new(),
            params: None,
            cost_limit: DEFAULT_COST_LIMIT,
        }
    }
}

fn default_cost_limit() -> u64 {
    DEFAULT_COST_LIMIT
}

fn default_true() -> bool {
    true
}
#[cfg(test)]
mod tests;
