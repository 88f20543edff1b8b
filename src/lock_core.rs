//! [`LockCore`]: one locker's identity, settings and current acquisition,
//! and every operation on them. Shared (through an `Arc`) by the
//! [`MongoLocker`](crate::MongoLocker) and its [`LockGuard`](crate::LockGuard)s,
//! which only call its methods.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::clock::ClockCheck;
use crate::document::{LockInfo, LockRecord};
use crate::error::{Error, Result};
use crate::lease::{self, Lease};
use crate::moment::Moment;
use crate::owner::Owner;
use crate::store::{LockStore, Whose};
use crate::validate;
use crate::watch::{Hub, Interest};

/// A locker's identity and state.
#[derive(Debug)]
pub(crate) struct LockCore {
    key: String,
    owner: Owner,
    ttl: Duration,
    step: Duration,
    store: LockStore,
    clock: ClockCheck,
    /// Serialises this locker's acquire attempts, touches and releases, so
    /// that its view of the lease matches the database's.
    op: Mutex<()>,
    /// The acquisition this locker holds, if any. Locked only briefly.
    lease: Mutex<Option<Lease>>,
    /// Whether blocking acquires wait on a change stream (where supported).
    change_streams: bool,
}

/// One acquire attempt's answer.
enum Attempt {
    Won(Lease),
    /// Held by another (its expiry, when the answer named a holder).
    Held {
        expires: Option<DateTime<Utc>>,
    },
}

