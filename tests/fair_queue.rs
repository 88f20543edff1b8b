//! The fair queue of a lock, against the real server (both modes: with
//! change streams, and standalone where waiters poll): waiters served in
//! the order they enqueued, a head that is gone skipped within its waiter
//! lease, a waiter that times out leaving the queue, a handover reaching a
//! head whose stream is off, and what a handover costs in commands.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, DateTime as BsonDate, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::limits::DEFAULT_WAITER_LEASE;
use mongoelector::MongoLocker;

const TTL: Duration = Duration::from_secs(10);
const STEP: Duration = Duration::from_millis(50);

fn locker(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(TTL)
        .step(STEP)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn locks(db: &Database) -> Collection<Document> {
    db.collection("mongolocker")
}

/// The calls in `key`'s queue, in order (expired entries included).
fn queue(db: &Database, key: &str) -> Vec<Document> {
    locks(db)
        .find_one(doc! { "_id": key })
        .run()
        .unwrap()
        .and_then(|d| d.get_array("queue").ok().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.as_document().cloned())
        .collect()
}

/// `key`'s lock document.
fn lock_doc(db: &Database, key: &str) -> Document {
    locks(db)
        .find_one(doc! { "_id": key })
        .run()
        .unwrap()
        .expect("the lock document")
}

/// Waits (10 s at most) until `key`'s queue has `n` entries.
fn queued(db: &Database, key: &str, n: usize) {
    assert!(
        common::wait_until(Duration::from_secs(10), || queue(db, key).len() == n),
        "{n} in the queue: {:?}",
        queue(db, key)
    );
}

/// `waiter` waiting in its own thread (30 s at most): the fence it got
/// and when.
fn waiting(waiter: MongoLocker) -> std::thread::JoinHandle<(Option<i64>, Instant)> {
    std::thread::spawn(move || {
        let g = waiter.try_lock_for(Duration::from_secs(30)).unwrap();
        (g.map(|g| g.fence()), Instant::now())
    })
}

#[test]
fn waiters_are_granted_in_the_order_they_enqueued() {
    let db = common::db();
    let key = "fifo";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 0..8 {
        // Each its own handle (and, every other one, its own client: a
        // handover reaches a waiter of another process through the
        // stream or its refresh, one of this process through the
        // releaser).
        let wdb = if i % 2 == 0 {
            db.clone()
        } else {
            common::client().database(db.name())
        };
        let order = order.clone();
        threads.push(std::thread::spawn(move || {
            let l = locker(&wdb, key);
            let g = l
                .try_lock_for(Duration::from_secs(60))
                .unwrap()
                .expect("granted in time");
            order.lock().unwrap().push(i);
            std::thread::sleep(Duration::from_millis(20));
            g.release().unwrap();
        }));
        // The next enqueues only once this one is in the queue.
        queued(&db, key, i + 1);
    }
    guard.release().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    assert!(queue(&db, key).is_empty(), "everyone left the queue");
}

/// An entry of a waiter that is gone (crashed, or frozen: it does not
/// refresh), at the head of `key`'s queue, as a waiter would have written
/// it just now.
fn gone_head(db: &Database, key: &str) {
    let now = BsonDate::now();
    let expires =
        BsonDate::from_millis(now.timestamp_millis() + DEFAULT_WAITER_LEASE.as_millis() as i64);
    let entry = doc! {
        "call": "gone", "uuid": "gone-uuid", "host": "elsewhere", "pid": 1_i64,
        "metadata": Bson::Null, "since": now, "expires": expires,
        "lease_ms": DEFAULT_WAITER_LEASE.as_millis() as i64,
    };
    locks(db)
        .update_one(
            doc! { "_id": key },
            doc! { "$push": { "queue": { "$each": [entry], "$position": 0 } } },
        )
        .run()
        .unwrap();
}

#[test]
fn a_head_that_is_gone_is_skipped_within_its_waiter_lease() {
    let db = common::db();
    let key = "gone";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    let waiter = locker(&db, key);
    let started = Instant::now();
    let waiting = waiting(waiter);
    queued(&db, key, 1);
    gone_head(&db, key);
    assert_eq!(queue(&db, key).len(), 2);
    let released = Instant::now();
    guard.release().unwrap();
    // Handed to the gone head first: it holds it for its waiter lease.
    let doc = lock_doc(&db, key);
    assert_eq!(
        doc.get_str("uuid").unwrap(),
        "gone-uuid",
        "handed to the head"
    );
    assert_eq!(doc.get_str("run").unwrap(), "gone");
    let (fence, granted) = waiting.join().unwrap();
    assert!(fence.is_some(), "the next waiter got it");
    let waited = granted - released;
    let bound = DEFAULT_WAITER_LEASE + Duration::from_secs(2);
    assert!(
        waited >= DEFAULT_WAITER_LEASE / 2 && waited < bound,
        "granted {waited:?} after the release; the gone head's lease is {DEFAULT_WAITER_LEASE:?} \
         (started {:?} ago)",
        started.elapsed()
    );
}

#[test]
fn a_waiter_that_times_out_leaves_the_queue() {
    let db = common::db();
    let key = "timeout";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    let waiter = locker(&db, key);
    let waiting = std::thread::spawn(move || {
        let got = waiter.try_lock_for(Duration::from_millis(1500)).unwrap();
        (got.is_none(), waiter)
    });
    queued(&db, key, 1); // it waits in the queue
    let (timed_out, waiter) = waiting.join().unwrap();
    assert!(timed_out);
    // Read right after it gave up: its entry would still be there (and
    // live) had it not taken it out.
    assert!(
        queue(&db, key).is_empty(),
        "left at once: {:?}",
        queue(&db, key)
    );
    // A single attempt does not queue at all.
    assert!(waiter.try_lock().unwrap().is_none());
    assert!(queue(&db, key).is_empty());
    guard.release().unwrap();
    let doc = lock_doc(&db, key);
    assert!(!doc.get_bool("locked").unwrap(), "nobody to hand it to");
}

#[test]
fn a_try_lock_does_not_overtake_the_queue() {
    let db = common::db();
    let key = "no-barging";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    // A waiter in the queue; the holder's lease then ends unreleased (a
    // crash): the key is free for the head only.
    let waiter = locker(&db, key);
    // It keeps what it gets for a while, so the try_lock below finds it
    // either queued or holding, never gone.
    let waiting = std::thread::spawn(move || {
        let g = waiter.try_lock_for(Duration::from_secs(30)).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        g.map(|g| g.fence())
    });
    queued(&db, key, 1);
    std::mem::forget(guard);
    locks(&db)
        .update_one(
            doc! { "_id": key },
            doc! { "$set": { "ts_expire": BsonDate::from_millis(0) } },
        )
        .run()
        .unwrap();
    // Either the head took it already, or it is the head's: a fair
    // try_lock does not take it.
    let barger = locker(&db, key);
    assert!(barger.try_lock().unwrap().is_none());
    assert!(waiting.join().unwrap().is_some(), "the head got it");
}

#[test]
fn a_handover_reaches_a_head_whose_stream_is_off() {
    let db = common::db();
    let key = "no-stream";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    // Another client (another process, as far as the hub goes), polling.
    let other = common::client().database(db.name());
    let waiter = MongoLocker::builder(key, &other)
        .ttl(TTL)
        .step(STEP)
        .change_streams(false)
        .timeparanoid(false)
        .build()
        .unwrap();
    let waiting = waiting(waiter);
    queued(&db, key, 1);
    let released = Instant::now();
    let old = guard.fence();
    guard.release().unwrap();
    let (fence, granted) = waiting.join().unwrap();
    let fence = fence.expect("granted");
    assert!(fence > old, "a new fence: {fence} after {old}");
    let waited = granted - released;
    // It polls at its step: well within the waiter lease, where a lost
    // handover would have cost the lease and more.
    assert!(waited < DEFAULT_WAITER_LEASE, "{waited:?}");
}

#[test]
fn a_handover_across_processes_costs_the_release_and_the_heads_one_attempt() {
    let db = common::db();
    let key = "cost";
    let (client, commands) = common::monitored_client();
    let mdb = client.database(db.name());
    let holder = locker(&mdb, key);
    // The head on another client: another process, as far as the
    // handover goes.
    let (other, other_commands) = common::monitored_client();
    let waiter = locker(&other.database(db.name()), key);
    let guard = holder.lock().unwrap();
    let waiting = std::thread::spawn(move || {
        let g = waiter.try_lock_for(Duration::from_secs(30)).unwrap();
        g.map(|g| g.release().unwrap())
    });
    queued(&db, key, 1);
    // The waiter's refreshes are counted apart: only what comes after the
    // release, up to the grant, is the handover's.
    commands.take();
    other_commands.take();
    guard.release().unwrap();
    assert!(waiting.join().unwrap().is_some());
    let writes: Vec<String> = [commands.take(), other_commands.take()]
        .concat()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n == "findAndModify")
        .collect();
    // The release, the head's attempt that takes it, the head's own
    // release; a refresh of the head's may fall in between.
    assert!(
        (3..=4).contains(&writes.len()),
        "release + head's attempt + head's release: {writes:?}"
    );
}

