//! MongoElector against the real server.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{db, elector, wait_until, PrivateServer};
use crossbeam_channel::Receiver;
use mongodb::bson::{doc, Document};
use mongoelector::{lease_margin, Error, Event, LossReason, MongoElector, MongoLocker};

/// The transitions among `events`, checking that they alternate, starting
/// with BecameMaster.
fn transitions(events: &[Event]) -> Vec<Event> {
    let t: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e, Event::BecameMaster { .. } | Event::LostMaster { .. }))
        .cloned()
        .collect();
    for (i, e) in t.iter().enumerate() {
        let became = matches!(e, Event::BecameMaster { .. });
        assert_eq!(became, i % 2 == 0, "transitions do not alternate: {t:?}");
    }
    t
}

fn drain(rx: &Receiver<Event>) -> Vec<Event> {
    rx.try_iter().collect()
}

/// Waits up to `limit` for a BecameMaster on `rx`; the events seen on the way.
fn wait_became(rx: &Receiver<Event>, limit: Duration) -> Option<(i64, Vec<Event>)> {
    let end = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Ok(e) = rx.recv_deadline(end) {
        seen.push(e.clone());
        if let Event::BecameMaster { fence, .. } = e {
            return Some((fence, seen));
        }
    }
    None
}

fn wait_lost(rx: &Receiver<Event>, limit: Duration) -> Option<(i64, LossReason, Instant)> {
    let end = Instant::now() + limit;
    while let Ok(e) = rx.recv_deadline(end) {
        if let Event::LostMaster { fence, reason } = e {
            return Some((fence, reason, Instant::now()));
        }
    }
    None
}

#[test]
fn three_electors_elect_exactly_one_master() {
    let db = db();
    let ttl = Duration::from_secs(3);
    let retry = Duration::from_millis(100);
    let nodes: Vec<_> = (0..3).map(|_| elector(&db, "three", ttl, retry)).collect();
    let rxs: Vec<_> = nodes.iter().map(|n| n.events()).collect();
    for n in &nodes {
        n.start(false).unwrap();
        assert!(n.running());
    }
    assert!(wait_until(Duration::from_secs(5), || nodes
        .iter()
        .any(|n| n.is_master())));
    std::thread::sleep(Duration::from_millis(1500)); // several polls each
    let masters: Vec<bool> = nodes.iter().map(|n| n.is_master()).collect();
    assert_eq!(masters.iter().filter(|m| **m).count(), 1, "{masters:?}");
    let mut became = 0;
    for (node, rx) in nodes.iter().zip(&rxs) {
        let events = drain(rx);
        assert!(events.iter().any(|e| matches!(e, Event::Polled { .. })));
        let t = transitions(&events);
        // is_master() agrees with the events this node sent.
        assert_eq!(node.is_master(), t.len() % 2 == 1, "{t:?}");
        became += t.len().div_ceil(2);
    }
    assert_eq!(became, 1);
    let master = nodes.iter().find(|n| n.is_master()).unwrap();
    assert!(master.master_exists().unwrap());
    // Renewals are due a third of the ttl after the last one was sent.
    let wait = master.poll_wait();
    assert!(wait <= ttl / 3 && !wait.is_zero(), "{wait:?}");
    let follower = nodes.iter().find(|n| !n.is_master()).unwrap();
    // The retry interval, or (following a live change stream) until the
    // master's lease would run out, plus the takeover grace.
    let wait = follower.poll_wait();
    assert!(
        wait == retry || (wait > retry && wait <= ttl + lease_margin(ttl)),
        "{wait:?}"
    );
    for n in &nodes {
        n.stop().unwrap();
    }
}

