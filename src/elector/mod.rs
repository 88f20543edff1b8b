//! [`MongoElector`]: master election on a dedicated thread, reporting
//! transitions over crossbeam channels.

mod deadlines;
mod events;
mod role;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use mongodb::sync::Database;
use parking_lot::{Condvar, Mutex};

pub use events::{Event, POLL_EVENT_BACKLOG};
pub use role::LossReason;
pub use status::{ClusterDetail, NodeStatus, DEFAULT_STATUS_COLLECTION};

use crate::clock::ClockCheck;
use crate::document::LockRecord;
use crate::error::{Error, Result};
use crate::lease;
use crate::locker::DEFAULT_COLLECTION;
use crate::store::{LockStore, Owner, Whose};
use crate::validate;
use crate::watch::Interest;
use deadlines::Expire;
use events::Subscribers;
use role::{Outcome, Role, Transition};
use status::StatusStore;

/// Default lease length of the election lock, as in the Python package.
pub const DEFAULT_ELECTOR_TTL: Duration = Duration::from_secs(15);

/// The followers' default retry interval for a ttl: a fifth of it, at most
/// 5 s (3 s for the default 15 s ttl). A dead master is replaced within
/// `ttl + retry interval` (plus one round trip); a stopped one within the
/// retry interval.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mongoelector::default_retry_interval(Duration::from_secs(15)), Duration::from_secs(3));
/// assert_eq!(mongoelector::default_retry_interval(Duration::from_secs(600)), Duration::from_secs(5));
/// ```
pub fn default_retry_interval(ttl: Duration) -> Duration {
    (ttl / 5).min(Duration::from_secs(5))
}

/// Master election among all electors sharing a key, run on a dedicated
/// thread, with every change of role reported as an [`Event`].
///
/// Each poll is one atomic round trip: the master renews its lease (about
/// every ttl/3, so one failed renewal does not cost mastership), a follower
/// tries to take the lock when it is free or expired (every
/// [`retry_interval`](ElectorBuilder::retry_interval)). With status reporting
/// on, each poll also upserts this node's status: one more write.
///
/// A master that cannot renew steps down on its own monotonic clock: when
/// its local lease deadline (the send instant of its last successful renewal,
/// plus the ttl, minus [`lease_margin`](crate::lease_margin)) passes,
/// [`is_master`](Self::is_master) turns false and `LostMaster` is sent, even
/// while a database call hangs. That is before the server could grant the
/// lock to another node, so masters never overlap.
///
/// `MongoElector` is `Send + Sync` and every method takes `&self`: share it
/// through an `Arc` and stop it from any thread. Dropping a running elector
/// stops it.
///
/// # Examples
///
/// ```no_run
/// use mongoelector::{Event, MongoElector};
///
/// let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
/// let elector = MongoElector::new("scheduler", &client.database("app"))?;
/// let events = elector.events();
/// elector.start(false)?;
/// while let Ok(event) = events.recv() {
///     if let Event::BecameMaster { fence, .. } = event {
///         while elector.is_master() {
///             // do the master's work, passing `fence` to what it writes
///             # let _ = fence;
///             # break;
///         }
///     }
///     # break;
/// }
/// elector.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MongoElector {
    shared: Arc<Shared>,
    /// The elector thread of a non-blocking start, until joined.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Builds a [`MongoElector`] with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use mongoelector::MongoElector;
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let elector = MongoElector::builder("scheduler", &db)
///     .ttl(Duration::from_secs(10))
///     .retry_interval(Duration::from_secs(1))
///     .app_version(env!("CARGO_PKG_VERSION"))
///     .report_status(true)
///     .build()?;
/// assert_eq!(elector.poll_wait(), Duration::from_secs(1)); // a follower until elected
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ElectorBuilder {
    key: String,
    db: Database,
    ttl: Duration,
    retry: Option<Duration>,
    app_version: Option<String>,
    report_status: bool,
    timeparanoid: bool,
    change_streams: bool,
    collection: String,
    status_collection: String,
}

