//! Which connections the webhook keeps open when it is full.
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

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

#[cfg(test)]
mod tests;
