//! [`Holding`]: what every guard (a lock's [`LockGuard`](crate::LockGuard),
//! a semaphore's [`Permit`](crate::Permit), a read-write lock's
//! [`ReadGuard`](crate::ReadGuard) and [`WriteGuard`](crate::WriteGuard))
//! is made of: one grant's fence and [`Tenure`], and the [`Holder`] that
//! renews and releases it by fence. The guards add only their docs.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;

use crate::error::{During, Result};
use crate::foundation::loss::LossReason;
use crate::foundation::moment::Moment;
use crate::foundation::tenure::{LeaseView, Tenure};

/// What holds grants and can renew or release one of them by its fence:
/// the lock's core, the many-holder primitives' core.
pub(crate) trait Holder: Send + Sync {
    /// The key, for errors and logs.
    fn key(&self) -> &str;
    /// Renews grant `fence`: its new server expiry, or `None` when it no
    /// longer holds (then its `lost()` receivers are told `TakenOver`).
    fn touch_fence(&self, fence: i64) -> Result<Option<DateTime<Utc>>>;
    /// Releases grant `fence` (true when the database still had it).
    fn release_fence(&self, fence: i64) -> Result<bool>;
}

/// One grant, released when dropped unless released already.
pub(crate) struct Holding {
    holder: Arc<dyn Holder>,
    /// Set once [`release`](Self::release) has run, so that the drop that
    /// follows does not release again.
    released: bool,
    tenure: Arc<Tenure>,
}

impl Holding {
    pub fn new(holder: Arc<dyn Holder>, tenure: Arc<Tenure>) -> Self {
        Holding {
            holder,
            released: false,
            tenure,
        }
    }

    pub fn key(&self) -> &str {
        self.holder.key()
    }

    pub fn fence(&self) -> i64 {
        self.tenure.fence()
    }

    /// The lease as a fenced write reads it at each write: its current
    /// server expiry, and whether it is still in force (a write after the
    /// guard's release, loss or deadline is refused without a round trip).
    pub fn lease_view(&self) -> Arc<dyn LeaseView> {
        self.tenure.clone()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.tenure.lease().expires
    }

    pub fn is_valid(&self) -> bool {
        self.tenure.valid_at(Moment::now())
    }

    pub fn deadline(&self) -> Instant {
        self.tenure.lease().deadline.to_instant()
    }

    pub fn lost(&self) -> Receiver<LossReason> {
        self.tenure.subscribe()
    }

    pub fn touch(&self) -> Result<Option<DateTime<Utc>>> {
        self.holder
            .touch_fence(self.fence())
            .during("touch", self.key())
    }

    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.tenure.release();
        // `self` is dropped on return, with all it owns.
        self.holder
            .release_fence(self.fence())
            .during("release", self.holder.key())
            .map(drop)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.tenure.release();
        if let Err(e) = self.holder.release_fence(self.fence()) {
            log::warn!(
                "dropping the guard (fence {}) did not release it; it stays held until it expires: {}",
                self.fence(),
                e.during("release", self.holder.key())
            );
        }
    }
}

/// The methods every many-holder guard shares with [`LockGuard`](crate::LockGuard),
/// over its `inner: Holding`. `$what` names the grant in the docs ("permit",
/// "read share"...); `$setup` is the example code that makes `guard`.
macro_rules! guard_methods {
    ($what:literal, $setup:literal) => {
        #[doc = concat!("The ", $what, "'s fence token: greater than that of every grant made before it")]
        /// on this key (one counter per key serves every grant).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// println!("fence {}", guard.fence());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn fence(&self) -> i64 {
            self.inner.fence()
        }

        #[doc = concat!("Fenced writes to `coll` under this ", $what, ", as [`LockGuard::fenced`](crate::LockGuard::fenced):")]
        /// each is applied only when the document holds no higher fence and
        /// reaches the server before this lease's expiry in server time.
        ///
        /// ```no_run
        /// use mongodb::bson::{doc, Document};
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let jobs = db.collection::<Document>("jobs");
        /// let written = guard.fenced(&jobs).upsert_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "done" } })?;
        /// println!("applied: {}", written.applied());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn fenced<'a, T: Send + Sync>(
            &self,
            coll: &'a mongodb::sync::Collection<T>,
        ) -> crate::Fenced<'a, T> {
            crate::Fenced::live(coll, self.inner.fence(), self.inner.lease_view())
        }

        /// When the lease expires in server time, unless renewed (the last
        /// expiry known, once the lease is gone).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// println!("held until {}", guard.expires_at());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn expires_at(&self) -> chrono::DateTime<chrono::Utc> {
            self.inner.expires_at()
        }

        #[doc = concat!("Whether the holder may still act on the ", $what, ", as [`LockGuard::is_valid`](crate::LockGuard::is_valid):")]
        /// it is still held and its local deadline (the monotonic instant the
        /// last grant or renewal was sent, plus the ttl, minus
        /// [`lease_margin`](crate::lease_margin)) has not passed. No I/O. It
        /// turns false before the server could count the entry as gone.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// assert!(guard.is_valid());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_valid(&self) -> bool {
            self.inner.is_valid()
        }

        /// The local deadline: the monotonic instant until which
        /// [`is_valid`](Self::is_valid) says true (unless renewed or lost
        /// meanwhile). No I/O.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let left = guard.deadline().saturating_duration_since(std::time::Instant::now());
        /// println!("{left:?} left before renewing");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn deadline(&self) -> std::time::Instant {
            self.inner.deadline()
        }

        #[doc = concat!("A receiver that gets exactly one [`LossReason`](crate::LossReason) when this ", $what, " ends")]
        /// other than by its own release, as [`LockGuard::lost`](crate::LockGuard::lost):
        /// `RenewalFailed` at the local deadline when no renewal succeeded
        /// before it, `TakenOver` when a renewal finds the entry gone (the
        /// document deleted or edited by someone else). Disconnected without
        /// a message on release.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let lost = guard.lost();
        /// if let Ok(reason) = lost.recv_timeout(std::time::Duration::from_secs(1)) {
        ///     eprintln!("lost: {reason:?}");
        /// }
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn lost(&self) -> crossbeam_channel::Receiver<crate::LossReason> {
            self.inner.lost()
        }

        /// Renews the lease now (one round trip): the new expiry, or `None`
        /// when this grant is no longer in the document (then
        /// [`lost`](Self::lost) receivers get `TakenOver`, unless it was
        /// lost or released already).
        ///
        /// # Errors
        ///
        /// [`Error::Database`](crate::Error::Database) or
        /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// if guard.touch()?.is_none() {
        ///     println!("lost it");
        /// }
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn touch(&self) -> crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
            self.inner.touch()
        }

        #[doc = concat!("Releases the ", $what, " now (one round trip), reporting errors that dropping it could only log.")]
        /// Releasing a grant that has expired or was removed is not an
        /// error. Renewals stop and [`lost`](Self::lost) receivers are
        /// disconnected at once; waiters on the key are woken.
        ///
        /// # Errors
        ///
        /// [`Error::Database`](crate::Error::Database).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// guard.release()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn release(self) -> crate::Result<()> {
            self.inner.release()
        }
    };
}

pub(crate) use guard_methods;
