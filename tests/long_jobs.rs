//! Long jobs and run-once jobs against the real server: keep-alive, the
//! loss channel, hold-at-least, and the holder's metadata.
//!
//! Every keep-alive test holds `serial()`: the renewals of every lock share
//! the process's keep-alive threads, and a test that freezes a server adds
//! a renewal thread for a while, so it must not run beside one that times
//! renewals or counts threads.

mod common;

use common::serial;

use std::time::{Duration, Instant};

use common::{db, monitored_client, thread_names, PrivateServer};
use crossbeam_channel::RecvTimeoutError;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;
use mongoelector::{LossReason, MongoLocker};

fn keep_alive(db: &Database, key: &str, ttl: Duration) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(ttl)
        .step(Duration::from_millis(20))
        .timeparanoid(false)
        .keep_alive(true)
        .build()
        .unwrap()
}

fn plain(db: &Database, key: &str, ttl: Duration) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(ttl)
        .step(Duration::from_millis(20))
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn stored_expiry(db: &Database, key: &str) -> i64 {
    db.collection::<Document>("mongolocker")
        .find_one(doc! {"_id": key})
        .run()
        .unwrap()
        .unwrap()
        .get_datetime("ts_expire")
        .unwrap()
        .timestamp_millis()
}

/// Whether a findAndModify is a renewal (a touch: its filter names the
/// holder's uuid and fence and its update sets only `ts_expire`).
fn is_renewal(command: &Document) -> bool {
    command
        .get_array("update")
        .ok()
        .and_then(|u| u.first())
        .and_then(Bson::as_document)
        .and_then(|stage| stage.get_document("$set").ok())
        .is_some_and(|set| set.keys().eq(["ts_expire"]))
}

#[test]
fn keep_alive_keeps_a_guard_valid_through_a_long_section() {
    let _serial = serial();
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let reader = common::client().database(db.name());
    let ttl = Duration::from_secs(1);
    let locker = keep_alive(&db, "long", ttl);
    let guard = locker.lock().unwrap();
    let lost = guard.lost();
    commands.take();
    let start = Instant::now();
    let mut expiries = vec![stored_expiry(&reader, "long")];
    while start.elapsed() < Duration::from_secs(5) {
        assert!(guard.is_valid(), "invalid after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
        if expiries.len() < 1 + (start.elapsed().as_millis() / 1000) as usize {
            expiries.push(stored_expiry(&reader, "long"));
        }
    }
    assert!(guard.is_valid());
    assert_eq!(lost.try_recv(), Err(crossbeam_channel::TryRecvError::Empty));
    let sent = commands.take_timed();
    // Every command of the locker's client in the section is a renewal:
    // one findAndModify each.
    assert!(sent
        .iter()
        .all(|(n, c, _)| n == "findAndModify" && is_renewal(c)));
    let times: Vec<Instant> = sent.iter().map(|(_, _, t)| *t).collect();
    // About every ttl/3 (333 ms) for 5 s: 15, give or take scheduling.
    assert!(
        (10..=17).contains(&times.len()),
        "{} renewals in 5 s",
        times.len()
    );
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        // Each is due 333 ms after the last one was sent; the driver's
        // delay before its start event varies a little.
        gaps.iter().all(|g| *g >= Duration::from_millis(250)),
        "renewals too close: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(800)),
        "renewals too far apart: {gaps:?}"
    );
    // The server's expiry moved forward with them.
    assert!(
        expiries.windows(2).all(|w| w[1] > w[0]),
        "ts_expire did not move: {expiries:?}"
    );
    assert!(expiries.len() >= 5, "{expiries:?}");
    guard.release().unwrap();
}

#[test]
fn a_frozen_server_ends_the_lease_at_its_deadline() {
    let _serial = serial();
    let server = PrivateServer::start(&[]);
    let client = server.client();
    let db = common::fresh_db(&client);
    let locker = keep_alive(&db, "frozen", Duration::from_secs(2));
    let guard = locker.lock().unwrap();
    let (a, b) = (guard.lost(), guard.lost());
    // Let one renewal through, so the deadline is a renewal's.
    std::thread::sleep(Duration::from_millis(900));
    server.pause();
    let deadline = guard.deadline();
    let reason = a
        .recv_timeout(Duration::from_secs(5))
        .expect("a loss message");
    let at = Instant::now();
    assert_eq!(reason, LossReason::RenewalFailed);
    assert!(
        at <= deadline + Duration::from_millis(250),
        "told {:?} after the deadline",
        at - deadline
    );
    assert!(!guard.is_valid(), "invalid from the message on");
    assert!(at + Duration::from_millis(5) >= deadline, "not before it");
    assert_eq!(b.recv_timeout(Duration::from_secs(1)), Ok(reason));
    for rx in [&a, &b] {
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(100)),
            Err(RecvTimeoutError::Disconnected),
            "exactly one message"
        );
    }
    server.resume();
    // The renewal that was stuck comes back (the lease expired in server
    // time meanwhile); nothing makes the guard valid again.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!guard.is_valid());
    assert!(guard.touch().unwrap().is_none());
    assert_eq!(guard.lost().recv(), Ok(LossReason::RenewalFailed));
    drop(guard);
}

