//! Riding through a failover: blocking acquires retry what a restart or a
//! step-down makes fail, until their timeout, and return what retrying
//! cannot fix at once; an elector reports the outage as `PollFailed` and
//! nothing worse.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::on_disk_server;
use mongodb::bson::doc;
use mongoelector::{Error, Event, LossReason, MongoElector, MongoLocker};

const DB: &str = "failover";

fn locker(client: &mongodb::sync::Client, key: &str) -> MongoLocker {
    MongoLocker::builder(key, &client.database(DB))
        .ttl(Duration::from_secs(2))
        .step(Duration::from_millis(100))
        .build()
        .unwrap()
}

#[test]
fn blocked_lock_calls_ride_through_a_server_restart_and_each_gets_the_lock() {
    let mut server = on_disk_server(DB);
    let holder_client = server.client();
    let holder = locker(&holder_client, "k");
    let held = holder.lock().unwrap();
    // An elector on the same server, through the restart.
    let e = MongoElector::builder("e", &server.client().database(DB))
        .ttl(Duration::from_secs(2))
        .retry_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let events = e.events();
    e.start(false).unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        let tx = tx.clone();
        let client = server.client();
        std::thread::spawn(move || {
            let l = locker(&client, "k");
            let got = l.lock().map(|guard| {
                let fence = guard.fence();
                std::thread::sleep(Duration::from_millis(300));
                fence
            });
            let _ = tx.send((i, got, Instant::now()));
        });
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(held);
    // Restart while two of the three still wait. Down longer than the
    // clients' server selection timeout (1 s): a poll sent during the
    // outage fails instead of waiting it out.
    server.stop();
    std::thread::sleep(Duration::from_millis(1_500));
    server.restart();
    let mut got = Vec::new();
    for _ in 0..3 {
        let (i, result, at) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("every waiter returns");
        got.push((i, result.map_err(|e: Error| e.to_string()), at));
    }
    let failed: Vec<_> = got.iter().filter(|(_, r, _)| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "blocked lock() returned errors: {failed:?}"
    );
    let mut fences: Vec<i64> = got.iter().map(|(_, r, _)| *r.as_ref().unwrap()).collect();
    fences.sort();
    fences.dedup();
    assert_eq!(fences.len(), 3, "each waiter got the lock in turn: {got:?}");
    // The elector: polls failed during the outage, it stayed up, and it is
    // master again.
    assert!(e.running());
    let back = common::wait_until(Duration::from_secs(20), || e.is_master());
    assert!(back, "the elector is not master again after the restart");
    let mut failures = 0;
    for event in events.try_iter() {
        match event {
            Event::PollFailed { error } => {
                failures += 1;
                let Error::Database(d) = &error else {
                    panic!("poll failed with {error:?}")
                };
                assert!(d.is_transient(), "not transient: {d}");
            }
            Event::LostMaster { reason, .. } => assert_eq!(reason, LossReason::RenewalFailed),
            _ => {}
        }
    }
    assert!(failures > 0, "the outage was not reported as PollFailed");
    e.stop().unwrap();
}

#[test]
fn a_blocking_acquire_returns_what_retrying_cannot_fix_at_once() {
    let db = common::db();
    // A lock document of another shape: not a transient error.
    db.collection("mongolocker")
        .insert_one(doc! { "_id": "odd", "locked": "yes" })
        .run()
        .unwrap();
    let l = MongoLocker::new("odd", &db).unwrap();
    let t = Instant::now();
    let err = l
        .try_lock_for(Duration::from_secs(20))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::MalformedDocument { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_blocking_acquire_against_an_unreachable_server_keeps_to_its_timeout() {
    // Nothing listens on port 1; server selection gives up after 1 s.
    let client = mongodb::sync::Client::with_uri_str(
        "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=1000",
    )
    .unwrap();
    let l = locker(&client, "down");
    let t = Instant::now();
    let err = l
        .try_lock_for(Duration::from_secs(3))
        .map(|_| ())
        .unwrap_err();
    let took = t.elapsed();
    let Error::Database(d) = &err else {
        panic!("{err:?}")
    };
    assert!(d.is_unreachable() && d.is_transient(), "{d}");
    // Retried until the timeout (one more selection may be under way).
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
