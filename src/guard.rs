//! [`LockGuard`]: an acquisition that is released when dropped.

use std::fmt;
use std::time::Instant;

use crate::moment::Moment;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::error::{During, Result};
use crate::lease::Lease;
use crate::lock_core::LockCore;
use std::sync::Arc;

/// One acquisition of a [`MongoLocker`](crate::MongoLocker), released when
/// the guard is dropped. The guard owns what it needs: it can outlive the
/// borrow of its locker and move to another thread.
///
/// Unlike a mutex guard, a lease can run out while the guard is alive (the
/// process paused, the database was unreachable for a ttl): check
/// [`is_valid`](Self::is_valid) before acting, renew long work with
/// [`touch`](Self::touch), and pass [`fence`](Self::fence) to the resource
/// you write so that it can refuse a holder that was too late.
///
/// # Examples
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
/// let guard = locker.lock()?;
/// for batch in 0..10 {
///     if !guard.is_valid() {
///         break; // the lease ran out: someone else may hold the lock now
///     }
///     println!("batch {batch} under fence {}", guard.fence());
///     guard.touch()?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard {
    locker: Arc<LockCore>,
    /// Set once [`release`](Self::release) has freed the lock, so that the
    /// drop that follows does not release again.
    released: bool,
    fence: i64,
    /// The last expiry this guard saw, for when the locker no longer holds it.
    expires: Mutex<DateTime<Utc>>,
    /// The last deadline this guard saw, likewise.
    lost_at: Mutex<Moment>,
}

impl LockGuard {
    pub(crate) fn new(locker: Arc<LockCore>, lease: Lease) -> Self {
        LockGuard {
            locker,
            released: false,
            fence: lease.fence,
            expires: Mutex::new(lease.expires),
            lost_at: Mutex::new(lease.deadline),
        }
    }

    /// This acquisition's lease, while the locker still holds it.
    fn lease(&self) -> Option<Lease> {
        self.locker.lease().filter(|l| l.fence == self.fence)
    }

    /// The acquisition's fence token: greater than that of every earlier
    /// acquisition of this key, by any locker.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let first = locker.lock()?.fence(); // guard dropped: released
    /// let second = locker.lock()?.fence();
    /// assert!(second > first);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// When the lease expires in server time, unless renewed (the last
    /// expiry known, once the lease is gone).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// println!("held until {}", guard.expires_at());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expires_at(&self) -> DateTime<Utc> {
        match self.lease() {
            Some(lease) => lease.expires,
            None => *self.expires.lock(),
        }
    }

    /// Whether the holder may still act on the lock: the locker still holds
    /// this acquisition and its local deadline (the monotonic instant the
    /// last acquire or touch was sent, plus the ttl, minus
    /// [`lease_margin`](crate::lease_margin)) has not passed. No I/O. It turns
    /// false before the server could grant the lock to anyone else.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// assert!(guard.is_valid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_valid(&self) -> bool {
        self.lease().is_some_and(|l| l.valid_at(Moment::now()))
    }

    /// The local deadline: the monotonic instant until which
    /// [`is_valid`](Self::is_valid) says true (unless renewed, or the
    /// acquisition is lost meanwhile). No I/O.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// let left = guard.deadline().saturating_duration_since(std::time::Instant::now());
    /// println!("{left:?} left to act before renewing");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(&self) -> Instant {
        match self.lease() {
            Some(lease) => lease.deadline,
            None => *self.lost_at.lock(),
        }
        .to_instant()
    }

    /// Renews the lease as [`MongoLocker::touch`](crate::MongoLocker::touch) does: the new expiry, or
    /// `None` when this acquisition no longer holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// if guard.touch()?.is_none() {
    ///     println!("lost the lock");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn touch(&self) -> Result<Option<DateTime<Utc>>> {
        let renewed = self
            .locker
            .touch_fence(Some(self.fence))
            .during("touch", self.locker.key())?;
        if let Some(lease) = self.lease() {
            *self.expires.lock() = lease.expires;
            *self.lost_at.lock() = lease.deadline;
        }
        Ok(renewed)
    }

    /// Releases the lock now, reporting errors that dropping the guard could
    /// only log. Releasing an acquisition that already lost the lock (expired
    /// or taken by force) frees nothing and is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database) or
    /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// guard.release()?;
    /// assert!(!locker.owned()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        // `self` is dropped on return, with all it owns.
        self.locker
            .release_fence(Some(self.fence))
            .during("release", self.locker.key())
            .map(drop)
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Err(e) = self.locker.release_fence(Some(self.fence)) {
            log::warn!(
                "dropping the guard (fence {}) did not free the lock; it stays taken until it expires: {}",
                self.fence,
                e.during("release", self.locker.key())
            );
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.locker.key())
            .field("fence", &self.fence)
            .field("expires_at", &self.expires_at())
            .field("is_valid", &self.is_valid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn guard_is_send_sync() {
        assert_send_sync::<LockGuard>();
    }

    /// An explicit release drops everything the guard owns: the locker's
    /// shared state is freed once the locker is gone too. No server: the
    /// core holds no acquisition, so the release does no I/O.
    #[test]
    fn release_frees_the_shared_state() {
        let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/").unwrap();
        let db = client.database("unused");
        let core = Arc::new(LockCore::new(
            "k".to_owned(),
            crate::store::LockStore::new(&db, "locks", std::time::Duration::ZERO),
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(10),
            false,
            false,
        ));
        let lease = Lease::granted(
            1,
            Utc::now(),
            Moment::now(),
            std::time::Duration::from_secs(1),
        );
        let weak = Arc::downgrade(&core);
        let guard = LockGuard::new(core, lease);
        assert_eq!(weak.strong_count(), 1);
        guard.release().unwrap();
        assert!(
            weak.upgrade().is_none(),
            "release leaked the locker's state"
        );
    }
}
