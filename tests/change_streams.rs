//! Wake on change: waiters and followers retry as soon as the lock is
//! released or changes hands, on a server with change streams; they fall
//! back to polling, with the same results, where there are none.

mod common;

use std::time::{Duration, Instant};

use common::{has_change_streams, monitored_client, PrivateServer};
use mongodb::sync::Database;
use mongoelector::{MongoElector, MongoLocker, MongoSemaphore};

/// A racing locker: these tests are about how a waiter learns of a
/// change and how often it polls, which a fair waiter's refreshes and
/// handovers would blur (tests/fair_queue.rs has those).
fn locker(db: &Database, key: &str, streams: bool) -> MongoLocker {
    MongoLocker::builder(key, db)
        .fair(false)
        .ttl(Duration::from_secs(30))
        .timeparanoid(false)
        .change_streams(streams)
        .build()
        .unwrap()
}

/// How long a blocked acquire with a long `step` takes to notice a release
/// (the waiter keeps the lock).
fn release_to_acquire(db: &Database, key: &str, streams: bool, step: Duration) -> Duration {
    common::release_to_acquire(&locker(db, key, streams), locker(db, key, streams), step).0
}

#[test]
fn a_release_wakes_a_blocked_waiter_at_once() {
    let db = common::db();
    let step = Duration::from_secs(5);
    let took = release_to_acquire(&db, "wake", true, step);
    if has_change_streams(&db) {
        assert!(
            took < Duration::from_secs(1),
            "woke {took:?} after the release (step {step:?})"
        );
    } else {
        // A standalone server: the same outcome, by polling.
        assert!(took <= step + Duration::from_secs(1), "{took:?}");
    }
}

#[test]
fn with_change_streams_off_it_polls() {
    let db = common::db();
    let step = Duration::from_secs(2);
    let took = release_to_acquire(&db, "poll", false, step);
    // The first attempt was ~1.5 s before the release; the next comes a
    // step after it.
    assert!(took >= Duration::from_millis(300), "{took:?}: not polling?");
    assert!(took <= step + Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_standalone_server_falls_back_to_polling_with_the_same_results() {
    let server = PrivateServer::start(&["--standalone"]);
    let db = server.client().database("standalone");
    let step = Duration::from_secs(2);
    let took = release_to_acquire(&db, "standalone", true, step);
    assert!(took <= step + Duration::from_secs(1), "{took:?}");
    // Expiry still wakes it, without any change event.
    assert_expiry_wakes_a_waiter(&db);
}

/// An abandoned 1 s lock is taken within a second of its expiry plus the
/// takeover grace by a waiter whose step is 10 s: it wakes at the holder's
/// expiry, not at its step.
fn assert_expiry_wakes_a_waiter(db: &Database) {
    let abandoned = MongoLocker::builder("expiry", db)
        .ttl(Duration::from_secs(1))
        .timeparanoid(false)
        .build()
        .unwrap();
    assert!(abandoned
        .acquire(false, None, Duration::from_millis(10), false)
        .unwrap());
    let expires = abandoned.get_current().unwrap().unwrap().expires;
    let waiter = locker(db, "expiry", true);
    let step = Duration::from_secs(10);
    assert!(waiter
        .acquire(true, Some(Duration::from_secs(15)), step, false)
        .unwrap());
    let late = waiter.get_current().unwrap().unwrap().created - expires;
    // Not before the takeover grace (the default: the waiter's lease
    // margin), and within a second after it.
    let grace = mongoelector::lease_margin(Duration::from_secs(30)).as_millis() as i64;
    assert!(
        late.num_milliseconds() >= grace && late.num_milliseconds() < grace + 1000,
        "took over {late} after the expiry (grace {grace} ms), with a 10 s step"
    );
}

#[test]
fn expiry_wakes_a_waiter_without_any_change_event() {
    assert_expiry_wakes_a_waiter(&common::db());
}

#[test]
fn a_stopped_master_is_replaced_at_once_not_at_the_retry_interval() {
    let db = common::db();
    let ttl = Duration::from_secs(10);
    let build = |streams| {
        MongoElector::builder("seat", &db)
            .ttl(ttl)
            .retry_interval(ttl) // as slow as allowed: only a change can be quick
            .change_streams(streams)
            .build()
            .unwrap()
    };
    let a = build(true);
    a.poll().unwrap();
    assert!(a.is_master());
    let b = build(true);
    let rx = b.events();
    b.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // b polled once, now waits
    let stopped = Instant::now();
    a.stop().unwrap();
    let became = common::became_master(&rx, ttl + Duration::from_secs(5));
    let took = became - stopped;
    if has_change_streams(&db) {
        assert!(
            took < Duration::from_secs(1),
            "b took over {took:?} after the stop (retry {ttl:?})"
        );
    } else {
        assert!(took <= ttl + Duration::from_secs(1), "{took:?}");
    }
    let t = Instant::now();
    b.stop().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop wakes a follower waiting on the stream"
    );
}

#[test]
fn one_stream_per_process_and_collection_and_none_when_idle() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let streams = |commands: &common::Commands| {
        commands
            .take()
            .iter()
            .filter(|(name, cmd)| common::opens_stream(name, cmd))
            .count()
    };
    // Lockers that never wait open nothing.
    let idle: Vec<MongoLocker> = (0..3)
        .map(|i| locker(&db, &format!("idle{i}"), true))
        .collect();
    for l in &idle {
        assert!(l
            .acquire(false, None, Duration::from_millis(10), false)
            .unwrap());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(streams(&commands), 0, "an idle process opens no stream");
    // Five waiters on five keys in one process share one stream.
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let w = locker(&db, &format!("idle{}", i % 3), true);
            std::thread::spawn(move || {
                w.acquire(
                    true,
                    Some(Duration::from_millis(1500)),
                    Duration::from_millis(500),
                    false,
                )
                .unwrap()
            })
        })
        .collect();
    for w in waiters {
        assert!(!w.join().unwrap(), "still held");
    }
    assert_eq!(
        streams(&commands),
        1,
        "one change stream for the whole process"
    );
    drop(idle);
}

