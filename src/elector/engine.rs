//! The elector's engine: its shared state, one poll, the thread's loop,
//! stepping down, and the start/stop bookkeeping. The public
//! [`MongoElector`](crate::MongoElector) only calls these methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use parking_lot::{Condvar, Mutex};

use super::cadence;
use super::deadlines::{self, Expire};
use super::events::{Event, Subscribers};
use super::role::{self, Holder, LossReason, Outcome, Role, Transition};
use super::status::{ClusterDetail, NodeStatus};
use super::status_store::StatusStore;
use crate::clock::ClockCheck;
use crate::document::LockRecord;
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::store::{LockStore, Whose};
use crate::watch::Interest;

/// What an elector is configured with (checked by the builder).
pub(crate) struct Settings {
    pub key: String,
    pub ttl: Duration,
    pub retry: Duration,
    pub app_version: Option<String>,
    pub report: bool,
    pub timeparanoid: bool,
    pub change_streams: bool,
    pub locks: LockStore,
    pub status: StatusStore,
}

/// One elector's identity, settings and state, shared by its handle, its
/// thread and the deadline thread.
pub(crate) struct Engine {
    /// Itself, for the deadline thread.
    me: Weak<Engine>,
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
    /// Set by `stop()`, cleared by `start()`; an atomic so that it can be
    /// read while waiting on the change stream hub. Written under the
    /// state lock, so a waiter on `wake` cannot miss it.
    stopping: AtomicBool,
    /// Whether followers wait on a change stream (where supported).
    change_streams: bool,
}

struct State {
    role: Role,
    running: bool,
    /// The other holder's expiry, as the last poll saw it.
    holder_expires: Option<DateTime<Utc>>,
    /// Counts starts, so `stop()` waits for the run it stopped, not a later one.
    run_id: u64,
    last_poll: Option<DateTime<Utc>>,
    subscribers: Subscribers,
}

