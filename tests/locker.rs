//! MongoLocker against the real server: each semantic of the lock, one test.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{db, monitored_client, wait_until};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{Acknowledgment, WriteConcern};
use mongodb::sync::{Collection, Database};
use mongoelector::{lease_margin, Error, LockGuard, MongoLocker};

const STEP: Duration = Duration::from_millis(20);

fn locker(db: &Database, key: &str, ttl: Duration) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(ttl)
        .step(STEP)
        .build()
        .unwrap()
}

fn raw(db: &Database) -> Collection<Document> {
    db.collection("mongolocker")
}

fn stored(db: &Database, key: &str) -> Document {
    raw(db)
        .find_one(doc! {"_id": key})
        .run()
        .unwrap()
        .expect("lock document")
}

#[test]
fn one_document_per_key_with_the_python_field_names() {
    let db = db();
    let a = locker(&db, "doc", Duration::from_secs(30));
    assert!(a.acquire(false, None, STEP, false).unwrap());
    let d = stored(&db, "doc");
    assert_eq!(d.get("_id"), Some(&Bson::String("doc".into())));
    assert_eq!(d.get("locked"), Some(&Bson::Boolean(true)));
    assert_eq!(d.get_str("uuid").unwrap(), a.uuid());
    assert!(!d.get_str("host").unwrap().is_empty());
    assert_eq!(d.get_i64("pid").unwrap(), i64::from(std::process::id()));
    let created = d.get_datetime("ts_created").unwrap().timestamp_millis();
    let expire = d.get_datetime("ts_expire").unwrap().timestamp_millis();
    assert_eq!(expire - created, 30_000, "ts_expire = server now + ttl");
    // The first fence on the key: the server's clock in microseconds.
    assert!(matches!(d.get("fence"), Some(Bson::Int64(f)) if *f > 1_000_000_000_000_000));

    assert!(a.release(false).unwrap());
    let d = stored(&db, "doc");
    assert_eq!(
        d.get("locked"),
        Some(&Bson::Boolean(false)),
        "release marks it free"
    );
    assert_eq!(
        raw(&db).count_documents(doc! {}).run().unwrap(),
        1,
        "never deleted"
    );
    let index_names = raw(&db).list_index_names().run().unwrap();
    assert_eq!(index_names, ["_id_"], "no TTL index deletes lock documents");
}

#[test]
fn nonblocking_acquire_reports_held_then_free() {
    let db = db();
    let a = locker(&db, "nb", Duration::from_secs(30));
    let b = locker(&db, "nb", Duration::from_secs(30));
    assert_ne!(a.uuid(), b.uuid());
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert!(!b.acquire(false, None, STEP, false).unwrap());
    assert!(b.try_lock().unwrap().is_none());
    let t = Instant::now();
    assert!(!b
        .acquire(true, Some(Duration::from_millis(300)), STEP, false)
        .unwrap());
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "waited the whole timeout"
    );
    assert!(b
        .try_lock_for(Duration::from_millis(100))
        .unwrap()
        .is_none());
    assert!(a.locked().unwrap() && b.locked().unwrap());
    assert!(a.owned().unwrap());
    assert!(!b.owned().unwrap());
    assert!(a.release(false).unwrap());
    assert!(!a.locked().unwrap());
    assert!(b.acquire(false, None, STEP, false).unwrap());
    assert!(b.owned().unwrap() && !a.owned().unwrap());
}

#[test]
fn expired_lock_is_taken_over_at_once_not_after_the_ttl_sweep() {
    let db = db();
    let a = locker(&db, "exp", Duration::from_secs(1));
    let b = locker(&db, "exp", Duration::from_secs(30));
    assert!(a.acquire(false, None, STEP, false).unwrap());
    let first = a.get_current().unwrap().unwrap();
    assert!(!b.acquire(false, None, STEP, false).unwrap());
    let t = Instant::now();
    assert!(b
        .acquire(true, Some(Duration::from_secs(10)), STEP, false)
        .unwrap());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    let second = b.get_current().unwrap().unwrap();
    assert_eq!(second.uuid, b.uuid());
    assert!(
        second.created >= first.expires,
        "not before the expiry, in server time"
    );
    assert!(second.fence > first.fence);
    assert!(!a.owned().unwrap());
    assert!(a.touch().unwrap().is_none(), "the old holder cannot renew");
}

