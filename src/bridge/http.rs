//! The HTTP surface: one MCP endpoint answering POST, GET and DELETE as the 2025-11-25
//! Streamable HTTP transport describes, and POST as 2026-07-28 does (GET and DELETE → 405
//! for that revision), chosen per request by `MCP-Protocol-Version`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::auth::BearerToken;
use super::child::{Child, RequestError, Waiter, error_response};
use super::framing::{Kind, classify};
use super::revision::{self, Era};
use super::sessions::{Children, StartError};

/// Silence on an SSE stream longer than this gets a comment line, so proxies and client
/// idle timers do not cut a stream that is merely waiting for a slow tool.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What every handler shares.
pub struct Bridge {
    pub children: Children,
    pub token: Option<BearerToken>,
    /// Lower-case `host` or `host:port` entries; empty accepts any Host (a Service name, a
    /// pod IP, a gateway's name: the bridge cannot know them in advance).
    pub allowed_hosts: Vec<String>,
    pub draining: AtomicBool,
}

pub fn router(bridge: Arc<Bridge>, path: &str, max_body_bytes: usize) -> Router {
    Router::new()
        .route(path, get(get_stream).post(post).delete(delete))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(Arc::clone(&bridge), gate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(bridge)
}

/// Draining, Host and Origin checks (DNS rebinding), then the bearer token.
async fn gate(State(bridge): State<Arc<Bridge>>, request: Request, next: Next) -> Response {
    if bridge.draining.load(Ordering::Relaxed) {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the bridge is shutting down",
        );
    }
    let headers = request.headers();
    if !bridge.allowed_hosts.is_empty() {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| host_allowed(&bridge.allowed_hosts, h)) {
            return plain(StatusCode::FORBIDDEN, "Host is not allowed");
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
            if !origin_host.is_some_and(|h| host_allowed(&bridge.allowed_hosts, h)) {
                return plain(StatusCode::FORBIDDEN, "Origin is not allowed");
            }
        }
    }
    if let Some(token) = &bridge.token {
        let offered = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !token.admits(offered) {
            let mut response = plain(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// Whether `host` (a Host header or an Origin's authority) matches an entry, with or
/// without its port.
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('/').to_ascii_lowercase();
    let without_port = match host.rsplit_once(':') {
        // "[::1]:8080" -> "[::1]"; a bare "[::1]" has no port after its bracket.
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => {
            name.to_owned()
        }
        _ => host.clone(),
    };
    allowed.iter().any(|a| *a == host || *a == without_port)
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    json_response(status, &error_response(id, code, message))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What the client's Accept header lets the bridge answer with.
#[derive(Clone, Copy)]
struct Accepts {
    json: bool,
    sse: bool,
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let mut out = Accepts {
        json: false,
        sse: false,
    };
    for value in headers.get_all(header::ACCEPT) {
        let text = value.to_str().unwrap_or("").to_ascii_lowercase();
        let any = text.contains("*/*");
        out.json |= any || text.contains("application/json");
        out.sse |= any || text.contains("text/event-stream");
    }
    out
}

fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(revision::HEADER_SESSION)
        .and_then(|v| v.to_str().ok())
}

async fn post(State(bridge): State<Arc<Bridge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let json = content_type
            .to_str()
            .is_ok_and(|c| c.to_ascii_lowercase().contains("json"));
        if !json {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            );
        }
    }
    let message: Value = match serde_json::from_slice(&body) {
        Ok(message @ Value::Object(_)) => message,
        Ok(Value::Array(_)) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                -32600,
                "batches are not part of this transport: send one message per POST",
            );
        }
        Ok(_) | Err(_) => {
            return rpc_error(StatusCode::BAD_REQUEST, &Value::Null, -32700, "parse error");
        }
    };
    let era = match revision::era(&headers) {
        Ok(era) => era,
        Err(error) => {
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"jsonrpc": "2.0", "id": id, "error": error}),
            );
        }
    };
    let accepts = accepts(&headers);
    match era {
        Era::Handshake => post_session(&bridge, &headers, message, accepts).await,
        Era::Stateless => post_stateless(&bridge, &headers, message, accepts).await,
    }
}

