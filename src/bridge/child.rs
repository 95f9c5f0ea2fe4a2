//! One stdio MCP server process and the routing of its messages.
//!
//! The child's stdout carries three kinds of message, each routed differently:
//! - responses go to the HTTP request that is waiting for that id;
//! - `notifications/progress` goes to the request that handed out its `progressToken`;
//! - everything else the server starts (sampling, elicitation, roots, logging, list
//!   changes) goes to the session's GET stream when one is open, else to the most recent
//!   request still waiting, which is the one it most likely relates to (stdio loses the
//!   relation; the 2025-11-25 transport allows either stream).
//!
//! When the child exits, closes stdout, prints a line that is not JSON-RPC or a line over
//! the cap, every waiting request gets a JSON-RPC error and the child is marked dead, so the
//! session that owns it ends and the next one gets a fresh process.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, oneshot};

use super::framing::{Frame, Kind, LineReader, classify, encode_line, id_key};

/// How many messages a waiting request or a GET stream may have queued before the child's
/// further notifications to it are dropped: a client that does not read must not make the
/// bridge buffer without bound.
pub const STREAM_QUEUE: usize = 256;
/// Requests in flight on one child at once: each holds a queue, so a client that opens
/// POST after POST without reading must hit a wall (503) instead of the bridge's memory.
pub const MAX_IN_FLIGHT: usize = 512;
/// List-change notifications a slow `subscriptions/listen` stream may lag behind before it
/// skips some (a list change only says "list again", so a skipped one loses nothing the
/// next one does not say).
const CHANGES_QUEUE: usize = 64;
/// The notifications a shared child sends to `subscriptions/listen` streams: list changes,
/// which concern every client alike, and resource updates, which name their resource (each
/// stream takes those of the URIs it subscribed to).
pub const LISTENED: [&str; 4] = [
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    RESOURCE_UPDATED,
];
pub const RESOURCE_UPDATED: &str = "notifications/resources/updated";
/// Lines queued for the child's stdin; a child that stops reading makes senders wait.
const STDIN_QUEUE: usize = 64;
/// How long a message may wait for room on a child's stdin before the request fails.
const STDIN_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after stdout closes the bridge waits for the process's exit status.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// The JSON-RPC error code the bridge answers with when the child failed (implementation-
/// defined server error range).
pub const CHILD_FAILED: i64 = -32603;

/// How request ids reach the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdMode {
    /// One client per child (a 2025-11-25 session): ids pass untouched, so cancellations and
    /// anything else that names an id stay valid.
    Passthrough,
    /// Many clients share the child: the bridge gives each request its own id and progress
    /// token, because two clients may both send `"id": 1`.
    Rewrite,
}

/// Limits for one child.
#[derive(Clone, Debug)]
pub struct ChildLimits {
    pub max_line_bytes: usize,
    pub max_log_line_bytes: usize,
}

/// What the client behind a stateless request can answer if the shared child asks it
/// something while serving that request (2026-07-28 input-required rounds). Only requests
/// whose results may be input-required (`tools/call`, `prompts/get`, `resources/read`) are
/// eligible; the capabilities are the ones the client declared in the request's `_meta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputOffer {
    pub eligible: bool,
    pub sampling: bool,
    pub elicitation_form: bool,
    pub elicitation_url: bool,
    pub roots: bool,
}

impl InputOffer {
    /// Whether the client can answer a child's `method` request: one of the requests
    /// 2026-07-28 carries as input requests, under a capability the client declared. The
    /// error says why not.
    pub fn admits(&self, method: &str, params: Option<&Value>) -> Result<(), String> {
        let (declared, capability) = match method {
            "sampling/createMessage" => (self.sampling, "sampling"),
            "roots/list" => (self.roots, "roots"),
            "elicitation/create" => {
                if params.and_then(|p| p.get("mode")).and_then(Value::as_str) == Some("url") {
                    (self.elicitation_url, "elicitation.url")
                } else {
                    (self.elicitation_form, "elicitation")
                }
            }
            _ => {
                return Err(
                    "2026-07-28 has no way to carry this request to a stateless client".to_owned(),
                );
            }
        };
        if declared {
            Ok(())
        } else {
            Err(format!(
                "the client did not declare the {capability} capability"
            ))
        }
    }
}