#[test]
fn abandoned_lock_is_taken_within_grace_plus_step_plus_one_second_of_expiry() {
    let db = db();
    let a = locker(&db, "abandon", Duration::from_secs(1));
    let step = Duration::from_millis(100);
    assert!(a.acquire(false, None, step, false).unwrap());
    let expires = a.get_current().unwrap().unwrap().expires;
    // `a` never releases or renews: abandoned.
    let b = locker(&db, "abandon", Duration::from_secs(30));
    assert!(b
        .acquire(true, Some(Duration::from_secs(10)), step, false)
        .unwrap());
    let taken = b.get_current().unwrap().unwrap().created;
    let late = (taken - expires).to_std().expect("taken after the expiry");
    // The takeover grace (b's default: its lease margin) first.
    let grace = mongoelector::lease_margin(Duration::from_secs(30));
    assert!(
        late >= grace && late <= grace + step + Duration::from_secs(1),
        "taken {late:?} after expiry (grace {grace:?})"
    );
}

#[test]
fn server_time_decides_not_the_stored_or_local_clock() {
    // Plant a lock whose expiry is an hour ahead of the server's clock (as a
    // holder with a fast clock that wrote its own time would): still live.
    // And one an hour behind: expired, taken at once.
    let db = db();
    let server_now = |db: &Database| {
        db.run_command(doc! {"hello": 1})
            .run()
            .unwrap()
            .get_datetime("localTime")
            .unwrap()
            .timestamp_millis()
    };
    let plant = |key: &str, offset_ms: i64| {
        let now = server_now(&db);
        raw(&db)
            .insert_one(doc! {
                "_id": key, "locked": true, "uuid": "someone-else", "host": "h", "pid": 1_i64,
                "ts_created": mongodb::bson::DateTime::from_millis(now),
                "ts_expire": mongodb::bson::DateTime::from_millis(now + offset_ms),
                "fence": 41_i64,
            })
            .run()
            .unwrap();
    };
    plant("live", 3_600_000);
    plant("dead", -3_600_000);
    let live = locker(&db, "live", Duration::from_secs(5));
    let dead = locker(&db, "dead", Duration::from_secs(5));
    assert!(live.locked().unwrap());
    assert!(!live.acquire(false, None, STEP, false).unwrap());
    assert!(!dead.locked().unwrap());
    assert!(dead.get_current().unwrap().is_none());
    assert!(dead.acquire(false, None, STEP, false).unwrap());
    // Greater than the planted fence (and at least the server clock in µs).
    assert!(dead.get_current().unwrap().unwrap().fence > 41);
}

#[test]
fn fences_grow_across_releases_takeovers_and_force() {
    let db = db();
    let a = locker(&db, "fence", Duration::from_secs(1));
    let b = locker(&db, "fence", Duration::from_secs(30));
    let mut fences = Vec::new();
    let g = a.lock().unwrap();
    fences.push(g.fence());
    drop(g); // released
    let g = b.lock().unwrap();
    fences.push(g.fence());
    // Forced away from a live holder.
    assert!(a.acquire(false, None, STEP, true).unwrap());
    let forced = a.get_current().unwrap().unwrap();
    assert_eq!(forced.uuid, a.uuid());
    fences.push(forced.fence);
    // No I/O: b's guard cannot know yet; its next renewal finds out.
    assert!(g.is_valid());
    assert!(g.touch().unwrap().is_none());
    assert!(!g.is_valid(), "the old guard sees its acquisition is lost");
    drop(g); // must not free a's lock
    assert!(a.owned().unwrap());
    // a's 1 s lease expires; b takes over.
    assert!(b
        .acquire(true, Some(Duration::from_secs(10)), STEP, false)
        .unwrap());
    fences.push(b.get_current().unwrap().unwrap().fence);
    assert!(b.release(false).unwrap());
    fences.push(a.lock().unwrap().fence());
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "{fences:?}");
}

