//! The elector's promises at their edges: stepping down on purpose while a
//! poll hangs, a stop that frees whatever mix of `poll()` and `start()` won
//! the lock, a stop racing a manual poll, repeated stops against a frozen
//! server, an observer that ends with its receivers, and `healthy()` on a
//! slow server.
//!
//! The tests that count threads hold `serial()`, so that no other test of
//! this binary starts or ends threads meanwhile.

mod common;

use common::serial;
use mongoelector::testing::FaultProxy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{count_threads, elector, private_server_like_shared};
use crossbeam_channel::Receiver;
use mongodb::bson::Document;
use mongodb::sync::{Client, Database};
use mongoelector::limits::STOP_WAIT;
use mongoelector::{Event, LossReason, MongoElector};

/// Waits for `BecameMaster`: its fence.
fn wait_became(rx: &Receiver<Event>, limit: Duration) -> Option<i64> {
    let end = Instant::now() + limit;
    while let Ok(event) = rx.recv_deadline(end) {
        if let Event::BecameMaster { fence, .. } = event {
            return Some(fence);
        }
    }
    None
}

/// The transitions among the events received so far.
fn transitions(rx: &Receiver<Event>) -> Vec<Event> {
    rx.try_iter()
        .filter(|e| matches!(e, Event::BecameMaster { .. } | Event::LostMaster { .. }))
        .collect()
}

/// An elector that only does what the test asks: no status reports, no
/// clock check.
fn quiet_elector(db: &Database, key: &str, ttl: Duration, retry: Duration) -> MongoElector {
    MongoElector::builder(key, db)
        .ttl(ttl)
        .retry_interval(retry)
        .status_reports(false)
        .timeparanoid(false)
        .build()
        .unwrap()
}

/// A client of the server (or proxy) at `port` that waits 20 s for it: a
/// call to a frozen server hangs rather than fail within a second, and a
/// slow proxy is waited for.
fn patient_client(port: u16) -> Client {
    Client::with_uri_str(format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=20000&connectTimeoutMS=20000"
    ))
    .unwrap()
}

#[test]
fn step_down_with_a_renewal_stuck_on_a_frozen_server_steps_down_at_once() {
    let server = private_server_like_shared();
    let db = patient_client(server.port).database("stepdown");
    let e = Arc::new(quiet_elector(
        &db,
        "frozen",
        Duration::from_secs(15),
        Duration::from_millis(200),
    ));
    let events = e.events();
    e.start(false).unwrap();
    wait_became(&events, Duration::from_secs(10)).expect("elected");
    // Freeze the server mid-term, and let the next renewal (due a third of
    // the ttl after the election) hang on it.
    std::thread::sleep(Duration::from_secs(1));
    server.pause();
    std::thread::sleep(Duration::from_millis(4500));
    assert!(e.is_master(), "still master: the deadline is 13.5 s away");
    let asked = Instant::now();
    let stepping = {
        let e = e.clone();
        std::thread::spawn(move || {
            let r = e.step_down(Duration::from_secs(60));
            (r, Instant::now())
        })
    };
    let stepped = common::wait_until(Duration::from_millis(200), || !e.is_master());
    let lost = events.recv_deadline(asked + Duration::from_millis(200));
    let lost = std::iter::once(lost.ok())
        .flatten()
        .chain(events.try_iter())
        .find(|ev| matches!(ev, Event::LostMaster { .. }));
    assert!(
        stepped,
        "still master {:?} after step_down",
        asked.elapsed()
    );
    assert!(
        matches!(
            lost,
            Some(Event::LostMaster {
                reason: LossReason::Released,
                ..
            })
        ),
        "{lost:?}"
    );
    let (result, returned) = stepping.join().unwrap();
    result.unwrap();
    let took = returned - asked;
    assert!(
        took <= STOP_WAIT + Duration::from_millis(500),
        "step_down took {took:?}"
    );
    // Back: the stuck renewal ends, the release goes out, and nobody is
    // master (this node holds off).
    server.resume();
    let freed = common::wait_until(Duration::from_secs(10), || {
        e.master_exists().is_ok_and(|held| !held)
    });
    assert!(freed, "the lock was not freed after the server came back");
    assert!(!e.is_master());
    e.stop().unwrap();
}

#[test]
fn a_master_won_by_a_manual_poll_is_freed_by_the_stop_of_a_later_run() {
    let db = common::db();
    let ttl = Duration::from_secs(4);
    let e = quiet_elector(&db, "mixed", ttl, Duration::from_millis(200));
    let other = quiet_elector(&db, "mixed", ttl, Duration::from_millis(200));
    e.poll().unwrap();
    assert!(e.is_master(), "the manual poll won");
    e.start(false).unwrap();
    // Past the first renewal of the run (a third of the ttl).
    std::thread::sleep(Duration::from_millis(1800));
    assert!(e.is_master(), "the run kept the mastership");
    e.stop().unwrap();
    assert!(
        !other.master_exists().unwrap(),
        "stop() left the lock held: the next master waits for its expiry"
    );
    other.poll().unwrap();
    assert!(other.is_master(), "the next node takes over at once");
}