/// Inside one process the release's answer is the head's grant: the head
/// sends nothing between the release and holding the lock (the release
/// granted it its ttl, and it counts its lease from the release's send).
#[test]
fn a_handover_inside_a_process_costs_the_release_alone() {
    let db = common::db();
    let key = "cost-here";
    let (client, commands) = common::monitored_client();
    let mdb = client.database(db.name());
    let holder = locker(&mdb, key);
    const ROUNDS: usize = 5;
    let mut head_sent = 0;
    for _ in 0..ROUNDS {
        let guard = holder.lock().unwrap();
        let waiter = locker(&mdb, key);
        let waiting = std::thread::spawn(move || {
            let g = waiter.try_lock_for(Duration::from_secs(30)).unwrap();
            (g.expect("granted"), Instant::now())
        });
        queued(&db, key, 1);
        let released = Instant::now();
        guard.release().unwrap();
        let (g, granted) = waiting.join().unwrap();
        assert!(g.is_valid());
        // Its full ttl, from the release: the server says so too.
        let doc = lock_doc(&db, key);
        let ms = |f: &str| doc.get_datetime(f).unwrap().timestamp_millis();
        assert_eq!(ms("ts_expire") - ms("ts_created"), TTL.as_millis() as i64);
        assert_eq!(g.fence(), doc.get_i64("fence").unwrap());
        // Attempts (upserts) sent after the release began and before the
        // grant: the head's claim, where it needed one.
        head_sent += commands
            .take_timed()
            .into_iter()
            .filter(|(n, c, at)| {
                n == "findAndModify"
                    && c.get_bool("upsert") == Ok(true)
                    && (released..=granted).contains(at)
            })
            .count();
        g.release().unwrap();
    }
    // A refresh due in that window could fall in it now and then; a claim
    // would be there every round.
    assert!(head_sent <= 1, "{head_sent} attempts in {ROUNDS} handovers");
}

