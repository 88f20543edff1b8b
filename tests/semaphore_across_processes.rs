//! The semaphore across processes, against the real server: worker
//! processes (`examples/worker/`) taking and releasing permits, crashed
//! and paused holders, holders that disagree on the count, round trips,
//! wake-ups, keep-alive and `lost()`. Histories are checked by
//! `tests/harness/checker/` (at most N valid permits at any instant,
//! fences unique and growing in grant order).

mod common;
mod harness;

use harness::{clock, run};
use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{has_change_streams, monitored_client, serial, wait_until, Commands};
use mongodb::bson::{doc, Document};
use mongodb::sync::Database;
use mongoelector::{Error, LockInfo, LossReason, MongoSemaphore, Permit};
use run::Run;

const GRACE: Duration = Duration::from_millis(200);

fn semaphore(db: &Database, key: &str, permits: u32, ttl: Duration) -> MongoSemaphore {
    MongoSemaphore::builder(key, db, permits)
        .ttl(ttl)
        .step(Duration::from_millis(50))
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn worker_args<'a>(key: &'a str, permits: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--mode",
        "semaphore",
        "--key",
        key,
        "--permits",
        permits,
        "--ttl-ms",
        "1000",
        "--retry-ms",
        "50",
        "--grace-ms",
        "200",
    ];
    v.extend_from_slice(extra);
    v
}

/// The live holders of `key`, read by a handle of this process.
fn holders(sem: &MongoSemaphore) -> Vec<LockInfo> {
    sem.holders().unwrap()
}

/// Waits until some holder of `key` is process `pid`; that holder.
fn held_by(sem: &MongoSemaphore, pid: u32, limit: Duration) -> LockInfo {
    let mut found = None;
    let seen = wait_until(limit, || {
        found = holders(sem).into_iter().find(|h| h.pid == pid);
        found.is_some()
    });
    assert!(seen, "process {pid} never held a permit");
    found.unwrap()
}

/// Appends a section of this test process's own to the run's history, so
/// that the checker counts it with the workers'.
fn log_section(run: &Run, worker: &str, permits: u32, permit: &Permit, start: i64, end: i64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.dir.join("test.log"))
        .unwrap();
    writeln!(
        f,
        "section kind=permit w={worker} key=S fence={} start={start} end={end} deadline={} valid={} permits={permits} expires={}",
        permit.fence(),
        clock::instant_ns(permit.deadline()),
        permit.is_valid() as u8,
        permit.expires_at().timestamp_millis()
    )
    .unwrap();
}

#[test]
fn three_permits_ten_threads_two_processes_for_20_s() {
    let _serial = serial();
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let args = worker_args(
        "S",
        "3",
        &["--threads", "5", "--hold-ms", "20", "--acts", "3"],
    );
    run.spawn("a", &uri, &args, None);
    run.spawn("b", &uri, &args, None);
    std::thread::sleep(Duration::from_secs(20));
    // The checker fails the test on more than 3 valid permits at any
    // instant, and on a fence granted twice or out of grant order.
    let (history, report) = run.finish();
    eprintln!("{report:?}");
    for p in ["a", "b"] {
        for t in 0..5 {
            let w = format!("{p}t{t}");
            assert!(
                history.sections.iter().any(|s| s.worker == w),
                "{w} never got a permit"
            );
        }
    }
    assert_eq!(
        report.most_permits_at_once, 3,
        "the permits were never all in use: {report:?}"
    );
    assert!(report.permit_sections >= 50, "{report:?}");
    assert!(history.errors.is_empty(), "{:?}", history.errors);
    // Grant times known for nearly all (a permit released before its grant
    // was read back has none).
    assert!(
        report.unknown_grants * 10 <= history.grants.len(),
        "{report:?}"
    );
}

