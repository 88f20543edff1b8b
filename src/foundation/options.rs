//! [`LeaseOptions`]: the settings every builder of a lease-taking primitive
//! shares (the lock's, the semaphore's, the read-write lock's, and the
//! elector's for those it has), their checks, and their setters, written
//! once: [`lease_options!`] (change streams, takeover grace, clock check,
//! collection) for every builder, and [`acquire_options!`] (ttl,
//! keep-alive, metadata, step) for the handles that acquire.

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::owner::Owner;
use crate::foundation::validate;
use crate::limits::{DEFAULT_STEP, DEFAULT_TTL};

/// The shared settings, as the setters leave them (checked by
/// [`check`](Self::check) when the primitive is built).
#[derive(Clone, Debug)]
pub(crate) struct LeaseOptions {
    pub key: String,
    pub db: Database,
    /// `None`: the primitive's default collection.
    pub collection: Option<String>,
    pub ttl: Duration,
    pub step: Duration,
    pub timeparanoid: bool,
    pub change_streams: bool,
    /// `None`: the lease margin of the ttl.
    pub grace: Option<Duration>,
    pub keep_alive: bool,
    pub metadata: Option<Document>,
}

impl LeaseOptions {
    /// The defaults (the lock's, which are the Python package's): ttl
    /// 600 s, step 250 ms, the clock check and change streams on.
    pub fn new(key: &str, db: &Database) -> Self {
        LeaseOptions {
            key: key.to_owned(),
            db: db.clone(),
            collection: None,
            ttl: DEFAULT_TTL,
            step: DEFAULT_STEP,
            timeparanoid: true,
            change_streams: true,
            grace: None,
            keep_alive: false,
            metadata: None,
        }
    }

    /// The collection set, or `default`.
    pub fn collection_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.collection.as_deref().unwrap_or(default)
    }

    /// Checks the key, `collection`, ttl, step, grace and metadata: the
    /// takeover grace to use.
    pub fn check(&self, collection: &str) -> Result<Duration> {
        validate::lease_settings(
            &self.key,
            collection,
            self.ttl,
            self.step,
            self.grace,
            self.metadata.as_ref(),
        )
    }

    /// A new process identity carrying the metadata.
    pub fn owner(&self) -> Owner {
        Owner::new().with_metadata(self.metadata.clone())
    }
}

/// The setters every builder shares, over its `options: LeaseOptions`.
/// `$start` is example code that starts a builder (ending without `;`,
/// the setter is chained on it, then `.build()?`); `collection` names the
/// default collection, `timeparanoid` the clock check's default.
macro_rules! lease_options {
    ($start:literal, collection = $collection:literal, timeparanoid = $paranoid:literal) => {
        /// Whether waiting waits on a change stream of the collection,
        /// trying again as soon as a holder releases or the key changes
        /// hands (default `true`). Where the deployment has no change
        /// streams (a standalone server) it polls all the same; `false`
        /// always polls. One stream per process, deployment and collection
        /// serves every waiter of the handles made from one `Database`
        /// handle (or its clones): at most one thread and one open cursor,
        /// kept for up to 30 s after the last waiter and reused by the
        /// next. A process that never waits opens none. A change of a key
        /// makes one attempt among the process's waiters on it that would
        /// get the same answer (a lock's, a semaphore's, a read-write
        /// lock's readers), not one each. The first-use
        /// checks of a collection (`buildInfo`, `listIndexes`) are shared
        /// the same way: a daemon that makes a handle per job from one
        /// `Database` sends them once, then one round trip per operation.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .change_streams(false)
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn change_streams(mut self, on: bool) -> Self {
            self.options.change_streams = on;
            self
        }

        /// How long past its expiry (in server time) a grant still counts
        /// before another may take it over (default
        /// [`lease_margin`](crate::lease_margin)`(ttl)`; at most one hour).
        /// It covers a primary whose clock is ahead of the member's that
        /// wrote the expiry (a failover, an NTP step): leases stay exclusive
        /// while the servers' clocks are within this much of each other. It
        /// delays the takeover of a dead holder's grant by as much.
        ///
        /// ```no_run
        /// # use std::time::Duration;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .takeover_grace(Duration::from_secs(2))
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn takeover_grace(mut self, grace: std::time::Duration) -> Self {
            self.options.grace = Some(grace);
            self
        }

        #[doc = concat!("Whether acquiring first checks that the local clock is within 0.5 s of the server's (default `", $paranoid, "`).")]
        /// Safety never depends on it: every expiry is written and compared
        /// in server time.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .timeparanoid(false)
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn timeparanoid(mut self, on: bool) -> Self {
            self.options.timeparanoid = on;
            self
        }

        #[doc = concat!("The collection that holds the documents, one per key (default ", $collection, ").")]
        /// A lock (or an election), a semaphore and a read-write lock may
        /// share a collection, not a key in it: another kind's document is
        /// [`Error::WrongKind`](crate::Error::WrongKind).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .collection("coordination")
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn collection(mut self, name: &str) -> Self {
            self.options.collection = Some(name.to_owned());
            self
        }
    };
}

