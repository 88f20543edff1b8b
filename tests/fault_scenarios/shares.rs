//! The semaphore and the read-write lock under faults (part of
//! `tests/faults.rs`): a permit holder and a writer SIGKILLed and
//! SIGSTOPped while they hold, the rest of the workers going on; the
//! checker over the recorded history (at most N permits, a writer alone,
//! fences in grant order, every check, the grant rule, the resource's log).

use std::time::{Duration, Instant};

use mongoelector::{LockInfo, MongoRwLock, MongoSemaphore};

use crate::common::{self, wait_until};
use crate::harness::run::Run;

const TTL: Duration = Duration::from_secs(1);
const GRACE: Duration = Duration::from_millis(200);
/// Slack for a loaded machine: round trips, the retry step, start-up.
const SLACK: Duration = Duration::from_secs(2);

fn args<'a>(mode: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--mode",
        mode,
        "--key",
        key,
        "--ttl-ms",
        "1000",
        "--retry-ms",
        "50",
        "--grace-ms",
        "200",
        "--threads",
        "2",
        "--hold-ms",
        "100",
    ];
    v.extend_from_slice(extra);
    v
}

/// Waits for a live holder of ours that `pick` accepts.
fn wait_for(mut list: impl FnMut() -> Vec<LockInfo>, pick: impl Fn(&LockInfo) -> bool) -> LockInfo {
    let mut found = None;
    let seen = wait_until(Duration::from_secs(15), || {
        found = list().into_iter().find(|h| pick(h));
        found.is_some()
    });
    assert!(seen, "no such holder");
    found.unwrap()
}

/// SIGSTOPs `pid` for 2 × ttl once it knows it holds `fence` (its grant
/// logged: an answer still on its way when it stops would arrive after the
/// deadline, which is no grant); the instant it was resumed.
fn pause(run: &Run, pid: u32, fence: i64) -> i64 {
    let name = run.name_of(pid).unwrap().to_owned();
    let known = format!("fence={fence} ");
    let learned = wait_until(Duration::from_secs(5), || {
        run.logged(&name, |l| l.starts_with("grant") && l.contains(&known))
    });
    assert!(learned, "{name} did not learn of its grant {fence}");
    run.signal(pid, "-STOP");
    std::thread::sleep(TTL * 2);
    let resumed = crate::harness::clock::mono_ns();
    run.signal(pid, "-CONT");
    resumed
}

/// Whether `worker`'s process logged a check that answered invalid after
/// `at` for `fence`: it woke to a lost holding.
fn noticed(history: &crate::harness::checker::History, worker: &str, fence: i64, at: i64) -> bool {
    history
        .checks
        .iter()
        .any(|c| c.worker.starts_with(worker) && c.fence == fence && !c.valid && c.at > at)
}

#[test]
fn a_killed_or_paused_permit_holder_never_makes_more_than_n() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let db = common::client().database(&run.db);
    let permit = args("semaphore", "S", &["--permits", "2", "--acts", "5"]);
    let pids: Vec<u32> = (0..3)
        .map(|i| run.spawn(&format!("p{i}"), &uri, &permit, None))
        .collect();
    let sem = MongoSemaphore::builder("S", &db, 2)
        .ttl(TTL)
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap();
    let holders = || sem.holders().unwrap();
    // SIGKILL a holder: its permit comes back after ttl + grace.
    let victim = wait_for(holders, |h| pids.contains(&h.pid));
    run.signal(victim.pid, "-KILL");
    let killed = Instant::now();
    let back = wait_until(TTL + GRACE + SLACK, || {
        let h = holders();
        h.len() == 2 && h.iter().all(|h| h.pid != victim.pid)
    });
    assert!(back, "the killed holder's permit did not come back");
    eprintln!(
        "both permits held by others {:?} after the kill",
        killed.elapsed()
    );
    // SIGSTOP another holder past its lease.
    let paused = wait_for(holders, |h| pids.contains(&h.pid) && h.pid != victim.pid);
    let resumed = pause(&run, paused.pid, paused.fence);
    std::thread::sleep(Duration::from_millis(1500));
    let name = run.name_of(paused.pid).unwrap().to_owned();
    let (history, report) = run.finish();
    assert!(
        noticed(&history, &name, paused.fence, resumed),
        "{name} did not find its permit (fence {}) lost once resumed",
        paused.fence
    );
    assert!(report.permit_sections >= 10, "{report:?}");
    assert_eq!(report.most_permits_at_once, 2, "{report:?}");
}

#[test]
fn a_killed_or_paused_writer_blocks_nobody_and_overlaps_nobody() {
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    let db = common::client().database(&run.db);
    let rw = MongoRwLock::builder("W", &db)
        .ttl(TTL)
        .takeover_grace(GRACE)
        .timeparanoid(false)
        .build()
        .unwrap();
    let writer = args("write", "W", &["--acts", "8", "--retry-ms", "200"]);
    let w1 = run.spawn("w1", &uri, &writer, None);
    run.spawn("r", &uri, &args("read", "W", &["--acts", "3"]), None);
    // SIGKILL the writer while it holds: readers get in after ttl + grace.
    let victim = wait_for(
        || rw.writer().unwrap().into_iter().collect(),
        |h| h.pid == w1,
    );
    run.signal(w1, "-KILL");
    let killed = Instant::now();
    let free = wait_until(TTL + GRACE + SLACK, || !rw.readers().unwrap().is_empty());
    assert!(free, "no reader got in after the writer's kill");
    eprintln!("a reader in {:?} after the kill", killed.elapsed());
    // A new writer, SIGSTOPped while it holds, past its lease.
    let w2 = run.spawn("w2", &uri, &writer, None);
    let paused = wait_for(
        || rw.writer().unwrap().into_iter().collect(),
        |h| h.pid == w2,
    );
    assert!(paused.fence > victim.fence);
    let resumed = pause(&run, w2, paused.fence);
    std::thread::sleep(Duration::from_millis(1500));
    let (history, report) = run.finish();
    assert!(
        noticed(&history, "w2", paused.fence, resumed),
        "w2 did not find its write lock (fence {}) lost once resumed",
        paused.fence
    );
    // Readers held the lock between the pause's start and its end.
    let stopped = history
        .grants
        .iter()
        .find(|g| g.fence == paused.fence)
        .map_or(0, |g| g.start);
    assert!(
        history
            .sections
            .iter()
            .any(|s| s.kind == "read" && s.start > stopped && s.start < resumed),
        "no reader got in while the writer was stopped"
    );
    assert!(
        report.write_sections >= 2 && report.read_sections >= 5,
        "{report:?}"
    );
}
