//! The process's change streams: one thread and one cursor per deployment
//! and collection however waiters come and go, a reopen backoff that holds
//! while waiters churn, and deployments whose databases share a name kept
//! apart.
//!
//! Change streams exist only on a replica set: on a standalone suite server
//! the tests about streams return at once (the standalone fallback is
//! covered in `change_streams.rs`), and the one about two deployments runs
//! on standalone servers, where it must hold as well.
//!
//! Every test hold `serial()`: they count the process's stream threads.

mod common;

use common::serial;

use std::time::{Duration, Instant};

use common::{
    has_change_streams, monitored_client, monitored_client_at, opens_stream, PrivateServer,
};
use mongodb::bson::Document;
use mongodb::sync::Database;
use mongoelector::MongoLocker;

/// A racing locker: these tests are about the stream's life, and a fair
/// waiter behind a holder of its own process opens none (the holder's
/// release wakes it).
fn locker(db: &Database, key: &str, ttl: Duration) -> MongoLocker {
    MongoLocker::builder(key, db)
        .fair(false)
        .ttl(ttl)
        .timeparanoid(false)
        .build()
        .unwrap()
}

/// The change streams' threads (`mongoelector-watch-COLLECTION`, cut by
/// `comm` to 15 bytes).
fn stream_threads() -> usize {
    common::thread_names()
        .iter()
        .filter(|n| n.as_str() == "mongoelector-wa")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn waiters_that_come_and_go_share_one_lingering_stream() {
    let _serial = serial();
    if !has_change_streams(&common::db()) {
        return; // standalone: no streams to pile up
    }
    // A server of its own: any write on the test server ends every waiting
    // getMore, which would close forgotten streams and hide a pile-up.
    let server = PrivateServer::start(&[]);
    let holder = locker(
        &server.client().database("app"),
        "busy",
        Duration::from_secs(600),
    );
    assert!(holder
        .acquire(false, None, Duration::from_millis(10), false)
        .unwrap());
    let (client, commands) = monitored_client_at(&server.uri());
    let db = client.database("app");
    let waiter = locker(&db, "busy", Duration::from_secs(30));
    let threads = || common::thread_names().len();
    let (base_streams, base_threads) = (stream_threads(), threads());
    let (mut most_streams, mut most_threads) = (0, 0);
    let (mut open, mut most_open) = (0i64, 0i64);
    let timeout = Duration::from_millis(200);
    for i in 0..40 {
        let t = Instant::now();
        let got = waiter.try_lock_for(timeout).unwrap();
        let took = t.elapsed();
        assert!(got.is_none(), "held by the holder");
        // The timeout plus a round trip (two attempts, one at each end).
        assert!(
            took < timeout + Duration::from_millis(400),
            "try_lock_for {i} took {took:?}"
        );
        most_streams = most_streams.max(stream_threads());
        most_threads = most_threads.max(threads());
        for (name, cmd) in commands.take() {
            if opens_stream(&name, &cmd) {
                open += 1;
            } else if name == "killCursors" {
                open -= 1;
            }
            most_open = most_open.max(open);
        }
        std::thread::sleep(Duration::from_millis(250).saturating_sub(took));
    }
    assert!(
        most_streams <= base_streams + 1,
        "stream threads: {base_streams} before, up to {most_streams} during"
    );
    // The driver's own threads may come and go a little.
    assert!(
        most_threads <= base_threads + 3,
        "threads: {base_threads} before, up to {most_threads} during"
    );
    assert_eq!(most_open, 1, "change streams open at once, at most");
    // No pooled connection is held by a forgotten stream.
    let t = Instant::now();
    assert!(waiter.locked().unwrap());
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn a_collection_dropped_in_a_loop_reopens_the_stream_about_once_a_second() {
    let _serial = serial();
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    if !has_change_streams(&db) {
        return; // standalone: no stream to reopen
    }
    let electors: Vec<_> = (0..3)
        .map(|_| {
            common::elector(
                &db,
                "churn",
                Duration::from_secs(3),
                Duration::from_millis(200),
            )
        })
        .collect();
    for e in &electors {
        e.start(false).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let dropper = common::client().database(db.name());
    commands.take();
    let t = Instant::now();
    let run = Duration::from_secs(6);
    while t.elapsed() < run {
        dropper
            .collection::<Document>(mongoelector::limits::DEFAULT_LOCK_COLLECTION)
            .drop()
            .run()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let all = commands.take_timed();
    let opens: Vec<_> = all
        .into_iter()
        .filter(|(name, cmd, _)| opens_stream(name, cmd))
        .collect();
    let opened = opens.len();
    for e in &electors {
        e.stop().unwrap();
    }
    eprintln!("{opened} change streams opened in {run:?}");
    let times: Vec<_> = opens
        .iter()
        .map(|(_, _, at)| at.saturating_duration_since(t))
        .collect();
    eprintln!("opened at {times:?}");
    // Opens are spaced by about a second (0.75 s at the least), whoever
    // opens them: a thread of the hub after a failure, or a new thread
    // after the last one ended with no waiter left (electors' interests
    // come and go as mastership changes hands). Half a second leaves room
    // for a loaded machine's scheduling.
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(500),
            "two opens {:?} apart: {times:?}",
            pair[1] - pair[0]
        );
    }
    // One open per reopen pause (0.75 s at the least) and one more.
    assert!(
        opened <= 9,
        "{opened} streams opened in {run:?} (about one a second expected)"
    );
    assert!(opened >= 2, "{opened}: the stream was reopened at all");
}

#[test]
fn same_named_databases_on_two_deployments_do_not_share_a_stream() {
    let _serial = serial();
    let args: &[&str] = if has_change_streams(&common::db()) {
        &[]
    } else {
        &["--standalone"]
    };
    let first = PrivateServer::start(args);
    let second = PrivateServer::start(args);
    let one = first.client().database("app");
    let two = second.client().database("app");
    // A blocking waiter on the first deployment: its stream is live.
    let ttl = Duration::from_secs(30);
    let held = locker(&one, "seat", ttl);
    assert!(held
        .acquire(false, None, Duration::from_millis(10), false)
        .unwrap());
    let waiter = locker(&one, "seat", ttl);
    let waiting = std::thread::spawn(move || {
        waiter.acquire(
            true,
            Some(Duration::from_secs(10)),
            Duration::from_secs(5),
            false,
        )
    });
    std::thread::sleep(Duration::from_millis(1000));
    // Two electors on the second deployment's `app`.
    let ttl = Duration::from_secs(5);
    let retry = Duration::from_millis(200);
    let a = common::elector(&two, "seat", ttl, retry);
    a.start(false).unwrap();
    assert!(common::wait_until(Duration::from_secs(5), || a.is_master()));
    let b = common::elector(&two, "seat", ttl, retry);
    let rx = b.events();
    b.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // b polled, now waits
    let stopped = Instant::now();
    a.stop().unwrap();
    let became = common::became_master(&rx, ttl + Duration::from_secs(5));
    let took = became - stopped;
    assert!(
        took < Duration::from_secs(1),
        "b took over {took:?} after the stop (ttl {ttl:?}, retry {retry:?})"
    );
    b.stop().unwrap();
    assert!(!waiting.join().unwrap().unwrap(), "still held on the first");
}
