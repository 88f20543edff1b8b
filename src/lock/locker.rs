//! [`MongoLocker`]: the distributed lock's public API (its construction is
//! in `builder`, its state and operations in `core`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{During, Result};
use crate::foundation::document::LockInfo;
use crate::foundation::single::core::LockCore;
use crate::foundation::waiting::Wait;
use crate::lock::guard::LockGuard;

/// A distributed lock backed by one MongoDB document, with the semantics of
/// Python's `threading.Lock` and an RAII guard.
///
/// Each `MongoLocker` is one owner identity (its [`uuid`](Self::uuid)): two
/// lockers on one key contend exactly like two processes, even inside one
/// process. A locker is `Send + Sync` and can be shared through an `Arc`;
/// the acquisition it holds belongs to the locker, not to a thread.
///
/// The lease is judged in the server's clock (`$$NOW`), so client clocks do
/// not matter, and locally on a monotonic clock ([`LockGuard::is_valid`]),
/// so a holder learns it must stop before anyone else can be granted the lock.
/// Every acquisition gets a fence token greater than all earlier ones on the
/// key: pass it to the resource you protect so it can refuse stale holders.
///
/// # Examples
///
/// ```no_run
/// use mongoelector::MongoLocker;
///
/// let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
/// let locker = MongoLocker::new("nightly-report", &client.database("app"))?;
/// {
///     let guard = locker.lock()?; // blocks until acquired
///     println!("holding fence {}", guard.fence());
/// } // released here
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MongoLocker {
    core: Arc<LockCore>,
}

/// A snapshot of a locker and its lock, as the Python package's `status`.
///
/// ```no_run
/// # fn demo(locker: &mongoelector::MongoLocker) -> mongoelector::Result<()> {
/// let status = locker.status()?;
/// println!("{} owned={} expires={:?}", status.key, status.lock_owned, status.lock_expires);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LockStatus {
    /// This locker's owner identity.
    pub uuid: String,
    /// The lock's key.
    pub key: String,
    /// This locker's lease length.
    pub ttl: Duration,
    /// Server time of the read (local time when the lock document does not exist yet).
    pub timestamp: DateTime<Utc>,
    /// This locker's host name.
    pub host: String,
    /// This locker's process id.
    pub pid: u32,
    /// Whether this locker holds the lock (live in server time).
    pub lock_owned: bool,
    /// When the current live lock (whoever holds it) was acquired.
    pub lock_created: Option<DateTime<Utc>>,
    /// When the current live lock (whoever holds it) expires unless renewed.
    pub lock_expires: Option<DateTime<Utc>>,
    /// The current live lock's metadata (whoever holds it), as
    /// [`LockInfo::metadata`].
    pub lock_metadata: Option<mongodb::bson::Document>,
}

impl MongoLocker {
    pub(crate) fn from_core(core: LockCore) -> Self {
        MongoLocker {
            core: Arc::new(core),
        }
    }

    /// The lock's key (the lock document's `_id`).
    pub fn key(&self) -> &str {
        self.core.key()
    }

    /// This locker's owner identity, a random UUID chosen at creation.
    pub fn uuid(&self) -> &str {
        &self.core.owner().uuid
    }

    /// The lease length of each acquisition.
    pub fn ttl(&self) -> Duration {
        self.core.ttl()
    }

    /// The name of the collection holding the lock documents.
    pub fn collection(&self) -> &str {
        self.core.collection_name()
    }

