//! The fair-order rule: a grant that passes over a live waiter ahead of
//! it in the server's queue fails; lapsed waiters, grants to calls that
//! did not queue, a head's claim and holes in the stream do not.

use super::{check_raw, fails};

/// A lock document's commit: held by `fence` (created at `created`) for
/// call `run`, with the queue after the event.
fn commit(seq: u64, fence: i64, created: i64, run: &str, queue: &str) -> String {
    let held = if fence < 0 {
        "-".to_owned()
    } else {
        format!("{fence}:{created}:u-{run}")
    };
    format!("commit seq={seq} coll=mongolocker key=k op=update held={held} released=-1 wall=-1 run={run} queue={queue}")
}

#[test]
fn a_grant_that_passes_over_a_live_waiter_fails() {
    // a holds; b then c queue; the release hands to c, over b, whose place
    // lasts 1.5 s past the handover.
    let lines = [
        commit(1, 10, 1_000, "a", "b:2500,c:2600"),
        commit(2, 11, 1_000, "c", "b:2500"),
    ]
    .map(String::from);
    let r = check_raw(&lines);
    assert!(fails(&r, "fair order"), "{:?}", r.violations);
    assert_eq!(r.fair_grants_judged, 1);
}

#[test]
fn the_head_and_a_waiter_whose_place_lapsed_pass() {
    // To the head: fine.
    let to_head = [
        commit(1, 10, 1_000, "a", "b:2500,c:2600"),
        commit(2, 11, 1_100, "b", "c:2600"),
        // b's claim keeps the fence: not a new grant.
        commit(3, 11, 1_200, "b", "c:2600"),
    ]
    .map(String::from);
    let r = check_raw(&to_head);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.fair_grants_judged, 1);
    // b's place lapsed (its lease ended before the grant, within the
    // slack): c may go first.
    let lapsed = [
        commit(1, 10, 1_000, "a", "b:2500,c:4600"),
        commit(2, 11, 3_000, "c", "b:2500"),
    ]
    .map(String::from);
    assert!(check_raw(&lapsed).violations.is_empty());
}

#[test]
fn racing_grants_and_holes_are_not_judged() {
    // A call that was not queued (a racing or forced attempt) took it.
    let racing = [
        commit(1, -1, -1, "-", "b:2500"),
        commit(2, 11, 1_000, "z", "b:2500"),
    ]
    .map(String::from);
    let r = check_raw(&racing);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.fair_grants_judged, 0);
    // A hole between the two: the state before is not known.
    let hole = [
        commit(1, 10, 1_000, "a", "b:2500,c:2600"),
        "commit seq=2 op=gap coll=mongolocker key=k".to_owned(),
        commit(3, 11, 1_000, "c", "b:2500"),
    ];
    assert!(check_raw(&hole).violations.is_empty());
}