/// What waiting costs: each fair waiter's refreshes of its place, counted
/// by command monitoring while the key stays held. With a change stream
/// (or a releaser in the process) to tell it of a handover, a waiter
/// refreshes every third of its waiter lease, whatever its step; polling,
/// at its step (here the default, 250 ms) or that third, whichever is
/// shorter. Changes that hand the key to nobody new wake no fair waiter.
#[test]
fn a_waiter_refreshes_a_few_times_per_waiter_lease() {
    let db = common::db();
    let key = "refreshes";
    let streams = common::has_change_streams(&db);
    let (client, commands) = common::monitored_client();
    let mdb = client.database(db.name());
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    const WAITERS: usize = 4;
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let mdb = mdb.clone();
            std::thread::spawn(move || {
                let l = MongoLocker::builder(key, &mdb)
                    .ttl(TTL)
                    .timeparanoid(false)
                    .build()
                    .unwrap();
                l.try_lock_for(Duration::from_secs(60))
                    .unwrap()
                    .map(|g| g.release().unwrap())
                    .is_some()
            })
        })
        .collect();
    queued(&db, key, WAITERS);
    std::thread::sleep(Duration::from_millis(500));
    commands.take();
    let window = Duration::from_secs(3);
    let started = Instant::now();
    // Changes that keep the holder: a fair waiter has nothing to do.
    for _ in 0..5 {
        locks(&db)
            .update_one(doc! { "_id": key }, doc! { "$inc": { "fence": 1_i64 } })
            .run()
            .unwrap();
        std::thread::sleep(window / 6);
    }
    std::thread::sleep(window.saturating_sub(started.elapsed()));
    let refreshes = commands
        .take()
        .iter()
        .filter(|(n, _)| n == "findAndModify")
        .count();
    let per_waiter_second = refreshes as f64 / WAITERS as f64 / started.elapsed().as_secs_f64();
    let pace = if streams {
        DEFAULT_WAITER_LEASE / 3
    } else {
        (DEFAULT_WAITER_LEASE / 3).min(mongoelector::limits::DEFAULT_STEP)
    };
    let most = 1.0 / pace.as_secs_f64() + 0.5;
    eprintln!("{per_waiter_second:.2} refreshes a second per waiter (at most {most:.2}; streams {streams})");
    assert!(
        per_waiter_second <= most,
        "{refreshes} refreshes by {WAITERS} waiters in {:?}",
        started.elapsed()
    );
    assert!(per_waiter_second >= 0.5, "they do refresh: {refreshes}");
    guard.release().unwrap();
    for w in waiters {
        assert!(w.join().unwrap());
    }
}

