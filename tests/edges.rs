//! The guarantees at their edges: fences across deletion of the lock
//! document, a TTL index on the lock collection, `start`/`stop`/drop with
//! an unreachable or frozen server, a stop-time release scoped to its run,
//! and a lease that arrives too late.

mod common;

use mongoelector::testing::FaultProxy;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{db, PrivateServer};
use mongodb::bson::{doc, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::{MongoElector, MongoLocker};

const STEP: Duration = Duration::from_millis(50);

fn locker(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(Duration::from_secs(30))
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn locks(db: &Database) -> Collection<Document> {
    db.collection("mongolocker")
}

fn fence_now(l: &MongoLocker) -> i64 {
    l.get_current().unwrap().expect("held").fence
}

#[test]
fn fences_grow_across_deletion_of_the_document_while_free_and_while_held() {
    let db = db();
    let a = locker(&db, "k");
    let b = locker(&db, "k");
    let f1 = a.lock().unwrap().fence(); // released on drop
                                        // Deleted while free (a TTL sweep, an operator, the Python package's release).
    locks(&db).delete_one(doc! {"_id": "k"}).run().unwrap();
    let g = b.lock().unwrap();
    let f2 = g.fence();
    assert!(f2 > f1, "{f2} after {f1}");
    // Deleted while held: the next holder still gets a greater fence.
    locks(&db).delete_one(doc! {"_id": "k"}).run().unwrap();
    assert!(a.acquire(false, None, STEP, false).unwrap());
    let f3 = fence_now(&a);
    assert!(f3 > f2, "{f3} after {f2}");
    drop(g);
    // The whole collection dropped: still greater.
    a.release(false).unwrap();
    locks(&db).drop().run().unwrap();
    assert!(b.acquire(false, None, STEP, false).unwrap());
    let f4 = fence_now(&b);
    assert!(f4 > f3, "{f4} after {f3}");
    // Back-to-back acquisitions on a live document still count up.
    b.release(false).unwrap();
    let mut last = f4;
    for _ in 0..20 {
        let f = a.lock().unwrap().fence();
        assert!(f > last);
        last = f;
    }
}

/// Collects the crate's warnings, for the tests that expect one.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) && r.target().starts_with("mongoelector") {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn warnings() -> &'static Warnings {
    static W: OnceLock<&'static Warnings> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Warnings = Box::leak(Box::new(Warnings(Mutex::new(Vec::new()))));
        log::set_logger(w).expect("one logger per test binary");
        log::set_max_level(log::LevelFilter::Warn);
        w
    })
}

fn warned_about(text: &str) -> usize {
    warnings()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(text))
        .count()
}

/// A TTL index on `ts_expire` (as the Python package creates), named `name`.
fn ttl_index(name: &str) -> mongodb::IndexModel {
    mongodb::IndexModel::builder()
        .keys(doc! {"ts_expire": 1})
        .options(
            mongodb::options::IndexOptions::builder()
                .expire_after(Duration::ZERO)
                .name(name.to_owned())
                .build(),
        )
        .build()
}

#[test]
fn a_ttl_index_on_the_lock_collection_is_reported_once_saying_what_it_costs() {
    warnings();
    let db = db();
    let name = format!("ttl_{}", uuid::Uuid::new_v4().simple());
    let index = ttl_index(&name);
    locks(&db).create_index(index).run().unwrap();
    let a = locker(&db, "k");
    assert_eq!(warned_about(&name), 0);
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert_eq!(warned_about(&name), 1, "reported on first use");
    // What is lost, and the two ways out.
    let text = warnings()
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|w| w.contains(&name))
        .cloned()
        .unwrap();
    for part in [
        "defeats the takeover grace",
        "deletes a lock document once its `ts_expire` has passed on the primary's clock",
        "without waiting out the grace",
        "drop the index",
        "use another collection",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    a.release(false).unwrap();
    assert!(a.acquire(false, None, STEP, false).unwrap());
    assert!(a.get_current().unwrap().is_some());
    assert_eq!(warned_about(&name), 1, "checked once, then cached");
    // An elector on the same collection shares the check: no new report.
    let e = MongoElector::builder("e", &db)
        .status_reports(false)
        .build()
        .unwrap();
    e.poll().unwrap();
    assert_eq!(warned_about(&name), 1, "checked once per collection");
    // A collection without one: nothing.
    let clean = common::fresh_db(&common::client());
    let c = locker(&clean, "k");
    assert!(c.acquire(false, None, STEP, false).unwrap());
    assert!(!warnings()
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|w| w.contains(clean.name())));
}

