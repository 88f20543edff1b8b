//! Fences only grow on a key whose document is deleted between holders,
//! as the Python-compatible release deletes it: the counter outlives the
//! document. Against the real server, both modes.

mod common;

use std::time::Duration;

use mongodb::bson::{doc, DateTime as BsonDate, Document};
use mongodb::sync::Database;
use mongoelector::limits::{DEFAULT_LOCK_COLLECTION, PYTHON_ELECTOR_COLLECTION};
use mongoelector::{MongoElector, MongoLocker};

fn compat(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(Duration::from_secs(30))
        .python_compatible(true)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn lock_doc(db: &Database, key: &str) -> Option<Document> {
    doc_in(db, DEFAULT_LOCK_COLLECTION, key)
}

fn doc_in(db: &Database, collection: &str, key: &str) -> Option<Document> {
    db.collection::<Document>(collection)
        .find_one(doc! { "_id": key })
        .run()
        .unwrap()
}

#[test]
fn a_fence_ahead_of_the_clock_is_not_forgotten_when_the_document_is_deleted() {
    let db = common::db();
    // A counter that ran ahead of the server's clock (more than 1,000
    // grants a millisecond, or a primary whose clock went back): a free
    // lock whose last fence is a thousand seconds ahead.
    let ahead = BsonDate::now().timestamp_millis() * 1000 + 1_000_000_000;
    db.collection::<Document>(DEFAULT_LOCK_COLLECTION)
        .insert_one(doc! { "_id": "k", "locked": false, "fence": ahead })
        .run()
        .unwrap();
    let (a, b) = (compat(&db, "k"), compat(&db, "k"));
    let first = a.lock().unwrap();
    let f1 = first.fence();
    assert!(f1 > ahead);
    first.release().unwrap();
    assert!(lock_doc(&db, "k").is_none(), "the release deleted it");
    let second = b.lock().unwrap();
    assert!(
        second.fence() > f1,
        "fence {} after {f1}: the delete took the counter with it",
        second.fence()
    );
    assert_eq!(
        lock_doc(&db, "k").unwrap().get_i64("fence").unwrap(),
        second.fence(),
        "the document keeps the fence its holder was given"
    );
}

#[test]
fn fences_grow_through_quick_takes_and_deleting_releases() {
    let db = common::db();
    let lockers = [compat(&db, "k"), compat(&db, "k")];
    let mut last = 0;
    // Each release deletes the document; the next take, often in the same
    // server millisecond, must still be given a greater fence.
    for round in 0..200 {
        let guard = lockers[round % 2].try_lock().unwrap().expect("free");
        assert!(
            guard.fence() > last,
            "round {round}: {} after {last}",
            guard.fence()
        );
        last = guard.fence();
        guard.release().unwrap();
    }
}

#[test]
fn an_elector_term_after_a_deleting_release_has_a_greater_fence() {
    let db = common::db();
    let ahead = BsonDate::now().timestamp_millis() * 1000 + 1_000_000_000;
    db.collection::<Document>(PYTHON_ELECTOR_COLLECTION)
        .insert_one(doc! { "_id": "m", "locked": false, "fence": ahead })
        .run()
        .unwrap();
    let elector = |db: &Database| {
        MongoElector::builder("m", db)
            .ttl(Duration::from_secs(5))
            .python_compatible(true)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    let (one, two) = (elector(&db), elector(&db));
    let term = |e: &MongoElector| {
        let events = e.events();
        e.start(false).unwrap();
        loop {
            match events.recv_timeout(Duration::from_secs(20)).unwrap() {
                mongoelector::Event::BecameMaster { fence, .. } => return fence,
                _ => continue,
            }
        }
    };
    let f1 = term(&one);
    assert!(f1 > ahead);
    one.stop().unwrap();
    assert!(
        doc_in(&db, PYTHON_ELECTOR_COLLECTION, "m").is_none(),
        "the stop deleted it"
    );
    let f2 = term(&two);
    assert!(f2 > f1, "term fence {f2} after {f1}");
    two.stop().unwrap();
}