/// Two threads sharing one handle (one owner identity, two calls) and a
/// third waiter elsewhere: a fair attempt refused at its turn while the
/// document names the shared owner (the lock handed to the other thread's
/// call) is not a grant. Each section checks it is alone.
#[test]
fn threads_sharing_a_handle_and_another_waiter_never_overlap() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let db = common::db();
    let key = "shared-handle";
    let shared = Arc::new(locker(&db, key));
    let other = Arc::new(locker(&common::client().database(db.name()), key));
    let inside = Arc::new(AtomicUsize::new(0));
    let sections = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = [shared.clone(), shared, other]
        .into_iter()
        .map(|l| {
            let inside = inside.clone();
            let sections = sections.clone();
            std::thread::spawn(move || {
                let mut mine = 0;
                let until = Instant::now() + Duration::from_secs(6);
                while Instant::now() < until {
                    match l.try_lock_for(Duration::from_secs(20)) {
                        Ok(Some(g)) => {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                            std::thread::sleep(Duration::from_millis(20));
                            inside.fetch_sub(1, Ordering::SeqCst);
                            mine += 1;
                            sections.fetch_add(1, Ordering::SeqCst);
                            g.release().unwrap();
                        }
                        Ok(None) => panic!("timed out"),
                        // The other thread of this handle holds it.
                        Err(mongoelector::Error::AlreadyHeld { .. }) => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                mine
            })
        })
        .collect();
    let counts: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("sections per thread: {counts:?}");
    assert!(counts[2] >= 2, "the other waiter got turns: {counts:?}");
}

/// A fair waiter behind a holder (and waiters) of its own process needs
/// no change stream: only a release of this process can hand it the key,
/// and that release wakes it. Behind a holder of another process it opens
/// one (where the server has them).
#[test]
fn a_waiter_behind_its_own_process_opens_no_stream() {
    let (client, commands) = common::monitored_client();
    let db = common::fresh_db(&client);
    let streams = |commands: &common::Commands| {
        commands
            .take()
            .iter()
            .filter(|(n, c)| common::opens_stream(n, c))
            .count()
    };
    let key = "nearby";
    let holder = locker(&db, key);
    let guard = holder.lock().unwrap();
    let waiter = waiting(locker(&db, key));
    queued(&db, key, 1);
    std::thread::sleep(Duration::from_millis(700));
    let released = Instant::now();
    guard.release().unwrap();
    let (fence, granted) = waiter.join().unwrap();
    assert!(fence.is_some());
    assert!(
        granted - released < DEFAULT_WAITER_LEASE / 3,
        "woken by the release, not its refresh: {:?}",
        granted - released
    );
    assert_eq!(streams(&commands), 0, "no stream behind its own process");

    // Held by another process (its document says so): the waiter listens.
    let key = "elsewhere";
    let now = BsonDate::now().timestamp_millis();
    locks(&db)
        .insert_one(doc! {
            "_id": key, "kind": "lock", "locked": true, "uuid": "other", "host": "elsewhere",
            "pid": 1_i64, "ts_created": BsonDate::from_millis(now),
            "ts_expire": BsonDate::from_millis(now + 2_000), "fence": 1_i64, "run": "r",
        })
        .run()
        .unwrap();
    let waiter = waiting(locker(&db, key));
    assert!(waiter.join().unwrap().0.is_some(), "taken after its expiry");
    let opened = streams(&commands);
    if common::has_change_streams(&db) {
        assert_eq!(opened, 1, "one stream behind another process's holder");
    } else {
        // Tried once, refused by a server without streams: then it polls.
        assert!(opened <= 1, "{opened}");
    }
}

/// An uncontended fair lock costs what a racing one does: one attempt each
/// time, the small one (a third of the whole fair attempt's size). A wait
/// it refuses sends the whole attempt (the one that queues) at once, and
/// the locker keeps to that until an answer shows nobody else queued.
#[test]
fn an_uncontended_fair_lock_sends_the_small_attempt() {
    let (client, commands) = common::monitored_client();
    let db = client.database(common::db().name());
    let key = "quiet";
    let attempts = |commands: &common::Commands| -> Vec<usize> {
        commands
            .take()
            .into_iter()
            .filter(|(n, c)| n == "findAndModify" && c.get_bool("upsert") == Ok(true))
            .map(|(_, c)| {
                let mut bytes = Vec::new();
                doc! { "u": c.get_array("update").unwrap().clone() }
                    .to_writer(&mut bytes)
                    .unwrap();
                bytes.len()
            })
            .collect()
    };
    const SMALL: usize = 2_500;
    let l = locker(&db, key);
    for _ in 0..3 {
        l.lock().unwrap().release().unwrap();
    }
    let sent = attempts(&commands);
    assert_eq!(sent.len(), 3, "one attempt per lock: {sent:?}");
    assert!(sent.iter().all(|&n| n < SMALL), "{sent:?}");

    // Held by another locker, nobody queued: a single attempt's refusal
    // is the small attempt's (the whole one's condition is the same).
    let other = locker(&db, key);
    let held = other.lock().unwrap();
    commands.take();
    assert!(l.try_lock().unwrap().is_none());
    let sent = attempts(&commands);
    assert!(sent.len() == 1 && sent[0] < SMALL, "{sent:?}");
    // A wait refused by the small attempt queues at once with the whole
    // one, and sends the whole one alone from then on.
    assert!(l.try_lock_for(STEP * 3).unwrap().is_none());
    let sent = attempts(&commands);
    assert!(
        sent.len() >= 2 && sent[0] < SMALL && sent[1..].iter().all(|&n| n > SMALL),
        "{sent:?}"
    );
    assert!(l.try_lock().unwrap().is_none());
    let sent = attempts(&commands);
    assert!(sent.len() == 1 && sent[0] > SMALL, "{sent:?}");
    held.release().unwrap();
    // Granted with nobody else queued: quiet again.
    l.lock().unwrap().release().unwrap();
    l.lock().unwrap().release().unwrap();
    let sent = attempts(&commands);
    assert!(
        sent.len() == 2 && sent[0] > SMALL && sent[1] < SMALL,
        "{sent:?}"
    );
}

/// A lock that still names this locker from an earlier call (a release
/// that failed, a hold) is retaken at once by a fair attempt, as by a
/// racing one, with a new fence. (A thread sharing the handle taking a
/// lock just handed to a sibling call this way is why a handover is used
/// only if no other attempt of the locker came between: a unit test of
/// `attempt.rs` shows that.)
#[test]
fn a_lock_that_names_this_locker_from_an_earlier_call_is_retaken_at_once() {
    let db = common::db();
    let key = "own-earlier-call";
    let l = locker(&db, key);
    let now = BsonDate::now().timestamp_millis();
    locks(&db)
        .insert_one(doc! {
            "_id": key, "kind": "lock", "locked": true, "uuid": l.uuid(), "host": "h",
            "pid": 1_i64, "ts_created": BsonDate::from_millis(now),
            "ts_expire": BsonDate::from_millis(now + 10_000), "fence": 5_i64,
            "run": "an-earlier-call", "queue": [],
        })
        .run()
        .unwrap();
    let g = l.try_lock().unwrap().expect("retaken");
    assert!(g.fence() > 5);
    assert_ne!(
        lock_doc(&db, key).get_str("run").unwrap(),
        "an-earlier-call"
    );
    g.release().unwrap();
}
