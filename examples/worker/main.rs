//! A fault-injection worker: contends for a lock, a semaphore's permits or
//! a read-write lock, or runs an elector, on a key, and appends what it did
//! to a history log that
//! `tests/faults/checker.rs` checks. Used by `tests/faults.rs` and
//! `examples/soak.rs`; not an example of good application code.
//!
//! ```text
//! MONGODB_URI=... worker --mode lock|elector|semaphore|read|write --name NAME --key KEY --log FILE
//!        [--permits N] [--db D] [--threads N] [--ttl-ms MS] [--retry-ms MS] [--hold-ms MS]
//!        [--acts N] [--timeparanoid 0|1] [--grace-ms MS] [--check 0|1]
//!        [--python-compatible 0|1] [--collection NAME] [--keep-alive 0|1]
//! ```
//!
//! `--check 0` makes a lock holder write without checking validity first,
//! as a holder paused between its check and its write would: only the
//! server refuses its late writes.
//!
//! Each critical section (lock) or mastership term (elector) does up to
//! `--acts` fenced writes on the document `{_id: KEY}` of the `resource`
//! collection, through `guard.fenced(..)` or `elector.fenced(..)` (refused
//! when a greater fence is stored or the lease has expired in server time),
//! checking validity before each, and `--hold-ms` apart. Each write records
//! its server time (`$$NOW`) in the document's last 64 writes, read back
//! after it was accepted. Times are CLOCK_MONOTONIC nanoseconds, shared by
//! every process on the machine (run skewed workers with
//! FAKETIME_DONT_FAKE_MONOTONIC=1); `server`, `granted` are server
//! milliseconds (-1: not known). Log lines:
//!
//! ```text
//! write   w=.. key=.. fence=.. checked=NS sent=NS done=NS deadline=NS valid=0|1 accepted=0|1 probe=0|1 result=.. server=MS
//! grant   w=.. key=.. fence=.. granted=MS
//! section kind=lock|master w=.. key=.. fence=.. start=NS end=NS deadline=NS valid=0|1
//! error   w=.. key=.. kind=.. msg=...
//! ```
//!
//! `start` is when the holder learned it had won, `end` its last validity
//! check, `valid` that check's answer; a write's `valid` is the answer of
//! the check made at `checked`, and `granted` the lock's `ts_created` read
//! just after winning (when it still named this fence).
//!
//! A section that ends invalid makes one more "probe" write, to show that a
//! late holder's write is refused. SIGTERM or SIGINT ends the worker cleanly.
//!
//! `--mode semaphore` (one `MongoSemaphore` of `--permits` permits shared by
//! the process's threads), `--mode read` and `--mode write` (one
//! `MongoRwLock`, its threads all readers or all writers) hold each permit
//! or guard for `--acts` steps `--hold-ms` apart, checking validity before
//! each; a writer's steps are fenced writes as a lock holder's. Their lines:
//!
//! ```text
//! grant   w=.. key=.. fence=.. granted=MS
//! section kind=permit|read|write w=.. key=.. fence=.. start=NS end=NS deadline=NS valid=0|1 permits=N expires=MS asked=NS
//! ```
//!
//! where `end` is taken just before the release is sent (the holder stops
//! acting there), `granted` is the entry's `ts_created` in the key's
//! document, `expires` the lease's server expiry as the holder last knew
//! it, and `asked` when it began asking for this grant. An error's `kind` is the `Error` variant's name.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/faults/clock.rs"]
mod clock;

use chrono::{DateTime, Utc};
use clock::{instant_ns, mono_ns};
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::{
    Error, Event, Fenced, FencedWrite, MongoElector, MongoLocker, MongoRwLock, MongoSemaphore,
    Permit, ReadGuard, WriteGuard,
};
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
    /// Whether a lock holder checks `is_valid()` before each write.
    check: bool,
    /// A semaphore's permit count.
    permits: u32,
}

/// The process's one handle of a many-holder primitive, shared by its
/// threads.
#[derive(Clone)]
enum Shared {
    None,
    Semaphore(Arc<MongoSemaphore>),
    RwLock(Arc<MongoRwLock>),
}

/// A permit, a read guard or a write guard: what the section loop uses.
trait Share {
    fn fence(&self) -> i64;
    fn deadline(&self) -> Instant;
    fn is_valid(&self) -> bool;
    fn expires_at(&self) -> DateTime<Utc>;
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
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
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

fn resource(db: &Database) -> Collection<Document> {
    // Fenced writes use majority write concern on their own.
    db.collection("resource")
}

/// How many of the last writes the resource document keeps.
const KEPT_WRITES: i32 = 64;

struct Worker {
    name: String,
    cfg: Config,
    db: Database,
    resource: Collection<Document>,
    log: Arc<Mutex<File>>,
    stop: Arc<AtomicBool>,
    shared: Shared,
}

impl Worker {
    fn line(&self, text: String) {
        let mut f = self.log.lock();
        let _ = writeln!(f, "{text}");
        let _ = f.flush();
    }

