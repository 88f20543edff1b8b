//! [`LockerBuilder`]: how a [`MongoLocker`] is configured and created, with
//! the defaults of the Python package.

use std::time::Duration;

use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::options::{acquire_options, lease_options, LeaseOptions};
use crate::foundation::single::core::{LockCore, Settings};
use crate::foundation::single::store::LockStore;
use crate::foundation::validate;
use crate::limits::{DEFAULT_LOCK_COLLECTION, DEFAULT_WAITER_LEASE};
use crate::lock::locker::MongoLocker;

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
    options: LeaseOptions,
    hold: Duration,
    python_compatible: bool,
    fair: bool,
}

impl LockerBuilder {
    acquire_options!(" let locker = mongoelector::MongoLocker::builder(\"jobs\", &db)");

    /// How long after an acquisition the lock stays unavailable to other
    /// lockers, however soon it is released (default zero; at most
    /// [`MAX_TTL`](crate::limits::MAX_TTL)): a run-once job that finished on one
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

    /// Whether waiting lockers are served in arrival order (default
    /// `true`).
    ///
    /// A fair locker that waits ([`lock`](MongoLocker::lock),
    /// [`try_lock_for`](MongoLocker::try_lock_for), a blocking
    /// [`acquire`](MongoLocker::acquire)) and finds the key taken puts
    /// itself in the key's queue, in the lock's own document and in the
    /// same round trip as the attempt. A free key is granted only to the
    /// head of the live queue, and a release hands the lock over to that
    /// head (still one round trip): the head learns it from the change
    /// stream, from the releaser when it is in the same process, or from
    /// its next refresh, and its own next attempt takes the lease (one
    /// round trip, the fence the release handed out). So waiters do not
    /// race, and none is overtaken by one that came later. A waiter
    /// refreshes its place every third of its
    /// [waiter lease](crate::limits::DEFAULT_WAITER_LEASE) (1.5 s); one
    /// that crashed or froze is skipped once its lease has passed, and a
    /// lock handed to a head that is gone is taken by the next after the
    /// waiter lease plus the takeover grace. A waiter that times out
    /// leaves the queue at once. Uncontended, a fair locker costs what an
    /// unfair one does: one round trip to acquire, one to release.
    ///
    /// `false` gives the racing waiters of earlier releases (each
    /// attempt takes a free key, queued waiters or not). With
    /// [`python_compatible(true)`](Self::python_compatible) waits do not
    /// queue: the release deletes the document (and any queue in it) for
    /// the Python nodes, which do not know the queue.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("jobs", &db)
    ///     .fair(false)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fair(mut self, on: bool) -> Self {
        self.fair = on;
        self
    }

    lease_options!(
        " let locker = mongoelector::MongoLocker::builder(\"jobs\", &db)",
        collection = "`\"mongolocker\"`, as in the Python package",
        timeparanoid = "true"
    );

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

    /// Checks the settings and creates the locker. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming `key`, `collection`, `ttl`, `step`,
    /// `takeover_grace`, `hold_at_least` or `metadata`.
    pub fn build(self) -> Result<MongoLocker> {
        let options = self.options;
        let collection = options.collection_or(DEFAULT_LOCK_COLLECTION);
        let grace = options.check(collection)?;
        validate::hold("hold_at_least", self.hold)?;
        let store = LockStore::new(&options.db, collection, grace)
            .python_compatible(self.python_compatible);
        let settings = Settings {
            ttl: options.ttl,
            step: options.step,
            timeparanoid: options.timeparanoid,
            change_streams: options.change_streams,
            keep_alive: options.keep_alive,
            hold: self.hold,
            owner: options.owner(),
            fair: (self.fair && !self.python_compatible).then_some(DEFAULT_WAITER_LEASE),
        };
        Ok(MongoLocker::from_core(LockCore::new(
            options.key,
            store,
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
            options: LeaseOptions::new(key, db),
            hold: Duration::ZERO,
            python_compatible: false,
            fair: true,
        }
    }
}
