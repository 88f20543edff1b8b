//! Unit tests of the engine, without a server: what `Debug`, `poll_wait`
//! and a simulated suspend do to a node's role and events.

use super::*;
use crate::foundation::lease::Lease;

/// An engine on a database nobody listens at (no test here does I/O).
fn offline_engine() -> Arc<Engine> {
    let client =
        mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100")
            .unwrap();
    let db = client.database("unused");
    Engine::new(Settings {
        key: "k".to_owned(),
        ttl: Duration::from_secs(1),
        retry: Duration::from_millis(200),
        app_version: None,
        metadata: None,
        report: false,
        timeparanoid: false,
        change_streams: false,
        locks: LockStore::new(&db, "locks", Duration::ZERO),
        status: StatusStore::new(&db, "status"),
    })
}

#[test]
fn debug_neither_steps_down_nor_sends_events() {
    let engine = offline_engine();
    let events = engine.subscribe();
    // A master whose local deadline has passed, not yet stepped down.
    let sent = Moment::now();
    std::thread::sleep(Duration::from_millis(1100));
    engine.state.lock().role =
        Role::Master(Lease::granted(7, Utc::now(), sent, Duration::from_secs(1)));
    let elector = super::super::handle::MongoElector::from_engine(engine.clone());
    let printed = format!("{elector:?}");
    assert!(printed.contains("is_master: false"), "{printed}");
    assert!(events.try_recv().is_err(), "Debug sent an event");
    assert!(engine.holds_role(), "Debug stepped the node down");
    // Asking is_master() does step down, with the event: the test above
    // would see it.
    assert!(!elector.is_master());
    assert!(matches!(
        events.try_recv(),
        Ok(Event::LostMaster {
            fence: 7,
            reason: LossReason::RenewalFailed
        })
    ));
}

/// A master suspended past its lease (simulated: the lease clock jumps,
/// `Instant` does not) wakes up not master, and says so.
#[test]
fn a_master_suspended_past_its_lease_wakes_up_not_master() {
    let engine = offline_engine();
    let events = engine.subscribe();
    engine.state.lock().role = Role::Master(Lease::granted(
        3,
        Utc::now(),
        Moment::now(),
        Duration::from_secs(2),
    ));
    let before = Instant::now();
    assert!(engine.is_master());
    crate::foundation::moment::simulate_suspend(Duration::from_secs(3));
    assert!(
        before.elapsed() < Duration::from_secs(1),
        "no real time passed"
    );
    assert!(
        !engine.is_master(),
        "still master after a suspend past its lease"
    );
    assert!(matches!(
        events.try_recv(),
        Ok(Event::LostMaster {
            fence: 3,
            reason: LossReason::RenewalFailed
        })
    ));
}

#[test]
fn poll_wait_is_the_loops_pause() {
    let engine = offline_engine();
    assert_eq!(engine.poll_wait(), Duration::from_millis(200));
    engine.state.lock().holder_due =
        Some(HolderDue::Estimated(chrono::TimeDelta::milliseconds(50)));
    assert!(engine.poll_wait() <= Duration::from_millis(60));
    engine.state.lock().role = Role::Master(Lease::granted(
        1,
        Utc::now(),
        Moment::now(),
        Duration::from_secs(1),
    ));
    // A renewal period after the lease's send instant (just now).
    let period = cadence::renewal_period(Duration::from_secs(1));
    let wait = engine.poll_wait();
    assert!(
        wait <= period && wait > period - Duration::from_millis(100),
        "{wait:?}"
    );
}