#[cfg(target_os = "linux")]
#[test]
fn a_renewal_stuck_on_a_frozen_server_holds_up_no_other() {
    let _serial = serial();
    let frozen = PrivateServer::start(&[]);
    let frozen_db = common::fresh_db(&frozen.client());
    let ttl = Duration::from_secs(2);
    let stuck = keep_alive(&frozen_db, "stuck", ttl);
    let stuck_guard = stuck.lock().unwrap();
    let stuck_lost = stuck_guard.lost();
    // Another lock, on the suite's server, which stays up.
    let db = db();
    let well = keep_alive(&db, "well", ttl);
    let guard = well.lock().unwrap();
    let lost = guard.lost();
    // A renewal of each goes through, then one server freezes.
    std::thread::sleep(Duration::from_millis(900));
    frozen.pause();
    let before = guard.expires_at();
    // Three ttls: the lock on the live server is renewed throughout.
    assert_eq!(
        lost.recv_timeout(3 * ttl),
        Err(RecvTimeoutError::Timeout),
        "the lock on the live server was lost"
    );
    assert!(guard.is_valid());
    assert!(guard.expires_at() > before, "renewed while the other hung");
    // The frozen one's round trip is still stuck; its lease ended on time.
    assert_eq!(
        stuck_lost.recv_timeout(Duration::from_secs(1)),
        Ok(LossReason::RenewalFailed)
    );
    let names = thread_names();
    assert_eq!(count(&names, KEEPALIVE), 1, "{names:?}");
    assert!(
        count(&names, RENEW) >= 2,
        "a thread beside the stuck one: {names:?}"
    );
    frozen.resume();
    drop(stuck_guard);
    guard.release().unwrap();
    // Quiet for 10 s (no renewal finding every thread busy), the threads
    // beyond the first end.
    assert!(
        common::wait_until(Duration::from_secs(20), || count(&thread_names(), RENEW)
            == 1),
        "{:?}",
        thread_names()
    );
}

/// Many renewals stuck on one frozen server do not delay a renewal to
/// another: each is sent within the pool's stall (200 ms) of its due time,
/// not one stall per stuck renewal queued ahead of it.
#[cfg(target_os = "linux")]
#[test]
fn many_renewals_stuck_on_a_frozen_server_do_not_delay_a_live_one() {
    let _serial = serial();
    let frozen = PrivateServer::start(&[]);
    let frozen_db = common::fresh_db(&frozen.client());
    let ttl = Duration::from_secs(2);
    let stuck: Vec<MongoLocker> = (0..8)
        .map(|i| keep_alive(&frozen_db, &format!("stuck-{i}"), ttl))
        .collect();
    let stuck_guards: Vec<_> = stuck.iter().map(|l| l.lock().unwrap()).collect();
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let well = keep_alive(&db, "well", ttl);
    let guard = well.lock().unwrap();
    let lost = guard.lost();
    commands.take();
    std::thread::sleep(Duration::from_millis(900));
    frozen.pause();
    let paused = Instant::now();
    assert_eq!(
        lost.recv_timeout(3 * ttl),
        Err(RecvTimeoutError::Timeout),
        "the lock on the live server was lost"
    );
    assert!(guard.is_valid());
    // Its renewals kept their period: ttl/3, late by one stall at most
    // (and a loaded machine's scheduling).
    let sent: Vec<Instant> = commands
        .take_timed()
        .into_iter()
        .filter(|(name, cmd, _)| name == "findAndModify" && is_renewal(cmd))
        .map(|(_, _, at)| at)
        .collect();
    assert!(sent.len() >= 8, "{} renewals in three ttls", sent.len());
    let period = ttl / 3;
    let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .all(|g| *g < period + Duration::from_millis(500)),
        "renewal gaps {gaps:?} (period {period:?}; paused {:?} after the first)",
        paused.saturating_duration_since(sent[0])
    );
    frozen.resume();
    drop(stuck_guards);
    guard.release().unwrap();
}

