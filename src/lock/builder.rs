//! [`LockerBuilder`]: how a [`MongoLocker`] is configured and created, with
//! the defaults of the Python package.

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::owner::Owner;
use crate::foundation::single::core::{LockCore, Settings};
use crate::foundation::single::store::LockStore;
use crate::foundation::validate;
use crate::lock::locker::MongoLocker;

/// Default lock collection, as in the Python package.
pub const DEFAULT_COLLECTION: &str = "mongolocker";
pub use crate::foundation::validate::{DEFAULT_STEP, DEFAULT_TTL};

/// Builds a [`MongoLocker`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use mongoelector::MongoLocker;
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let locker = MongoLocker::builder("nightly-report", &db)
///     .collection("locks")
///     .ttl(Duration::from_secs(30))
///     .timeparanoid(false)
///     .build()?;
/// assert_eq!(locker.ttl(), Duration::from_secs(30));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct LockerBuilder {
    key: String,
    db: Database,
    collection: String,
    ttl: Duration,
    step: Duration,
    timeparanoid: bool,
    change_streams: bool,
    grace: Option<Duration>,
    keep_alive: bool,
    hold: Duration,
    metadata: Option<Document>,
    python_compatible: bool,
}

impl LockerBuilder {
    /// Whether every acquisition of this locker (through a guard or
    /// [`acquire`](MongoLocker::acquire)) is renewed automatically until it
    /// is released (default `false`, as in the Python package).
    ///
    /// Renewals are due a third of the ttl after the last successful one
    /// (or the acquire) was *sent*, one round trip each, scheduled by one
    /// process-wide thread (`mongoelector-keepalive`) for every locker of
    /// the process and sent by one thread (`mongoelector-renew`). A failed renewal is retried (every tenth of the ttl,
    /// 10 ms to 1 s) until the local deadline; if none succeeds by then the
    /// acquisition is lost ([`LockGuard::lost`](crate::LockGuard::lost)
    /// says [`RenewalFailed`](crate::LossReason::RenewalFailed)).
    /// [`LockGuard::is_valid`](crate::LockGuard::is_valid) keeps answering
    /// from the local deadline, so it stays true exactly as long as
    /// renewals succeed. Renewals stuck on an unresponsive server hold up
    /// no other: when renewals have waited 200 ms with none sent or
    /// answered, each waiting one gets a sending thread (ending about 10 s
    /// after none is needed), so a due renewal goes out at most 200 ms
    /// (plus the start of a thread) late however many are stuck, and a
    /// stuck acquisition still ends at its deadline.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("rebuild-index", &db)
    ///     .ttl(Duration::from_secs(30)) // renewed every 10 s
    ///     .keep_alive(true)
    ///     .build()?;
    /// let guard = locker.lock()?;
    /// // ... work for as long as it takes, checking guard.is_valid() ...
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.keep_alive = on;
        self
    }

    /// How long after an acquisition the lock stays unavailable to other
    /// lockers, however soon it is released (default zero; at most
    /// [`MAX_TTL`](crate::MAX_TTL)): a run-once job that finished on one
    /// node is not run again by another node within `min`.
    ///
    /// A release of a live lock acquired less than `min` ago (in server
    /// time) keeps it taken by this locker until `ts_created + min`: the
    /// release writes that instant as `ts_expire`, still in one round trip.
    /// Until then [`locked`](MongoLocker::locked),
    /// [`get_current`](MongoLocker::get_current) and
    /// [`owned`](MongoLocker::owned) report it held by the releaser, and
    /// other lockers take it over once it has passed, plus the
    /// [takeover grace](Self::takeover_grace). This locker may retake it at
    /// once. The released guard is invalid from the release on; fences
    /// keep growing. A forced [`release(true)`](MongoLocker::release)
    /// frees the lock at once.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("daily-invoices", &db)
    ///     .hold_at_least(Duration::from_secs(3600))
    ///     .build()?;
    /// if let Some(guard) = locker.try_lock()? {
    ///     // ... send today's invoices: no other node does it within the hour ...
    ///     guard.release()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_at_least(mut self, min: Duration) -> Self {
        self.hold = min;
        self
    }

    /// A document written into the lock document (field `metadata`) with
    /// each acquisition, saying who holds the lock in the application's
    /// terms; readers get it back unchanged as
    /// [`LockInfo::metadata`](crate::LockInfo::metadata) (from
    /// [`get_current`](MongoLocker::get_current)) and
    /// [`LockStatus::lock_metadata`](crate::LockStatus::lock_metadata).
    /// An acquisition by a locker without metadata stores null.
    ///
    /// It must be storable as given: at most
    /// [`MAX_METADATA_BYTES`](crate::MAX_METADATA_BYTES) (16 KiB) as BSON,
    /// nested at most [`MAX_METADATA_DEPTH`](crate::MAX_METADATA_DEPTH)
    /// deep, with no key that is empty, starts with `$`, or contains `.` or
    /// NUL. Values may be anything, strings starting with `$` included.
    ///
    /// ```no_run
    /// use mongodb::bson::doc;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("nightly-report", &db)
    ///     .metadata(doc! { "job": "nightly-report", "worker": { "pod": "web-7" } })
    ///     .build()?;
    /// if let Some(info) = locker.get_current()? {
    ///     println!("held by {:?}", info.metadata);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metadata(mut self, doc: Document) -> Self {
        self.metadata = Some(doc);
        self
    }

    /// Whether a blocking acquire waits on a change stream of the lock
    /// collection, retrying as soon as the lock is released or changes
    /// hands (default `true`). Where the deployment has no change streams
    /// (a standalone server) it polls every step all the same; `false`
    /// always polls. One stream per process, deployment and collection
    /// serves every waiter of the lockers and electors made from one
    /// `Database` handle (or its clones): at most one thread and one open
    /// cursor, kept for up to 30 s after the last waiter and reused by the
    /// next. A process that never waits opens none.
    ///
    /// The first-use checks of a lock collection (`buildInfo`,
    /// `listIndexes`) are shared the same way: a daemon that makes a locker
    /// per job from one handle sends them once, then one round trip per
    /// operation.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// use mongodb::sync::Client;
    /// use mongoelector::MongoLocker;
    ///
    /// fn main() -> mongoelector::Result<()> {
    ///     let client = Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
    ///     let db = client.database("app"); // one handle for the process
    ///     for job in ["report", "cleanup", "backup"] {
    ///         let locker = MongoLocker::builder(job, &db)
    ///             .ttl(Duration::from_secs(60))
    ///             .change_streams(true)
    ///             .build()?;
    ///         if let Some(guard) = locker.try_lock_for(Duration::from_millis(200))? {
    ///             // ... the job ...
    ///             guard.release()?;
    ///         }
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn change_streams(mut self, on: bool) -> Self {
        self.change_streams = on;
        self
    }

    /// How long past its expiry (in server time) a lock must be before
    /// another locker may take it over (default
    /// [`lease_margin`](crate::lease_margin)`(ttl)`; at most one hour). It
    /// covers a primary whose clock is ahead of the member's that wrote the
    /// expiry (a failover, an NTP step): leases stay exclusive while the
    /// servers' clocks are within this much of each other. It delays the
    /// takeover of a dead holder's lock by as much.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("jobs", &db)
    ///     .takeover_grace(Duration::from_secs(2))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn takeover_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Whether this locker shares its keys with nodes of the Python
    /// package `mongoelector` 1.x (default `false`).
    ///
    /// Both write the same document (`_id` = key, `locked`, `uuid`, `host`,
    /// `pid`, `ts_created`, `ts_expire`), so each side reads the other's
    /// holder as held whatever this setting. The Python package takes a
    /// lock only by inserting its document, so this crate's default release
    /// (which keeps the document, marked free) leaves Python nodes waiting
    /// for their TTL index to remove it, up to a minute after its expiry.
    /// With `true`, a release deletes the document, and the `ts_expire`
    /// TTL index the Python nodes create is expected instead of warned
    /// about. Fences keep growing across the deletes: each acquisition
    /// also raises the key's fence floor, a document of its own that
    /// nothing deletes, and takes its fence from there (one more round trip
    /// per acquisition, two when the floor was ahead of the lock's document;
    /// see [the lock document](crate::guide::document)). A release costs
    /// one more round trip only when releasing an expired acquisition, or
    /// after a [hold](Self::hold_at_least). Fences grow across deletes only
    /// once every node of this crate on the key runs a version that keeps
    /// the floor.
    ///
    /// Set it on every node of this crate while any Python node may use the
    /// key, and use the Python package's collection: `"mongolocker"` (this
    /// crate's default too) for its `MongoLocker`.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("nightly-report", &db)
    ///     .python_compatible(true)
    ///     .build()?;
    /// let guard = locker.lock()?;
    /// guard.release()?; // deletes the document: a Python node can insert it now
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn python_compatible(mut self, on: bool) -> Self {
        self.python_compatible = on;
        self
    }

    /// The collection that holds the lock documents (default `"mongolocker"`).
    pub fn collection(mut self, name: &str) -> Self {
        self.collection = name.to_owned();
        self
    }

    /// How long an acquisition lasts unless renewed with
    /// [`touch`](MongoLocker::touch) (default 600 s; 100 ms to one year).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether acquire first checks that the local clock is within 0.5 s of
    /// the server's (default `true`). Safety never depends on it.
    pub fn timeparanoid(mut self, on: bool) -> Self {
        self.timeparanoid = on;
        self
    }

    /// The interval between attempts of [`lock`](MongoLocker::lock) and
    /// [`try_lock_for`](MongoLocker::try_lock_for) (default 250 ms; 1 ms to
    /// one hour). [`acquire`](MongoLocker::acquire) takes its own `step`.
    pub fn step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Checks the settings and creates the locker. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming `key`, `collection`, `ttl`, `step`,
    /// `takeover_grace`, `hold_at_least` or `metadata`.
    pub fn build(self) -> Result<MongoLocker> {
        let grace = validate::lease_settings(
            &self.key,
            &self.collection,
            self.ttl,
            self.step,
            self.grace,
            self.metadata.as_ref(),
        )?;
        validate::hold("hold_at_least", self.hold)?;
        let settings = Settings {
            ttl: self.ttl,
            step: self.step,
            timeparanoid: self.timeparanoid,
            change_streams: self.change_streams,
            keep_alive: self.keep_alive,
            hold: self.hold,
            owner: Owner::new().with_metadata(self.metadata),
        };
        Ok(MongoLocker::from_core(LockCore::new(
            self.key,
            LockStore::new(&self.db, &self.collection, grace)
                .python_compatible(self.python_compatible),
            settings,
        )))
    }
}

impl MongoLocker {
    /// A locker on `key` with the Python package's defaults: collection
    /// `"mongolocker"`, ttl 600 s, `timeparanoid` on. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when `key` is empty.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// assert_eq!(locker.key(), "jobs");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database) -> Result<MongoLocker> {
        Self::builder(key, db).build()
    }

    /// A builder for a locker on `key`; see [`LockerBuilder`](crate::LockerBuilder).
    pub fn builder(key: &str, db: &Database) -> LockerBuilder {
        LockerBuilder {
            key: key.to_owned(),
            db: db.clone(),
            collection: DEFAULT_COLLECTION.to_owned(),
            ttl: DEFAULT_TTL,
            step: DEFAULT_STEP,
            timeparanoid: true,
            change_streams: true,
            grace: None,
            keep_alive: false,
            hold: Duration::ZERO,
            metadata: None,
            python_compatible: false,
        }
    }
}
