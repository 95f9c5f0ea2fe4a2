//! 2026-07-28 input-required rounds for a handshake-era shared child.
//!
//! A 2025-11-25 server asks its client something (sampling, elicitation) by sending a
//! request in the middle of a tool call, and waits. A 2026-07-28 client cannot receive
//! requests: the server answers the call with `resultType: input_required`, naming what it
//! needs in `inputRequests`, and the client calls again with the same request plus
//! `inputResponses` and the `requestState` it was given.
//!
//! The bridge joins the two: the child's request parks the still-running call (the child
//! keeps waiting), the client gets an input-required result whose `requestState` is an
//! unguessable token for the parked call, and the retry that brings the token back answers
//! the child's request and takes over the call where it stopped. The token is the bridge's
//! memory, not a signed state: it is only good on the replica that issued it, once, and
//! until `--input-timeout-secs` passes, after which the child's request gets an error and
//! the call is cancelled.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::child::{Child, Waiter, error_response};

/// Parked calls at once. A shared child's request is attributed only while exactly one
/// eligible call is in flight, so one child parks at most one call at a time; the cap is a
/// backstop for the table itself.
const MAX_PARKED: usize = 16;

/// The stateless request a round belongs to: what its retry must repeat, and how its
/// answer is finished.
#[derive(Clone, Debug)]
pub struct Origin {
    pub method: String,
    pub target: Option<String>,
    /// The progress token of the request now waiting, which the child's progress
    /// notifications are relabelled with (they carry the first round's token otherwise).
    pub progress_token: Option<Value>,
}

struct Parked {
    child: Child,
    waiter: Waiter,
    /// The child's request, as the child numbered it.
    child_request_id: Value,
    key: String,
    origin: Origin,
    since: Instant,
}

/// A call taken back by its retry: answer the child, then keep waiting on `waiter`.
pub struct Resumed {
    pub child: Child,
    pub waiter: Waiter,
}

/// Why a retry's `requestState` was refused. The text is for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

pub struct InputRounds {
    parked: Mutex<HashMap<String, Parked>>,
    wait: Duration,
}

impl InputRounds {
    pub fn new(wait: Duration) -> Self {
        Self {
            parked: Mutex::new(HashMap::new()),
            wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Parked>> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Parks `waiter` on the child's `request` and returns the input-required result for
    /// the client. When the call cannot be parked, the child's request is refused and the
    /// error is what the client gets instead.
    pub fn park(
        &self,
        child: &Child,
        waiter: Waiter,
        request: &Value,
        origin: Origin,
    ) -> Result<Value, String> {
        let child_request_id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let refuse = |reason: String| {
            let _ = child.try_send(&error_response(&child_request_id, -32603, &reason));
            Err(reason)
        };
        let token = match super::sessions::random_token() {
            Ok(token) => token,
            Err(err) => return refuse(err),
        };
        let mut input_request = Map::new();
        input_request.insert("method".to_owned(), json!(method));
        if let Some(params) = request.get("params") {
            input_request.insert("params".to_owned(), params.clone());
        }
        // One child request per round: its method names it.
        let key = method.clone();
        {
            let mut parked = self.lock();
            if parked.len() >= MAX_PARKED {
                drop(parked);
                return refuse(format!(
                    "{method}: {MAX_PARKED} calls already wait for their clients' input"
                ));
            }
            parked.insert(
                token.clone(),
                Parked {
                    child: child.clone(),
                    waiter,
                    child_request_id,
                    key: key.clone(),
                    origin,
                    since: Instant::now(),
                },
            );
        }
        tracing::debug!(method, "a call waits for its client's input");
        Ok(json!({
            "resultType": "input_required",
            "inputRequests": {key: Value::Object(input_request)},
            "requestState": token,
        }))
    }

    /// Takes the call a retry names by its `requestState`, answers the child's request with
    /// the retry's `inputResponses`, and hands the call back. A retry that does not match
    /// (another method or target, no response for the request) leaves the call parked.
    pub async fn resume(&self, retry: &Value, origin: &Origin) -> Result<Resumed, Refused> {
        let params = retry.get("params");
        let Some(token) = params
            .and_then(|p| p.get("requestState"))
            .and_then(Value::as_str)
        else {
            return Err(Refused("requestState must be a string".to_owned()));
        };
        let (parked, response) = {
            let mut table = self.lock();
            let Entry::Occupied(entry) = table.entry(token.to_owned()) else {
                return Err(Refused(
                    "the requestState is unknown or has expired: call again without it".to_owned(),
                ));
            };
            let waiting = entry.get();
            if waiting.origin.method != origin.method || waiting.origin.target != origin.target {
                return Err(Refused(format!(
                    "the requestState belongs to another request ({} {})",
                    waiting.origin.method,
                    waiting.origin.target.as_deref().unwrap_or("")
                )));
            }
            let Some(response) = params
                .and_then(|p| p.get("inputResponses"))
                .and_then(|r| r.get(&waiting.key))
                .filter(|r| r.is_object())
                .cloned()
            else {
                return Err(Refused(format!(
                    "inputResponses must answer the input request {:?}",
                    waiting.key
                )));
            };
            (entry.remove(), response)
        };
        let answer = json!({"jsonrpc": "2.0", "id": parked.child_request_id, "result": response});
        if let Err(reason) = parked.child.send(&answer).await {
            return Err(Refused(reason));
        }
        Ok(Resumed {
            child: parked.child,
            waiter: parked.waiter,
        })
    }

    /// Ends calls whose client did not come back in time: the child's request gets an
    /// error and the call is cancelled (dropping the waiter tells the child).
    pub fn sweep(&self) {
        let expired: Vec<Parked> = {
            let mut table = self.lock();
            let wait = self.wait;
            let tokens: Vec<String> = table
                .iter()
                .filter(|(_, p)| p.since.elapsed() >= wait)
                .map(|(t, _)| t.clone())
                .collect();
            tokens.iter().filter_map(|t| table.remove(t)).collect()
        };
        for parked in expired {
            tracing::info!(method = %parked.origin.method,
                "a call waited too long for its client's input; cancelled");
            let answer = error_response(
                &parked.child_request_id,
                -32603,
                "the client did not answer in time",
            );
            let _ = parked.child.try_send(&answer);
        }
    }

    /// Drops every parked call (drain).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