async fn post_session(
    bridge: &Bridge,
    headers: &HeaderMap,
    message: Value,
    accepts: Accepts,
) -> Response {
    let kind = classify(&message);
    if let Kind::Invalid = kind {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            "not a JSON-RPC request, notification or response",
        );
    }
    let is_request = matches!(kind, Kind::Request { .. });
    if is_request && !accepts.json && !accepts.sse {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list application/json or text/event-stream",
        );
    }
    if let Kind::Request {
        method: "initialize",
        id,
    } = kind
    {
        let id = id.clone();
        if session_header(headers).is_some() {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                -32600,
                "initialize starts a session and must not carry Mcp-Session-Id",
            );
        }
        let (session_id, session) = match bridge.children.create_session() {
            Ok(created) => created,
            Err(err @ StartError::Full(_)) => {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &id,
                    -32000,
                    &err.to_string(),
                );
            }
            Err(err @ StartError::Spawn(_)) => {
                tracing::error!("{err}");
                return rpc_error(StatusCode::BAD_GATEWAY, &id, -32603, &err.to_string());
            }
        };
        tracing::info!(session = %&session_id[..8], "bridge session started");
        let mut response =
            forward_request(&session.child, message, accepts, Era::Handshake, None).await;
        let failed = !response.status().is_success();
        if failed {
            bridge.children.end_session(&session_id);
        } else if let Ok(value) = HeaderValue::from_str(&session_id) {
            response
                .headers_mut()
                .insert(revision::HEADER_SESSION, value);
        }
        return response;
    }
    let Some(session_id) = session_header(headers) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            message.get("id").unwrap_or(&Value::Null),
            -32600,
            "Mcp-Session-Id is required: initialize first",
        );
    };
    let Some(session) = bridge.children.session(session_id) else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            message.get("id").unwrap_or(&Value::Null),
            -32001,
            "session not found (ended, expired or its server exited): initialize again",
        );
    };
    if is_request {
        forward_request(&session.child, message, accepts, Era::Handshake, None).await
    } else {
        match session.child.send(&message).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(reason) => rpc_error(StatusCode::NOT_FOUND, &Value::Null, -32001, &reason),
        }
    }
}

async fn post_stateless(
    bridge: &Arc<Bridge>,
    headers: &HeaderMap,
    message: Value,
    accepts: Accepts,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if let Err(mismatch) = revision::check_stateless_headers(headers, &message) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            revision::HEADER_MISMATCH,
            &mismatch,
        );
    }
    let method = match classify(&message) {
        Kind::Request { method, .. } => method.to_owned(),
        Kind::Notification { method } => {
            // 2026-07-28 defines no client notifications over HTTP; `notifications/cancelled`
            // would name an id the shared child never saw (the bridge rewrites ids), and a
            // closed stream already cancels. Accepted and not forwarded.
            tracing::debug!(method, "stateless notification accepted and dropped");
            return StatusCode::ACCEPTED.into_response();
        }
        Kind::Response { .. } | Kind::Invalid => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                -32600,
                "a 2026-07-28 POST carries one request or notification",
            );
        }
    };
    if !accepts.json && !accepts.sse {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list application/json or text/event-stream",
        );
    }
    let shared = match bridge.children.shared().await {
        Ok(shared) => shared,
        Err(err) => {
            tracing::error!("{err}");
            return rpc_error(StatusCode::BAD_GATEWAY, &id, -32603, &err);
        }
    };
    if let Some(discover) = &shared.discover {
        match method.as_str() {
            "server/discover" => {
                return json_response(
                    StatusCode::OK,
                    &json!({"jsonrpc": "2.0", "id": id, "result": discover}),
                );
            }
            "subscriptions/listen" => {
                if !accepts.sse {
                    return plain(
                        StatusCode::NOT_ACCEPTABLE,
                        "subscriptions/listen answers with an SSE stream: Accept must list text/event-stream",
                    );
                }
                return listen(bridge, &shared.child, discover, &id, &message);
            }
            _ => {}
        }
    }
    // A handshake-era child's results need the fields 2026-07-28 requires.
    let translate = shared.discover.is_some().then_some(method);
    forward_request(&shared.child, message, accepts, Era::Stateless, translate).await
}

/// The filter fields of `subscriptions/listen` the bridge can honour for a handshake-era
/// child, with the notification each stands for and the capability that promises it.
const LISTEN_FILTERS: [(&str, &str, &str); 3] = [
    (
        "toolsListChanged",
        "notifications/tools/list_changed",
        "tools",
    ),
    (
        "promptsListChanged",
        "notifications/prompts/list_changed",
        "prompts",
    ),
    (
        "resourcesListChanged",
        "notifications/resources/list_changed",
        "resources",
    ),
];