/// With a TTL index on `ts_expire` and the server's TTL monitor made fast
/// (every second; 60 s by default, as MongoDB's), an abandoned lock is
/// taken over as soon as the monitor deletes it, without the takeover
/// grace; without the index, only after the grace.
#[test]
fn with_a_ttl_index_an_abandoned_lock_goes_without_the_takeover_grace() {
    let standalone = !common::has_change_streams(&db());
    let server = PrivateServer::start_with_ttl_monitor(1.0, standalone);
    let db = server.client().database("ttl");
    let ttl = Duration::from_secs(1);
    let grace = Duration::from_secs(4);
    let build = |collection: &str| {
        MongoLocker::builder("k", &db)
            .collection(collection)
            .ttl(ttl)
            .takeover_grace(grace)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    db.collection::<Document>("indexed")
        .create_index(ttl_index("ts_expire_1"))
        .run()
        .unwrap();
    for (collection, indexed) in [("indexed", true), ("plain", false)] {
        let holder = build(collection);
        assert!(holder.acquire(false, None, STEP, false).unwrap());
        let expires = holder.get_current().unwrap().unwrap().expires;
        drop(holder); // abandoned: never renewed, never released
        let taker = build(collection);
        assert!(taker
            .acquire(true, Some(Duration::from_secs(15)), STEP, false)
            .unwrap());
        let late = (taker.get_current().unwrap().unwrap().created - expires)
            .to_std()
            .unwrap_or_default();
        if indexed {
            // Within the monitor's period (1 s here) of the expiry.
            assert!(
                late < Duration::from_millis(2500),
                "{collection}: taken {late:?} after the expiry, grace {grace:?}"
            );
        } else {
            assert!(
                late >= grace && late < grace + Duration::from_secs(1),
                "{collection}: taken {late:?} after the expiry, grace {grace:?}"
            );
        }
    }
}

#[test]
fn start_and_stop_return_at_once_with_nothing_listening() {
    // Driver defaults: server selection waits 30 s.
    let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/").unwrap();
    let e = MongoElector::new("nobody-home", &client.database("app")).unwrap();
    let t = Instant::now();
    e.start(false).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "start {:?}",
        t.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    e.stop().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop {:?}",
        t.elapsed()
    );
    assert!(!e.is_master());
    let t = Instant::now();
    drop(e);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "drop {:?}",
        t.elapsed()
    );
}

#[test]
fn stop_and_drop_return_at_once_with_the_server_frozen() {
    let server = PrivateServer::start(&[]);
    let db = server.client().database("frozen");
    let build = || {
        MongoElector::builder("frozen", &db)
            .ttl(Duration::from_secs(2))
            .retry_interval(Duration::from_millis(200))
            .build()
            .unwrap()
    };
    let master = build();
    let follower = build();
    master.start(false).unwrap();
    assert!(common::wait_until(Duration::from_secs(5), || master.is_master()));
    follower.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    server.pause(); // SIGSTOP: every request hangs
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    master.stop().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop {:?}",
        t.elapsed()
    );
    assert!(!master.is_master(), "stepped down at once");
    let t = Instant::now();
    drop(follower);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "drop {:?}",
        t.elapsed()
    );
    server.resume();
}