#[test]
fn no_became_master_follows_a_stop_that_raced_a_manual_poll() {
    let server = private_server_like_shared();
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).unwrap();
    let db = patient_client(proxy.port()).database("race");
    let e = Arc::new(quiet_elector(
        &db,
        "race",
        Duration::from_secs(20),
        Duration::from_millis(200),
    ));
    e.master_exists().unwrap(); // the connection, before the latency
    let events = e.events();
    // One second each way: the poll's round trip outlasts `STOP_WAIT`.
    proxy.delay(Duration::from_secs(1));
    let polling = {
        let e = e.clone();
        std::thread::spawn(move || e.poll())
    };
    std::thread::sleep(Duration::from_millis(300));
    e.stop().unwrap();
    let before = transitions(&events);
    polling.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let after = transitions(&events);
    assert!(
        !after
            .iter()
            .any(|ev| matches!(ev, Event::BecameMaster { .. })),
        "BecameMaster after stop() returned: before {before:?}, after {after:?}"
    );
    assert!(!e.is_master());
    // What the poll won is freed by the stop's release.
    proxy.pass();
    let direct = server.client().database("race");
    let watcher = quiet_elector(&direct, "race", Duration::from_secs(20), STOP_WAIT);
    let freed = common::wait_until(Duration::from_secs(10), || {
        watcher.master_exists().is_ok_and(|held| !held)
    });
    assert!(freed, "the acquisition of the raced poll was not freed");
}

/// The thread that sends a surrender's release, under its name today and
/// before (`comm` cuts names to 15 bytes).
fn release_threads() -> usize {
    count_threads("mongoelector-su") + count_threads("mongoelector-re")
}

#[cfg(target_os = "linux")]
#[test]
fn repeated_stops_against_a_frozen_server_leave_one_release_thread() {
    let _serial = serial();
    let server = private_server_like_shared();
    let db = patient_client(server.port).database("stops");
    let e = quiet_elector(
        &db,
        "stops",
        Duration::from_secs(10),
        Duration::from_millis(200),
    );
    e.poll().unwrap();
    assert!(e.is_master());
    let before = release_threads();
    server.pause();
    for i in 0..5 {
        let t = Instant::now();
        e.stop().unwrap();
        assert!(
            t.elapsed() <= STOP_WAIT + Duration::from_millis(500),
            "stop {i} took {:?}",
            t.elapsed()
        );
        assert!(!e.is_master());
    }
    let added = release_threads() - before;
    server.resume();
    assert!(added <= 1, "{added} release threads for 5 stops");
}

/// Whether `cmd` is a read of the lock (an aggregate that does not open a
/// change stream).
fn is_lock_read(name: &str, cmd: &Document) -> bool {
    let opens_stream = cmd
        .get_array("pipeline")
        .ok()
        .and_then(|p| p.first())
        .and_then(|s| s.as_document())
        .is_some_and(|s| s.contains_key("$changeStream"));
    name == "aggregate" && !opens_stream
}

const OBSERVER: &str = "mongoelector-ob";

#[cfg(target_os = "linux")]
#[test]
fn an_observer_ends_with_its_last_receiver_under_a_stable_master() {
    let _serial = serial();
    let db = common::db();
    let retry = Duration::from_millis(300);
    // Not "ob...": elector threads are named after their key.
    let master = elector(&db, "watched", Duration::from_secs(3), retry);
    let masters = master.events();
    master.start(false).unwrap();
    wait_became(&masters, Duration::from_secs(10)).expect("elected");
    let (client, commands) = common::monitored_client();
    let watcher = elector(
        &client.database(db.name()),
        "watched",
        Duration::from_secs(3),
        retry,
    );
    let threads = count_threads(OBSERVER);
    let rx = watcher.observe();
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.map(|m| m.uuid), Some(master.uuid().to_owned()));
    let copy = rx.clone();
    assert_eq!(
        count_threads(OBSERVER),
        threads + 1,
        "{:?}",
        common::thread_names()
    );
    // The master renews (every second) and nothing changes hands.
    std::thread::sleep(Duration::from_millis(1500));
    drop(rx);
    std::thread::sleep(retry * 2);
    assert_eq!(
        count_threads(OBSERVER),
        threads + 1,
        "a clone keeps the observer alive"
    );
    drop(copy);
    let dropped = Instant::now();
    let ended = common::wait_until(retry * 2 + Duration::from_millis(500), || {
        count_threads(OBSERVER) == threads
    });
    assert!(
        ended,
        "the observer thread still runs {:?} after its last receiver went",
        dropped.elapsed()
    );
    // Its reads stop with it.
    commands.take();
    std::thread::sleep(Duration::from_secs(3));
    let reads = commands
        .take()
        .into_iter()
        .filter(|(name, cmd)| is_lock_read(name, cmd))
        .count();
    assert_eq!(reads, 0, "reads after the last receiver was dropped");
    master.stop().unwrap();
}

#[test]
fn healthy_stays_true_on_a_slow_server_between_polls() {
    let server = private_server_like_shared();
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).unwrap();
    let db = patient_client(proxy.port()).database("slow");
    // A master renews every 2 s; each round trip takes 1.2 s or more.
    let e = quiet_elector(&db, "slow", Duration::from_secs(6), Duration::from_secs(1));
    e.master_exists().unwrap(); // the connection, before the latency
    proxy.delay(Duration::from_millis(600));
    let events = e.events();
    e.start(false).unwrap();
    wait_became(&events, Duration::from_secs(15)).expect("elected");
    // Each poll is answered within the tolerance of its due time, so the
    // elector is healthy throughout; on today's code the interval was
    // measured after the round trip, so it read unhealthy before each
    // answer once two round trips exceeded the tolerance.
    let tolerance = Duration::from_millis(2200);
    let until = Instant::now() + Duration::from_secs(7);
    let mut unhealthy = Vec::new();
    let start = Instant::now();
    while Instant::now() < until {
        if !e.healthy(tolerance) {
            unhealthy.push(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let polls = e.stats().polls;
    proxy.pass();
    e.stop().unwrap();
    assert!(polls >= 3, "{polls} polls");
    assert!(
        unhealthy.is_empty(),
        "unhealthy at {:?} (of 7 s)",
        &unhealthy[..unhealthy.len().min(10)]
    );
}