/// The setters of the handles that acquire (a lock, a semaphore, a
/// read-write lock), over their `options: LeaseOptions`; `$start` as for
/// [`lease_options!`].
macro_rules! acquire_options {
    ($start:literal) => {
        /// How long a grant lasts unless renewed (default 600 s, as in the
        /// Python package; 100 ms to one year). A holder that crashes keeps
        /// it that long, plus the [takeover grace](Self::takeover_grace):
        /// choose a shorter one, with [keep-alive](Self::keep_alive) for
        /// long work.
        ///
        /// ```no_run
        /// # use std::time::Duration;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .ttl(Duration::from_secs(30))
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
            self.options.ttl = ttl;
            self
        }

        /// Whether every grant is renewed automatically until it is
        /// released (default `false`, as in the Python package).
        ///
        /// Renewals are due a third of the ttl after the last successful one
        /// (or the grant) was *sent*, one round trip each, scheduled by one
        /// process-wide thread (`mongoelector-keepalive`) for every handle
        /// of the process and sent by one thread (`mongoelector-renew`). A
        /// failed renewal is retried (every tenth of the ttl, 10 ms to 1 s)
        /// until the local deadline; if none succeeds by then the grant is
        /// lost (its guard's `lost()` says
        /// [`RenewalFailed`](crate::LossReason::RenewalFailed)). The
        /// guard's `is_valid()` keeps answering from the local deadline, so
        /// it stays true exactly as long as renewals succeed. Renewals stuck
        /// on an unresponsive server hold up no other: when renewals have
        /// waited 200 ms with none sent or answered, each waiting one gets a
        /// sending thread (ending about 10 s after none is needed), so a due
        /// renewal goes out at most 200 ms (plus the start of a thread) late
        /// however many are stuck, and a stuck grant still ends at its
        /// deadline.
        ///
        /// ```no_run
        /// # use std::time::Duration;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .ttl(Duration::from_secs(30)) // renewed every 10 s
        ///     .keep_alive(true)
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn keep_alive(mut self, on: bool) -> Self {
            self.options.keep_alive = on;
            self
        }

        /// A document stored with each grant (field `metadata`), saying who
        /// holds it in the application's terms; readers get it back
        /// unchanged as [`LockInfo::metadata`](crate::LockInfo::metadata).
        /// A grant by a handle without metadata stores null.
        ///
        /// It must be storable as given: at most
        /// [`MAX_METADATA_BYTES`](crate::limits::MAX_METADATA_BYTES) (16 KiB)
        /// as BSON, nested at most
        /// [`MAX_METADATA_DEPTH`](crate::limits::MAX_METADATA_DEPTH) deep,
        /// with no key that is empty, starts with `$`, or contains `.` or
        /// NUL. Values may be anything, strings starting with `$` included.
        ///
        /// ```no_run
        /// use mongodb::bson::doc;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .metadata(doc! { "job": "nightly-report", "worker": { "pod": "web-7" } })
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn metadata(mut self, doc: mongodb::bson::Document) -> Self {
            self.options.metadata = Some(doc);
            self
        }

        /// The interval between attempts of a blocking or timed acquire
        /// when no change stream wakes it (default 250 ms; 1 ms to one
        /// hour).
        ///
        /// ```no_run
        /// # use std::time::Duration;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .step(Duration::from_millis(50))
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn step(mut self, step: std::time::Duration) -> Self {
            self.options.step = step;
            self
        }
    };
}

pub(crate) use {acquire_options, lease_options};
