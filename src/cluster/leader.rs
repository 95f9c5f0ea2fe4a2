//! Leader election's one loop. Every replica serves the webhook; the duties that write to the
//! cluster (certificates, namespace labels, MCPPolicy statuses, PolicyReports, the MCPServer
//! controller) run only on the replica holding the lease. The lease manager publishes
//! "leading or not" on a watch channel; [`run_while_leading`] turns it into turns of a duty.
//!
//! A turn in progress is never cancelled here: a pass that writes several objects finishes
//! even when the lease is lost meanwhile (the next leader's pass converges on the same
//! state). A duty that runs until the lease is lost watches [`Turn::lost`] itself.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// When a duty gets its next turn (while this replica leads).
#[derive(Debug)]
pub enum Cadence {
    /// `every` after the last turn, and at once when leadership changes.
    Every(Duration),
    /// As `Every`, and at once whenever `changes` signals (e.g. the policies were rebuilt).
    EveryAndOnChange(Duration, watch::Receiver<()>),
    /// At once when the last turn returns, for as long as the lease is held: for a duty that
    /// runs until it loses the lease ([`Turn::lost`]) or must restart.
    Continuously,
}

/// One turn of a duty.
#[derive(Debug)]
pub struct Turn {
    leader: watch::Receiver<bool>,
    /// The first turn since this replica won the lease (the first turn of all included): a
    /// duty that skips unchanged work keeps nothing it learnt in an earlier term.
    pub newly_elected: bool,
}

impl Turn {
    /// Resolves when this replica no longer leads: `true`, or `false` when the lease task
    /// is gone (the process is stopping).
    pub async fn lost(&mut self) -> bool {
        self.leader.wait_for(|leading| !*leading).await.is_ok()
    }
}

/// Gives `duty` its turns while this replica holds the lease: at once on winning it, then as
/// `cadence` says. Returns when the lease task is gone (the leadership channel closed), or
/// when `changes` of [`Cadence::EveryAndOnChange`] closes.
///
/// `duty` returns each turn's future. It is a plain closure rather than an async one so that
/// the loop's future is `Send` for `tokio::spawn`; a duty that keeps state between turns
/// borrows it from its caller.
pub async fn run_while_leading<D, Turned>(
    mut leader: watch::Receiver<bool>,
    mut cadence: Cadence,
    mut duty: D,
) where
    D: FnMut(Turn) -> Turned,
    Turned: Future<Output = ()>,
{
    let mut newly_elected = true;
    loop {
        if *leader.borrow_and_update() {
            duty(Turn {
                leader: leader.clone(),
                newly_elected,
            })
            .await;
            newly_elected = false;
        } else {
            newly_elected = true;
        }
        let open = match &mut cadence {
            Cadence::Every(every) => tokio::select! {
                () = tokio::time::sleep(*every) => true,
                changed = leader.changed() => changed.is_ok(),
            },
            Cadence::EveryAndOnChange(every, changes) => tokio::select! {
                () = tokio::time::sleep(*every) => true,
                changed = changes.changed() => changed.is_ok(),
                changed = leader.changed() => changed.is_ok(),
            },
            Cadence::Continuously => match leader.has_changed() {
                Err(_) => false,
                Ok(_) if *leader.borrow() => true,
                Ok(_) => leader.changed().await.is_ok(),
            },
        };
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