#[test]
fn release_frees_only_this_acquisition_unless_forced() {
    let db = db();
    let a = locker(&db, "rel", Duration::from_secs(1));
    let b = locker(&db, "rel", Duration::from_secs(30));
    assert!(!a.release(false).unwrap(), "nothing held");
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert!(b
        .acquire(true, Some(Duration::from_secs(10)), STEP, false)
        .unwrap());
    // a's acquisition expired and b holds the lock: a's stale release and
    // b's force-less view are unaffected.
    assert!(!a.release(false).unwrap());
    assert!(!a.release(false).unwrap());
    assert!(b.owned().unwrap());
    // Forced release frees whoever holds it.
    assert!(a.release(true).unwrap());
    assert!(!b.locked().unwrap());
    assert!(!a.release(true).unwrap(), "already free");
    assert!(b.touch().unwrap().is_none());
    assert!(!b.release(false).unwrap());
    // Release after expiry, with nobody else taking it: not "held" any more.
    assert!(a.acquire(false, None, STEP, false).unwrap());
    std::thread::sleep(Duration::from_millis(1300));
    assert!(!a.release(false).unwrap());
}

#[test]
fn touch_extends_from_server_now_only_while_held() {
    let db = db();
    let a = locker(&db, "touch", Duration::from_secs(2));
    assert!(a.touch().unwrap().is_none(), "not held");
    let guard = a.lock().unwrap();
    let first = guard.expires_at();
    std::thread::sleep(Duration::from_millis(1200));
    let renewed = guard.touch().unwrap().expect("still held");
    let gain = (renewed - first).num_milliseconds();
    assert!(
        (1000..2000).contains(&gain),
        "renewed by server now + ttl: +{gain} ms"
    );
    assert_eq!(guard.expires_at(), renewed);
    assert_eq!(a.get_current().unwrap().unwrap().expires, renewed);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        guard.is_valid(),
        "renewed lease still valid after the first ttl"
    );
    assert!(a.owned().unwrap());
    let again = a.touch().unwrap().expect("still held");
    assert!(again > renewed);
    // Taken by force: touch answers None and the guard turns invalid.
    let b = locker(&db, "touch", Duration::from_secs(30));
    assert!(b.acquire(false, None, STEP, true).unwrap());
    assert!(guard.touch().unwrap().is_none());
    assert!(!guard.is_valid());
    drop(guard);
    assert!(
        b.owned().unwrap(),
        "the stale guard's drop did not free b's lock"
    );
}

#[test]
fn guard_turns_invalid_before_anyone_else_can_acquire() {
    let db = db();
    let ttl = Duration::from_secs(1);
    let a = locker(&db, "deadline", ttl);
    let b = locker(&db, "deadline", Duration::from_secs(30));
    let sent = Instant::now();
    let guard = a.lock().unwrap();
    assert!(guard.is_valid());
    let mut invalid_at = None;
    loop {
        if invalid_at.is_none() && !guard.is_valid() {
            invalid_at = Some(Instant::now());
        }
        if b.acquire(false, None, STEP, false).unwrap() {
            assert!(
                !guard.is_valid(),
                "b acquired while a's guard still said valid"
            );
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "b never acquired");
        std::thread::sleep(Duration::from_millis(5));
    }
    let invalid_after = invalid_at.expect("turned invalid before b acquired") - sent;
    // On time, give or take one loop turn (a round trip) on a loaded machine.
    assert!(invalid_after <= ttl - lease_margin(ttl) + Duration::from_millis(500));
    assert!(invalid_after >= ttl - lease_margin(ttl) - Duration::from_millis(1));
}

