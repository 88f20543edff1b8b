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
    assert!(locker.get_current().unwrap().unwrap().fence > 8);
}

/// What a bad input must produce.
#[derive(Debug)]
enum Expect {
    /// `Error::InvalidArgument` naming this parameter.
    Parameter(&'static str),
    /// `Error::MalformedDocument` naming this field.
    Field(&'static str),
}

fn matches(result: &mongoelector::Result<()>, expect: &Expect) -> bool {
    match (result, expect) {
        (Err(Error::InvalidArgument { parameter, .. }), Expect::Parameter(p)) => parameter == p,
        (Err(Error::MalformedDocument { field, .. }), Expect::Field(f)) => field == f,
        _ => false,
    }
}

type Call<'a> = Box<dyn Fn() -> mongoelector::Result<()> + 'a>;

/// One table: invalid calls, and documents planted in the lock and status
/// collections by "someone else". Each gets its typed error naming the
/// parameter or field; nothing panics; no lock is granted.
#[test]
fn every_bad_input_gets_its_typed_error() {
    use mongoelector::MongoElector;
    let db = db();
    let s = Duration::from_secs(5);
    let resource = db.collection::<Document>("resource");
    let unit = |r: mongoelector::Result<MongoLocker>| r.map(drop);
    let unit_e = |r: mongoelector::Result<MongoElector>| r.map(drop);
    let locker = |key: &str| {
        MongoLocker::builder(key, &db)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    let elector = |key: &str| MongoElector::builder(key, &db).build().unwrap();
    let mut table: Vec<(&str, Call<'_>, Expect)> = vec![
        (
            "empty key",
            Box::new(|| unit(MongoLocker::new("", &db))),
            Expect::Parameter("key"),
        ),
        (
            "key with a NUL byte",
            Box::new(|| unit(MongoLocker::new("a\0b", &db))),
            Expect::Parameter("key"),
        ),
        (
            "empty collection",
            Box::new(|| unit(MongoLocker::builder("k", &db).collection("").build())),
            Expect::Parameter("collection"),
        ),
        (
            "$ in collection",
            Box::new(|| unit(MongoLocker::builder("k", &db).collection("a$b").build())),
            Expect::Parameter("collection"),
        ),
        (
            "NUL in collection",
            Box::new(|| unit(MongoLocker::builder("k", &db).collection("a\0b").build())),
            Expect::Parameter("collection"),
        ),
        (
            "system. collection",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .collection("system.x")
                        .build(),
                )
            }),
            Expect::Parameter("collection"),
        ),
        (
            "zero ttl",
            Box::new(|| unit(MongoLocker::builder("k", &db).ttl(Duration::ZERO).build())),
            Expect::Parameter("ttl"),
        ),
        (
            "tiny ttl",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .ttl(Duration::from_millis(5))
                        .build(),
                )
            }),
            Expect::Parameter("ttl"),
        ),
        (
            "absurd ttl",
            Box::new(|| unit(MongoLocker::builder("k", &db).ttl(Duration::MAX).build())),
            Expect::Parameter("ttl"),
        ),
        (
            "zero step",
            Box::new(|| unit(MongoLocker::builder("k", &db).step(Duration::ZERO).build())),
            Expect::Parameter("step"),
        ),
        (
            "absurd step",
            Box::new(|| unit(MongoLocker::builder("k", &db).step(Duration::MAX).build())),
            Expect::Parameter("step"),
        ),
        (
            "absurd takeover grace",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .takeover_grace(Duration::MAX)
                        .build(),
                )
            }),
            Expect::Parameter("takeover_grace"),
        ),
        (
            "absurd hold_at_least",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .hold_at_least(Duration::MAX)
                        .build(),
                )
            }),
            Expect::Parameter("hold_at_least"),
        ),
        (
            "metadata key starting with $",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .metadata(doc! {"$set": 1})
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "metadata key with a dot",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .metadata(doc! {"a.b": 1})
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "metadata key with a NUL",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .metadata(doc! {"a\0b": 1})
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "nested metadata key starting with $",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .metadata(doc! {"ok": [{"$where": "x"}]})
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "metadata over 16 KiB",
            Box::new(|| {
                unit(
                    MongoLocker::builder("k", &db)
                        .metadata(
                            doc! {"blob": "x".repeat(mongoelector::limits::MAX_METADATA_BYTES)},
                        )
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "metadata nested too deep",
            Box::new(|| {
                let mut deep = doc! {"leaf": 1};
                for _ in 0..=mongoelector::limits::MAX_METADATA_DEPTH {
                    deep = doc! {"d": deep};
                }
                unit(MongoLocker::builder("k", &db).metadata(deep).build())
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "elector: metadata key starting with $",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .metadata(doc! {"$bad": 1})
                        .build(),
                )
            }),
            Expect::Parameter("metadata"),
        ),
        (
            "elector: step_down with a hold-off over an hour",
            Box::new(|| {
                MongoElector::new("k", &db)
                    .unwrap()
                    .step_down(Duration::from_secs(3601))
                    .map(drop)
            }),
            Expect::Parameter("hold_off"),
        ),
        (
            "elector: absurd takeover grace",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .takeover_grace(Duration::from_secs(7200))
                        .build(),
                )
            }),
            Expect::Parameter("takeover_grace"),
        ),
        (
            "timeout without blocking",
            Box::new(|| locker("k").acquire(false, Some(s), STEP, false).map(drop)),
            Expect::Parameter("timeout"),
        ),
        (
            "acquire with zero step",
            Box::new(|| {
                locker("k")
                    .acquire(true, Some(s), Duration::ZERO, false)
                    .map(drop)
            }),
            Expect::Parameter("step"),
        ),
        (
            "acquire with absurd step",
            Box::new(|| {
                locker("k")
                    .acquire(true, None, Duration::MAX, true)
                    .map(drop)
            }),
            Expect::Parameter("step"),
        ),
        (
            "elector empty key",
            Box::new(|| unit_e(MongoElector::new("", &db))),
            Expect::Parameter("key"),
        ),
        (
            "elector key with a NUL byte (no thread can be named after it)",
            Box::new(|| unit_e(MongoElector::new("a\0b", &db))),
            Expect::Parameter("key"),
        ),
        (
            "elector zero ttl",
            Box::new(|| unit_e(MongoElector::builder("k", &db).ttl(Duration::ZERO).build())),
            Expect::Parameter("ttl"),
        ),
        (
            "elector zero retry",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .retry_interval(Duration::ZERO)
                        .build(),
                )
            }),
            Expect::Parameter("retry_interval"),
        ),
        (
            "elector retry over ttl",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .ttl(s)
                        .retry_interval(s * 2)
                        .build(),
                )
            }),
            Expect::Parameter("retry_interval"),
        ),
        (
            "elector bad collection",
            Box::new(|| unit_e(MongoElector::builder("k", &db).collection("$x").build())),
            Expect::Parameter("collection"),
        ),
        (
            "elector bad status collection",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .status_collection("")
                        .build(),
                )
            }),
            Expect::Parameter("status_collection"),
        ),
        (
            "elector same collections",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .collection("c")
                        .status_collection("c")
                        .build(),
                )
            }),
            Expect::Parameter("status_collection"),
        ),
        (
            "elector python-compatible lock collection as status collection",
            Box::new(|| {
                unit_e(
                    MongoElector::builder("k", &db)
                        .python_compatible(true)
                        .status_collection(mongoelector::limits::PYTHON_ELECTOR_COLLECTION)
                        .build(),
                )
            }),
            Expect::Parameter("status_collection"),
        ),
    ];
    // Lock documents someone else wrote, each on a key of its own.
    let lock_docs: Vec<(&str, Document, &'static str)> = vec![
        ("m-locked", doc! {"locked": "yes"}, "locked"),
        ("m-expire", doc! {"ts_expire": "soon"}, "ts_expire"),
        ("m-noexpire", doc! {"ts_expire": Bson::Null}, "ts_expire"),
        ("m-fence", doc! {"fence": 1.5}, "fence"),
        ("m-negfence", doc! {"fence": -1_i64}, "fence"),
        ("m-uuid", doc! {"uuid": [1, 2]}, "uuid"),
        ("m-pid", doc! {"pid": -5_i64}, "pid"),
        ("m-created", doc! {"ts_created": true}, "ts_created"),
        (
            "m-free-expire",
            doc! {"locked": false, "ts_expire": 7_i32},
            "ts_expire",
        ),
    ];
    for (key, overrides, _) in &lock_docs {
        plant(&db, key, overrides.clone());
    }
    let locks = db.collection::<Document>("mongolocker");
    let planted: std::collections::HashMap<&str, Document> = lock_docs
        .iter()
        .map(|(key, _, _)| {
            (
                *key,
                locks.find_one(doc! {"_id": key}).run().unwrap().unwrap(),
            )
        })
        .collect();
    for (key, _, field) in &lock_docs {
        let key = *key;
        table.push((
            "acquire on a malformed lock",
            Box::new(move || locker(key).acquire(false, None, STEP, false).map(drop)),
            Expect::Field(field),
        ));
        table.push((
            "elector poll on a malformed lock",
            Box::new(move || {
                let e = elector(key);
                let r = e.poll();
                assert!(
                    !e.is_master(),
                    "{key}: an elector became master of a malformed lock"
                );
                r
            }),
            Expect::Field(field),
        ));
    }
    // Status reports someone else wrote, for the key "s".
    let status = db.collection::<Document>("elector.status");
    let report = |id: &str, overrides: Document| {
        let mut d = doc! {
            "_id": id, "key": "s", "uuid": id, "host": "h", "pid": 1_i64, "ttl": 15.0,
            "ismaster": false, "running": true, "last_poll": Bson::Null, "app_version": Bson::Null,
            "timestamp": mongodb::bson::DateTime::now(), "fence": Bson::Null,
            "ts_expire": mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() + 3_600_000),
        };
        d.extend(overrides);
        d
    };
    let status_docs: Vec<(Document, &'static str)> = vec![
        (doc! {"ttl": "long"}, "ttl"),
        (doc! {"ttl": 1e300}, "ttl"),
        (doc! {"ismaster": 1_i32}, "ismaster"),
        (doc! {"pid": -7_i64}, "pid"),
        (doc! {"timestamp": "now"}, "timestamp"),
        (doc! {"host": 3_i32}, "host"),
    ];
    for (i, (overrides, field)) in status_docs.into_iter().enumerate() {
        let id = format!("bad-status-{i}");
        let status = status.clone();
        let e = elector("s");
        table.push((
            "cluster view with a malformed status report",
            Box::new(move || {
                status.delete_many(doc! {}).run().unwrap();
                status
                    .insert_one(report(&id, overrides.clone()))
                    .run()
                    .unwrap();
                e.cluster_detail().map(drop)
            }),
            Expect::Field(field),
        ));
    }
    // Fenced writes: bad fence field names, an upsert that does not pin
    // `_id`, an update that is a replacement, a fence field holding text.
    resource
        .insert_one(doc! { "_id": "text-fence", "fence": "seven" })
        .run()
        .unwrap();
    let fenced = |field: &str| mongoelector::Fenced::new(&resource, 7).field(field);
    for (what, field) in [
        ("empty fence field", ""),
        ("fence field starting with $", "$fence"),
        ("dotted fence field", "a.fence"),
        ("fence field with a NUL", "fen\0ce"),
    ] {
        let f = fenced(field);
        table.push((
            what,
            Box::new(move || {
                f.update_one(doc! { "_id": 1 }, doc! { "$set": { "a": 1 } })
                    .map(drop)
            }),
            Expect::Parameter("field"),
        ));
    }
    let f = fenced("fence");
    for (what, filter) in [
        ("fenced upsert without _id", doc! { "name": "x" }),
        (
            "fenced upsert on a range of _id",
            doc! { "_id": { "$gt": 1 } },
        ),
        (
            "fenced upsert on several _id",
            doc! { "_id": { "$in": [1, 2] } },
        ),
    ] {
        let f = fenced("fence");
        table.push((
            what,
            Box::new(move || {
                f.upsert_one(filter.clone(), doc! { "$set": { "a": 1 } })
                    .map(drop)
            }),
            Expect::Parameter("filter"),
        ));
    }
    table.push((
        "fenced update that is a replacement",
        Box::new(move || f.update_one(doc! { "_id": 1 }, doc! { "a": 1 }).map(drop)),
        Expect::Parameter("update"),
    ));
    let f = fenced("fence");
    table.push((
        "fenced update on a fence field holding text",
        Box::new(move || {
            f.update_one(doc! { "_id": "text-fence" }, doc! { "$set": { "a": 1 } })
                .map(drop)
        }),
        Expect::Field("field"),
    ));
    assert!(table.len() >= 25, "only {} cases", table.len());
    eprintln!("{} bad-input cases", table.len());
    for (what, call, expect) in &table {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .unwrap_or_else(|_| panic!("{what}: panicked"));
        assert!(
            matches(&result, expect),
            "{what}: expected {expect:?}, got {result:?}"
        );
    }
    // No lock was granted: every planted lock document is as planted.
    for (key, _, _) in &lock_docs {
        let now: Document = locks.find_one(doc! {"_id": key}).run().unwrap().unwrap();
        assert_eq!(Some(&now), planted.get(key), "{key} was changed");
    }
}

