//! [`MongoLocker`]: the distributed lock, and its builder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mongodb::sync::Database;
use parking_lot::Mutex;

use crate::clock::ClockCheck;
use crate::document::{LockInfo, LockRecord};
use crate::error::{Error, Result};
use crate::guard::LockGuard;
use crate::lease::{self, Lease};
use crate::store::{LockStore, Owner, Whose};
use crate::validate;
use crate::watch::{Hub, Interest};

/// Default lock collection, as in the Python package.
pub const DEFAULT_COLLECTION: &str = "mongolocker";
/// Default lease length, as in the Python package.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default interval between attempts of a blocking acquire, as in the Python package.
pub const DEFAULT_STEP: Duration = Duration::from_millis(250);

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
    core: Arc<Core>,
}

/// A locker's identity and state, shared with its guards.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) key: String,
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

/// Builds a [`MongoLocker`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use mongoelector::MongoLocker;
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let locker = MongoLocker::builder("nightly-report", &db)
///     .collection("locks")
///     .ttl(Duration::from_secs(30))
///     .timeparanoid(false)
///     .build()?;
/// assert_eq!(locker.ttl(), Duration::from_secs(30));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct LockerBuilder {
    key: String,
    db: Database,
    collection: String,
    ttl: Duration,
    step: Duration,
    timeparanoid: bool,
    change_streams: bool,
}

impl LockerBuilder {
    /// Whether a blocking acquire waits on a change stream of the lock
    /// collection, retrying as soon as the lock is released or changes
    /// hands (default `true`). Where the deployment has no change streams
    /// (a standalone server) it polls every step all the same; `false`
    /// always polls. One stream per process and collection serves every
    /// waiter; a process that never waits opens none.
    pub fn change_streams(mut self, on: bool) -> Self {
        self.change_streams = on;
        self
    }

    /// The collection that holds the lock documents (default `"mongolocker"`).
    pub fn collection(mut self, name: &str) -> Self {
        self.collection = name.to_owned();
        self
    }

    /// How long an acquisition lasts unless renewed with
    /// [`touch`](MongoLocker::touch) (default 600 s; 100 ms to one year).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether acquire first checks that the local clock is within 0.5 s of
    /// the server's (default `true`). Safety never depends on it.
    pub fn timeparanoid(mut self, on: bool) -> Self {
        self.timeparanoid = on;
        self
    }

    /// The interval between attempts of [`lock`](MongoLocker::lock) and
    /// [`try_lock_for`](MongoLocker::try_lock_for) (default 250 ms; 1 ms to
    /// one hour). [`acquire`](MongoLocker::acquire) takes its own `step`.
    pub fn step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Checks the settings and creates the locker. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `key`, `collection`, `ttl` or `step`.
    pub fn build(self) -> Result<MongoLocker> {
        validate::key(&self.key)?;
        validate::collection("collection", &self.collection)?;
        validate::ttl("ttl", self.ttl)?;
        validate::step("step", self.step)?;
        Ok(MongoLocker {
            core: Arc::new(Core {
                store: LockStore::new(&self.db, &self.collection),
                key: self.key,
                owner: Owner::new(),
                ttl: self.ttl,
                step: self.step,
                clock: ClockCheck::new(self.timeparanoid),
                op: Mutex::new(()),
                lease: Mutex::new(None),
                change_streams: self.change_streams,
            }),
        })
    }
}

/// A snapshot of a locker and its lock, as the Python package's `status`.
///
/// ```no_run
/// # fn demo(locker: &mongoelector::MongoLocker) -> mongoelector::Result<()> {
/// let status = locker.status()?;
/// println!("{} owned={} expires={:?}", status.key, status.lock_owned, status.lock_expires);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

