//! `mcpguard bridge`: serves a stdio MCP server over Streamable HTTP.
//!
//! # Why messages are forwarded, not re-implemented
//!
//! The bridge moves JSON-RPC messages as `serde_json::Value`s and reads only what it must
//! route: `method`, `id`, `params._meta.progressToken`, and for 2026-07-28 the fields the
//! headers mirror. Everything else (sampling, elicitation, progress, cancellation, tasks,
//! fields of protocol revisions newer than this code) passes through untouched. The Rust
//! SDK (`rmcp`) terminates the protocol: messages are parsed into its typed model and built
//! again, so anything its version does not model is lost or refused, and the bridge would
//! have to re-implement every server-to-client request as a proxy. A stdio server and its
//! HTTP client already speak MCP to each other; the bridge only carries it.
//!
//! # Child model
//!
//! - 2025-11-25 (and older handshake revisions): one child per session. A stdio connection
//!   has exactly one `initialize`, and the child's requests to the client (sampling,
//!   elicitation) must reach the client that caused them. DELETE, idle expiry and a child
//!   failure end the session; the next `initialize` starts a fresh child.
//! - 2026-07-28 (stateless): one shared child serves every stateless request. The bridge
//!   probes it with `server/discover`; a child that does not answer it (most do not yet) is
//!   initialized by the bridge once, and `server/discover` is answered from that
//!   `initialize` result. Ids and progress tokens are rewritten so clients cannot collide.
//!   What a stateful server keeps between requests is then shared by all stateless clients
//!   (logging level, resource subscriptions, anything it caches per connection), and its
//!   unattributable notifications are dropped. Its sampling and elicitation requests become
//!   input-required rounds (see [`input_rounds`]) when they can be attributed to one call.
//!   List changes concern every client alike: they go to every `subscriptions/listen`
//!   stream that asked for them.
//!
//! See the README section "mcpguard bridge" for usage.

pub mod auth;
pub mod child;
pub mod framing;
pub mod http;
pub mod input_rounds;
pub mod revision;
pub mod sessions;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::connections::{ConnectionTable, accept_until, hold_until_sent, http1, serve_admitted};

use self::child::ChildLimits;
use self::http::Bridge;
use self::input_rounds::InputRounds;
use self::sessions::{ChildConfig, Children};

/// Everything `mcpguard bridge` is configured with.
#[derive(Debug)]
pub struct Config {
    pub command: Vec<String>,
    pub path: String,
    pub token: Option<auth::BearerToken>,
    pub allowed_hosts: Vec<String>,
    pub max_sessions: usize,
    /// Open HTTP connections at once; when full, a new one takes the place of the
    /// longest-idle one, and is refused only when every one has a request in flight.
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub max_line_bytes: usize,
    pub max_log_line_bytes: usize,
    pub idle_timeout: Duration,
    pub init_timeout: Duration,
    /// How long a stateless call waits for its client's input-required retry.
    pub input_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Serves `config` on `listener` until `shutdown` resolves, then drains: no new connection
/// is accepted, requests on open ones get 503, GET streams close, in-flight requests have
/// `drain_timeout` to finish, and every child is killed. Connections are bounded as the
/// webhook's are ([`crate::connections`]), with the same 10 s limit on a request head.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bridge = Arc::new(Bridge {
        children: Children::new(
            ChildConfig {
                command: config.command.clone(),
                limits: ChildLimits {
                    max_line_bytes: config.max_line_bytes,
                    max_log_line_bytes: config.max_log_line_bytes,
                },
                init_timeout: config.init_timeout,
            },
            config.max_sessions,
            config.idle_timeout,
        ),
        token: config.token,
        allowed_hosts: config
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        draining: AtomicBool::new(false),
        rounds: InputRounds::new(config.input_timeout),
    });
    let app = http::router(Arc::clone(&bridge), &config.path, config.max_body_bytes);

    let sweeper_bridge = Arc::clone(&bridge);
    let sweep_every = (config.idle_timeout.min(config.input_timeout) / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        loop {
            tick.tick().await;
            sweeper_bridge.children.sweep_idle();
            sweeper_bridge.rounds.sweep();
        }
    });

    tracing::info!(command = ?config.command, path = %config.path, "bridge serving");
    let connections = ConnectionTable::new(config.max_connections);
    let http = http1();
    let open = accept_until(
        listener,
        &connections,
        shutdown,
        |tcp, peer, place, closing| {
            let app = app.clone();
            let http = http.clone();
            async move {
                let place = Arc::new(place);
                let counted = Arc::clone(&place);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let in_flight = counted.request_started();
                    let app = app.clone();
                    async move {
                        let response = app
                            .oneshot(request)
                            .await
                            .unwrap_or_else(|never| match never {});
                        Ok::<_, Infallible>(hold_until_sent(response, in_flight))
                    }
                });
                serve_admitted(TokioIo::new(tcp), peer, &place, closing, &http, service).await;
            }
        },
    )
    .await;
    tracing::info!(
        deadline_s = config.drain_timeout.as_secs(),
        "bridge draining: no new requests, in-flight ones may finish"
    );
    bridge.draining.store(true, Ordering::Relaxed);
    bridge.children.close_streams();
    bridge.rounds.clear();
    if open.close(config.drain_timeout).await {
        tracing::info!("bridge drained");
    } else {
        tracing::warn!("drain deadline passed; ending the requests still in flight");
    }
    sweeper.abort();
    bridge.children.kill_all().await;
    Ok(())
}