#[test]
fn live_locks_refuses_a_bad_collection_name_without_io() {
    let db = db();
    for name in ["", "a$b", "a\0b", "system.locks", ".c"] {
        assert_eq!(
            parameter(mongoelector::live_locks(&db, name)),
            "collection",
            "{name:?}"
        );
    }
    assert!(db.list_collection_names().run().unwrap().is_empty());
}

#[test]
fn semaphore_and_rwlock_arguments_name_the_parameter() {
    use mongoelector::{MongoRwLock, MongoSemaphore};
    let db = db();
    let sem = |key: &str, permits: u32, collection: &str, ttl: Duration, step: Duration| {
        MongoSemaphore::builder(key, &db, permits)
            .collection(collection)
            .ttl(ttl)
            .step(step)
            .build()
    };
    let (ok_ttl, ok_step) = (Duration::from_secs(5), STEP);
    let cases: Vec<(mongoelector::Result<MongoSemaphore>, &str)> = vec![
        (MongoSemaphore::new("k", &db, 0), "permits"),
        (MongoSemaphore::new("", &db, 3), "key"),
        (sem("k", 3, "", ok_ttl, ok_step), "collection"),
        (sem("k", 3, "a$b", ok_ttl, ok_step), "collection"),
        (sem("k", 3, "system.x", ok_ttl, ok_step), "collection"),
        (sem("k", 3, "c", Duration::from_millis(1), ok_step), "ttl"),
        (sem("k", 3, "c", Duration::MAX, ok_step), "ttl"),
        (sem("k", 3, "c", ok_ttl, Duration::ZERO), "step"),
        (
            MongoSemaphore::builder("k", &db, 3)
                .takeover_grace(Duration::from_secs(7200))
                .build(),
            "takeover_grace",
        ),
        (
            MongoSemaphore::builder("k", &db, 3)
                .metadata(doc! { "$bad": 1 })
                .build(),
            "metadata",
        ),
    ];
    for (i, (result, expected)) in cases.into_iter().enumerate() {
        assert_eq!(parameter(result), expected, "semaphore case {i}");
    }
    let rw = |key: &str, collection: &str, ttl: Duration, step: Duration| {
        MongoRwLock::builder(key, &db)
            .collection(collection)
            .ttl(ttl)
            .step(step)
            .build()
    };
    let cases: Vec<(mongoelector::Result<MongoRwLock>, &str)> = vec![
        (MongoRwLock::new("", &db), "key"),
        (MongoRwLock::new("a\0b", &db), "key"),
        (rw("k", "", ok_ttl, ok_step), "collection"),
        (rw("k", "c", Duration::ZERO, ok_step), "ttl"),
        (rw("k", "c", ok_ttl, Duration::from_secs(u64::MAX)), "step"),
        (
            MongoRwLock::builder("k", &db)
                .metadata(doc! { "a.b": 1 })
                .build(),
            "metadata",
        ),
    ];
    for (i, (result, expected)) in cases.into_iter().enumerate() {
        assert_eq!(parameter(result), expected, "rwlock case {i}");
    }
    // None of that touched the database.
    assert!(db.list_collection_names().run().unwrap().is_empty());
}