    /// Takes the lock, with the semantics of Python's `threading.Lock.acquire`.
    ///
    /// Each attempt is one atomic round trip that takes the lock when it is
    /// absent, released or expired (in server time), and otherwise reports it
    /// held. With `blocking`, attempts repeat every `step` until one succeeds
    /// or `timeout` (if any) has passed. `force` takes the lock even from a
    /// live holder: use it only when you know the holder is gone.
    ///
    /// Returns `Ok(true)` when acquired, `Ok(false)` when a non-blocking
    /// attempt finds the lock held or a blocking one reaches its timeout.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidArgument`](crate::Error::InvalidArgument): `timeout` with `blocking = false`, or a
    ///   `step` of zero or over an hour.
    /// - [`Error::AlreadyHeld`](crate::Error::AlreadyHeld): this locker already holds the lock.
    /// - [`Error::ClockSkew`](crate::Error::ClockSkew): `timeparanoid` is on and the clocks differ by
    ///   more than 0.5 s (checked on the first acquire, then every 10 minutes).
    /// - [`Error::MalformedDocument`](crate::Error::MalformedDocument): the lock document was written by
    ///   something else; it was not taken.
    /// - [`Error::Database`](crate::Error::Database): the driver failed; the
    ///   [`DatabaseError`](crate::DatabaseError) names the operation
    ///   (`acquire`, or `lock`, `try_lock`, `try_lock_for`) and the key, and
    ///   says whether the database was unreachable. A blocking attempt
    ///   rides through a failover: a [transient](crate::DatabaseError::is_transient)
    ///   error (unreachable, server selection timed out, not primary,
    ///   shutting down, a retryable label) is logged as a warning and
    ///   retried every `step` until the timeout, which then returns the
    ///   last such error (or `Ok(false)` if the last attempt found the
    ///   lock held); any other error returns at once. A non-blocking
    ///   attempt returns every error at once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let step = Duration::from_millis(250);
    /// if locker.acquire(true, Some(Duration::from_secs(5)), step, false)? {
    ///     // ... critical section ...
    ///     locker.release(false)?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
        step: Duration,
        force: bool,
    ) -> Result<bool> {
        // The Python arguments, as one wait (a timeout without blocking is
        // refused here, once).
        let acquired = match Wait::from_python(blocking, timeout)? {
            Some(wait) => self.core.acquire(wait, step, force).map(|t| t.is_some()),
            None => self.core.acquire_until_granted(step, force).map(|_| true),
        };
        acquired.during("acquire", self.key())
    }

    /// Frees the lock.
    ///
    /// With `force = false` it frees only this locker's current acquisition
    /// (matched by uuid and fence token), so a repeated or stale release
    /// never frees a newer holder's lock; when this locker holds nothing it
    /// does no I/O. With `force = true` it frees the lock whoever holds it.
    ///
    /// Returns `true` when this call freed a lock that was held (taken and
    /// not yet expired). This locker forgets its acquisition whatever the
    /// outcome, so after an error the lock stays taken until it expires or
    /// this locker acquires it again.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// assert!(locker.acquire(false, None, Duration::from_millis(250), false)?);
    /// assert!(locker.release(false)?);
    /// assert!(!locker.release(false)?); // nothing left to free
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, force: bool) -> Result<bool> {
        if force {
            self.core.release_anyone()
        } else {
            self.core.release_fence(None)
        }
        .during("release", self.key())
    }

    /// Renews this locker's acquisition: its expiry becomes server now plus
    /// the ttl, and its local deadline moves accordingly.
    ///
    /// Returns the new expiry (server time), or `None` when this locker does
    /// not hold the lock any more (never acquired, released, expired, or
    /// taken by force; then it forgets the acquisition, and a guard's
    /// [`lost`](crate::LockGuard::lost) receivers get
    /// [`TakenOver`](crate::LossReason::TakenOver)), or when its acquisition
    /// was already lost (past its local deadline: no round trip; acquire
    /// anew).
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument). The acquisition is
    /// kept; its local deadline is not extended.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// match locker.touch()? {
    ///     Some(expires) => println!("held until {expires}"),
    ///     None => println!("lost it"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn touch(&self) -> Result<Option<DateTime<Utc>>> {
        self.core.touch_fence(None).during("touch", self.key())
    }

    /// Whether anyone (this locker or another) holds the lock now, in server
    /// time. A look before you leap: it does not mean a later acquire fails.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// if !locker.locked()? {
    ///     println!("nobody is doing the job right now");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Ok(self.core.current().during("locked", self.key())?.is_some())
    }

    /// Whether this locker holds the lock now, according to the database
    /// (the stored uuid is this locker's and the lease has not expired in
    /// server time).
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let _guard = locker.lock()?;
    /// assert!(locker.owned()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owned(&self) -> Result<bool> {
        Ok(self
            .core
            .current()
            .during("owned", self.key())?
            .is_some_and(|info| info.uuid == self.core.owner().uuid))
    }

    /// The live lock (taken and not expired in server time), whoever holds it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// match locker.get_current()? {
    ///     Some(info) => println!("held by pid {} on {}", info.pid, info.host),
    ///     None => println!("free"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_current(&self) -> Result<Option<LockInfo>> {
        self.core.current().during("get_current", self.key())
    }

    /// This locker's identity and the lock's state, in one read.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let status = locker.status()?;
    /// assert_eq!(status.uuid, locker.uuid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Result<LockStatus> {
        let (live, timestamp) = match self.core.read().during("status", self.key())? {
            Some((record, now)) => (record.live_at(now), now),
            None => (None, Utc::now()),
        };
        Ok(LockStatus {
            uuid: self.core.owner().uuid.clone(),
            key: self.core.key().to_owned(),
            ttl: self.core.ttl(),
            timestamp,
            host: self.core.owner().host.clone(),
            pid: self.core.owner().pid,
            lock_owned: live
                .as_ref()
                .is_some_and(|i| i.uuid == self.core.owner().uuid),
            lock_created: live.as_ref().map(|i| i.created),
            lock_expires: live.as_ref().map(|i| i.expires),
            lock_metadata: live.and_then(|i| i.metadata),
        })
    }

    /// Blocks until the lock is acquired (retrying every
    /// [`step`](crate::LockerBuilder::step)) and returns a guard that releases it
    /// when dropped.
    ///
    /// It waits with no time limit, as a plain mutex does, and each locker
    /// is its own owner: a *second* locker on the same key, called in the
    /// thread whose guard of the first one is still alive, blocks until the
    /// first lease expires (the ttl, 600 s by default; forever with
    /// [`keep_alive`](crate::LockerBuilder::keep_alive)), because that
    /// thread cannot release the first guard while it waits. Use
    /// [`try_lock_for`](Self::try_lock_for) to bound the wait. (The *same*
    /// locker, still holding, fails at once with
    /// [`Error::AlreadyHeld`](crate::Error::AlreadyHeld).)
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// assert!(guard.is_valid());
    /// guard.release()?; // or just drop it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard> {
        let tenure = self
            .core
            .acquire_until_granted(self.core.step(), false)
            .during("lock", self.key())?;
        Ok(LockGuard::new(self.core.clone(), tenure))
    }

    /// One attempt: a guard when the lock was free, `None` when it is held.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// if let Some(guard) = locker.try_lock()? {
    ///     println!("got it, fence {}", guard.fence());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock(&self) -> Result<Option<LockGuard>> {
        let tenure = self
            .core
            .acquire(Wait::Once, self.core.step(), false)
            .during("try_lock", self.key())?;
        Ok(tenure.map(|tenure| LockGuard::new(self.core.clone(), tenure)))
    }

    /// Retries every [`step`](crate::LockerBuilder::step) for up to `timeout`: a
    /// guard when acquired, `None` when the time ran out.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// match locker.try_lock_for(Duration::from_secs(2))? {
    ///     Some(_guard) => println!("acquired"),
    ///     None => println!("still busy after 2 s"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_lock_for(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        let lease = self
            .core
            .acquire(Wait::For(timeout), self.core.step(), false)
            .during("try_lock_for", self.key())?;
        Ok(lease.map(|tenure| LockGuard::new(self.core.clone(), tenure)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn locker_is_send_sync() {
        assert_send_sync::<MongoLocker>();
        assert_send_sync::<crate::LockerBuilder>();
    }
}
