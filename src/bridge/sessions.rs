//! The children the bridge runs: one per 2025-11-25 session, plus at most one shared child
//! for 2026-07-28 (stateless) clients. Bounded in number and in idle time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex as AsyncMutex;

use super::child::{Child, ChildLimits, IdMode, RequestError};
use super::revision;

/// What the bridge needs to start children.
#[derive(Clone, Debug)]
pub struct ChildConfig {
    pub command: Vec<String>,
    pub limits: ChildLimits,
    /// How long the bridge's own `server/discover` probe and `initialize` may take.
    pub init_timeout: Duration,
}

pub struct Session {
    pub child: Child,
    last_used: Mutex<Instant>,
}

impl Session {
    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }
}

/// The shared child and what the bridge learnt about it.
#[derive(Clone)]
pub struct SharedChild {
    pub child: Child,
    /// `None` for a 2026-07-28 child (it answers `server/discover` itself); else the
    /// `server/discover` result the bridge made from its `initialize` result.
    pub discover: Option<Value>,
}

pub struct Children {
    config: ChildConfig,
    max_sessions: usize,
    idle: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Async: starting the shared child takes a round trip, and concurrent first requests
    /// must wait for the one start instead of each starting a child.
    shared: AsyncMutex<Option<SharedChild>>,
}

