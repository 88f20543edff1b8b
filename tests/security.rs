//! A locked-down deployment: SCRAM-SHA-256 authentication, TLS with client
//! certificates, and a user whose role grants only the privileges the
//! README's "Security" section documents. The server, its certificates and
//! its users are made by `scripts/secure-server.sh`, which `scripts/test.sh`
//! runs these tests under (they are ignored in the plain passes, which have
//! no such server).
//!
//! The server checks one action per command (findAndModify and update:
//! `update`; find and aggregate, change streams included: `find`;
//! createIndexes: `createIndex`; killCursors: `killCursors`), and does not
//! confine a role to one collection, so the missing-privilege tests go by
//! action.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wait_until;
use mongodb::bson::Document;
use mongodb::error::ErrorKind;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};
use mongoelector::{Error, Event, LossReason, MongoElector, MongoLocker};

/// The commands the crate may send, and the privileges they need (the
/// README's role). Anything else it sends fails the test below.
const DOCUMENTED_COMMANDS: &[&str] = &[
    "findAndModify", // find, insert, update on the lock collection
    "aggregate",     // find (reads); find + changeStream (change streams)
    "getMore",       // the cursor's owner: nothing more
    "killCursors",   // the cursor's owner on MongoDB; killCursors here
    "update",        // insert, update on the status collection
    "find",          // find on the status collection
    "createIndexes", // createIndex on the status collection
    "hello",         // no privilege
    "buildInfo",     // no privilege (the first-use version check)
    "listIndexes",   // listIndexes on the lock collection (the TTL-index check)
    "endSessions",   // no privilege
];

struct Secure {
    host: String,
    tls: String,
    password: String,
}

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the server with authentication and TLS that \
             `scripts/secure-server.sh` starts; run them with `scripts/test.sh`, or \
             `scripts/secure-server.sh cargo test --test security -- --ignored`"
        ),
    }
}

fn secure() -> Secure {
    Secure {
        host: env("MONGOELECTOR_SECURE_HOST"),
        tls: env("MONGOELECTOR_SECURE_TLS"),
        password: env("MONGOELECTOR_SECURE_PASSWORD"),
    }
}

