//! The elector's engine: its shared state and role, one poll (`poll`),
//! stepping down (`surrender`), the start/stop bookkeeping (`lifecycle`)
//! and what it tells without I/O (`health`). The thread's loop that
//! drives it is `election_loop`, beside this folder. The public
//! [`MongoElector`](crate::MongoElector) only calls these methods.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::Receiver;
use parking_lot::{Condvar, Mutex};

use super::cadence::{self, HolderDue};
use super::events::{Event, Subscribers};
use super::observer::Observers;
use super::role::{self, LossReason, Outcome, Role, Transition};
use super::status::{ClusterDetail, NodeStatus};
use super::status_store::StatusStore;
use crate::error::Result;
use crate::foundation::clock::ClockCheck;
use crate::foundation::deadlines::{self, Expire};
use crate::foundation::meter::{Meter, Primitive};
use crate::foundation::moment::Moment;
use crate::foundation::owner::Owner;
use crate::foundation::single::store::LockStore;
use crate::foundation::watch::{Interest, StreamState};

mod health;
mod lifecycle;
mod poll;
mod surrender;

pub(crate) use surrender::Errands;

/// What an elector is configured with (checked by the builder).
pub(crate) struct Settings {
    pub key: String,
    pub ttl: Duration,
    pub retry: Duration,
    pub app_version: Option<String>,
    /// Published in the lock document while master, and in status reports.
    pub metadata: Option<mongodb::bson::Document>,
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
    locks: Arc<LockStore>,
    status: StatusStore,
    clock: ClockCheck,
    /// The receivers of `observe()`.
    observers: Arc<Observers>,
    /// One poll (or surrender) at a time, whoever calls it.
    poll_lock: Mutex<()>,
    state: Mutex<State>,
    /// Wakes the elector thread (stop) and `stop()` (the loop ended).
    wake: Condvar,
    /// Set by `stop()` on a running elector, cleared when its run ends; an
    /// atomic so that it can be read while waiting on the change stream
    /// hub. Set under the state lock, so a waiter on `wake` cannot miss it.
    stopping: AtomicBool,
    /// This run's token, written into the lock with each acquisition, so
    /// that a stop-time release (sent late, perhaps) frees only what this
    /// run acquired, never a later run's lock. New at every start, except
    /// on a master won by manual polls: that run adopts the acquisition.
    run: Mutex<String>,
    /// The releases waiting for the surrender thread, and whether it runs.
    errands: Mutex<Errands>,
    /// Whether followers wait on a change stream (where supported).
    change_streams: bool,
    /// When the status index was last tried (until it is created).
    index_tried: Mutex<Option<Instant>>,
    /// What it reports.
    meter: Meter,
}

struct State {
    role: Role,
    running: bool,
    /// When the other holder's lease (plus the grace) runs out, as the
    /// last poll saw it.
    holder_due: Option<HolderDue>,
    /// When this node last reported its status, and as master or not.
    last_report: Option<(Instant, bool)>,
    /// Counts starts, so `stop()` waits for the run it stopped, not a later one.
    run_id: u64,
    last_poll: Option<DateTime<Utc>>,
    subscribers: Subscribers,
    /// Counters for `stats()`.
    stats: Counters,
    /// The pause the loop chose after its last poll, measured from that
    /// poll's send instant (as `last_success` is), for `healthy()`.
    interval: Duration,
    /// When the last poll was sent.
    last_sent: Option<Instant>,
    /// Counts surrenders (stop, release, step-down): an acquisition won by
    /// a poll sent before one is not announced.
    surrenders: u64,
    /// Fences of acquisitions won by polls in flight at a surrender, not
    /// announced: the surrender's release frees them.
    unannounced: Vec<i64>,
    /// Set by `step_down`: do not campaign before this instant.
    hold_off_until: Option<Instant>,
    /// Since when this node campaigns (the last loss of mastership, or
    /// the start), for the wait a term took.
    campaigning_since: Instant,
}