impl ElectorBuilder {
    /// The election lock's lease (default 15 s; 100 ms to one year). A dead
    /// master is replaced after at most about this long.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How often a follower tries to take the lock (default
    /// [`default_retry_interval`]`(ttl)`; at least 1 ms, at most the ttl).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry = Some(interval);
        self
    }

    /// The application's version, included in status reports.
    pub fn app_version(mut self, version: &str) -> Self {
        self.app_version = Some(version.to_owned());
        self
    }

    /// Whether each poll upserts this node's status into the status
    /// collection (default `true`).
    pub fn report_status(mut self, on: bool) -> Self {
        self.report_status = on;
        self
    }

    /// Whether a follower's poll first checks that the local clock is within
    /// 0.5 s of the server's (default `false`: the Python elector has no such
    /// switch; when on, the check is one extra `hello` on the first poll and
    /// then every 10 minutes). Safety never depends on it.
    pub fn timeparanoid(mut self, on: bool) -> Self {
        self.timeparanoid = on;
        self
    }

    /// Whether followers wait on a change stream of the lock collection and
    /// try at once when the master releases the lock or it changes hands
    /// (default `true`), and otherwise at the retry interval, or just after
    /// the master's lease expires when that comes first. Where the
    /// deployment has no change streams (a standalone server) they poll all
    /// the same; `false` always polls. One stream per process and collection
    /// serves every elector and lock in the process.
    pub fn change_streams(mut self, on: bool) -> Self {
        self.change_streams = on;
        self
    }

    /// The lock collection (default `"mongolocker"`).
    pub fn collection(mut self, name: &str) -> Self {
        self.collection = name.to_owned();
        self
    }

    /// The status collection (default `"elector.status"`).
    pub fn status_collection(mut self, name: &str) -> Self {
        self.status_collection = name.to_owned();
        self
    }

    /// Checks the settings and creates the elector, not yet running. No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `key`, `ttl`, `retry_interval`,
    /// `collection` or `status_collection`.
    pub fn build(self) -> Result<MongoElector> {
        validate::key(&self.key)?;
        validate::ttl("ttl", self.ttl)?;
        let retry = self
            .retry
            .unwrap_or_else(|| default_retry_interval(self.ttl));
        validate::step("retry_interval", retry)?;
        if retry > self.ttl {
            return Err(Error::invalid(
                "retry_interval",
                format!("must not exceed the ttl ({:?}), got {retry:?}", self.ttl),
            ));
        }
        validate::collection("collection", &self.collection)?;
        validate::collection("status_collection", &self.status_collection)?;
        if self.collection == self.status_collection {
            return Err(Error::invalid(
                "status_collection",
                "must differ from the lock collection",
            ));
        }
        Ok(MongoElector {
            shared: Arc::new_cyclic(|me| Shared {
                me: me.clone(),
                locks: LockStore::new(&self.db, &self.collection),
                status: StatusStore::new(&self.db, &self.status_collection),
                key: self.key,
                owner: Owner::new(),
                ttl: self.ttl,
                retry,
                app_version: self.app_version,
                report: self.report_status,
                clock: ClockCheck::new(self.timeparanoid),
                poll_lock: Mutex::new(()),
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                stop_flag: AtomicBool::new(false),
                change_streams: self.change_streams,
            }),
            thread: Mutex::new(None),
        })
    }
}

/// Another node holding the lock, as a poll saw it: its uuid and expiry.
type Holder = (String, DateTime<Utc>);

struct Shared {
    /// Itself, for the deadline thread.
    me: Weak<Shared>,
    key: String,
    owner: Owner,
    ttl: Duration,
    retry: Duration,
    app_version: Option<String>,
    report: bool,
    locks: LockStore,
    status: StatusStore,
    clock: ClockCheck,
    /// One poll (or surrender) at a time, whoever calls it.
    poll_lock: Mutex<()>,
    state: Mutex<State>,
    /// Wakes the elector thread (stop) and `stop()` (the loop ended).
    wake: Condvar,
    /// `stopping`, readable while waiting on the change stream hub.
    stop_flag: AtomicBool,
    /// Whether followers wait on a change stream (where supported).
    change_streams: bool,
}

struct State {
    role: Role,
    running: bool,
    stopping: bool,
    /// The other holder's expiry, as the last poll saw it.
    holder_expires: Option<DateTime<Utc>>,
    /// Counts starts, so `stop()` waits for the run it stopped, not a later one.
    run_id: u64,
    last_poll: Option<DateTime<Utc>>,
    subscribers: Subscribers,
}

impl Default for State {
    fn default() -> Self {
        State {
            role: Role::Follower,
            running: false,
            stopping: false,
            holder_expires: None,
            run_id: 0,
            last_poll: None,
            subscribers: Subscribers::default(),
        }
    }
}

