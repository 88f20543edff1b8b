//! A fault-injection worker: contends for a lock, a semaphore's permits or
//! a read-write lock, or runs an elector, on a key, and appends what it did
//! to a history log that `tests/harness/checker/` checks. Used by
//! `tests/faults.rs`, the semaphore, read-write lock and Python-fleet
//! tests and `examples/soak/`; not an example of good application code.
//!
//! ```text
//! MONGODB_URI=... worker --mode lock|elector|semaphore|read|write --name NAME --key KEY --log FILE
//!        [--permits N] [--db D] [--threads N] [--ttl-ms MS] [--retry-ms MS] [--hold-ms MS]
//!        [--acts N] [--timeparanoid 0|1] [--grace-ms MS] [--check 0|1]
//!        [--python-compatible 0|1] [--collection NAME] [--keep-alive 0|1] [--fair 0|1]
//! ```
//!
//! `--fair 0` makes a lock mode's locker a racing one (default: fair).
//!
//! `--check 0` makes a lock holder write without checking validity first,
//! as a holder paused between its check and its write would: only the
//! server refuses its late writes.
//!
//! Each critical section (lock) or mastership term (elector) does up to
//! `--acts` fenced writes on the document `{_id: KEY}` of the `resource`
//! collection, through `guard.fenced(..)` or `elector.fenced(..)` (refused
//! when a greater fence is stored or the lease has expired in server time),
//! checking validity before each, and `--hold-ms` apart. Each write appends
//! `{wid, fence, at: $$NOW, w}` to the document's `log` (its last 64
//! writes; the auditor of `tests/harness/recorder/` merges them over the
//! run, and the checker takes each write's server time from there).
//! `--mode semaphore` (one `MongoSemaphore` of `--permits` permits shared
//! by the process's threads), `--mode read` and `--mode write` (one
//! `MongoRwLock`, its threads all readers or all writers) hold each permit
//! or guard for `--acts` steps `--hold-ms` apart, checking validity before
//! each; a writer's steps are fenced writes as a lock holder's.
//!
//! Times are CLOCK_MONOTONIC nanoseconds, shared by every process on the
//! machine (run skewed workers with FAKETIME_DONT_FAKE_MONOTONIC=1);
//! `granted`, `expires` are server milliseconds (-1: not known; a write's
//! `server` is always -1 here, see above).
//! Log lines:
//!
//! ```text
//! grant   w=.. key=.. kind=.. fence=.. uuid=.. granted=MS start=NS
//! check   w=.. key=.. kind=.. fence=.. at=NS deadline=NS valid=0|1
//! write   w=.. key=.. fence=.. wid=.. checked=NS sent=NS done=NS deadline=NS valid=0|1 accepted=0|1 probe=0|1 result=.. server=MS attempts=N
//! lost    w=.. key=.. fence=.. at=NS reason=..
//! section kind=lock|master w=.. key=.. fence=.. start=NS end=NS deadline=NS valid=0|1
//! section kind=permit|read|write w=.. key=.. fence=.. start=NS end=NS deadline=NS valid=0|1 permits=N expires=MS asked=NS
//! release w=.. key=.. fence=.. sent=NS done=NS|-1 result=pending|ok|error
//! error   w=.. key=.. kind=.. msg=...
//! ```
//!
//! - `grant`: `start` is when the holder learned it had won, `granted` the
//!   grant's `ts_created` in the document it uses (read just after
//!   winning, while the document still names that fence), `uuid` the
//!   owner identity there (the locker's or elector's, a share's token).
//! - `check`: every validity check (`is_valid()`, `is_master()`); `at` is
//!   taken before the call and `deadline`, the local deadline, read
//!   between the two (a master's only while the event's term is current).
//! - `write`: every attempt, `result=error` when no answer came (the
//!   outcome is unknown); `valid` is the answer of the check at `checked`;
//!   `attempts` how many times the driver sent it (2: it retried after a
//!   network error, the answer being the retry's).
//! - `lost`: the holding's `lost()` receiver reported a loss, seen at `at`.
//! - `section`: from `start` to `end`, the last validity check (just
//!   before the release is sent: the holder stops acting there), `valid`
//!   its answer; `expires` the lease's server expiry as the holder last
//!   knew it, `asked` when it began asking for this grant.
//! - `release`: written before sending (`done=-1 result=pending`) and
//!   after the answer; an elector's `stop()` releases its last term's
//!   fence too.
//!
//! A lock or master section that ends invalid makes one more "probe"
//! write, to show that a late holder's write is refused. SIGTERM or SIGINT
//! ends the worker cleanly. An error's `kind` is the `Error` variant's
//! name.

