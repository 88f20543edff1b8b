//! Stored documents with expiries at the edge of what a date can hold (a
//! damaged document, another program's) give answers or typed errors,
//! never a panic: every sum of a stored date and a duration is checked.
//! Against the real server, with the last date it can store (the test
//! server keeps dates as Python's, up to the year 9999; chrono's own last
//! date, which MongoDB can store, is checked by the unit tests of the
//! sums themselves).

mod common;

use std::time::Duration;

use mongodb::bson::{doc, DateTime as BsonDate, Document};
use mongodb::sync::Database;
use mongoelector::{MongoElector, MongoLocker, MongoRwLock, MongoSemaphore};

/// The last millisecond the test server can store (9999-12-31T23:59:59.999Z).
fn last_date() -> BsonDate {
    BsonDate::from_millis(253_402_300_799_999)
}

fn entry(mode: Option<&str>) -> Document {
    let mut e = doc! {
        "uuid": "other", "fence": 1_i64, "host": "elsewhere", "pid": 1_i64,
        "ts_created": BsonDate::now(), "ts_expire": last_date(), "metadata": null,
    };
    if let Some(m) = mode {
        e.insert("mode", m);
    }
    e
}

fn put(db: &Database, collection: &str, d: Document) {
    db.collection::<Document>(collection)
        .insert_one(d)
        .run()
        .unwrap();
}

#[test]
fn a_permit_held_until_the_end_of_time_is_counted_not_a_panic() {
    let db = common::db();
    put(
        &db,
        "mongosemaphore",
        doc! { "_id": "k", "kind": "semaphore", "permits": 2_i64, "fence": 1_i64, "holders": [entry(None)] },
    );
    let sem = MongoSemaphore::builder("k", &db, 2)
        .takeover_grace(Duration::from_secs(1))
        .timeparanoid(false)
        .build()
        .unwrap();
    assert_eq!(sem.available().unwrap(), 1);
    assert_eq!(sem.holders().unwrap().len(), 1);
    let mine = sem.try_acquire().unwrap();
    let after = db
        .collection::<Document>("mongosemaphore")
        .find_one(doc! {})
        .run()
        .unwrap();
    let mine = mine.unwrap_or_else(|| panic!("the second permit: {after:?}"));
    assert!(sem
        .try_acquire_for(Duration::from_millis(300))
        .unwrap()
        .is_none());
    drop(mine);
}

#[test]
fn a_writer_and_a_lock_held_until_the_end_of_time_are_reported_not_a_panic() {
    let db = common::db();
    put(
        &db,
        "mongorwlock",
        doc! { "_id": "k", "kind": "rwlock", "fence": 1_i64, "holders": [entry(Some("write"))] },
    );
    let rw = MongoRwLock::builder("k", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    assert_eq!(rw.writer().unwrap().unwrap().uuid, "other");
    assert!(rw
        .try_read_for(Duration::from_millis(300))
        .unwrap()
        .is_none());

    put(
        &db,
        "mongolocker",
        doc! {
            "_id": "k", "kind": "lock", "locked": true, "uuid": "other", "host": "elsewhere",
            "pid": 1_i64, "ts_created": BsonDate::now(), "ts_expire": last_date(), "fence": 1_i64,
        },
    );
    let locker = MongoLocker::builder("k", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    assert_eq!(locker.get_current().unwrap().unwrap().uuid, "other");
    assert!(locker
        .try_lock_for(Duration::from_millis(300))
        .unwrap()
        .is_none());
    // A follower and an observer of that lock keep polling.
    let elector = MongoElector::builder("k", &db)
        .ttl(Duration::from_secs(1))
        .retry_interval(Duration::from_millis(100))
        .timeparanoid(false)
        .build()
        .unwrap();
    let seen = elector.observe();
    elector.start(false).unwrap();
    let master = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(master.map(|m| m.uuid).as_deref(), Some("other"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!elector.is_master());
    assert!(
        elector.healthy(Duration::MAX),
        "an absurd tolerance is no panic"
    );
    elector.stop().unwrap();
}
