//! `live_locks`: every key of a collection with a live holder, read in one
//! round trip and judged in server time.

mod common;

use std::time::Duration;

use common::{db, wait_until};
use mongodb::bson::doc;
use mongoelector::{live_locks, Error, MongoLocker};

#[test]
fn lists_held_locks_only_sorted_by_key() {
    let db = db();
    let locker = |key: &str, ttl: Duration| {
        MongoLocker::builder(key, &db)
            .collection("locks")
            .ttl(ttl)
            .timeparanoid(false)
            .metadata(doc! { "job": key })
            .build()
            .unwrap()
    };
    assert!(
        live_locks(&db, "locks").unwrap().is_empty(),
        "no collection yet"
    );
    let (b, a) = (
        locker("b", Duration::from_secs(30)),
        locker("a", Duration::from_secs(30)),
    );
    let (gb, ga) = (b.lock().unwrap(), a.lock().unwrap());
    let released = locker("released", Duration::from_secs(30));
    released.lock().unwrap().release().unwrap();
    let short = locker("short", Duration::from_millis(300));
    let expiring = short.lock().unwrap();

    let listed = live_locks(&db, "locks").unwrap();
    let keys: Vec<&str> = listed.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "short"]);
    assert_eq!(listed[0].fence, ga.fence());
    assert_eq!(listed[1].fence, gb.fence());
    assert_eq!(listed[0].uuid, a.uuid());
    assert_eq!(listed[0].pid, std::process::id());
    assert_eq!(listed[0].metadata, Some(doc! { "job": "a" }));
    assert_eq!(listed[0], a.get_current().unwrap().unwrap());

    // Expired in server time: left out, though its document still says locked.
    assert!(wait_until(Duration::from_secs(5), || {
        live_locks(&db, "locks").unwrap().len() == 2
    }));
    drop(expiring);
    assert!(live_locks(&db, "other").unwrap().is_empty());
}

#[test]
fn an_elections_master_is_listed() {
    let db = db();
    let elector = common::elector(
        &db,
        "scheduler",
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    elector.poll().unwrap();
    assert!(elector.is_master());
    let listed = live_locks(&db, mongoelector::limits::DEFAULT_LOCK_COLLECTION).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "scheduler");
    assert_eq!(listed[0].uuid, elector.uuid());
    elector.stop().unwrap();
    assert!(
        live_locks(&db, mongoelector::limits::DEFAULT_LOCK_COLLECTION)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_damaged_lock_document_is_reported_by_name() {
    let db = db();
    db.collection("locks")
        .insert_one(
            doc! { "_id": "bad", "locked": true, "uuid": "u", "host": "h", "pid": 1_i64,
            "ts_created": "yesterday", "ts_expire": mongodb::bson::DateTime::now() },
        )
        .run()
        .unwrap();
    match live_locks(&db, "locks") {
        Err(Error::MalformedDocument { id, field, .. }) => {
            assert_eq!(id, "bad");
            assert_eq!(field, "ts_created");
        }
        other => panic!("expected MalformedDocument, got {other:?}"),
    }
}