use std::fs::OpenOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../tests/harness/clock.rs"]
mod clock;
mod log;
mod roles;

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use mongodb::bson::Document;
use mongodb::sync::{Collection, Database};
use mongoelector::{Error, LossReason, MongoRwLock, MongoSemaphore, Permit, ReadGuard, WriteGuard};
use parking_lot::Mutex;

use log::Worker;

#[derive(Clone)]
pub struct Config {
    pub mode: String,
    pub name: String,
    pub key: String,
    pub db: String,
    pub threads: usize,
    pub ttl: Duration,
    pub retry: Duration,
    pub hold: Duration,
    pub acts: usize,
    pub timeparanoid: bool,
    /// The takeover grace (the crate's default when not given).
    pub grace: Option<Duration>,
    /// Shares the key with nodes of the Python package.
    pub python_compatible: bool,
    /// The lock collection (the builder's default when not given).
    pub collection: Option<String>,
    /// Renews lock sections automatically (a long job).
    pub keep_alive: bool,
    /// Lock mode: a fair locker (queued) or a racing one.
    pub fair: bool,
    /// Whether a lock holder checks `is_valid()` before each write.
    pub check: bool,
    /// A semaphore's permit count.
    pub permits: u32,
}

/// The process's one handle of a many-holder primitive, shared by its
/// threads.
#[derive(Clone)]
pub enum Shared {
    None,
    Semaphore(Arc<MongoSemaphore>),
    RwLock(Arc<MongoRwLock>),
}

/// A permit, a read guard or a write guard: what the section loop uses.
pub trait Share {
    fn fence(&self) -> i64;
    fn deadline(&self) -> Instant;
    fn is_valid(&self) -> bool;
    fn expires_at(&self) -> DateTime<Utc>;
    fn lost(&self) -> Receiver<LossReason>;
    fn release(self: Box<Self>) -> Result<(), Error>;
}

macro_rules! share {
    ($t:ty) => {
        impl Share for $t {
            fn fence(&self) -> i64 {
                <$t>::fence(self)
            }
            fn deadline(&self) -> Instant {
                <$t>::deadline(self)
            }
            fn is_valid(&self) -> bool {
                <$t>::is_valid(self)
            }
            fn expires_at(&self) -> DateTime<Utc> {
                <$t>::expires_at(self)
            }
            fn lost(&self) -> Receiver<LossReason> {
                <$t>::lost(self)
            }
            fn release(self: Box<Self>) -> Result<(), Error> {
                <$t>::release(*self)
            }
        }
    };
}

