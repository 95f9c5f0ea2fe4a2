//! The HTTPS accept loop: rustls handshakes, HTTP/1.1 keep-alive connections, read
//! timeouts, a connection table that makes room by closing the longest-idle connection
//! (see [`super::connections`]), optional client-certificate authentication, and a
//! shutdown that lets in-flight reviews finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::routes::AppState;
use crate::connections::{
    ConnectionTable, OpenConnection, accept_until, hold_until_sent, http1, serve_admitted,
};

/// A client that has not finished its TLS handshake in this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
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

/// [`serve_tls`] with at most `max_connections` open at once (see [`ServeOptions`]).
pub async fn serve_tls_with_limits(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    max_connections: usize,
) {
    let options = ServeOptions {
        connections: ConnectionTable::new(max_connections),
        client_certificates: ClientCertificates::NotRequired,
    };
    serve_tls_with(listener, tls, router, shutdown, options).await;
}

/// What the accept loop enforces besides TLS itself.
#[derive(Debug)]
pub struct ServeOptions {
    /// At most this many connections are open at once. When full, a new connection takes
    /// the place of the longest-idle one, which is closed; when every one has a request in
    /// flight, the new one is accepted and closed at once (no handshake, no memory).
    pub connections: Arc<ConnectionTable>,
    pub client_certificates: ClientCertificates,
}

/// Whether a request must come over a connection with a verified client certificate.
#[derive(Clone, Debug)]
pub enum ClientCertificates {
    /// Nobody is asked for one (no `--client-ca`).
    NotRequired,
    /// A request on a connection that presented no certificate gets a 401 `Status`, counted
    /// in `refused`. The TLS configuration verifies any certificate presented against the
    /// client CA (`tls::server_config_verifying_clients`), so one from another CA fails
    /// the handshake and never gets here.
    Required { refused: Counter },
}

/// [`serve_tls`] with `options`.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    let acceptor = TlsAcceptor::from(tls);
    let http = http1();
    let open = accept_until(
        listener,
        &options.connections,
        shutdown,
        |tcp, peer, place, closing| {
            let connection = Connection {
                peer,
                place: Arc::new(place),
                closing,
                client_certificates: options.client_certificates.clone(),
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            let http = http.clone();
            connection.serve(tcp, acceptor, http, router)
        },
    )
    .await;
    // A client may have connected just before the listener closed, its request still on
    // the wire; closing "idle" connections at once would cut it. Serve what arrives for a
    // moment (every response now says `Connection: close`), then close what is left.
    tokio::time::sleep(LAST_REQUEST_GRACE).await;
    if !open.close(IN_FLIGHT_GRACE).await {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

/// One accepted connection and what it needs to serve its requests.
struct Connection {
    peer: SocketAddr,
    place: Arc<OpenConnection>,
    closing: watch::Receiver<bool>,
    client_certificates: ClientCertificates,
}

impl Connection {
    async fn serve(
        self,
        tcp: TcpStream,
        acceptor: TlsAcceptor,
        http: hyper::server::conn::http1::Builder,
        router: Router,
    ) {
        let peer = self.peer;
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
        let tls_stream = tokio::select! {
            biased;
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            () = self.place.evicted() => {
                tracing::debug!(%peer, "closed during its TLS handshake to make room for a new connection");
                return;
            }
        };
        let has_client_certificate = tls_stream
            .get_ref()
            .1
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty());
        let refused = match &self.client_certificates {
            ClientCertificates::Required { refused } if !has_client_certificate => {
                Some(refused.clone())
            }
            _ => None,
        };
        let place = self.place.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = place.request_started();
            let router = router.clone();
            let refused = refused.clone();
            async move {
                let response = match refused {
                    Some(refused) => {
                        refused.inc();
                        tracing::debug!(%peer, "request without a client certificate refused");
                        super::routes::error_response(
                            StatusCode::UNAUTHORIZED,
                            "Unauthorized",
                            "a client certificate signed by the webhook's client CA (--client-ca) is required",
                        )
                    }
                    None => router
                        .oneshot(request)
                        .await
                        .unwrap_or_else(|never| match never {}),
                };
                Ok::<_, Infallible>(hold_until_sent(response, in_flight))
            }
        });
        serve_admitted(
            TokioIo::new(tls_stream),
            peer,
            &self.place,
            self.closing,
            &http,
            service,
        )
        .await;
    }
}