#[test]
fn a_lost_stream_falls_back_to_polling_and_reopens() {
    let mut server = PrivateServer::start(&[]);
    let db = server.client().database("lost");
    let step = Duration::from_secs(3);
    assert!(release_to_acquire(&db, "before", true, step) < Duration::from_secs(1));
    // A locker that has waited holds the process's stream for this
    // collection: it must survive the restart by reopening.
    let anchor = locker(&db, "before", true);
    assert!(!anchor
        .acquire(true, Some(Duration::from_millis(200)), step, false)
        .unwrap());
    // Keep a waiter's hub alive across the restart.
    let keeper = locker(&db, "keeper", true);
    let other = locker(&db, "keeper", true);
    assert!(other.acquire(false, None, step, false).unwrap());
    // An attempt made while the server shuts down fails with its error
    // (a reset connection, no server): the caller tries again, as a daemon
    // would. The point is that it gets the lock and does not hang.
    let w = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match keeper.acquire(true, Some(Duration::from_secs(30)), step, false) {
                Err(e) if Instant::now() < end => eprintln!("retrying after: {e}"),
                other => break other,
            }
        }
    });
    server.stop();
    std::thread::sleep(Duration::from_secs(1));
    server.restart(); // in-memory: the lock is gone, so the waiter wins by polling
    let result = w.join().unwrap();
    assert!(
        result.unwrap(),
        "the waiter got the lock after the restart, without hanging"
    );
    // The stream is reopened: wake-ups are fast again.
    std::thread::sleep(Duration::from_secs(2));
    let took = release_to_acquire(&db, "after", true, step);
    assert!(took < Duration::from_secs(1), "{took:?} after the restart");
    drop(anchor);
}

#[test]
fn a_dropped_collection_closes_the_stream_which_is_reopened() {
    let db = common::db();
    if !has_change_streams(&db) {
        return; // nothing to close: covered by the standalone test
    }
    let step = Duration::from_secs(5);
    // A waiter on a held lock keeps the process's stream open.
    let holder = locker(&db, "held", true);
    assert!(holder.acquire(false, None, step, false).unwrap());
    let anchor = locker(&db, "held", true);
    let waiting =
        std::thread::spawn(move || anchor.acquire(true, Some(Duration::from_secs(8)), step, false));
    std::thread::sleep(Duration::from_millis(1000));
    db.collection::<mongodb::bson::Document>("mongolocker")
        .drop()
        .run()
        .unwrap();
    // The drop freed "held" (its document is gone): the waiter takes it.
    assert!(waiting.join().unwrap().unwrap());
    // And the stream, reopened, still wakes waiters at once.
    std::thread::sleep(Duration::from_millis(1500));
    let took = release_to_acquire(&db, "after-drop", true, step);
    assert!(took < Duration::from_secs(1), "{took:?} after the drop");
}