#[test]
fn without_keep_alive_the_loss_comes_at_the_deadline() {
    let db = db();
    let locker = plain(&db, "plain", Duration::from_secs(1));
    let guard = locker.lock().unwrap();
    let lost = guard.lost();
    let deadline = guard.deadline();
    assert_eq!(
        lost.recv_timeout(Duration::from_secs(3)),
        Ok(LossReason::RenewalFailed)
    );
    let at = Instant::now();
    assert!(at + Duration::from_millis(5) >= deadline);
    assert!(
        at <= deadline + Duration::from_millis(250),
        "{:?}",
        at - deadline
    );
    assert!(!guard.is_valid());
}

#[test]
fn a_forced_acquire_is_reported_as_taken_over() {
    let _serial = serial();
    let db = db();
    let ttl = Duration::from_secs(3);
    let a = keep_alive(&db, "forced", ttl);
    let b = plain(&db, "forced", ttl);
    let guard = a.lock().unwrap();
    let lost = guard.lost();
    std::thread::sleep(Duration::from_millis(200));
    let forced = Instant::now();
    assert!(b
        .acquire(false, None, Duration::from_millis(20), true)
        .unwrap());
    let reason = lost.recv_timeout(Duration::from_secs(5)).expect("a loss");
    let after = forced.elapsed();
    assert_eq!(reason, LossReason::TakenOver);
    // Within one renewal period (ttl/3 = 1 s), plus a round trip's slack.
    assert!(after <= Duration::from_millis(1500), "{after:?}");
    assert!(!guard.is_valid());
    drop(guard); // must not free b's lock
    assert!(b.owned().unwrap());

    // By hand, without keep-alive: the touch that finds out tells lost().
    let c = plain(&db, "forced-touch", ttl);
    let d = plain(&db, "forced-touch", ttl);
    let guard = c.lock().unwrap();
    let lost = guard.lost();
    assert!(d
        .acquire(false, None, Duration::from_millis(20), true)
        .unwrap());
    assert_eq!(lost.try_recv(), Err(crossbeam_channel::TryRecvError::Empty));
    assert!(guard.touch().unwrap().is_none());
    assert_eq!(lost.try_recv(), Ok(LossReason::TakenOver));
}

#[test]
fn releasing_or_dropping_stops_renewals_at_once_and_disconnects() {
    let _serial = serial();
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let locker = keep_alive(&db, "stop", Duration::from_millis(600));
    for how in ["release", "drop", "locker release"] {
        let guard = if how == "locker release" {
            assert!(locker
                .acquire(false, None, Duration::from_millis(20), false)
                .unwrap());
            None
        } else {
            Some(locker.lock().unwrap())
        };
        let lost = guard.as_ref().map(|g| g.lost());
        // A few renewals (every 200 ms).
        std::thread::sleep(Duration::from_millis(700));
        let renewals = commands
            .take()
            .iter()
            .filter(|(n, c)| n == "findAndModify" && is_renewal(c))
            .count();
        assert!(renewals >= 2, "{how}: {renewals} renewals");
        match guard {
            Some(g) if how == "release" => g.release().unwrap(),
            Some(g) => drop(g),
            None => assert!(locker.release(false).unwrap()),
        }
        let released = Instant::now();
        if let Some(lost) = lost {
            assert_eq!(
                lost.recv_timeout(Duration::from_millis(100)),
                Err(RecvTimeoutError::Disconnected),
                "{how}: disconnected without a message"
            );
        }
        std::thread::sleep(Duration::from_millis(1000));
        let sent = commands.take_timed();
        assert!(
            sent.iter().all(|(_, _, t)| *t <= released),
            "{how}: a command after the release: {:?}",
            sent.iter().map(|(n, _, _)| n).collect::<Vec<_>>()
        );
        let (name, last, _) = sent.last().expect("the release");
        assert!(
            name == "findAndModify" && !is_renewal(last),
            "{how}: {last}"
        );
        assert!(!locker.owned().unwrap(), "{how}");
        commands.take();
    }
}

/// The keep-alive thread and the renewal threads, as `comm` shows their
/// names (cut to 15 bytes).
const KEEPALIVE: &str = "mongoelector-ke";
const RENEW: &str = "mongoelector-re";

/// How many of `names` are `name`.
fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| n.as_str() == name).count()
}

