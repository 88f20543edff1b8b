//! [`SemaphoreBuilder`]: how a [`MongoSemaphore`] is configured and created.

use mongodb::sync::Database;

use crate::error::{Error, Result};
use crate::foundation::kind::Kind;
use crate::foundation::options::{acquire_options, lease_options, LeaseOptions};
use crate::foundation::shares::core::ShareCore;
use crate::limits::{DEFAULT_SEMAPHORE_COLLECTION, MAX_HOLDERS};
use crate::semaphore::handle::MongoSemaphore;

/// Builds a [`MongoSemaphore`] with settings other than the defaults (those
/// of the lock: ttl 600 s, step 250 ms, no keep-alive, change streams and
/// `timeparanoid` on; collection `"mongosemaphore"`).
///
/// ```no_run
/// use std::time::Duration;
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let sem = mongoelector::MongoSemaphore::builder("migrations", &db, 3)
///     .ttl(Duration::from_secs(30))
///     .keep_alive(true)
///     .build()?;
/// assert_eq!(sem.permits(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct SemaphoreBuilder {
    options: LeaseOptions,
    permits: u32,
}

impl SemaphoreBuilder {
    pub(crate) fn new(key: &str, db: &Database, permits: u32) -> Self {
        SemaphoreBuilder {
            options: LeaseOptions::new(key, db),
            permits,
        }
    }

    acquire_options!(" let sem = mongoelector::MongoSemaphore::builder(\"jobs\", &db, 3)");

    lease_options!(
        " let sem = mongoelector::MongoSemaphore::builder(\"jobs\", &db, 3)",
        collection = "`\"mongosemaphore\"`",
        timeparanoid = "true"
    );

    /// Checks the settings and creates the semaphore. No I/O: the count is
    /// compared with the document's at the first operation.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
    /// `permits` (zero, or over [`MAX_HOLDERS`](crate::limits::MAX_HOLDERS)), `key`, `collection`, `ttl`, `step`,
    /// `takeover_grace` or `metadata`.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let refused = mongoelector::MongoSemaphore::builder("jobs", &db, 0).build();
    /// assert!(matches!(refused, Err(mongoelector::Error::InvalidArgument { parameter: "permits", .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<MongoSemaphore> {
        if self.permits == 0 {
            return Err(Error::invalid("permits", "must be at least 1"));
        }
        if self.permits > MAX_HOLDERS {
            return Err(Error::invalid(
                "permits",
                format!("must be at most {MAX_HOLDERS} (one document keeps every permit's entry)"),
            ));
        }
        Ok(MongoSemaphore::from_core(
            ShareCore::build(self.options, Kind::Semaphore, DEFAULT_SEMAPHORE_COLLECTION)?,
            self.permits,
        ))
    }
}

impl MongoSemaphore {
    /// A semaphore of `permits` on `key`, with the defaults (see
    /// [`SemaphoreBuilder`]). No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
    /// `permits` (zero) or `key` (empty).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// assert_eq!(sem.key(), "api-calls");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database, permits: u32) -> Result<MongoSemaphore> {
        Self::builder(key, db, permits).build()
    }

    /// A builder for a semaphore of `permits` on `key`; see [`SemaphoreBuilder`].
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::builder("api-calls", &db, 5)
    ///     .ttl(Duration::from_secs(20))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(key: &str, db: &Database, permits: u32) -> SemaphoreBuilder {
        SemaphoreBuilder::new(key, db, permits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn builder_is_send_sync() {
        assert_send_sync::<SemaphoreBuilder>();
    }
}
