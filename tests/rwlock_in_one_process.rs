//! The read-write lock in one process, against the real server: readers
//! overlap, a writer excludes everyone, a waiting writer's intent holds new
//! readers back (and expires if it crashes), fences, and one round trip per
//! operation.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{db, monitored_client, Commands};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;
use mongoelector::MongoRwLock;

fn rw(db: &Database, key: &str, ttl: Duration) -> MongoRwLock {
    MongoRwLock::builder(key, db)
        .ttl(ttl)
        .step(Duration::from_millis(20))
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn intent(db: &Database, key: &str) -> Option<Bson> {
    db.collection::<Document>("mongorwlock")
        .find_one(doc! { "_id": key })
        .run()
        .unwrap()
        .and_then(|d| d.get("intent").cloned())
        .filter(|b| *b != Bson::Null)
}

#[test]
fn readers_overlap_a_writer_excludes_everyone() {
    let db = db();
    let lock = rw(&db, "k", Duration::from_secs(30));
    let readers: Vec<_> = (0..4).map(|_| lock.try_read().unwrap().unwrap()).collect();
    assert_eq!(lock.readers().unwrap().len(), 4);
    assert!(lock.writer().unwrap().is_none());
    assert!(lock.try_write().unwrap().is_none(), "readers hold");
    assert!(intent(&db, "k").is_none(), "try_write registers no intent");
    let top = readers.iter().map(|r| r.fence()).max().unwrap();
    drop(readers);
    let w = lock
        .try_write()
        .unwrap()
        .expect("free once the readers left");
    assert!(
        w.fence() > top,
        "a writer's fence is above every earlier reader's"
    );
    assert!(
        lock.try_read().unwrap().is_none(),
        "a writer excludes readers"
    );
    assert!(lock.try_write().unwrap().is_none(), "and writers");
    assert_eq!(lock.writer().unwrap().unwrap().fence, w.fence());
    let wf = w.fence();
    w.release().unwrap();
    let r = lock.try_read().unwrap().unwrap();
    assert!(
        r.fence() > wf,
        "a reader's fence is above every earlier writer's"
    );
}

#[test]
fn a_waiting_writer_holds_new_readers_back_and_gets_in_when_readers_leave() {
    let db = db();
    let lock = Arc::new(rw(&db, "k", Duration::from_secs(30)));
    let reader = lock.try_read().unwrap().unwrap();
    let writer = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.write().map(|w| (w.fence(), Instant::now())))
    };
    assert!(common::wait_until(Duration::from_secs(5), || intent(
        &db, "k"
    )
    .is_some()));
    assert!(
        lock.try_read().unwrap().is_none(),
        "the intent holds new readers back"
    );
    let late_reader = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.read().map(|r| r.fence()))
    };
    std::thread::sleep(Duration::from_millis(300));
    let left = Instant::now();
    drop(reader);
    let (wfence, got) = writer.join().unwrap().unwrap();
    assert!(got - left < Duration::from_secs(1), "{:?}", got - left);
    let rfence = late_reader.join().unwrap().unwrap();
    assert!(rfence > wfence, "the late reader came after the writer");
    assert!(
        intent(&db, "k").is_none(),
        "a granted writer clears its intent"
    );
}

#[test]
fn a_timed_out_writer_withdraws_its_intent() {
    let db = db();
    let lock = rw(&db, "k", Duration::from_secs(30));
    let reader = lock.try_read().unwrap().unwrap();
    assert!(lock
        .try_write_for(Duration::from_millis(300))
        .unwrap()
        .is_none());
    assert!(intent(&db, "k").is_none());
    assert!(
        lock.try_read().unwrap().is_some(),
        "readers are not held back"
    );
    drop(reader);
}

#[test]
fn a_crashed_waiting_writer_blocks_readers_only_until_ttl_and_grace() {
    let db = db();
    let ttl = Duration::from_millis(800);
    let lock = rw(&db, "k", ttl);
    let reader = lock.try_read().unwrap().unwrap();
    // A waiting writer that died: its intent is left behind.
    let now = mongodb::bson::DateTime::now();
    let expire = mongodb::bson::DateTime::from_millis(now.timestamp_millis() + 800);
    db.collection::<Document>("mongorwlock")
        .update_one(
            doc! { "_id": "k" },
            doc! { "$set": { "intent": { "uuid": "dead", "ts_expire": expire } } },
        )
        .run()
        .unwrap();
    assert!(lock.try_read().unwrap().is_none());
    let started = Instant::now();
    let r = lock
        .try_read_for(Duration::from_secs(10))
        .unwrap()
        .expect("the dead intent expires");
    let waited = started.elapsed();
    assert!(waited < ttl * 3, "{waited:?}");
    drop((r, reader));
}

