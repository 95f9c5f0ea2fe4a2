//! `mcpguard render`: the objects the reconciler would write, offline.

use kube::ResourceExt;
use serde_json::Value;

use super::inputs::{describe, read_inputs, write_stdout};
use crate::cmd::args::RenderArgs;
use mcpguard_core::engine::Context;
use mcpguard_core::mcpserver::crd::MCPServer;
use mcpguard_core::mcpserver::render::{self, RenderError};
use mcpguard_core::runtime_class::StaticRuntimeClasses;

pub fn render(args: &RenderArgs) -> u8 {
    match run(args) {
        Ok(output) => {
            // All or nothing: `render | kubectl apply -f -` must never apply half of a set
            // of servers because one document next to them was broken. Every error is said.
            let yaml = if output.errors.is_empty() {
                output.yaml.as_str()
            } else {
                ""
            };
            if let Err(message) = write_stdout(yaml) {
                eprintln!("mcpguard render: {message}");
                return 2;
            }
            for failure in output.errors.iter().chain(&output.failures) {
                eprintln!("mcpguard render: {failure}");
            }
            if !output.errors.is_empty() {
                2
            } else if !output.failures.is_empty() {
                1
            } else {
                0
            }
        }
        Err(message) => {
            eprintln!("mcpguard render: {message}");
            2
        }
    }
}

pub struct RenderOutput {
    /// The rendered objects, in the format asked for (`-o`).
    pub yaml: String,
    /// MCPServers the policy refuses (exit 1).
    pub failures: Vec<String>,
    /// Files, documents and MCPServers that cannot be read or decoded (exit 2); the others
    /// are still rendered.
    pub errors: Vec<String>,
}

/// Renders every MCPServer in the inputs; other objects are ignored. Secrets are taken to
/// exist (their versions are unknown offline, so the secrets hash is of their names only).
pub fn run(args: &RenderArgs) -> Result<RenderOutput, String> {
    let inputs = read_inputs(&args.paths);
    let policies = super::check::offline_policies(&args.policy.policy, &inputs, "render")?;
    let classes = StaticRuntimeClasses::default();
    let now = jiff::Timestamp::now();
    let default_namespace = args
        .namespace
        .clone()
        .or_else(|| policies.fallback().spec.namespaces.first().cloned())
        .unwrap_or_else(|| "default".into());
    let mut rendered_objects: Vec<Value> = Vec::new();
    let mut failures = Vec::new();
    let mut errors: Vec<String> = inputs.errors.iter().map(describe).collect();
    for sourced in inputs.objects {
        if sourced.object.get("kind").and_then(Value::as_str) != Some("MCPServer") {
            continue;
        }
        let where_ = format!("{}: document {}", sourced.source_name, sourced.index);
        // A misspelt field (`replica: 2`) would otherwise be dropped, and a different
        // server rendered than the one written.
        if let Some(Err(error)) = mcpguard_core::strict::check_manifest(&sourced.object) {
            errors.push(format!(
                "{where_}: not a valid MCPServer: {}",
                error.at_path()
            ));
            continue;
        }
        let mut server: MCPServer = match mcpguard_core::redact::decode(&sourced.object, "") {
            Ok(server) => server,
            Err(error) => {
                errors.push(format!("{where_}: not a valid MCPServer: {error}"));
                continue;
            }
        };
        if server.namespace().is_none() {
            server.metadata.namespace = Some(default_namespace.clone());
        }
        let context = Context {
            policy: policies.for_namespace(server.namespace().as_deref()),
            runtime_classes: &classes,
            now,
        };
        let secrets: Vec<render::SecretVersion> = render::referenced_secrets(&server)
            .into_iter()
            .map(|(name, key)| render::SecretVersion {
                name,
                uid: String::new(),
                resource_version: String::new(),
                keys: key.into_iter().collect(),
            })
            .collect();
        // ConfigMaps, like Secrets, are taken to exist; their versions are unknown offline.
        let config_maps: Vec<render::SecretVersion> = render::referenced_config_maps(&server)
            .into_iter()
            .map(|name| render::SecretVersion {
                name,
                uid: String::new(),
                resource_version: String::new(),
                keys: Vec::new(),
            })
            .collect();
        match render::render(&server, context, &secrets, &config_maps) {
            Ok(rendered) => {
                let objects = [
                    Some(rendered.deployment),
                    Some(rendered.service),
                    rendered.network_policy,
                    rendered.pod_disruption_budget,
                    rendered.autoscaler,
                ];
                for object in objects.into_iter().flatten() {
                    rendered_objects.push(object);
                }
                for warning in rendered.warnings {
                    eprintln!(
                        "mcpguard render: warning: MCPServer {:?}: {warning}",
                        server.name_any()
                    );
                }
            }
            Err(err) => failures.push(describe_failure(&server, &err)),
        }
    }
    let objects: Vec<&Value> = rendered_objects.iter().collect();
    Ok(RenderOutput {
        yaml: super::check::print_objects(&objects, args.output)?,
        failures,
        errors,
    })
}

fn describe_failure(server: &MCPServer, err: &RenderError) -> String {
    let kind = match err {
        RenderError::Invalid(_) => "invalid spec",
        RenderError::Denied(_) => "denied by policy",
        RenderError::PeerNotAllowed(_) => "network peer not allowed",
        RenderError::EgressNotAllowed(_) => "egress not allowed",
    };
    format!("MCPServer {:?}: {kind}: {err}", server.name_any())
}
