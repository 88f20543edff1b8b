//! [`MongoSemaphore`]: at most N holders of a key at once, across processes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{During, Result};
use crate::foundation::document::LockInfo;
use crate::foundation::lease::as_delta;
use crate::foundation::shares::core::ShareCore;
use crate::foundation::shares::grant::Ask;
use crate::foundation::waiting::Wait;
use crate::semaphore::permit::Permit;

/// A counting semaphore: at most `permits` holders of a key at once, over
/// every process that uses the key.
///
/// The key's document (in collection `"mongosemaphore"` by default) keeps
/// the count and one leased entry per permit granted; each grant is one
/// atomic update, in server time: it drops the entries whose expiry plus
/// the takeover grace has passed (a crashed holder's permit comes back on
/// its own: no TTL index, no sweeper) and adds its own entry with the next
/// fence. Every process on a key must use the same count: one built with
/// another gets [`Error::PermitsMismatch`](crate::Error::PermitsMismatch)
/// at its first operation, and the document is never resized.
///
/// A [`Permit`] behaves as a [`LockGuard`](crate::LockGuard): a lease
/// with a fence, a local deadline, `lost()`, `touch()`, released on drop.
/// One handle can hand out several permits (to several threads); it is
/// `Send + Sync`.
///
/// # Examples
///
/// ```no_run
/// use mongoelector::MongoSemaphore;
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let sem = MongoSemaphore::new("heavy-migration", &db, 3)?;
/// let permit = sem.acquire()?; // at most 3 processes get past this at once
/// println!("running under fence {}", permit.fence());
/// drop(permit); // released
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MongoSemaphore {
    core: Arc<ShareCore>,
    permits: u32,
}

impl MongoSemaphore {
    pub(crate) fn from_core(core: ShareCore, permits: u32) -> Self {
        MongoSemaphore {
            core: Arc::new(core),
            permits,
        }
    }

    /// The semaphore's key (its document's `_id`).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// assert_eq!(sem.key(), "api-calls");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &str {
        self.core.key()
    }

    /// The count of permits this semaphore was built with.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// assert_eq!(sem.permits(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// The lease length of each permit.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// assert_eq!(sem.ttl(), mongoelector::limits::DEFAULT_TTL);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ttl(&self) -> Duration {
        self.core.ttl()
    }

    /// The collection that holds the semaphore documents.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// assert_eq!(sem.collection(), mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collection(&self) -> &str {
        self.core.collection_name()
    }

    fn permit(&self, tenure: Option<Arc<crate::foundation::tenure::Tenure>>) -> Option<Permit> {
        tenure.map(|t| Permit::new(self.core.clone(), t))
    }

    /// Waits, with no time limit, for a permit: retried as soon as a holder
    /// releases (change stream) or every step, and right after the first
    /// holder's expiry plus the takeover grace; transient errors (a
    /// failover) are ridden through.
    ///
    /// # Errors
    ///
    /// [`Error::PermitsMismatch`](crate::Error::PermitsMismatch),
    /// [`Error::Database`](crate::Error::Database) (not transient),
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument),
    /// [`Error::ClockSkew`](crate::Error::ClockSkew) (with `timeparanoid`),
    /// [`Error::UnsupportedServer`](crate::Error::UnsupportedServer).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// let permit = sem.acquire()?;
    /// assert!(permit.is_valid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self) -> Result<Permit> {
        let tenure = self
            .core
            .acquire_until_granted(self.ask())
            .during("acquire", self.key())?;
        Ok(Permit::new(self.core.clone(), tenure))
    }

    /// One attempt (one round trip): a permit when fewer than `permits`
    /// live holders have one, `None` otherwise.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire), transient errors included.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// match sem.try_acquire()? {
    ///     Some(permit) => println!("got fence {}", permit.fence()),
    ///     None => println!("all 5 permits are taken"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<Option<Permit>> {
        let tenure = self
            .core
            .acquire(self.ask(), Wait::Once)
            .during("try_acquire", self.key())?;
        Ok(self.permit(tenure))
    }

    /// As [`acquire`](Self::acquire), for up to `timeout`: `None` when the
    /// time ran out (or the last attempt's transient error).
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// if let Some(permit) = sem.try_acquire_for(Duration::from_secs(2))? {
    ///     permit.release()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire_for(&self, timeout: Duration) -> Result<Option<Permit>> {
        let tenure = self
            .core
            .acquire(self.ask(), Wait::For(timeout))
            .during("try_acquire_for", self.key())?;
        Ok(self.permit(tenure))
    }

    fn ask(&self) -> Ask {
        Ask::Permit {
            permits: self.permits,
        }
    }

    /// The live holders (unexpired in server time), one entry per permit
    /// with its fence, in grant order. One round trip.
    ///
    /// # Errors
    ///
    /// [`Error::PermitsMismatch`](crate::Error::PermitsMismatch),
    /// [`Error::Database`](crate::Error::Database),
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// for holder in sem.holders()? {
    ///     println!("{}@{} fence {} until {}", holder.pid, holder.host, holder.fence, holder.expires);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn holders(&self) -> Result<Vec<LockInfo>> {
        let Some((shares, now)) = self.core.read().during("holders", self.key())? else {
            return Ok(Vec::new());
        };
        shares.check_permits(self.permits)?;
        Ok(shares.live_at(now).map(|e| e.info(self.key())).collect())
    }

    /// How many permits a grant could hand out now: the count minus the
    /// entries that still count (unexpired, or expired less than the
    /// takeover grace ago, in server time). One round trip.
    ///
    /// # Errors
    ///
    /// As [`holders`](Self::holders).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
    /// println!("{} of 5 free", sem.available()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn available(&self) -> Result<u32> {
        let Some((shares, now)) = self.core.read().during("available", self.key())? else {
            return Ok(self.permits);
        };
        shares.check_permits(self.permits)?;
        let grace = as_delta(self.core.grace());
        let taken = shares
            .holders
            .iter()
            .filter(|e| e.counts_at(now, grace))
            .count();
        Ok(self
            .permits
            .saturating_sub(u32::try_from(taken).unwrap_or(u32::MAX)))
    }
}

impl fmt::Debug for MongoSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoSemaphore")
            .field("key", &self.key())
            .field("permits", &self.permits)
            .field("collection", &self.collection())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handle_and_permit_are_send_sync() {
        assert_send_sync::<MongoSemaphore>();
        assert_send_sync::<Permit>();
    }
}
