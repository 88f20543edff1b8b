//! [`MongoElector`]: the elector's public API. Its construction is in
//! `builder`, the work (the poll, the loop, stepping down) in `engine`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::election_loop;
use super::engine::{Engine, Stopping};
use super::events::Event;
use super::role::LossReason;
use crate::error::{During, Error, Result};
use crate::fenced::Fenced;
use crate::foundation::tenure::LeaseView;
use crate::foundation::validate;
use crate::limits::STOP_WAIT;

/// Master election among all electors sharing a key, run on a dedicated
/// thread, with every change of role reported as an [`Event`].
///
/// Each poll is one atomic round trip: the master renews its lease (about
/// every ttl/3, so one failed renewal does not cost mastership), a follower
/// tries to take the lock when it is free or expired (every
/// [`retry_interval`](crate::ElectorBuilder::retry_interval)). A follower
/// whose change stream is live sends no lock attempt while the master
/// renews: it waits on the stream, and when the master's lease would run
/// out it looks (one read) and tries only if the lock can be taken. With
/// status reporting on, the elector thread upserts this node's status on
/// each change of role and every ttl or two: one more write.
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
    engine: Arc<Engine>,
    /// The elector thread of a non-blocking start, until joined.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Ends a run whose thread did not start (spawn failed or panicked).
struct PendingRun<'a>(&'a Engine);

impl Drop for PendingRun<'_> {
    fn drop(&mut self) {
        self.0.end_run();
    }
}

impl MongoElector {
    /// The engine behind this handle (for the rest of the public API).
    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn from_engine(engine: Arc<Engine>) -> Self {
        MongoElector {
            engine,
            thread: Mutex::new(None),
        }
    }
}

impl MongoElector {
    /// The election's key.
    pub fn key(&self) -> &str {
        self.engine.key()
    }

    /// This node's owner identity.
    pub fn uuid(&self) -> &str {
        self.engine.uuid()
    }

    /// The election lock's lease length.
    pub fn ttl(&self) -> Duration {
        self.engine.ttl()
    }

    /// The followers' retry interval.
    pub fn retry_interval(&self) -> Duration {
        self.engine.retry()
    }