#[test]
fn a_stop_time_release_frees_only_what_its_run_acquired() {
    let db = db();
    let e = MongoElector::builder("runs", &db)
        .status_reports(false)
        .build()
        .unwrap();
    e.poll().unwrap();
    assert!(e.is_master());
    e.release().unwrap();
    // The lock names this node again, acquired by another run of it (as a
    // later start would): a stop of this run must not free it.
    let later = locker(&db, "runs");
    assert!(later.acquire(false, None, STEP, false).unwrap());
    locks(&db)
        .update_one(
            doc! {"_id": "runs"},
            doc! {"$set": {"uuid": e.uuid(), "run": "a-later-run"}},
        )
        .run()
        .unwrap();
    e.stop().unwrap();
    let held = later.get_current().unwrap().expect("still held");
    assert_eq!(held.uuid, e.uuid());
}

#[test]
fn an_acquisition_answered_after_its_deadline_is_not_granted() {
    let server = PrivateServer::start(&[]);
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).unwrap();
    let uri = format!(
        "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=5000",
        proxy.port()
    );
    let db = mongodb::sync::Client::with_uri_str(uri)
        .unwrap()
        .database("late");
    let l = MongoLocker::builder("late", &db)
        .ttl(Duration::from_millis(200))
        .timeparanoid(false)
        .build()
        .unwrap();
    // Warm up the connection and the first-use checks.
    assert!(l.try_lock().unwrap().is_some());
    proxy.delay(Duration::from_millis(150)); // each way: 300 ms a round trip
    let got = l.try_lock().unwrap();
    assert!(
        got.is_none(),
        "a lease whose deadline passed before the answer came was granted: {got:?}"
    );
    proxy.pass();
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Edits a `buildInfo` reply in flight so the server says it is 4.0.x:
/// `versionArray` [8, 2, ..] becomes [4, 0, ..] and "8.2.x" "4.0.x" (same
/// lengths, so the BSON stays valid).
fn say_four_oh(buf: &mut [u8]) {
    if let Some(i) = find(buf, b"\x04versionArray\x00") {
        // The array's length, then elements "0" and "1": type, name, int32.
        let p = i + b"\x04versionArray\x00".len() + 4;
        if buf.len() >= p + 14 && buf[p] == 0x10 && buf[p + 7] == 0x10 {
            buf[p + 3..p + 7].copy_from_slice(&4i32.to_le_bytes());
            buf[p + 10..p + 14].copy_from_slice(&0i32.to_le_bytes());
        }
    }
    if let Some(i) = find(buf, b"\x02version\x00") {
        let p = i + b"\x02version\x00".len() + 4;
        if buf.len() > p + 2 && buf[p + 1] == b'.' {
            buf[p] = b'4';
            buf[p + 2] = b'0';
        }
    }
}

#[test]
fn a_server_older_than_4_2_is_refused_naming_its_version() {
    let server = PrivateServer::start(&[]);
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).unwrap();
    proxy.rewrite_replies(say_four_oh);
    let uri = format!(
        "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=5000",
        proxy.port()
    );
    let db = mongodb::sync::Client::with_uri_str(uri)
        .unwrap()
        .database("old");
    let l = locker(&db, "k");
    match l.try_lock() {
        Err(mongoelector::Error::UnsupportedServer { version, minimum }) => {
            assert!(version.starts_with("4.0"), "{version}");
            assert_eq!(minimum, "4.2");
        }
        other => panic!("expected UnsupportedServer, got {other:?}"),
    }
    // Nothing was written: the check comes before the first lock command.
    let direct = server.client().database("old");
    assert_eq!(locks(&direct).count_documents(doc! {}).run().unwrap(), 0);
    // The elector reports it as a failed poll.
    let e = MongoElector::builder("k", &db)
        .status_reports(false)
        .build()
        .unwrap();
    assert!(matches!(
        e.poll(),
        Err(mongoelector::Error::UnsupportedServer { .. })
    ));
    // Through the same proxy without the edit, the same server is fine.
    proxy.rewrite_replies(|_| {});
    let fresh = locker(&db, "k");
    assert!(fresh.try_lock().unwrap().is_some());
}

