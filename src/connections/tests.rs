use futures::FutureExt as _;

use super::*;

fn was_evicted(connection: &OpenConnection) -> bool {
    connection.evicted().now_or_never().is_some()
}

#[test]
fn below_the_limit_every_connection_gets_a_place() {
    let table = ConnectionTable::new(3);
    let open: Vec<_> = (0..3).map(|_| table.admit().expect("a place")).collect();
    assert_eq!(table.len(), 3);
    assert!(open.iter().all(|c| !was_evicted(c)));
    drop(open);
    assert!(table.is_empty(), "dropping a connection frees its place");
}

#[test]
fn when_full_the_longest_idle_connection_makes_room() {
    let evicted = Counter::default();
    let table = ConnectionTable::counting(3, evicted.clone(), Counter::default());
    let first = table.admit().expect("a place");
    let second = table.admit().expect("a place");
    let third = table.admit().expect("a place");

    let fourth = table.admit().expect("an idle connection makes room");
    assert!(was_evicted(&first), "the first is idle the longest");
    assert!(!was_evicted(&second) && !was_evicted(&third) && !was_evicted(&fourth));
    assert_eq!(table.len(), 3);
    assert_eq!(evicted.get(), 1);

    // The evicted connection closing later does not free the place it lost.
    drop(first);
    assert_eq!(table.len(), 3);
    let _fifth = table.admit().expect("an idle connection makes room");
    assert!(was_evicted(&second));
    assert_eq!(evicted.get(), 2);
}

#[test]
fn a_connection_with_a_request_in_flight_is_never_evicted() {
    let table = ConnectionTable::new(2);
    let busy = table.admit().expect("a place");
    let idle = table.admit().expect("a place");
    let request = busy.request_started();
    assert!(busy.is_busy());

    let _newcomer = table.admit().expect("the idle one makes room");
    assert!(was_evicted(&idle));
    assert!(!was_evicted(&busy), "the older but busy connection stays");

    // The places hold the busy connection and the idle newcomer: the newcomer goes next.
    let _another = table.admit().expect("the newcomer makes room");
    assert!(!was_evicted(&busy));
    drop(request);
    assert!(!busy.is_busy());
}

#[test]
fn when_every_connection_is_busy_a_new_one_is_refused() {
    let refused = Counter::default();
    let table = ConnectionTable::counting(2, Counter::default(), refused.clone());
    let a = table.admit().expect("a place");
    let b = table.admit().expect("a place");
    let _ra = a.request_started();
    let rb = b.request_started();
    assert!(table.admit().is_none());
    assert_eq!(refused.get(), 1);
    assert!(!was_evicted(&a) && !was_evicted(&b));

    // Once b's request finishes, b is idle and makes room.
    drop(rb);
    let _c = table.admit().expect("b makes room");
    assert!(was_evicted(&b));
    assert!(!was_evicted(&a));
}

#[test]
fn finishing_a_request_makes_a_connection_the_newest_idle() {
    let table = ConnectionTable::new(2);
    let old = table.admit().expect("a place");
    let young = table.admit().expect("a place");
    // `old` answers a request after `young` opened: `young` is now idle the longest.
    drop(old.request_started());
    let _newcomer = table.admit().expect("room");
    assert!(was_evicted(&young));
    assert!(!was_evicted(&old));
}

#[test]
fn a_limit_of_zero_means_one() {
    let table = ConnectionTable::new(0);
    assert_eq!(table.limit(), 1);
    let first = table.admit().expect("a place");
    let _second = table.admit().expect("room");
    assert!(was_evicted(&first));
}

#[test]
fn longest_idle_is_the_smallest_clock_and_none_without_candidates() {
    assert_eq!(
        longest_idle([(7, 30), (3, 10), (9, 20)].into_iter()),
        Some(3)
    );
    assert_eq!(longest_idle(std::iter::empty()), None);
}