#[test]
fn a_crashed_writer_blocks_nobody_past_ttl_and_grace() {
    let db = db();
    let ttl = Duration::from_millis(600);
    let lock = rw(&db, "k", ttl);
    let w = lock.try_write().unwrap().unwrap();
    std::mem::forget(w);
    let started = Instant::now();
    let r = lock
        .try_read_for(Duration::from_secs(10))
        .unwrap()
        .expect("the dead writer's entry expires");
    let waited = started.elapsed();
    let grace = mongoelector::lease_margin(ttl);
    assert!(
        waited >= ttl + grace - Duration::from_millis(150),
        "{waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    drop(r);
}

fn names(commands: &Commands, f: impl FnOnce()) -> Vec<String> {
    commands.take();
    f();
    commands.names()
}

#[test]
fn each_acquire_touch_and_release_is_one_round_trip() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let lock = rw(&db, "k", Duration::from_secs(30));
    lock.readers().unwrap(); // the first-use checks
    let mut r = None;
    assert_eq!(
        names(&commands, || r = lock.try_read().unwrap()),
        ["findAndModify"]
    );
    let r = r.unwrap();
    assert_eq!(
        names(&commands, || assert!(r.touch().unwrap().is_some())),
        ["findAndModify"]
    );
    assert_eq!(names(&commands, || r.release().unwrap()), ["update"]);
    let mut w = None;
    assert_eq!(
        names(&commands, || w = lock.try_write().unwrap()),
        ["findAndModify"]
    );
    assert_eq!(names(&commands, || drop(w)), ["update"]);
}

/// A blocked writer does not spin on its own intent's writes: with a
/// long step, it sends a few attempts while readers hold, not hundreds.
#[test]
fn a_blocked_writer_sends_few_attempts() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let other = common::client().database(db.name());
    let readers = rw(&other, "k", Duration::from_secs(30));
    let held = readers.try_read().unwrap().unwrap();
    let lock = Arc::new(
        MongoRwLock::builder("k", &db)
            .ttl(Duration::from_secs(30))
            .step(Duration::from_secs(1))
            .timeparanoid(false)
            .build()
            .unwrap(),
    );
    commands.take();
    let w = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.try_write_for(Duration::from_secs(3)).unwrap())
    };
    std::thread::sleep(Duration::from_millis(2500));
    drop(held);
    assert!(w.join().unwrap().is_some());
    let attempts = commands
        .names()
        .iter()
        .filter(|n| *n == "findAndModify")
        .count();
    eprintln!("blocked writer: {attempts} attempts in 2.5 s");
    assert!(attempts <= 8, "{attempts} attempts in 2.5 s");
}

/// Readers arrive continuously, so that some reader always holds; a
/// waiting writer still gets in within two read-hold times.
#[test]
fn a_writer_gets_in_despite_a_stream_of_readers() {
    let db = db();
    let lock = Arc::new(rw(&db, "k", Duration::from_secs(30)));
    let hold = Duration::from_millis(400);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let (lock, stop) = (lock.clone(), stop.clone());
            std::thread::spawn(move || {
                // Staggered: a new reader arrives every hold/3.
                std::thread::sleep(hold / 3 * i);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(r) = lock.try_read().unwrap() {
                        std::thread::sleep(hold);
                        drop(r);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    std::thread::sleep(hold * 2);
    assert!(!lock.readers().unwrap().is_empty(), "readers hold");
    let asked = Instant::now();
    let w = lock.write().unwrap();
    let waited = asked.elapsed();
    assert!(
        lock.readers().unwrap().is_empty(),
        "no reader beside the writer"
    );
    drop(w);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for r in readers {
        r.join().unwrap();
    }
    assert!(waited < hold * 2 + Duration::from_millis(200), "{waited:?}");
}

#[test]
fn readers_stop_at_max_holders_before_the_document_outgrows_the_server() {
    let db = db();
    let until = mongodb::bson::DateTime::from_millis(
        mongodb::bson::DateTime::now().timestamp_millis() + 600_000,
    );
    let reader = |i: u32| {
        doc! {
            "uuid": format!("r{i}"), "fence": i64::from(i) + 1, "host": "h", "pid": 1_i64,
            "ts_created": mongodb::bson::DateTime::now(), "ts_expire": until,
            "metadata": Bson::Null, "mode": "read",
        }
    };
    let full = mongoelector::limits::MAX_HOLDERS;
    let holders: Vec<Document> = (0..full - 1).map(reader).collect();
    db.collection::<Document>("mongorwlock")
        .insert_one(
            doc! { "_id": "k", "kind": "rwlock", "fence": i64::from(full), "holders": holders },
        )
        .run()
        .unwrap();
    let lock = rw(&db, "k", Duration::from_secs(30));
    let last = lock.try_read().unwrap().expect("room for one more");
    assert_eq!(lock.readers().unwrap().len(), full as usize);
    assert!(
        lock.try_read().unwrap().is_none(),
        "full: refused, not sent to fail"
    );
    drop(last);
    assert!(
        lock.try_read().unwrap().is_some(),
        "a reader left: room again"
    );
    // A semaphore of more permits than one document keeps is refused.
    let built = mongoelector::MongoSemaphore::builder("s", &db, full + 1).build();
    assert!(matches!(
        built,
        Err(mongoelector::Error::InvalidArgument {
            parameter: "permits",
            ..
        })
    ));
    assert!(mongoelector::MongoSemaphore::builder("s", &db, full)
        .build()
        .is_ok());
}
