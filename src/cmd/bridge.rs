//! `mcpguard bridge [flags] -- COMMAND [ARGS...]`: see `crate::bridge`.

use std::time::Duration;

use anyhow::Context as _;

use crate::bridge::{self, auth::BearerToken};
use crate::cmd::args::BridgeArgs;
use crate::cmd::serve::shutdown_signal;

pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let token = args
        .token_file
        .as_deref()
        .map(BearerToken::from_file)
        .transpose()?;
    if token.is_none() {
        tracing::warn!(
            "bridge: no --token-file; the endpoint answers anyone who can reach it (use a NetworkPolicy)"
        );
    }
    // Listen for SIGTERM before accepting anything, so a stop always drains.
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // Tests and wrappers read the bound address from this line (with --listen 127.0.0.1:0).
    let bound = listener.local_addr().context("no local address")?;
    println!("mcpguard bridge listening on http://{bound}{}", args.path);
    let config = bridge::Config {
        command: args.command,
        path: args.path,
        token,
        allowed_hosts: args.allowed_hosts,
        max_sessions: args.max_sessions as usize,
        max_connections: args.max_connections as usize,
        max_body_bytes: args.max_body_bytes as usize,
        max_line_bytes: args.max_line_bytes as usize,
        max_log_line_bytes: args.max_log_line_bytes as usize,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        init_timeout: Duration::from_secs(args.init_timeout_secs),
        input_timeout: Duration::from_secs(args.input_timeout_secs),
        drain_timeout: Duration::from_secs(args.drain_secs),
    };
    bridge::serve(listener, config, shutdown).await
}
