//! Round trips per public operation, counted exactly through the driver's
//! command monitoring: any operation that starts sending more commands
//! fails here. (The benches in `benches/` say what the round trips cost.)

mod common;

use std::time::{Duration, Instant};

use common::{monitored_client, Commands};
use mongoelector::{MongoElector, MongoLocker};

const TTL: Duration = Duration::from_secs(60);

/// The names of the commands `f` sends.
fn sent<T>(commands: &Commands, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    commands.take();
    let out = f();
    (out, commands.names())
}

fn assert_trips<T>(commands: &Commands, what: &str, expected: &[&str], f: impl FnOnce() -> T) -> T {
    let (out, names) = sent(commands, f);
    assert_eq!(names, expected, "{what}");
    out
}

const FAM: &[&str] = &["findAndModify"];
const READ: &[&str] = &["aggregate"];
const NONE: &[&str] = &[];
/// The first use of a lock collection of a deployment in this process: the
/// server check (version, TTL index on the lock collection), once, then
/// the read itself.
const FIRST_READ: &[&str] = &["buildInfo", "listIndexes", "aggregate"];

fn locker(db: &mongodb::sync::Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(TTL)
        .timeparanoid(false)
        .build()
        .unwrap()
}

#[test]
fn each_lock_operation_is_one_round_trip() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let a = locker(&db, "k");
    let b = locker(&db, "k");
    let step = Duration::from_millis(50);
    assert_trips(&commands, "first use", FIRST_READ, || {
        a.get_current().unwrap()
    });
    // The check is shared: b's first read is just the read.
    assert_trips(&commands, "second locker's first use", READ, || {
        b.get_current().unwrap()
    });

    assert!(assert_trips(&commands, "acquire", FAM, || a
        .acquire(false, None, step, false)
        .unwrap()));
    assert!(assert_trips(&commands, "touch", FAM, || a.touch().unwrap()).is_some());
    assert!(assert_trips(&commands, "locked", READ, || a
        .locked()
        .unwrap()));
    assert!(assert_trips(&commands, "owned", READ, || a
        .owned()
        .unwrap()));
    assert!(assert_trips(&commands, "get_current", READ, || a.get_current().unwrap()).is_some());
    assert!(assert_trips(&commands, "status", READ, || a.status().unwrap()).lock_owned);
    assert!(assert_trips(&commands, "try_lock on a held lock", FAM, || b
        .try_lock()
        .unwrap())
    .is_none());
    assert!(!assert_trips(
        &commands,
        "non-blocking acquire on a held lock",
        FAM,
        || b.acquire(false, None, step, false).unwrap()
    ));
    assert!(!assert_trips(
        &commands,
        "touch without holding",
        NONE,
        || b.touch().unwrap().is_some()
    ));
    assert!(assert_trips(&commands, "release", FAM, || a
        .release(false)
        .unwrap()));
    assert!(!assert_trips(
        &commands,
        "release holding nothing",
        NONE,
        || a.release(false).unwrap()
    ));
    assert!(!assert_trips(
        &commands,
        "locked on a free lock",
        READ,
        || a.locked().unwrap()
    ));

    // The guard API.
    let guard = assert_trips(&commands, "lock on a free lock", FAM, || a.lock().unwrap());
    assert_trips(&commands, "guard.is_valid", NONE, || {
        assert!(guard.is_valid())
    });
    assert_trips(&commands, "guard.touch", FAM, || guard.touch().unwrap());
    assert_trips(&commands, "guard drop", FAM, || drop(guard));
    let guard = assert_trips(&commands, "try_lock on a free lock", FAM, || {
        a.try_lock().unwrap().unwrap()
    });
    assert_trips(&commands, "guard.release", FAM, || guard.release().unwrap());
    let guard = assert_trips(&commands, "try_lock_for on a free lock", FAM, || {
        a.try_lock_for(Duration::from_secs(1)).unwrap().unwrap()
    });
    // Forced acquire and release: one round trip each as well.
    assert!(assert_trips(&commands, "forced acquire", FAM, || b
        .acquire(false, None, step, true)
        .unwrap()));
    assert!(assert_trips(&commands, "forced release", FAM, || a
        .release(true)
        .unwrap()));
    drop(guard); // a's stale acquisition: one (no-op) release
    commands.take();
}

#[test]
fn new_lockers_on_a_checked_collection_send_one_round_trip_per_operation() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let step = Duration::from_millis(50);
    let first = locker(&db, "job-0");
    assert!(first.acquire(false, None, step, false).unwrap());
    assert!(first.release(false).unwrap());
    commands.take();
    // A daemon making a locker per job: no first-use check after the first.
    for i in 1..=5 {
        let job = locker(&db, &format!("job-{i}"));
        assert!(job.acquire(false, None, step, false).unwrap());
        assert!(job.release(false).unwrap());
    }
    let names = commands.names();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(names.iter().all(|n| n == "findAndModify"), "{names:?}");
    // Another collection of the same deployment is checked on its own.
    let other = MongoLocker::builder("job", &db)
        .collection("jobs")
        .timeparanoid(false)
        .build()
        .unwrap();
    assert_trips(
        &commands,
        "another collection",
        &["buildInfo", "listIndexes", "findAndModify"],
        || assert!(other.acquire(false, None, step, false).unwrap()),
    );
}

