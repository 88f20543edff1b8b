use super::stream::{change_of, key_of, relevant};
use super::*;
use mongodb::bson::doc;
use mongodb::change_stream::event::ChangeStreamEvent;
use std::time::Instant;

fn event(op: &str, updated: Option<Document>) -> ChangeStreamEvent<Document> {
    let mut d = doc! {
        "_id": { "_data": "00" },
        "operationType": op,
        "documentKey": { "_id": "k" },
    };
    if let Some(u) = updated {
        d.insert(
            "updateDescription",
            doc! { "updatedFields": u, "removedFields": [] },
        );
    }
    mongodb::bson::from_document(d).unwrap()
}

/// A hub of a client that never connects, its stream thread marked as
/// running so that none starts: changes come from `changed_key`.
fn quiet_hub() -> Arc<Hub> {
    let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/")
        .unwrap()
        .database("turns");
    let hub = Hub::for_collection(&Deployment::of(&db), "locks");
    hub.state.lock().running = true;
    hub
}

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(50)
}

#[test]
fn a_change_calls_for_one_attempt_among_alike_waiters() {
    let hub = quiet_hub();
    let mut a = hub.interest_alike("k", Some("lock"));
    let mut b = hub.interest_alike("k", Some("lock"));
    let mut writer = hub.interest_alike("k", None);
    let mut elsewhere = hub.interest_alike("other", Some("lock"));
    hub.changed_key("k", Change::Unknown);
    assert!(a.wait_turn(soon()), "the first to look attempts");
    assert!(!b.wait_turn(soon()), "the other waits for its answer");
    assert!(
        writer.wait_turn(soon()),
        "an unalike waiter attempts anyway"
    );
    assert!(!elsewhere.wait_turn(soon()), "another key did not change");
    // A refusal answers the change for both.
    a.rearm();
    a.attempted(true);
    assert!(!b.wait_turn(soon()));
    assert!(!a.wait_turn(soon()));
    // An error answers nothing: the next change is still the other's to try.
    hub.changed_key("k", Change::Unknown);
    assert!(b.wait_turn(soon()));
    b.rearm();
    b.attempted(false);
    assert!(a.wait_turn(soon()), "not answered: its turn");
    // A waiter that leaves with the turn hands it on.
    drop(a);
    hub.changed_key("k", Change::Unknown);
    assert!(b.wait_turn(soon()));
    let mut c = hub.interest_alike("k", Some("lock"));
    hub.changed_key("k", Change::Unknown);
    assert!(!c.wait_turn(soon()), "b's turn");
    drop(b);
    assert!(c.wait_turn(soon()), "handed on");
    c.rearm();
    c.attempted(true);
    // Other kinds of waiters of one key take turns of their own.
    let mut reader = hub.interest_alike("k", Some("read"));
    hub.changed_key("k", Change::Unknown);
    assert!(c.wait_turn(soon()));
    assert!(reader.wait_turn(soon()));
}

