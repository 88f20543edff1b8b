//! Fenced writes against a real server: a stale holder's writes change
//! nothing, an expired lease's writes are refused by the server's clock,
//! and every kind of write (operators, pipeline, replacement, upsert,
//! custom field, typed collection) records the fence.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::{Error, Event, Fenced, FencedWrite, MongoLocker};

fn locker(db: &Database, key: &str, ttl: Duration) -> MongoLocker {
    MongoLocker::builder(key, db).ttl(ttl).build().unwrap()
}

fn one(coll: &Collection<Document>, id: &str) -> Document {
    coll.find_one(doc! { "_id": id })
        .run()
        .unwrap()
        .expect("the document")
}

fn count(coll: &Collection<Document>) -> u64 {
    coll.count_documents(doc! {}).run().unwrap()
}

#[test]
fn a_holder_forced_away_is_stale_and_changes_nothing() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    let (a, b) = (
        locker(&db, "k", Duration::from_secs(30)),
        locker(&db, "k", Duration::from_secs(30)),
    );
    let guard = a.lock().unwrap();
    let fa = guard.fence();
    let w = guard
        .fenced(&coll)
        .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "by": "a" } })
        .unwrap();
    assert_eq!(w, FencedWrite::Applied { upserted: true });
    assert!(
        b.acquire(false, None, Duration::from_millis(10), true)
            .unwrap(),
        "forced"
    );
    let fb = b.get_current().unwrap().unwrap().fence;
    assert!(fb > fa);
    let w = Fenced::new(&coll, fb)
        .update_one(
            doc! { "_id": "r" },
            doc! { "$set": { "by": "b" }, "$inc": { "n": 1 } },
        )
        .unwrap();
    assert_eq!(w, FencedWrite::Applied { upserted: false });
    let before = one(&coll, "r");
    assert_eq!(
        (before.get_i64("fence"), before.get_str("by")),
        (Ok(fb), Ok("b"))
    );
    // A's late writes, every kind: refused, naming B's fence.
    let stale = Fenced::new(&coll, fa);
    let answers = [
        stale
            .update_one(doc! { "_id": "r" }, doc! { "$set": { "by": "a2" } })
            .unwrap(),
        stale
            .update_one(doc! { "_id": "r" }, vec![doc! { "$set": { "by": "a3" } }])
            .unwrap(),
        stale
            .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "by": "a4" } })
            .unwrap(),
        stale
            .replace_one(doc! { "_id": "r" }, doc! { "by": "a5" })
            .unwrap(),
        guard
            .fenced(&coll)
            .update_one(doc! { "_id": "r" }, doc! { "$set": { "by": "a6" } })
            .unwrap(),
        guard
            .fenced(&coll)
            .upsert_one(doc! { "_id": "r" }, vec![doc! { "$set": { "by": "a7" } }])
            .unwrap(),
    ];
    for w in answers {
        assert_eq!(w, FencedWrite::Stale { current: fb });
    }
    assert_eq!(one(&coll, "r"), before, "all fields unchanged");
    assert_eq!(count(&coll), 1);
    // A filter that matches nothing is NoMatch, not Stale.
    let w = Fenced::new(&coll, fb)
        .update_one(doc! { "_id": "nope" }, doc! { "$set": { "x": 1 } })
        .unwrap();
    assert_eq!(w, FencedWrite::NoMatch);
    assert_eq!(
        Fenced::new(&coll, fb)
            .replace_one(doc! { "_id": "nope" }, doc! {})
            .unwrap(),
        FencedWrite::NoMatch
    );
}