impl Shared {
    /// Applies a role change and announces it, under the state lock, so
    /// transitions alternate and reach every receiver in order.
    fn apply(&self, st: &mut State, (role, transition): (Role, Option<Transition>)) {
        if let Role::Master(lease) = role {
            if st.role != role {
                // Elected or renewed: step down at the new deadline unless
                // renewed again before it, whatever this thread is doing then.
                deadlines::watch(lease.deadline, self.me.clone() as Weak<dyn Expire>);
            }
        }
        st.role = role;
        let Some(transition) = transition else {
            return;
        };
        let event = match transition {
            Transition::Became { fence, expires } => {
                log::info!("`{}`: became master (fence {fence})", self.key);
                Event::BecameMaster { fence, expires }
            }
            Transition::Lost { fence, reason } => {
                log::info!("`{}`: lost master (fence {fence}): {reason:?}", self.key);
                Event::LostMaster { fence, reason }
            }
        };
        st.subscribers.send(event);
        self.wake.notify_all();
    }

    fn expire(&self, st: &mut State) {
        let change = role::expire(st.role, Instant::now());
        self.apply(st, change);
    }

    fn is_master(&self) -> bool {
        let mut st = self.state.lock();
        self.expire(&mut st);
        st.role.live_lease(Instant::now()).is_some()
    }

    fn poll(&self) -> Result<()> {
        let _serial = self.poll_lock.lock();
        let polled_as = {
            let mut st = self.state.lock();
            self.expire(&mut st);
            st.role
        };
        let sent = Instant::now();
        let (outcome, holder, lock_result) = self.poll_round_trip(polled_as);
        let (master, holder_expires) = holder.unzip();
        {
            let mut st = self.state.lock();
            st.holder_expires = holder_expires;
            let change =
                role::after_poll(st.role, polled_as, &outcome, sent, self.ttl, Instant::now());
            self.apply(&mut st, change);
            st.last_poll = Some(Utc::now());
        }
        let result = lock_result.and_then(|()| {
            if self.report {
                self.report_status()
            } else {
                Ok(())
            }
        });
        let mut st = self.state.lock();
        if let Err(error) = &result {
            log::warn!("`{}`: poll failed: {error}", self.key);
            st.subscribers.send(Event::PollFailed {
                error: error.clone(),
            });
        }
        // Judged now, under the lock that orders events, so a `Polled`
        // never contradicts a `LostMaster` sent before it.
        self.expire(&mut st);
        let is_master = st.role.live_lease(Instant::now()).is_some();
        let master = if is_master {
            Some(self.owner.uuid.clone())
        } else {
            master
        };
        st.subscribers.send(Event::Polled {
            is_master,
            master,
            missed: 0,
        });
        result
    }

    /// The poll's one round trip: renew as master, try to take as follower.
    /// Also returns the other holder this poll saw (uuid, expiry), if any.
    fn poll_round_trip(&self, polled_as: Role) -> (Outcome, Option<Holder>, Result<()>) {
        match polled_as {
            Role::Master(lease) => {
                match self
                    .locks
                    .touch(&self.key, &self.owner.uuid, lease.fence, self.ttl)
                {
                    Ok(Some(expires)) => (Outcome::Renewed { expires }, None, Ok(())),
                    Ok(None) => (Outcome::NotRenewed, None, Ok(())),
                    Err(e) => (Outcome::Failed, None, Err(e)),
                }
            }
            Role::Follower => {
                let tried = self.clock.check_if_due(&self.locks).and_then(|()| {
                    self.locks
                        .try_acquire(&self.key, &self.owner, self.ttl, false)
                });
                match tried {
                    Ok(Some(LockRecord::Taken(info))) if info.uuid == self.owner.uuid => (
                        Outcome::Acquired {
                            fence: info.fence,
                            expires: info.expires,
                        },
                        None,
                        Ok(()),
                    ),
                    Ok(Some(LockRecord::Taken(info))) => (
                        Outcome::NotAcquired,
                        Some((info.uuid, info.expires)),
                        Ok(()),
                    ),
                    Ok(_) => (Outcome::NotAcquired, None, Ok(())),
                    Err(e) => (Outcome::Failed, None, Err(e)),
                }
            }
        }
    }