#[test]
fn a_master_that_stops_polling_is_replaced_within_ttl_plus_retry_plus_one_second() {
    let db = db();
    let ttl = Duration::from_secs(2);
    let retry = Duration::from_millis(200);
    let a = elector(&db, "abandoned", ttl, retry);
    let a_rx = a.events();
    let before_poll = Instant::now();
    a.poll().unwrap(); // driven by hand, then left alone
    assert!(a.is_master());
    let (a_fence, mut a_events) = wait_became(&a_rx, Duration::ZERO).expect("a became master");
    // Nobody calls `a` again, yet it announces its step-down on time (the
    // deadline thread does it), before anyone could take over.
    let (_, reason, at) = wait_lost(&a_rx, ttl * 2).expect("a stepped down by itself");
    assert_eq!(reason, LossReason::RenewalFailed);
    let after = at - before_poll; // the lease was sent after `before_poll`
    assert!(after >= ttl - lease_margin(ttl), "early: {after:?}");
    assert!(after < ttl, "{after:?}: not before the server expiry");
    a_events.push(Event::LostMaster {
        fence: a_fence,
        reason,
    });
    let b = elector(&db, "abandoned", ttl, retry);
    let b_rx = b.events();
    b.start(false).unwrap();
    let (b_fence, _) =
        wait_became(&b_rx, ttl + retry + Duration::from_secs(3)).expect("b took over");
    let took = before_poll.elapsed();
    assert!(
        took <= ttl + retry + Duration::from_secs(1),
        "replaced after {took:?}"
    );
    assert!(b_fence > a_fence);
    // a's lease-aware view turned false on its own, and says why.
    assert!(!a.is_master());
    a_events.extend(drain(&a_rx));
    let t = transitions(&a_events);
    assert!(matches!(
        t.last(),
        Some(Event::LostMaster { reason: LossReason::RenewalFailed, fence }) if *fence == a_fence
    ));
    b.stop().unwrap();
}

#[test]
fn stop_on_the_master_hands_over_within_the_retry_interval_and_returns_at_once() {
    let db = db();
    let ttl = Duration::from_secs(60); // stop must not depend on it
    let retry = Duration::from_millis(200);
    let a = elector(&db, "handover", ttl, retry);
    let a_rx = a.events();
    a.start(false).unwrap();
    let (a_fence, mut events) = wait_became(&a_rx, Duration::from_secs(5)).expect("a master");
    let b = elector(&db, "handover", ttl, retry);
    let b_rx = b.events();
    b.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.is_master() && !b.is_master());
    let t = Instant::now();
    a.stop().unwrap();
    let stop_took = t.elapsed();
    assert!(
        stop_took < Duration::from_secs(1),
        "stop took {stop_took:?}"
    );
    assert!(!a.running() && !a.is_master());
    let (b_fence, _) = wait_became(&b_rx, retry + Duration::from_secs(2)).expect("b master");
    let handover = t.elapsed();
    assert!(
        handover <= retry + Duration::from_secs(1),
        "handover took {handover:?}"
    );
    assert!(b_fence > a_fence);
    // a's events end with LostMaster(Stopped), then nothing more.
    events.extend(drain(&a_rx));
    let t = transitions(&events);
    assert!(matches!(
        t.last(),
        Some(Event::LostMaster {
            reason: LossReason::Stopped,
            ..
        })
    ));
    assert!(
        matches!(events.last(), Some(Event::LostMaster { .. })),
        "{events:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(a_rx.try_recv().is_err(), "no events after stop");
    b.stop().unwrap();
}

#[test]
fn forced_takeover_is_noticed_at_the_next_poll() {
    let db = db();
    let ttl = Duration::from_secs(3); // renews every second
    let a = elector(&db, "forced", ttl, Duration::from_millis(200));
    let a_rx = a.events();
    a.start(false).unwrap();
    let (a_fence, _) = wait_became(&a_rx, Duration::from_secs(5)).expect("a master");
    let thief = MongoLocker::builder("forced", &db)
        .ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    assert!(thief
        .acquire(false, None, Duration::from_millis(10), true)
        .unwrap());
    let forced_at = Instant::now();
    let (fence, reason, at) = wait_lost(&a_rx, ttl).expect("a noticed");
    assert_eq!((fence, reason), (a_fence, LossReason::TakenOver));
    assert!(at - forced_at <= ttl / 3 + Duration::from_millis(500));
    assert!(!a.is_master());
    assert!(thief.owned().unwrap(), "a did not take it back");
    a.stop().unwrap();
    assert!(
        thief.owned().unwrap(),
        "a's stop did not free the thief's lock"
    );
}