impl Engine {
    pub fn new(s: Settings) -> Arc<Engine> {
        Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            key: s.key,
            owner: Owner::new(),
            ttl: s.ttl,
            retry: s.retry,
            app_version: s.app_version,
            report: s.report,
            locks: s.locks,
            status: s.status,
            clock: ClockCheck::new(s.timeparanoid),
            poll_lock: Mutex::new(()),
            state: Mutex::new(State {
                role: Role::Follower,
                running: false,
                holder_expires: None,
                run_id: 0,
                last_poll: None,
                subscribers: Subscribers::default(),
            }),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            change_streams: s.change_streams,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn uuid(&self) -> &str {
        &self.owner.uuid
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn retry(&self) -> Duration {
        self.retry
    }

    pub fn subscribe(&self) -> Receiver<Event> {
        self.state.lock().subscribers.subscribe()
    }

    pub fn running(&self) -> bool {
        self.state.lock().running
    }

    /// Whether this node holds a live lease, without stepping down or
    /// sending anything (for `Debug`).
    pub fn holds_live_lease(&self) -> bool {
        self.state.lock().role.live_lease(Instant::now()).is_some()
    }

    /// Whether this node is master, or was and has not yet announced the loss.
    pub fn holds_role(&self) -> bool {
        matches!(self.state.lock().role, Role::Master(_))
    }

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

    pub fn is_master(&self) -> bool {
        self.lease_deadline().is_some()
    }

    /// The live lease's local deadline, stepping down first if it passed.
    pub fn lease_deadline(&self) -> Option<Instant> {
        let mut st = self.state.lock();
        self.expire(&mut st);
        st.role.live_lease(Instant::now()).map(|l| l.deadline)
    }

    pub fn poll(&self) -> Result<()> {
        let _serial = self.poll_lock.lock();
        let polled_as = {
            let mut st = self.state.lock();
            self.expire(&mut st);
            st.role
        };
        let sent = Instant::now();
        let answer = self.poll_round_trip(polled_as);
        let master = answer
            .as_ref()
            .ok()
            .and_then(Outcome::holder)
            .map(|h| h.uuid.clone());
        {
            let mut st = self.state.lock();
            let outcome = answer.as_ref().unwrap_or(&Outcome::Failed);
            st.holder_expires = outcome.holder().map(|h| h.expires);
            let change =
                role::after_poll(st.role, polled_as, outcome, sent, self.ttl, Instant::now());
            self.apply(&mut st, change);
            st.last_poll = Some(Utc::now());
        }
        let result = answer.and_then(|_| {
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
                error: error.clone().during("poll", &self.key),
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
    fn poll_round_trip(&self, polled_as: Role) -> Result<Outcome> {
        match polled_as {
            Role::Master(lease) => Ok(
                match self
                    .locks
                    .touch(&self.key, &self.owner.uuid, lease.fence, self.ttl)?
                {
                    Some(expires) => Outcome::Renewed { expires },
                    None => Outcome::NotRenewed,
                },
            ),
            Role::Follower => {
                self.clock.check_if_due(&self.locks)?;
                let tried = self
                    .locks
                    .try_acquire(&self.key, &self.owner, self.ttl, false)?;
                Ok(match tried {
                    Some(LockRecord::Taken(info)) if info.uuid == self.owner.uuid => {
                        Outcome::Acquired {
                            fence: info.fence,
                            expires: info.expires,
                        }
                    }
                    Some(LockRecord::Taken(info)) => Outcome::NotAcquired {
                        holder: Some(Holder {
                            uuid: info.uuid,
                            expires: info.expires,
                        }),
                    },
                    _ => Outcome::NotAcquired { holder: None },
                })
            }
        }
    }

    /// Steps down (announcing it first), then frees the lock in the database.
    pub fn surrender(&self, reason: LossReason) -> Result<()> {
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

    pub fn node_status(&self) -> NodeStatus {
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

    /// Upserts this node's status now, creating the TTL index first if this
    /// elector has not yet.
    pub fn report_status_now(&self) -> Result<()> {
        self.status.ensure_index()?;
        self.report_status()
    }

    fn report_status(&self) -> Result<()> {
        self.status
            .report(&self.node_status(), self.ttl + self.retry)
    }

    pub fn cluster_detail(&self) -> Result<ClusterDetail> {
        Ok(ClusterDetail {
            members: self.status.members(&self.key)?,
            master: self.locks.current(&self.key)?,
        })
    }

    pub fn master_exists(&self) -> Result<bool> {
        Ok(self.locks.current(&self.key)?.is_some())
    }

    /// Creates the status TTL index if needed; a failure is only logged
    /// (the database may be down at start; reports work without it).
    pub fn ensure_status_index(&self) {
        if self.report {
            if let Err(e) = self.status.ensure_index() {
                log::warn!("`{}`: could not create the status TTL index: {e}", self.key);
            }
        }
    }

    /// How long the loop waits before its next poll, as of now.
    pub fn poll_wait(&self) -> Duration {
        self.pause(self.is_master())
    }

    /// The pause before the next poll for a node that is (or is not) master.
    fn pause(&self, is_master: bool) -> Duration {
        let holder_expires = self.state.lock().holder_expires;
        cadence::poll_pause(
            is_master,
            self.ttl,
            self.retry,
            holder_expires.map(|e| e - Utc::now()),
        )
    }

    fn stop_requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks a new run started: `Err` when one is running already.
    pub fn begin_run(&self) -> Result<()> {
        let mut st = self.state.lock();
        if st.running {
            return Err(Error::AlreadyRunning {
                key: self.key.clone(),
            });
        }
        st.running = true;
        st.run_id += 1;
        self.stopping.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Marks the run ended (its loop returned, or its thread never started)
    /// and wakes `stop()`.
    pub fn end_run(&self) {
        let mut st = self.state.lock();
        st.running = false;
        self.wake.notify_all();
    }

    /// Asks a running loop to stop and waits until it has. False when
    /// nothing was running.
    pub fn stop_run(&self) -> bool {
        let mut st = self.state.lock();
        if !st.running {
            return false;
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_all();
        // A follower may be waiting on the change stream: wake it.
        if let Some(hub) = self.locks.existing_hub() {
            hub.poke();
        }
        let run = st.run_id;
        while st.running && st.run_id == run {
            self.wake.wait(&mut st);
        }
        true
    }

    /// The elector thread's loop: poll, sleep until the next poll or a stop.
    pub fn run(&self) {
        let _done = RunGuard(self);
        let mut interest: Option<Interest> = None;
        while !self.stop_requested() {
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
            let next = Instant::now() + self.pause(master);
            // A follower with a stream waits on it: until the next poll is
            // due, or at once on a change (or a stop).
            if let Some(i) = &mut interest {
                i.wait_until(next, || self.stop_requested());
                continue;
            }
            let mut st = self.state.lock();
            while !self.stop_requested() && Instant::now() < next {
                self.wake.wait_until(&mut st, next);
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

impl Expire for Engine {
    fn expire_now(&self) {
        let mut st = self.state.lock();
        self.expire(&mut st);
    }
}

/// Marks the elector stopped when its loop ends, even by a panic, so that
/// `stop()` never waits forever.
struct RunGuard<'a>(&'a Engine);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.end_run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Lease;

    /// An engine on a database nobody listens at (no test here does I/O).
    fn offline_engine() -> Arc<Engine> {
        let client = mongodb::sync::Client::with_uri_str(
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100",
        )
        .unwrap();
        let db = client.database("unused");
        Engine::new(Settings {
            key: "k".to_owned(),
            ttl: Duration::from_secs(1),
            retry: Duration::from_millis(200),
            app_version: None,
            report: false,
            timeparanoid: false,
            change_streams: false,
            locks: LockStore::new(&db, "locks"),
            status: StatusStore::new(&db, "status"),
        })
    }

    #[test]
    fn debug_neither_steps_down_nor_sends_events() {
        let engine = offline_engine();
        let events = engine.subscribe();
        // A master whose local deadline has passed, not yet stepped down.
        let sent = Instant::now() - Duration::from_secs(5);
        engine.state.lock().role =
            Role::Master(Lease::granted(7, Utc::now(), sent, Duration::from_secs(1)));
        let elector = super::super::handle::MongoElector::from_engine(engine.clone());
        let printed = format!("{elector:?}");
        assert!(printed.contains("is_master: false"), "{printed}");
        assert!(events.try_recv().is_err(), "Debug sent an event");
        assert!(engine.holds_role(), "Debug stepped the node down");
        // Asking is_master() does step down, with the event: the test above
        // would see it.
        assert!(!elector.is_master());
        assert!(matches!(
            events.try_recv(),
            Ok(Event::LostMaster {
                fence: 7,
                reason: LossReason::RenewalFailed
            })
        ));
    }

    #[test]
    fn poll_wait_is_the_loops_pause() {
        let engine = offline_engine();
        assert_eq!(engine.poll_wait(), Duration::from_millis(200));
        engine.state.lock().holder_expires = Some(Utc::now() + chrono::TimeDelta::milliseconds(50));
        assert!(engine.poll_wait() <= Duration::from_millis(60));
        engine.state.lock().role = Role::Master(Lease::granted(
            1,
            Utc::now(),
            Instant::now(),
            Duration::from_secs(1),
        ));
        assert_eq!(
            engine.poll_wait(),
            cadence::renewal_period(Duration::from_secs(1))
        );
    }
}
