//! Fault injection against real processes and the real server: crashes,
//! pauses, partitions, latency, clock skew and server restarts. Every
//! scenario runs `examples/worker/` processes, injects its fault, stops
//! them cleanly, and checks the history they logged with
//! `tests/harness/checker/`.

mod common;
mod fault_scenarios;
mod harness;

use harness::{clock, run};
use std::time::{Duration, Instant};

use common::PrivateServer;
use mongoelector::testing::FaultProxy as Proxy;
use mongoelector::{LockInfo, MongoLocker};
use run::Run;

fn uri_of(port: u16) -> String {
    format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000&heartbeatFrequencyMS=500"
    )
}

fn lock_args<'a>(key: &'a str, ttl_ms: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--mode",
        "lock",
        "--key",
        key,
        "--ttl-ms",
        ttl_ms,
        "--retry-ms",
        "50",
    ];
    v.extend_from_slice(extra);
    v
}

fn elector_args<'a>(key: &'a str, ttl_ms: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--mode", "elector", "--key", key, "--ttl-ms", ttl_ms];
    v.extend_from_slice(extra);
    v
}

/// The live holder of `key`, read directly from the server.
fn holder(uri: &str, db: &str, key: &str) -> Option<LockInfo> {
    let client = mongodb::sync::Client::with_uri_str(uri).unwrap();
    let locker = MongoLocker::builder(key, &client.database(db))
        .timeparanoid(false)
        .build()
        .unwrap();
    locker.get_current().ok().flatten()
}

fn wait_holder(
    uri: &str,
    db: &str,
    key: &str,
    limit: Duration,
    mut ok: impl FnMut(&LockInfo) -> bool,
) -> Option<LockInfo> {
    let client = mongodb::sync::Client::with_uri_str(uri).unwrap();
    let locker = MongoLocker::builder(key, &client.database(db))
        .timeparanoid(false)
        .build()
        .unwrap();
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(info)) = locker.get_current() {
            if ok(&info) {
                return Some(info);
            }
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigkill_of_the_holder_and_of_the_master_is_survived_within_the_bound() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let ttl = Duration::from_secs(1);
    let (lock_retry, elector_retry) = (Duration::from_millis(50), Duration::from_millis(100));
    for i in 0..3 {
        run.spawn(
            &format!("lock{i}"),
            &uri,
            &lock_args("L", "1000", &["--hold-ms", "100", "--acts", "3"]),
            None,
        );
        run.spawn(
            &format!("elect{i}"),
            &uri,
            &elector_args(
                "E",
                "1000",
                &["--retry-ms", "100", "--hold-ms", "50", "--acts", "0"],
            ),
            None,
        );
    }
    for (key, retry) in [("L", lock_retry), ("E", elector_retry)] {
        let first = wait_holder(&uri, &run.db, key, Duration::from_secs(15), |_| true)
            .expect("someone holds it");
        std::thread::sleep(Duration::from_millis(500));
        let victim = holder(&uri, &run.db, key).unwrap_or(first);
        let killed = Instant::now();
        run.signal(victim.pid, "-KILL");
        let next = wait_holder(&uri, &run.db, key, Duration::from_secs(10), |i| {
            i.pid != victim.pid
        })
        .expect("another worker took over");
        let took = killed.elapsed();
        assert!(
            took <= ttl + retry + Duration::from_secs(1),
            "{key}: took over after {took:?}"
        );
        assert!(next.fence > victim.fence);
        assert!(run.name_of(next.pid).is_some(), "taken by one of ours");
    }
    std::thread::sleep(Duration::from_millis(500));
    let (_, report) = run.finish();
    // The killed master's term has no record (it died in it); the others do.
    assert!(
        report.lock_sections >= 3 && report.master_terms >= 1,
        "{report:?}"
    );
}

#[test]
fn sigstop_of_the_holder_for_two_ttls_makes_its_late_write_bounce() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let ttl = Duration::from_secs(1);
    let args = lock_args("S", "1000", &["--hold-ms", "150", "--acts", "5"]);
    let a = run.spawn("a", &uri, &args, None);
    let b = run.spawn("b", &uri, &args, None);
    let mut paused = Vec::new();
    for _ in 0..3 {
        let held =
            wait_holder(&uri, &run.db, "S", Duration::from_secs(10), |_| true).expect("held");
        assert!(held.pid == a || held.pid == b);
        run.signal(held.pid, "-STOP");
        paused.push(run.name_of(held.pid).unwrap().to_owned());
        std::thread::sleep(ttl * 2);
        run.signal(held.pid, "-CONT");
        std::thread::sleep(Duration::from_millis(1500));
    }
    let (history, _) = run.finish();
    // A paused holder woke up to an invalid lease, did not act on it, and
    // its deliberate late write was refused: a greater fence was stored.
    let bounced = history.sections.iter().filter(|s| !s.valid).any(|s| {
        history.writes.iter().any(|w| {
            w.probe && w.worker.starts_with(&s.worker) && w.fence == s.fence && !w.accepted
        })
    });
    assert!(
        bounced,
        "no late write bounced; paused {paused:?}: {history:?}"
    );
}

