//! A database nobody answers on: every public operation fails with an
//! error that leads with the operation and the key, says the database is
//! unreachable, and keeps the driver's error as its source. No server.

use std::error::Error as _;
use std::time::Duration;

use mongoelector::{Error, Event, MongoElector, MongoLocker};

/// Port 1 on loopback: connections are refused at once; the driver gives up
/// after its server selection timeout.
const URI: &str = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300";

fn db() -> mongodb::sync::Database {
    mongodb::sync::Client::with_uri_str(URI)
        .expect("a valid URI")
        .database("unreachable")
}

/// Checks one error: message prefix, no topology dump, classification,
/// accessors, and the driver's error as `source()`.
fn check(result: Result<impl std::fmt::Debug, Error>, operation: &str, key: &str) {
    let err = result.expect_err("an unreachable database cannot answer");
    let message = err.to_string();
    eprintln!("{message}");
    let prefix = format!("{operation} {key:?}: database unreachable (");
    assert!(message.starts_with(&prefix), "{message}");
    assert!(!message.contains("Topology"), "topology dump in: {message}");
    assert!(
        message.contains("127.0.0.1:1"),
        "no server named: {message}"
    );
    let Error::Database(e) = &err else {
        panic!("not a database error: {err:?}")
    };
    assert!(e.is_unreachable(), "{e:?}");
    assert_eq!((e.operation(), e.key()), (operation, key));
    let source = err.source().expect("the driver's error as source");
    let driver = source
        .downcast_ref::<mongodb::error::Error>()
        .expect("source is the driver's error");
    assert!(
        matches!(
            *driver.kind,
            mongodb::error::ErrorKind::ServerSelection { .. }
        ),
        "{driver:?}"
    );
}

#[test]
fn locker_operations_name_themselves_and_the_key() {
    let locker = MongoLocker::builder("nightly-report", &db())
        .timeparanoid(false)
        .build()
        .unwrap();
    let step = Duration::from_millis(100);
    check(
        locker.acquire(false, None, step, false),
        "acquire",
        "nightly-report",
    );
    check(locker.try_lock(), "try_lock", "nightly-report");
    check(locker.release(true), "release", "nightly-report");
    check(locker.locked(), "locked", "nightly-report");
    check(locker.owned(), "owned", "nightly-report");
    check(locker.get_current(), "get_current", "nightly-report");
    check(locker.status(), "status", "nightly-report");
}

#[test]
fn the_clock_check_is_named_after_the_acquire_that_made_it() {
    // timeparanoid on: the first acquire checks the clock first.
    let locker = MongoLocker::new("paranoid", &db()).unwrap();
    check(
        locker.acquire(false, None, Duration::from_millis(100), false),
        "acquire",
        "paranoid",
    );
}

#[test]
fn elector_operations_and_poll_failed_events_name_themselves_and_the_key() {
    let elector = MongoElector::builder("scheduler", &db())
        .timeparanoid(false)
        .build()
        .unwrap();
    let events = elector.events();
    check(elector.poll(), "poll", "scheduler");
    check(elector.master_exists(), "master_exists", "scheduler");
    check(elector.cluster_detail(), "cluster_detail", "scheduler");
    check(elector.report_status(), "report_status", "scheduler");
    let failed = events
        .try_iter()
        .find_map(|event| match event {
            Event::PollFailed { error } => Some(error),
            _ => None,
        })
        .expect("the failed poll was announced");
    check(Err::<(), _>(failed), "poll", "scheduler");
}
