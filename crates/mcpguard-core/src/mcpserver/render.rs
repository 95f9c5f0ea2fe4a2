//! The pure render: an MCPServer, the policy and what is known of the Secrets it names, in;
//! the Deployment, Service and NetworkPolicy it owns, out. The pod template goes through the
//! same mutation and checks as any pod, so a rendered Deployment is compliant by construction,
//! and a server whose pods would be denied renders nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube_core::ResourceExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::crd::{HttpProbe, MCPServer, PackageRuntime, Transport};
use crate::egress::{EgressProfile, public_except};
use crate::engine::{self, Context};
use crate::policy::Mode;
use crate::violation::violation_summary;

pub const CONTAINER_NAME: &str = "mcp";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "mcpguard";
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Hash of the referenced Secrets' uid and resourceVersion (never their contents): a changed
/// Secret changes the pod template, which rolls the pods.
pub const SECRETS_HASH_ANNOTATION: &str = "mcpguard.dev/secrets-hash";
pub const FILES_ROOT: &str = "/files";
/// Hash of the referenced ConfigMaps' uid and resourceVersion: a changed ConfigMap rolls the
/// pods, as a changed Secret does.
pub const CONFIG_HASH_ANNOTATION: &str = "mcpguard.dev/config-hash";
pub const CONFIG_ROOT: &str = "/config";
/// Where a package cache claim is mounted, and its volume's name.
pub const CACHE_ROOT: &str = "/cache";
pub const CACHE_VOLUME: &str = "package-cache";
/// Longest probe path accepted: a path, not a payload.
const MAX_PROBE_PATH: usize = 1024;
/// The most replicas an MCPServer (or its autoscaler) may ask for.
pub const MAX_REPLICAS: i32 = 1000;
/// The stdio→HTTP bridges, pinned: what runs in front of every package server must not
/// change under a running cluster because a new version was published (both versions'
/// flags checked against their published packages).
pub const SUPERGATEWAY: &str = "supergateway@4.0.0";
pub const MCP_PROXY: &str = "mcp-proxy@0.13.0";
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The init container that copies mcpguard's binary into the pod, the volume it lands in,
/// and the binary's path there: names the controller keeps for itself.
pub const BRIDGE_INIT_CONTAINER: &str = "mcpguard-bridge";
pub const BRIDGE_VOLUME: &str = "mcpguard-bridge";
pub const BRIDGE_DIR: &str = "/mcpguard-bridge";
/// The mcpguard image's own executable (its entrypoint).
const BRIDGE_IMAGE_EXECUTABLE: &str = "/mcpguard";

/// A Secret the server references, as found in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretVersion {
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub deployment: Value,
    pub service: Value,
    pub network_policy: Option<Value>,
    /// For more than one replica (or an autoscaler that may make more): at most one pod
    /// down at a time during voluntary disruptions (node drains).
    pub pod_disruption_budget: Option<Value>,
    /// The HorizontalPodAutoscaler of `spec.autoscaling`.
    pub autoscaler: Option<Value>,
    pub url: String,
    /// Warnings of warn/audit mode violations the template still has.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The spec cannot describe a working server (condition Ready=False, reason InvalidSpec).
    #[error("{0}")]
    Invalid(String),
    /// The pods would be denied by the policy (condition PolicyCompliant=False).
    #[error("{0}")]
    Denied(String),
    /// A network extra the policy does not allow (condition PolicyCompliant=False).
    #[error("{0}")]
    PeerNotAllowed(String),
    /// More egress than the policy allows, or a profile the server cannot start under
    /// (condition PolicyCompliant=False).
    #[error("{0}")]
    EgressNotAllowed(String),
}

/// Secrets the server names, with the keys it reads (`None` = the whole Secret).
pub fn referenced_secrets(server: &MCPServer) -> Vec<(String, Option<String>)> {
    let spec = &server.spec;
    let mut refs: Vec<(String, Option<String>)> = spec
        .secret_env
        .iter()
        .map(|e| {
            (
                e.secret_key_ref.name.clone(),
                Some(e.secret_key_ref.key.clone()),
            )
        })
        .collect();
    refs.extend(
        spec.env_from
            .iter()
            .map(|e| (e.secret_ref.name.clone(), None)),
    );
    refs.extend(spec.files.iter().map(|f| (f.secret_ref.name.clone(), None)));
    refs
}

