//! [`ElectorBuilder`]: how a [`MongoElector`] is configured and created,
//! with the defaults of the Python package.

use std::time::Duration;

use mongodb::sync::Database;

use super::engine::{Engine, Settings};
use super::handle::MongoElector;
use super::status::DEFAULT_STATUS_COLLECTION;
use super::status_store::StatusStore;
use crate::error::{Error, Result};
use crate::foundation::single::store::LockStore;
use crate::foundation::validate;
use crate::lock::builder::DEFAULT_COLLECTION;

/// Default lease length of the election lock, as in the Python package.
pub const DEFAULT_ELECTOR_TTL: Duration = Duration::from_secs(15);

/// The lock collection of the Python package's elector
/// (`MongoLeaderElector` 1.x): the default lock collection of an elector
/// built with [`ElectorBuilder::python_compatible`].
pub const PYTHON_ELECTOR_COLLECTION: &str = "elector.locks";

/// The followers' default retry interval for a ttl: a fifth of it, at most
/// 5 s (3 s for the default 15 s ttl). A dead master is replaced within
/// `ttl + retry interval` (plus one round trip); a stopped one within the
/// retry interval.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mongoelector::default_retry_interval(Duration::from_secs(15)), Duration::from_secs(3));
/// assert_eq!(mongoelector::default_retry_interval(Duration::from_secs(600)), Duration::from_secs(5));
/// ```
pub fn default_retry_interval(ttl: Duration) -> Duration {
    (ttl / 5).min(Duration::from_secs(5))
}

/// Builds a [`MongoElector`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use mongoelector::MongoElector;
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let elector = MongoElector::builder("scheduler", &db)
///     .ttl(Duration::from_secs(10))
///     .retry_interval(Duration::from_secs(1))
///     .app_version(env!("CARGO_PKG_VERSION"))
///     .report_status(true)
///     .build()?;
/// assert_eq!(elector.poll_wait(), Duration::from_secs(1)); // a follower until elected
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ElectorBuilder {
    key: String,
    db: Database,
    ttl: Duration,
    retry: Option<Duration>,
    grace: Option<Duration>,
    app_version: Option<String>,
    metadata: Option<mongodb::bson::Document>,
    report_status: bool,
    timeparanoid: bool,
    change_streams: bool,
    /// `None`: the default for the compatibility setting.
    collection: Option<String>,
    status_collection: String,
    python_compatible: bool,
}