#[test]
fn database_gone_steps_down_before_the_deadline_and_recovers() {
    let server = PrivateServer::start(&[]);
    let db = server.client().database("elector");
    let ttl = Duration::from_secs(2);
    let retry = Duration::from_millis(200);
    let a = elector(&db, "gone", ttl, retry);
    let b = elector(&db, "gone", ttl, retry);
    let (a_rx, b_rx) = (a.events(), b.events());
    a.start(false).unwrap();
    let (first_fence, _) = wait_became(&a_rx, Duration::from_secs(5)).expect("a master");
    b.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    server.pause(); // SIGSTOP: requests hang
    let gone = Instant::now();
    let (fence, reason, at) = wait_lost(&a_rx, ttl * 2).expect("a stepped down");
    assert_eq!((fence, reason), (first_fence, LossReason::RenewalFailed));
    // The last successful renewal was sent before `gone`, so the server
    // could grant the lock to b no earlier than `gone + ttl`.
    // Safety: before the server could grant the lock to b (no earlier than
    // `gone + ttl`). Timeliness: at the local deadline (the last renewal's
    // send + ttl - margin, before `gone`), give or take the deadline
    // thread's wake-up.
    assert!(
        at - gone < ttl,
        "stepped down {:?} after the database went",
        at - gone
    );
    assert!(at - gone <= ttl - lease_margin(ttl) + Duration::from_millis(150));
    assert!(!a.is_master() && !b.is_master());
    std::thread::sleep(Duration::from_millis(500));
    server.resume();
    // Recovery: soon exactly one master, which stays master.
    assert!(wait_until(Duration::from_secs(20), || a.is_master() || b.is_master()));
    std::thread::sleep(Duration::from_secs(1));
    let mut after: Vec<Event> = drain(&a_rx).into_iter().chain(drain(&b_rx)).collect();
    assert!(a.is_master() != b.is_master(), "exactly one master");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(a.is_master() != b.is_master(), "exactly one master");
    let settled: Vec<Event> = drain(&a_rx).into_iter().chain(drain(&b_rx)).collect();
    assert!(
        !settled
            .iter()
            .any(|e| matches!(e, Event::BecameMaster { .. } | Event::LostMaster { .. })),
        "stable once recovered: {settled:?}"
    );
    after.retain(|e| matches!(e, Event::BecameMaster { .. }));
    assert!(!after.is_empty());
    for e in after {
        let Event::BecameMaster { fence, .. } = e else {
            unreachable!()
        };
        assert!(fence > first_fence, "fences keep growing");
    }
    a.stop().unwrap();
    b.stop().unwrap();
}

#[test]
fn poll_failures_are_reported_and_do_not_kill_the_elector() {
    let server = PrivateServer::start(&[]);
    let db = server.client().database("elector");
    let a = elector(
        &db,
        "errors",
        Duration::from_secs(2),
        Duration::from_millis(100),
    );
    let rx = a.events();
    server.stop(); // nothing listens any more
    a.start(false).unwrap();
    let failed = wait_until(Duration::from_secs(10), || {
        rx.try_iter().any(|e| {
            matches!(
                e,
                Event::PollFailed {
                    error: Error::Database(_)
                }
            )
        })
    });
    assert!(failed, "a failed poll is announced");
    assert!(a.running() && !a.is_master());
    let mut server = server;
    server.restart();
    let (fence, _) = wait_became(&rx, Duration::from_secs(20)).expect("recovered on its own");
    assert!(fence >= 1);
    a.stop().unwrap();
}

