//! [`MongoRwLock`]: many readers or one writer of a key, across processes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{During, Result};
use crate::foundation::document::LockInfo;
use crate::foundation::shares::core::ShareCore;
use crate::foundation::shares::grant::Ask;
use crate::foundation::tenure::Tenure;
use crate::foundation::waiting::Wait;
use crate::rwlock::guards::{ReadGuard, WriteGuard};

/// A read-write lock: any number of readers, or exactly one writer, never
/// both, over every process that uses the key.
///
/// The key's document (in collection `"mongorwlock"` by default) keeps one
/// leased entry per holder (`mode` `"read"` or `"write"`); each grant is
/// one atomic update in server time that drops the entries whose expiry
/// plus the takeover grace has passed (a crashed holder blocks nobody for
/// longer: no TTL index, no sweeper).
///
/// Writers are not starved: a writer that waits ([`write`](Self::write),
/// [`try_write_for`](Self::try_write_for)) and finds readers holding
/// registers its intent in the document with a lease of its own (`intent`,
/// renewed while it waits); new readers then wait, and the writer gets in
/// once the readers present at that moment have left. A crashed waiting
/// writer's intent expires after ttl + grace. [`try_write`](Self::try_write)
/// registers nothing. Readers are not starved by writers either: a writer
/// refused while only another writer holds registers nothing, so each
/// writer's release lets readers and writers race as equals.
///
/// Fences come from one counter per key: a writer's is greater than every
/// fence granted before it, readers' included; a reader's is greater than
/// every earlier writer's.
///
/// # Examples
///
/// ```no_run
/// use mongoelector::MongoRwLock;
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let lock = MongoRwLock::new("shared-config", &db)?;
/// {
///     let _reading = lock.read()?; // many processes read at once
/// }
/// let writing = lock.write()?; // alone
/// println!("writing under fence {}", writing.fence());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MongoRwLock {
    core: Arc<ShareCore>,
}

impl MongoRwLock {
    pub(crate) fn from_core(core: ShareCore) -> Self {
        MongoRwLock {
            core: Arc::new(core),
        }
    }

    /// The lock's key (its document's `_id`).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// assert_eq!(lock.key(), "shared-config");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &str {
        self.core.key()
    }

    /// The lease length of each guard.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// assert_eq!(lock.ttl(), mongoelector::limits::DEFAULT_TTL);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ttl(&self) -> Duration {
        self.core.ttl()
    }

    /// The collection that holds the lock documents.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// assert_eq!(lock.collection(), mongoelector::limits::DEFAULT_RWLOCK_COLLECTION);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collection(&self) -> &str {
        self.core.collection_name()
    }

    fn take(&self, ask: Ask, wait: Wait, operation: &'static str) -> Result<Option<Arc<Tenure>>> {
        self.core.acquire(ask, wait).during(operation, self.key())
    }

    fn take_until_granted(&self, ask: Ask, operation: &'static str) -> Result<Arc<Tenure>> {
        self.core
            .acquire_until_granted(ask)
            .during(operation, self.key())
    }

    /// Waits, with no time limit, for a read share: granted while no writer
    /// holds and no other writer waits (registered intent). Retried on a
    /// release (change stream) or every step; transient errors are ridden
    /// through.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) (not transient),
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument),
    /// [`Error::ClockSkew`](crate::Error::ClockSkew) (with `timeparanoid`),
    /// [`Error::UnsupportedServer`](crate::Error::UnsupportedServer).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// let reading = lock.read()?;
    /// assert!(reading.is_valid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self) -> Result<ReadGuard> {
        let t = self.take_until_granted(Ask::Read, "read")?;
        Ok(ReadGuard::new(self.core.clone(), t))
    }

    /// One attempt (one round trip) at a read share.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), transient errors included.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// if lock.try_read()?.is_none() {
    ///     println!("a writer holds or waits");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_read(&self) -> Result<Option<ReadGuard>> {
        Ok(self
            .take(Ask::Read, Wait::Once, "try_read")?
            .map(|t| ReadGuard::new(self.core.clone(), t)))
    }

    /// As [`read`](Self::read), for up to `timeout`: `None` when the time
    /// ran out.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// let reading = lock.try_read_for(Duration::from_secs(2))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_read_for(&self, timeout: Duration) -> Result<Option<ReadGuard>> {
        Ok(self
            .take(Ask::Read, Wait::For(timeout), "try_read_for")?
            .map(|t| ReadGuard::new(self.core.clone(), t)))
    }

    /// Waits, with no time limit, for the write share: granted once no
    /// entry holds. While it waits, its intent (renewed every third of a
    /// ttl) makes new readers wait. A thread that still holds a
    /// [`ReadGuard`] of the key waits for itself (until that read lease
    /// expires; for ever with keep-alive): release it first, or bound the
    /// wait with [`try_write_for`](Self::try_write_for).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// let writing = lock.write()?;
    /// println!("fence {}", writing.fence());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self) -> Result<WriteGuard> {
        let t = self.take_until_granted(Ask::Write { intent: true }, "write")?;
        Ok(WriteGuard::new(self.core.clone(), t))
    }

    /// One attempt (one round trip) at the write share; it registers no
    /// intent.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), transient errors included.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// if let Some(writing) = lock.try_write()? {
    ///     writing.release()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_write(&self) -> Result<Option<WriteGuard>> {
        Ok(self
            .take(Ask::Write { intent: false }, Wait::Once, "try_write")?
            .map(|t| WriteGuard::new(self.core.clone(), t)))
    }

    /// As [`write`](Self::write), for up to `timeout`: `None` when the time
    /// ran out, after withdrawing its intent (one more round trip, best
    /// effort: otherwise it expires after ttl + grace).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// match lock.try_write_for(Duration::from_secs(5))? {
    ///     Some(writing) => println!("writing under fence {}", writing.fence()),
    ///     None => println!("readers held on for 5 s"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_write_for(&self, timeout: Duration) -> Result<Option<WriteGuard>> {
        Ok(self
            .take(
                Ask::Write { intent: true },
                Wait::For(timeout),
                "try_write_for",
            )?
            .map(|t| WriteGuard::new(self.core.clone(), t)))
    }

    /// The live readers (unexpired in server time), in grant order. One
    /// round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// println!("{} readers", lock.readers()?.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readers(&self) -> Result<Vec<LockInfo>> {
        self.live("readers", false)
    }

    /// The live writer, if any. One round trip.
    ///
    /// # Errors
    ///
    /// As [`readers`](Self::readers).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
    /// if let Some(w) = lock.writer()? {
    ///     println!("written by {}@{} under fence {}", w.pid, w.host, w.fence);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> Result<Option<LockInfo>> {
        Ok(self.live("writer", true)?.into_iter().next())
    }

    fn live(&self, operation: &'static str, write: bool) -> Result<Vec<LockInfo>> {
        let Some((shares, now)) = self.core.read().during(operation, self.key())? else {
            return Ok(Vec::new());
        };
        Ok(shares
            .live_at(now)
            .filter(|e| e.write == Some(write))
            .map(|e| e.info(self.key()))
            .collect())
    }
}

impl fmt::Debug for MongoRwLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoRwLock")
            .field("key", &self.key())
            .field("collection", &self.collection())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handle_and_guards_are_send_sync() {
        assert_send_sync::<MongoRwLock>();
        assert_send_sync::<ReadGuard>();
        assert_send_sync::<WriteGuard>();
    }
}