    fn error(&self, e: &Error) {
        // The variant's name, as `Debug` prints it first.
        let debug = format!("{e:?}");
        let kind = debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .filter(|k| !k.is_empty())
            .unwrap_or("Other");
        let msg = e.to_string().replace('\n', " ");
        self.line(format!(
            "error w={} key={} kind={kind} msg={msg}",
            self.name, self.cfg.key
        ));
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One fenced write to the resource, recording `$$NOW` with a unique
    /// id in the document's last writes; an accepted one is read back for
    /// its server time.
    fn fenced_write(
        &self,
        fenced: &Fenced<'_, Document>,
        checked: i64,
        valid: bool,
        deadline: i64,
        probe: bool,
    ) {
        let wid = uuid::Uuid::new_v4().to_string();
        let entry = doc! { "wid": &wid, "fence": fenced.fence(), "at": "$$NOW" };
        let update = vec![doc! { "$set": {
            "by": &self.name,
            "writes": { "$add": [{ "$ifNull": ["$writes", 0] }, 1] },
            "log": { "$slice": [
                { "$concatArrays": [{ "$ifNull": ["$log", []] }, [entry]] },
                -KEPT_WRITES,
            ]},
        }}];
        let sent = mono_ns();
        let written = fenced.upsert_one(doc! { "_id": &self.cfg.key }, update);
        let done = mono_ns();
        let result = match written {
            Ok(r) => r,
            Err(e) => return self.error(&e),
        };
        let server = if result.applied() {
            self.server_time(&wid)
        } else {
            -1
        };
        let name = match result {
            FencedWrite::Applied { .. } => "applied",
            FencedWrite::Stale { .. } => "stale",
            FencedWrite::Expired => "expired",
            FencedWrite::NoMatch => "nomatch",
            _ => "other",
        };
        self.line(format!(
            "write w={} key={} fence={} checked={checked} sent={sent} done={done} deadline={deadline} valid={} accepted={} probe={} result={name} server={server}",
            self.name,
            self.cfg.key,
            fenced.fence(),
            valid as u8,
            result.applied() as u8,
            probe as u8
        ));
    }

    /// The server time of write `wid`, from the resource's last writes.
    fn server_time(&self, wid: &str) -> i64 {
        let Ok(Some(doc)) = self.resource.find_one(doc! { "_id": &self.cfg.key }).run() else {
            return -1;
        };
        let entries = doc.get_array("log").map(Vec::as_slice).unwrap_or_default();
        entries
            .iter()
            .filter_map(Bson::as_document)
            .find(|e| e.get_str("wid") == Ok(wid))
            .and_then(|e| e.get_datetime("at").ok())
            .map_or(-1, |at| at.timestamp_millis())
    }

    /// Logs the server time at which `fence` was granted on this key (the
    /// lock document's `ts_created`, while it still names that fence).
    fn grant(&self, fence: i64) {
        let locks = self.db.collection::<Document>("mongolocker");
        let granted = match locks.find_one(doc! { "_id": &self.cfg.key }).run() {
            Ok(Some(lock)) if lock.get_i64("fence") == Ok(fence) => lock
                .get_datetime("ts_created")
                .map_or(-1, |at| at.timestamp_millis()),
            _ => -1,
        };
        self.line(format!(
            "grant w={} key={} fence={fence} granted={granted}",
            self.name, self.cfg.key
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

    /// Logs the server time at which `fence` was granted on this key in a
    /// many-holder document (its entry's `ts_created`, while it is there).
    fn share_grant(&self, collection: &str, fence: i64) {
        let coll = self.db.collection::<Document>(collection);
        let granted = match coll.find_one(doc! { "_id": &self.cfg.key }).run() {
            Ok(Some(d)) => d
                .get_array("holders")
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Bson::as_document)
                .find(|h| h.get_i64("fence") == Ok(fence))
                .and_then(|h| h.get_datetime("ts_created").ok())
                .map_or(-1, |at| at.timestamp_millis()),
            _ => -1,
        };
        self.line(format!(
            "grant w={} key={} fence={fence} granted={granted}",
            self.name, self.cfg.key
        ));
    }

    /// Takes a permit, a read guard or a write guard (up to 500 ms).
    fn take(&self) -> Result<Option<Box<dyn Share>>, Error> {
        let wait = Duration::from_millis(500);
        Ok(match (&self.shared, self.cfg.mode.as_str()) {
            (Shared::Semaphore(s), _) => s.try_acquire_for(wait)?.map(|p| Box::new(p) as _),
            (Shared::RwLock(l), "read") => l.try_read_for(wait)?.map(|g| Box::new(g) as _),
            (Shared::RwLock(l), _) => l.try_write_for(wait)?.map(|g| Box::new(g) as _),
            (Shared::None, _) => None,
        })
    }

    /// The semaphore, reader and writer loop: take, hold for `--acts`
    /// steps (a writer's are fenced writes), release.
    fn sharer(&self) {
        let (kind, collection) = match self.cfg.mode.as_str() {
            "semaphore" => ("permit", "mongosemaphore"),
            "read" => ("read", "mongorwlock"),
            _ => ("write", "mongorwlock"),
        };
        let collection = self.cfg.collection.as_deref().unwrap_or(collection);
        while !self.stopping() {
            let asked = mono_ns();
            let held = match self.take() {
                Ok(Some(h)) => h,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e);
                    std::thread::sleep(self.cfg.retry);
                    continue;
                }
            };
            let (start, fence) = (mono_ns(), held.fence());
            self.share_grant(collection, fence);
            // The writer's lease as granted (no keep-alive in the soak).
            let fenced = Fenced::new(&self.resource, fence).until(held.expires_at());
            for i in 0..self.cfg.acts {
                let checked = mono_ns();
                let deadline = instant_ns(held.deadline());
                if !held.is_valid() || self.stopping() {
                    break;
                }
                if kind == "write" {
                    self.fenced_write(&fenced, checked, true, deadline, false);
                }
                if i + 1 < self.cfg.acts {
                    std::thread::sleep(self.cfg.hold);
                }
            }
            let valid = held.is_valid();
            let deadline = instant_ns(held.deadline());
            let expires = held.expires_at().timestamp_millis();
            // The holder stops acting here, before the release is sent:
            // another may be granted the share before the answer is back.
            let end = mono_ns();
            self.line(format!(
                "section kind={kind} w={} key={} fence={fence} start={start} end={end} deadline={deadline} valid={} permits={} expires={expires} asked={asked}",
                self.name,
                self.cfg.key,
                valid as u8,
                if kind == "permit" { self.cfg.permits } else { 0 },
            ));
            if let Err(e) = held.release() {
                self.error(&e);
            }
            std::thread::sleep(self.cfg.retry); // let the others in
        }
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
            self.grant(fence);
            let fenced = guard.fenced(&self.resource);
            for i in 0..self.cfg.acts {
                let checked = mono_ns();
                let deadline = instant_ns(guard.deadline());
                if (self.cfg.check && !guard.is_valid()) || self.stopping() {
                    break;
                }
                self.fenced_write(&fenced, checked, self.cfg.check, deadline, false);
                if i + 1 < self.cfg.acts {
                    std::thread::sleep(self.cfg.hold);
                }
            }
            let valid = guard.is_valid();
            let deadline = instant_ns(guard.deadline());
            self.section("lock", fence, start, valid, deadline);
            if !valid {
                self.fenced_write(&fenced, mono_ns(), false, deadline, true);
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
            let (fence, expires) = match events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::BecameMaster { fence, expires }) => (fence, expires),
                Ok(Event::PollFailed { error }) => {
                    self.error(&error);
                    continue;
                }
                _ => continue,
            };
            let start = mono_ns();
            self.grant(fence);
            // The term's fenced writes; a term already over (its probe
            // write) under its fence and the expiry it was granted.
            let fenced = elector
                .fenced(&self.resource)
                .ok()
                .filter(|f| f.fence() == fence)
                .unwrap_or_else(|| Fenced::new(&self.resource, fence).until(expires));
            let mut acts = 0;
            let mut last_deadline = -1;
            // Whether this event's term is still the elector's: an event
            // read late (the worker paused with events queued) names a term
            // that is over, and the lease deadline then is a newer term's.
            // Checked after reading the deadline: fences only grow.
            let current = || {
                elector
                    .fenced(&self.resource)
                    .is_ok_and(|f| f.fence() == fence)
            };
            loop {
                let checked = mono_ns();
                let Some(deadline) = elector.lease_deadline().map(instant_ns) else {
                    break;
                };
                if !current() {
                    break;
                }
                last_deadline = deadline;
                if self.stopping() || !elector.is_master() {
                    break;
                }
                self.fenced_write(&fenced, checked, true, deadline, false);
                acts += 1;
                if self.cfg.acts > 0 && acts >= self.cfg.acts {
                    break; // end the term on purpose, so terms change hands
                }
                std::thread::sleep(self.cfg.hold);
            }
            let deadline = match elector.lease_deadline() {
                Some(d) if current() => instant_ns(d),
                _ => last_deadline,
            };
            let valid = elector.is_master() && current();
            self.section("master", fence, start, valid, deadline);
            if valid {
                if let Err(e) = elector.release() {
                    self.error(&e);
                }
                std::thread::sleep(self.cfg.retry * 2); // let another win
            } else {
                self.fenced_write(&fenced, mono_ns(), false, deadline, true);
            }
        }
        if let Err(e) = elector.stop() {
            self.error(&e);
        }
    }
}
