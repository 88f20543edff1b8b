//! [`ShareOptions`]: the settings the semaphore's and the read-write lock's
//! builders share (those of the lock's builder, but its hold and Python
//! compatibility), and their checks ([`validate::lease_settings`], as the
//! lock's builder runs them).

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::kind::Kind;
use crate::foundation::owner::Owner;
use crate::foundation::shares::core::{ShareCore, ShareSettings};
use crate::foundation::shares::store::ShareStore;
use crate::foundation::validate;
use crate::foundation::validate::{DEFAULT_STEP, DEFAULT_TTL};

#[derive(Clone, Debug)]
pub(crate) struct ShareOptions {
    pub key: String,
    pub db: Database,
    pub collection: String,
    pub ttl: Duration,
    pub step: Duration,
    pub timeparanoid: bool,
    pub change_streams: bool,
    pub grace: Option<Duration>,
    pub keep_alive: bool,
    pub metadata: Option<Document>,
    /// The kind of document the primitive keeps.
    pub kind: Kind,
}

impl ShareOptions {
    /// The lock's defaults, on `collection`, for a primitive of `kind`.
    pub fn new(key: &str, db: &Database, collection: &str, kind: Kind) -> Self {
        ShareOptions {
            key: key.to_owned(),
            db: db.clone(),
            collection: collection.to_owned(),
            ttl: DEFAULT_TTL,
            step: DEFAULT_STEP,
            timeparanoid: true,
            change_streams: true,
            grace: None,
            keep_alive: false,
            metadata: None,
            kind,
        }
    }

    /// Checks the settings and makes the core. No I/O.
    pub fn build(self) -> Result<ShareCore> {
        let grace = validate::lease_settings(
            &self.key,
            &self.collection,
            self.ttl,
            self.step,
            self.grace,
            self.metadata.as_ref(),
        )?;
        let settings = ShareSettings {
            ttl: self.ttl,
            step: self.step,
            timeparanoid: self.timeparanoid,
            change_streams: self.change_streams,
            keep_alive: self.keep_alive,
            owner: Owner::new().with_metadata(self.metadata),
        };
        Ok(ShareCore::new(
            self.key,
            ShareStore::new(&self.db, &self.collection, grace, self.kind),
            settings,
        ))
    }
}

/// The setters every many-holder builder shares, over its `options:
/// ShareOptions`. `$start` is example code that starts a builder (ending
/// without `;`, the setter is chained on it, then `.build()?`).
macro_rules! builder_options {
    ($start:literal) => {
        /// How long a grant lasts unless renewed (default 600 s, as the
        /// lock's; 100 ms to one year). A holder that crashes keeps its
        /// share that long, plus the [takeover grace](Self::takeover_grace).
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

        /// Whether every grant is renewed automatically (one round trip a
        /// third of the ttl after the last renewal was sent) until it is
        /// released (default `false`), exactly as
        /// [`LockerBuilder::keep_alive`](crate::LockerBuilder::keep_alive):
        /// the same process-wide threads, the same retries, and `lost()`
        /// says `RenewalFailed` when no renewal succeeds before the local
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

        /// A document stored in each of this handle's entries (field
        /// `metadata`), returned as [`LockInfo::metadata`](crate::LockInfo::metadata)
        /// by the introspection methods. Checked as
        /// [`LockerBuilder::metadata`](crate::LockerBuilder::metadata) checks it.
        ///
        /// ```no_run
        /// use mongodb::bson::doc;
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .metadata(doc! { "worker": "web-7" })
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn metadata(mut self, doc: mongodb::bson::Document) -> Self {
            self.options.metadata = Some(doc);
            self
        }

        /// The collection that holds the documents (one per key).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $start]
        ///     .collection("coordination")
        ///     .build()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn collection(mut self, name: &str) -> Self {
            self.options.collection = name.to_owned();
            self
        }

        /// The interval between attempts of a blocking acquire when no
        /// change stream wakes it (default 250 ms; 1 ms to one hour).
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

        /// How long past its expiry (in server time) an entry still counts
        /// as a holder (default [`lease_margin`](crate::lease_margin)`(ttl)`;
        /// at most one hour), as
        /// [`LockerBuilder::takeover_grace`](crate::LockerBuilder::takeover_grace).
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

        /// Whether a blocking acquire waits on the collection's change
        /// stream, retrying as soon as a holder releases (default `true`;
        /// it polls every step where the server has none), sharing the
        /// process's one stream per deployment and collection.
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

        /// Whether acquires first check that the local clock is within
        /// 0.5 s of the server's (default `true`). Safety never depends on it.
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
    };
}

pub(crate) use builder_options;