#[test]
fn a_waiter_for_the_turn_takes_it_once_the_attempt_fails() {
    let hub = quiet_hub();
    let mut a = hub.interest_alike("k", Some("lock"));
    let mut b = hub.interest_alike("k", Some("lock"));
    hub.changed_key("k", Change::Unknown);
    assert!(a.wait_turn(soon()));
    let started = Instant::now();
    let waiting = std::thread::spawn(move || {
        let took = b.wait_turn(Instant::now() + Duration::from_secs(10));
        (took, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(100));
    a.rearm();
    let failed = Instant::now();
    a.attempted(false);
    let (took, at) = waiting.join().unwrap();
    assert!(took, "its turn");
    assert!(at >= failed && at - started < Duration::from_secs(5));
}

#[test]
fn reopens_back_off_with_jitter() {
    assert_eq!(reopen_delay(0.5), Duration::from_secs(1));
    assert_eq!(reopen_delay(0.0), Duration::from_millis(750));
    assert!(reopen_delay(0.999) < Duration::from_millis(1250));
    let j = jitter();
    assert!((0.0..1.0).contains(&j));
}

#[test]
fn releases_and_new_holders_are_relevant_renewals_are_not() {
    assert!(relevant(&event("insert", None)));
    assert!(relevant(&event("delete", None)));
    assert!(relevant(&event("update", Some(doc! { "locked": false }))));
    assert!(relevant(&event(
        "update",
        Some(doc! { "uuid": "b", "fence": 2_i64 })
    )));
    assert!(!relevant(&event(
        "update",
        Some(doc! { "ts_expire": 1_i64 })
    )));
    assert!(relevant(&event(
        "update",
        Some(doc! { "holders": [], "ts_released": 1_i64 })
    )));
    assert!(!relevant(&event(
        "update",
        Some(doc! { "holders.0.ts_expire": 1_i64 })
    )));
    assert!(!relevant(&event(
        "update",
        Some(doc! { "intent": { "uuid": "w" } })
    )));
    assert_eq!(key_of(&event("update", None)).as_deref(), Some("k"));
}

#[test]
fn a_fair_waiter_wakes_only_for_its_handover_or_an_unknown_change() {
    let hub = quiet_hub();
    let (slot1, slot2) = (HandoverSlot::default(), HandoverSlot::default());
    let mut mine = hub.interest_for_call("k", "c1", &slot1, true);
    let mut next = hub.interest_for_call("k", "c2", &slot2, true);
    let mut calls = hub.waiting_calls("k");
    calls.sort();
    assert_eq!(calls, ["c1", "c2"], "the calls a release may hand over to");
    let mut racing = hub.interest_alike("k", None);
    hub.changed_key("k", Change::Kept);
    assert!(!mine.wait_turn(soon()), "the holder stayed");
    assert!(racing.wait_turn(soon()), "a racing waiter looks anyway");
    hub.changed_key("k", Change::To("someone-else"));
    assert!(!mine.wait_turn(soon()));
    assert!(!next.wait_turn(soon()));
    // A releaser of this process hands it to c1: c1 alone wakes.
    hub.handed("k", "c1", Some(handover(7)));
    assert!(mine.wait_turn(soon()));
    assert!(!next.wait_turn(soon()));
    assert_eq!(slot1.lock().take().map(|h| h.info.fence), Some(7));
    assert!(
        slot2.lock().is_none(),
        "only the handed call's slot is filled"
    );
    // A wake-up without a handover (claimed by a round trip) leaves none.
    hub.handed("k", "c2", None);
    assert!(next.wait_turn(soon()));
    assert!(slot2.lock().is_none());
    hub.changed_key("k", Change::Unknown);
    assert!(
        mine.wait_turn(soon()) && next.wait_turn(soon()),
        "freed: all look"
    );
    // A handover seen before the wait (during an attempt) is not missed.
    mine.rearm();
    hub.changed_key("k", Change::To("c1"));
    assert!(mine.wait_turn(soon()));
    drop(mine);
    assert!(
        !hub.state.lock().keys["k"].calls.contains_key("c1"),
        "a call that left is forgotten"
    );
    hub.handed("k", "c1", Some(handover(8)));
    assert!(
        slot1.lock().is_none(),
        "nothing is left for a call that left"
    );
    assert_eq!(hub.waiting_calls("k"), ["c2"]);
}

fn handover(fence: i64) -> Handover {
    let now = chrono::Utc::now();
    Handover {
        info: crate::foundation::document::LockInfo {
            key: "k".into(),
            uuid: "u".into(),
            host: "h".into(),
            pid: 1,
            created: now,
            expires: now + chrono::TimeDelta::seconds(2),
            fence,
            metadata: None,
        },
        sent: crate::foundation::moment::Moment::now(),
    }
}

#[test]
fn a_handover_says_whether_it_granted_the_whole_ttl() {
    let h = handover(1);
    assert!(h.grants_ttl(std::time::Duration::from_secs(2)));
    assert!(!h.grants_ttl(std::time::Duration::from_millis(1500)));
}

#[test]
fn a_change_says_whom_it_hands_the_lock_to() {
    assert_eq!(
        change_of(&event(
            "update",
            Some(doc! { "uuid": "b", "run": "c2", "fence": 2_i64 })
        )),
        Change::To("c2")
    );
    assert_eq!(
        change_of(&event(
            "update",
            Some(doc! { "locked": false, "run": "c2" })
        )),
        Change::Unknown,
        "freed"
    );
    assert_eq!(
        change_of(&event("update", Some(doc! { "fence": 3_i64 }))),
        Change::Kept
    );
    assert_eq!(change_of(&event("delete", None)), Change::Unknown);
    let mut replaced = event("replace", None);
    replaced.full_document = Some(doc! { "_id": "k", "locked": true, "run": "c3" });
    assert_eq!(change_of(&replaced), Change::To("c3"));
    replaced.full_document = Some(doc! { "_id": "k", "locked": true });
    assert_eq!(change_of(&replaced), Change::Kept, "a holder without a run");
    replaced.full_document = Some(doc! { "_id": "k" });
    assert_eq!(change_of(&replaced), Change::Unknown, "free");
}
