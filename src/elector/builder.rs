//! [`ElectorBuilder`]: how a [`MongoElector`] is configured and created,
//! with the defaults of the Python package.

use std::time::Duration;

use mongodb::sync::Database;

use super::engine::{Engine, Settings};
use super::handle::MongoElector;
use super::status_store::StatusStore;
use crate::error::{Error, Result};
use crate::foundation::options::{lease_options, LeaseOptions};
use crate::foundation::single::store::LockStore;
use crate::foundation::validate;
use crate::limits::{
    DEFAULT_ELECTOR_TTL, DEFAULT_LOCK_COLLECTION, DEFAULT_STATUS_COLLECTION,
    PYTHON_ELECTOR_COLLECTION,
};

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
///     .status_reports(true)
///     .build()?;
/// assert_eq!(elector.poll_wait(), Duration::from_secs(1)); // a follower until elected
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ElectorBuilder {
    /// The shared settings (`step` and `keep_alive` unused: a follower
    /// polls at its retry interval, a master renews on its own thread).
    options: LeaseOptions,
    retry: Option<Duration>,
    app_version: Option<String>,
    status_reports: bool,
    status_collection: String,
    python_compatible: bool,
}

impl ElectorBuilder {
    /// The election lock's lease (default 15 s; 100 ms to one year). A dead
    /// master is replaced after at most about this long.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = ttl;
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
        self.options.metadata = Some(doc);
        self
    }

    /// Whether this node upserts its status into the status collection
    /// (default `true`): the elector thread does on each change of role
    /// and every ttl or two, a manual [`poll`](crate::MongoElector::poll)
    /// each time. A report counts as a live member for three ttls. (A
    /// setting; [`MongoElector::report_status`](crate::MongoElector::report_status)
    /// sends one report now.)
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::builder("scheduler", &db)
    ///     .status_reports(false)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status_reports(mut self, on: bool) -> Self {
        self.status_reports = on;
        self
    }

    /// The old name of [`status_reports`](Self::status_reports).
    #[deprecated(
        since = "0.1.0",
        note = "renamed `status_reports`: `MongoElector::report_status()` is the call that reports"
    )]
    pub fn report_status(self, on: bool) -> Self {
        self.status_reports(on)
    }

    lease_options!(
        " let elector = mongoelector::MongoElector::builder(\"scheduler\", &db)",
        collection = "`\"mongolocker\"`, or [`PYTHON_ELECTOR_COLLECTION`](crate::limits::PYTHON_ELECTOR_COLLECTION) with [`python_compatible`](Self::python_compatible)",
        timeparanoid = "false"
    );

    /// Whether this elector shares its key with electors of the Python
    /// package `mongoelector` 1.x (`MongoLeaderElector`; default `false`).
    ///
    /// With `true` the lock collection defaults to the Python elector's,
    /// [`PYTHON_ELECTOR_COLLECTION`](crate::limits::PYTHON_ELECTOR_COLLECTION) (`"elector.locks"`), and releasing
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
        let options = self.options;
        let retry = self
            .retry
            .unwrap_or_else(|| default_retry_interval(options.ttl));
        let collection = options.collection_or(if self.python_compatible {
            PYTHON_ELECTOR_COLLECTION
        } else {
            DEFAULT_LOCK_COLLECTION
        });
        // The lease checks of every builder, the retry interval as the step.
        let grace = LeaseOptions {
            step: retry,
            ..options.clone()
        }
        .check(collection)
        .map_err(|e| match e {
            Error::InvalidArgument {
                parameter: "step",
                reason,
            } => Error::invalid("retry_interval", reason),
            other => other,
        })?;
        if retry > options.ttl {
            return Err(Error::invalid(
                "retry_interval",
                format!("must not exceed the ttl ({:?}), got {retry:?}", options.ttl),
            ));
        }
        validate::collection("status_collection", &self.status_collection)?;
        if collection == self.status_collection {
            return Err(Error::invalid(
                "status_collection",
                "must differ from the lock collection",
            ));
        }
        Ok(MongoElector::from_engine(Engine::new(Settings {
            locks: LockStore::new(&options.db, collection, grace)
                .python_compatible(self.python_compatible),
            status: StatusStore::new(&options.db, &self.status_collection),
            key: options.key,
            ttl: options.ttl,
            retry,
            app_version: self.app_version,
            metadata: options.metadata,
            report: self.status_reports,
            timeparanoid: options.timeparanoid,
            change_streams: options.change_streams,
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
            options: LeaseOptions {
                ttl: DEFAULT_ELECTOR_TTL,
                timeparanoid: false,
                ..LeaseOptions::new(key, db)
            },
            retry: None,
            app_version: None,
            status_reports: true,
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