#[test]
fn a_killed_holders_permit_comes_back_after_ttl_and_grace_without_a_ttl_index() {
    let _serial = serial();
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let db = common::client().database(&run.db);
    let ttl = Duration::from_secs(1);
    // Kept alive: only the victim's permit can come back.
    let sem = MongoSemaphore::builder("S", &db, 2)
        .ttl(ttl)
        .keep_alive(true)
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap();
    // The test holds one permit; the worker the other, for ever.
    let mine = sem.try_acquire().unwrap().expect("a free permit");
    let pid = run.spawn(
        "a",
        &uri,
        &worker_args("S", "2", &["--keep-alive", "1", "--acts", "100000"]),
        None,
    );
    let victim = held_by(&sem, pid, Duration::from_secs(15));
    assert!(sem.try_acquire().unwrap().is_none(), "both permits held");
    std::thread::sleep(Duration::from_millis(300));
    let victim = holders(&sem)
        .into_iter()
        .find(|h| h.pid == pid)
        .unwrap_or(victim);
    let killed = Instant::now();
    run.signal(pid, "-KILL");
    let next = sem
        .try_acquire_for(Duration::from_secs(10))
        .unwrap()
        .expect("the killed holder's permit came back");
    let took = killed.elapsed();
    eprintln!("the permit came back {took:?} after the kill");
    assert!(
        took <= ttl + GRACE + Duration::from_secs(1),
        "came back after {took:?}"
    );
    let granted = holders(&sem)
        .into_iter()
        .find(|h| h.fence == next.fence())
        .expect("the new permit is listed");
    // In server terms: not before the victim's lease and the grace ran out.
    let bound = victim.expires + chrono::TimeDelta::from_std(GRACE).unwrap();
    assert!(
        granted.created >= bound,
        "granted at {} before the victim's expiry {} + grace",
        granted.created,
        victim.expires
    );
    assert!(next.fence() > victim.fence && next.fence() > mine.fence());
    // No TTL index: expiry is decided in the grant itself.
    assert_eq!(
        common::index_names(&db, mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION),
        ["_id_"]
    );
    drop((mine, next));
    let _ = run.finish();
}

#[test]
fn a_stopped_holders_permit_is_invalid_locally_before_anyone_else_gets_it() {
    let _serial = serial();
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let db = common::client().database(&run.db);
    let ttl = Duration::from_secs(1);
    let keeper = MongoSemaphore::builder("S", &db, 2)
        .ttl(ttl)
        .keep_alive(true)
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap();
    let kept_from = clock::mono_ns();
    let kept = keeper.try_acquire().unwrap().expect("a free permit");
    let pid = run.spawn(
        "a",
        &uri,
        &worker_args(
            "S",
            "2",
            &["--keep-alive", "1", "--acts", "100000", "--hold-ms", "50"],
        ),
        None,
    );
    let sem = semaphore(&db, "S", 2, ttl);
    held_by(&sem, pid, Duration::from_secs(15));
    run.signal(pid, "-STOP");
    // A renewal in flight when it stopped may still land: read after it.
    std::thread::sleep(Duration::from_millis(200));
    let stopped = holders(&sem)
        .into_iter()
        .find(|h| h.pid == pid)
        .expect("the stopped holder's entry is still live");
    let next = sem
        .try_acquire_for(Duration::from_secs(10))
        .unwrap()
        .expect("the stopped holder's permit was granted again");
    let next_start = clock::mono_ns();
    let granted = holders(&sem)
        .into_iter()
        .find(|h| h.fence == next.fence())
        .expect("the new permit is listed");
    assert!(
        granted.created >= stopped.expires + chrono::TimeDelta::from_std(GRACE).unwrap(),
        "granted at {} (server) while the stopped holder's lease ran to {}",
        granted.created,
        stopped.expires
    );
    std::thread::sleep(Duration::from_millis(300));
    log_section(&run, "next", 2, &next, next_start, clock::mono_ns());
    next.release().unwrap();
    run.signal(pid, "-CONT");
    // The woken holder finds its permit invalid and ends its section.
    std::thread::sleep(Duration::from_millis(700));
    log_section(&run, "keeper", 2, &kept, kept_from, clock::mono_ns());
    assert!(kept.is_valid(), "kept alive across several ttls");
    kept.release().unwrap();
    // The checker: never more than 2 valid at once, counting the stopped
    // holder until its local deadline.
    let (history, _) = run.finish();
    let late = history
        .sections
        .iter()
        .find(|s| s.worker == "at0" && s.fence == stopped.fence)
        .expect("the stopped holder logged its section");
    assert!(!late.valid, "it noticed it had lost the permit: {late:?}");
    assert!(
        late.deadline < next_start,
        "its local deadline {} was not before the next holder's start {next_start}",
        late.deadline
    );
}