#[test]
fn an_upsert_creates_once_and_a_stale_one_creates_nothing() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    let w = Fenced::new(&coll, 5)
        .upsert_one(
            doc! { "_id": 1, "kind": "job" },
            doc! { "$set": { "v": 1 } },
        )
        .unwrap();
    assert_eq!(w, FencedWrite::Applied { upserted: true });
    assert_eq!(
        coll.find_one(doc! { "_id": 1 }).run().unwrap().unwrap(),
        doc! { "_id": 1, "kind": "job", "v": 1, "fence": 5_i64 }
    );
    let w = Fenced::new(&coll, 4)
        .upsert_one(doc! { "_id": 1 }, doc! { "$set": { "v": 2 } })
        .unwrap();
    assert_eq!(w, FencedWrite::Stale { current: 5 });
    let w = Fenced::new(&coll, 4)
        .upsert_one(
            doc! { "_id": 1, "kind": "job" },
            vec![doc! { "$set": { "v": 3 } }],
        )
        .unwrap();
    assert_eq!(w, FencedWrite::Stale { current: 5 });
    assert_eq!(count(&coll), 1, "a stale upsert created nothing");
    assert_eq!(
        coll.find_one(doc! {}).run().unwrap().unwrap().get_i32("v"),
        Ok(1)
    );
    // The same fence writes again (the same holder).
    let w = Fenced::new(&coll, 5)
        .upsert_one(doc! { "_id": 1 }, doc! { "$inc": { "v": 1 } })
        .unwrap();
    assert_eq!(w, FencedWrite::Applied { upserted: false });
    let err = Fenced::new(&coll, 9).upsert_one(doc! { "kind": "job" }, doc! { "$set": { "v": 1 } });
    assert!(
        matches!(
            err,
            Err(Error::InvalidArgument {
                parameter: "filter",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(count(&coll), 1);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Job {
    #[serde(rename = "_id")]
    id: String,
    state: String,
    #[serde(default)]
    fence: i64,
}

#[test]
fn every_kind_of_write_records_the_fence() {
    let db = common::db();
    let raw = db.collection::<Document>("res");
    // Operators, then a pipeline using the server's clock.
    let f = Fenced::new(&raw, 10);
    assert!(f
        .upsert_one(doc! { "_id": "p" }, doc! { "$set": { "a": 1 } })
        .unwrap()
        .applied());
    assert!(f
        .update_one(
            doc! { "_id": "p" },
            vec![doc! { "$set": { "at": "$$NOW", "a": { "$add": ["$a", 1] } } }]
        )
        .unwrap()
        .applied());
    let d = one(&raw, "p");
    assert_eq!(
        (
            d.get_i32("a").ok().map(i64::from).or(d.get_i64("a").ok()),
            d.get_i64("fence")
        ),
        (Some(2), Ok(10))
    );
    assert!(d.get_datetime("at").is_ok());
    // A custom field: the default one is left alone.
    let g = Fenced::new(&raw, 11).field("writer");
    assert_eq!(g.field_name(), "writer");
    assert!(g
        .update_one(doc! { "_id": "p" }, doc! { "$set": { "b": 1 } })
        .unwrap()
        .applied());
    let d = one(&raw, "p");
    assert_eq!((d.get_i64("writer"), d.get_i64("fence")), (Ok(11), Ok(10)));
    assert_eq!(
        Fenced::new(&raw, 3)
            .field("writer")
            .update_one(doc! { "_id": "p" }, doc! { "$set": { "b": 2 } })
            .unwrap(),
        FencedWrite::Stale { current: 11 }
    );
    // A typed collection: replacement, with the fence set on it.
    let jobs = db.collection::<Job>("jobs");
    let job = |state: &str| Job {
        id: "j".into(),
        state: state.into(),
        fence: 0,
    };
    assert_eq!(
        Fenced::new(&jobs, 20)
            .upsert_one(doc! { "_id": "j" }, doc! { "$set": { "state": "new" } })
            .unwrap(),
        FencedWrite::Applied { upserted: true }
    );
    assert!(Fenced::new(&jobs, 21)
        .replace_one(doc! { "_id": "j" }, job("done"))
        .unwrap()
        .applied());
    assert_eq!(
        jobs.find_one(doc! {}).run().unwrap().unwrap(),
        Job {
            id: "j".into(),
            state: "done".into(),
            fence: 21
        }
    );
    assert_eq!(
        Fenced::new(&jobs, 20)
            .replace_one(doc! { "_id": "j" }, job("late"))
            .unwrap(),
        FencedWrite::Stale { current: 21 }
    );
    assert_eq!(jobs.find_one(doc! {}).run().unwrap().unwrap().state, "done");
    // A stored fence that is not an integer is reported, not overwritten.
    raw.insert_one(doc! { "_id": "bad", "fence": "x" })
        .run()
        .unwrap();
    let e = Fenced::new(&raw, 1).update_one(doc! { "_id": "bad" }, doc! { "$set": { "y": 1 } });
    assert!(
        matches!(e, Err(Error::MalformedDocument { field: "field", .. })),
        "{e:?}"
    );
}

#[test]
fn an_expired_lease_is_refused_by_the_server_and_a_kept_alive_one_is_not() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    Fenced::new(&coll, 0)
        .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "v": 0 } })
        .unwrap()
        .applied()
        .then_some(())
        .unwrap();
    let short = locker(&db, "short", Duration::from_secs(1));
    let guard = short.lock().unwrap();
    assert!(guard
        .fenced(&coll)
        .update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 1 } })
        .unwrap()
        .applied());
    // Past the server expiry (plus generous slack), nobody else took it.
    let wait = (guard.expires_at() - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(300));
    assert!(!guard.is_valid());
    let before = one(&coll, "r");
    let f = guard.fenced(&coll);
    assert_eq!(
        f.update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 2 } })
            .unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(
        f.update_one(doc! { "_id": "r" }, vec![doc! { "$set": { "v": 3 } }])
            .unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(
        f.replace_one(doc! { "_id": "r" }, doc! { "v": 4 }).unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(
        f.upsert_one(doc! { "_id": "r" }, doc! { "$set": { "v": 5 } })
            .unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(one(&coll, "r"), before, "nothing changed");
    // No filter can stop an upsert's insert: the guard stage does.
    assert_eq!(
        f.upsert_one(doc! { "_id": "new1" }, doc! { "$set": { "v": 1 } })
            .unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(
        f.upsert_one(doc! { "_id": "new2" }, vec![doc! { "$set": { "v": 1 } }])
            .unwrap(),
        FencedWrite::Expired
    );
    assert_eq!(count(&coll), 1, "an expired upsert created nothing");
    // The same with a fixed expiry handed to another process.
    let until = Fenced::new(&coll, guard.fence()).until(guard.expires_at());
    assert_eq!(
        until
            .update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 6 } })
            .unwrap(),
        FencedWrite::Expired
    );
    let later = Fenced::new(&coll, guard.fence())
        .until(chrono::Utc::now() + chrono::TimeDelta::seconds(60));
    assert!(later
        .update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 7 } })
        .unwrap()
        .applied());
    drop(guard);

    // With keep-alive, writes through one guard (and one Fenced) keep
    // landing for 5 s, five times the ttl.
    let kept = MongoLocker::builder("kept", &db)
        .ttl(Duration::from_secs(1))
        .keep_alive(true)
        .build()
        .unwrap();
    let guard = kept.lock().unwrap();
    let f = guard.fenced(&coll);
    let (start, mut writes) = (Instant::now(), 0);
    while start.elapsed() < Duration::from_secs(5) {
        let w = f
            .upsert_one(doc! { "_id": "kept" }, doc! { "$inc": { "n": 1 } })
            .unwrap();
        assert!(w.applied(), "{w:?} after {:?}", start.elapsed());
        writes += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(writes >= 10, "{writes}");
    assert!(guard.is_valid());
}

