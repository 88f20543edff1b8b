//! [`LockGuard`]: an acquisition that is released when dropped, and that
//! tells when it is lost.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;

use mongodb::sync::Collection;

use crate::error::Result;
use crate::fenced::Fenced;
use crate::foundation::holding::Holding;
use crate::foundation::loss::LossReason;
use crate::foundation::single::core::LockCore;
use crate::foundation::tenure::Tenure;

/// One acquisition of a [`MongoLocker`](crate::MongoLocker), released when
/// the guard is dropped. The guard owns what it needs: it can outlive the
/// borrow of its locker and move to another thread.
///
/// Unlike a mutex guard, a lease can run out while the guard is alive (the
/// process paused, the database was unreachable for a ttl): check
/// [`is_valid`](Self::is_valid) before acting (or wait on
/// [`lost`](Self::lost)), renew long work with [`touch`](Self::touch) or
/// let [`keep_alive`](crate::LockerBuilder::keep_alive) renew it, and pass
/// [`fence`](Self::fence) to the resource you write so that it can refuse a
/// holder that was too late.
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
    inner: Holding,
}

impl LockGuard {
    pub(crate) fn new(locker: Arc<LockCore>, tenure: Arc<Tenure>) -> Self {
        LockGuard {
            inner: Holding::new(locker, tenure),
        }
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
        self.inner.fence()
    }

    /// Fenced writes to `coll` under this acquisition: each is applied only
    /// when the document holds no higher fence and reaches the server
    /// before this lease's expiry in server time (as last renewed, read at
    /// each write; see [`Fenced`]).
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// let guard = locker.lock()?;
    /// let jobs = db.collection::<Document>("jobs");
    /// let written = guard.fenced(&jobs).upsert_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "done" } })?;
    /// assert!(written.applied());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fenced<'a, T: Send + Sync>(&self, coll: &'a Collection<T>) -> Fenced<'a, T> {
        Fenced::live(coll, self.inner.fence(), self.inner.lease_view())
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
        self.inner.expires_at()
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
        self.inner.is_valid()
    }

    /// The local deadline: the monotonic instant until which
    /// [`is_valid`](Self::is_valid) says true (unless renewed, or the
    /// acquisition is lost meanwhile; the last one known once it ended).
    /// No I/O.
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
        self.inner.deadline()
    }

    /// A receiver that gets exactly one [`LossReason`] when this
    /// acquisition's lease ends other than by its own release:
    ///
    /// - [`LossReason::RenewalFailed`] at the local deadline (see
    ///   [`is_valid`](Self::is_valid)), with or without
    ///   [`keep_alive`](crate::LockerBuilder::keep_alive), when no renewal
    ///   succeeded before it (sent by a process-wide thread, on time even
    ///   while a renewal is stuck on an unresponsive server);
    /// - [`LossReason::TakenOver`] when a renewal (automatic or
    ///   [`touch`](Self::touch)) finds that the lock no longer names this
    ///   acquisition (forced away, or released by force).
    ///
    /// After the message it is disconnected. When the guard is released or
    /// dropped first (or the locker's own [`release`](crate::MongoLocker::release)
    /// frees this acquisition), it is disconnected without a message. Take
    /// as many receivers as you like: each gets the message; one taken
    /// after the loss gets it at once. Once lost, the acquisition never
    /// becomes valid again: acquire anew.
    ///
    /// ```no_run
    /// use crossbeam_channel::{select, RecvError};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::builder("jobs", &db)
    ///     .keep_alive(true)
    ///     .build()?;
    /// let guard = locker.lock()?;
    /// let lost = guard.lost();
    /// let work = crossbeam_channel::tick(std::time::Duration::from_secs(1));
    /// for _ in 0..60 {
    ///     select! {
    ///         recv(lost) -> reason => {
    ///             if let Ok(reason) = reason {
    ///                 eprintln!("lost the lock: {reason:?}; stopping");
    ///             }
    ///             break;
    ///         }
    ///         recv(work) -> _ => { /* one step of the long job */ }
    ///     }
    /// }
    /// # let _: Option<RecvError> = None;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lost(&self) -> Receiver<LossReason> {
        self.inner.lost()
    }

    /// Renews the lease as [`MongoLocker::touch`](crate::MongoLocker::touch) does: the new expiry, or
    /// `None` when this acquisition no longer holds the lock (then
    /// [`lost`](Self::lost) receivers get [`LossReason::TakenOver`], unless
    /// it was lost or released already).
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
        self.inner.touch()
    }

    /// Releases the lock now, reporting errors that dropping the guard could
    /// only log. Releasing an acquisition that already lost the lock (expired
    /// or taken by force) frees nothing and is not an error. Renewals stop
    /// and [`lost`](Self::lost) receivers are disconnected at once. With
    /// [`hold_at_least`](crate::LockerBuilder::hold_at_least), the lock
    /// stays unavailable to other lockers until the hold ends.
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
    pub fn release(self) -> Result<()> {
        self.inner.release()
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.inner.key())
            .field("fence", &self.fence())
            .field("expires_at", &self.expires_at())
            .field("is_valid", &self.is_valid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::moment::Moment;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn guard_is_send_sync() {
        assert_send_sync::<LockGuard>();
    }

    /// A locker on a URI nobody listens at (the tests here do no I/O), and
    /// a lease of `ttl` granted now.
    fn offline_core(ttl: std::time::Duration) -> (Arc<LockCore>, crate::foundation::lease::Lease) {
        let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/").unwrap();
        let db = client.database("unused");
        let core = Arc::new(LockCore::new(
            "k".to_owned(),
            crate::foundation::single::store::LockStore::new(
                &db,
                "locks",
                std::time::Duration::ZERO,
            ),
            crate::foundation::single::core::Settings {
                ttl,
                step: std::time::Duration::from_millis(10),
                timeparanoid: false,
                change_streams: false,
                keep_alive: false,
                hold: std::time::Duration::ZERO,
                owner: crate::foundation::owner::Owner::new(),
            },
        ));
        (
            core,
            crate::foundation::lease::Lease::granted(1, Utc::now(), Moment::now(), ttl),
        )
    }

    /// An explicit release drops everything the guard owns: the locker's
    /// shared state is freed once the locker is gone too. No server: the
    /// core holds no acquisition, so the release does no I/O.
    #[test]
    fn release_frees_the_shared_state() {
        let (core, lease) = offline_core(std::time::Duration::from_secs(1));
        let weak = Arc::downgrade(&core);
        let guard = LockGuard::new(core, Arc::new(Tenure::new(lease)));
        let lost = guard.lost();
        assert_eq!(weak.strong_count(), 1);
        guard.release().unwrap();
        assert!(
            weak.upgrade().is_none(),
            "release leaked the locker's state"
        );
        assert_eq!(
            lost.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected),
            "released: no message"
        );
    }

    /// A holder suspended past its lease (simulated: the lease clock jumps,
    /// `Instant` does not) wakes up with the guard invalid.
    #[test]
    fn a_guard_suspended_past_its_lease_is_invalid() {
        let (core, lease) = offline_core(std::time::Duration::from_secs(2));
        let guard = LockGuard::new(core, Arc::new(Tenure::new(lease)));
        assert!(guard.is_valid());
        crate::foundation::moment::simulate_suspend(std::time::Duration::from_secs(3));
        assert!(!guard.is_valid(), "valid after a suspend past its lease");
        drop(guard); // the locker holds no acquisition: no I/O
    }
}
