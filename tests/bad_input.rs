//! Bad input gets a typed error naming the parameter or field; never a panic,
//! never a lock wrongly granted.

mod common;

use std::time::Duration;

use common::db;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;
use mongoelector::{Error, MongoLocker};

const STEP: Duration = Duration::from_millis(20);

fn parameter<T: std::fmt::Debug>(r: mongoelector::Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { parameter, reason }) => {
            assert!(!reason.is_empty());
            parameter
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn invalid_arguments_name_the_parameter() {
    let db = db();
    let build = |key: &str, collection: &str, ttl: Duration, step: Duration| {
        MongoLocker::builder(key, &db)
            .collection(collection)
            .ttl(ttl)
            .step(step)
            .build()
    };
    let (ok_ttl, ok_step) = (Duration::from_secs(5), STEP);
    let cases: Vec<(mongoelector::Result<MongoLocker>, &str)> = vec![
        (MongoLocker::new("", &db), "key"),
        (build("k", "", ok_ttl, ok_step), "collection"),
        (build("k", "a$b", ok_ttl, ok_step), "collection"),
        (build("k", "a\0b", ok_ttl, ok_step), "collection"),
        (build("k", "system.locks", ok_ttl, ok_step), "collection"),
        (build("k", "c", Duration::ZERO, ok_step), "ttl"),
        (build("k", "c", Duration::from_millis(1), ok_step), "ttl"),
        (build("k", "c", Duration::MAX, ok_step), "ttl"),
        (build("k", "c", ok_ttl, Duration::ZERO), "step"),
        (
            build("k", "c", ok_ttl, Duration::from_secs(u64::MAX)),
            "step",
        ),
    ];
    for (i, (result, expected)) in cases.into_iter().enumerate() {
        assert_eq!(parameter(result), expected, "case {i}");
    }
    let locker = MongoLocker::new("k", &db).unwrap();
    assert_eq!(
        parameter(locker.acquire(false, Some(STEP), STEP, false)),
        "timeout"
    );
    assert_eq!(
        parameter(locker.acquire(true, None, Duration::ZERO, false)),
        "step"
    );
    assert_eq!(
        parameter(locker.acquire(true, None, Duration::MAX, false)),
        "step"
    );
    let message = locker
        .acquire(false, Some(STEP), STEP, false)
        .unwrap_err()
        .to_string();
    assert!(message.contains("timeout"), "{message}");
    // None of that touched the database.
    assert!(db.list_collection_names().run().unwrap().is_empty());
}

fn plant(db: &Database, key: &str, overrides: Document) {
    let now = mongodb::bson::DateTime::now();
    let mut d = doc! {
        "_id": key, "locked": true, "uuid": "other", "host": "h", "pid": 1_i64,
        "ts_created": now,
        "ts_expire": mongodb::bson::DateTime::from_millis(now.timestamp_millis() + 3_600_000),
        "fence": 5_i64,
    };
    for (k, v) in overrides {
        if v == Bson::Null {
            d.remove(&k);
        } else {
            d.insert(k, v);
        }
    }
    db.collection::<Document>("mongolocker")
        .insert_one(d)
        .run()
        .unwrap();
}

#[test]
fn malformed_lock_documents_are_reported_and_never_taken() {
    let db = db();
    let cases: Vec<(Document, &str)> = vec![
        (doc! {"locked": "yes"}, "locked"),
        (doc! {"ts_expire": "tomorrow"}, "ts_expire"),
        (doc! {"ts_expire": Bson::Null}, "ts_expire"),
        (doc! {"fence": "five"}, "fence"),
        (doc! {"fence": -3_i64}, "fence"),
        (doc! {"uuid": 17_i32}, "uuid"),
        (doc! {"pid": "one"}, "pid"),
        (doc! {"host": Bson::Null}, "host"),
        (doc! {"ts_created": 12_i32}, "ts_created"),
    ];
    for (i, (overrides, field)) in cases.into_iter().enumerate() {
        let key = format!("bad{i}");
        plant(&db, &key, overrides);
        let before: Document = db
            .collection("mongolocker")
            .find_one(doc! {"_id": &key})
            .run()
            .unwrap()
            .unwrap();
        let locker = MongoLocker::builder(&key, &db)
            .timeparanoid(false)
            .build()
            .unwrap();
        let check = |r: mongoelector::Result<bool>, what: &str| match r {
            Err(Error::MalformedDocument {
                field: f,
                id,
                collection,
                ..
            }) => {
                assert_eq!(
                    (f, id.as_str(), collection.as_str()),
                    (field, key.as_str(), "mongolocker"),
                    "{what}"
                );
            }
            other => panic!("case {i} {what}: expected MalformedDocument({field}), got {other:?}"),
        };
        check(locker.acquire(false, None, STEP, false), "acquire");
        check(locker.locked(), "locked");
        check(locker.owned(), "owned");
        check(locker.get_current().map(|c| c.is_some()), "get_current");
        let after: Document = db
            .collection("mongolocker")
            .find_one(doc! {"_id": &key})
            .run()
            .unwrap()
            .unwrap();
        assert_eq!(before, after, "case {i}: the document was not changed");
        assert!(
            locker.touch().unwrap().is_none(),
            "case {i}: nothing granted"
        );
    }
}

#[test]
fn force_does_not_take_a_lock_whose_fence_it_cannot_grow() {
    let db = db();
    plant(&db, "badfence", doc! {"fence": "x"});
    let locker = MongoLocker::builder("badfence", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    assert!(matches!(
        locker.acquire(false, None, STEP, true),
        Err(Error::MalformedDocument { field: "fence", .. })
    ));
    // A lock with other damage is still forced over (force is for exactly that).
    plant(&db, "badexpiry", doc! {"ts_expire": "x", "fence": 8_i64});
    let locker = MongoLocker::builder("badexpiry", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    assert!(locker.acquire(false, None, STEP, true).unwrap());
    assert_eq!(locker.get_current().unwrap().unwrap().fence, 9);
}