#[cfg(target_os = "linux")]
#[test]
fn a_hundred_kept_alive_guards_share_one_renewal_thread() {
    let _serial = serial();
    // Threads an earlier test's stuck renewals started end once the pool
    // has been quiet for 10 s.
    assert!(
        common::wait_until(Duration::from_secs(30), || count(&thread_names(), RENEW)
            <= 1),
        "{:?}",
        thread_names()
    );
    // A server of its own, fresh: the suite's shared one, slowed by
    // everything before, can take over the pool's stall (200 ms) for one
    // round trip, and then every renewal queued behind it rightly gets a
    // thread.
    let server = PrivateServer::start(&[]);
    let db = common::fresh_db(&server.client());
    let ttl = Duration::from_secs(3);
    let lockers: Vec<MongoLocker> = (0..100)
        .map(|i| keep_alive(&db, &format!("many-{i}"), ttl))
        .collect();
    let guards: Vec<_> = lockers.iter().map(|l| l.lock().unwrap()).collect();
    let before: Vec<_> = guards.iter().map(|g| g.expires_at()).collect();
    // Longer than a ttl: only renewals keep them valid.
    std::thread::sleep(Duration::from_secs(4));
    let names = thread_names();
    assert_eq!(count(&names, KEEPALIVE), 1, "{names:?}");
    // The round trips run on "mongoelector-renew": one thread, and another
    // only while a round trip takes over 200 ms (a loaded machine).
    let senders = count(&names, RENEW);
    assert!((1..=3).contains(&senders), "a thread per lock? {names:?}");
    let ours = names
        .iter()
        .filter(|n| n.starts_with("mongoelector"))
        .count();
    assert!(ours - senders <= 3, "a thread per lock? {names:?}");
    for (g, b) in guards.iter().zip(&before) {
        assert!(g.is_valid(), "fence {} lapsed", g.fence());
        assert!(g.expires_at() > *b, "fence {} was not renewed", g.fence());
    }
}

#[test]
fn hold_at_least_keeps_other_lockers_out_until_then() {
    let db = db();
    let hold = Duration::from_secs(2);
    let a = MongoLocker::builder("once", &db)
        .ttl(Duration::from_secs(10))
        .timeparanoid(false)
        .hold_at_least(hold)
        .build()
        .unwrap();
    // No takeover grace, so the lock is free exactly when the hold ends.
    let b = MongoLocker::builder("once", &db)
        .ttl(Duration::from_secs(10))
        .timeparanoid(false)
        .takeover_grace(Duration::ZERO)
        .build()
        .unwrap();
    let acquired = Instant::now();
    let guard = a.try_lock().unwrap().expect("free");
    let first = a.get_current().unwrap().unwrap();
    guard.release().unwrap();
    // Held by its releaser until the hold ends, as every read says.
    let held = a.get_current().unwrap().expect("held during the hold");
    assert_eq!(held.uuid, a.uuid());
    assert_eq!(held.fence, first.fence);
    assert_eq!(
        (held.expires - first.created).num_milliseconds(),
        2000,
        "ts_expire = ts_created + hold"
    );
    assert!(a.locked().unwrap() && a.owned().unwrap() && !b.owned().unwrap());
    let mut tries = 0;
    let second = loop {
        tries += 1;
        if let Some(g) = b.try_lock().unwrap() {
            break g;
        }
        assert!(
            acquired.elapsed() < hold + Duration::from_secs(2),
            "never freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let freed_after = acquired.elapsed();
    assert!(tries > 10, "only {tries} tries");
    assert!(
        freed_after >= hold - Duration::from_millis(100),
        "{freed_after:?}"
    );
    let info = b.get_current().unwrap().unwrap();
    assert!(
        (info.created - first.created).num_milliseconds() >= 2000,
        "taken before the hold ended, in server time"
    );
    assert!(second.fence() > first.fence, "fences grow");
    drop(second);

    // A release after the hold has passed frees the lock at once.
    let guard = a.try_lock().unwrap().expect("free again");
    std::thread::sleep(hold + Duration::from_millis(100));
    guard.release().unwrap();
    assert!(!a.locked().unwrap());
    assert!(b.try_lock().unwrap().is_some());
}

#[test]
fn metadata_round_trips_and_a_holder_without_it_reads_none() {
    let db = db();
    let meta = doc! {
        "job": "nightly",
        "literal": "$not.a.path",
        "worker": { "pod": "web-7", "tags": ["a", { "n": 1_i64 }], "ratio": 0.5 },
        "started": mongodb::bson::DateTime::from_millis(1_700_000_000_000),
        "nothing": Bson::Null,
    };
    let a = MongoLocker::builder("meta", &db)
        .timeparanoid(false)
        .metadata(meta.clone())
        .build()
        .unwrap();
    let b = plain(&db, "meta", Duration::from_secs(10));
    let guard = a.try_lock().unwrap().expect("free");
    assert_eq!(
        b.get_current().unwrap().unwrap().metadata,
        Some(meta.clone())
    );
    assert_eq!(b.status().unwrap().lock_metadata, Some(meta.clone()));
    let raw = db
        .collection::<Document>("mongolocker")
        .find_one(doc! {"_id": "meta"})
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(raw.get_document("metadata").unwrap(), &meta);
    drop(guard);
    let guard = b.try_lock().unwrap().expect("free");
    assert_eq!(a.get_current().unwrap().unwrap().metadata, None);
    assert_eq!(a.status().unwrap().lock_metadata, None);
    drop(guard);
}