#[test]
fn a_second_count_on_one_key_gets_the_typed_error_and_nothing_more_is_granted() {
    let _serial = serial();
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let db = common::client().database(&run.db);
    run.spawn(
        "two",
        &uri,
        &worker_args(
            "S",
            "2",
            &["--threads", "3", "--hold-ms", "30", "--acts", "3"],
        ),
        None,
    );
    let watcher = semaphore(&db, "S", 2, Duration::from_secs(1));
    assert!(wait_until(Duration::from_secs(15), || !holders(&watcher).is_empty()));
    run.spawn(
        "three",
        &uri,
        &worker_args(
            "S",
            "3",
            &["--threads", "2", "--hold-ms", "30", "--acts", "3"],
        ),
        None,
    );
    // In this process too: the first operation names both counts.
    let other = semaphore(&db, "S", 3, Duration::from_secs(1));
    let err = other.try_acquire().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::PermitsMismatch { .. }), "{err:?}");
    assert!(text.contains('2') && text.contains('3'), "{text}");
    assert!(other.acquire().is_err(), "blocking acquire refused too");
    let mut most = 0;
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        most = most.max(holders(&watcher).len());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(most <= 2, "{most} holders at once");
    let (history, report) = run.finish();
    assert!(
        !history
            .sections
            .iter()
            .any(|s| s.worker.starts_with("three")),
        "the second count got a permit"
    );
    assert!(
        history.errors.get("PermitsMismatch").copied().unwrap_or(0) >= 1,
        "{:?}",
        history.errors
    );
    assert!(report.permit_sections > 0);
}

/// The names of the commands `f` sends, stream commands left out.
fn sent<T>(commands: &Commands, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    commands.take();
    let out = f();
    let names = commands
        .take()
        .into_iter()
        .filter(|(n, d)| !common::opens_stream(n, d) && n != "getMore" && n != "killCursors")
        .map(|(n, _)| n)
        .collect();
    (out, names)
}

#[test]
fn acquire_renewal_and_release_are_one_round_trip_each() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let sem = semaphore(&db, "S", 2, Duration::from_secs(30));
    // The first use checks the server once.
    let _ = sem.available().unwrap();
    let (p, names) = sent(&commands, || sem.try_acquire().unwrap().unwrap());
    assert_eq!(names, ["findAndModify"], "try_acquire");
    let (q, names) = sent(&commands, || sem.acquire().unwrap());
    assert_eq!(names, ["findAndModify"], "acquire, a permit free");
    let (none, names) = sent(&commands, || sem.try_acquire().unwrap());
    assert!(none.is_none());
    assert_eq!(names, ["findAndModify"], "try_acquire, none free");
    let (touched, names) = sent(&commands, || p.touch().unwrap());
    assert!(touched.is_some());
    assert_eq!(names.len(), 1, "touch: {names:?}");
    let (_, names) = sent(&commands, || p.release().unwrap());
    assert_eq!(names.len(), 1, "release: {names:?}");
    let (_, names) = sent(&commands, || drop(q));
    assert_eq!(names.len(), 1, "release on drop: {names:?}");
    assert_eq!(sem.available().unwrap(), 2);
}