/// `subscriptions/listen` for a handshake-era shared child: the list changes it sends
/// concern every client alike, so each stream gets those its filter asked for and the
/// child's capabilities promise. `resourceSubscriptions` is not acknowledged: it would need
/// a `resources/subscribe` on the shared child per listener, and its updates could not be
/// told apart.
fn listen(
    bridge: &Arc<Bridge>,
    child: &Child,
    discover: &Value,
    id: &Value,
    request: &Value,
) -> Response {
    let Some(changes) = child.changes() else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            id,
            -32001,
            "the MCP server went away",
        );
    };
    let wanted = request.pointer("/params/notifications");
    let mut acknowledged = serde_json::Map::new();
    let mut methods = Vec::new();
    for (field, method, capability) in LISTEN_FILTERS {
        let asked = wanted.and_then(|w| w.get(field)) == Some(&Value::Bool(true));
        let offered = discover.pointer(&format!("/capabilities/{capability}/listChanged"))
            == Some(&Value::Bool(true));
        if asked && offered {
            acknowledged.insert(field.to_owned(), Value::Bool(true));
            methods.push(method);
        }
    }
    let meta = json!({"io.modelcontextprotocol/subscriptionId": id});
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": meta, "notifications": acknowledged}});
    let state = ListenState {
        bridge: Arc::clone(bridge),
        changes,
        methods,
        meta,
        first: Some(ack),
    };
    sse_response(Body::from_stream(futures::stream::unfold(
        state,
        |mut state| async move {
            if let Some(ack) = state.first.take() {
                return Some((Ok::<_, std::convert::Infallible>(sse_frame(&ack)), state));
            }
            loop {
                if state.bridge.draining.load(Ordering::Relaxed) {
                    return None;
                }
                match tokio::time::timeout(KEEPALIVE, state.changes.recv()).await {
                    Err(_) => {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), state));
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Ok(Ok(mut change)) => {
                        let wanted = change
                            .get("method")
                            .and_then(Value::as_str)
                            .is_some_and(|m| state.methods.contains(&m));
                        if wanted {
                            if !change.get("params").is_some_and(Value::is_object) {
                                change["params"] = json!({});
                            }
                            change["params"]["_meta"] = state.meta.clone();
                            return Some((Ok(sse_frame(&change)), state));
                        }
                    }
                }
            }
        },
    )))
}

struct ListenState {
    bridge: Arc<Bridge>,
    changes: tokio::sync::broadcast::Receiver<Value>,
    methods: Vec<&'static str>,
    meta: Value,
    first: Option<Value>,
}

/// Sends a request to the child and answers with JSON when the response comes first, or
/// with an SSE stream when notifications or server requests come before it (and the client
/// accepts SSE): the only way those reach the client.
async fn forward_request(
    child: &Child,
    message: Value,
    accepts: Accepts,
    era: Era,
    translate: Option<String>,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let mut waiter = match child.request(message).await {
        Ok(waiter) => waiter,
        Err(RequestError::Invalid(reason)) => {
            return rpc_error(StatusCode::BAD_REQUEST, &id, -32600, &reason);
        }
        Err(RequestError::Dead(reason)) => {
            return rpc_error(StatusCode::NOT_FOUND, &id, -32001, &reason);
        }
        Err(RequestError::Busy) => {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &id,
                -32000,
                "too many requests in flight on this MCP server",
            );
        }
    };
    let first = loop {
        tokio::select! {
            biased;
            Some(message) = waiter.messages.recv() => {
                if accepts.sse {
                    break Event::Message(message);
                }
                tracing::debug!("a message before the response was dropped: the client accepts no SSE");
            }
            response = &mut waiter.response => {
                waiter.guard.disarm();
                break Event::Final(response.unwrap_or_else(|_| error_response(
                    &id, -32603, "the MCP server went away")));
            }
        }
    };
    let first = match first {
        Event::Final(response) => Event::Final(finish(response, translate.as_deref())),
        message => message,
    };
    match first {
        Event::Final(response) if accepts.json || !accepts.sse => {
            let status = if era == Era::Stateless
                && response.pointer("/error/code").and_then(Value::as_i64) == Some(-32601)
            {
                // 2026-07-28: an unimplemented method is 404 with -32601.
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            json_response(status, &response)
        }
        first => sse_response(Body::from_stream(sse_events(
            first,
            Some(waiter),
            translate,
        ))),
    }
}