/// A message on its way to a waiting HTTP request.
pub struct Waiter {
    /// Notifications and server requests that came before the response, in order.
    pub messages: mpsc::Receiver<Value>,
    /// The response, with the client's own id.
    pub response: oneshot::Receiver<Value>,
    /// Removes the registration when the HTTP side gives up (client gone).
    pub guard: PendingGuard,
}

struct Pending {
    original_id: Value,
    seq: u64,
    messages: mpsc::Sender<Value>,
    response: oneshot::Sender<Value>,
    /// The token as the child sees it, to forget it with the request.
    progress_key: Option<String>,
    /// What its client can answer (shared child only).
    input: InputOffer,
}

#[derive(Default)]
struct Routing {
    /// Keyed by the id as the child sees it.
    pending: HashMap<String, Pending>,
    /// Child-side progress token key -> (the client's token, child-side request key).
    progress: HashMap<String, (Value, String)>,
    get_stream: Option<mpsc::Sender<Value>>,
    /// A shared child's list-change notifications, for `subscriptions/listen` streams;
    /// dropped when the child dies, which ends those streams.
    changes: Option<tokio::sync::broadcast::Sender<Value>>,
    next_seq: u64,
    /// Why the child is dead, once it is.
    dead: Option<String>,
    /// A shared child's resource subscriptions: URI -> how many listen streams want it.
    /// Kept with the child, since a new child starts with none.
    resources: HashMap<String, usize>,
}

struct Shared {
    label: String,
    mode: IdMode,
    stdin: mpsc::Sender<Vec<u8>>,
    routing: Mutex<Routing>,
    kill: Notify,
    killed: AtomicBool,
}

/// A running child. Cloning shares it; [`Child::kill`] ends it for all.
#[derive(Clone)]
pub struct Child {
    shared: Arc<Shared>,
}

