//! A fleet mixing nodes of the Python package `mongoelector` 1.0.2 (the
//! real one, installed beside the test server by `scripts/server.sh
//! install`, driven through `tests/python/worker.py`) and nodes of this
//! crate (`examples/worker/`, built `python_compatible`) on one key:
//! never two holders or masters, and each side takes over from the other,
//! after a release and after a SIGKILL, within the bounds the migration
//! guide states. Every scenario checks the history all workers logged with
//! `tests/harness/checker/` (Python holders are unfenced sections, ordered
//! by their start).

mod common;
mod harness;

use harness::{checker, recorder};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checker::{History, Section};
use mongodb::bson::{doc, Document};
use mongodb::sync::Database;

/// The Python lock and elector ttl of these tests, in seconds: a Python
/// leader renews at half of it, a Python lock holder here at a third, and
/// with 2 s a renewal delayed a second on a loaded machine lost the lease.
const PY_TTL_S: u64 = 4;
/// The Rust nodes' ttl, in seconds.
const RS_TTL_S: u64 = 2;
/// The Rust nodes' takeover grace for their ttl (`lease_margin`: ttl / 10).
const GRACE: Duration = Duration::from_millis(200);
/// Slack for a loaded two-core machine: process start-up, round trips.
const SLACK: Duration = Duration::from_millis(2500);
/// How often the TTL monitor of the server runs (MongoDB and SecantusDB:
/// every 60 s), which removes an expired document the Python nodes wait on.
const TTL_MONITOR: Duration = Duration::from_secs(60);
/// Slack for one pass of the TTL monitor on a loaded machine.
const MONITOR_SLACK: Duration = Duration::from_secs(15);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the scripts' venv, where `scripts/server.sh install` puts
/// the package next to the server.
fn python() -> PathBuf {
    let bin = root().join(".secantus/venv/bin/python");
    assert!(
        bin.exists(),
        "{} is missing: run `scripts/server.sh install`",
        bin.display()
    );
    bin
}

/// The crate's worker, built by `cargo test` next to this test binary.
fn rust_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/worker");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test`",
        bin.display()
    );
    bin
}

/// Python and Rust workers on one key, logging into one directory.
struct Fleet {
    db: String,
    key: String,
    mode: &'static str,
    dir: PathBuf,
    children: Vec<(String, Child)>,
    recorder: Option<recorder::Recorder>,
}

impl Fleet {
    fn new(mode: &'static str) -> Fleet {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("mongoelector-pyfleet-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("py_{}", &id[..12]);
        // The server's view (commit order, the resource's write log),
        // watched from before any worker starts.
        let recorder = Some(recorder::Recorder::start(&common::uri(), &db, &dir));
        Fleet {
            db,
            key: format!("{mode}-{}", &id[..6]),
            mode,
            dir,
            children: Vec::new(),
            recorder,
        }
    }

    fn database(&self) -> Database {
        common::client().database(&self.db)
    }