/// Why a session could not be created.
#[derive(Debug)]
pub enum StartError {
    Full(usize),
    Spawn(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(max) => write!(f, "the bridge already runs its maximum of {max} sessions"),
            Self::Spawn(err) => write!(f, "cannot start the MCP server: {err}"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Children {
    pub fn new(config: ChildConfig, max_sessions: usize, idle: Duration) -> Self {
        Self {
            config,
            max_sessions,
            idle,
            sessions: Mutex::new(HashMap::new()),
            shared: AsyncMutex::new(None),
        }
    }

    /// Starts a child for a new session and returns the session's id. Dead sessions are
    /// swept first, so a crashed child never holds a slot.
    pub fn create_session(&self) -> Result<(String, Arc<Session>), StartError> {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.child.dead_reason().is_none());
        if sessions.len() >= self.max_sessions {
            return Err(StartError::Full(self.max_sessions));
        }
        let id = random_token().map_err(StartError::Spawn)?;
        let label = format!("session-{}", &id[..8]);
        let child = Child::spawn(
            &self.config.command,
            label,
            IdMode::Passthrough,
            &self.config.limits,
        )
        .map_err(|e| StartError::Spawn(e.to_string()))?;
        let session = Arc::new(Session {
            child,
            last_used: Mutex::new(Instant::now()),
        });
        sessions.insert(id.clone(), Arc::clone(&session));
        Ok((id, session))
    }

    /// The live session `id`; a session whose child died is removed and not returned, so
    /// the client gets 404 and starts a new one (with a fresh child).
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get(id)?;
        if session.child.dead_reason().is_some() {
            sessions.remove(id);
            return None;
        }
        session.touch();
        Some(Arc::clone(session))
    }

    /// Ends session `id` (DELETE, or a failed `initialize`); whether it existed.
    pub fn end_session(&self, id: &str) -> bool {
        let removed = lock(&self.sessions).remove(id);
        if let Some(session) = &removed {
            session.child.kill();
        }
        removed.is_some()
    }

    /// Ends sessions idle for longer than the limit: nothing in flight, no GET stream open.
    pub fn sweep_idle(&self) {
        let now = Instant::now();
        let expired: Vec<(String, Arc<Session>)> = {
            let mut sessions = lock(&self.sessions);
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| {
                    s.child.dead_reason().is_some()
                        || (!s.child.busy() && now.duration_since(*lock(&s.last_used)) > self.idle)
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|s| (id, s)))
                .collect()
        };
        for (id, session) in expired {
            tracing::info!(session = %&id[..8], "bridge session ended (idle or its server exited)");
            session.child.kill();
        }
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Closes every GET stream, so draining connections can finish.
    pub fn close_streams(&self) {
        for session in lock(&self.sessions).values() {
            session.child.close_get_stream();
        }
    }

    /// Kills every child (shutdown).
    pub async fn kill_all(&self) {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        for session in sessions {
            session.child.kill();
        }
        if let Some(shared) = self.shared.lock().await.take() {
            shared.child.kill();
        }
    }

    /// How long the bridge waits for its own requests to a child.
    pub fn init_timeout(&self) -> Duration {
        self.config.init_timeout
    }

    /// The shared child for stateless clients, started on first use and restarted after it
    /// died. A handshake-era child is initialized here, once.
    pub async fn shared(&self) -> Result<SharedChild, String> {
        let mut slot = self.shared.lock().await;
        if let Some(shared) = slot.as_ref() {
            if shared.child.dead_reason().is_none() {
                return Ok(shared.clone());
            }
            tracing::info!("the shared bridge child died; starting a new one");
        }
        let child = Child::spawn(
            &self.config.command,
            "shared".to_owned(),
            IdMode::Rewrite,
            &self.config.limits,
        )
        .map_err(|e| format!("cannot start the MCP server: {e}"))?;
        match self.prepare_shared(&child).await {
            Ok(discover) => {
                let shared = SharedChild { child, discover };
                *slot = Some(shared.clone());
                Ok(shared)
            }
            Err(err) => {
                child.kill();
                Err(err)
            }
        }
    }

    /// Probes with `server/discover`; when the child does not speak 2026-07-28, performs its
    /// `initialize` and returns the discover result to answer with.
    async fn prepare_shared(&self, child: &Child) -> Result<Option<Value>, String> {
        let timeout = self.config.init_timeout;
        let probe = round_trip(child, revision::discover_request(0), timeout).await?;
        if revision::child_is_stateless(&probe) {
            tracing::info!(
                "the MCP server answers server/discover: stateless requests pass through"
            );
            return Ok(None);
        }
        let init = round_trip(child, revision::initialize_request(0), timeout).await?;
        let Some(result) = init.get("result") else {
            return Err(format!(
                "the MCP server refused initialize: {}",
                init.get("error").cloned().unwrap_or_default()
            ));
        };
        child.send(&revision::initialized_notification()).await?;
        let version = result
            .get("protocolVersion")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?");
        tracing::info!(
            version,
            "the MCP server speaks the handshake era: the bridge initialized it for stateless clients"
        );
        Ok(Some(revision::discover_from_initialize(result)))
    }
}

/// One request the bridge itself sends, with a deadline.
pub async fn round_trip(child: &Child, request: Value, timeout: Duration) -> Result<Value, String> {
    let method = request["method"].as_str().unwrap_or("?").to_owned();
    let mut waiter = child.request(request).await.map_err(|e| match e {
        RequestError::Invalid(e) | RequestError::Dead(e) => e,
        RequestError::Busy => "too many requests in flight".to_owned(),
    })?;
    match tokio::time::timeout(timeout, &mut waiter.response).await {
        Ok(Ok(response)) => {
            waiter.guard.disarm();
            Ok(response)
        }
        Ok(Err(_)) => Err(child
            .dead_reason()
            .unwrap_or_else(|| "the MCP server went away".into())),
        Err(_) => Err(format!(
            "the MCP server did not answer {method} within {} s",
            timeout.as_secs()
        )),
    }
}

/// 128 random bits as hex: visible ASCII as the spec requires of a session id, and
/// unguessable, since a session id or a `requestState` is all that ties a request to what
/// the bridge keeps for it.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children(command: &[&str], max: usize, idle: Duration) -> Children {
        Children::new(
            ChildConfig {
                command: command.iter().map(|s| (*s).to_owned()).collect(),
                limits: ChildLimits {
                    max_line_bytes: 1024,
                    max_log_line_bytes: 256,
                },
                init_timeout: Duration::from_secs(5),
            },
            max,
            idle,
        )
    }

    #[tokio::test]
    async fn sessions_are_bounded_and_a_slot_frees_when_one_ends() {
        let c = children(&["cat"], 2, Duration::from_secs(600));
        let (a, _) = c.create_session().unwrap();
        let (b, _) = c.create_session().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        let err = c.create_session().map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the bridge already runs its maximum of 2 sessions"
        );
        assert!(c.end_session(&a));
        assert!(!c.end_session(&a));
        assert!(c.session(&a).is_none());
        assert!(c.create_session().is_ok());
        c.kill_all().await;
        assert_eq!(c.session_count(), 0);
    }

    #[tokio::test]
    async fn idle_sessions_are_swept_and_busy_ones_kept() {
        let c = children(&["cat"], 4, Duration::from_millis(50));
        let (idle, _) = c.create_session().unwrap();
        let (streaming, session) = c.create_session().unwrap();
        let _stream = session.child.open_get_stream().unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        c.sweep_idle();
        assert!(c.session(&idle).is_none());
        assert!(c.session(&streaming).is_some());
        c.kill_all().await;
    }

    #[tokio::test]
    async fn a_command_that_cannot_start_is_reported() {
        let c = children(&["/nonexistent/mcp-server"], 4, Duration::from_secs(1));
        let err = c.create_session().map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with("cannot start the MCP server: "), "{err}");
        assert_eq!(c.session_count(), 0);
    }
}