/// From a release to a blocked waiter's acquire returning, `rounds` times:
/// all permits held (two), the waiter blocked, one released.
fn release_to_acquire(db: &Database, step: Duration, rounds: usize) -> Vec<Duration> {
    let build = || {
        MongoSemaphore::builder("W", db, 2)
            .ttl(Duration::from_secs(30))
            .step(step)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    let (holder, waiter) = (build(), build());
    let _other = holder.try_acquire().unwrap().expect("free");
    let mut took = Vec::new();
    for _ in 0..rounds {
        let p = holder.try_acquire().unwrap().expect("the second permit");
        std::thread::scope(|s| {
            let blocked = s.spawn(|| {
                let got = waiter.acquire().unwrap();
                (Instant::now(), got)
            });
            // Long enough for the waiter's first attempt and its stream.
            std::thread::sleep(Duration::from_millis(1200));
            let released = Instant::now();
            p.release().unwrap();
            let (at, got) = blocked.join().unwrap();
            took.push(at - released);
            drop(got);
        });
    }
    took
}

#[test]
fn a_waiter_is_woken_by_a_release_or_polls_at_its_step() {
    let _serial = serial();
    let db = common::db();
    if has_change_streams(&db) {
        // Woken by the change stream, not the (long) step.
        let took = release_to_acquire(&db, Duration::from_secs(5), 7);
        eprintln!("release to acquire (change stream): {took:?}");
        let median = common::median(took.clone());
        // A poll would come at the 5 s step (2.5 s on average); a stream
        // wake-up takes a write and a delivery, tens of ms, more late in
        // a CI run (the test server's writes slow as its oplog grows).
        assert!(median <= Duration::from_millis(500), "{took:?}");
        assert!(took.iter().all(|t| *t < Duration::from_secs(2)), "{took:?}");
    }
    // Polling: streams off (and on a standalone server, always), the waiter
    // finds the free permit at its next attempt, one step apart.
    let step = Duration::from_millis(300);
    let polled = MongoSemaphore::builder("P", &db, 1)
        .ttl(Duration::from_secs(30))
        .step(step)
        .change_streams(false)
        .timeparanoid(false)
        .build()
        .unwrap();
    let (client, commands) = monitored_client();
    let watched = client.database(db.name());
    let waiter = MongoSemaphore::builder("P", &watched, 1)
        .ttl(Duration::from_secs(30))
        .step(step)
        .change_streams(false)
        .timeparanoid(false)
        .build()
        .unwrap();
    let _ = waiter.available().unwrap();
    let held = polled.try_acquire().unwrap().expect("free");
    commands.take();
    let took = std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            let got = waiter.acquire().unwrap();
            (Instant::now(), got)
        });
        std::thread::sleep(Duration::from_millis(1500));
        let released = Instant::now();
        held.release().unwrap();
        let (at, got) = blocked.join().unwrap();
        drop(got);
        at - released
    });
    let attempts = commands
        .names()
        .iter()
        .filter(|n| *n == "findAndModify")
        .count();
    eprintln!("polling: {attempts} attempts, acquired {took:?} after the release");
    // 1.5 s of waiting at a 300 ms step: about 5 attempts, plus the one
    // that won (and the release on drop).
    assert!((4..=9).contains(&attempts), "{attempts} attempts");
    assert!(took <= step + Duration::from_millis(300), "{took:?}");
}

#[test]
fn keep_alive_holds_a_permit_past_several_ttls_and_lost_reports_a_taken_permit() {
    let _serial = serial();
    let db = common::db();
    let ttl = Duration::from_secs(1);
    let kept = MongoSemaphore::builder("K", &db, 1)
        .ttl(ttl)
        .keep_alive(true)
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap();
    let other = semaphore(&db, "K", 1, ttl);
    let permit = kept.try_acquire().unwrap().expect("free");
    let lost = permit.lost();
    let first = permit.expires_at();
    std::thread::sleep(ttl * 3);
    assert!(permit.is_valid(), "renewed in the background");
    assert!(permit.expires_at() > first, "the expiry moved");
    assert!(other.try_acquire().unwrap().is_none(), "still held");
    assert!(lost.try_recv().is_err(), "nothing lost yet");
    // Someone deletes the semaphore's document: the next renewal finds the
    // permit gone.
    db.collection::<Document>(mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION)
        .delete_one(doc! { "_id": "K" })
        .run()
        .unwrap();
    let removed = Instant::now();
    let reason = lost
        .recv_timeout(ttl + Duration::from_secs(1))
        .expect("lost() fired");
    eprintln!(
        "lost ({reason:?}) {:?} after the removal",
        removed.elapsed()
    );
    assert_eq!(reason, LossReason::TakenOver);
    assert!(!permit.is_valid());
    assert!(removed.elapsed() <= ttl / 3 + Duration::from_millis(700));
    // Without keep-alive the permit is valid until its deadline, then not.
    let short = other.try_acquire().unwrap().expect("free again");
    assert!(short.is_valid());
    assert!(short.deadline() <= Instant::now() + ttl);
    std::thread::sleep(ttl);
    assert!(!short.is_valid(), "past its deadline");
    permit.release().unwrap(); // frees nothing, no error
}