#[test]
fn an_unread_receiver_stays_bounded_and_does_not_slow_polls() {
    // A server of its own, so other tests' load does not blur the timing.
    let server = PrivateServer::start(&[]);
    let db = server.client().database("unread");
    // Someone else holds the lock, so every poll is a follower's try.
    let holder = MongoLocker::builder("unread", &db)
        .ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    assert!(holder
        .acquire(false, None, Duration::from_millis(10), false)
        .unwrap());
    let a = MongoElector::builder("unread", &db)
        .status_reports(false)
        .build()
        .unwrap();
    let unread = a.events();
    let raw = db.collection::<Document>("raw");
    // Each poll timed against one raw findAndModify in the same loop, so a
    // server that slows as its oplog grows slows both alike.
    let batch = |n: usize| {
        let (mut polls, mut raws) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..n {
            let t = Instant::now();
            a.poll().unwrap();
            polls += t.elapsed();
            let t = Instant::now();
            raw.find_one_and_update(doc! {"_id": 1}, doc! {"$inc": {"n": 1}})
                .upsert(true)
                .run()
                .unwrap();
            raws += t.elapsed();
        }
        polls.as_secs_f64() / raws.as_secs_f64()
    };
    let first = batch(300);
    batch(2400);
    let last = batch(300);
    assert!(
        unread.len() <= mongoelector::limits::POLL_EVENT_BACKLOG,
        "{}",
        unread.len()
    );
    assert!(
        last < first * 2.0,
        "polls slowed down: {first:.2}x raw, then {last:.2}x raw"
    );
    assert!(matches!(
        unread.try_iter().last(),
        Some(Event::Polled { .. })
    ));
    a.poll().unwrap();
    match unread.try_recv().unwrap() {
        Event::Polled { missed, .. } => {
            assert_eq!(
                missed,
                3000 - mongoelector::limits::POLL_EVENT_BACKLOG as u64
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn release_surrenders_without_stopping_and_blocking_start_runs_until_stop() {
    let db = db();
    let ttl = Duration::from_secs(10);
    let a = Arc::new(elector(&db, "release", ttl, Duration::from_millis(100)));
    let rx = a.events();
    let runner = {
        let a = a.clone();
        std::thread::spawn(move || a.start(true))
    };
    let (fence, _) = wait_became(&rx, Duration::from_secs(5)).expect("a master");
    assert!(matches!(a.start(false), Err(Error::AlreadyRunning { .. })));
    a.release().unwrap();
    let (lost, reason, _) = wait_lost(&rx, Duration::ZERO).expect("released");
    assert_eq!((lost, reason), (fence, LossReason::Released));
    assert!(a.running());
    // Still running: it wins the free lock again, with a new fence.
    let (again, _) = wait_became(&rx, Duration::from_secs(5)).expect("master again");
    assert!(again > fence);
    a.stop().unwrap();
    runner.join().unwrap().unwrap();
    assert!(!a.running());
    // And it can be started again.
    a.start(false).unwrap();
    assert!(wait_became(&rx, Duration::from_secs(5)).is_some());
    a.stop().unwrap();
}

#[test]
fn dropping_a_running_master_stops_it_and_frees_the_lock() {
    let db = db();
    let ttl = Duration::from_secs(60);
    let a = elector(&db, "drop", ttl, Duration::from_millis(100));
    let rx = a.events();
    a.start(false).unwrap();
    assert!(wait_became(&rx, Duration::from_secs(5)).is_some());
    drop(a);
    let (_, reason, _) = wait_lost(&rx, Duration::ZERO).expect("stopped");
    assert_eq!(reason, LossReason::Stopped);
    let b = elector(&db, "drop", ttl, Duration::from_millis(100));
    b.poll().unwrap();
    assert!(b.is_master(), "the lock was released, not left to expire");
    b.stop().unwrap();
}

#[test]
fn status_reports_and_cluster_view() {
    let db = db();
    let ttl = Duration::from_secs(3);
    let a = MongoElector::builder("cluster", &db)
        .ttl(ttl)
        .retry_interval(Duration::from_millis(100))
        .app_version("1.2.3")
        .build()
        .unwrap();
    let b = elector(&db, "cluster", ttl, Duration::from_millis(100));
    let other_key = elector(&db, "elsewhere", ttl, Duration::from_millis(100));
    a.poll().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    b.poll().unwrap();
    other_key.poll().unwrap();
    let cluster = a.cluster_detail().unwrap();
    let uuids: Vec<&str> = cluster.members.iter().map(|m| m.uuid.as_str()).collect();
    assert_eq!(
        uuids,
        [b.uuid(), a.uuid()],
        "live members of this key, newest first"
    );
    let master = cluster.master.as_ref().unwrap();
    assert_eq!(master.uuid, a.uuid());
    let me = cluster.master_status().unwrap();
    assert!(me.is_master && !me.running);
    assert_eq!(me.app_version.as_deref(), Some("1.2.3"));
    assert_eq!(me.fence, Some(master.fence));
    assert_eq!(me.ttl, ttl);
    assert_eq!(me.pid, std::process::id());
    assert!(me.last_poll.is_some());
    let local = a.node_status().unwrap();
    assert_eq!((local.uuid.as_str(), local.is_master), (a.uuid(), true));
    // The stored document keeps the seed's field names.
    let stored: Document = db
        .collection("elector.status")
        .find_one(doc! {"_id": a.uuid()})
        .run()
        .unwrap()
        .unwrap();
    for field in [
        "uuid",
        "key",
        "ttl",
        "host",
        "pid",
        "ismaster",
        "running",
        "last_poll",
        "app_version",
        "timestamp",
        "fence",
    ] {
        assert!(stored.contains_key(field), "{field} missing: {stored}");
    }
    // A TTL index prunes the reports (created by start, or a direct report).
    a.report_status().unwrap();
    let indexes: Vec<_> = db
        .collection::<Document>("elector.status")
        .list_indexes()
        .run()
        .unwrap()
        .map(|i| i.unwrap())
        .collect();
    assert!(indexes
        .iter()
        .any(|i| i.options.as_ref().and_then(|o| o.expire_after).is_some()));
    // A stale report claiming mastership does not fool the cluster view: the
    // master comes from the lock document.
    b.release().unwrap();
    a.release().unwrap();
    let cluster = b.cluster_detail().unwrap();
    assert!(cluster.master.is_none());
    assert!(
        cluster.members.iter().any(|m| m.is_master),
        "the stale report says master"
    );
    assert!(cluster.master_status().is_none());
    // Silent members drop out after three ttls (reports come every ttl or
    // two).
    std::thread::sleep(ttl * 3 + Duration::from_millis(300));
    assert!(b.cluster_detail().unwrap().members.is_empty());
    // A stopped member reports itself gone at once.
    b.start(false).unwrap();
    assert!(wait_until(Duration::from_secs(5), || b
        .cluster_detail()
        .unwrap()
        .members
        .len()
        == 1));
    b.stop().unwrap();
    assert!(b.cluster_detail().unwrap().members.is_empty());
}

#[test]
fn builder_rejects_bad_settings() {
    let db = db();
    let param = |r: mongoelector::Result<MongoElector>| match r {
        Err(Error::InvalidArgument { parameter, .. }) => parameter,
        other => panic!("{other:?}"),
    };
    assert_eq!(param(MongoElector::new("", &db)), "key");
    assert_eq!(
        param(MongoElector::builder("k", &db).ttl(Duration::ZERO).build()),
        "ttl"
    );
    assert_eq!(
        param(
            MongoElector::builder("k", &db)
                .retry_interval(Duration::ZERO)
                .build()
        ),
        "retry_interval"
    );
    assert_eq!(
        param(
            MongoElector::builder("k", &db)
                .ttl(Duration::from_secs(1))
                .retry_interval(Duration::from_secs(2))
                .build()
        ),
        "retry_interval"
    );
    assert_eq!(
        param(MongoElector::builder("k", &db).collection("a$").build()),
        "collection"
    );
    assert_eq!(
        param(
            MongoElector::builder("k", &db)
                .status_collection("system.x")
                .build()
        ),
        "status_collection"
    );
    let e = MongoElector::new("k", &db).unwrap();
    assert_eq!(
        (e.ttl(), e.retry_interval()),
        (Duration::from_secs(15), Duration::from_secs(3))
    );
    assert!(!e.running() && !e.is_master());
    e.stop().unwrap(); // stopping an elector that never ran is fine
}

#[test]
fn masters_never_overlap_under_churn() {
    let db = db();
    let ttl = Duration::from_secs(1);
    let retry = Duration::from_millis(30);
    let nodes: Arc<Vec<MongoElector>> = Arc::new(
        (0..3)
            .map(|_| {
                MongoElector::builder("churn", &db)
                    .ttl(ttl)
                    .retry_interval(retry)
                    .status_reports(false)
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let collectors: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (rx, log) = (n.events(), log.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for e in rx.iter() {
                    if let Event::BecameMaster { fence, .. } = e {
                        log.lock().unwrap().push((Instant::now(), i, fence));
                    }
                    mine.push(e);
                }
                mine
            })
        })
        .collect();
    for n in nodes.iter() {
        n.start(false).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let sweeps = Arc::new(AtomicUsize::new(0));
    let sweeper = {
        let (nodes, done, overlaps, sweeps) = (
            nodes.clone(),
            done.clone(),
            overlaps.clone(),
            sweeps.clone(),
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let masters = nodes.iter().filter(|n| n.is_master()).count();
                // A sweep is a snapshot only if it was not preempted: a
                // hand-over takes at least two database round trips.
                if t.elapsed() > Duration::from_micros(300) {
                    continue;
                }
                if masters > 1 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                sweeps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Churn: release the master, stop and restart nodes.
    let end = Instant::now() + Duration::from_secs(8);
    let mut round = 0usize;
    while Instant::now() < end {
        round += 1;
        std::thread::sleep(Duration::from_millis(150));
        if let Some(m) = nodes.iter().find(|n| n.is_master()) {
            if round.is_multiple_of(3) {
                m.stop().unwrap();
                std::thread::sleep(Duration::from_millis(50));
                m.start(false).unwrap();
            } else {
                m.release().unwrap();
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    sweeper.join().unwrap();
    for n in nodes.iter() {
        n.stop().unwrap();
    }
    let nodes = Arc::try_unwrap(nodes).expect("sole owner");
    drop(nodes); // closes the channels
    let mut terms = 0;
    for c in collectors {
        let events = c.join().unwrap();
        terms += transitions(&events).len().div_ceil(2);
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two masters at once");
    assert!(sweeps.load(Ordering::Relaxed) > 1000);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), terms);
    assert!(terms >= 20, "only {terms} terms: the churn did not churn");
    let mut fences: Vec<i64> = log.iter().map(|(_, _, f)| *f).collect();
    fences.sort();
    fences.dedup();
    assert_eq!(fences.len(), log.len(), "fences are unique");
    // In the order they were seen (allowing for the collectors' own
    // latency), every BecameMaster carries a greater fence.
    for pair in log.windows(2) {
        let ((t0, _, f0), (t1, _, f1)) = (pair[0], pair[1]);
        if t1.duration_since(t0) > Duration::from_millis(20) {
            assert!(f1 > f0, "{log:?}");
        }
    }
}

#[test]
fn each_poll_is_one_round_trip_plus_one_status_write() {
    let (client, commands) = common::monitored_client();
    let db = common::fresh_db(&client);
    let quiet = |key| {
        MongoElector::builder(key, &db)
            .ttl(Duration::from_secs(30))
            .status_reports(false)
            .build()
            .unwrap()
    };
    let a = quiet("trips");
    let b = quiet("trips");
    // First use of each: the server check, counted in tests/round_trips.rs.
    a.master_exists().unwrap();
    b.master_exists().unwrap();
    commands.take();
    a.poll().unwrap(); // follower takes the free lock
    assert_eq!(commands.names(), ["findAndModify"]);
    assert!(a.is_master());
    a.poll().unwrap(); // master renews
    assert_eq!(commands.names(), ["findAndModify"]);
    b.poll().unwrap(); // follower finds it held
    assert_eq!(commands.names(), ["findAndModify"]);
    assert!(!b.is_master());
    // With status reports: one more write per poll.
    let c = MongoElector::builder("trips", &db)
        .ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    c.master_exists().unwrap();
    commands.take();
    c.poll().unwrap();
    assert_eq!(commands.names(), ["findAndModify", "update"]);
    a.poll().unwrap();
    c.poll().unwrap();
    commands.take();
    c.poll().unwrap();
    assert_eq!(commands.names(), ["findAndModify", "update"]);
}