/// Who connects.
#[derive(Clone, Copy, Debug)]
enum As<'a> {
    /// This user, with the right password.
    User(&'a str),
    /// This user, with a wrong password.
    WrongPassword(&'a str),
    /// No credentials at all (TLS still on).
    Nobody,
    /// The restricted user, without TLS.
    NoTls,
}

/// Timeouts for a client that works, and short ones for a client that is
/// refused: a refusal must come back as an error, never a hang. (After a
/// failed authentication the driver marks the server unknown, so the next
/// operation waits out server selection before it fails.)
const OK_TIMEOUTS: &str = "serverSelectionTimeoutMS=5000&connectTimeoutMS=5000";
const FAST: &str = "serverSelectionTimeoutMS=1000&connectTimeoutMS=1000";
const FAST_SELECTION: Duration = Duration::from_millis(1000);

fn uri(who: As<'_>) -> String {
    let s = secure();
    let auth = "authSource=admin&authMechanism=SCRAM-SHA-256";
    match who {
        As::User(user) => format!(
            "mongodb://{user}:{}@{}/?{auth}&{}&{OK_TIMEOUTS}",
            s.password, s.host, s.tls
        ),
        As::WrongPassword(user) => format!(
            "mongodb://{user}:not-{}@{}/?{auth}&{}&{FAST}",
            s.password, s.host, s.tls
        ),
        As::Nobody => format!("mongodb://{}/?{}&{FAST}", s.host, s.tls),
        As::NoTls => format!(
            "mongodb://elector_app:{}@{}/?{auth}&{FAST}",
            s.password, s.host
        ),
    }
}

/// Each user's role grants on the database named after it.
fn db_name(who: As<'_>) -> &str {
    match who {
        As::User(user) | As::WrongPassword(user) => user,
        As::Nobody | As::NoTls => "elector_app",
    }
}

fn db_as(who: As<'_>) -> Database {
    Client::with_uri_str(uri(who))
        .expect("valid URI")
        .database(db_name(who))
}

const APP: As<'static> = As::User("elector_app");

/// A key of its own for each test (they share the role's database).
fn key(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// Every command a client starts, and every one that fails (name, code,
/// message).
#[derive(Clone, Default)]
struct Seen {
    started: Arc<Mutex<Vec<(String, Document)>>>,
    failed: Arc<Mutex<Vec<(String, i32, String)>>>,
}

fn monitored_db(who: As<'_>) -> (Database, Seen) {
    let seen = Seen::default();
    let sink = seen.clone();
    let mut options = ClientOptions::parse(uri(who)).run().expect("valid URI");
    options.command_event_handler =
        Some(EventHandler::callback(move |ev: CommandEvent| match ev {
            CommandEvent::Started(s) => {
                sink.started
                    .lock()
                    .unwrap()
                    .push((s.command_name.clone(), s.command.clone()));
            }
            CommandEvent::Failed(f) => {
                let (code, message) = match &*f.failure.kind {
                    ErrorKind::Command(c) => (c.code, c.message.clone()),
                    _ => (-1, f.failure.to_string()),
                };
                sink.failed
                    .lock()
                    .unwrap()
                    .push((f.command_name.clone(), code, message));
            }
            _ => {}
        }));
    let client = Client::with_options(options).expect("client");
    (client.database(db_name(who)), seen)
}

/// What the server refused, from the driver's error in `err`'s source
/// chain: the server's code and message, or -1 and the driver's message.
fn refusal(err: &Error) -> (i32, String) {
    assert!(
        matches!(err, Error::Database(_)),
        "expected Error::Database, got {err:?}"
    );
    let mut first = None;
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = src {
        if let Some(m) = e.downcast_ref::<mongodb::error::Error>() {
            if let ErrorKind::Command(c) = &*m.kind {
                return (c.code, c.message.clone());
            }
            first.get_or_insert_with(|| m.to_string());
        }
        src = e.source();
    }
    (
        -1,
        first.unwrap_or_else(|| panic!("no driver error in the source chain of {err:?}")),
    )
}

/// Asserts `err` says that authentication failed: the driver's
/// authentication error carrying the server's code 18 (AuthenticationFailed,
/// which the driver keeps in its message, not in `source()`) when it is the
/// answer to this operation's own attempt, or a server selection timeout
/// naming the failure when an earlier attempt on the same client failed
/// (the driver then marks the server unknown).
fn assert_authentication_failed(err: &Error) {
    let Error::Database(driver) = err else {
        panic!("expected Error::Database, got {err:?}")
    };
    let (code, message) = refusal(err);
    match &*driver.driver_error().kind {
        ErrorKind::Authentication { message: m, .. } => assert!(
            m.to_lowercase().contains("authentication failed")
                && message.contains("AuthenticationFailed"),
            "{err:?}"
        ),
        ErrorKind::ServerSelection { message, .. } => assert!(
            message.to_lowercase().contains("authentication failed"),
            "{message}"
        ),
        _ => panic!("not an authentication failure: {err:?} ({code}, {message})"),
    }
}

/// Asserts `err` is the server's code 13 naming `action`.
fn assert_not_authorized(err: &Error, action: &str) {
    let (code, message) = refusal(err);
    assert_eq!(code, 13, "{err}");
    assert!(
        message.contains(&format!("(action: {action})")),
        "the refusal names {action}: {message}"
    );
    // The message leads with the server's words and code name, not the
    // driver's whole error (which stays the source).
    let text = err.to_string();
    assert!(
        text.contains(&format!("(action: {action})")) && text.ends_with("(Unauthorized, code 13)"),
        "{text}"
    );
    assert!(!text.contains("labels:"), "{text}");
}

fn locker(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn elector(db: &Database, key: &str, retry: Duration) -> MongoElector {
    MongoElector::builder(key, db)
        .ttl(Duration::from_secs(3))
        .retry_interval(retry)
        .app_version("9.9.9")
        .build()
        .unwrap()
}

fn wait_became(rx: &crossbeam_channel::Receiver<Event>, limit: Duration) -> Option<i64> {
    let end = Instant::now() + limit;
    while let Ok(e) = rx.recv_deadline(end) {
        if let Event::BecameMaster { fence, .. } = e {
            return Some(fence);
        }
    }
    None
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn the_lock_works_for_the_restricted_user_over_tls() {
    let db = db_as(APP);
    let k = key("lock");
    let a = locker(&db, &k);
    let b = locker(&db, &k);
    // acquire, touch, the reads, release
    assert!(a
        .acquire(false, None, Duration::from_millis(100), false)
        .unwrap());
    assert!(a.touch().unwrap().is_some());
    assert!(a.locked().unwrap() && a.owned().unwrap() && !b.owned().unwrap());
    let holder = b.get_current().unwrap().expect("a holds it");
    assert_eq!(holder.uuid, a.uuid());
    assert!(!b
        .acquire(false, None, Duration::from_millis(100), false)
        .unwrap());
    assert!(a.release(false).unwrap());
    assert!(!a.locked().unwrap());
    // the guard
    let guard = b.try_lock().unwrap().expect("free");
    assert!(guard.is_valid());
    assert!(guard.touch().unwrap().is_some());
    let fence = guard.fence();
    // a forced acquire takes it from the guard's holder, with a higher fence
    assert!(a
        .acquire(false, None, Duration::from_millis(100), true)
        .unwrap());
    let now = a.get_current().unwrap().unwrap();
    assert!(now.uuid == a.uuid() && now.fence > fence);
    assert!(guard.touch().unwrap().is_none(), "the guard lost it");
    guard.release().unwrap();
    assert!(a.release(true).unwrap());
    let guard = b.lock().unwrap();
    drop(guard);
    assert!(!b.locked().unwrap());
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn the_elector_works_for_the_restricted_user_over_tls() {
    let db = db_as(APP);
    let k = key("elect");
    let retry = Duration::from_millis(200);
    let a = elector(&db, &k, retry);
    let a_rx = a.events();
    a.start(false).unwrap();
    let a_fence = wait_became(&a_rx, Duration::from_secs(5)).expect("a elected");
    let b = elector(&db, &k, retry);
    let b_rx = b.events();
    b.start(false).unwrap();
    // status reports (and the TTL index), the cluster view
    a.report_status().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        b.cluster_detail().unwrap().members.len() == 2
    }));
    let cluster = b.cluster_detail().unwrap();
    assert_eq!(cluster.master.as_ref().unwrap().uuid, a.uuid());
    let me = cluster.master_status().unwrap();
    assert_eq!(me.app_version.as_deref(), Some("9.9.9"));
    assert!(a.is_master() && !b.is_master());
    // handover on stop
    let t = Instant::now();
    a.stop().unwrap();
    let b_fence = wait_became(&b_rx, Duration::from_secs(3)).expect("b took over");
    assert!(
        t.elapsed() <= retry + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    assert!(b_fence > a_fence);
    assert!(a_rx.try_iter().any(|e| matches!(
        e,
        Event::LostMaster {
            reason: LossReason::Stopped,
            ..
        }
    )));
    let cluster = b.cluster_detail().unwrap();
    assert_eq!(cluster.master.as_ref().unwrap().uuid, b.uuid());
    assert!(!cluster.members.iter().any(|m| m.uuid == a.uuid()));
    b.stop().unwrap();
    // No poll failed on the way.
    assert!(!b_rx
        .try_iter()
        .any(|e| matches!(e, Event::PollFailed { .. })));
}

/// How long a blocked acquire with a long `step` takes to notice a release
/// (a key of its own; ttl 30 s), on `db`. The waiter then releases the
/// lock: nothing waits any more.
/// Racing lockers: a fair waiter behind a holder of its own process is
/// woken by the release itself, with no change stream, and these tests
/// are about the stream and what it is allowed.
fn racing(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .fair(false)
        .ttl(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn release_to_acquire(db: &Database, step: Duration) -> Duration {
    let k = key("wake");
    let (took, waiter) = common::release_to_acquire(&racing(db, &k), racing(db, &k), step);
    assert!(waiter.release(false).unwrap());
    took
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn a_release_wakes_a_blocked_waiter_through_the_change_stream() {
    let (db, seen) = monitored_db(APP);
    let step = Duration::from_secs(5);
    let took = release_to_acquire(&db, step);
    assert!(
        took < Duration::from_secs(1),
        "woke {took:?} after the release (step {step:?}): no change stream?"
    );
    assert_eq!(refusals(&seen), vec![], "nothing refused");
}

fn is_change_stream(cmd: &Document) -> bool {
    cmd.get_array("pipeline")
        .ok()
        .and_then(|p| p.first())
        .and_then(|s| s.as_document())
        .is_some_and(|s| s.contains_key("$changeStream"))
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn the_crate_sends_only_the_documented_commands_and_none_is_refused() {
    let (db, seen) = monitored_db(As::User("elector_commands"));
    // Every operation of the lock and the elector, with a change stream.
    let k = key("commands");
    let a = locker(&db, &k);
    // Racing, so that its wait opens the stream (a fair waiter behind a
    // holder of its own process needs none); a fair one that gives up
    // leaves the queue below.
    let b = racing(&db, &k);
    assert!(a
        .acquire(false, None, Duration::from_millis(100), false)
        .unwrap());
    assert!(locker(&db, &k)
        .try_lock_for(Duration::from_millis(300))
        .unwrap()
        .is_none());
    a.touch().unwrap();
    a.locked().unwrap();
    a.owned().unwrap();
    a.get_current().unwrap();
    a.status().unwrap();
    let bb = Arc::new(b);
    let waiter = bb.clone();
    let t = std::thread::spawn(move || waiter.try_lock_for(Duration::from_secs(10)).unwrap());
    std::thread::sleep(Duration::from_millis(1000));
    a.release(false).unwrap();
    let guard = t.join().unwrap().expect("acquired");
    guard.touch().unwrap();
    assert!(a
        .acquire(false, None, Duration::from_millis(100), true)
        .unwrap());
    drop(guard);
    a.release(true).unwrap();
    let e = elector(&db, &key("commands"), Duration::from_millis(100));
    e.start(false).unwrap();
    e.poll().unwrap();
    e.report_status().unwrap();
    e.cluster_detail().unwrap();
    e.master_exists().unwrap();
    e.stop().unwrap();
    drop(bb);
    // The change stream's thread closes its cursor within about a second.
    std::thread::sleep(Duration::from_millis(2500));

    let names: BTreeSet<String> = seen
        .started
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let undocumented: Vec<&String> = names
        .iter()
        .filter(|n| !DOCUMENTED_COMMANDS.contains(&n.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "commands the README's role does not cover: {undocumented:?}"
    );
    for needed in [
        "findAndModify",
        "aggregate",
        "update",
        "find",
        "createIndexes",
    ] {
        assert!(names.contains(needed), "{needed} was not sent: {names:?}");
    }
    let started = seen.started.lock().unwrap().clone();
    assert!(
        started
            .iter()
            .any(|(name, cmd)| name == "aggregate" && is_change_stream(cmd)),
        "a change stream was opened"
    );
    eprintln!("commands sent: {names:?}");
    assert_eq!(refusals(&seen), vec![], "nothing refused");
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn without_credentials_every_call_is_refused_with_code_13() {
    let db = db_as(As::Nobody);
    let l = MongoLocker::builder(&key("anon"), &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    let t = Instant::now();
    for err in [
        l.try_lock().map(|_| ()).unwrap_err(),
        l.locked().map(|_| ()).unwrap_err(),
        l.release(true).map(|_| ()).unwrap_err(),
    ] {
        let (code, message) = refusal(&err);
        assert_eq!(code, 13, "{err}");
        assert!(message.contains("requires authentication"), "{message}");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn a_wrong_password_is_refused_as_an_authentication_failure() {
    let db = db_as(As::WrongPassword("elector_app"));
    let l = locker(&db, &key("wrongpw"));
    let t = Instant::now();
    let err = l.try_lock().map(|_| ()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let Error::Database(driver) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            *driver.driver_error().kind,
            ErrorKind::Authentication { .. }
        ),
        "{driver:?}"
    );
    assert_authentication_failed(&err);
    // The next call on the same client fails too, within server selection.
    let t = Instant::now();
    let err = l.locked().unwrap_err();
    assert!(
        t.elapsed() < FAST_SELECTION + Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    assert_authentication_failed(&err);
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn a_blocking_acquire_with_a_wrong_password_fails_at_once() {
    // Blocking acquires retry transient errors until their timeout; an
    // authentication failure is not one.
    let db = db_as(As::WrongPassword("elector_app"));
    let l = locker(&db, &key("wrongpw-blocking"));
    let t = Instant::now();
    let err = l
        .try_lock_for(Duration::from_secs(30))
        .map(|_| ())
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_authentication_failed(&err);
    let Error::Database(e) = &err else {
        panic!("{err:?}")
    };
    assert!(!e.is_transient(), "{e}");
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn without_tls_the_client_fails_fast_instead_of_hanging() {
    let db = db_as(As::NoTls);
    let l = MongoLocker::builder(&key("notls"), &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    let t = Instant::now();
    let err = l.try_lock().map(|_| ()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let Error::Database(driver) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            *driver.driver_error().kind,
            ErrorKind::ServerSelection { .. }
        ),
        "{driver:?}"
    );
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn each_documented_privilege_the_server_checks_is_needed() {
    // update: every lock write and every elector poll.
    let db = db_as(As::User("lacks_update"));
    let l = locker(&db, &key("noupdate"));
    assert_not_authorized(&l.try_lock().map(|_| ()).unwrap_err(), "update");
    assert_not_authorized(&l.release(true).map(|_| ()).unwrap_err(), "update");
    let e = elector(&db, &key("noupdate"), Duration::from_millis(100));
    assert_not_authorized(&e.poll().unwrap_err(), "update");

    // find: the reads and the cluster view (and the change stream, below).
    let db = db_as(As::User("lacks_find"));
    let l = locker(&db, &key("nofind"));
    assert!(l.try_lock().unwrap().is_some(), "writes need no find here");
    assert_not_authorized(&l.locked().unwrap_err(), "find");
    assert_not_authorized(&l.get_current().map(|_| ()).unwrap_err(), "find");
    let e = elector(&db, &key("nofind"), Duration::from_millis(100));
    assert_not_authorized(&e.cluster_detail().map(|_| ()).unwrap_err(), "find");

    // createIndex: the status collection's TTL index.
    let db = db_as(As::User("lacks_createIndex"));
    let e = elector(&db, &key("noindex"), Duration::from_millis(100));
    assert_not_authorized(&e.report_status().unwrap_err(), "createIndex");
    e.poll().unwrap(); // polls and their reports need no index
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn without_find_the_change_stream_is_refused_and_waiters_poll() {
    let (db, seen) = monitored_db(As::User("lacks_find"));
    let step = Duration::from_secs(3);
    let took = release_to_acquire(&db, step);
    // First attempt ~1.5 s before the release, the next a step after it.
    assert!(
        took >= Duration::from_millis(700) && took <= step + Duration::from_secs(1),
        "{took:?}: the waiter should have polled"
    );
    let failed = seen.failed.lock().unwrap().clone();
    assert!(
        failed.iter().any(|(name, code, msg)| name == "aggregate"
            && *code == 13
            && msg.contains("(action: find)")),
        "the change stream was refused for lack of find: {failed:?}"
    );
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn without_kill_cursors_closing_the_change_stream_is_refused() {
    let (db, seen) = monitored_db(As::User("lacks_killCursors"));
    let took = release_to_acquire(&db, Duration::from_secs(5));
    assert!(took < Duration::from_secs(1), "the stream still works");
    // Nothing waits any more: once its getMore returns, the stream's thread
    // closes its cursor. This server ends a waiting getMore at any write, so
    // a write now and then (a lock taken and released) makes that soon.
    let nudge = locker(&db, &key("nudge"));
    let refused = || {
        seen.failed.lock().unwrap().iter().any(|(name, code, msg)| {
            name == "killCursors" && *code == 13 && msg.contains("(action: killCursors)")
        })
    };
    let end = Instant::now() + Duration::from_secs(5);
    while !refused() && Instant::now() < end {
        assert!(nudge
            .acquire(false, None, Duration::from_millis(100), false)
            .unwrap());
        assert!(nudge.release(false).unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        refused(),
        "closing the cursor was refused: {:?}",
        seen.failed.lock().unwrap()
    );
}

/// The commands the server refused (`scripts/secure-server.sh` creates the
/// crate's collections beforehand, so even the first-use `listIndexes` has
/// a collection to read).
fn refusals(seen: &Seen) -> Vec<(String, i32, String)> {
    seen.failed.lock().unwrap().clone()
}

/// An elector that cannot poll sends `PollFailed` carrying the refusal,
/// each at least its retry interval after the one before (never a spin),
/// keeps running, never becomes master, and stops when asked.
fn assert_fails_at_its_interval(who: As<'_>, check: impl Fn(&Error)) {
    let db = db_as(who);
    let retry = Duration::from_millis(200);
    let e = MongoElector::builder(&key("failing"), &db)
        .ttl(Duration::from_secs(2))
        .retry_interval(retry)
        .build()
        .unwrap();
    let rx = e.events();
    e.start(false).unwrap();
    let window = Duration::from_secs(4);
    let end = Instant::now() + window;
    let mut failed = Vec::new();
    while let Ok(event) = rx.recv_deadline(end) {
        match event {
            Event::PollFailed { error } => {
                check(&error);
                failed.push(Instant::now());
            }
            Event::BecameMaster { .. } => panic!("{who:?} became master"),
            _ => {}
        }
    }
    assert!(e.running() && !e.is_master());
    let t = Instant::now();
    e.stop().unwrap();
    // stop returns within `STOP_WAIT`; the thread finishes its poll in
    // flight and its last status report in the background, each at most
    // one server selection when the server refuses.
    let stop_took = t.elapsed();
    assert!(
        stop_took < mongoelector::limits::STOP_WAIT + Duration::from_millis(500),
        "{who:?}: stop took {stop_took:?}"
    );
    assert!(!e.is_master());
    assert!(
        wait_until(2 * FAST_SELECTION + Duration::from_secs(1), || !e.running()),
        "{who:?}: the elector thread did not end"
    );
    // One poll may come early: the look a follower takes when its change
    // stream opens (changes made before were not seen). Every other one
    // waits out the retry interval.
    let mut gaps: Vec<Duration> = failed.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let early = gaps.iter().filter(|g| **g < retry * 9 / 10).count();
    // At most window / retry (20), plus the early one, when each fails at
    // once; at least a few even when each waits out server selection.
    assert!(
        (3..=21).contains(&failed.len()) && early <= 1,
        "{who:?}: {} PollFailed in {window:?}, retry interval {retry:?}, gaps {gaps:?}",
        failed.len()
    );
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn an_elector_that_is_refused_reports_poll_failed_at_its_interval() {
    assert_fails_at_its_interval(As::User("lacks_update"), |e| {
        assert_not_authorized(e, "update")
    });
    assert_fails_at_its_interval(As::Nobody, |e| {
        let (code, message) = refusal(e);
        assert_eq!(code, 13, "{e}");
        assert!(message.contains("requires authentication"), "{message}");
    });
    assert_fails_at_its_interval(
        As::WrongPassword("elector_app"),
        assert_authentication_failed,
    );
}

#[test]
#[ignore = "needs the auth+TLS server: scripts/test.sh runs them"]
fn the_server_refuses_what_the_role_does_not_grant() {
    // The check the tests above rely on: the restricted user really is
    // restricted (a role with every action would pass them all).
    let db = db_as(APP);
    let err = db
        .collection::<Document>("mongolocker")
        .drop()
        .run()
        .unwrap_err();
    let ErrorKind::Command(c) = &*err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(c.code, 13);
    assert!(c.message.contains("(action: dropCollection)"), "{c:?}");
}