impl MongoLocker {
    /// A locker on `key` with the Python package's defaults: collection
    /// `"mongolocker"`, ttl 600 s, `timeparanoid` on. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `key` is empty.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("jobs", &db)?;
    /// assert_eq!(locker.key(), "jobs");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database) -> Result<MongoLocker> {
        Self::builder(key, db).build()
    }

    /// A builder for a locker on `key`; see [`LockerBuilder`].
    pub fn builder(key: &str, db: &Database) -> LockerBuilder {
        LockerBuilder {
            key: key.to_owned(),
            db: db.clone(),
            collection: DEFAULT_COLLECTION.to_owned(),
            ttl: DEFAULT_TTL,
            step: DEFAULT_STEP,
            timeparanoid: true,
            change_streams: true,
        }
    }

    /// The lock's key (the lock document's `_id`).
    pub fn key(&self) -> &str {
        &self.core.key
    }

    /// This locker's owner identity, a random UUID chosen at creation.
    pub fn uuid(&self) -> &str {
        &self.core.owner.uuid
    }

    /// The lease length of each acquisition.
    pub fn ttl(&self) -> Duration {
        self.core.ttl
    }

    /// The name of the collection holding the lock documents.
    pub fn collection(&self) -> &str {
        self.core.store.collection_name()
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
    /// - [`Error::InvalidArgument`]: `timeout` with `blocking = false`, or a
    ///   `step` of zero or over an hour.
    /// - [`Error::AlreadyHeld`]: this locker already holds the lock.
    /// - [`Error::ClockSkew`]: `timeparanoid` is on and the clocks differ by
    ///   more than 0.5 s (checked on the first acquire, then every 10 minutes).
    /// - [`Error::MalformedDocument`]: the lock document was written by
    ///   something else; it was not taken.
    /// - [`Error::Database`]: the driver failed.
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
        Ok(self
            .acquire_lease(blocking, timeout, step, force)?
            .is_some())
    }

    /// [`acquire`](Self::acquire), returning the lease it obtained.
    fn acquire_lease(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
        step: Duration,
        force: bool,
    ) -> Result<Option<Lease>> {
        validate::acquire_args(blocking, timeout, step)?;
        self.core.refuse_if_held()?;
        self.core.clock.check_if_due(&self.core.store)?;
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
            let holder_expires = match self.core.attempt(force)? {
                Attempt::Won(lease) => return Ok(Some(lease)),
                Attempt::Held { expires } => expires,
            };
            if !blocking {
                return Ok(None);
            }
            if interest.is_none() {
                interest = self.core.hub().map(|hub| hub.interest(&self.core.key));
            }
            let left = match give_up {
                None => None,
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            let pause = lease::retry_pause(step, left, holder_expires.map(|e| e - Utc::now()));
            match &mut interest {
                Some(i) => {
                    i.wait_until(Instant::now() + pause, || false);
                }
                None => std::thread::sleep(pause),
            }
        }
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
    /// [`Error::Database`] or [`Error::MalformedDocument`].
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
            let _op = self.core.op.lock();
            self.core.lease.lock().take();
            return self.core.store.release(&self.core.key, Whose::Anyone);
        }
        self.core.release_fence(None)
    }

    /// Renews this locker's acquisition: its expiry becomes server now plus
    /// the ttl, and its local deadline moves accordingly.
    ///
    /// Returns the new expiry (server time), or `None` when this locker does
    /// not hold the lock any more (never acquired, released, expired, or
    /// taken by force); in that case it forgets the acquisition.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`]. The acquisition is
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
        self.core.touch_fence(None)
    }

    /// Whether anyone (this locker or another) holds the lock now, in server
    /// time. A look before you leap: it does not mean a later acquire fails.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
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
        Ok(self.get_current()?.is_some())
    }

    /// Whether this locker holds the lock now, according to the database
    /// (the stored uuid is this locker's and the lease has not expired in
    /// server time).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
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
            .get_current()?
            .is_some_and(|info| info.uuid == self.core.owner.uuid))
    }

    /// The live lock (taken and not expired in server time), whoever holds it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
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
        self.core.store.current(&self.core.key)
    }

    /// This locker's identity and the lock's state, in one read.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
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
        let (live, timestamp) = match self.core.store.read(&self.core.key)? {
            Some((record, now)) => (record.live_at(now), now),
            None => (None, Utc::now()),
        };
        Ok(LockStatus {
            uuid: self.core.owner.uuid.clone(),
            key: self.core.key.clone(),
            ttl: self.core.ttl,
            timestamp,
            host: self.core.owner.host.clone(),
            pid: self.core.owner.pid,
            lock_owned: live
                .as_ref()
                .is_some_and(|i| i.uuid == self.core.owner.uuid),
            lock_created: live.as_ref().map(|i| i.created),
            lock_expires: live.as_ref().map(|i| i.expires),
        })
    }

    /// Blocks until the lock is acquired (retrying every
    /// [`step`](LockerBuilder::step)) and returns a guard that releases it
    /// when dropped.
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
        loop {
            // Without a timeout this only returns once acquired.
            if let Some(lease) = self.acquire_lease(true, None, self.core.step, false)? {
                return Ok(LockGuard::new(&self.core, lease));
            }
        }
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
        let lease = self.acquire_lease(false, None, self.core.step, false)?;
        Ok(lease.map(|lease| LockGuard::new(&self.core, lease)))
    }

    /// Retries every [`step`](LockerBuilder::step) for up to `timeout`: a
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
        let lease = self.acquire_lease(true, Some(timeout), self.core.step, false)?;
        Ok(lease.map(|lease| LockGuard::new(&self.core, lease)))
    }
}

impl Core {
    fn refuse_if_held(&self) -> Result<()> {
        let mut lease = self.lease.lock();
        match *lease {
            Some(l) if l.valid_at(Instant::now()) => Err(Error::AlreadyHeld {
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
        let sent = Instant::now();
        match self
            .store
            .try_acquire(&self.key, &self.owner, self.ttl, force)?
        {
            Some(LockRecord::Taken(info)) if info.uuid == self.owner.uuid => {
                let lease = Lease::granted(info.fence, info.expires, sent, self.ttl);
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
    pub(crate) fn release_fence(&self, fence: Option<i64>) -> Result<bool> {
        let _op = self.op.lock();
        let Some(lease) = self.take_lease_if(fence) else {
            return Ok(false);
        };
        self.store
            .release(&self.key, Whose::Acquisition(&self.owner.uuid, lease.fence))
    }

    fn take_lease_if(&self, fence: Option<i64>) -> Option<Lease> {
        let mut lease = self.lease.lock();
        match (*lease, fence) {
            (Some(l), Some(f)) if l.fence != f => None,
            _ => lease.take(),
        }
    }

    pub(crate) fn touch_fence(&self, fence: Option<i64>) -> Result<Option<DateTime<Utc>>> {
        let _op = self.op.lock();
        let Some(held) = *self.lease.lock() else {
            return Ok(None);
        };
        if fence.is_some_and(|f| f != held.fence) {
            return Ok(None);
        }
        let sent = Instant::now();
        let renewed = self
            .store
            .touch(&self.key, &self.owner.uuid, held.fence, self.ttl)?;
        let mut lease = self.lease.lock();
        *lease = renewed.map(|expires| Lease::granted(held.fence, expires, sent, self.ttl));
        Ok(renewed)
    }

    /// This locker's current acquisition, as it knows it locally.
    pub(crate) fn lease(&self) -> Option<Lease> {
        *self.lease.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn locker_is_send_sync() {
        assert_send_sync::<MongoLocker>();
        assert_send_sync::<LockerBuilder>();
    }
}