/// Whether `cmd` opens a change stream.
fn opens_stream(name: &str, cmd: &Document) -> bool {
    name == "aggregate"
        && cmd
            .get_array("pipeline")
            .ok()
            .and_then(|p| p.first())
            .and_then(|s| s.as_document())
            .is_some_and(|s| s.contains_key("$changeStream"))
}

#[test]
fn a_stream_that_keeps_failing_reopens_about_once_a_second() {
    // The server fails every getMore with an error the driver does not
    // resume from itself: the stream's own reopen path, again and again.
    let server = PrivateServer::start(&["--enable-test-commands"]);
    let (client, commands) = common::monitored_client_at(&server.uri());
    let db = client.database("reopen");
    let holder = locker(&db, "held");
    assert!(holder.acquire(false, None, STEP, false).unwrap());
    // A racing waiter keeps the process's stream open throughout (a fair
    // one behind a holder of its own process needs none: the holder's
    // release wakes it).
    let waiter = MongoLocker::builder("held", &db)
        .fair(false)
        .ttl(Duration::from_secs(30))
        .timeparanoid(false)
        .build()
        .unwrap();
    let w = std::thread::spawn(move || {
        waiter
            .acquire(
                true,
                Some(Duration::from_secs(5)),
                Duration::from_secs(2),
                false,
            )
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    server
        .client()
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["getMore"], "errorCode": 2 },
        })
        .run()
        .unwrap();
    // A write ends the getMore that is waiting (this server answers it at
    // every write); the ones after it fail.
    server
        .client()
        .database("reopen")
        .collection::<Document>("poke")
        .insert_one(doc! {})
        .run()
        .unwrap();
    commands.take();
    std::thread::sleep(Duration::from_secs(3));
    let opens = commands
        .take()
        .iter()
        .filter(|(name, cmd)| opens_stream(name, cmd))
        .count();
    server
        .client()
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .run()
        .unwrap();
    let _ = w.join();
    eprintln!("{opens} change stream opens in 3 s of failing getMores");
    // About one a second, jittered to at least 750 ms apart: not a hot loop.
    assert!((1..=5).contains(&opens), "{opens} stream opens in 3 s");
}

#[test]
fn renewals_are_due_a_third_of_the_ttl_after_the_last_one_was_sent() {
    // 150 ms each way: a poll is a slow round trip, and the first one
    // also writes a status report. Counted from the end of each poll,
    // renewals would come a period plus a round trip or two apart.
    let server = PrivateServer::start(&[]);
    let proxy = FaultProxy::start(([127, 0, 0, 1], server.port).into()).unwrap();
    let uri = format!(
        "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=5000",
        proxy.port()
    );
    let (client, commands) = common::monitored_client_at(&uri);
    let db = client.database("cadence");
    let e = MongoElector::builder("cadence", &db)
        .ttl(Duration::from_secs(3))
        .build()
        .unwrap();
    e.master_exists().unwrap(); // first use, before the latency
    proxy.delay(Duration::from_millis(150));
    e.start(false).unwrap();
    assert!(common::wait_until(Duration::from_secs(5), || e.is_master()));
    commands.take();
    std::thread::sleep(Duration::from_millis(5500));
    let renewals: Vec<Instant> = commands
        .take_timed()
        .into_iter()
        .filter(|(name, _, _)| name == "findAndModify")
        .map(|(_, _, at)| at)
        .collect();
    e.stop().unwrap();
    let gaps: Vec<Duration> = renewals.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 3, "{gaps:?}");
    // One period (1 s) from send to send, give or take the scheduling.
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(900) && *gap <= Duration::from_millis(1150),
            "renewals {gaps:?} apart"
        );
    }
}
