//! A fault-injection worker: contends for a lock, or runs an elector, on a
//! key, and appends what it did to a history log that
//! `tests/faults/checker.rs` checks. Used by `tests/faults.rs` and
//! `examples/soak.rs`; not an example of good application code.
//!
//! ```text
//! MONGODB_URI=... worker --mode lock|elector --name NAME --key KEY --log FILE
//!        [--db D] [--threads N] [--ttl-ms MS] [--retry-ms MS] [--hold-ms MS]
//!        [--acts N] [--timeparanoid 0|1] [--grace-ms MS]
//!        [--python-compatible 0|1] [--collection NAME] [--keep-alive 0|1]
//! ```
//!
//! Each critical section (lock) or mastership term (elector) does up to
//! `--acts` fenced writes on the document `{_id: KEY}` of the `resource`
//! collection (accepted only if its stored fence is not greater), checking
//! validity before each, and `--hold-ms` apart. Times are CLOCK_MONOTONIC
//! nanoseconds, shared by every process on the machine (run skewed workers
//! with FAKETIME_DONT_FAKE_MONOTONIC=1). Log lines:
//!
//! ```text
//! write   w=.. key=.. fence=.. checked=NS sent=NS done=NS deadline=NS accepted=0|1 probe=0|1
//! section kind=lock|master w=.. key=.. fence=.. start=NS end=NS deadline=NS valid=0|1
//! error   w=.. key=.. kind=.. msg=...
//! ```
//!
//! `start` is when the holder learned it had won, `end` its last validity
//! check, `valid` that check's answer.
//!
//! A section that ends invalid makes one more "probe" write, to show that a
//! late holder's write is refused. SIGTERM or SIGINT ends the worker cleanly.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::options::{Acknowledgment, CollectionOptions, WriteConcern};
use mongodb::sync::{Collection, Database};
use mongoelector::{Error, Event, MongoElector, MongoLocker};
use parking_lot::Mutex;

