//! Wake on change: one change stream per process, deployment and lock
//! collection, shared by every waiter on it, so that a blocking acquire or
//! a follower elector retries as soon as a lock it waits for is released or
//! changes hands, instead of at its next timer tick.
//!
//! Waiting is always bounded by the caller's own schedule (its step or
//! retry interval, or the holder's expiry): a change event only cuts the
//! wait short. So a deployment without change streams (a standalone
//! server), a stream that is down, or a missed event costs latency, never
//! correctness: the caller simply polls.
//!
//! Waiters of one key in a process that would get the same answer from an
//! attempt (the lock's waiters, a semaphore's, a read-write lock's readers:
//! see [`Hub::interest_alike`]) share what a change calls for: one attempt,
//! not one each. Their first waiter to see the change makes it (it holds
//! the key's turn); the others wait for its answer. A refusal answers the
//! change for all of them, and so does a lock's grant (one holder): they
//! go on waiting for the next change (the grant's own write is one). A
//! permit's or a read share's grant may leave room: the turn passes on to
//! the next at once. Without that, every change woke every waiter of the
//! process into a round trip of its own, all but one refused, and they
//! kept the server busy enough to delay the release and the grant they
//! were waiting for.
//!
//! A hub has at most one thread, which holds at most one open cursor. The
//! thread outlives the last waiter by up to one `getMore` ([`AWAIT`]), or
//! [`FAIR_LINGER`] and one `getMore` after a fair waiter, and a waiter that
//! comes meanwhile reuses it; the hub lives as long as its thread or a
//! waiter does. Two opens of one stream are about a second
//! apart at the least ([`REOPEN_AFTER`]), across threads and hubs.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use mongodb::bson::Document;
use mongodb::sync::Collection;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::foundation::deployment::Deployment;
use crate::foundation::handover::{Handover, HandoverSlot};

mod interest;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use interest::Interest;
use stream::run;

/// How long one `getMore` of the stream waits for events (the server
/// answers at once when one comes). It sets an idle process's traffic: two
/// getMores a minute. It also bounds how long the stream's thread, and its
/// cursor, outlive the last waiter; no caller ever waits for that.
const AWAIT: Duration = Duration::from_secs(30);
/// The least time between two opens of one collection's stream in a
/// process, about a second, whatever ended the first: a failure, an
/// invalidation (a collection dropped in a loop), or the last waiter
/// leaving just before the next one came. So no churn of waiters or of the
/// collection can make the stream (and every waiter it wakes on opening)
/// spin. The deployment keeps the last open's time ([`Deployment::record_stream_open`]),
/// so the spacing holds across the hub's threads and across hubs.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
/// How long the stream stays open after a fair waiter's wait ends, even
/// with nobody waiting: a process whose calls queue one after another
/// (a worker that takes the lock, works, and queues again) would
/// otherwise close the stream at each grant and reopen it (a second
/// later at the least) at its next call, and a handover to it meanwhile
/// would be learned only at its next poll.
const FAIR_LINGER: Duration = Duration::from_secs(3);

/// [`REOPEN_AFTER`] spread by ±25% with `jitter` in `[0, 1)`, so that the
/// processes of a fleet do not reopen in step.
fn reopen_delay(jitter: f64) -> Duration {
    REOPEN_AFTER.mul_f64(0.75 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A number in `[0, 1)` that differs between processes and calls.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Whether the deployment can push changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamState {
    /// Opening, or reopening after an error: waiters poll meanwhile.
    Down,
    /// Events flow.
    Live,
    /// The server has no change streams (standalone): waiters poll for good.
    Unsupported,
}

struct HubState {
    stream: StreamState,
    /// The keys somebody waits on.
    keys: HashMap<String, KeyState>,
    /// Waiters registered now, over all keys.
    waiters: usize,
    /// Whether the stream's thread runs (it alone sets this false, as it
    /// ends; a waiter that finds it false starts one).
    running: bool,
    /// Until when the stream stays open with nobody waiting (see
    /// [`FAIR_LINGER`]).
    linger_until: Option<Instant>,
}

impl HubState {
    /// Whether the stream is wanted now: somebody waits, or it lingers.
    fn wanted(&self) -> bool {
        self.waiters > 0 || self.linger_until.is_some_and(|t| Instant::now() < t)
    }
}

/// One key that somebody waits on.
#[derive(Default)]
struct KeyState {
    /// Its changes: relevant events, and every (re)open of the stream.
    version: u64,
    /// Interests registered on it.
    waiters: usize,
    /// Its alike waiters' turns, by what makes them alike.
    alike: HashMap<String, Turns>,
    /// The latest change whose new holder is not known (a release to
    /// nobody, a delete, a reopened stream): it may concern any waiter.
    unknown: u64,
    /// The fair waiters registered on it, by acquire call. A fair waiter
    /// wakes only for changes that hand it the lock and for unknown ones
    /// (see [`Hub::interest_for_call`]).
    calls: HashMap<String, Call>,
}

/// A fair waiter's acquire call, as its key's state keeps it.
struct Call {
    /// The latest change that handed the lock to the call.
    version: u64,
    /// Where a release of this process leaves the lock it hands the call.
    slot: HandoverSlot,
}

/// What a change did to who holds a key, as far as a fair waiter cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change<'a> {
    /// Granted or handed over to this acquire call.
    To(&'a str),
    /// The holder stays (a fence moved, a document of a holder replaced).
    Kept,
    /// Freed, deleted, or not known (a stream reopened): any waiter may
    /// have something to attempt.
    Unknown,
}

impl KeyState {
    /// A change: every waiter that is not a fair one wakes; a fair one
    /// wakes when the change hands the lock to its call or when who holds
    /// it now is not known.
    fn change(&mut self, change: Change<'_>) {
        self.version += 1;
        match change {
            Change::To(call) => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.version = self.version;
                }
            }
            Change::Kept => {}
            Change::Unknown => self.unknown = self.version,
        }
    }

    /// The latest change that concerns a waiter of `call` (all of them,
    /// without one).
    fn version_for(&self, call: Option<&str>) -> u64 {
        match call {
            None => self.version,
            Some(call) => self
                .unknown
                .max(self.calls.get(call).map_or(0, |c| c.version)),
        }
    }
}