#[test]
fn acquiring_a_held_lock_again_is_an_error_not_a_deadlock() {
    let db = db();
    let a = locker(&db, "again", Duration::from_secs(30));
    let guard = a.lock().unwrap();
    let t = Instant::now();
    for result in [
        a.acquire(true, None, STEP, false),
        a.acquire(false, None, STEP, false),
        a.acquire(false, None, STEP, true),
    ] {
        match result {
            Err(Error::AlreadyHeld { key, fence }) => {
                assert_eq!(key, "again");
                assert_eq!(fence, guard.fence());
            }
            other => panic!("expected AlreadyHeld, got {other:?}"),
        }
    }
    assert!(matches!(a.lock(), Err(Error::AlreadyHeld { .. })));
    assert!(matches!(a.try_lock(), Err(Error::AlreadyHeld { .. })));
    assert!(t.elapsed() < Duration::from_secs(1), "failed at once");
    guard.release().unwrap();
    assert!(a.try_lock().unwrap().is_some());
}

#[test]
fn writes_are_majority_journaled_and_reads_majority_from_primary() {
    let (client, commands) = monitored_client();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    // The caller's database asks for w:1, local reads from a secondary if
    // possible; the lock must not inherit any of it.
    let weak = mongodb::options::DatabaseOptions::builder()
        .write_concern(WriteConcern::builder().w(Acknowledgment::Nodes(1)).build())
        .read_concern(mongodb::options::ReadConcern::local())
        .selection_criteria(mongodb::options::SelectionCriteria::ReadPreference(
            mongodb::options::ReadPreference::SecondaryPreferred {
                options: Default::default(),
            },
        ))
        .build();
    let db = client.database_with_options(&name, weak);
    let a = MongoLocker::builder("rs", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    a.get_current().unwrap(); // first use: the server check, counted elsewhere
    commands.take();
    let guard = a.lock().unwrap();
    guard.touch().unwrap();
    a.locked().unwrap();
    guard.release().unwrap();
    let sent = commands.take();
    let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "findAndModify",
            "findAndModify",
            "aggregate",
            "findAndModify"
        ]
    );
    for (name, cmd) in &sent {
        if name == "findAndModify" {
            let wc = cmd.get_document("writeConcern").expect("writeConcern sent");
            assert_eq!(wc.get_str("w").unwrap(), "majority", "{cmd}");
            assert!(wc.get_bool("j").unwrap(), "{cmd}");
        } else {
            let rc = cmd.get_document("readConcern").expect("readConcern sent");
            assert_eq!(rc.get_str("level").unwrap(), "majority");
            // Primary is the default read preference: the driver sends none,
            // or says primary.
            if let Ok(rp) = cmd.get_document("$readPreference") {
                assert_eq!(rp.get_str("mode").unwrap(), "primary");
            }
        }
    }
}

#[test]
fn timeparanoid_checks_the_clock_on_the_first_acquire_only() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let a = MongoLocker::new("paranoid", &db).unwrap();
    a.get_current().unwrap(); // first use: the server check, counted elsewhere
    commands.take();
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert_eq!(commands.names(), ["hello", "findAndModify"]);
    assert!(a.release(false).unwrap());
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert_eq!(
        commands.names(),
        ["findAndModify", "findAndModify"],
        "checked once per 10 min"
    );
    let quiet = MongoLocker::builder("paranoid2", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    quiet.get_current().unwrap();
    commands.take();
    assert!(quiet.acquire(false, None, STEP, false).unwrap());
    assert_eq!(commands.names(), ["findAndModify"]);
}