/// The acquire attempts (`findAndModify` on `collection`) among `commands`.
fn attempts(commands: &common::Commands, collection: &str) -> usize {
    commands
        .take()
        .iter()
        .filter(|(name, cmd)| name == "findAndModify" && cmd.get_str(name).ok() == Some(collection))
        .count()
}

const WAITERS: usize = 7;
const CHANGES: usize = 5;

/// `WAITERS` blocked acquires of one process on a key held elsewhere
/// (`wait`, each on a handle of its own, with a step far longer than the
/// test), then `CHANGES` changes of the key that free nothing (the
/// document's fence counter moved on, as a grant moves it): the attempts
/// they make for them. `free` then lets them through.
fn attempts_for_changes(
    db: &Database,
    collection: &str,
    wait: impl Fn() -> bool + Send + Sync + 'static,
    commands: &common::Commands,
    free: impl FnOnce(),
) -> usize {
    let wait = std::sync::Arc::new(wait);
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let wait = wait.clone();
            std::thread::spawn(move || wait())
        })
        .collect();
    // Each made its first attempt and waits; the stream is open.
    std::thread::sleep(Duration::from_millis(2000));
    let _ = commands.take();
    let raw = db.collection::<mongodb::bson::Document>(collection);
    for _ in 0..CHANGES {
        let done = raw
            .update_one(
                mongodb::bson::doc! { "_id": "herd" },
                mongodb::bson::doc! { "$inc": { "fence": 1_i64 } },
            )
            .run()
            .unwrap();
        assert_eq!(done.modified_count, 1);
        std::thread::sleep(Duration::from_millis(500));
    }
    let n = attempts(commands, collection);
    free();
    for w in waiters {
        assert!(w.join().unwrap(), "each waiter got its turn once freed");
    }
    n
}

/// A change of a key calls for one attempt by the process's waiters on
/// it, not one each: the first to see it attempts, and its refusal
/// answers the change for the others, which go on waiting for the next.
/// (One attempt each kept the server busy with refusals enough to delay
/// the release and the grant they waited for: 8 threads of one process
/// were several times slower than 8 processes.)
#[test]
fn a_change_calls_for_one_attempt_of_a_process_not_one_per_waiter() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    if !has_change_streams(&db) {
        return; // no changes pushed: each waiter polls at its own step
    }
    // Held from another client, whose commands are not counted.
    let elsewhere = common::client().database(db.name());
    let step = Duration::from_secs(60);
    let holder = locker(&elsewhere, "herd", true);
    assert!(holder.acquire(false, None, step, false).unwrap());
    let waiting_db = db.clone();
    let lock_attempts = attempts_for_changes(
        &db,
        "mongolocker",
        move || {
            let waiter = MongoLocker::builder("herd", &waiting_db)
                .fair(false)
                .ttl(Duration::from_secs(30))
                .step(step)
                .timeparanoid(false)
                .build()
                .unwrap();
            match waiter.try_lock_for(Duration::from_secs(25)).unwrap() {
                Some(guard) => {
                    guard.release().unwrap();
                    true
                }
                None => false,
            }
        },
        &commands,
        || assert!(holder.release(true).unwrap()),
    );

    let permits: Vec<_> = {
        let sem = MongoSemaphore::builder("herd", &elsewhere, 3)
            .ttl(Duration::from_secs(30))
            .timeparanoid(false)
            .build()
            .unwrap();
        (0..3)
            .map(|_| sem.try_acquire().unwrap().unwrap())
            .collect()
    };
    let waiting_db = db.clone();
    let permit_attempts = attempts_for_changes(
        &db,
        "mongosemaphore",
        move || {
            let waiter = MongoSemaphore::builder("herd", &waiting_db, 3)
                .ttl(Duration::from_secs(30))
                .step(step)
                .timeparanoid(false)
                .build()
                .unwrap();
            match waiter.try_acquire_for(Duration::from_secs(25)).unwrap() {
                Some(permit) => {
                    permit.release().unwrap();
                    true
                }
                None => false,
            }
        },
        &commands,
        || {
            for p in permits {
                p.release().unwrap();
            }
        },
    );
    // One each would be WAITERS * CHANGES (35); one per change, CHANGES,
    // and a reopened stream (one more look) may add one.
    for (what, n) in [("lock", lock_attempts), ("semaphore", permit_attempts)] {
        eprintln!("{what}: {n} attempts by {WAITERS} waiters for {CHANGES} changes");
        assert!(
            (1..=2 * CHANGES).contains(&n),
            "{what}: {n} attempts by {WAITERS} waiters of one process for {CHANGES} changes"
        );
    }
}