/// What `stats()` reports, kept under the state lock.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    polls: u64,
    poll_failures: u64,
    terms: u64,
    last_success: Option<Instant>,
}

impl Engine {
    pub fn new(s: Settings) -> Arc<Engine> {
        let meter = Meter::new(Primitive::Elector, &s.key);
        Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            key: s.key,
            owner: Owner::new().with_metadata(s.metadata),
            ttl: s.ttl,
            retry: s.retry,
            app_version: s.app_version,
            report: s.report,
            locks: Arc::new(s.locks),
            status: s.status,
            clock: ClockCheck::new(s.timeparanoid),
            observers: Arc::default(),
            poll_lock: Mutex::new(()),
            state: Mutex::new(State {
                role: Role::Follower,
                running: false,
                holder_due: None,
                last_report: None,
                run_id: 0,
                last_poll: None,
                subscribers: Subscribers::default(),
                stats: Counters::default(),
                interval: s.retry,
                last_sent: None,
                surrenders: 0,
                unannounced: Vec::new(),
                hold_off_until: None,
                campaigning_since: Instant::now(),
            }),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            run: Mutex::new(new_run_token()),
            errands: Mutex::default(),
            change_streams: s.change_streams,
            index_tried: Mutex::new(None),
            meter,
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
        self.state.lock().role.live_lease(Moment::now()).is_some()
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
                st.stats.terms += 1;
                self.meter.acquired(st.campaigning_since.elapsed());
                self.meter.master(true);
                log::info!("`{}`: became master (fence {fence})", self.key);
                Event::BecameMaster { fence, expires }
            }
            Transition::Lost { fence, reason } => {
                st.campaigning_since = Instant::now();
                self.meter.master(false);
                match reason {
                    LossReason::Stopped | LossReason::Released => self.meter.released(),
                    involuntary => self.meter.lost(involuntary),
                }
                log::info!("`{}`: lost master (fence {fence}): {reason:?}", self.key);
                Event::LostMaster { fence, reason }
            }
        };
        st.subscribers.send(event);
        self.wake.notify_all();
    }

    fn expire(&self, st: &mut State) {
        let change = role::expire(st.role, Moment::now());
        self.apply(st, change);
    }

    pub fn is_master(&self) -> bool {
        self.lease_deadline().is_some()
    }

    /// The live lease, stepping down first if its deadline passed.
    pub fn live_term(&self) -> Option<crate::foundation::lease::Lease> {
        let mut st = self.state.lock();
        self.expire(&mut st);
        st.role.live_lease(Moment::now())
    }

    /// Whether this node still holds the term with `fence` and may act on
    /// it now (stepping down first if its deadline passed).
    pub fn term_in_force(&self, fence: i64) -> bool {
        self.live_term().is_some_and(|lease| lease.fence == fence)
    }

    /// The server expiry of the term with `fence`, as last renewed, while
    /// this node's role still holds it (whatever its local deadline).
    pub fn term_expires(&self, fence: i64) -> Option<DateTime<Utc>> {
        match self.state.lock().role {
            Role::Master(lease) if lease.fence == fence => Some(lease.expires),
            _ => None,
        }
    }

    /// The live lease's local deadline, stepping down first if it passed.
    pub fn lease_deadline(&self) -> Option<Instant> {
        let mut st = self.state.lock();
        self.expire(&mut st);
        st.role
            .live_lease(Moment::now())
            .map(|l| l.deadline.to_instant())
    }

    /// Steps down at once, announcing it, without I/O: the role it left.
    /// Counts the surrender, so that what a poll already in flight wins is
    /// not announced (see `poll_with`).
    fn step_down(&self, reason: LossReason) -> Role {
        let mut st = self.state.lock();
        st.surrenders += 1;
        let was = st.role;
        let change = role::surrender(st.role, reason);
        self.apply(&mut st, change);
        was
    }

    /// The current run's token.
    pub fn run_token(&self) -> String {
        self.run.lock().clone()
    }

    pub fn node_status(&self) -> NodeStatus {
        let mut st = self.state.lock();
        self.expire(&mut st);
        let lease = st.role.live_lease(Moment::now());
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
            metadata: self.owner.metadata.clone(),
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
        let status = self.node_status();
        self.status.report(&status, report_live_for(self.ttl))?;
        self.state.lock().last_report = Some((Instant::now(), status.is_master));
        Ok(())
    }

    /// Whether the loop's next poll should report status: reports are on,
    /// and the role changed since the last report, or a report interval
    /// (the ttl) has passed.
    pub fn report_due(&self) -> bool {
        if !self.report {
            return false;
        }
        let is_master = self.is_master();
        match self.state.lock().last_report {
            Some((at, was_master)) => was_master != is_master || at.elapsed() >= self.ttl,
            None => true,
        }
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

    /// Creates the status TTL index if needed, at most once a ttl until it
    /// succeeds (cached after that); a failure is only logged (reports work
    /// without it). The loop calls it after a poll that got an answer, so a
    /// database that answers nothing costs no extra wait per poll.
    pub fn ensure_status_index(&self) {
        if !self.report {
            return;
        }
        {
            let mut tried = self.index_tried.lock();
            if tried.is_some_and(|at| at.elapsed() < self.ttl) {
                return;
            }
            *tried = Some(Instant::now());
        }
        match self.status.ensure_index() {
            Ok(()) => {}
            Err(e) => log::debug!("`{}`: could not create the status TTL index: {e}", self.key),
        }
    }

    /// How long the loop waits before its next poll, as of now.
    pub fn poll_wait(&self) -> Duration {
        let now = Instant::now();
        let renewed_at = self.lease_deadline().and(self.renewed_at());
        let streaming = self.change_streams
            && self
                .locks
                .existing_hub()
                .is_some_and(|h| h.stream_state() == StreamState::Live);
        self.next_poll(renewed_at, now, streaming)
            .saturating_duration_since(now)
    }

    /// The send instant of the live lease's last renewal, if master.
    pub fn renewed_at(&self) -> Option<Instant> {
        match self.state.lock().role {
            Role::Master(lease) => Some(lease.sent.to_instant()),
            Role::Follower => None,
        }
    }

    /// When the next poll is due (see [`cadence::next_poll`]).
    pub fn next_poll(&self, renewed_at: Option<Instant>, now: Instant, streaming: bool) -> Instant {
        let holder = self.state.lock().holder_due;
        cadence::next_poll(renewed_at, now, self.ttl, self.retry, holder, streaming)
    }

    /// A registration on this election's key with the process's change
    /// stream, when change streams are on.
    pub fn watch_key(&self) -> Option<Interest> {
        self.change_streams
            .then(|| self.locks.hub().interest(&self.key))
    }

    /// The report a stopped run leaves: "not running", and no longer live.
    pub fn final_report(&self) {
        if self.report {
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

/// What a follower's poll asks the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// An acquire attempt (one write).
    Attempt,
    /// A read of the lock first; an attempt only when it can be taken.
    Look,
}

/// How long a status report counts as a live member: three ttls. Reports
/// are sent on each change of role and with the first poll at least a ttl
/// after the last one; a follower on a change stream polls only when its
/// master's lease would run out (up to a ttl and a grace apart), so its
/// reports can be two ttls and a grace apart.
pub(crate) fn report_live_for(ttl: Duration) -> Duration {
    ttl * 3
}

/// What `stop_run` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopping {
    /// Nothing was running.
    NotRunning,
    /// The loop ended within the bound.
    Ended,
    /// The loop is still finishing a call to the database.
    StillFinishing,
}

/// The answer a poll's acquisition is replaced with after a stop.
const NOT_ACQUIRED: Outcome = Outcome::NotAcquired { holder: None };

pub(crate) fn new_run_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests;