/// A holder that never checks its lease (as one paused between its check
/// and its write), SIGSTOPped past its lease while another takes the lock:
/// once resumed, every one of its fenced writes is refused by the server,
/// and its successor's land.
#[test]
fn a_sigstopped_holders_late_fenced_writes_are_all_refused() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let ttl = Duration::from_secs(1);
    let blind = lock_args(
        "P",
        "1000",
        &["--hold-ms", "100", "--acts", "40", "--check", "0"],
    );
    let a = run.spawn("a", &uri, &blind, None);
    let paused = wait_holder(&uri, &run.db, "P", Duration::from_secs(10), |h| h.pid == a)
        .expect("a holds the lock");
    // Stopped once it knows it holds (its grant logged), not while the
    // answer is still on its way: one that arrives after the lease's
    // deadline is no grant, and a would never write under this fence.
    let known = format!("fence={} ", paused.fence);
    assert!(
        common::wait_until(Duration::from_secs(5), || run
            .logged("a", |l| l.starts_with("grant") && l.contains(&known))),
        "a did not learn of its grant"
    );
    run.signal(a, "-STOP");
    let b = run.spawn(
        "b",
        &uri,
        &lock_args("P", "1000", &["--hold-ms", "50", "--acts", "40"]),
        None,
    );
    let next = wait_holder(&uri, &run.db, "P", ttl * 10, |h| h.pid == b).expect("b took over");
    assert!(next.fence > paused.fence);
    std::thread::sleep(Duration::from_millis(300)); // b writes
    let resumed = clock::mono_ns();
    run.signal(a, "-CONT");
    std::thread::sleep(Duration::from_millis(1500));
    let (history, _) = run.finish();
    let late: Vec<_> = history
        .writes
        .iter()
        .filter(|w| w.worker.starts_with('a') && w.fence == paused.fence && w.sent > resumed)
        .collect();
    assert!(
        !late.is_empty(),
        "a wrote nothing after its resume: {history:?}"
    );
    assert!(
        late.iter().all(|w| !w.accepted),
        "a late write landed: {late:?}"
    );
    assert!(
        history.writes.iter().any(|w| w.worker.starts_with('b')
            && w.fence == next.fence
            && w.accepted
            && w.sent > resumed),
        "b's writes did not land after a resumed: {history:?}"
    );
}

#[test]
fn partitioned_master_steps_down_before_anyone_takes_over() {
    let server = PrivateServer::start(&[]);
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port).parse().unwrap()).unwrap();
    let mut run = Run::new();
    let direct = uri_of(server.port);
    run.record(&direct);
    let args = elector_args(
        "P",
        "2000",
        &["--retry-ms", "200", "--hold-ms", "50", "--acts", "0"],
    );
    let a = run.spawn("a", &uri_of(proxy.port()), &args, None);
    wait_holder(&direct, &run.db, "P", Duration::from_secs(15), |i| {
        i.pid == a
    })
    .expect("a is master");
    let b = run.spawn("b", &direct, &args, None);
    std::thread::sleep(Duration::from_secs(1));
    proxy.partition();
    let cut = Instant::now();
    let taken = wait_holder(&direct, &run.db, "P", Duration::from_secs(10), |i| {
        i.pid == b
    })
    .expect("b took over");
    assert!(
        cut.elapsed() >= Duration::from_millis(1500),
        "not before a's lease ran out"
    );
    assert!(taken.fence > 1);
    std::thread::sleep(Duration::from_secs(1));
    proxy.pass(); // heal
    std::thread::sleep(Duration::from_secs(3));
    let still = holder(&direct, &run.db, "P").expect("a master after healing");
    assert_eq!(still.pid, b, "healing did not hand mastership back");
    let (history, _) = run.finish();
    // a's term ended invalid, and b's began after a's local deadline.
    let a_term = history
        .sections
        .iter()
        .find(|s| s.worker.starts_with("at") && !s.valid)
        .expect("a's term ended by losing the lease");
    let b_term = history
        .sections
        .iter()
        .filter(|s| s.worker.starts_with("bt"))
        .min_by_key(|s| s.start)
        .expect("b's term");
    assert!(
        a_term.deadline > 0 && b_term.start > a_term.deadline,
        "{a_term:?} / {b_term:?}"
    );
    assert!(history
        .writes
        .iter()
        .filter(|w| w.probe)
        .all(|w| !w.accepted));
}