impl ElectorBuilder {
    /// The election lock's lease (default 15 s; 100 ms to one year). A dead
    /// master is replaced after at most about this long.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How often a follower tries to take the lock (default
    /// [`default_retry_interval`]`(ttl)`; at least 1 ms, at most the ttl).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry = Some(interval);
        self
    }

    /// The application's version, included in status reports.
    pub fn app_version(mut self, version: &str) -> Self {
        self.app_version = Some(version.to_owned());
        self
    }

    /// A document this node publishes: written into the lock document
    /// (field `metadata`) while it is master, and into its status reports,
    /// so that [`observe`](crate::MongoElector::observe), the master in
    /// [`cluster_detail`](crate::MongoElector::cluster_detail) and each of
    /// its members carry it: the master's address for its clients, say. The
    /// limits of [`LockerBuilder::metadata`](crate::LockerBuilder::metadata)
    /// apply, checked at `build()`.
    ///
    /// ```no_run
    /// use mongodb::bson::doc;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::builder("scheduler", &db)
    ///     .metadata(doc! { "address": "10.0.0.7:8080" })
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metadata(mut self, doc: mongodb::bson::Document) -> Self {
        self.metadata = Some(doc);
        self
    }

    /// Whether this node upserts its status into the status collection
    /// (default `true`): the elector thread does on each change of role
    /// and every ttl or two, a manual [`poll`](crate::MongoElector::poll)
    /// each time. A report counts as a live member for three ttls.
    pub fn report_status(mut self, on: bool) -> Self {
        self.report_status = on;
        self
    }

    /// Whether a follower's poll first checks that the local clock is within
    /// 0.5 s of the server's (default `false`: the Python elector has no such
    /// switch; when on, the check is one extra `hello` on the first poll and
    /// then every 10 minutes). Safety never depends on it.
    pub fn timeparanoid(mut self, on: bool) -> Self {
        self.timeparanoid = on;
        self
    }

    /// Whether followers wait on a change stream of the lock collection and
    /// try at once when the master releases the lock or it changes hands
    /// (default `true`), and otherwise at the retry interval, or just after
    /// the master's lease expires when that comes first. Where the
    /// deployment has no change streams (a standalone server) they poll all
    /// the same; `false` always polls. One stream per process, deployment
    /// and collection serves the electors and lockers made from one
    /// `Database` handle (or its clones).
    pub fn change_streams(mut self, on: bool) -> Self {
        self.change_streams = on;
        self
    }

    /// How long past the master's expiry (in server time) the election
    /// lock must be before a follower may take it (default
    /// [`lease_margin`](crate::lease_margin)`(ttl)`; at most one hour): it
    /// keeps masters from overlapping when a new primary's clock is ahead
    /// by up to this much, and delays a dead master's replacement by as
    /// much. See [`LockerBuilder::takeover_grace`](crate::LockerBuilder::takeover_grace).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::builder("scheduler", &db)
    ///     .takeover_grace(Duration::from_secs(2))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn takeover_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// The lock collection (default `"mongolocker"`, or
    /// [`PYTHON_ELECTOR_COLLECTION`] with
    /// [`python_compatible`](Self::python_compatible)).
    pub fn collection(mut self, name: &str) -> Self {
        self.collection = Some(name.to_owned());
        self
    }

    /// Whether this elector shares its key with electors of the Python
    /// package `mongoelector` 1.x (`MongoLeaderElector`; default `false`).
    ///
    /// With `true` the lock collection defaults to the Python elector's,
    /// [`PYTHON_ELECTOR_COLLECTION`] (`"elector.locks"`), and releasing
    /// mastership (on [`release`](crate::MongoElector::release),
    /// [`step_down`](crate::MongoElector::step_down) or
    /// [`stop`](crate::MongoElector::stop)) deletes the lock document, which
    /// is the only way a Python node can take it before its TTL index
    /// removes it; see
    /// [`LockerBuilder::python_compatible`](crate::LockerBuilder::python_compatible).
    /// Status reports stay in this crate's status collection (the Python
    /// elector's, `elector.leader_status`, has another shape and a TTL
    /// index of its own).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::builder("scheduler", &db)
    ///     .python_compatible(true) // lock in "elector.locks", as the Python nodes
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn python_compatible(mut self, on: bool) -> Self {
        self.python_compatible = on;
        self
    }

    /// The status collection (default `"elector.status"`).
    pub fn status_collection(mut self, name: &str) -> Self {
        self.status_collection = name.to_owned();
        self
    }

    /// Checks the settings and creates the elector, not yet running. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `key`, `ttl`, `retry_interval`,
    /// `collection`, `status_collection`, `takeover_grace` or `metadata`.
    pub fn build(self) -> Result<MongoElector> {
        validate::key(&self.key)?;
        validate::ttl("ttl", self.ttl)?;
        let retry = self
            .retry
            .unwrap_or_else(|| default_retry_interval(self.ttl));
        validate::step("retry_interval", retry)?;
        if retry > self.ttl {
            return Err(Error::invalid(
                "retry_interval",
                format!("must not exceed the ttl ({:?}), got {retry:?}", self.ttl),
            ));
        }
        let collection = match (&self.collection, self.python_compatible) {
            (Some(name), _) => name.as_str(),
            (None, true) => PYTHON_ELECTOR_COLLECTION,
            (None, false) => DEFAULT_COLLECTION,
        };
        validate::collection("collection", collection)?;
        if let Some(m) = &self.metadata {
            validate::metadata("metadata", m)?;
        }
        let grace = validate::takeover_grace(self.grace, self.ttl)?;
        validate::collection("status_collection", &self.status_collection)?;
        if collection == self.status_collection {
            return Err(Error::invalid(
                "status_collection",
                "must differ from the lock collection",
            ));
        }
        Ok(MongoElector::from_engine(Engine::new(Settings {
            locks: LockStore::new(&self.db, collection, grace)
                .python_compatible(self.python_compatible),
            status: StatusStore::new(&self.db, &self.status_collection),
            key: self.key,
            ttl: self.ttl,
            retry,
            app_version: self.app_version,
            metadata: self.metadata,
            report: self.report_status,
            timeparanoid: self.timeparanoid,
            change_streams: self.change_streams,
        })))
    }
}

impl MongoElector {
    /// An elector on `key` with the Python package's defaults: ttl 15 s,
    /// status reporting on. Not running until [`start`](Self::start). No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `key` is empty.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// assert!(!elector.running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database) -> Result<MongoElector> {
        Self::builder(key, db).build()
    }

    /// A builder for an elector on `key`; see [`ElectorBuilder`].
    pub fn builder(key: &str, db: &Database) -> ElectorBuilder {
        ElectorBuilder {
            key: key.to_owned(),
            db: db.clone(),
            ttl: DEFAULT_ELECTOR_TTL,
            retry: None,
            grace: None,
            app_version: None,
            metadata: None,
            report_status: true,
            timeparanoid: false,
            change_streams: true,
            collection: None,
            status_collection: DEFAULT_STATUS_COLLECTION.to_owned(),
            python_compatible: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_default() {
        assert_eq!(
            default_retry_interval(Duration::from_secs(1)),
            Duration::from_millis(200)
        );
        assert_eq!(
            default_retry_interval(Duration::from_secs(15)),
            Duration::from_secs(3)
        );
        assert_eq!(
            default_retry_interval(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
    }
}
