//! The semaphore in one process, against the real server: the count,
//! release, fences, another count refused, expiry without a TTL index,
//! keep-alive, `lost()`, change-stream wake-ups, and one round trip per
//! operation.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{db, monitored_client, wait_until, Commands};
use mongodb::bson::{doc, Document};
use mongodb::sync::Database;
use mongoelector::{Error, LossReason, MongoSemaphore};

fn sem(db: &Database, key: &str, permits: u32, ttl: Duration) -> MongoSemaphore {
    MongoSemaphore::builder(key, db, permits)
        .ttl(ttl)
        .step(Duration::from_millis(20))
        .timeparanoid(false)
        .build()
        .unwrap()
}

#[test]
fn n_permits_then_refused_release_frees_one_fences_grow() {
    let db = db();
    let s = sem(&db, "k", 3, Duration::from_secs(30));
    let permits: Vec<_> = (0..3).map(|_| s.try_acquire().unwrap().unwrap()).collect();
    assert!(s.try_acquire().unwrap().is_none(), "a fourth of three");
    assert_eq!(s.available().unwrap(), 0);
    let fences: Vec<i64> = permits.iter().map(|p| p.fence()).collect();
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "{fences:?}");
    let holders = s.holders().unwrap();
    assert_eq!(
        holders.iter().map(|h| h.fence).collect::<Vec<_>>(),
        fences,
        "one entry per permit, with its fence"
    );
    assert!(holders.iter().all(|h| h.pid == std::process::id()));
    let mut permits = permits.into_iter();
    permits.next().unwrap().release().unwrap();
    assert_eq!(s.available().unwrap(), 1);
    let again = s.try_acquire().unwrap().expect("a released permit is free");
    assert!(again.fence() > fences[2]);
    assert!(s.try_acquire().unwrap().is_none());
    drop(again);
    assert_eq!(s.available().unwrap(), 1, "a dropped permit is released");
    // Another handle on the key shares the count.
    let other = sem(&db, "k", 3, Duration::from_secs(30));
    let p = other.try_acquire().unwrap().unwrap();
    assert!(other.try_acquire().unwrap().is_none());
    drop(p);
    drop(permits);
    assert_eq!(s.available().unwrap(), 3);
    assert!(s.holders().unwrap().is_empty());
}

#[test]
fn another_count_is_refused_with_both_numbers_and_nothing_granted() {
    let db = db();
    let three = sem(&db, "k", 3, Duration::from_secs(30));
    let _held: Vec<_> = (0..3)
        .map(|_| three.try_acquire().unwrap().unwrap())
        .collect();
    let five = sem(&db, "k", 5, Duration::from_secs(30));
    let check = |r: mongoelector::Result<()>| match r {
        Err(Error::PermitsMismatch { key, ours, theirs }) => {
            assert_eq!((key.as_str(), ours, theirs), ("k", 5, 3))
        }
        other => panic!("expected PermitsMismatch, got {other:?}"),
    };
    check(five.try_acquire().map(drop));
    check(five.try_acquire_for(Duration::from_millis(200)).map(drop));
    check(five.holders().map(drop));
    check(five.available().map(drop));
    let message = five.try_acquire().unwrap_err().to_string();
    assert!(message.contains('3') && message.contains('5'), "{message}");
    assert_eq!(
        three.holders().unwrap().len(),
        3,
        "nothing granted beyond 3"
    );
    let stored = db
        .collection::<Document>("mongosemaphore")
        .find_one(doc! { "_id": "k" })
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_i64("permits").unwrap(), 3, "never resized");
}

