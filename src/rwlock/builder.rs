//! [`RwLockBuilder`]: how a [`MongoRwLock`] is configured and created.

use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::kind::Kind;
use crate::foundation::shares::options::{builder_options, ShareOptions};
use crate::rwlock::handle::MongoRwLock;

/// Default collection of read-write lock documents.
pub const DEFAULT_RWLOCK_COLLECTION: &str = "mongorwlock";

/// Builds a [`MongoRwLock`] with settings other than the defaults (those of
/// the lock: ttl 600 s, step 250 ms, no keep-alive, change streams and
/// `timeparanoid` on; collection `"mongorwlock"`).
///
/// ```no_run
/// use std::time::Duration;
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let lock = mongoelector::MongoRwLock::builder("shared-config", &db)
///     .ttl(Duration::from_secs(30))
///     .keep_alive(true)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct RwLockBuilder {
    options: ShareOptions,
}

impl RwLockBuilder {
    pub(crate) fn new(key: &str, db: &Database) -> Self {
        RwLockBuilder {
            options: ShareOptions::new(key, db, DEFAULT_RWLOCK_COLLECTION, Kind::RwLock),
        }
    }

    builder_options!(" let lock = mongoelector::MongoRwLock::builder(\"config\", &db)");

    /// Checks the settings and creates the lock. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
    /// `key`, `collection`, `ttl`, `step`, `takeover_grace` or `metadata`.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let refused = mongoelector::MongoRwLock::builder("", &db).build();
    /// assert!(matches!(refused, Err(mongoelector::Error::InvalidArgument { parameter: "key", .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<MongoRwLock> {
        Ok(MongoRwLock::from_core(self.options.build()?))
    }
}

impl MongoRwLock {
    /// A read-write lock on `key` with the defaults (see [`RwLockBuilder`]).
    /// No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when `key` is empty.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// assert_eq!(lock.key(), "shared-config");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database) -> Result<MongoRwLock> {
        Self::builder(key, db).build()
    }

    /// A builder for a read-write lock on `key`; see [`RwLockBuilder`].
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::builder("shared-config", &db)
    ///     .ttl(Duration::from_secs(20))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(key: &str, db: &Database) -> RwLockBuilder {
        RwLockBuilder::new(key, db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn builder_is_send_sync() {
        assert_send_sync::<RwLockBuilder>();
    }
}