impl LockCore {
    /// A new identity on `key`, holding nothing. No I/O.
    pub fn new(
        key: String,
        store: LockStore,
        ttl: Duration,
        step: Duration,
        timeparanoid: bool,
        change_streams: bool,
    ) -> Self {
        LockCore {
            key,
            owner: Owner::new(),
            ttl,
            step,
            store,
            clock: ClockCheck::new(timeparanoid),
            op: Mutex::new(()),
            lease: Mutex::new(None),
            change_streams,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The interval between attempts of `lock` and `try_lock_for`.
    pub fn step(&self) -> Duration {
        self.step
    }

    pub fn collection_name(&self) -> &str {
        self.store.collection_name()
    }

    /// The lock document and the server's clock, read together.
    pub fn read(&self) -> Result<Option<(LockRecord, DateTime<Utc>)>> {
        self.store.read(&self.key)
    }

    /// The live holder (taken and not expired in server time), if any.
    pub fn current(&self) -> Result<Option<LockInfo>> {
        self.store.current(&self.key)
    }

    /// Takes the lock (see `MongoLocker::acquire`): the lease obtained, or
    /// `None` when a non-blocking attempt found it held or the timeout passed.
    pub fn acquire(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
        step: Duration,
        force: bool,
    ) -> Result<Option<Lease>> {
        validate::acquire_args(blocking, timeout, step)?;
        self.refuse_if_held()?;
        self.clock.check_if_due(&self.store)?;
        let give_up = timeout.and_then(|t| Instant::now().checked_add(t));
        // Interest in the key's changes, re-armed before each attempt so a
        // release between the attempt and the wait still wakes it. Taken
        // only once the first attempt failed: an acquire that never waits
        // opens no stream (a release right between that first attempt and
        // the registration is noticed one step late).
        let mut interest: Option<Interest> = None;
        loop {
            if let Some(i) = &mut interest {
                i.rearm();
            }
            let holder_expires = match self.attempt(force)? {
                Attempt::Won(lease) => return Ok(Some(lease)),
                Attempt::Held { expires } => expires,
            };
            if !blocking {
                return Ok(None);
            }
            if interest.is_none() {
                interest = self.hub().map(|hub| hub.interest(&self.key));
            }
            let left = match give_up {
                None => None,
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            let grace =
                chrono::TimeDelta::from_std(self.store.grace()).unwrap_or(chrono::TimeDelta::MAX);
            let pause =
                lease::retry_pause(step, left, holder_expires.map(|e| e - Utc::now() + grace));
            match &mut interest {
                Some(i) => {
                    i.wait_until(Instant::now() + pause, || false);
                }
                None => std::thread::sleep(pause),
            }
        }
    }

    fn refuse_if_held(&self) -> Result<()> {
        let mut lease = self.lease.lock();
        match *lease {
            Some(l) if l.valid_at(Moment::now()) => Err(Error::AlreadyHeld {
                key: self.key.clone(),
                fence: l.fence,
            }),
            // Past its local deadline: stale, a new acquisition may replace it.
            Some(_) => {
                *lease = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// One acquire round trip: the lease, when this locker now holds the lock.
    fn attempt(&self, force: bool) -> Result<Attempt> {
        let _op = self.op.lock();
        // Another thread sharing this locker may have won meanwhile.
        self.refuse_if_held()?;
        let sent = Moment::now();
        match self
            .store
            .try_acquire(&self.key, &self.owner, None, self.ttl, force)?
        {
            Some(LockRecord::Taken(info)) if info.uuid == self.owner.uuid => {
                let lease = Lease::granted(info.fence, info.expires, sent, self.ttl);
                if !lease.valid_at(Moment::now()) {
                    // The answer came after the lease's local deadline (a
                    // slow round trip on a short ttl): nothing to act on.
                    // The lock names this locker until it expires; the next
                    // attempt retakes it with a new fence.
                    log::debug!("acquire `{}`: answer came too late to use", self.key);
                    return Ok(Attempt::Held { expires: None });
                }
                *self.lease.lock() = Some(lease);
                log::debug!("acquired `{}` with fence {}", self.key, info.fence);
                Ok(Attempt::Won(lease))
            }
            Some(LockRecord::Taken(info)) => Ok(Attempt::Held {
                expires: Some(info.expires),
            }),
            _ => Ok(Attempt::Held { expires: None }),
        }
    }

    /// The change stream hub to wait on, unless change streams are off.
    /// Only the waiter's `Interest` keeps it: it closes when nobody waits.
    fn hub(&self) -> Option<Arc<Hub>> {
        self.change_streams.then(|| self.store.hub())
    }

    /// Releases this locker's acquisition; when `fence` is given, only if it
    /// is that acquisition.
    pub fn release_fence(&self, fence: Option<i64>) -> Result<bool> {
        let _op = self.op.lock();
        let Some(lease) = self.take_lease_if(fence) else {
            return Ok(false);
        };
        self.store
            .release(&self.key, Whose::Acquisition(&self.owner.uuid, lease.fence))
    }

    /// Frees the lock whoever holds it, forgetting this locker's acquisition.
    pub fn release_anyone(&self) -> Result<bool> {
        let _op = self.op.lock();
        self.lease.lock().take();
        self.store.release(&self.key, Whose::Anyone)
    }

    fn take_lease_if(&self, fence: Option<i64>) -> Option<Lease> {
        let mut lease = self.lease.lock();
        match (*lease, fence) {
            (Some(l), Some(f)) if l.fence != f => None,
            _ => lease.take(),
        }
    }

    /// Renews this locker's acquisition (when `fence` is given, only if it
    /// is that one): the new expiry, or `None` when it no longer holds it.
    pub fn touch_fence(&self, fence: Option<i64>) -> Result<Option<DateTime<Utc>>> {
        let _op = self.op.lock();
        let Some(held) = *self.lease.lock() else {
            return Ok(None);
        };
        if fence.is_some_and(|f| f != held.fence) {
            return Ok(None);
        }
        let sent = Moment::now();
        let renewed = self
            .store
            .touch(&self.key, &self.owner.uuid, held.fence, self.ttl)?;
        let mut lease = self.lease.lock();
        *lease = renewed.map(|expires| Lease::granted(held.fence, expires, sent, self.ttl));
        Ok(renewed)
    }

    /// This locker's current acquisition, as it knows it locally.
    pub fn lease(&self) -> Option<Lease> {
        *self.lease.lock()
    }
}