#[test]
fn an_expired_holder_is_taken_over_after_ttl_and_grace_without_a_ttl_index() {
    let db = db();
    let ttl = Duration::from_millis(600);
    let s = sem(&db, "k", 1, ttl);
    let leaked = s.try_acquire().unwrap().unwrap();
    let first = leaked.fence();
    std::mem::forget(leaked); // a crashed holder: no release
    let started = Instant::now();
    assert!(s.try_acquire().unwrap().is_none());
    let p = s
        .try_acquire_for(Duration::from_secs(10))
        .unwrap()
        .expect("the expired permit comes back");
    let waited = started.elapsed();
    let grace = mongoelector::lease_margin(ttl);
    assert!(
        waited >= ttl + grace - Duration::from_millis(100),
        "{waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(p.fence() > first);
    assert_eq!(s.holders().unwrap().len(), 1, "the dead entry was dropped");
    let indexes: Vec<_> = db
        .collection::<Document>("mongosemaphore")
        .list_index_names()
        .run()
        .unwrap();
    assert_eq!(indexes, ["_id_"]);
}

#[test]
fn keep_alive_holds_a_permit_past_several_ttls() {
    let db = db();
    // Renewals every 500 ms: a loaded server's slow round trip does not
    // cost the lease.
    let ttl = Duration::from_millis(1500);
    let s = MongoSemaphore::builder("k", &db, 1)
        .ttl(ttl)
        .keep_alive(true)
        .timeparanoid(false)
        .build()
        .unwrap();
    let p = s.acquire().unwrap();
    let lost = p.lost();
    std::thread::sleep(ttl * 3);
    assert!(p.is_valid());
    assert!(lost.try_recv().is_err());
    assert!(s.try_acquire().unwrap().is_none());
    assert_eq!(s.holders().unwrap()[0].fence, p.fence());
    p.release().unwrap();
    assert!(s.try_acquire().unwrap().is_some());
}

#[test]
fn lost_fires_when_the_entry_is_removed_by_someone_else() {
    let db = db();
    let ttl = Duration::from_millis(900);
    let s = MongoSemaphore::builder("k", &db, 2)
        .ttl(ttl)
        .keep_alive(true)
        .timeparanoid(false)
        .build()
        .unwrap();
    let p = s.acquire().unwrap();
    let lost = p.lost();
    db.collection::<Document>("mongosemaphore")
        .delete_one(doc! { "_id": "k" })
        .run()
        .unwrap();
    assert_eq!(
        lost.recv_timeout(ttl * 3),
        Ok(LossReason::TakenOver),
        "the next renewal finds the entry gone"
    );
    assert!(!p.is_valid());
    assert_eq!(p.touch().unwrap(), None);
    // Without keep-alive: lost at the local deadline.
    let plain = sem(&db, "k2", 1, Duration::from_millis(400));
    let q = plain.try_acquire().unwrap().unwrap();
    assert_eq!(
        q.lost().recv_timeout(Duration::from_secs(3)),
        Ok(LossReason::RenewalFailed)
    );
}

#[test]
fn a_waiter_wakes_on_a_release() {
    let db = db();
    // A long step: only the change stream (or a poll, standalone) wakes it.
    let streams = common::has_change_streams(&db);
    let s = Arc::new(
        MongoSemaphore::builder("k", &db, 1)
            .ttl(Duration::from_secs(30))
            .step(Duration::from_secs(if streams { 10 } else { 1 }))
            .timeparanoid(false)
            .build()
            .unwrap(),
    );
    let held = s.try_acquire().unwrap().unwrap();
    let waiter = {
        let s = s.clone();
        std::thread::spawn(move || {
            let p = s.acquire().unwrap();
            (Instant::now(), p.fence())
        })
    };
    std::thread::sleep(Duration::from_millis(1500)); // the stream is open by now
    let released = Instant::now();
    let first = held.fence();
    held.release().unwrap();
    let (woken, fence) = waiter.join().unwrap();
    let latency = woken - released;
    assert!(fence > first);
    let bound = if streams {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(1500)
    };
    assert!(latency < bound, "woken {latency:?} after the release");
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
    let s = sem(&db, "k", 2, Duration::from_secs(30));
    s.available().unwrap(); // the first-use checks
    let mut p = None;
    assert_eq!(
        names(&commands, || p = s.try_acquire().unwrap()),
        ["findAndModify"]
    );
    let p = p.unwrap();
    assert_eq!(
        names(&commands, || assert!(p.touch().unwrap().is_some())),
        ["findAndModify"]
    );
    assert_eq!(names(&commands, || p.release().unwrap()), ["update"]);
    assert_eq!(
        names(&commands, || drop(s.holders().unwrap())),
        ["aggregate"]
    );
    let p = s.try_acquire().unwrap().unwrap();
    assert_eq!(names(&commands, || drop(p)), ["update"]);
}

#[test]
fn keep_alive_renews_with_one_round_trip_each() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let ttl = Duration::from_millis(900);
    let s = MongoSemaphore::builder("k", &db, 1)
        .ttl(ttl)
        .keep_alive(true)
        .timeparanoid(false)
        .build()
        .unwrap();
    let p = s.acquire().unwrap();
    commands.take();
    std::thread::sleep(ttl * 2);
    let sent = commands.names();
    assert!(sent.iter().all(|n| n == "findAndModify"), "{sent:?}");
    assert!((4..=8).contains(&sent.len()), "about 3 a ttl: {sent:?}");
    drop(p);
}

#[test]
fn many_threads_never_exceed_the_count() {
    let db = db();
    let s = Arc::new(sem(&db, "k", 2, Duration::from_secs(10)));
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let (s, inside, most) = (s.clone(), inside.clone(), most.clone());
            std::thread::spawn(move || {
                let mut fences = Vec::new();
                for _ in 0..4 {
                    let p = s.acquire().unwrap();
                    use std::sync::atomic::Ordering::SeqCst;
                    let n = inside.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(n, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, SeqCst);
                    fences.push(p.fence());
                }
                fences
            })
        })
        .collect();
    let mut all: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "fences are unique");
    assert!(wait_until(Duration::from_secs(2), || s
        .available()
        .unwrap()
        == 2));
}

/// The median time from a release to the waiter holding the permit: a
/// change stream wake-up on a replica set (bound as the lock's handover),
/// the step on a standalone.
#[test]
fn release_to_acquire_median() {
    let db = db();
    let streams = common::has_change_streams(&db);
    let step = Duration::from_millis(if streams { 5_000 } else { 100 });
    let s = Arc::new(
        MongoSemaphore::builder("k", &db, 1)
            .ttl(Duration::from_secs(30))
            .step(step)
            .timeparanoid(false)
            .build()
            .unwrap(),
    );
    let mut latencies = Vec::new();
    for _ in 0..7 {
        let held = s.try_acquire().unwrap().unwrap();
        let waiter = {
            let s = s.clone();
            std::thread::spawn(move || {
                let p = s.acquire().unwrap();
                let at = Instant::now();
                drop(p);
                at
            })
        };
        // The waiter's first attempt fails and its stream opens (opens of
        // one collection's stream are at least 0.75 s apart).
        std::thread::sleep(Duration::from_millis(1500));
        let released = Instant::now();
        held.release().unwrap();
        latencies.push(waiter.join().unwrap() - released);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!("release to acquire (streams: {streams}): median {median:?}, all {latencies:?}");
    let bound = if streams {
        Duration::from_millis(100)
    } else {
        step + Duration::from_millis(100)
    };
    assert!(median < bound, "median {median:?}");
}
