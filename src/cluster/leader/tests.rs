//! `run_while_leading`: turns only while leading, at once on winning, again on the interval
//! or a signalled change, never cancelled mid-turn, and an end when the lease task is gone.
//! Intervals that must not fire are an hour long, so no assertion depends on the clock.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::*;

const NEVER: Duration = Duration::from_secs(3600);

/// Runs the helper with a duty that reports each turn's `newly_elected`.
fn spawn_reporting(
    leader: watch::Receiver<bool>,
    cadence: Cadence,
) -> (JoinHandle<()>, mpsc::UnboundedReceiver<bool>) {
    let (turns, seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_while_leading(leader, cadence, move |turn: Turn| {
        let _ = turns.send(turn.newly_elected);
        std::future::ready(())
    }));
    (task, seen)
}

/// Lets every spawned task run until it waits (the test runtime has one thread).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

async fn next_turn(seen: &mut mpsc::UnboundedReceiver<bool>) -> bool {
    seen.recv().await.expect("the helper is still running")
}

#[tokio::test]
async fn no_turn_while_following_and_one_at_once_on_winning() {
    let (lease, leader) = watch::channel(false);
    let (_task, mut seen) = spawn_reporting(leader, Cadence::Every(NEVER));
    settle().await;
    assert_eq!(seen.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    lease.send_replace(true);
    assert!(next_turn(&mut seen).await, "the first turn of a term");
    settle().await;
    assert_eq!(
        seen.try_recv(),
        Err(mpsc::error::TryRecvError::Empty),
        "nothing more until the interval or a change"
    );
}

#[tokio::test]
async fn the_interval_brings_the_next_turns() {
    let (_lease, leader) = watch::channel(true);
    let (_task, mut seen) = spawn_reporting(leader, Cadence::Every(Duration::from_millis(1)));
    assert!(next_turn(&mut seen).await);
    assert!(!next_turn(&mut seen).await, "same term");
    assert!(!next_turn(&mut seen).await, "same term");
}

#[tokio::test]
async fn losing_the_lease_stops_the_turns_and_winning_it_again_starts_a_new_term() {
    let (lease, leader) = watch::channel(true);
    let (_task, mut seen) = spawn_reporting(leader, Cadence::Every(Duration::from_millis(1)));
    assert!(next_turn(&mut seen).await);
    assert!(!next_turn(&mut seen).await);
    lease.send_replace(false);
    // Drain what ran before the loss was seen; then nothing, however often the interval fires.
    settle().await;
    while seen.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(20)).await;
    settle().await;
    assert_eq!(seen.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    lease.send_replace(true);
    assert!(next_turn(&mut seen).await, "a new term starts afresh");
}

#[tokio::test]
async fn a_signalled_change_brings_a_turn_before_the_interval() {
    let (_lease, leader) = watch::channel(true);
    let (changed, changes) = watch::channel(());
    let (_task, mut seen) = spawn_reporting(leader, Cadence::EveryAndOnChange(NEVER, changes));
    assert!(next_turn(&mut seen).await);
    settle().await;
    assert_eq!(seen.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    changed.send_replace(());
    assert!(!next_turn(&mut seen).await, "a change is no new term");
    changed.send_replace(());
    assert!(!next_turn(&mut seen).await);
}

#[tokio::test]
async fn a_change_while_following_brings_no_turn() {
    let (lease, leader) = watch::channel(false);
    let (changed, changes) = watch::channel(());
    let (_task, mut seen) = spawn_reporting(leader, Cadence::EveryAndOnChange(NEVER, changes));
    changed.send_replace(());
    settle().await;
    assert_eq!(seen.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    lease.send_replace(true);
    assert!(next_turn(&mut seen).await);
}

#[tokio::test]
async fn a_turn_in_progress_finishes_when_the_lease_is_lost() {
    let (lease, leader) = watch::channel(true);
    let (release, gate) = oneshot::channel::<()>();
    let (done, mut finished) = mpsc::unbounded_channel();
    let mut gate = Some(gate);
    let _task = tokio::spawn(run_while_leading(
        leader,
        Cadence::Every(NEVER),
        move |_turn: Turn| {
            let (gate, done) = (gate.take(), done.clone());
            async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                let _ = done.send(());
            }
        },
    ));
    settle().await;
    lease.send_replace(false);
    settle().await;
    release.send(()).expect("the turn waits at the gate");
    assert_eq!(finished.recv().await, Some(()), "the turn ran to its end");
    settle().await;
    assert_eq!(
        finished.try_recv(),
        Err(mpsc::error::TryRecvError::Empty),
        "and no other turn followed"
    );
}

/// What a continuous duty saw: a turn began, or the lease was lost (`true`) or its task
/// ended (`false`).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Began { newly_elected: bool },
    Lost(bool),
}

#[tokio::test]
async fn continuously_restarts_a_returning_duty_and_waits_for_the_lease_after_a_loss() {
    let (lease, leader) = watch::channel(true);
    let (report, mut seen) = mpsc::unbounded_channel();
    let mut turns = 0;
    let task = tokio::spawn(run_while_leading(
        leader,
        Cadence::Continuously,
        move |mut turn: Turn| {
            turns += 1;
            let _ = report.send(Seen::Began {
                newly_elected: turn.newly_elected,
            });
            // The first turn stops on its own (a restart); the others run until the loss.
            let (report, restart) = (report.clone(), turns == 1);
            async move {
                if !restart {
                    let _ = report.send(Seen::Lost(turn.lost().await));
                }
            }
        },
    ));
    let mut next = async || seen.recv().await.expect("the helper is running");
    assert_eq!(
        next().await,
        Seen::Began {
            newly_elected: true
        }
    );
    assert_eq!(
        next().await,
        Seen::Began {
            newly_elected: false
        }
    );
    lease.send_replace(false);
    assert_eq!(next().await, Seen::Lost(true));
    settle().await;
    lease.send_replace(true);
    assert_eq!(
        next().await,
        Seen::Began {
            newly_elected: true
        }
    );
    drop(lease);
    assert_eq!(next().await, Seen::Lost(false));
    task.await
        .expect("the helper returns when the lease task is gone");
}

#[tokio::test]
async fn the_helper_returns_when_the_lease_task_is_gone() {
    for leading in [true, false] {
        let (lease, leader) = watch::channel(leading);
        let (task, _seen) = spawn_reporting(leader, Cadence::Every(NEVER));
        settle().await;
        drop(lease);
        task.await.expect("returns, leading or not");

        let (lease, leader) = watch::channel(leading);
        let (_changed, changes) = watch::channel(());
        let (task, _seen) = spawn_reporting(leader, Cadence::EveryAndOnChange(NEVER, changes));
        settle().await;
        drop(lease);
        task.await.expect("returns, leading or not");

        let (lease, leader) = watch::channel(leading);
        let task = tokio::spawn(run_while_leading(
            leader,
            Cadence::Continuously,
            |mut turn: Turn| async move {
                turn.lost().await;
            },
        ));
        settle().await;
        drop(lease);
        task.await.expect("returns, leading or not");
    }
}

#[tokio::test]
async fn the_helper_returns_when_the_changes_end() {
    let (_lease, leader) = watch::channel(true);
    let (changed, changes) = watch::channel(());
    let (task, mut seen) = spawn_reporting(leader, Cadence::EveryAndOnChange(NEVER, changes));
    assert!(next_turn(&mut seen).await);
    drop(changed);
    task.await.expect("returns");
}