    /// A new receiver of every event from now on. Receivers never block the
    /// elector; a dropped receiver is forgotten. Unread poll reports are
    /// capped at [`POLL_EVENT_BACKLOG`](crate::limits::POLL_EVENT_BACKLOG) per receiver; transitions are kept.
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
        self.engine.subscribe()
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
        self.engine.begin_run()?;
        // Until the thread runs, the run ends with this guard: a failed or
        // panicking spawn leaves the elector stopped, never "running".
        let pending = PendingRun(&self.engine);
        // The thread of an earlier run has finished (it marked the run
        // ended before `begin_run` could succeed); collect it.
        if let Some(old) = thread.take() {
            let _ = old.join();
        }
        if blocking {
            drop(thread);
            std::mem::forget(pending);
            election_loop::run(&self.engine);
            return Ok(());
        }
        let engine = self.engine.clone();
        let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
        let spawned = std::thread::Builder::new()
            .name(format!("mongoelector-{}", self.engine.key()))
            .spawn(move || {
                let _ = started_tx.send(());
                election_loop::run(&engine);
            });
        match spawned {
            Ok(handle) => {
                std::mem::forget(pending);
                *thread = Some(handle);
                let _ = started_rx.recv();
                Ok(())
            }
            Err(e) => Err(Error::Spawn(Arc::new(e))),
        }
    }

    /// Stops the elector: steps down at once (`LostMaster` with
    /// [`LossReason::Stopped`], then no more transitions), wakes its thread,
    /// which finishes its poll in flight, releases what this run acquired
    /// and writes a last status report; then joins it. It returns within
    /// [`STOP_WAIT`](crate::limits::STOP_WAIT) whatever the database does: when the
    /// database is unreachable or frozen, the thread finishes in the
    /// background (nothing it learns can make this node master again) and
    /// the lock expires on its own after the ttl; until that thread ends,
    /// [`running`](Self::running) stays true and [`start`](Self::start)
    /// answers [`Error::AlreadyRunning`]. A stopped elector can be started
    /// again. On an elector that is not running it surrenders mastership
    /// won by manual [`poll`](Self::poll)s, at once, and sends the release
    /// as [`release`](Self::release) does (bounded by `STOP_WAIT`). Either
    /// way the lock is freed whatever mix of `poll()` and `start()` won it,
    /// and no `BecameMaster` follows the return (a poll in flight that wins
    /// is not announced, and its acquisition is freed).
    ///
    /// # Errors
    ///
    /// [`Error::ThreadPanicked`]; or, when not running, the release's
    /// database error if it came within `STOP_WAIT`.
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
        match self.engine.stop_run(STOP_WAIT) {
            Stopping::NotRunning => self
                .engine
                .surrender_within(LossReason::Stopped, STOP_WAIT)
                .during("stop", self.key()),
            Stopping::StillFinishing => {
                log::warn!(
                    "`{}`: stopped; the elector thread finishes its last database \
                     call in the background (the lock expires on its own if its \
                     release cannot reach the database)",
                    self.engine.key()
                );
                Ok(())
            }
            Stopping::Ended => {
                let handle = self.thread.lock().take();
                match handle.map(JoinHandle::join) {
                    Some(Err(_)) => Err(Error::ThreadPanicked {
                        key: self.engine.key().to_owned(),
                    }),
                    _ => Ok(()),
                }
            }
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
        self.engine.poll().during("poll", self.key())
    }

    /// How long the elector thread waits before its next poll, as of now:
    /// a third of the ttl while master; otherwise the retry interval, or
    /// until just after the current holder's lease expires when that is
    /// sooner. The loop computes its pause with the same function.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// assert_eq!(elector.poll_wait(), elector.retry_interval());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_wait(&self) -> Duration {
        self.engine.poll_wait()
    }

    /// Surrenders mastership and frees the lock, without stopping: a
    /// running elector keeps polling as a follower. It steps down at once,
    /// before any I/O ([`is_master`](Self::is_master) false and
    /// `LostMaster` with [`LossReason::Released`] sent), even while a poll
    /// hangs on an unresponsive database; what a poll in flight then wins is
    /// not announced. It then sends the release (after that poll) and
    /// waits for it at most [`STOP_WAIT`](crate::limits::STOP_WAIT); past that the
    /// release goes on in the background, and the lock expires on its own
    /// if it cannot reach the database. A follower with no poll in flight
    /// sends nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] from freeing the lock, when it came within
    /// `STOP_WAIT`; this node has stepped down all the same, and the lock
    /// expires on its own.
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
        self.engine
            .surrender_within(LossReason::Released, STOP_WAIT)
            .during("release", self.key())
    }

    /// Steps down like [`release`](Self::release) (at once, `LostMaster`
    /// with [`LossReason::Released`] when master, and the lock freed within
    /// [`STOP_WAIT`](crate::limits::STOP_WAIT) or in the background), then does
    /// not campaign for `hold_off`: another node can take over, and this
    /// one only looks until the time is up (draining a node before a
    /// deploy, say). A follower calling it just holds off. A running
    /// elector campaigns again as soon as the hold-off ends.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming `hold_off` when it exceeds one
    /// hour; [`Error::Database`] from freeing the lock (this node has
    /// stepped down and holds off all the same).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// elector.step_down(Duration::from_secs(30))?; // someone else, please
    /// assert!(!elector.is_master());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn step_down(&self, hold_off: Duration) -> Result<()> {
        validate::hold_off("hold_off", hold_off)?;
        self.engine.hold_off(Instant::now() + hold_off);
        self.release()
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
        self.engine.is_master()
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
        self.engine.lease_deadline()
    }

    /// Fenced writes to `coll` under the current term: each is applied
    /// only when the document holds no higher fence and reaches the server
    /// before the term's lease expires in server time (as last renewed,
    /// read at each write; see [`Fenced`](crate::Fenced)). The writes carry
    /// the fence of [`Event::BecameMaster`](crate::Event::BecameMaster).
    ///
    /// # Errors
    ///
    /// [`Error::NotMaster`] when this node is not master now.
    ///
    /// ```no_run
    /// use mongodb::bson::{doc, Document};
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// # let elector = mongoelector::MongoElector::new("scheduler", &db)?;
    /// let jobs = db.collection::<Document>("jobs");
    /// match elector.fenced(&jobs) {
    ///     Ok(fenced) => println!("{:?}", fenced.update_one(doc! { "_id": 1 }, doc! { "$set": { "by": "me" } })?),
    ///     Err(mongoelector::Error::NotMaster { .. }) => println!("not master: nothing written"),
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fenced<'a, T: Send + Sync>(
        &self,
        coll: &'a mongodb::sync::Collection<T>,
    ) -> Result<Fenced<'a, T>> {
        let Some(term) = self.engine.live_term() else {
            return Err(Error::NotMaster {
                key: self.key().to_owned(),
            });
        };
        let view = TermView {
            engine: self.engine.clone(),
            fence: term.fence,
            granted: term.expires,
        };
        Ok(Fenced::live(coll, term.fence, Arc::new(view)))
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
        self.engine.running()
    }
}

/// One term as its fenced writes read it: in force while this node is
/// master under its fence (not stopped, stepped down, released or past the
/// local deadline).
struct TermView {
    engine: Arc<Engine>,
    fence: i64,
    /// The expiry the term had when the handle was made.
    granted: DateTime<Utc>,
}

impl LeaseView for TermView {
    fn expires(&self) -> DateTime<Utc> {
        // Once the term is over, its expiry as the handle was made.
        self.engine.term_expires(self.fence).unwrap_or(self.granted)
    }

    fn in_force(&self) -> bool {
        self.engine.term_in_force(self.fence)
    }
}

impl Drop for MongoElector {
    fn drop(&mut self) {
        if self.running() || self.engine.holds_role() {
            if let Err(e) = self.stop() {
                log::warn!(
                    "stopping elector `{}` on drop failed: {e}",
                    self.engine.key()
                );
            }
        }
    }
}

impl std::fmt::Debug for MongoElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoElector")
            .field("key", &self.engine.key())
            .field("uuid", &self.engine.uuid())
            .field("ttl", &self.engine.ttl())
            .field("retry_interval", &self.engine.retry())
            .field("running", &self.running())
            // Read without stepping down: printing must not send an event.
            .field("is_master", &self.engine.holds_live_lease())
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
}
