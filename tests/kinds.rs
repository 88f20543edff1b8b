//! One key, one kind: a lock (or an election), a semaphore and a
//! read-write lock given the same key and collection refuse each other's
//! documents with `Error::WrongKind` naming both kinds, and change
//! nothing. Against the real server.

mod common;

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::sync::Database;
use mongoelector::{Error, Event, MongoElector, MongoLocker, MongoRwLock, MongoSemaphore};

const COLL: &str = "coordination";

fn locker(db: &Database) -> MongoLocker {
    MongoLocker::builder("k", db)
        .collection(COLL)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn semaphore(db: &Database) -> MongoSemaphore {
    MongoSemaphore::builder("k", db, 2)
        .collection(COLL)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn rwlock(db: &Database) -> MongoRwLock {
    MongoRwLock::builder("k", db)
        .collection(COLL)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn stored(db: &Database) -> Document {
    db.collection::<Document>(COLL)
        .find_one(doc! { "_id": "k" })
        .run()
        .unwrap()
        .expect("the document")
}

#[track_caller]
fn wrong<T: std::fmt::Debug>(got: mongoelector::Result<T>, expected: &str, found: &str) {
    match got {
        Err(Error::WrongKind {
            key,
            collection,
            expected: e,
            found: f,
        }) => {
            assert_eq!(
                (key.as_str(), collection.as_str(), e, f.as_str()),
                ("k", COLL, expected, found)
            );
        }
        other => panic!("expected WrongKind {expected}/{found}, got {other:?}"),
    }
}

#[test]
fn a_held_lock_is_refused_by_a_semaphore_and_a_read_write_lock() {
    let db = common::db();
    let guard = locker(&db).lock().unwrap();
    let before = stored(&db);
    assert_eq!(before.get_str("kind"), Ok("lock"), "tagged");
    let sem = semaphore(&db);
    wrong(sem.try_acquire(), "semaphore", "lock");
    wrong(
        sem.try_acquire_for(Duration::from_millis(200)),
        "semaphore",
        "lock",
    );
    wrong(sem.available(), "semaphore", "lock");
    let rw = rwlock(&db);
    wrong(rw.try_read(), "rwlock", "lock");
    wrong(rw.try_write(), "rwlock", "lock");
    wrong(rw.readers(), "rwlock", "lock");
    assert_eq!(stored(&db), before, "nothing changed");
    drop(guard);
    // Free, it is still a lock's document.
    wrong(semaphore(&db).try_acquire(), "semaphore", "lock");
}

#[test]
fn a_semaphores_document_is_refused_by_a_lock_forced_or_not_and_by_an_elector() {
    let db = common::db();
    let sem = semaphore(&db);
    let _permit = sem.try_acquire().unwrap().unwrap();
    let before = stored(&db);
    assert_eq!(before.get_str("kind"), Ok("semaphore"));
    let l = locker(&db);
    wrong(l.try_lock(), "lock", "semaphore");
    wrong(
        l.acquire(false, None, Duration::from_millis(10), true),
        "lock",
        "semaphore",
    );
    wrong(l.get_current(), "lock", "semaphore");
    wrong(rwlock(&db).try_read(), "rwlock", "semaphore");
    let elector = MongoElector::builder("k", &db)
        .collection(COLL)
        .ttl(Duration::from_secs(2))
        .timeparanoid(false)
        .build()
        .unwrap();
    let events = elector.events();
    elector.start(false).unwrap();
    let failed = loop {
        match events.recv_timeout(Duration::from_secs(10)).unwrap() {
            Event::PollFailed { error } => break error,
            Event::BecameMaster { .. } => panic!("master on a semaphore's document"),
            _ => {}
        }
    };
    wrong(Err::<(), _>(failed), "lock", "semaphore");
    assert!(!elector.is_master());
    elector.stop().unwrap();
    assert_eq!(stored(&db), before, "nothing changed");
}

#[test]
fn a_read_write_locks_document_is_refused_by_a_semaphore_and_a_lock() {
    let db = common::db();
    let rw = rwlock(&db);
    let _reader = rw.try_read().unwrap().unwrap();
    let before = stored(&db);
    assert_eq!(before.get_str("kind"), Ok("rwlock"));
    wrong(semaphore(&db).try_acquire(), "semaphore", "rwlock");
    wrong(locker(&db).try_lock(), "lock", "rwlock");
    assert_eq!(stored(&db), before);
    // A second reader of the same kind is fine.
    assert!(rwlock(&db).try_read().unwrap().is_some());
}

#[test]
fn an_untagged_document_is_judged_by_its_fields() {
    let db = common::db();
    let coll = db.collection::<Document>(COLL);
    // A Python node's lock, which has no `kind`.
    let until = mongodb::bson::DateTime::from_millis(
        mongodb::bson::DateTime::now().timestamp_millis() + 60_000,
    );
    coll.insert_one(doc! {
        "_id": "k", "locked": true, "host": "py", "uuid": "p", "pid": 1,
        "ts_created": mongodb::bson::DateTime::now(), "ts_expire": until,
    })
    .run()
    .unwrap();
    wrong(semaphore(&db).try_acquire(), "semaphore", "lock");
    wrong(rwlock(&db).try_write(), "rwlock", "lock");
    assert!(locker(&db).try_lock().unwrap().is_none(), "a lock: held");
    // A semaphore's document from before `kind`: still a semaphore's.
    coll.replace_one(
        doc! { "_id": "k" },
        doc! { "_id": "k", "permits": 2_i64, "fence": 1_i64, "holders": [] },
    )
    .run()
    .unwrap();
    wrong(locker(&db).try_lock(), "lock", "semaphore");
    wrong(rwlock(&db).try_read(), "rwlock", "semaphore");
    let permit = semaphore(&db).try_acquire().unwrap();
    assert!(permit.is_some());
    assert_eq!(
        stored(&db).get_str("kind"),
        Ok("semaphore"),
        "tagged by its first grant"
    );
}