/// What is missing among the referenced Secrets and keys, in words for a condition.
pub fn missing_secrets(server: &MCPServer, found: &[SecretVersion]) -> Vec<String> {
    let mut missing = Vec::new();
    for (name, key) in referenced_secrets(server) {
        let described = match (found.iter().find(|s| s.name == name), &key) {
            (None, _) => format!("Secret {name:?} not found"),
            (Some(secret), Some(key)) if !secret.keys.contains(key) => {
                format!("Secret {name:?} has no key {key:?}")
            }
            _ => continue,
        };
        if !missing.contains(&described) {
            missing.push(described);
        }
    }
    missing
}

/// ConfigMaps the server names.
pub fn referenced_config_maps(server: &MCPServer) -> Vec<String> {
    let mut names: Vec<String> = server
        .spec
        .config
        .iter()
        .map(|c| c.config_map_ref.name.clone())
        .collect();
    names.dedup();
    names
}

/// What is missing among the referenced ConfigMaps, in words for a condition.
pub fn missing_config_maps(server: &MCPServer, found: &[SecretVersion]) -> Vec<String> {
    referenced_config_maps(server)
        .into_iter()
        .filter(|name| !found.iter().any(|c| &c.name == name))
        .map(|name| format!("ConfigMap {name:?} not found"))
        .collect()
}

/// Stable over the order Secrets are listed in; changes when any of them changes.
pub fn secrets_hash(secrets: &[SecretVersion]) -> String {
    let mut entries: Vec<String> = secrets
        .iter()
        .map(|s| format!("{}/{}/{}", s.name, s.uid, s.resource_version))
        .collect();
    entries.sort();
    entries.dedup();
    let digest = Sha256::digest(entries.join("\n").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

pub fn service_url(server: &MCPServer) -> String {
    let namespace = server.namespace().unwrap_or_default();
    format!("http://{}.{namespace}.svc.cluster.local", server.name_any())
}

fn selector(server: &MCPServer) -> Value {
    json!({NAME_LABEL: server.name_any(), MANAGED_BY_LABEL: MANAGED_BY})
}

/// Owned objects' metadata. Offline (`mcpguard render`) the server has no uid yet, and an
/// owner reference without one is refused by the API server, so none is written then.
fn metadata(server: &MCPServer) -> Value {
    let mut metadata = json!({
        "name": server.name_any(),
        "namespace": server.namespace().unwrap_or_default(),
        "labels": selector(server),
    });
    if let Some(uid) = server.uid().filter(|uid| !uid.is_empty()) {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "mcpguard.dev/v1alpha1",
            "kind": "MCPServer",
            "name": server.name_any(),
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    metadata
}

/// Renders every object the server owns.
pub fn render(
    server: &MCPServer,
    context: Context<'_>,
    secrets: &[SecretVersion],
    config_maps: &[SecretVersion],
) -> Result<Rendered, RenderError> {
    let spec = &server.spec;
    let policy = context.policy;
    let name = server.name_any();
    let namespace = server.namespace().unwrap_or_default();
    if !(1..=65535).contains(&spec.port) {
        return Err(RenderError::Invalid(format!(
            "port {} is not a TCP port",
            spec.port
        )));
    }
    if !(0..=MAX_REPLICAS).contains(&spec.replicas) {
        return Err(RenderError::Invalid(format!(
            "replicas {} is not between 0 and {MAX_REPLICAS}",
            spec.replicas
        )));
    }
    let autoscaler = autoscaler(server)?;
    let template = pod_template(server, context, secrets, config_maps)?;
    let (hardened, _) = engine::pod_of_workload(&template, context)
        .map_err(|e| RenderError::Denied(e.to_string()))?;
    let outcome = engine::judge_with_exceptions(&hardened, &namespace, &name, "", &[], context)
        .map_err(RenderError::Invalid)?;
    let mut warnings = Vec::new();
    if !outcome.violations.is_empty() {
        let summary = violation_summary(&policy.name, &outcome.violations);
        match policy.mode_for(&namespace) {
            Mode::Enforce => {
                return Err(RenderError::Denied(format!(
                    "the pods of MCPServer {name:?} would be rejected: {summary}"
                )));
            }
            Mode::Warn | Mode::Audit => warnings.push(summary),
        }
    }
    let network_policy = if policy.spec.network.enabled {
        Some(network_policy(server, context)?)
    } else {
        None
    };
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(server),
        "spec": {
            "selector": {"matchLabels": selector(server)},
            "template": hardened,
        },
    });
    // With an autoscaler the replicas are the HPA's: applying spec.replicas would fight it.
    if autoscaler.is_none() {
        deployment["spec"]["replicas"] = json!(spec.replicas);
    }
    let several = most_replicas(server) > 1;
    let mut service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(server),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(server),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    });
    if several {
        // A 2025-11-25 session (Mcp-Session-Id), an SSE stream and a bridged stdio server
        // live in one pod: keep each client on the replica it started with.
        service["spec"]["sessionAffinity"] = json!("ClientIP");
    }
    let pod_disruption_budget = several.then(|| {
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(server),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector(server)},
            },
        })
    });
    Ok(Rendered {
        deployment,
        service,
        network_policy,
        pod_disruption_budget,
        autoscaler,
        url: service_url(server),
        warnings,
    })
}

