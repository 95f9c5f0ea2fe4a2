//! `mcpguard render`: the objects the reconciler would write, offline.

use kube::ResourceExt;
use serde_json::Value;

use super::load_policy;
use crate::cmd::args::RenderArgs;
use mcpguard_core::engine::Context;
use mcpguard_core::mcpserver::crd::MCPServer;
use mcpguard_core::mcpserver::render::{self, RenderError};
use mcpguard_core::runtime_class::StaticRuntimeClasses;

pub fn render(args: &RenderArgs) -> u8 {
    match run(args) {
        Ok(output) => {
            print!("{}", output.yaml);
            for failure in &output.failures {
                eprintln!("mcpguard render: {failure}");
            }
            if output.failures.is_empty() { 0 } else { 1 }
        }
        Err(message) => {
            eprintln!("mcpguard render: {message}");
            2
        }
    }
}

pub struct RenderOutput {
    pub yaml: String,
    pub failures: Vec<String>,
}

/// Renders every MCPServer in the inputs; other objects are ignored. Secrets are taken to
/// exist (their versions are unknown offline, so the secrets hash is of their names only).
pub fn run(args: &RenderArgs) -> Result<RenderOutput, String> {
    let policy = load_policy(args.policy.policy.as_deref()).map_err(|e| e.to_string())?;
    let objects = super::check::read_objects(&args.paths)?;
    let classes = StaticRuntimeClasses::default();
    let context = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: time::OffsetDateTime::now_utc(),
    };
    let default_namespace = args
        .namespace
        .clone()
        .or_else(|| policy.spec.namespaces.first().cloned())
        .unwrap_or_else(|| "default".into());
    let mut yaml = String::new();
    let mut failures = Vec::new();
    for sourced in objects {
        if sourced.object.get("kind").and_then(Value::as_str) != Some("MCPServer") {
            continue;
        }
        let mut server: MCPServer =
            mcpguard_core::redact::decode(&sourced.object, "").map_err(|e| {
                format!(
                    "{}: document {}: not a valid MCPServer: {e}",
                    sourced.source_name, sourced.index
                )
            })?;
        if server.namespace().is_none() {
            server.metadata.namespace = Some(default_namespace.clone());
        }
        let secrets: Vec<render::SecretVersion> = render::referenced_secrets(&server)
            .into_iter()
            .map(|(name, key)| render::SecretVersion {
                name,
                uid: String::new(),
                resource_version: String::new(),
                keys: key.into_iter().collect(),
            })
            .collect();
        match render::render(&server, context, &secrets) {
            Ok(rendered) => {
                let objects = [
                    Some(rendered.deployment),
                    Some(rendered.service),
                    rendered.network_policy,
                ];
                for object in objects.into_iter().flatten() {
                    yaml.push_str("---\n");
                    yaml.push_str(&serde_saphyr::to_string(&object).map_err(|e| e.to_string())?);
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
    Ok(RenderOutput { yaml, failures })
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
