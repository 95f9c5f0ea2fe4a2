//! Which connections an HTTP listener (the webhook's, the bridge's) keeps open when it is
//! full, and the serving of one admitted connection.
//!
//! Anything that can reach the webhook Service can open connections and leave them idle;
//! a limit that refused new connections at accept let 1,030 idle ones make a real review
//! fail until they timed out 10 s later. So when the table is full, a new connection takes
//! the place of the one that has been idle longest (no request in flight), and that one is
//! closed. A connection still in its TLS handshake, or that has sent no request yet, is idle
//! from accept. Only when every open connection has a request in flight is a new one
//! refused: requests in flight are never cut to make room.
//!
//! Why the longest idle: kube-apiserver's client (Go's `net/http` Transport) reuses its
//! most recently used idle connection first, so the longest idle is the one it is least
//! likely to be about to reuse; and its read loop notices a connection the server closed
//! and drops it from the idle pool before reusing it, the same as after any server's
//! keep-alive timeout. The one race left (a request already on the wire when the close
//! arrives) is the one every keep-alive idle timeout has.
//!
//! Idleness is ordered by a logical clock (a counter that ticks when a connection opens or
//! finishes a request), not by wall time: the order is all the choice needs.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use hyper::rt::{Read, Write};
use hyper_util::rt::TokioTimer;
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};

/// A client that has not sent complete request headers in this long is dropped
/// (slowloris); kube-apiserver's own webhook timeout is at most 30 s.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection evicted to make room may take to close while it has no request in
/// flight: hyper closes an idle one at once, this bounds one stuck in an unfinished request
/// head. One with a request in flight is never cut; it closes after its answer.
pub const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// The open connections of one listener, at most `limit` of them.
#[derive(Debug)]
pub struct ConnectionTable {
    limit: usize,
    clock: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    evicted: Counter,
    refused: Counter,
}

#[derive(Debug)]
struct Slot {
    in_flight: AtomicUsize,
    /// The clock when the connection opened or last finished a request.
    idle_since: AtomicU64,
    evict: Notify,
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub struct OpenConnection {
    id: u64,
    slot: Arc<Slot>,
    table: Arc<ConnectionTable>,
}

/// Held while a request is being answered; the connection is idle again once it drops.
#[derive(Debug)]
pub struct RequestInFlight {
    slot: Arc<Slot>,
    table: Arc<ConnectionTable>,
}

impl ConnectionTable {
    /// A table of at most `limit` connections (at least 1).
    pub fn new(limit: usize) -> Arc<ConnectionTable> {
        Self::counting(limit, Counter::default(), Counter::default())
    }