/// How the server's container starts.
struct Launch {
    image: String,
    command: Vec<String>,
    args: Vec<String>,
    /// Behind mcpguard's own bridge: the pod needs the init container that copies it in.
    bridged: bool,
}

/// The built-in bridge's command line in front of `server` (the stdio program and its
/// arguments): no shell, so no word is ever re-split or expanded.
fn bridge_command(port: i32, server: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut command = vec![
        format!("{BRIDGE_DIR}/mcpguard"),
        "bridge".to_owned(),
        "--listen".to_owned(),
        format!("0.0.0.0:{port}"),
        "--".to_owned(),
    ];
    command.extend(server);
    command
}

/// The command line: the server's own for an HTTP image; mcpguard's bridge in front of a
/// stdio image, and in front of a package when the policy names the bridge image (else the
/// pinned npm or PyPI bridge, fetched at start).
fn container_command(server: &MCPServer, context: Context<'_>) -> Result<Launch, RenderError> {
    let spec = &server.spec;
    let port = spec.port.to_string();
    let bridge_image = context.policy.spec.mutate.bridge_image.as_ref();
    match (&spec.image, &spec.package) {
        (Some(_), Some(_)) => Err(RenderError::Invalid(
            "set either image or package, not both".into(),
        )),
        (None, None) => Err(RenderError::Invalid("set image or package".into())),
        (Some(image), None) if spec.transport == Transport::Stdio => {
            if bridge_image.is_none() {
                return Err(RenderError::Invalid(
                    "an image with transport stdio runs behind mcpguard's bridge, which needs the policy's spec.mutate.bridgeImage (mcpguard's image, pinned by digest)".into(),
                ));
            }
            if spec.command.is_empty() {
                return Err(RenderError::Invalid(
                    "an image with transport stdio needs command: the bridge starts it, so the image's entrypoint is not used".into(),
                ));
            }
            Ok(Launch {
                image: image.clone(),
                command: bridge_command(spec.port, spec.command.iter().cloned()),
                args: spec.args.clone(),
                bridged: true,
            })
        }
        (Some(image), None) => Ok(Launch {
            image: image.clone(),
            command: spec.command.clone(),
            args: spec.args.clone(),
            bridged: false,
        }),
        (None, Some(package)) => {
            let images = &context.policy.spec.mutate.package_runtime_images;
            let (runtime_image, runner, reference) = match package.runtime {
                PackageRuntime::Npx => (
                    images.npx.clone(),
                    vec!["npx".to_owned(), "-y".to_owned()],
                    match &package.version {
                        Some(version) => format!("{}@{version}", package.name),
                        None => package.name.clone(),
                    },
                ),
                PackageRuntime::Uvx => (
                    images.uvx.clone(),
                    vec!["uvx".to_owned()],
                    match &package.version {
                        Some(version) => format!("{}=={version}", package.name),
                        None => package.name.clone(),
                    },
                ),
            };
            // The built-in bridge serves Streamable HTTP; the deprecated HTTP+SSE transport
            // stays on the pinned supergateway.
            if bridge_image.is_some() && spec.transport != Transport::Sse {
                let server = runner.into_iter().chain([reference]);
                return Ok(Launch {
                    image: runtime_image,
                    command: bridge_command(spec.port, server),
                    args: spec.args.clone(),
                    bridged: true,
                });
            }
            let output = match spec.transport {
                Transport::Sse => "sse",
                Transport::StreamableHttp | Transport::Stdio => "streamableHttp",
            };
            let quoted_args: Vec<String> = spec.args.iter().map(|a| shell_quote(a)).collect();
            match package.runtime {
                PackageRuntime::Npx => {
                    let stdio = std::iter::once(format!("npx -y {}", shell_quote(&reference)))
                        .chain(quoted_args)
                        .collect::<Vec<_>>()
                        .join(" ");
                    Ok(Launch {
                        image: runtime_image,
                        command: vec!["npx".into()],
                        args: vec![
                            "-y".into(),
                            SUPERGATEWAY.into(),
                            "--stdio".into(),
                            stdio,
                            "--outputTransport".into(),
                            output.into(),
                            "--port".into(),
                            port,
                        ],
                        bridged: false,
                    })
                }
                PackageRuntime::Uvx => {
                    let mut args = vec![
                        MCP_PROXY.into(),
                        "--host=0.0.0.0".into(),
                        format!("--port={port}"),
                        "--pass-environment".into(),
                        // Everything after `--` is the server's command line, not mcp-proxy's.
                        "--".into(),
                        "uvx".into(),
                        reference,
                    ];
                    args.extend(spec.args.iter().cloned());
                    Ok(Launch {
                        image: runtime_image,
                        command: vec!["uvx".into()],
                        args,
                        bridged: false,
                    })
                }
            }
        }
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@/._-=:+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn pod_template(
    server: &MCPServer,
    context: Context<'_>,
    secrets: &[SecretVersion],
    config_maps: &[SecretVersion],
) -> Result<Value, RenderError> {
    let spec = &server.spec;
    let Launch {
        image,
        command,
        args,
        bridged,
    } = container_command(server, context)?;
    let mut env: Vec<Value> = spec
        .env
        .iter()
        .map(|e| json!({"name": e.name, "value": e.value}))
        .collect();
    env.extend(spec.secret_env.iter().map(|e| {
        json!({"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secret_key_ref.name, "key": e.secret_key_ref.key}}})
    }));
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if spec.package.is_some() {
        // npx and uvx download and cache into HOME; give them a writable one.
        env.extend([
            json!({"name": "HOME", "value": "/tmp"}),
            json!({"name": "NPM_CONFIG_CACHE", "value": "/tmp/.npm"}),
            json!({"name": "UV_CACHE_DIR", "value": "/tmp/.uv-cache"}),
        ]);
        volumes.push(json!({"name": "tmp", "emptyDir": {}}));
        mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    }
    if let Some(package) = &spec.package
        && let Some(cache) = &package.cache
    {
        // The cache replaces the /tmp one; offline, the registry is never asked.
        let settings: [(&str, String); 2] = match package.runtime {
            PackageRuntime::Npx => [
                ("NPM_CONFIG_CACHE", format!("{CACHE_ROOT}/npm")),
                if cache.offline {
                    ("NPM_CONFIG_OFFLINE", "true".to_owned())
                } else {
                    ("NPM_CONFIG_PREFER_OFFLINE", "true".to_owned())
                },
            ],
            PackageRuntime::Uvx => [
                ("UV_CACHE_DIR", format!("{CACHE_ROOT}/uv")),
                (
                    "UV_OFFLINE",
                    if cache.offline { "1" } else { "0" }.to_owned(),
                ),
            ],
        };
        for (name, value) in settings {
            match env.iter_mut().find(|e| e["name"] == name) {
                Some(existing) => existing["value"] = json!(value),
                None => env.push(json!({"name": name, "value": value})),
            }
        }
        volumes.push(json!({"name": CACHE_VOLUME,
            "persistentVolumeClaim": {"claimName": cache.persistent_volume_claim.claim_name}}));
        mounts.push(json!({"name": CACHE_VOLUME, "mountPath": CACHE_ROOT}));
    }
    let mut mounted: Vec<&str> = Vec::new();
    for files in &spec.files {
        // One mount per Secret: the API server refuses two mounts at one path.
        if mounted.contains(&files.secret_ref.name.as_str()) {
            continue;
        }
        let volume = format!("files-{}", mounted.len());
        mounted.push(&files.secret_ref.name);
        volumes.push(json!({"name": volume, "secret": {"secretName": files.secret_ref.name}}));
        mounts.push(json!({
            "name": volume,
            "mountPath": format!("{FILES_ROOT}/{}", files.secret_ref.name),
            "readOnly": true,
        }));
    }
    for (index, name) in referenced_config_maps(server).iter().enumerate() {
        let volume = format!("config-{index}");
        volumes.push(json!({"name": volume, "configMap": {"name": name}}));
        mounts.push(json!({
            "name": volume,
            "mountPath": format!("{CONFIG_ROOT}/{name}"),
            "readOnly": true,
        }));
    }
    let mut init_containers = Vec::new();
    if bridged {
        // The mcpguard image has no shell or cp, and the server image may be musl or
        // distroless: the static binary copies itself into a volume the server mounts.
        let bridge_image = context
            .policy
            .spec
            .mutate
            .bridge_image
            .clone()
            .unwrap_or_default();
        volumes.push(json!({"name": BRIDGE_VOLUME, "emptyDir": {}}));
        mounts.push(json!({"name": BRIDGE_VOLUME, "mountPath": BRIDGE_DIR, "readOnly": true}));
        init_containers.push(json!({
            "name": BRIDGE_INIT_CONTAINER,
            "image": bridge_image,
            "command": [BRIDGE_IMAGE_EXECUTABLE, "copy-self", "--force", format!("{BRIDGE_DIR}/mcpguard")],
            "volumeMounts": [{"name": BRIDGE_VOLUME, "mountPath": BRIDGE_DIR}],
        }));
    }
    let mut container = Map::new();
    container.insert("name".into(), json!(CONTAINER_NAME));
    container.insert("image".into(), json!(image));
    if !command.is_empty() {
        container.insert("command".into(), json!(command));
    }
    if !args.is_empty() {
        container.insert("args".into(), json!(args));
    }
    container.insert(
        "ports".into(),
        json!([{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]),
    );
    if !env.is_empty() {
        container.insert("env".into(), Value::Array(env));
    }
    if !spec.env_from.is_empty() {
        let env_from: Vec<Value> = spec
            .env_from
            .iter()
            .map(|e| json!({"secretRef": {"name": e.secret_ref.name}}))
            .collect();
        container.insert("envFrom".into(), Value::Array(env_from));
    }
    if !mounts.is_empty() {
        container.insert("volumeMounts".into(), Value::Array(mounts));
    }
    let probes = spec.probes.clone().unwrap_or_default();
    let readiness = match &probes.readiness {
        Some(probe) => http_probe(probe, "probes.readiness")?,
        None => json!({"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 3}),
    };
    container.insert("readinessProbe".into(), readiness);
    if let Some(probe) = &probes.liveness {
        container.insert(
            "livenessProbe".into(),
            http_probe(probe, "probes.liveness")?,
        );
    }
    if let Some(resources) = &spec.resources {
        let resources =
            serde_json::to_value(resources).map_err(|e| RenderError::Invalid(e.to_string()))?;
        container.insert("resources".into(), resources);
    }
    let mut pod_spec = Map::new();
    if !init_containers.is_empty() {
        pod_spec.insert("initContainers".into(), Value::Array(init_containers));
    }
    pod_spec.insert("containers".into(), json!([Value::Object(container)]));
    if most_replicas(server) > 1 {
        // Replicas on different nodes where the scheduler can: one node's loss is not the
        // server's. ScheduleAnyway: a one-node cluster still runs every replica.
        pod_spec.insert(
            "topologySpreadConstraints".into(),
            json!([{
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(server)},
            }]),
        );
    }
    if !volumes.is_empty() {
        pod_spec.insert("volumes".into(), Value::Array(volumes));
    }
    let mut annotations = BTreeMap::new();
    if !referenced_secrets(server).is_empty() {
        annotations.insert(SECRETS_HASH_ANNOTATION.to_owned(), secrets_hash(secrets));
    }
    if !referenced_config_maps(server).is_empty() {
        annotations.insert(CONFIG_HASH_ANNOTATION.to_owned(), secrets_hash(config_maps));
    }
    let mut template = json!({
        "metadata": {"labels": selector(server), "annotations": annotations},
        "spec": pod_spec,
    });
    if let Some(overrides) = &spec.pod_template_spec {
        overrides::apply(&mut template, overrides)?;
    }
    Ok(template)
}

/// The most replicas the server can run: its own, or its autoscaler's maximum.
fn most_replicas(server: &MCPServer) -> i32 {
    match &server.spec.autoscaling {
        Some(autoscaling) => autoscaling.max_replicas,
        None => server.spec.replicas,
    }
}

fn http_probe(probe: &HttpProbe, field: &str) -> Result<Value, RenderError> {
    let path_ok = probe.path.starts_with('/')
        && probe.path.len() <= MAX_PROBE_PATH
        && probe.path.bytes().all(|b| b.is_ascii_graphic());
    if !path_ok {
        return Err(RenderError::Invalid(format!(
            "{field}.path must be an absolute URL path of at most {MAX_PROBE_PATH} characters without spaces (such as /health)"
        )));
    }
    let mut out = json!({"httpGet": {"path": probe.path, "port": "http"}});
    for (name, value, bounds) in [
        ("initialDelaySeconds", probe.initial_delay_seconds, 0..=3600),
        ("periodSeconds", probe.period_seconds, 1..=3600),
        ("failureThreshold", probe.failure_threshold, 1..=100),
    ] {
        if let Some(value) = value {
            if !bounds.contains(&value) {
                return Err(RenderError::Invalid(format!(
                    "{field}.{name} {value} is not between {} and {}",
                    bounds.start(),
                    bounds.end()
                )));
            }
            out[name] = json!(value);
        }
    }
    Ok(out)
}

fn autoscaler(server: &MCPServer) -> Result<Option<Value>, RenderError> {
    let Some(autoscaling) = &server.spec.autoscaling else {
        return Ok(None);
    };
    let min = autoscaling.min_replicas.unwrap_or(1);
    let max = autoscaling.max_replicas;
    if !(1..=max).contains(&min) || max > MAX_REPLICAS {
        return Err(RenderError::Invalid(format!(
            "autoscaling needs 1 <= minReplicas ({min}) <= maxReplicas ({max}) <= {MAX_REPLICAS}"
        )));
    }
    let target = autoscaling.target_cpu_utilization_percentage.unwrap_or(80);
    if !(1..=1000).contains(&target) {
        return Err(RenderError::Invalid(format!(
            "autoscaling.targetCPUUtilizationPercentage {target} is not between 1 and 1000"
        )));
    }
    Ok(Some(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(server),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": server.name_any()},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }],
        },
    })))
}

/// The scale subresource's selector: the pods' labels as `kubectl get -l` writes them.
pub fn selector_string(server: &MCPServer) -> String {
    format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{NAME_LABEL}={}",
        server.name_any()
    )
}

fn normalised_peer(peer: &Value) -> Option<Value> {
    serde_json::from_value::<NetworkPolicyPeer>(peer.clone())
        .ok()
        .and_then(|p| serde_json::to_value(p).ok())
}

fn network_policy(server: &MCPServer, context: Context<'_>) -> Result<Value, RenderError> {
    let network = &context.policy.spec.network;
    let extras = server.spec.network.clone().unwrap_or_default();
    let allowed: Vec<Value> = network
        .allowed_extra_peers
        .iter()
        .filter_map(normalised_peer)
        .collect();
    let check = |direction: &str, peers: &[NetworkPolicyPeer]| -> Result<Vec<Value>, RenderError> {
        peers
            .iter()
            .map(|peer| {
                let value = serde_json::to_value(peer).map_err(|e| RenderError::Invalid(e.to_string()))?;
                if allowed.contains(&value) {
                    Ok(value)
                } else {
                    Err(RenderError::PeerNotAllowed(format!(
                        "network.{direction} peer {value} is not among the policy's spec.network.allowedExtraPeers"
                    )))
                }
            })
            .collect()
    };
    let ingress_extra = check("ingressFrom", &extras.ingress_from)?;
    let egress_extra = check("egressTo", &extras.egress_to)?;
    let mut clients = vec![json!({"namespaceSelector": {"matchExpressions": [
        {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": network.client_namespaces}
    ]}})];
    clients.extend(ingress_extra);
    let dns_peers = if network.dns_peers.is_empty() {
        vec![json!({
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        })]
    } else {
        network.dns_peers.clone()
    };
    let profile = egress_profile(server, &network.gateway_peers, &egress_extra, context)?;
    let mut egress = Vec::new();
    if profile >= EgressProfile::DnsOnly {
        egress.push(json!({
            "to": dns_peers,
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }));
        if !network.gateway_peers.is_empty() {
            egress.push(json!({"to": network.gateway_peers}));
        }
    }
    if profile == EgressProfile::Public {
        egress.push(json!({"to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": public_except(false)}},
            {"ipBlock": {"cidr": "::/0", "except": public_except(true)}},
        ]}));
    }
    if !egress_extra.is_empty() {
        egress.push(json!({"to": egress_extra}));
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(server),
        "spec": {
            "podSelector": {"matchLabels": selector(server)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": clients,
                "ports": [{"protocol": "TCP", "port": server.spec.port}],
            }],
            "egress": egress,
        },
    }))
}