#[test]
fn eight_threads_mutual_exclusion_and_growing_fences() {
    const THREADS: usize = 8;
    const SECTIONS: usize = 50;
    let db = db();
    let inside = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let locker = MongoLocker::builder("mutex", &db)
                .ttl(Duration::from_secs(30))
                .step(Duration::from_millis(2))
                .timeparanoid(false)
                .build()
                .unwrap();
            let (inside, seen) = (inside.clone(), seen.clone());
            std::thread::spawn(move || {
                for _ in 0..SECTIONS {
                    let guard: LockGuard = locker.lock().unwrap();
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    seen.lock().unwrap().push(guard.fence());
                    assert!(guard.is_valid());
                    std::thread::sleep(Duration::from_millis(1));
                    assert_eq!(inside.fetch_sub(1, Ordering::SeqCst), 1);
                    guard.release().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker panicked");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), THREADS * SECTIONS);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "fences in section order: {seen:?}"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[test]
fn shared_locker_serialises_threads_into_one_owner() {
    let db = db();
    let a = Arc::new(locker(&db, "shared", Duration::from_secs(30)));
    let wins = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (a, wins) = (a.clone(), wins.clone());
            std::thread::spawn(move || match a.acquire(false, None, STEP, false) {
                Ok(true) => {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
                Ok(false) => panic!("one owner identity cannot find itself holding"),
                Err(Error::AlreadyHeld { .. }) => {}
                Err(e) => panic!("{e}"),
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), 1, "exactly one acquisition");
    // (Fences are floored at the server clock in microseconds, so their
    // value no longer counts acquisitions: `wins` does.)
    assert!(a.get_current().unwrap().is_some());
}

#[test]
fn status_describes_the_locker_and_the_live_lock() {
    let db = db();
    let a = locker(&db, "status", Duration::from_secs(30));
    let before = a.status().unwrap();
    assert_eq!(
        (before.key.as_str(), before.uuid.as_str()),
        ("status", a.uuid())
    );
    assert_eq!(before.ttl, Duration::from_secs(30));
    assert_eq!(before.pid, std::process::id());
    assert!(!before.lock_owned && before.lock_created.is_none() && before.lock_expires.is_none());
    let guard = a.lock().unwrap();
    let s = a.status().unwrap();
    assert!(s.lock_owned);
    assert_eq!(s.lock_expires, Some(guard.expires_at()));
    assert!(s.lock_created.unwrap() <= s.timestamp && s.timestamp < guard.expires_at());
    let b = locker(&db, "status", Duration::from_secs(30));
    let sb = b.status().unwrap();
    assert!(!sb.lock_owned);
    assert_eq!(
        sb.lock_expires, s.lock_expires,
        "the live lock, whoever holds it"
    );
}

#[test]
fn guard_drop_releases_at_once_and_a_guard_can_move_to_another_thread() {
    let db = db();
    let a = locker(&db, "drop", Duration::from_secs(30));
    {
        let _g = a.lock().unwrap();
        assert!(a.locked().unwrap());
    }
    assert!(!a.locked().unwrap(), "released by the drop");
    // The guard owns what it needs: it can leave the locker's scope.
    let guard = a.lock().unwrap();
    let fence = guard.fence();
    let handle = std::thread::spawn(move || {
        assert!(guard.is_valid());
        guard.fence()
    });
    assert_eq!(handle.join().unwrap(), fence);
    assert!(
        !a.locked().unwrap(),
        "dropped on the other thread: released"
    );
    assert!(wait_until(Duration::from_millis(1), || true));
}

#[test]
fn guard_drop_with_the_database_gone_logs_instead_of_panicking() {
    let server = common::PrivateServer::start(&[]);
    let db = server.client().database("gone");
    let a = locker(&db, "gone", Duration::from_secs(30));
    let guard = a.lock().unwrap();
    let second = locker(&db, "gone2", Duration::from_secs(30));
    let guard2 = second.lock().unwrap();
    server.stop();
    drop(guard); // logs the failed release
    assert!(matches!(guard2.release(), Err(Error::Database(_))));
    assert!(matches!(a.locked(), Err(Error::Database(_))));
}
