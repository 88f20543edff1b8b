//! [`Holding`]: what every guard (a lock's [`LockGuard`](crate::LockGuard),
//! a semaphore's [`Permit`](crate::Permit), a read-write lock's
//! [`ReadGuard`](crate::ReadGuard) and [`WriteGuard`](crate::WriteGuard))
//! is made of: one grant's fence and [`Tenure`], and the [`Holder`] that
//! renews and releases it by fence. The guards' shared methods over it are
//! written once, in the crate's `guard` module.

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
