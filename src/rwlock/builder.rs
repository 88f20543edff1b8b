//! [`RwLockBuilder`]: how a [`MongoRwLock`] is configured and created.

use mongodb::sync::Database;

use crate::error::Result;
use crate::foundation::kind::Kind;
use crate::foundation::options::{acquire_options, lease_options, LeaseOptions};
use crate::foundation::shares::core::ShareCore;
use crate::limits::DEFAULT_RWLOCK_COLLECTION;
use crate::rwlock::handle::MongoRwLock;

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
    options: LeaseOptions,
}

impl RwLockBuilder {
    pub(crate) fn new(key: &str, db: &Database) -> Self {
        RwLockBuilder {
            options: LeaseOptions::new(key, db),
        }
    }

    acquire_options!(" let lock = mongoelector::MongoRwLock::builder(\"config\", &db)");

    lease_options!(
        " let lock = mongoelector::MongoRwLock::builder(\"config\", &db)",
        collection = "`\"mongorwlock\"`",
        timeparanoid = "true"
    );

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
        Ok(MongoRwLock::from_core(ShareCore::build(
            self.options,
            Kind::RwLock,
            DEFAULT_RWLOCK_COLLECTION,
        )?))
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
