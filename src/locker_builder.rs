//! [`LockerBuilder`]: how a [`MongoLocker`] is configured and created, with
//! the defaults of the Python package.

use std::time::Duration;

use mongodb::sync::Database;

use crate::error::Result;
use crate::lock_core::LockCore;
use crate::locker::MongoLocker;
use crate::store::LockStore;
use crate::validate;

/// Default lock collection, as in the Python package.
pub const DEFAULT_COLLECTION: &str = "mongolocker";
/// Default lease length, as in the Python package.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default interval between attempts of a blocking acquire, as in the Python package.
pub const DEFAULT_STEP: Duration = Duration::from_millis(250);

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
}

impl LockerBuilder {
    /// Whether a blocking acquire waits on a change stream of the lock
    /// collection, retrying as soon as the lock is released or changes
    /// hands (default `true`). Where the deployment has no change streams
    /// (a standalone server) it polls every step all the same; `false`
    /// always polls. One stream per process and collection serves every
    /// waiter; a process that never waits opens none.
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
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming `key`, `collection`, `ttl`, `step` or `takeover_grace`.
    pub fn build(self) -> Result<MongoLocker> {
        validate::key(&self.key)?;
        validate::collection("collection", &self.collection)?;
        validate::ttl("ttl", self.ttl)?;
        validate::step("step", self.step)?;
        let grace = self.grace.unwrap_or_else(|| crate::lease_margin(self.ttl));
        validate::grace("takeover_grace", grace)?;
        Ok(MongoLocker::from_core(LockCore::new(
            self.key,
            LockStore::new(&self.db, &self.collection, grace),
            self.ttl,
            self.step,
            self.timeparanoid,
            self.change_streams,
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
        }
    }
}
