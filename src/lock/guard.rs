//! [`LockGuard`]: an acquisition that is released when dropped, and that
//! tells when it is lost.

use std::fmt;
use std::sync::Arc;

use crate::foundation::holding::Holding;
use crate::foundation::single::core::LockCore;
use crate::foundation::tenure::Tenure;
use crate::guard::guard_methods;

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

    guard_methods!(
        "lock",
        " let locker = mongoelector::MongoLocker::new(\"jobs\", &db)?;\n let guard = locker.lock()?;"
    );
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
    use chrono::Utc;

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
                fair: None,
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