    /// The lock collection both packages use for this mode.
    fn collection(&self) -> &'static str {
        match self.mode {
            "lock" => mongoelector::limits::DEFAULT_LOCK_COLLECTION,
            _ => mongoelector::limits::PYTHON_ELECTOR_COLLECTION,
        }
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) -> u32 {
        let log = self.dir.join(format!("{name}.log"));
        cmd.env("MONGODB_URI", common::uri())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        cmd.args(["--name", name, "--key", &self.key, "--db", &self.db])
            .args(["--mode", self.mode, "--log"])
            .arg(log);
        let child = cmd.spawn().expect("spawn worker");
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        pid
    }

    /// A Python node: ttl `PY_TTL_S`; `once` holds (renewing) until stopped.
    fn python(&mut self, name: &str, once: bool) -> u32 {
        let mut cmd = Command::new(python());
        cmd.arg(root().join("tests/python/worker.py")).args([
            "--ttl",
            &PY_TTL_S.to_string(),
            "--once",
            if once { "1" } else { "0" },
        ]);
        self.spawn(name, cmd)
    }

    /// A node of this crate, Python-compatible: ttl `RS_TTL_S`; `acts` 0 holds
    /// mastership until stopped; a lock is kept alive.
    fn rust(&mut self, name: &str, retry_ms: u64, acts: u32, hold_ms: u64) -> u32 {
        let mut cmd = Command::new(rust_worker());
        cmd.args(["--python-compatible", "1", "--keep-alive", "1"])
            .args(["--ttl-ms", &(RS_TTL_S * 1000).to_string()])
            .args(["--retry-ms", &retry_ms.to_string()])
            .args([
                "--acts",
                &acts.to_string(),
                "--hold-ms",
                &hold_ms.to_string(),
            ]);
        self.spawn(name, cmd)
    }

    /// The pid in the live lock document (locked, unexpired), if any.
    fn holder(&self, db: &Database) -> Option<i64> {
        let doc: Document = db
            .collection::<Document>(self.collection())
            .find_one(doc! { "_id": &self.key, "locked": true })
            .run()
            .unwrap()?;
        let expires = doc.get_datetime("ts_expire").ok()?;
        if expires.timestamp_millis() <= chrono::Utc::now().timestamp_millis() {
            return None;
        }
        doc.get("pid").and_then(|p| match p {
            mongodb::bson::Bson::Int32(n) => Some(i64::from(*n)),
            mongodb::bson::Bson::Int64(n) => Some(*n),
            _ => None,
        })
    }

    /// Waits until `pid` holds the lock; how long that took.
    fn wait_holder(&self, db: &Database, pid: u32, limit: Duration) -> Duration {
        let started = Instant::now();
        let ok = common::wait_until(limit, || self.holder(db) == Some(i64::from(pid)));
        assert!(
            ok,
            "pid {pid} did not hold `{}` within {limit:?} (holder: {:?}); logs in {}",
            self.key,
            self.holder(db),
            self.dir.display()
        );
        started.elapsed()
    }

    /// The lock document as stored.
    fn document(&self, db: &Database) -> Document {
        db.collection::<Document>(self.collection())
            .find_one(doc! { "_id": &self.key })
            .run()
            .unwrap()
            .expect("a lock document")
    }

    /// SIGTERM to every live worker, waits, and checks the history: no
    /// two holders overlap. Returns the sections, one per holding (the
    /// Python workers log one line per check of a holding).
    fn finish(mut self) -> Vec<Section> {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let end = Instant::now() + Duration::from_secs(20);
        for (name, child) in &mut self.children {
            while child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < end,
                    "worker {name} did not stop on SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(r) = self.recorder.take() {
            r.stop();
        }
        let (history, _) = History::read_checked(&self.dir);
        assert!(
            history.errors.is_empty(),
            "errors in {}: {:?}",
            self.dir.display(),
            history.errors
        );
        let mut seen = BTreeSet::new();
        let mut sections: Vec<Section> = history
            .sections
            .into_iter()
            .rev() // the last line of a holding is the one to keep
            .filter(|s| seen.insert((s.worker.clone(), s.start)))
            .collect();
        sections.sort_by_key(|s| s.start);
        let _ = std::fs::remove_dir_all(&self.dir);
        sections
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Without any Python node: a Python-compatible release deletes the lock
/// document (a hold keeps it until the hold ends, then deletes it), the
/// next acquisition's fence is still greater, and a default locker keeps the
/// document.
#[test]
fn python_compatible_release_deletes_and_fences_still_grow() {
    let db = common::fresh_db(&common::client());
    let coll = db.collection::<Document>(mongoelector::limits::DEFAULT_LOCK_COLLECTION);
    let key = "compat";
    let compat = mongoelector::MongoLocker::builder(key, &db)
        .ttl(Duration::from_secs(5))
        .python_compatible(true)
        .build()
        .unwrap();
    let first = compat.lock().unwrap();
    let fence = first.fence();
    first.release().unwrap();
    assert!(
        coll.find_one(doc! { "_id": key }).run().unwrap().is_none(),
        "deleted"
    );
    let again = compat.lock().unwrap();
    assert!(again.fence() > fence, "{} after {fence}", again.fence());
    let fence = again.fence();
    drop(again);
    // An expired acquisition of ours is deleted too (and was not held).
    let short = mongoelector::MongoLocker::builder(key, &db)
        .ttl(Duration::from_millis(300))
        .python_compatible(true)
        .build()
        .unwrap();
    assert!(short
        .acquire(true, None, Duration::from_millis(50), false)
        .unwrap());
    let holding = coll.find_one(doc! { "_id": key }).run().unwrap().unwrap();
    assert!(holding.get_i64("fence").unwrap() > fence);
    std::thread::sleep(Duration::from_millis(600));
    assert!(!short.release(false).unwrap(), "it had expired");
    assert!(
        coll.find_one(doc! { "_id": key }).run().unwrap().is_none(),
        "deleted"
    );
    // With a hold: kept while the hold lasts, deleted by a release after it.
    let holder = mongoelector::MongoLocker::builder("held", &db)
        .ttl(Duration::from_secs(5))
        .hold_at_least(Duration::from_millis(600))
        .python_compatible(true)
        .build()
        .unwrap();
    holder.lock().unwrap().release().unwrap();
    assert!(coll
        .find_one(doc! { "_id": "held", "locked": true })
        .run()
        .unwrap()
        .is_some());
    std::thread::sleep(Duration::from_millis(800));
    let guard = holder.lock().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    guard.release().unwrap();
    assert!(
        coll.find_one(doc! { "_id": "held" })
            .run()
            .unwrap()
            .is_none(),
        "deleted"
    );
    // The default keeps the document, marked free.
    let plain = mongoelector::MongoLocker::new("plain", &db).unwrap();
    plain.lock().unwrap().release().unwrap();
    let kept = coll
        .find_one(doc! { "_id": "plain" })
        .run()
        .unwrap()
        .unwrap();
    assert_eq!(kept.get_bool("locked"), Ok(false));
}

fn is_python(s: &Section) -> bool {
    s.fence == 0
}

/// The handovers between consecutive holdings: (from Python, to Python,
/// gap in ms) for each change of side.
fn handovers(sections: &[Section]) -> Vec<(bool, bool, i64)> {
    sections
        .windows(2)
        .filter(|w| is_python(&w[0]) != is_python(&w[1]))
        .map(|w| {
            (
                is_python(&w[0]),
                is_python(&w[1]),
                (w[1].start - w[0].end) / 1_000_000,
            )
        })
        .collect()
}

/// Two Python lockers and two of this crate contend for one lock, each
/// holding it briefly and releasing: both sides hold it in turn, never
/// together, and a release hands over at once in both directions (the
/// Python side inserts as soon as the Rust side's release deleted the
/// document, without waiting for its TTL index).
#[test]
fn lock_fleet_takes_turns_across_languages() {
    let mut fleet = Fleet::new("lock");
    fleet.python("py-a", false);
    fleet.python("py-b", false);
    fleet.rust("rs-a", 50, 3, 100);
    fleet.rust("rs-b", 50, 3, 100);
    std::thread::sleep(Duration::from_secs(20));
    let sections = fleet.finish();
    let py = sections.iter().filter(|s| is_python(s)).count();
    let rs = sections.len() - py;
    let turns = handovers(&sections);
    let to_py: Vec<i64> = turns.iter().filter(|t| t.1).map(|t| t.2).collect();
    let to_rs: Vec<i64> = turns.iter().filter(|t| !t.1).map(|t| t.2).collect();
    println!("sections: {py} Python, {rs} Rust; Rust->Python gaps (ms) {to_py:?}; Python->Rust {to_rs:?}");
    assert!(py >= 3 && rs >= 3, "{py} Python and {rs} Rust sections");
    assert!(
        !to_py.is_empty() && !to_rs.is_empty(),
        "handovers {turns:?}"
    );
    // A released lock is taken within a few steps, never after a lease
    // (2 or 4 s) or the TTL monitor: the median handover is well under it.
    for gaps in [&to_py, &to_rs] {
        let mut sorted = gaps.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        assert!(median < 1000, "median handover {median} ms: {gaps:?}");
    }
}

/// A Python holder is SIGKILLed: a node of this crate takes the lock after
/// the holder's client-time `ts_expire` plus the takeover grace, never
/// before (the history check), and within ttl + grace + retry.
#[test]
fn lock_rust_takes_over_from_a_killed_python_holder() {
    let mut fleet = Fleet::new("lock");
    let db = fleet.database();
    let py = fleet.python("py", true);
    fleet.wait_holder(&db, py, Duration::from_secs(20));
    let rs = fleet.rust("rs", 50, 1_000_000, 100);
    std::thread::sleep(Duration::from_secs(3)); // the Rust node is waiting
    assert_eq!(fleet.holder(&db), Some(i64::from(py)), "Python still holds");
    let expires = fleet
        .document(&db)
        .get_datetime("ts_expire")
        .unwrap()
        .timestamp_millis();
    common::signal(py, "-KILL");
    let limit = Duration::from_secs(PY_TTL_S) + GRACE + SLACK;
    let took = fleet.wait_holder(&db, rs, limit);
    let doc = fleet.document(&db);
    let created = doc.get_datetime("ts_created").unwrap().timestamp_millis();
    println!("Rust took over {took:?} after the SIGKILL");
    assert!(
        created >= expires + GRACE.as_millis() as i64,
        "taken at {created}, before the Python expiry {expires} + grace"
    );
    assert!(doc.get_i64("fence").unwrap() > 0);
    fleet.finish();
}

/// A Rust holder is SIGKILLed: a Python node takes the lock once its own
/// TTL index removed the expired document, within ttl + the TTL monitor's
/// period + its step, never before the Rust lease expired.
#[test]
fn lock_python_takes_over_from_a_killed_rust_holder() {
    let mut fleet = Fleet::new("lock");
    let db = fleet.database();
    let rs = fleet.rust("rs", 50, 1_000_000, 100);
    fleet.wait_holder(&db, rs, Duration::from_secs(20));
    let py = fleet.python("py", true);
    std::thread::sleep(Duration::from_secs(3)); // the Python node is waiting
    let expires = fleet
        .document(&db)
        .get_datetime("ts_expire")
        .unwrap()
        .timestamp_millis();
    common::signal(rs, "-KILL");
    let limit = Duration::from_secs(RS_TTL_S) + TTL_MONITOR + MONITOR_SLACK;
    let took = fleet.wait_holder(&db, py, limit);
    let created = fleet
        .document(&db)
        .get_datetime("ts_created")
        .unwrap()
        .timestamp_millis();
    println!("Python took over {took:?} after the SIGKILL");
    assert!(
        created >= expires,
        "taken at {created}, before the Rust expiry {expires}"
    );
    fleet.finish();
}

/// Electors of both packages on one key, handing mastership over in both
/// directions by stopping (a release) and by SIGKILL:
/// Python master killed -> Rust within ttl + grace + retry;
/// Rust master stopped -> Python within its follower poll (the ttl);
/// Python master stopped -> Rust within its retry interval;
/// Rust master killed -> Python within ttl + TTL monitor + its poll.
#[test]
fn electors_hand_over_both_ways() {
    let mut fleet = Fleet::new("elector");
    let db = fleet.database();
    let retry = Duration::from_millis(400);
    let rust = |fleet: &mut Fleet, name: &str| fleet.rust(name, 400, 0, 100);
    // The Python follower's poll: its ttl.
    let poll = Duration::from_secs(PY_TTL_S);
    let rs_ttl = Duration::from_secs(RS_TTL_S);

    let p1 = fleet.python("py-1", true);
    fleet.wait_holder(&db, p1, Duration::from_secs(20));
    let r1 = rust(&mut fleet, "rs-1");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fleet.holder(&db),
        Some(i64::from(p1)),
        "Python stays master"
    );
    common::signal(p1, "-KILL");
    let killed_py = fleet.wait_holder(&db, r1, poll + GRACE + retry + SLACK);

    let p2 = fleet.python("py-2", true);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fleet.holder(&db), Some(i64::from(r1)), "Rust stays master");
    common::signal(r1, "-TERM");
    // Within its next poll; a poll whose clock check failed on a loaded
    // machine (Python compares clocks without allowing for the round trip)
    // is retried a poll later.
    let stopped_rs = fleet.wait_holder(&db, p2, 2 * poll + SLACK);

    let r2 = rust(&mut fleet, "rs-2");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fleet.holder(&db),
        Some(i64::from(p2)),
        "Python stays master"
    );
    common::signal(p2, "-TERM");
    let stopped_py = fleet.wait_holder(&db, r2, poll / 2 + retry + SLACK);

    let p3 = fleet.python("py-3", true);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fleet.holder(&db), Some(i64::from(r2)), "Rust stays master");
    common::signal(r2, "-KILL");
    let killed_rs = fleet.wait_holder(&db, p3, rs_ttl + TTL_MONITOR + 2 * poll + MONITOR_SLACK);

    println!(
        "Python killed -> Rust {killed_py:?}; Rust stopped -> Python {stopped_rs:?}; \
         Python stopped -> Rust {stopped_py:?}; Rust killed -> Python {killed_rs:?}"
    );
    let sections = fleet.finish();
    let turns = handovers(&sections);
    assert!(
        turns.iter().any(|t| t.0) && turns.iter().any(|t| t.1),
        "{turns:?}"
    );
}

/// Electors of both packages campaigning freely, each ending its terms on
/// purpose: terms on both sides, never two masters. (The Python followers
/// poll once a ttl, the Rust ones wake on the release: after the first
/// Python term, Rust nodes win most terms.)
#[test]
fn electors_take_turns_across_languages() {
    let mut fleet = Fleet::new("elector");
    let db = fleet.database();
    let first = fleet.python("py-a", false);
    fleet.wait_holder(&db, first, Duration::from_secs(20));
    fleet.python("py-b", false);
    // A retry interval that no Python poll period (the ttl, half of it for
    // a former leader) divides: with 2 s the Rust polls fell, run after
    // run, inside the Python terms, which won every term.
    fleet.rust("rs-a", 700, 3, 200);
    fleet.rust("rs-b", 700, 3, 200);
    std::thread::sleep(Duration::from_secs(25));
    let sections = fleet.finish();
    let py = sections.iter().filter(|s| is_python(s)).count();
    let rs = sections.len() - py;
    println!(
        "terms: {py} Python, {rs} Rust; handovers {:?}",
        handovers(&sections)
    );
    assert!(py >= 1 && rs >= 1, "{py} Python and {rs} Rust terms");
}