fn finish(mut response: Value, translate: Option<&str>) -> Value {
    if let Some(method) = translate {
        revision::to_stateless_result(method, &mut response);
    }
    response
}

enum Event {
    Message(Value),
    Final(Value),
}

fn sse_frame(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// The SSE body for one request: `first`, then whatever comes before the response, then
/// the response, then the end. The waiter (and its guard) lives in the stream, so a client
/// that disconnects drops it and the request is forgotten.
fn sse_events(
    first: Event,
    waiter: Option<Waiter>,
    translate: Option<String>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures::stream::unfold(
        (Some(first), waiter, false),
        move |(pending, mut waiter, done)| {
            let translate = translate.clone();
            async move {
                if done {
                    return None;
                }
                if let Some(event) = pending {
                    return Some(match event {
                        Event::Message(m) => (Ok(sse_frame(&m)), (None, waiter, false)),
                        Event::Final(m) => (Ok(sse_frame(&m)), (None, None, true)),
                    });
                }
                let w = waiter.as_mut()?;
                let next = tokio::time::timeout(KEEPALIVE, async {
                    tokio::select! {
                        biased;
                        Some(message) = w.messages.recv() => Event::Message(message),
                        response = &mut w.response => Event::Final(response.unwrap_or_else(|_| {
                            error_response(&Value::Null, -32603, "the MCP server went away")
                        })),
                    }
                })
                .await;
                Some(match next {
                    Err(_) => (
                        Ok(Bytes::from_static(b": keep-alive\n\n")),
                        (None, waiter, false),
                    ),
                    Ok(Event::Message(m)) => (Ok(sse_frame(&m)), (None, waiter, false)),
                    Ok(Event::Final(m)) => {
                        w.guard.disarm();
                        let m = finish(m, translate.as_deref());
                        (Ok(sse_frame(&m)), (None, None, true))
                    }
                })
            }
        },
    )
}

fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-like proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// GET: the session's stream for messages the server starts on its own.
async fn get_stream(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Response {
    if let Ok(Era::Stateless) = revision::era(&headers) {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "2026-07-28 has no GET stream: use subscriptions/listen",
        );
    }
    if !accepts(&headers).sse {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list text/event-stream",
        );
    }
    let Some(session_id) = session_header(&headers) else {
        return plain(StatusCode::BAD_REQUEST, "Mcp-Session-Id is required");
    };
    let Some(session) = bridge.children.session(session_id) else {
        return plain(StatusCode::NOT_FOUND, "session not found");
    };
    let Some(receiver) = session.child.open_get_stream() else {
        return plain(
            StatusCode::CONFLICT,
            "this session already has a GET stream open",
        );
    };
    sse_response(Body::from_stream(get_events(receiver)))
}

fn get_events(
    receiver: mpsc::Receiver<Value>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        match tokio::time::timeout(KEEPALIVE, receiver.recv()).await {
            Err(_) => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), receiver)),
            Ok(Some(message)) => Some((Ok(sse_frame(&message)), receiver)),
            Ok(None) => None,
        }
    })
}

/// DELETE: the client ends its session; its child is killed.
async fn delete(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Response {
    if let Ok(Era::Stateless) = revision::era(&headers) {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "2026-07-28 has no sessions to delete",
        );
    }
    let Some(session_id) = session_header(&headers) else {
        return plain(StatusCode::BAD_REQUEST, "Mcp-Session-Id is required");
    };
    if bridge.children.end_session(session_id) {
        tracing::info!(session = %session_id.get(..8).unwrap_or(session_id), "bridge session deleted by the client");
        StatusCode::OK.into_response()
    } else {
        plain(StatusCode::NOT_FOUND, "session not found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_port_and_ignore_case() {
        let allowed = vec!["mcp-fetch.mcp.svc".to_owned(), "localhost:8080".to_owned()];
        assert!(host_allowed(&allowed, "mcp-fetch.mcp.svc"));
        assert!(host_allowed(&allowed, "MCP-Fetch.mcp.svc:8080"));
        assert!(host_allowed(&allowed, "localhost:8080"));
        assert!(!host_allowed(&allowed, "localhost:9090"));
        assert!(!host_allowed(&allowed, "evil.example"));
        assert!(!host_allowed(&allowed, "mcp-fetch.mcp.svc.evil.example"));
        let v6 = vec!["[::1]".to_owned()];
        assert!(host_allowed(&v6, "[::1]:8080"));
        assert!(host_allowed(&v6, "[::1]"));
    }
}