fn quiet_elector(db: &mongodb::sync::Database, key: &str, report: bool) -> MongoElector {
    MongoElector::builder(key, db)
        .ttl(TTL)
        .status_reports(report)
        .build()
        .unwrap()
}

#[test]
fn each_elector_poll_is_one_round_trip_plus_one_with_status() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);

    let a = quiet_elector(&db, "e", false);
    let b = quiet_elector(&db, "e", false);
    assert_trips(&commands, "first use", FIRST_READ, || {
        a.master_exists().unwrap()
    });
    assert_trips(&commands, "second elector's first use", READ, || {
        b.master_exists().unwrap()
    });
    assert_trips(&commands, "poll: follower takes the free lock", FAM, || {
        a.poll().unwrap()
    });
    assert!(a.is_master());
    assert_trips(&commands, "poll: master renews", FAM, || a.poll().unwrap());
    assert_trips(&commands, "poll: follower finds it held", FAM, || {
        b.poll().unwrap()
    });
    assert_trips(&commands, "is_master, poll_wait, node_status", NONE, || {
        assert!(!b.is_master());
        // A third of the ttl after the last renewal was sent (just now).
        let wait = a.poll_wait();
        assert!(wait <= TTL / 3 && wait > TTL / 3 - Duration::from_secs(5));
        assert!(a.node_status().unwrap().is_master);
    });
    assert!(assert_trips(&commands, "master_exists", READ, || b
        .master_exists()
        .unwrap()));
    assert_trips(&commands, "release (surrender)", FAM, || {
        a.release().unwrap()
    });
    assert_trips(&commands, "release when not master", NONE, || {
        a.release().unwrap()
    });

    // With status reports: one more write per poll, whatever the role.
    let c = quiet_elector(&db, "s", true);
    let d = quiet_elector(&db, "s", true);
    for e in [&c, &d] {
        assert_trips(&commands, "checked collection's first use", READ, || {
            e.master_exists().unwrap()
        });
    }
    let status_poll: &[&str] = &["findAndModify", "update"];
    assert_trips(
        &commands,
        "poll with status: follower takes",
        status_poll,
        || c.poll().unwrap(),
    );
    assert_trips(
        &commands,
        "poll with status: master renews",
        status_poll,
        || c.poll().unwrap(),
    );
    assert_trips(&commands, "poll with status: follower", status_poll, || {
        d.poll().unwrap()
    });
    // The TTL index is created once per elector, never inside a poll.
    assert_trips(
        &commands,
        "first report_status",
        &["createIndexes", "update"],
        || d.report_status().unwrap(),
    );
    assert_trips(&commands, "report_status", &["update"], || {
        d.report_status().unwrap()
    });
    let cluster = assert_trips(&commands, "cluster_detail", &["find", "aggregate"], || {
        d.cluster_detail().unwrap()
    });
    assert_eq!(cluster.members.len(), 2);

    // timeparanoid: one `hello` on the first follower poll, counted apart.
    let p = MongoElector::builder("s", &db)
        .ttl(TTL)
        .status_reports(false)
        .timeparanoid(true)
        .build()
        .unwrap();
    assert_trips(&commands, "checked collection's first use", READ, || {
        p.master_exists().unwrap()
    });
    assert_trips(
        &commands,
        "first paranoid poll",
        &["hello", "findAndModify"],
        || p.poll().unwrap(),
    );
    assert_trips(&commands, "later paranoid poll", FAM, || p.poll().unwrap());
    c.stop().unwrap();
    d.stop().unwrap();
    p.stop().unwrap();
}

/// Whether a command belongs to the process's shared change stream (its
/// opening `aggregate`, its `getMore`s, its `killCursors`), which the
/// stream's own thread sends, once per process and collection, not per
/// attempt.
fn is_stream(name: &str, cmd: &mongodb::bson::Document) -> bool {
    match name {
        "aggregate" => common::opens_stream(name, cmd),
        "getMore" | "killCursors" => true,
        _ => false,
    }
}