impl Child {
    /// Starts `command` with piped stdio. `label` names the child in logs (a session id
    /// prefix, or "shared").
    pub fn spawn(
        command: &[String],
        label: String,
        mode: IdMode,
        limits: &ChildLimits,
    ) -> std::io::Result<Self> {
        let (program, args) = command.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command to run")
        })?;
        let mut process = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            return Err(std::io::Error::other("child stdio was not piped"));
        };
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
        let shared = Arc::new(Shared {
            label,
            mode,
            stdin: stdin_tx,
            routing: Mutex::new(Routing {
                changes: Some(tokio::sync::broadcast::channel(CHANGES_QUEUE).0),
                ..Routing::default()
            }),
            kill: Notify::new(),
            killed: AtomicBool::new(false),
        });
        let pid = process.id().unwrap_or_default();
        tracing::info!(child = %shared.label, pid, command = %program, "bridge child started");

        // stdin: a dedicated writer, so a slow child never blocks the HTTP handlers' locks.
        let writer = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(line) = stdin_rx.recv().await {
                if let Err(err) = async {
                    stdin.write_all(&line).await?;
                    stdin.flush().await
                }
                .await
                {
                    writer.fail(&format!("cannot write to the MCP server's stdin: {err}"));
                    break;
                }
            }
        });

        // stdout: framing and routing.
        let reader_shared = Arc::clone(&shared);
        let max_line = limits.max_line_bytes;
        tokio::spawn(async move {
            let mut reader = LineReader::new(BufReader::new(stdout), max_line);
            let reason = loop {
                match reader.next_frame().await {
                    Ok(Frame::Message(message)) => reader_shared.route(message),
                    Ok(Frame::Garbage(preview)) => {
                        tracing::warn!(child = %reader_shared.label, line = %preview,
                            "the MCP server wrote a line that is not JSON-RPC to stdout");
                        break "the MCP server wrote invalid output to stdout".to_owned();
                    }
                    Ok(Frame::TooLong) => {
                        break format!(
                            "the MCP server wrote a message over {max_line} bytes to stdout"
                        );
                    }
                    Ok(Frame::Eof) => {
                        // Usually the process is exiting: give its exit status a moment to
                        // be the reason the client reads, which says more than "closed".
                        tokio::time::sleep(EXIT_GRACE).await;
                        break "the MCP server closed its stdout".to_owned();
                    }
                    Err(err) => break format!("cannot read the MCP server's stdout: {err}"),
                }
            };
            reader_shared.fail(&reason);
        });

        // stderr: the log, line by line, each line bounded; never the client.
        let stderr_label = shared.label.clone();
        let max_log = limits.max_log_line_bytes;
        tokio::spawn(async move {
            let mut reader = LineReader::new(BufReader::new(stderr), max_log);
            while let Ok(Some(line)) = reader.next_log_line().await {
                tracing::info!(target: "mcpguard::bridge::child_stderr", child = %stderr_label, "{line}");
            }
        });

        // The process itself: wait for it, or kill it when asked.
        let waiter = Arc::clone(&shared);
        tokio::spawn(async move {
            let status = tokio::select! {
                status = process.wait() => status,
                () = waiter.kill.notified() => {
                    let _ = process.start_kill();
                    process.wait().await
                }
            };
            let text = match &status {
                Ok(status) => status.to_string(),
                Err(err) => err.to_string(),
            };
            let killed = waiter.killed.load(Ordering::Relaxed);
            if killed {
                tracing::info!(child = %waiter.label, status = %text, "bridge child stopped");
            } else {
                tracing::warn!(child = %waiter.label, status = %text, "bridge child exited");
            }
            waiter.fail(&format!("the MCP server process exited ({text})"));
        });

        Ok(Self { shared })
    }

    /// Sends one message to the child as it is (a notification or a response to a server
    /// request). Fails when the child is dead or does not take input for too long.
    pub async fn send(&self, message: &Value) -> Result<(), String> {
        if let Some(reason) = self.dead_reason() {
            return Err(reason);
        }
        self.write_line(encode_line(message)).await
    }

    /// [`Child::send`] without waiting: for destructors and sweeps, where a child that does
    /// not read its input must not hold anything up. Whether the line was queued.
    pub fn try_send(&self, message: &Value) -> bool {
        self.shared.stdin.try_send(encode_line(message)).is_ok()
    }

    async fn write_line(&self, line: Vec<u8>) -> Result<(), String> {
        match tokio::time::timeout(STDIN_SEND_TIMEOUT, self.shared.stdin.send(line)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self
                .dead_reason()
                .unwrap_or_else(|| "the MCP server's stdin is closed".to_owned())),
            Err(_) => Err("the MCP server did not read its input in time".to_owned()),
        }
    }

    /// Sends a request and registers who waits for its answer. In [`IdMode::Rewrite`] the
    /// child sees a bridge-made id and progress token; the answer carries the client's own.
    pub async fn request(&self, message: Value) -> Result<Waiter, RequestError> {
        self.request_with_input(message, InputOffer::default())
            .await
    }

    /// [`Child::request`] for a stateless client that can answer the child's own requests
    /// made while serving this one (see [`InputOffer`]).
    pub async fn request_with_input(
        &self,
        mut message: Value,
        input: InputOffer,
    ) -> Result<Waiter, RequestError> {
        let original_id = match classify(&message) {
            Kind::Request { id, .. } => id.clone(),
            _ => return Err(RequestError::Invalid("not a JSON-RPC request".into())),
        };
        let (messages_tx, messages_rx) = mpsc::channel(STREAM_QUEUE);
        let (response_tx, response_rx) = oneshot::channel();
        let key = {
            let mut routing = self.shared.lock();
            if let Some(reason) = &routing.dead {
                return Err(RequestError::Dead(reason.clone()));
            }
            if routing.pending.len() >= MAX_IN_FLIGHT {
                return Err(RequestError::Busy);
            }
            routing.next_seq += 1;
            let seq = routing.next_seq;
            let (key, progress_key) = match self.shared.mode {
                IdMode::Passthrough => {
                    let key = id_key(&original_id);
                    if routing.pending.contains_key(&key) {
                        return Err(RequestError::Invalid(format!(
                            "request id {original_id} is already in use in this session"
                        )));
                    }
                    let progress_key = progress_token(&message).map(|token| {
                        let token_key = id_key(&token);
                        routing
                            .progress
                            .insert(token_key.clone(), (token, key.clone()));
                        token_key
                    });
                    (key, progress_key)
                }
                IdMode::Rewrite => {
                    let child_id = json!(seq);
                    let key = id_key(&child_id);
                    message["id"] = child_id;
                    let progress_key = progress_token(&message).map(|token| {
                        let child_token = json!(format!("mcpguard-bridge-{seq}"));
                        set_progress_token(&mut message, child_token.clone());
                        let token_key = id_key(&child_token);
                        routing
                            .progress
                            .insert(token_key.clone(), (token, key.clone()));
                        token_key
                    });
                    (key, progress_key)
                }
            };
            routing.pending.insert(
                key.clone(),
                Pending {
                    original_id,
                    seq,
                    messages: messages_tx,
                    response: response_tx,
                    progress_key,
                    input,
                },
            );
            key
        };
        let guard = PendingGuard {
            child: self.clone(),
            key: Some(key),
        };
        if let Err(reason) = self.write_line(encode_line(&message)).await {
            return Err(RequestError::Dead(reason));
        }
        Ok(Waiter {
            messages: messages_rx,
            response: response_rx,
            guard,
        })
    }

    /// Registers the session's GET stream; `None` when one is already open.
    pub fn open_get_stream(&self) -> Option<mpsc::Receiver<Value>> {
        let mut routing = self.shared.lock();
        if routing.dead.is_some()
            || routing
                .get_stream
                .as_ref()
                .is_some_and(|open| !open.is_closed())
        {
            return None;
        }
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        routing.get_stream = Some(tx);
        Some(rx)
    }

    /// Ends the GET stream (its receiver sees the end): on drain, so the connection closes.
    pub fn close_get_stream(&self) {
        self.shared.lock().get_stream = None;
    }

    /// Whether anything is in flight or streaming: an idle session is one with neither.
    pub fn busy(&self) -> bool {
        let routing = self.shared.lock();
        !routing.pending.is_empty()
            || routing
                .get_stream
                .as_ref()
                .is_some_and(|open| !open.is_closed())
    }

    pub fn dead_reason(&self) -> Option<String> {
        self.shared.lock().dead.clone()
    }

    pub fn kill(&self) {
        self.shared.killed.store(true, Ordering::Relaxed);
        self.shared.kill.notify_one();
        self.shared.fail("the session ended");
    }

    /// Counts one more listener of `uri`; whether it is the first (so the child must be
    /// asked to `resources/subscribe`).
    pub fn retain_resource(&self, uri: &str) -> bool {
        let mut routing = self.shared.lock();
        let count = routing.resources.entry(uri.to_owned()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one listener of `uri` less; whether it was the last (so the child may be told
    /// to `resources/unsubscribe`).
    pub fn release_resource(&self, uri: &str) -> bool {
        let mut routing = self.shared.lock();
        match routing.resources.get_mut(uri) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                routing.resources.remove(uri);
                true
            }
            None => false,
        }
    }

    /// The shared child's list changes from now on; the stream ends when the child dies.
    /// `None` when it is already dead.
    pub fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Value>> {
        self.shared.lock().changes.as_ref().map(|c| c.subscribe())
    }

    pub fn label(&self) -> &str {
        &self.shared.label
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The process task holds its own Arc, so this runs only once that task ended; the
        // notify is for the case where it has not been woken yet.
        self.kill.notify_one();
    }
}

