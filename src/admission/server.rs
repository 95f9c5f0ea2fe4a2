//! The HTTPS accept loop: rustls handshakes, HTTP/1.1 keep-alive connections, read
//! timeouts, and a shutdown that lets in-flight reviews finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::routes::AppState;

/// A client that has not finished its TLS handshake in this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent complete request headers in this long is dropped
/// (slowloris); kube-apiserver's own webhook timeout is at most 30 s.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections served at once unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// After the listener closes, how long requests already on their way are still read.
pub const LAST_REQUEST_GRACE: Duration = Duration::from_secs(1);
/// Upper bound on waiting for in-flight requests once shutdown starts.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(25);

/// Adds `Connection: close` to every response once shutdown has begun, so that clients
/// holding kept-alive connections (kube-apiserver always does) reconnect to another replica.
pub fn close_connections_when_draining(state: Arc<AppState>, router: Router) -> Router {
    router.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let draining = state
                .readiness
                .shutting_down
                .load(std::sync::atomic::Ordering::Acquire);
            async move {
                if draining {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        },
    ))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then stops accepting
/// and waits (bounded) for open connections to finish their current request.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_tls_with_limits(listener, tls, router, shutdown, DEFAULT_MAX_CONNECTIONS).await;
}

/// [`serve_tls`] with at most `max_connections` open at once: a connection beyond it is
/// accepted and closed at once, a clean refusal that costs no handshake and no memory.
pub async fn serve_tls_with_limits(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    max_connections: usize,
) {
    let connection_slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually EMFILE under a connection flood: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = connection_slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_connections, "connection limit reached; refusing");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let http = http.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let tls_stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let connection = http.serve_connection(TokioIo::new(tls_stream), service);
            if let Err(err) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // A client may have connected just before the listener closed, its request still on
    // the wire; closing "idle" connections at once would cut it. Serve what arrives for a
    // moment (every response now says `Connection: close`), then close what is left.
    tokio::time::sleep(LAST_REQUEST_GRACE).await;
    if tokio::time::timeout(IN_FLIGHT_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}