#[derive(Clone)]
struct Config {
    mode: String,
    name: String,
    key: String,
    db: String,
    threads: usize,
    ttl: Duration,
    retry: Duration,
    hold: Duration,
    acts: usize,
    timeparanoid: bool,
    /// The takeover grace (the crate's default when not given).
    grace: Option<Duration>,
    /// Shares the key with nodes of the Python package.
    python_compatible: bool,
    /// The lock collection (the builder's default when not given).
    collection: Option<String>,
    /// Renews lock sections automatically (a long job).
    keep_alive: bool,
}

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
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    let db = client.database(&cfg.db);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))?;
    }
    let threads: Vec<_> = (0..cfg.threads)
        .map(|i| {
            let (cfg, db, log, stop) = (cfg.clone(), db.clone(), log.clone(), stop.clone());
            std::thread::spawn(move || {
                let w = Worker {
                    name: format!("{}t{i}", cfg.name),
                    resource: resource(&db),
                    cfg,
                    db,
                    log,
                    stop,
                };
                match w.cfg.mode.as_str() {
                    "elector" => w.elector(),
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

fn resource(db: &Database) -> Collection<Document> {
    let majority = WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build();
    db.collection_with_options(
        "resource",
        CollectionOptions::builder().write_concern(majority).build(),
    )
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        _ => false,
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process here.
fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// An `Instant` (CLOCK_MONOTONIC on Linux) as `mono_ns` nanoseconds.
fn instant_ns(at: Instant) -> i64 {
    let (now, now_ns) = (Instant::now(), mono_ns());
    match at.checked_duration_since(now) {
        Some(ahead) => now_ns + ahead.as_nanos() as i64,
        None => now_ns - now.duration_since(at).as_nanos() as i64,
    }
}

struct Worker {
    name: String,
    cfg: Config,
    db: Database,
    resource: Collection<Document>,
    log: Arc<Mutex<File>>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn line(&self, text: String) {
        let mut f = self.log.lock();
        let _ = writeln!(f, "{text}");
        let _ = f.flush();
    }

    fn error(&self, e: &Error) {
        let kind = match e {
            Error::ClockSkew { .. } => "ClockSkew",
            Error::Database(_) => "Database",
            Error::MalformedDocument { .. } => "MalformedDocument",
            _ => "Other",
        };
        let msg = e.to_string().replace('\n', " ");
        self.line(format!(
            "error w={} key={} kind={kind} msg={msg}",
            self.name, self.cfg.key
        ));
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Writes `fence` to the resource unless a greater fence is stored.
    fn fenced_write(&self, fence: i64, checked: i64, deadline: i64, probe: bool) {
        let filter = doc! { "_id": &self.cfg.key, "$or": [
            { "fence": { "$lte": fence } }, { "fence": { "$exists": false } },
        ]};
        let update = doc! { "$set": { "fence": fence, "by": &self.name }, "$inc": { "writes": 1 } };
        let sent = mono_ns();
        let accepted = match self.resource.update_one(filter, update).upsert(true).run() {
            Ok(_) => true,
            // The filter did not match the existing document: a greater fence is stored.
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => {
                self.error(&Error::from(e));
                return;
            }
        };
        self.line(format!(
            "write w={} key={} fence={fence} checked={checked} sent={sent} done={} deadline={deadline} accepted={} probe={}",
            self.name,
            self.cfg.key,
            mono_ns(),
            accepted as u8,
            probe as u8
        ));
    }

    fn section(&self, kind: &str, fence: i64, start: i64, valid: bool, deadline: i64) {
        self.line(format!(
            "section kind={kind} w={} key={} fence={fence} start={start} end={} deadline={deadline} valid={}",
            self.name,
            self.cfg.key,
            mono_ns(),
            valid as u8
        ));
    }

    fn locker(&self) {
        let mut builder = MongoLocker::builder(&self.cfg.key, &self.db)
            .ttl(self.cfg.ttl)
            .step(self.cfg.retry)
            .timeparanoid(self.cfg.timeparanoid)
            .python_compatible(self.cfg.python_compatible)
            .keep_alive(self.cfg.keep_alive);
        if let Some(grace) = self.cfg.grace {
            builder = builder.takeover_grace(grace);
        }
        if let Some(name) = &self.cfg.collection {
            builder = builder.collection(name);
        }
        let locker = match builder.build() {
            Ok(l) => l,
            Err(e) => return self.error(&e),
        };
        while !self.stopping() {
            let guard = match locker.try_lock_for(Duration::from_millis(500)) {
                Ok(Some(g)) => g,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e);
                    std::thread::sleep(self.cfg.retry);
                    continue;
                }
            };
            let (start, fence) = (mono_ns(), guard.fence());
            for i in 0..self.cfg.acts {
                let checked = mono_ns();
                let deadline = instant_ns(guard.deadline());
                if !guard.is_valid() || self.stopping() {
                    break;
                }
                self.fenced_write(fence, checked, deadline, false);
                if i + 1 < self.cfg.acts {
                    std::thread::sleep(self.cfg.hold);
                }
            }
            let valid = guard.is_valid();
            let deadline = instant_ns(guard.deadline());
            self.section("lock", fence, start, valid, deadline);
            if !valid {
                self.fenced_write(fence, mono_ns(), deadline, true);
            }
            if let Err(e) = guard.release() {
                self.error(&e);
            }
            std::thread::sleep(self.cfg.retry); // let the others in
        }
    }

    fn elector(&self) {
        let mut builder = MongoElector::builder(&self.cfg.key, &self.db)
            .ttl(self.cfg.ttl)
            .retry_interval(self.cfg.retry)
            .timeparanoid(self.cfg.timeparanoid)
            .python_compatible(self.cfg.python_compatible);
        if let Some(grace) = self.cfg.grace {
            builder = builder.takeover_grace(grace);
        }
        if let Some(name) = &self.cfg.collection {
            builder = builder.collection(name);
        }
        let elector = match builder.app_version(&self.name).build() {
            Ok(e) => e,
            Err(e) => return self.error(&e),
        };
        let events = elector.events();
        if let Err(e) = elector.start(false) {
            return self.error(&e);
        }
        while !self.stopping() {
            let fence = match events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::BecameMaster { fence, .. }) => fence,
                Ok(Event::PollFailed { error }) => {
                    self.error(&error);
                    continue;
                }
                _ => continue,
            };
            let start = mono_ns();
            let mut acts = 0;
            let mut last_deadline = -1;
            loop {
                let checked = mono_ns();
                let Some(deadline) = elector.lease_deadline().map(instant_ns) else {
                    break;
                };
                last_deadline = deadline;
                if self.stopping() || !elector.is_master() {
                    break;
                }
                self.fenced_write(fence, checked, deadline, false);
                acts += 1;
                if self.cfg.acts > 0 && acts >= self.cfg.acts {
                    break; // end the term on purpose, so terms change hands
                }
                std::thread::sleep(self.cfg.hold);
            }
            let deadline = elector.lease_deadline().map_or(last_deadline, instant_ns);
            let valid = elector.is_master();
            self.section("master", fence, start, valid, deadline);
            if valid {
                if let Err(e) = elector.release() {
                    self.error(&e);
                }
                std::thread::sleep(self.cfg.retry * 2); // let another win
            } else {
                self.fenced_write(fence, mono_ns(), deadline, true);
            }
        }
        if let Err(e) = elector.stop() {
            self.error(&e);
        }
    }
}