share!(Permit);
share!(ReadGuard);
share!(WriteGuard);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = Config {
        mode: "lock".into(),
        name: format!("p{}", std::process::id()),
        key: "faults".into(),
        db: "faults".into(),
        threads: 1,
        ttl: Duration::from_secs(1),
        retry: Duration::from_millis(50),
        hold: Duration::from_millis(100),
        acts: 3,
        timeparanoid: false,
        grace: None,
        python_compatible: false,
        collection: None,
        keep_alive: false,
        fair: true,
        check: true,
        permits: 3,
    };
    let mut log_path = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("flag without value: {pair:?}").into());
        };
        let ms = || value.parse::<u64>().map(Duration::from_millis);
        match flag.as_str() {
            "--mode" => cfg.mode = value.clone(),
            "--name" => cfg.name = value.clone(),
            "--key" => cfg.key = value.clone(),
            "--db" => cfg.db = value.clone(),
            "--log" => log_path = Some(value.clone()),
            "--threads" => cfg.threads = value.parse()?,
            "--ttl-ms" => cfg.ttl = ms()?,
            "--retry-ms" => cfg.retry = ms()?,
            "--hold-ms" => cfg.hold = ms()?,
            "--acts" => cfg.acts = value.parse()?,
            "--timeparanoid" => cfg.timeparanoid = value == "1",
            "--grace-ms" => cfg.grace = Some(ms()?),
            "--python-compatible" => cfg.python_compatible = value == "1",
            "--collection" => cfg.collection = Some(value.clone()),
            "--keep-alive" => cfg.keep_alive = value == "1",
            "--fair" => cfg.fair = value == "1",
            "--check" => cfg.check = value == "1",
            "--permits" => cfg.permits = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let log_path = log_path.ok_or("--log is required")?;
    let log = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?,
    ));
    let uri = std::env::var("MONGODB_URI").map_err(|_| "MONGODB_URI is not set")?;
    let client = log::counting_client(&uri)?;
    let db = client.database(&cfg.db);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))?;
    }
    let shared = match share(&cfg, &db) {
        Ok(shared) => shared,
        Err(e) => {
            let w = Worker {
                name: format!("{}t0", cfg.name),
                resource: resource(&db),
                cfg: cfg.clone(),
                db: db.clone(),
                log: log.clone(),
                stop: stop.clone(),
                shared: Shared::None,
            };
            w.error(&e);
            return Ok(());
        }
    };
    let threads: Vec<_> = (0..cfg.threads)
        .map(|i| {
            let (cfg, db, log, stop) = (cfg.clone(), db.clone(), log.clone(), stop.clone());
            let shared = shared.clone();
            std::thread::spawn(move || {
                let w = Worker {
                    name: format!("{}t{i}", cfg.name),
                    resource: resource(&db),
                    cfg,
                    db,
                    log,
                    stop,
                    shared,
                };
                match w.cfg.mode.as_str() {
                    "elector" => w.elector(),
                    "semaphore" | "read" | "write" => w.sharer(),
                    _ => w.locker(),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "worker thread panicked")?;
    }
    Ok(())
}

/// The process's semaphore or read-write lock, for those modes.
fn share(cfg: &Config, db: &Database) -> Result<Shared, Error> {
    match cfg.mode.as_str() {
        "semaphore" => {
            let mut b = MongoSemaphore::builder(&cfg.key, db, cfg.permits)
                .ttl(cfg.ttl)
                .step(cfg.retry)
                .timeparanoid(cfg.timeparanoid)
                .keep_alive(cfg.keep_alive);
            if let Some(grace) = cfg.grace {
                b = b.takeover_grace(grace);
            }
            if let Some(name) = &cfg.collection {
                b = b.collection(name);
            }
            Ok(Shared::Semaphore(Arc::new(b.build()?)))
        }
        "read" | "write" => {
            let mut b = MongoRwLock::builder(&cfg.key, db)
                .ttl(cfg.ttl)
                .step(cfg.retry)
                .timeparanoid(cfg.timeparanoid)
                .keep_alive(cfg.keep_alive);
            if let Some(grace) = cfg.grace {
                b = b.takeover_grace(grace);
            }
            if let Some(name) = &cfg.collection {
                b = b.collection(name);
            }
            Ok(Shared::RwLock(Arc::new(b.build()?)))
        }
        _ => Ok(Shared::None),
    }
}

pub fn resource(db: &Database) -> Collection<Document> {
    // Fenced writes use majority write concern on their own.
    db.collection("resource")
}

/// How many of the last writes the resource document keeps.
pub const KEPT_WRITES: i32 = 64;