#[test]
fn latency_spikes_near_the_renewal_interval_cause_no_overlap_and_no_flapping() {
    let server = PrivateServer::start(&[]);
    let proxy = Proxy::start(format!("127.0.0.1:{}", server.port).parse().unwrap()).unwrap();
    let mut run = Run::new();
    run.record(&uri_of(server.port));
    let uri = uri_of(proxy.port());
    // ttl 1.5 s: a master renews every 500 ms; spikes add 300 ms of round trip.
    let args = elector_args(
        "T",
        "1500",
        &["--retry-ms", "150", "--hold-ms", "50", "--acts", "0"],
    );
    for i in 0..3 {
        run.spawn(&format!("n{i}"), &uri, &args, None);
    }
    wait_holder(
        &uri_of(server.port),
        &run.db,
        "T",
        Duration::from_secs(15),
        |_| true,
    )
    .expect("a master");
    for _ in 0..4 {
        proxy.delay(Duration::from_millis(150));
        std::thread::sleep(Duration::from_secs(1));
        proxy.pass();
        std::thread::sleep(Duration::from_millis(700));
    }
    let (_, report) = run.finish();
    assert!(report.master_terms >= 1);
    assert!(
        report.master_terms <= 3,
        "flapping: {} terms in 7 s",
        report.master_terms
    );
}

#[test]
fn clients_an_hour_off_never_overlap_and_paranoid_ones_refuse() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    for (name, skew) in [("fast", Some("+1h")), ("slow", Some("-1h")), ("true", None)] {
        run.spawn(
            &format!("lock-{name}"),
            &uri,
            &lock_args("K", "1000", &["--hold-ms", "50", "--acts", "3"]),
            skew,
        );
        run.spawn(
            &format!("elect-{name}"),
            &uri,
            &elector_args(
                "C",
                "1000",
                &["--retry-ms", "100", "--hold-ms", "50", "--acts", "4"],
            ),
            skew,
        );
    }
    run.spawn(
        "paranoid",
        &uri,
        &lock_args("Q", "1000", &["--timeparanoid", "1"]),
        Some("+1h"),
    );
    std::thread::sleep(Duration::from_secs(5));
    let (history, report) = run.finish();
    for name in ["fast", "slow", "true"] {
        let sections = history
            .sections
            .iter()
            .filter(|s| s.worker.starts_with(&format!("lock-{name}")))
            .count();
        assert!(sections > 0, "lock-{name} never held the lock");
    }
    assert!(report.master_terms >= 3, "{report:?}");
    assert!(
        history.errors.get("ClockSkew").copied().unwrap_or(0) >= 1,
        "{:?}",
        history.errors
    );
    assert!(
        !history
            .sections
            .iter()
            .any(|s| s.worker.starts_with("paranoid")),
        "paranoid worker got the lock"
    );
}

#[test]
fn an_observer_sees_a_killed_masters_successor_within_the_bound() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let (ttl, retry) = (Duration::from_secs(1), Duration::from_millis(100));
    for i in 0..3 {
        run.spawn(
            &format!("elect{i}"),
            &uri,
            &elector_args(
                "O",
                "1000",
                &["--retry-ms", "100", "--hold-ms", "50", "--acts", "1000"],
            ),
            None,
        );
    }
    let client = mongodb::sync::Client::with_uri_str(&uri).unwrap();
    // Never started: it only observes.
    // Without a change stream it polls at its own retry interval.
    let observer = mongoelector::MongoElector::builder("O", &client.database(&run.db))
        .ttl(ttl)
        .retry_interval(retry)
        .build()
        .unwrap();
    let rx = observer.observe();
    let first = loop {
        match rx.recv_timeout(Duration::from_secs(15)).expect("a master") {
            Some(m) => break m,
            None => continue,
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    // Renewals are not changes.
    assert!(rx.try_recv().is_err(), "a message without a change");
    let killed = Instant::now();
    run.signal(first.pid, "-KILL");
    let next = loop {
        match rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a new master")
        {
            Some(m) if m.fence != first.fence => break m,
            _ => continue,
        }
    };
    let took = killed.elapsed();
    assert!(
        took <= ttl + retry + Duration::from_secs(1),
        "the observer saw the new master {took:?} after the kill"
    );
    assert!(next.fence > first.fence && next.pid != first.pid);
    assert!(run.name_of(next.pid).is_some(), "one of ours");
    std::thread::sleep(Duration::from_millis(300));
    let _ = run.finish();
}
