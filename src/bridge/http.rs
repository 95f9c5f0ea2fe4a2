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
use super::child::{
    CHILD_FAILED, Child, InputOffer, RESOURCE_UPDATED, RequestError, Waiter, error_response,
};
use super::framing::{Kind, classify};
use super::input_rounds::{InputRounds, Origin, Refused};
use super::revision::{self, Era};
use super::sessions::{Children, StartError, round_trip};

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
    /// Calls of stateless clients that wait for their input-required retry.
    pub rounds: InputRounds,
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
        // The session exists only once the server accepted it: a refused, failed or silent
        // initialize ends it now instead of holding a process until the idle timeout.
        let timeout = bridge.children.init_timeout();
        let answer = round_trip(&session.child, message, timeout).await;
        let (status, body) = match answer {
            Ok(response) if response.get("result").is_some() => {
                let mut response = if accepts.json {
                    json_response(StatusCode::OK, &response)
                } else {
                    sse_response(Body::from(sse_frame(&response)))
                };
                if let Ok(value) = HeaderValue::from_str(&session_id) {
                    response
                        .headers_mut()
                        .insert(revision::HEADER_SESSION, value);
                }
                return response;
            }
            Ok(refused) => (StatusCode::OK, refused),
            Err(reason) => (
                StatusCode::BAD_GATEWAY,
                error_response(&id, CHILD_FAILED, &reason),
            ),
        };
        tracing::info!(session = %&session_id[..8], "the MCP server did not accept initialize; session ended");
        bridge.children.end_session(&session_id);
        return json_response(status, &body);
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
                return listen(bridge, &shared.child, discover, &id, &message).await;
            }
            _ => {}
        }
    }
    if shared.discover.is_none() {
        // A 2026-07-28 child speaks for itself, input-required rounds included.
        return forward_request(&shared.child, message, accepts, Era::Stateless, None).await;
    }
    // A handshake-era child's results need the fields 2026-07-28 requires, and its requests
    // to the client become input-required rounds.
    let rounds = Rounds {
        bridge: Arc::clone(bridge),
        child: shared.child.clone(),
        origin: Origin {
            method: method.clone(),
            target: revision::request_target(&message).map(str::to_owned),
            progress_token: message.pointer("/params/_meta/progressToken").cloned(),
        },
    };
    if message.pointer("/params/requestState").is_some() {
        return match bridge.rounds.resume(&message, &rounds.origin).await {
            Ok(resumed) => {
                let rounds = Rounds {
                    child: resumed.child,
                    ..rounds
                };
                answer(resumed.waiter, id, accepts, Era::Stateless, Some(rounds)).await
            }
            Err(Refused(reason)) => rpc_error(StatusCode::OK, &id, -32602, &reason),
        };
    }
    forward_request(
        &shared.child,
        message,
        accepts,
        Era::Stateless,
        Some(rounds),
    )
    .await
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

/// Resource URIs one `subscriptions/listen` stream may subscribe to, and the longest URI:
/// each first subscription is a request to the shared child.
const MAX_LISTEN_RESOURCES: usize = 64;
const MAX_RESOURCE_URI_BYTES: usize = 2048;