#[test]
fn malformed_share_documents_are_reported_and_never_granted() {
    use mongoelector::{MongoRwLock, MongoSemaphore};
    let db = db();
    let sems = db.collection::<Document>("mongosemaphore");
    let rws = db.collection::<Document>("mongorwlock");
    let cases: Vec<(Document, &str)> = vec![
        (doc! { "holders": "x" }, "holders"),
        (doc! { "fence": "1" }, "fence"),
        (doc! { "fence": -3_i64 }, "fence"),
        (doc! { "permits": "3" }, "permits"),
        (
            doc! { "holders": [{ "uuid": "u", "fence": 1_i64, "ts_expire": "soon" }] },
            "holders",
        ),
        (doc! { "holders": [7] }, "holders"),
    ];
    for (i, (fields, field)) in cases.into_iter().enumerate() {
        let key = format!("s{i}");
        let mut d = doc! { "_id": &key };
        d.extend(fields.clone());
        sems.insert_one(d.clone()).run().unwrap();
        let sem = MongoSemaphore::builder(&key, &db, 3)
            .timeparanoid(false)
            .build()
            .unwrap();
        match sem.try_acquire() {
            Err(Error::MalformedDocument { field: f, .. }) => assert_eq!(f, field, "{d}"),
            other => panic!("{d}: expected MalformedDocument, got {other:?}"),
        }
        let after = sems.find_one(doc! { "_id": &key }).run().unwrap().unwrap();
        assert_eq!(after, d, "left as it was");
        if field == "permits" {
            continue;
        }
        rws.insert_one(d.clone()).run().unwrap();
        let lock = MongoRwLock::builder(&key, &db)
            .timeparanoid(false)
            .build()
            .unwrap();
        match lock.try_write() {
            Err(Error::MalformedDocument { field: f, .. }) => assert_eq!(f, field, "{d}"),
            other => panic!("{d}: expected MalformedDocument, got {other:?}"),
        }
    }
}