/// Why a request could not be sent.
#[derive(Debug)]
pub enum RequestError {
    Invalid(String),
    Dead(String),
    /// [`MAX_IN_FLIGHT`] requests are already waiting on this child.
    Busy,
}

/// Forgets a waiting request when the HTTP side drops it; in [`IdMode::Rewrite`] the child
/// is told the request is cancelled, because there closing the stream is the cancellation
/// (2026-07-28), and no one else could ever receive the answer.
pub struct PendingGuard {
    child: Child,
    key: Option<String>,
}

impl PendingGuard {
    /// The answer arrived: nothing to clean.
    pub fn disarm(&mut self) {
        self.key = None;
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let removed = {
            let mut routing = self.child.shared.lock();
            let removed = routing.pending.remove(&key);
            if let Some(token) = removed.as_ref().and_then(|p| p.progress_key.as_ref()) {
                routing.progress.remove(token);
            }
            removed.is_some() && routing.dead.is_none()
        };
        if removed
            && self.child.shared.mode == IdMode::Rewrite
            && let Some(id) = child_id_from_key(&key)
        {
            let cancel = json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "the client closed the request"}
            });
            // Best effort and never blocking in a destructor.
            let _ = self.child.shared.stdin.try_send(encode_line(&cancel));
        }
    }
}