/// `subscriptions/listen` for a handshake-era shared child: the list changes it sends
/// concern every client alike, so each stream gets those its filter asked for and the
/// child's capabilities promise. `resourceSubscriptions` become `resources/subscribe` on the
/// shared child, counted across streams (the first subscribes, the last one to end
/// unsubscribes), and each stream gets the updates of its own URIs.
async fn listen(
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
    let mut resources = Subscriptions {
        child: child.clone(),
        uris: Vec::new(),
    };
    if let Some(asked) = wanted
        .and_then(|w| w.get("resourceSubscriptions"))
        .and_then(Value::as_array)
    {
        let bad_uri = |u: &Value| {
            u.as_str()
                .is_none_or(|u| u.is_empty() || u.len() > MAX_RESOURCE_URI_BYTES)
        };
        if asked.len() > MAX_LISTEN_RESOURCES || asked.iter().any(bad_uri) {
            return rpc_error(
                StatusCode::OK,
                id,
                -32602,
                &format!(
                    "resourceSubscriptions takes at most {MAX_LISTEN_RESOURCES} URIs, each a \
                     non-empty string of at most {MAX_RESOURCE_URI_BYTES} bytes"
                ),
            );
        }
        let offered =
            discover.pointer("/capabilities/resources/subscribe") == Some(&Value::Bool(true));
        if offered {
            let timeout = bridge.children.init_timeout();
            for uri in asked.iter().filter_map(Value::as_str) {
                if !resources.uris.iter().any(|u| u == uri)
                    && resources.subscribe(uri, timeout).await
                {
                    resources.uris.push(uri.to_owned());
                }
            }
        }
        if !resources.uris.is_empty() {
            acknowledged.insert("resourceSubscriptions".to_owned(), json!(resources.uris));
        }
    }
    let meta = json!({"io.modelcontextprotocol/subscriptionId": id});
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": meta, "notifications": acknowledged}});
    let state = ListenState {
        bridge: Arc::clone(bridge),
        changes,
        methods,
        resources,
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
                        if state.wants(&change) {
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
    resources: Subscriptions,
    meta: Value,
    first: Option<Value>,
}

impl ListenState {
    fn wants(&self, change: &Value) -> bool {
        let Some(method) = change.get("method").and_then(Value::as_str) else {
            return false;
        };
        if method == RESOURCE_UPDATED {
            return change
                .pointer("/params/uri")
                .and_then(Value::as_str)
                .is_some_and(|uri| self.resources.covers(uri));
        }
        self.methods.contains(&method)
    }
}

/// One listen stream's resource subscriptions on the shared child; released when the
/// stream ends.
struct Subscriptions {
    child: Child,
    uris: Vec<String>,
}

impl Subscriptions {
    /// Counts this stream as a listener of `uri`, asking the child to subscribe when it is
    /// the first. Whether the subscription holds.
    async fn subscribe(&self, uri: &str, timeout: Duration) -> bool {
        if !self.child.retain_resource(uri) {
            return true;
        }
        let request = json!({"jsonrpc": "2.0", "id": 0, "method": "resources/subscribe",
            "params": {"uri": uri}});
        match round_trip(&self.child, request, timeout).await {
            Ok(response) if response.get("result").is_some() => true,
            outcome => {
                let reason = match outcome {
                    Ok(response) => response
                        .pointer("/error/message")
                        .cloned()
                        .unwrap_or_default(),
                    Err(reason) => json!(reason),
                };
                tracing::info!(%reason, "the MCP server refused a resource subscription");
                self.child.release_resource(uri);
                false
            }
        }
    }

    /// An update of `uri` concerns this stream when it subscribed to that URI, or to one
    /// the updated resource is a sub-resource of (the revision allows updates to name one).
    fn covers(&self, uri: &str) -> bool {
        self.uris.iter().any(|subscribed| {
            uri.strip_prefix(subscribed.as_str()).is_some_and(|rest| {
                rest.is_empty() || subscribed.ends_with('/') || rest.starts_with(['/', '#', '?'])
            })
        })
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for uri in &self.uris {
            if self.child.release_resource(uri) {
                // A string id never collides with the bridge's numbered requests; the
                // answer goes to no one. Best effort: a dead child needs no unsubscribe.
                let request = json!({"jsonrpc": "2.0", "id": "mcpguard-bridge-unsubscribe",
                    "method": "resources/unsubscribe", "params": {"uri": uri}});
                let _ = self.child.try_send(&request);
            }
        }
    }
}

/// Sends a request to the child and answers with JSON when the response comes first, or
/// with an SSE stream when notifications or server requests come before it (and the client
/// accepts SSE): the only way those reach the client.
async fn forward_request(
    child: &Child,
    message: Value,
    accepts: Accepts,
    era: Era,
    rounds: Option<Rounds>,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let offer = match &rounds {
        Some(rounds) => revision::input_offer(&rounds.origin.method, &message),
        None => InputOffer::default(),
    };
    let waiter = match child.request_with_input(message, offer).await {
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
    answer(waiter, id, accepts, era, rounds).await
}

/// One stateless request to a handshake-era shared child: its results are translated to
/// 2026-07-28 (for `origin.method`), and a child's request parks the call as an
/// input-required round, which the retry must repeat `origin` to resume.
#[derive(Clone)]
struct Rounds {
    bridge: Arc<Bridge>,
    child: Child,
    origin: Origin,
}

impl Rounds {
    /// The child's progress notifications carry the token of the round that started the
    /// call; the client now waits on this round's token, or on none.
    fn relabel(&self, mut message: Value) -> Option<Value> {
        if message.get("method").and_then(Value::as_str) != Some("notifications/progress") {
            return Some(message);
        }
        let token = self.origin.progress_token.clone()?;
        if let Some(slot) = message.pointer_mut("/params/progressToken") {
            *slot = token;
        }
        Some(message)
    }

    /// Parks the call on the child's `request`; the client's answer for this round.
    fn input_required(&self, waiter: Waiter, request: &Value, id: &Value) -> Value {
        match self
            .bridge
            .rounds
            .park(&self.child, waiter, request, self.origin.clone())
        {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(reason) => error_response(id, -32603, &reason),
        }
    }
}

/// A message from the child on its way to the client: `None` when it is not for the client.
fn outgoing(rounds: Option<&Rounds>, message: Value) -> Option<Value> {
    match rounds {
        Some(rounds) => rounds.relabel(message),
        None => Some(message),
    }
}

fn is_child_request(rounds: Option<&Rounds>, message: &Value) -> bool {
    rounds.is_some() && matches!(classify(message), Kind::Request { .. })
}

/// Waits on `waiter` and answers the client: JSON when the response comes first, SSE when
/// something comes before it. A child's request under input-required rounds ends this
/// round with an input-required result.
async fn answer(
    mut waiter: Waiter,
    id: Value,
    accepts: Accepts,
    era: Era,
    rounds: Option<Rounds>,
) -> Response {
    let first = loop {
        tokio::select! {
            biased;
            Some(message) = waiter.messages.recv() => {
                if is_child_request(rounds.as_ref(), &message) {
                    break Event::Input(message);
                }
                let Some(message) = outgoing(rounds.as_ref(), message) else { continue };
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
    let (first, waiter) = match (first, &rounds) {
        (Event::Final(response), _) => (Event::Final(finish(response, &id, rounds.as_ref())), None),
        (Event::Input(request), Some(rounds)) => (
            Event::Final(rounds.input_required(waiter, &request, &id)),
            None,
        ),
        (message, _) => (message, Some(waiter)),
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
        first => sse_response(Body::from_stream(sse_events(first, waiter, id, rounds))),
    }
}

/// The response as the client must see it: its own id (a resumed call's response carries
/// the first round's), and, translated from a handshake-era child (`rounds`), the fields
/// 2026-07-28 requires.
fn finish(mut response: Value, id: &Value, rounds: Option<&Rounds>) -> Value {
    if let Some(rounds) = rounds {
        revision::to_stateless_result(&rounds.origin.method, &mut response);
    }
    if let Some(slot) = response.get_mut("id") {
        *slot = id.clone();
    }
    response
}

enum Event {
    Message(Value),
    Final(Value),
    /// A child's request that ends the round (input-required rounds only).
    Input(Value),
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
    id: Value,
    rounds: Option<Rounds>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    struct State {
        pending: Option<Event>,
        waiter: Option<Waiter>,
        done: bool,
    }
    let context = Arc::new((id, rounds));
    futures::stream::unfold(
        State {
            pending: Some(first),
            waiter,
            done: false,
        },
        move |mut state| {
            let context = Arc::clone(&context);
            async move {
                let (id, rounds) = &*context;
                if state.done {
                    return None;
                }
                if let Some(event) = state.pending.take() {
                    state.done = matches!(event, Event::Final(_));
                    if let Event::Message(m) | Event::Final(m) = event {
                        return Some((Ok(sse_frame(&m)), state));
                    }
                }
                let w = state.waiter.as_mut()?;
                let next = tokio::time::timeout(KEEPALIVE, async {
                    tokio::select! {
                        biased;
                        Some(message) = w.messages.recv() => Event::Message(message),
                        response = &mut w.response => Event::Final(response.unwrap_or_else(|_| {
                            error_response(id, -32603, "the MCP server went away")
                        })),
                    }
                })
                .await;
                let frame = match next {
                    Err(_) => Bytes::from_static(b": keep-alive\n\n"),
                    Ok(Event::Message(m)) if is_child_request(rounds.as_ref(), &m) => {
                        state.done = true;
                        let waiter = state.waiter.take()?;
                        let rounds = rounds.as_ref()?;
                        sse_frame(&rounds.input_required(waiter, &m, id))
                    }
                    Ok(Event::Message(m)) => match outgoing(rounds.as_ref(), m) {
                        Some(m) => sse_frame(&m),
                        None => Bytes::from_static(b": dropped\n\n"),
                    },
                    Ok(Event::Final(m) | Event::Input(m)) => {
                        w.guard.disarm();
                        state.done = true;
                        sse_frame(&finish(m, id, rounds.as_ref()))
                    }
                };
                Some((Ok(frame), state))
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