#[test]
fn an_elector_writes_under_its_term_only_while_master() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    let elector = common::elector(&db, "e", Duration::from_secs(2), Duration::from_millis(200));
    let err = elector.fenced(&coll).map(|_| ());
    assert!(
        matches!(&err, Err(Error::NotMaster { key }) if key == "e"),
        "{err:?}"
    );
    let events = elector.events();
    elector.poll().unwrap();
    let fence = events
        .try_iter()
        .find_map(|e| match e {
            Event::BecameMaster { fence, .. } => Some(fence),
            _ => None,
        })
        .expect("became master");
    let f = elector.fenced(&coll).unwrap();
    assert_eq!(f.fence(), fence);
    assert_eq!(
        f.upsert_one(doc! { "_id": "m" }, doc! { "$set": { "by": "e" } })
            .unwrap(),
        FencedWrite::Applied { upserted: true }
    );
    assert_eq!(one(&coll, "m").get_i64("fence"), Ok(fence));
    elector.release().unwrap();
    let err = elector.fenced(&coll).map(|_| ());
    assert!(matches!(err, Err(Error::NotMaster { .. })), "{err:?}");
}

/// One write of the contention test: its fence, whether it was applied,
/// and when it was sent and answered.
struct Record {
    fence: i64,
    applied: bool,
    sent: Instant,
    done: Instant,
}

