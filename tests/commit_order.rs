//! The grant rule against the commit order: does a fenced write whose
//! server time (`$$NOW`) is at or after a later holder's grant time mean
//! the two overlapped? A recorder follows the change stream from before
//! the workers start, so every grant, release and write is known in commit
//! order. Two writer threads of one process and two reader processes
//! contend for one read-write lock (ttl 1 s, as in the soak), while a
//! thread keeps the read-write lock's collection busy (a slow pipeline
//! update on a document of its own, about 50 ms, one after another):
//! commands on that collection wait for it, as they waited for each other
//! in the soak, while the fenced writes (another collection) go through.
//!
//! What it shows: grants whose `$$NOW` is earlier than that of the release
//! committed before them (the server binds `$$NOW` when it parses a
//! command, before the command waits for the collection), some earlier
//! even than their predecessor's last write: the pairs the server-time
//! rule alone flags. For every one of them the predecessor's release
//! committed before the grant; one whose grant took the holding over (no
//! release before it) would be a true violation.
//!
//! Replica-set mode only (it needs a change stream); about 45 s
//! (`COMMIT_ORDER_SECONDS=N` runs it longer).

mod common;
mod harness;

use harness::{checker, run};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Document};

use checker::order::Order;
use checker::writes::{server_time_pairs, Pair};
use run::Run;

fn args<'a>(mode: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--mode",
        mode,
        "--key",
        key,
        "--ttl-ms",
        "1000",
        "--retry-ms",
        "100",
        "--hold-ms",
        "50",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn server_time_flags_only_grants_that_followed_a_release() {
    let _serial = common::serial();
    if !common::has_change_streams(&common::db()) {
        eprintln!("skipped: a standalone server has no change stream to record");
        return;
    }
    let uri = common::uri();
    let mut run = Run::new();
    run.record(&uri);
    // Back-to-back writes, then the release: a grant parsed before the
    // last of them can still commit after the release.
    let writer = [
        "--threads",
        "2",
        "--acts",
        "2",
        "--hold-ms",
        "0",
        "--retry-ms",
        "20",
    ];
    run.spawn("write0", &uri, &args("write", "rw", &writer), None);
    for i in 0..2 {
        let name = format!("read{i}");
        let reader = [
            "--threads",
            "2",
            "--acts",
            "2",
            "--hold-ms",
            "20",
            "--retry-ms",
            "20",
        ];
        run.spawn(&name, &uri, &args("read", "rw", &reader), None);
    }
    // The busy collection: one slow update after another, 20 ms apart.
    let busy = {
        let coll = common::client()
            .database(&run.db)
            .collection::<Document>(mongoelector::limits::DEFAULT_RWLOCK_COLLECTION);
        coll.insert_one(
            doc! { "_id": "busy", "n": 0_i64, "arr": (0..3_000_i64).collect::<Vec<_>>() },
        )
        .run()
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let slow = vec![doc! { "$set": { "n": { "$reduce": {
            "input": "$arr", "initialValue": 0_i64, "in": { "$add": ["$$value", "$$this"] },
        }}}}];
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let _ = coll.update_one(doc! { "_id": "busy" }, slow.clone()).run();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        (stop, thread)
    };
    let secs: u64 = std::env::var("COMMIT_ORDER_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    std::thread::sleep(Duration::from_secs(secs));
    busy.0.store(true, Ordering::SeqCst);
    busy.1.join().unwrap();
    // The checker passes the run (no takeover pair) ...
    let (history, report) = run.finish();
    let order = Order::build(&history.commits);
    let pairs = server_time_pairs(&history, &order);
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for (w, g, pair) in &pairs {
        *by.entry(format!("{pair:?}")).or_default() += 1;
        eprintln!(
            "flagged: {} fence {} at {} ms, {} fence {} granted at {} ms: {pair:?}",
            w.worker, w.fence, w.server, g.worker, g.fence, g.granted
        );
    }
    // The ingredient, per grant event of the read-write lock: its `$$NOW`
    // (`ts_created`) against its commit's wall time, against the release
    // committed before it, and against the writes committed before it.
    let at: BTreeMap<&str, i64> = history
        .logged
        .iter()
        .map(|e| (e.wid.as_str(), e.at))
        .collect();
    let (mut grants, mut lag, mut late) = (0, 0, 0);
    let (mut after_release, mut after_write) = (0, 0);
    let (mut wrote, mut released, mut held) = (-1, -1, Vec::<i64>::new());
    for c in history.commits.iter().filter(|c| c.key == "rw") {
        if c.coll == "resource" {
            wrote = wrote.max(at.get(c.wid.as_str()).copied().unwrap_or(-1));
            continue;
        }
        for h in c.held.iter().filter(|h| !held.contains(&h.fence)) {
            grants += 1;
            if c.wall >= 0 && h.created >= 0 {
                lag = lag.max(c.wall - h.created);
                late += (c.wall - h.created > 20) as usize;
            }
            after_release += (h.created < released) as usize;
            after_write += (h.created < wrote) as usize;
        }
        held = c.held.iter().map(|h| h.fence).collect();
        released = released.max(c.released);
    }
    eprintln!(
        "{secs} s: {} events; {grants} grants of `rw`: $$NOW up to {lag} ms before the commit ({late} over 20 ms), \
         {after_release} earlier than the release committed before them, {after_write} earlier than a write committed before them; \
         flagged by server time alone: {} ({by:?}); grant rule: {} writes judged against a takeover, {} ordered by release",
        report.commit_events,
        pairs.len(),
        report.grant_judged_commit,
        report.grant_ordered_commit
    );
    assert_eq!(report.commit_gaps, 0, "the stream had a hole");
    // The ingredient is common (tens a minute); the flagged pairs, a few a
    // minute, are not asked for.
    assert!(
        after_release > 0,
        "no grant committed after a later-stamped release"
    );
    // Enough handovers to have looked at (a loaded machine gives about
    // 15 write sections in 40 s, an idle one over 30).
    assert!(
        report.write_sections >= 8 && report.grant_ordered_commit >= 8,
        "too little happened: {report:?}"
    );
    // ... and every pair server time alone flags had the release first.
    let wrong: Vec<_> = pairs
        .iter()
        .filter(|p| !matches!(p.2, Pair::ReleaseFirst | Pair::EndedBefore))
        .collect();
    assert!(
        wrong.is_empty(),
        "flagged pairs not ordered by a release: {wrong:?}"
    );
}