    /// Like [`ConnectionTable::new`], counting evictions and refusals in the given counters
    /// (`mcpguard_connections_evicted_total`, `mcpguard_connections_refused_total`).
    pub fn counting(limit: usize, evicted: Counter, refused: Counter) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable {
            limit: limit.max(1),
            clock: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            evicted,
            refused,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections holding a place now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A place for a new connection: a free one, else the longest-idle connection's (which
    /// is told to close), else none when every connection has a request in flight.
    pub fn admit(self: &Arc<Self>) -> Option<OpenConnection> {
        let mut open = self.lock();
        if open.len() >= self.limit {
            let idle = open
                .iter()
                .filter(|(_, slot)| slot.in_flight.load(Ordering::Acquire) == 0)
                .map(|(id, slot)| (*id, slot.idle_since.load(Ordering::Acquire)));
            let Some(victim) = longest_idle(idle) else {
                self.refused.inc();
                return None;
            };
            if let Some(slot) = open.remove(&victim) {
                // A stored permit: the victim sees it even if it is not waiting yet.
                slot.evict.notify_one();
                self.evicted.inc();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.tick()),
            evict: Notify::new(),
        });
        open.insert(id, slot.clone());
        Some(OpenConnection {
            id,
            slot,
            table: self.clone(),
        })
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::AcqRel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        // The map stays consistent whatever panicked while holding it: every change is one
        // insert or remove.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The id of the candidate `(id, idle_since)` idle the longest, if any.
fn longest_idle(candidates: impl Iterator<Item = (u64, u64)>) -> Option<u64> {
    candidates
        .min_by_key(|(_, idle_since)| *idle_since)
        .map(|(id, _)| id)
}

impl OpenConnection {
    /// Marks a request in flight until the returned guard drops: the connection is not
    /// evicted meanwhile.
    pub fn request_started(&self) -> RequestInFlight {
        self.slot.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestInFlight {
            slot: self.slot.clone(),
            table: self.table.clone(),
        }
    }

    /// Whether a request is in flight on this connection now.
    pub fn is_busy(&self) -> bool {
        self.slot.in_flight.load(Ordering::Acquire) > 0
    }

    /// Resolves once a new connection has taken this one's place.
    pub async fn evicted(&self) {
        self.slot.evict.notified().await;
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        // An evicted connection's place already belongs to another.
        if open
            .get(&self.id)
            .is_some_and(|slot| Arc::ptr_eq(slot, &self.slot))
        {
            open.remove(&self.id);
        }
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        // Newest idle first, then not busy: a chooser that sees it idle sees it idle now.
        self.slot
            .idle_since
            .store(self.table.tick(), Ordering::Release);
        self.slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connections an [`accept_until`] loop left open, to be closed.
pub struct OpenConnections {
    closing: watch::Sender<bool>,
    alive: mpsc::Sender<()>,
    all_ended: mpsc::Receiver<()>,
}

impl OpenConnections {
    /// Tells every connection to finish its request in flight and close, and waits for them
    /// at most `grace`; whether they all ended in time.
    pub async fn close(mut self, grace: Duration) -> bool {
        self.closing.send_replace(true);
        drop(self.alive);
        tokio::time::timeout(grace, self.all_ended.recv())
            .await
            .is_ok()
    }
}

/// A new HTTP/1.1 connection builder with the limits every listener here keeps.
pub fn http1() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    http
}

/// Accepts connections on `listener` until `shutdown` resolves, each given a place in
/// `table` (or refused when every one has a request in flight) and served by `serve` on a
/// task of its own, with a receiver that turns true when the connections must close.
pub async fn accept_until<F>(
    listener: TcpListener,
    table: &Arc<ConnectionTable>,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, SocketAddr, OpenConnection, watch::Receiver<bool>) -> F,
) -> OpenConnections
where
    F: Future<Output = ()> + Send + 'static,
{
    // Each connection task holds a clone of `alive`, so `all_ended` resolves once all ended.
    let (closing, closing_seen) = watch::channel(false);
    let (alive, all_ended) = mpsc::channel::<()>(1);
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
        let Some(place) = table.admit() else {
            tracing::debug!(%peer, max_connections = table.limit(),
                "every connection has a request in flight; refusing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let connection = serve(tcp, peer, place, closing_seen.clone());
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            connection.await;
        });
    }
    OpenConnections {
        closing,
        alive,
        all_ended,
    }
}

/// A response whose body holds the connection's [`RequestInFlight`] until it ends: a
/// streamed answer (an SSE stream of the bridge) keeps its connection busy, so it is never
/// taken for idle and evicted mid-stream.
pub fn hold_until_sent(response: Response, in_flight: RequestInFlight) -> Response {
    response.map(|body| {
        Body::new(InFlightBody {
            body,
            _in_flight: in_flight,
        })
    })
}

struct InFlightBody {
    body: Body,
    _in_flight: RequestInFlight,
}

impl hyper::body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why a connection is asked to close while hyper still serves it.
#[derive(Debug, PartialEq, Eq)]
enum CloseReason {
    Evicted,
    ShuttingDown,
}

/// Serves one admitted connection with `service` until the client closes it, its place is
/// taken (it closes once idle, or within [`EVICTION_GRACE`] when stuck in a request head),
/// or `closing` turns true (it finishes its request in flight, then closes).
pub async fn serve_admitted<I, S>(
    io: I,
    peer: SocketAddr,
    place: &OpenConnection,
    mut closing: watch::Receiver<bool>,
    http: &hyper::server::conn::http1::Builder,
    service: S,
) where
    I: Read + Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = Body>,
{
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    // Biased to the connection: a request that already arrived is read (and so marked in
    // flight) before a close is acted on.
    let reason = tokio::select! {
        biased;
        ended = connection.as_mut() => return log_end(peer, ended),
        () = place.evicted() => CloseReason::Evicted,
        _ = closing.wait_for(|closing| *closing) => CloseReason::ShuttingDown,
    };
    // hyper closes an idle connection at once and one with a request in flight after
    // answering it (with `Connection: close`).
    connection.as_mut().graceful_shutdown();
    if reason == CloseReason::ShuttingDown {
        return log_end(peer, connection.await);
    }
    tracing::debug!(%peer, "closing the longest-idle connection to make room for a new one");
    loop {
        tokio::select! {
            ended = connection.as_mut() => return log_end(peer, ended),
            () = tokio::time::sleep(EVICTION_GRACE) => {
                if !place.is_busy() {
                    tracing::debug!(%peer, "evicted connection closed with its request head unfinished");
                    return;
                }
            }
        }
    }
}

fn log_end(peer: SocketAddr, ended: Result<(), hyper::Error>) {
    if let Err(err) = ended {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests;