/// The server's egress profile (its own, or the policy's default), refused when it is more
/// than the policy's most, or when a package server could not fetch its package under it.
fn egress_profile(
    server: &MCPServer,
    gateway_peers: &[Value],
    egress_extra: &[Value],
    context: Context<'_>,
) -> Result<EgressProfile, RenderError> {
    let network = &context.policy.spec.network;
    let asked = server.spec.network.as_ref().and_then(|n| n.egress);
    let profile = asked.unwrap_or(network.default_egress);
    let source = if asked.is_some() {
        "network.egress"
    } else {
        "the policy's spec.network.defaultEgress"
    };
    if profile > network.max_egress {
        return Err(RenderError::EgressNotAllowed(format!(
            "{source} is {}, more than the policy's spec.network.maxEgress ({})",
            profile.as_str(),
            network.max_egress.as_str()
        )));
    }
    let Some(package) = &server.spec.package else {
        return Ok(profile);
    };
    if package.cache.as_ref().is_some_and(|cache| cache.offline) {
        // Everything comes from the cache: no registry to reach.
        return Ok(profile);
    }
    let fetcher = match package.runtime {
        PackageRuntime::Npx => "npx",
        PackageRuntime::Uvx => "uvx",
    };
    match profile {
        EgressProfile::None => Err(RenderError::EgressNotAllowed(format!(
            "{source} is none, but a {fetcher} package server fetches its package from a registry \
             at start, which needs at least DNS: use dns-only with a registry mirror or proxy \
             (network.egressTo, or the policy's spec.network.gatewayPeers), or an image with \
             the package built in"
        ))),
        EgressProfile::DnsOnly if gateway_peers.is_empty() && egress_extra.is_empty() => {
            Err(RenderError::EgressNotAllowed(format!(
                "{source} is dns-only, but a {fetcher} package server fetches its package from a \
                 registry at start, and dns-only reaches no registry here: name a registry mirror \
                 or proxy in network.egressTo (the policy must list it in \
                 spec.network.allowedExtraPeers) or in the policy's spec.network.gatewayPeers"
            )))
        }
        _ => Ok(profile),
    }
}

pub mod overrides;
#[cfg(test)]
mod tests;