    /// Steps down (announcing it first), then frees the lock in the database.
    fn surrender(&self, reason: LossReason) -> Result<()> {
        let _serial = self.poll_lock.lock();
        let was = {
            let mut st = self.state.lock();
            let was = st.role;
            let change = role::surrender(st.role, reason);
            self.apply(&mut st, change);
            was
        };
        let uuid = self.owner.uuid.as_str();
        let whose = match (was, reason) {
            (Role::Master(lease), _) => Whose::Acquisition(uuid, lease.fence),
            // A follower can still be named by the lock: a renewal or an
            // acquisition that succeeded after this node stepped down, or
            // a poll whose outcome was lost. On stop, free that too, so the
            // next master need not wait for it to expire.
            (Role::Follower, LossReason::Stopped) => Whose::Owner(uuid),
            (Role::Follower, _) => return Ok(()),
        };
        self.locks.release(&self.key, whose).map(drop)
    }

    fn node_status(&self) -> NodeStatus {
        let mut st = self.state.lock();
        self.expire(&mut st);
        let lease = st.role.live_lease(Instant::now());
        NodeStatus {
            key: self.key.clone(),
            uuid: self.owner.uuid.clone(),
            host: self.owner.host.clone(),
            pid: self.owner.pid,
            ttl: self.ttl,
            is_master: lease.is_some(),
            running: st.running,
            last_poll: st.last_poll,
            app_version: self.app_version.clone(),
            timestamp: Utc::now(),
            fence: lease.map(|l| l.fence),
        }
    }

    fn report_status(&self) -> Result<()> {
        self.status
            .report(&self.node_status(), self.ttl + self.retry)
    }

    /// Creates the status TTL index if needed; a failure is only logged
    /// (the database may be down at start; reports work without it).
    fn ensure_status_index(&self) {
        if self.report {
            if let Err(e) = self.status.ensure_index() {
                log::warn!("`{}`: could not create the status TTL index: {e}", self.key);
            }
        }
    }

    fn poll_wait(&self) -> Duration {
        if self.is_master() {
            self.ttl / 3
        } else {
            self.retry
        }
    }

    /// The elector thread's loop: poll, sleep until the next poll or a stop.
    fn run(&self) {
        let _done = RunGuard(self);
        let mut interest: Option<Interest> = None;
        loop {
            if self.state.lock().stopping {
                break;
            }
            // A follower watches the key, re-armed before each poll so a
            // release during the poll still wakes it; registered after its
            // first poll that did not win, so a node that is elected at once
            // opens no stream.
            if let Some(i) = &mut interest {
                i.rearm();
            }
            // Errors are logged and announced by poll; keep going.
            let _ = self.poll();
            let master = self.is_master();
            if master {
                interest = None;
            } else if interest.is_none() && self.change_streams {
                interest = Some(self.locks.hub().interest(&self.key));
            }
            let pause = if master {
                self.ttl / 3
            } else {
                // The retry interval, or just past the holder's expiry if sooner.
                let expires = self.state.lock().holder_expires;
                lease::retry_pause(self.retry, None, expires.map(|e| e - Utc::now()))
            };
            let next = Instant::now() + pause;
            // A follower with a stream waits on it: until the next poll is
            // due, or at once on a change (or a stop).
            let on_stream = match &mut interest {
                Some(i) => {
                    i.wait_until(next, || self.stop_flag.load(Ordering::SeqCst));
                    true
                }
                None => false,
            };
            let mut st = self.state.lock();
            while !on_stream && !st.stopping && Instant::now() < next {
                self.wake.wait_until(&mut st, next);
            }
            if st.stopping {
                break;
            }
        }
        if let Err(e) = self.surrender(LossReason::Stopped) {
            log::warn!(
                "`{}`: releasing the lock on stop failed; it expires on its own: {e}",
                self.key
            );
        }
        if self.report {
            // The last report says "not running" and is not live any more.
            let mut last = self.node_status();
            last.running = false;
            if let Err(e) = self.status.report(&last, Duration::ZERO) {
                log::debug!("`{}`: final status report failed: {e}", self.key);
            }
        }
    }
}

impl Expire for Shared {
    fn expire_now(&self) {
        let mut st = self.state.lock();
        self.expire(&mut st);
    }
}

/// Marks the elector stopped when its loop ends, even by a panic, so that
/// `stop()` never waits forever.
struct RunGuard<'a>(&'a Shared);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.running = false;
        st.stopping = false;
        self.0.wake.notify_all();
    }
}