/// Rewrite-mode keys are `n:<number>`.
fn child_id_from_key(key: &str) -> Option<u64> {
    key.strip_prefix("n:")?.parse().ok()
}

fn progress_token(message: &Value) -> Option<Value> {
    message
        .pointer("/params/_meta/progressToken")
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
        .cloned()
}

fn set_progress_token(message: &mut Value, token: Value) {
    if let Some(slot) = message.pointer_mut("/params/_meta/progressToken") {
        *slot = token;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Routing> {
        // A panic while holding the lock leaves plain maps behind; keep serving.
        self.routing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the child dead and answers every waiting request with an error.
    fn fail(&self, reason: &str) {
        let pending = {
            let mut routing = self.lock();
            if routing.dead.is_none() {
                routing.dead = Some(reason.to_owned());
            }
            routing.get_stream = None;
            routing.changes = None;
            routing.progress.clear();
            std::mem::take(&mut routing.pending)
        };
        if !pending.is_empty() {
            tracing::warn!(child = %self.label, reason, requests = pending.len(),
                "bridge child failed with requests in flight");
        }
        for (_, waiting) in pending {
            let _ =
                waiting
                    .response
                    .send(error_response(&waiting.original_id, CHILD_FAILED, reason));
        }
        // Nothing more will be read; make sure the process goes too.
        self.kill.notify_one();
    }

    fn route(&self, mut message: Value) {
        match classify(&message) {
            Kind::Response { id } => {
                let key = id_key(id);
                let waiting = {
                    let mut routing = self.lock();
                    let waiting = routing.pending.remove(&key);
                    if let Some(token) = waiting.as_ref().and_then(|p| p.progress_key.as_ref()) {
                        routing.progress.remove(token);
                    }
                    waiting
                };
                match waiting {
                    Some(waiting) => {
                        message["id"] = waiting.original_id;
                        let _ = waiting.response.send(message);
                    }
                    None => {
                        tracing::debug!(child = %self.label, id = %key,
                            "response for a request no one waits for (client gone)");
                    }
                }
            }
            Kind::Notification {
                method: "notifications/progress",
            } => {
                let token = message.pointer("/params/progressToken").map(id_key);
                let routing = self.lock();
                let target =
                    token
                        .and_then(|t| routing.progress.get(&t))
                        .and_then(|(client_token, key)| {
                            routing.pending.get(key).map(|p| (client_token.clone(), p))
                        });
                match target {
                    Some((client_token, waiting)) => {
                        if let Some(slot) = message.pointer_mut("/params/progressToken") {
                            *slot = client_token;
                        }
                        deliver(&self.label, &waiting.messages, message);
                    }
                    None => tracing::debug!(child = %self.label, "progress for no waiting request"),
                }
            }
            Kind::Notification { method } => {
                if self.mode == IdMode::Rewrite {
                    if LISTENED.contains(&method) {
                        if let Some(changes) = &self.lock().changes {
                            // No listener is not an error: the change concerns no one yet.
                            let _ = changes.send(message);
                        }
                        return;
                    }
                    // A shared child's other notifications cannot be attributed to one
                    // client; sending them to any would leak one client's events to another.
                    tracing::debug!(child = %self.label, method, "shared child notification dropped");
                    return;
                }
                let routing = self.lock();
                let target = routing
                    .get_stream
                    .as_ref()
                    .filter(|s| !s.is_closed())
                    .or_else(|| newest_pending(&routing).map(|p| &p.messages));
                match target {
                    Some(target) => deliver(&self.label, target, message),
                    None => tracing::debug!(child = %self.label, method,
                        "notification dropped: no client stream is open"),
                }
            }
            Kind::Request { id, method } => {
                let id = id.clone();
                if self.mode == IdMode::Rewrite {
                    let refusal = if method == "ping" {
                        Some(json!({"jsonrpc": "2.0", "id": id, "result": {}}))
                    } else {
                        let method = method.to_owned();
                        self.route_input_request(message, method)
                            .err()
                            .map(|reason| error_response(&id, -32601, &reason))
                    };
                    if let Some(answer) = refusal {
                        let _ = self.stdin.try_send(encode_line(&answer));
                    }
                    return;
                }
                let delivered = {
                    let routing = self.lock();
                    // A server request most likely belongs to the newest waiting request
                    // (a tool asking for sampling or elicitation); else the GET stream.
                    let target = newest_pending(&routing)
                        .map(|p| &p.messages)
                        .or_else(|| routing.get_stream.as_ref().filter(|s| !s.is_closed()));
                    target.is_some_and(|t| t.try_send(message).is_ok())
                };
                if !delivered {
                    let answer = error_response(
                        &id,
                        CHILD_FAILED,
                        "no client stream is open to carry this request",
                    );
                    let _ = self.stdin.try_send(encode_line(&answer));
                }
            }
            Kind::Invalid => {
                tracing::warn!(child = %self.label, "the MCP server sent an invalid JSON-RPC message; dropped");
            }
        }
    }
}

impl Shared {
    /// A shared child's own request (sampling, elicitation, roots) goes to the one request
    /// it can belong to, whose HTTP side turns it into an input-required result. stdio does
    /// not say which request a server request belongs to, so it is attributed only when
    /// exactly one eligible request is in flight: guessing between two clients would show
    /// one client's question (and what the tool knows) to the other.
    fn route_input_request(&self, message: Value, method: String) -> Result<(), String> {
        let routing = self.lock();
        let candidates: Vec<&Pending> = routing
            .pending
            .values()
            .filter(|p| p.input.eligible && !p.messages.is_closed())
            .collect();
        let only = match candidates.as_slice() {
            [only] => only,
            [] => {
                return Err(format!(
                    "{method}: no client request is in flight that this could belong to"
                ));
            }
            several => {
                return Err(format!(
                    "{method}: {} client requests are in flight on the shared server \
                     process, and stdio does not say which one this belongs to",
                    several.len()
                ));
            }
        };
        if let Err(reason) = only.input.admits(&method, message.get("params")) {
            return Err(format!("{method}: {reason}"));
        }
        only.messages
            .try_send(message)
            .map_err(|_| format!("{method}: the client's stream is full or closed"))
    }
}

fn newest_pending(routing: &Routing) -> Option<&Pending> {
    routing
        .pending
        .values()
        .filter(|p| !p.messages.is_closed())
        .max_by_key(|p| p.seq)
}

fn deliver(label: &str, target: &mpsc::Sender<Value>, message: Value) {
    if target.try_send(message).is_err() {
        tracing::warn!(child = %label, "a client stream is full or closed; a message was dropped");
    }
}

/// A JSON-RPC error response. `id` may be `Value::Null` where the request had none.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    // `cat` as the child: every line the bridge writes comes back as if the server wrote it,
    // which drives the routing from both sides without a real server.
    fn cat(mode: IdMode) -> Child {
        let limits = ChildLimits {
            max_line_bytes: 4096,
            max_log_line_bytes: 256,
        };
        Child::spawn(&["cat".to_owned()], "test".to_owned(), mode, &limits).unwrap()
    }

    const ELICIT: &str = "elicitation/create";

    async fn next(waiter: &mut Waiter) -> Value {
        tokio::time::timeout(Duration::from_secs(5), waiter.messages.recv())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn passthrough_routes_progress_and_server_requests_to_the_request_then_its_response() {
        let child = cat(IdMode::Passthrough);
        let request = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "t", "_meta": {"progressToken": "p1"}}});
        let mut waiter = child.request(request.clone()).await.unwrap();
        // The echoed request looks like a server request: it goes to the waiting request.
        assert_eq!(next(&mut waiter).await, request);
        // A second request with the same id in the session is refused.
        assert!(matches!(
            child.request(request.clone()).await,
            Err(RequestError::Invalid(_))
        ));
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "p1", "progress": 1}});
        child.send(&progress).await.unwrap();
        assert_eq!(next(&mut waiter).await, progress);
        let response = json!({"jsonrpc": "2.0", "id": 5, "result": {"ok": true}});
        child.send(&response).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), &mut waiter.response)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, response);
        child.kill();
    }

    #[tokio::test]
    async fn rewrite_gives_the_child_its_own_ids_and_tokens_and_the_client_its_own_back() {
        let child = cat(IdMode::Rewrite);
        let request = json!({"jsonrpc": "2.0", "id": "client-a", "method": "tools/call",
            "params": {"name": "t", "_meta": {"progressToken": 7}}});
        let mut waiter = child.request(request).await.unwrap();
        // The echoed request is a "server request" to a shared child: the bridge answers it
        // with an error on the child's stdin, which cat echoes back as the response to the
        // rewritten id 1 — and the client sees its own id.
        let got = tokio::time::timeout(Duration::from_secs(5), &mut waiter.response)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got["id"], json!("client-a"));
        assert_eq!(got["error"]["code"], json!(-32601));
        // The progress token the child saw was the bridge's.
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": "mcpguard-bridge-1", "progress": 1}});
        child.send(&progress).await.unwrap();
        // The request is answered, so its token is forgotten: nothing arrives.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), waiter.messages.recv())
                .await
                .map_or(true, |m| m.is_none())
        );
        child.kill();
    }

    #[test]
    fn an_input_request_needs_the_capability_that_carries_it() {
        let offer = InputOffer {
            eligible: true,
            sampling: true,
            elicitation_form: true,
            elicitation_url: false,
            roots: false,
        };
        let url = json!({"mode": "url", "url": "https://example.com/consent"});
        assert_eq!(offer.admits("sampling/createMessage", None), Ok(()));
        assert_eq!(offer.admits("elicitation/create", Some(&json!({}))), Ok(()));
        assert_eq!(
            offer.admits("elicitation/create", Some(&url)),
            Err("the client did not declare the elicitation.url capability".to_owned())
        );
        assert_eq!(
            offer.admits("roots/list", None),
            Err("the client did not declare the roots capability".to_owned())
        );
        assert_eq!(
            offer.admits("tools/call", None),
            Err("2026-07-28 has no way to carry this request to a stateless client".to_owned())
        );
        let url_only = InputOffer {
            elicitation_url: true,
            ..InputOffer::default()
        };
        assert_eq!(url_only.admits("elicitation/create", Some(&url)), Ok(()));
        assert_eq!(
            url_only.admits("elicitation/create", None),
            Err("the client did not declare the elicitation capability".to_owned())
        );
    }

    #[tokio::test]
    async fn a_shared_childs_request_goes_to_the_one_eligible_call_or_is_refused() {
        // A child that reads and says nothing: the test plays the server through `route`.
        let limits = ChildLimits {
            max_line_bytes: 4096,
            max_log_line_bytes: 256,
        };
        let sink = [
            "sh".to_owned(),
            "-c".to_owned(),
            "cat >/dev/null".to_owned(),
        ];
        let child = Child::spawn(&sink, "test".to_owned(), IdMode::Rewrite, &limits).unwrap();
        let eligible = InputOffer {
            eligible: true,
            elicitation_form: true,
            ..InputOffer::default()
        };
        let question = |id: &str| {
            json!({"jsonrpc": "2.0", "id": id, "method": "elicitation/create",
                "params": {"message": "?"}})
        };
        // No call in flight: refused.
        assert_eq!(
            child
                .shared
                .route_input_request(question("q0"), ELICIT.to_owned()),
            Err(
                "elicitation/create: no client request is in flight that this could belong to"
                    .to_owned()
            )
        );
        // An ineligible request in flight does not make the question ambiguous.
        let listing = json!({"jsonrpc": "2.0", "id": "l", "method": "tools/list"});
        let mut listing = child.request(listing).await.unwrap();
        let call = json!({"jsonrpc": "2.0", "id": "c", "method": "tools/call",
            "params": {"name": "t"}});
        let mut waiter = child.request_with_input(call, eligible).await.unwrap();
        child.shared.route(question("q1"));
        assert_eq!(next(&mut waiter).await, question("q1"));
        assert!(listing.messages.try_recv().is_err());
        // A second eligible call: the next question cannot be attributed.
        let second = json!({"jsonrpc": "2.0", "id": "d", "method": "tools/call",
            "params": {"name": "t"}});
        let mut other = child.request_with_input(second, eligible).await.unwrap();
        assert_eq!(
            child
                .shared
                .route_input_request(question("q2"), ELICIT.to_owned()),
            Err(
                "elicitation/create: 2 client requests are in flight on the shared server \
                 process, and stdio does not say which one this belongs to"
                    .to_owned()
            )
        );
        assert!(waiter.messages.try_recv().is_err());
        assert!(other.messages.try_recv().is_err());
        // Once the other call ends, the first is again the only one, but sampling needs its
        // own capability.
        drop(other);
        assert_eq!(
            child.shared.route_input_request(
                json!({"jsonrpc": "2.0", "id": "q3", "method": "sampling/createMessage"}),
                "sampling/createMessage".to_owned()
            ),
            Err(
                "sampling/createMessage: the client did not declare the sampling capability"
                    .to_owned()
            )
        );
        child.kill();
    }

    #[tokio::test]
    async fn requests_in_flight_on_one_child_are_bounded() {
        // `sleep` never reads or answers: every request stays in flight.
        let limits = ChildLimits {
            max_line_bytes: 4096,
            max_log_line_bytes: 256,
        };
        let child = Child::spawn(
            &["sleep".to_owned(), "30".to_owned()],
            "test".to_owned(),
            IdMode::Rewrite,
            &limits,
        )
        .unwrap();
        let mut waiting = Vec::new();
        for id in 0..MAX_IN_FLIGHT {
            let request = json!({"jsonrpc": "2.0", "id": id, "method": "m"});
            waiting.push(child.request(request).await.unwrap());
        }
        let one_more = json!({"jsonrpc": "2.0", "id": "x", "method": "m"});
        assert!(matches!(
            child.request(one_more.clone()).await,
            Err(RequestError::Busy)
        ));
        // A client that gives up frees its slot.
        waiting.pop();
        assert!(child.request(one_more).await.is_ok());
        child.kill();
    }

    #[tokio::test]
    async fn a_dying_child_answers_every_waiting_request_with_an_error() {
        let child = cat(IdMode::Passthrough);
        let mut waiter = child
            .request(json!({"jsonrpc": "2.0", "id": 1, "method": "slow"}))
            .await
            .unwrap();
        // Drain the echo so only the failure remains.
        let _ = next(&mut waiter).await;
        child.kill();
        let got = tokio::time::timeout(Duration::from_secs(5), &mut waiter.response)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": CHILD_FAILED, "message": "the session ended"}})
        );
        assert_eq!(child.dead_reason().as_deref(), Some("the session ended"));
        assert!(matches!(
            child
                .request(json!({"jsonrpc": "2.0", "id": 2, "method": "m"}))
                .await,
            Err(RequestError::Dead(_))
        ));
    }
}