/// Checks that the commands of a blocking acquire are one `findAndModify`
/// per attempt, attempts spaced by `step` (the last pause may be cut short
/// by the timeout); `hello`s are returned apart, and the shared change
/// stream's commands are left out. Returns the attempt count.
fn attempts_of(
    sent: Vec<(String, mongodb::bson::Document, Instant)>,
    step: Duration,
) -> (usize, usize) {
    let opened: Vec<Instant> = sent
        .iter()
        .filter(|(n, cmd, _)| n == "aggregate" && is_stream(n, cmd))
        .map(|(_, _, at)| *at)
        .collect();
    let sent: Vec<_> = sent
        .into_iter()
        .filter(|(n, cmd, _)| !is_stream(n, cmd))
        .collect();
    let hellos = sent.iter().filter(|(n, _, _)| n == "hello").count();
    assert!(
        sent.iter().take(hellos).all(|(n, _, _)| n == "hello"),
        "a clock check comes first"
    );
    let attempts: Vec<Instant> = sent
        .iter()
        .skip(hellos)
        .map(|(n, _, at)| {
            assert_eq!(n, "findAndModify", "only acquire attempts");
            *at
        })
        .collect();
    // Attempts are a step apart. One early attempt is allowed, right after
    // the shared change stream opened (during the first wait): it wakes its
    // waiters for one more look, since changes made while it was opening
    // were not seen. Any other early command would be a second round trip.
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    let pairs: Vec<(Instant, Instant)> = attempts.windows(2).map(|w| (w[0], w[1])).collect();
    if let Some((_last, full)) = pairs.split_last() {
        let early: Vec<&(Instant, Instant)> = full.iter().filter(|(a, b)| *b - *a < step).collect();
        assert!(
            early.len() <= 1,
            "attempts closer than the step {step:?}: {gaps:?}"
        );
        for (a, b) in early {
            assert!(
                opened.iter().any(|t| a <= t && t <= b),
                "an early attempt without the stream opening: {gaps:?}"
            );
        }
    }
    (attempts.len(), hellos)
}

#[test]
fn a_blocking_acquire_is_one_round_trip_per_attempt() {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let holder = locker(&db, "b");
    assert!(holder
        .acquire(false, None, Duration::from_millis(50), false)
        .unwrap());
    // timeparanoid on (the default): its `hello` is counted apart.
    let step = Duration::from_millis(100);
    // Racing: a fair waiter refreshes its place every third of its waiter
    // lease, not every step, while the stream is live (and leaves the
    // queue at the end); tests/fair_queue.rs counts that.
    let contender = MongoLocker::builder("b", &db)
        .fair(false)
        .ttl(TTL)
        .step(step)
        .build()
        .unwrap();
    let timeout = Duration::from_secs(1);
    contender.get_current().unwrap(); // first use: the server check
                                      // One per step, the last cut short by the timeout, plus the one early
                                      // look when the shared change stream opens.
    let most = (timeout.as_millis() / step.as_millis()) as usize + 2;
    // Each attempt-and-pause takes a step and an attempt's round trip:
    // the slowest of a few of the holder's renewals timed now, writes to
    // the same document as the attempts (the server's state sets it: late
    // in a CI run, with a long oplog behind it, writes took about 100 ms
    // while reads took 10). Not attempts: the contender's first one makes
    // the clock check counted below.
    let round_trip = (0..3)
        .map(|_| {
            let t = Instant::now();
            assert!(holder.touch().unwrap().is_some());
            t.elapsed()
        })
        .max()
        .unwrap();
    let per_attempt = step + round_trip * 3 / 2 + Duration::from_millis(20);
    let least = (timeout.as_millis() / per_attempt.as_millis()).max(1) as usize;

    commands.take();
    let t = Instant::now();
    assert!(!contender.acquire(true, Some(timeout), step, false).unwrap());
    let took = t.elapsed();
    assert!(took >= timeout, "{took:?}");
    let (attempts, hellos) = attempts_of(commands.take_timed(), step);
    assert_eq!(
        hellos, 1,
        "timeparanoid: one clock check on the first acquire"
    );
    assert!(
        (least..=most).contains(&attempts),
        "{attempts} attempts in {took:?} with step {step:?}, expected {least}..={most}"
    );

    // try_lock_for: the builder's step; no second clock check.
    commands.take();
    assert!(contender.try_lock_for(timeout).unwrap().is_none());
    let (attempts, hellos) = attempts_of(commands.take_timed(), step);
    assert_eq!(
        hellos, 0,
        "the clock check is not repeated within 10 minutes"
    );
    assert!((least..=most).contains(&attempts), "{attempts} attempts");

    // lock(): attempts until the holder lets go after about 450 ms.
    commands.take();
    let released = std::thread::scope(|s| {
        let h = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(450));
            // Noted before the call: the waiter, woken by the change
            // stream, may acquire before this call returns.
            let releasing = Instant::now();
            assert!(holder.release(false).unwrap());
            releasing
        });
        let guard = contender.lock().unwrap();
        let got = Instant::now();
        let released = h.join().unwrap();
        drop(guard);
        (released, got)
    });
    let sent = commands.take_timed();
    // The holder's release and the guard's drop are the two non-attempts.
    let attempts: Vec<_> = sent
        .into_iter()
        .filter(|(n, cmd, _)| cmd.get_bool("upsert").unwrap_or(false) || is_stream(n, cmd))
        .collect();
    let (n, _) = attempts_of(attempts, step);
    assert!(released.1 >= released.0, "acquired after the release");
    // One per step, plus at most one early look when the change stream
    // opens; the release itself wakes the waiter (no extra step).
    assert!(
        (4..=7).contains(&n),
        "{n} attempts for a 450 ms wait with a 100 ms step"
    );
}