impl MongoElector {
    /// An elector on `key` with the Python package's defaults: ttl 15 s,
    /// status reporting on. Not running until [`start`](Self::start). No I/O.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `key` is empty.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// assert!(!elector.running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(key: &str, db: &Database) -> Result<MongoElector> {
        Self::builder(key, db).build()
    }

    /// A builder for an elector on `key`; see [`ElectorBuilder`].
    pub fn builder(key: &str, db: &Database) -> ElectorBuilder {
        ElectorBuilder {
            key: key.to_owned(),
            db: db.clone(),
            ttl: DEFAULT_ELECTOR_TTL,
            retry: None,
            app_version: None,
            report_status: true,
            timeparanoid: false,
            change_streams: true,
            collection: DEFAULT_COLLECTION.to_owned(),
            status_collection: DEFAULT_STATUS_COLLECTION.to_owned(),
        }
    }

    /// The election's key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// This node's owner identity.
    pub fn uuid(&self) -> &str {
        &self.shared.owner.uuid
    }

    /// The election lock's lease length.
    pub fn ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// The followers' retry interval.
    pub fn retry_interval(&self) -> Duration {
        self.shared.retry
    }

    /// A new receiver of every event from now on. Receivers never block the
    /// elector; a dropped receiver is forgotten. Unread poll reports are
    /// capped at [`POLL_EVENT_BACKLOG`] per receiver; transitions are kept.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let events = elector.events();
    /// elector.poll()?;
    /// println!("{:?}", events.try_recv());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self) -> Receiver<Event> {
        self.shared.state.lock().subscribers.subscribe()
    }

    /// Starts polling. With `blocking = false` it spawns the elector thread
    /// and returns once it runs; with `blocking = true` it runs the loop on
    /// the calling thread until [`stop`](Self::stop) is called from another.
    /// Either way, one process-wide thread (shared by all electors) steps a
    /// master down at its lease deadline even while this elector's thread is
    /// stuck in a database call.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyRunning`], or [`Error::Spawn`] when a thread cannot be
    /// spawned. Database errors do not stop it: they are announced as
    /// [`Event::PollFailed`] and retried.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.start(false)?;
    /// assert!(elector.running());
    /// assert!(elector.start(false).is_err()); // already running
    /// elector.stop()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&self, blocking: bool) -> Result<()> {
        let mut thread = self.thread.lock();
        {
            let mut st = self.shared.state.lock();
            if st.running {
                return Err(Error::AlreadyRunning {
                    key: self.shared.key.clone(),
                });
            }
            st.running = true;
            st.stopping = false;
            st.run_id += 1;
            self.shared.stop_flag.store(false, Ordering::SeqCst);
        }
        self.shared.ensure_status_index();
        // The thread of an earlier run has finished (stop waited for it);
        // collect it.
        if let Some(old) = thread.take() {
            let _ = old.join();
        }
        if blocking {
            drop(thread);
            self.shared.run();
            return Ok(());
        }
        let shared = self.shared.clone();
        let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
        let spawned = std::thread::Builder::new()
            .name(format!("mongoelector-{}", self.shared.key))
            .spawn(move || {
                let _ = started_tx.send(());
                shared.run();
            });
        match spawned {
            Ok(handle) => {
                *thread = Some(handle);
                let _ = started_rx.recv();
                Ok(())
            }
            Err(e) => {
                drop(RunGuard(&self.shared));
                Err(Error::Spawn(Arc::new(e)))
            }
        }
    }

    /// Stops the elector: wakes its thread at once, lets an in-flight poll
    /// finish, surrenders mastership (`LostMaster` with
    /// [`LossReason::Stopped`], then no more events) and releases the lock,
    /// and joins its threads. A stopped elector can be started again. On an
    /// elector that is not running it only surrenders mastership won by
    /// manual [`poll`](Self::poll)s.
    ///
    /// # Errors
    ///
    /// [`Error::ThreadPanicked`]; or, when not running, the release's
    /// database error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.start(false)?;
    /// elector.stop()?;
    /// assert!(!elector.running() && !elector.is_master());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) -> Result<()> {
        {
            let mut st = self.shared.state.lock();
            if !st.running {
                drop(st);
                return self.shared.surrender(LossReason::Stopped);
            }
            st.stopping = true;
            self.shared.stop_flag.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
            // A follower may be waiting on the change stream: wake it.
            if let Some(hub) = self.shared.locks.existing_hub() {
                hub.poke();
            }
            let run = st.run_id;
            while st.running && st.run_id == run {
                self.shared.wake.wait(&mut st);
            }
        }
        let handle = self.thread.lock().take();
        match handle.map(JoinHandle::join) {
            Some(Err(_)) => Err(Error::ThreadPanicked {
                key: self.shared.key.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// One poll, on the calling thread: renew the lease when master, try to
    /// take the lock when follower, then report status (when on). The
    /// elector thread calls this; call it yourself to drive an elector that
    /// is not started. Transitions and an [`Event::Polled`] are sent as by
    /// the thread.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], [`Error::ClockSkew`], [`Error::MalformedDocument`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.poll()?;
    /// println!("master: {}", elector.is_master());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self) -> Result<()> {
        self.shared.poll()
    }

    /// How long to wait before the next poll: ttl/3 while master, the retry
    /// interval otherwise.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// assert_eq!(elector.poll_wait(), elector.retry_interval());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_wait(&self) -> Duration {
        self.shared.poll_wait()
    }

    /// Surrenders mastership (`LostMaster` with [`LossReason::Released`]) and
    /// frees the lock, without stopping: a running elector keeps polling as
    /// a follower. Does nothing when not master.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] from freeing the lock; this node has stepped down
    /// all the same, and the lock expires on its own.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.release()?;
    /// assert!(!elector.is_master());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.shared.surrender(LossReason::Released)
    }

    /// Whether this node is master now: elected, and its local lease
    /// deadline has not passed. No I/O; it turns false on time even while
    /// the database is unreachable.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// if elector.is_master() {
    ///     // do the master's work
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_master(&self) -> bool {
        self.shared.is_master()
    }

    /// The local deadline of this node's mastership: the monotonic instant
    /// at which [`is_master`](Self::is_master) turns false unless a renewal
    /// succeeds first. `None` when not master. No I/O.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// if let Some(deadline) = elector.lease_deadline() {
    ///     println!("master for at least {:?} more", deadline - std::time::Instant::now());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_deadline(&self) -> Option<Instant> {
        let mut st = self.shared.state.lock();
        self.shared.expire(&mut st);
        st.role.live_lease(Instant::now()).map(|l| l.deadline)
    }

    /// Whether any node (this one or another) holds the election lock now,
    /// in server time.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// if !elector.master_exists()? {
    ///     println!("no master right now");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn master_exists(&self) -> Result<bool> {
        Ok(self.shared.locks.current(&self.shared.key)?.is_some())
    }

    /// Whether the elector's loop is running.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// assert!(!elector.running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn running(&self) -> bool {
        self.shared.state.lock().running
    }

    /// This node's status, from local state (no I/O; `timestamp` is the
    /// local clock). The `Result` keeps the Python package's shape.
    ///
    /// # Errors
    ///
    /// None at present.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let me = elector.node_status()?;
    /// assert_eq!(me.uuid, elector.uuid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn node_status(&self) -> Result<NodeStatus> {
        Ok(self.shared.node_status())
    }

    /// The election's live members (recent status reports, newest first)
    /// and its master, read from the lock document itself.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::MalformedDocument`].
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let cluster = elector.cluster_detail()?;
    /// println!("{} members, master {:?}", cluster.members.len(), cluster.master.map(|m| m.uuid));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cluster_detail(&self) -> Result<ClusterDetail> {
        Ok(ClusterDetail {
            members: self.shared.status.members(&self.shared.key)?,
            master: self.shared.locks.current(&self.shared.key)?,
        })
    }

    /// Upserts this node's status into the status collection now (each poll
    /// does this when status reporting is on). One write; the first also
    /// creates the TTL index that prunes old reports.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.report_status()?;
    /// assert_eq!(elector.cluster_detail()?.members.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn report_status(&self) -> Result<()> {
        self.shared.status.ensure_index()?;
        self.shared.report_status()
    }
}

impl Drop for MongoElector {
    fn drop(&mut self) {
        let master = matches!(self.shared.state.lock().role, Role::Master(_));
        if self.running() || master {
            if let Err(e) = self.stop() {
                log::warn!("stopping elector `{}` on drop failed: {e}", self.shared.key);
            }
        }
    }
}

impl std::fmt::Debug for MongoElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoElector")
            .field("key", &self.shared.key)
            .field("uuid", &self.shared.owner.uuid)
            .field("ttl", &self.shared.ttl)
            .field("retry_interval", &self.shared.retry)
            .field("running", &self.running())
            .field("is_master", &self.is_master())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn elector_and_events_are_send_sync() {
        assert_send_sync::<MongoElector>();
        assert_send_sync::<Event>();
    }

    #[test]
    fn retry_default() {
        assert_eq!(
            default_retry_interval(Duration::from_secs(1)),
            Duration::from_millis(200)
        );
        assert_eq!(
            default_retry_interval(Duration::from_secs(15)),
            Duration::from_secs(3)
        );
        assert_eq!(
            default_retry_interval(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
    }
}