/// How a key's alike waiters take turns at the attempt a change calls for.
#[derive(Default)]
struct Turns {
    /// Interests registered as these.
    waiters: usize,
    /// Whether one of them is making the attempt for a change now.
    taken: bool,
    /// The latest change that an attempt of theirs answered: it was sent
    /// once the stream had delivered that change, so any of them would
    /// have had its answer.
    answered: u64,
}

/// The stream of one deployment's lock collection, shared by the
/// process's waiters on it through their [`Interest`]s.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    changed: Condvar,
    coll: Collection<Document>,
    /// Keeps the deployment's identity, half of this hub's registry key,
    /// from being reused while the hub lives; it also books the stream's
    /// opens.
    deployment: Arc<Deployment>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("stream", &self.stream_state())
            .finish()
    }
}

type Registry = Mutex<HashMap<(usize, String), Weak<Hub>>>;

fn registry() -> &'static Registry {
    static HUBS: OnceLock<Registry> = OnceLock::new();
    HUBS.get_or_init(Default::default)
}

fn registry_key(deployment: &Arc<Deployment>, collection: &str) -> (usize, String) {
    (deployment.id(), collection.to_owned())
}

impl Hub {
    /// The process's hub for `collection` of `deployment`. Its stream opens
    /// when the first waiter registers ([`interest`](Self::interest)).
    pub fn for_collection(deployment: &Arc<Deployment>, collection: &str) -> Arc<Hub> {
        let key = registry_key(deployment, collection);
        let mut hubs = registry().lock();
        if let Some(hub) = hubs.get(&key).and_then(Weak::upgrade) {
            return hub;
        }
        hubs.retain(|_, hub| hub.strong_count() > 0);
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                stream: StreamState::Down,
                keys: HashMap::new(),
                waiters: 0,
                running: false,
                linger_until: None,
            }),
            changed: Condvar::new(),
            coll: deployment.database().collection::<Document>(collection),
            deployment: deployment.clone(),
        });
        hubs.insert(key, Arc::downgrade(&hub));
        hub
    }

    /// Registers interest in `key`: changes from now on wake `wait`.
    /// Starts the stream's thread if none runs.
    pub fn interest(self: &Arc<Hub>, key: &str) -> Interest {
        self.interest_alike(key, None)
    }

    /// As [`interest`](Self::interest), for a fair waiter of the acquire
    /// call `call`: woken only by a change that hands the lock to `call`
    /// (the handover of a release, seen in the change stream or told by a
    /// releaser of this process through [`handed`](Self::handed)) or whose
    /// new holder is not known, not by grants to others: a fair waiter
    /// that is not handed the lock has nothing to attempt.
    ///
    /// With `stream` false the stream is not started for it (a waiter
    /// that only a releaser of this process will hand the lock to: see
    /// [`ensure_stream`](Self::ensure_stream) for when that changes). A
    /// release of this process leaves the lock it hands to `call` in
    /// `slot` ([`handed`](Self::handed)).
    pub fn interest_for_call(
        self: &Arc<Hub>,
        key: &str,
        call: &str,
        slot: &HandoverSlot,
        stream: bool,
    ) -> Interest {
        self.register(key, None, Some((call, slot)), stream)
    }

    /// `key` was handed to the acquire call `call` by a release of this
    /// process: that call's waiter, if it waits here, wakes now, and finds
    /// `handover` (when given) in its slot.
    pub fn handed(&self, key: &str, call: &str, handover: Option<Handover>) {
        let mut st = self.state.lock();
        if let Some(entry) = st.keys.get_mut(key) {
            if let Some(c) = entry.calls.get(call) {
                if handover.is_some() {
                    *c.slot.lock() = handover;
                }
                entry.change(Change::To(call));
                self.changed.notify_all();
            }
        }
    }

    /// The acquire calls of this process's fair waiters on `key`: alive
    /// (their waits have not ended), so a release may hand one of them the
    /// lock for its whole ttl.
    pub fn waiting_calls(&self, key: &str) -> Vec<String> {
        let st = self.state.lock();
        st.keys
            .get(key)
            .map(|k| k.calls.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// As [`interest`](Self::interest), for an acquire's waiter. With
    /// `alike`, what makes waiters alike: a refusal of any of them,
    /// attempting after a change, would be the others' answer too; so a
    /// change calls for one attempt among them at a time
    /// ([`Interest::wait_turn`]), not one each at once.
    pub fn interest_alike(self: &Arc<Hub>, key: &str, alike: Option<&str>) -> Interest {
        self.register(key, alike, None, true)
    }

    /// Starts the stream's thread if none runs (and the server can
    /// stream): for a waiter registered without it that now needs it.
    pub fn ensure_stream(self: &Arc<Hub>) {
        self.start_unless_running(&mut self.state.lock());
    }

    fn start_unless_running(self: &Arc<Hub>, st: &mut MutexGuard<'_, HubState>) {
        if !st.running && st.stream != StreamState::Unsupported {
            self.start(st);
        }
    }

    /// Registers a waiter on `key` (alike to others by `alike`, or a fair
    /// one of acquire call `call`, with its handover slot), starting the
    /// stream with `stream`.
    fn register(
        self: &Arc<Hub>,
        key: &str,
        alike: Option<&str>,
        call: Option<(&str, &HandoverSlot)>,
        stream: bool,
    ) -> Interest {
        let mut st = self.state.lock();
        let entry = st.keys.entry(key.to_owned()).or_default();
        entry.waiters += 1;
        if let Some(alike) = alike {
            entry.alike.entry(alike.to_owned()).or_default().waiters += 1;
        }
        if let Some((call, slot)) = call {
            let slot = slot.clone();
            entry
                .calls
                .insert(call.to_owned(), Call { version: 0, slot });
        }
        let call = call.map(|(call, _)| call);
        let seen = entry.version_for(call);
        st.waiters += 1;
        if stream {
            self.start_unless_running(&mut st);
        }
        Interest {
            hub: self.clone(),
            key: key.to_owned(),
            seen,
            alike: alike.map(str::to_owned),
            turn: false,
            call: call.map(str::to_owned),
        }
    }

    fn start(self: &Arc<Hub>, st: &mut MutexGuard<'_, HubState>) {
        let hub = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mongoelector-watch-{}", self.coll.name()))
            .spawn(move || run(&hub));
        match spawned {
            Ok(_) => st.running = true,
            Err(e) => {
                log::warn!("could not start the change stream thread; polling instead: {e}");
                st.stream = StreamState::Unsupported;
            }
        }
    }

    pub fn stream_state(&self) -> StreamState {
        self.state.lock().stream
    }

    /// The hub for `collection` of `deployment` if it exists now: something
    /// waits on it, or its thread still runs.
    pub fn existing(deployment: &Arc<Deployment>, collection: &str) -> Option<Arc<Hub>> {
        registry()
            .lock()
            .get(&registry_key(deployment, collection))
            .and_then(Weak::upgrade)
    }

    /// Wakes every waiter, so that they look at their `cancelled` condition.
    /// Under the hub's lock, so a waiter between its check and its wait
    /// cannot miss it.
    pub fn poke(&self) {
        let _st = self.state.lock();
        self.changed.notify_all();
    }

    /// Sets the stream's state and tells the waiters. A waiter that relies
    /// on the stream (a follower waiting for the holder's expiry, in
    /// `wait_while_live`) must learn that it no longer can; other waiters
    /// go on waiting.
    fn set(&self, stream: StreamState) {
        let mut st = self.state.lock();
        st.stream = stream;
        self.changed.notify_all();
    }

    /// Ends the thread if no waiter is left (true). Under the lock, so a
    /// waiter registering now either is counted here or finds the thread
    /// ended and starts another.
    fn end_if_unwanted(&self) -> bool {
        let mut st = self.state.lock();
        if st.wanted() {
            return false;
        }
        st.running = false;
        st.stream = StreamState::Down;
        true
    }

    /// `key` changed as `change` says: its waiters wake (see
    /// [`KeyState::change`]).
    fn changed_key(&self, key: &str, change: Change<'_>) {
        let mut st = self.state.lock();
        if let Some(entry) = st.keys.get_mut(key) {
            entry.change(change);
            self.changed.notify_all();
        }
    }

    fn wanted(&self) -> bool {
        self.state.lock().wanted()
    }

    /// Waits for the next open's turn (see [`REOPEN_AFTER`]), whatever
    /// waiters do meanwhile.
    fn wait_turn(&self) {
        let until = self
            .deployment
            .next_stream_open(self.coll.name(), reopen_delay(jitter()));
        let mut st = self.state.lock();
        while !self.changed.wait_until(&mut st, until).timed_out() {}
    }
}