#[test]
fn eight_threads_forcing_the_lock_never_move_the_fence_back() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    Fenced::new(&coll, 0)
        .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "n": 0 } })
        .unwrap()
        .applied()
        .then_some(())
        .unwrap();
    let history = Arc::new(Mutex::new(Vec::<Record>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (coll, stop) = (coll.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                seen.push(one(&coll, "r").get_i64("fence").unwrap());
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        })
    };
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let (db, coll, history) = (db.clone(), coll.clone(), history.clone());
            std::thread::spawn(move || {
                let locker = locker(&db, "k", Duration::from_secs(30));
                let mut rng = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..12 {
                    // Take the lock from whoever holds it.
                    let _ = locker.release(true);
                    let Some(guard) = locker.try_lock().unwrap() else {
                        continue;
                    };
                    for _ in 0..3 {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        std::thread::sleep(Duration::from_millis(rng % 15));
                        let sent = Instant::now();
                        let w = guard
                            .fenced(&coll)
                            .upsert_one(doc! { "_id": "r" }, doc! { "$inc": { "n": 1 } })
                            .unwrap();
                        let done = Instant::now();
                        assert!(
                            matches!(
                                w,
                                FencedWrite::Applied { upserted: false }
                                    | FencedWrite::Stale { .. }
                            ),
                            "{w:?}"
                        );
                        if let FencedWrite::Stale { current } = w {
                            assert!(current > guard.fence());
                        }
                        history.lock().unwrap().push(Record {
                            fence: guard.fence(),
                            applied: w.applied(),
                            sent,
                            done,
                        });
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = watcher.join().unwrap();
    assert!(
        seen.windows(2).all(|p| p[0] <= p[1]),
        "the stored fence went back: {seen:?}"
    );
    let history = history.lock().unwrap();
    let applied: Vec<&Record> = history.iter().filter(|r| r.applied).collect();
    assert!(
        applied.len() >= 8 && history.len() > applied.len(),
        "{} writes, {} applied",
        history.len(),
        applied.len()
    );
    for w in &applied {
        for earlier in applied.iter().filter(|e| e.done < w.sent) {
            assert!(
                earlier.fence <= w.fence,
                "fence {} applied after fence {}",
                w.fence,
                earlier.fence
            );
        }
    }
    let stored = one(&coll, "r");
    assert_eq!(
        stored.get_i64("fence").unwrap(),
        applied.iter().map(|r| r.fence).max().unwrap()
    );
    assert_eq!(
        i64::from(stored.get_i32("n").unwrap_or(0)) + stored.get_i64("n").unwrap_or(0),
        applied.len() as i64
    );
}

#[test]
fn an_applied_write_is_one_round_trip_and_a_refused_one_two() {
    let (client, commands) = common::monitored_client();
    let db = common::fresh_db(&client);
    let coll = db.collection::<Document>("res");
    let guard = locker(&db, "k", Duration::from_secs(30)).lock().unwrap();
    let f = guard.fenced(&coll);
    assert!(f
        .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "v": 1 } })
        .unwrap()
        .applied());
    commands.take();
    assert!(f
        .update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 2 } })
        .unwrap()
        .applied());
    assert!(f
        .upsert_one(doc! { "_id": "r" }, doc! { "$set": { "v": 3 } })
        .unwrap()
        .applied());
    assert!(f
        .upsert_one(doc! { "_id": "r" }, vec![doc! { "$set": { "v": 4 } }])
        .unwrap()
        .applied());
    assert!(f
        .replace_one(doc! { "_id": "r" }, doc! { "v": 5 })
        .unwrap()
        .applied());
    assert_eq!(commands.names(), ["update"; 4], "one round trip each");
    let stale = Fenced::new(&coll, guard.fence() - 1);
    assert!(matches!(
        stale
            .update_one(doc! { "_id": "r" }, doc! { "$set": { "v": 6 } })
            .unwrap(),
        FencedWrite::Stale { .. }
    ));
    assert_eq!(
        commands.names(),
        ["update", "aggregate"],
        "a refusal looks once"
    );
}

#[test]
fn racing_upserts_create_each_document_once() {
    let db = common::db();
    let coll = db.collection::<Document>("res");
    let rounds = 15;
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (1..=8i64)
        .map(|fence| {
            let (coll, barrier) = (coll.clone(), barrier.clone());
            std::thread::spawn(move || {
                (0..rounds)
                    .map(|round| {
                        barrier.wait();
                        let w = Fenced::new(&coll, fence)
                            .upsert_one(doc! { "_id": round }, doc! { "$inc": { "n": 1 } })
                            .unwrap();
                        (round, fence, w)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(count(&coll), rounds as u64, "one document per round");
    for round in 0..rounds {
        let mine: Vec<_> = answers.iter().filter(|a| a.0 == round).collect();
        let created = mine
            .iter()
            .filter(|a| a.2 == FencedWrite::Applied { upserted: true })
            .count();
        assert_eq!(created, 1, "round {round}: {mine:?}");
        let applied = mine.iter().filter(|a| a.2.applied()).count() as i32;
        let stored = coll.find_one(doc! { "_id": round }).run().unwrap().unwrap();
        assert_eq!(stored.get_i32("n"), Ok(applied), "round {round}: {mine:?}");
        for a in &mine {
            assert!(
                matches!(a.2, FencedWrite::Applied { .. } | FencedWrite::Stale { .. }),
                "{a:?}"
            );
        }
    }
}
