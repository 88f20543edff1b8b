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
//! thread outlives the last waiter by up to one `getMore` ([`AWAIT`]), and a
//! waiter that comes meanwhile reuses it; the hub lives as long as its
//! thread or a waiter does. Two opens of one stream are about a second
//! apart at the least ([`REOPEN_AFTER`]), across threads and hubs.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::sync::Collection;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::foundation::deployment::Deployment;
use crate::foundation::document::{FENCE, TS_RELEASED, UUID};
use crate::foundation::single::document::LOCKED;

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

    /// As [`interest`](Self::interest), for an acquire's waiter. With
    /// `alike`, what makes waiters alike: a refusal of any of them,
    /// attempting after a change, would be the others' answer too; so a
    /// change calls for one attempt among them at a time
    /// ([`Interest::wait_turn`]), not one each at once.
    pub fn interest_alike(self: &Arc<Hub>, key: &str, alike: Option<&str>) -> Interest {
        let mut st = self.state.lock();
        let entry = st.keys.entry(key.to_owned()).or_default();
        entry.waiters += 1;
        if let Some(alike) = alike {
            entry.alike.entry(alike.to_owned()).or_default().waiters += 1;
        }
        let seen = entry.version;
        st.waiters += 1;
        if !st.running && st.stream != StreamState::Unsupported {
            self.start(&mut st);
        }
        Interest {
            hub: self.clone(),
            key: key.to_owned(),
            seen,
            alike: alike.map(str::to_owned),
            turn: false,
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
        if st.waiters > 0 {
            return false;
        }
        st.running = false;
        st.stream = StreamState::Down;
        true
    }

    /// `key` changed: its waiters wake.
    fn changed_key(&self, key: &str) {
        let mut st = self.state.lock();
        if let Some(entry) = st.keys.get_mut(key) {
            entry.version += 1;
            self.changed.notify_all();
        }
    }

    fn wanted(&self) -> bool {
        self.state.lock().waiters > 0
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

/// A waiter's registration on one key. Take it before looking at the lock,
/// so that a change between the look and the wait is not missed.
pub(crate) struct Interest {
    hub: Arc<Hub>,
    key: String,
    seen: u64,
    /// What makes this waiter alike to others of its key (see
    /// [`Hub::interest_alike`]).
    alike: Option<String>,
    /// Whether it holds its alike waiters' turn: the attempt for a change
    /// is its to make.
    turn: bool,
}

impl Interest {
    /// Waits until the key changes after the last `rearm` (or creation),
    /// until `until`, or until `cancelled()` says so after a
    /// [`Hub::poke`]. True when woken by a change. `cancelled` runs under
    /// the hub's lock: it must not take a lock of its own.
    pub fn wait_until(&mut self, until: Instant, cancelled: impl Fn() -> bool) -> bool {
        self.wait(until, cancelled, false)
    }

    fn wait(&mut self, until: Instant, cancelled: impl Fn() -> bool, while_live: bool) -> bool {
        let hub = &self.hub;
        let mut st = hub.state.lock();
        loop {
            let version = st.keys.get(&self.key).map_or(self.seen, |k| k.version);
            if version != self.seen {
                self.seen = version;
                return true;
            }
            if cancelled()
                || (while_live && st.stream != StreamState::Live)
                || hub.changed.wait_until(&mut st, until).timed_out()
            {
                return false;
            }
        }
    }

    /// As [`wait_until`](Self::wait_until), but also ends (false) as soon
    /// as the stream is not live: for a waiter that relies on it rather
    /// than on a timer.
    pub fn wait_while_live(&mut self, until: Instant, cancelled: impl Fn() -> bool) -> bool {
        self.wait(until, cancelled, true)
    }

    /// For an acquire's waiter: waits until the key changes after the last
    /// [`rearm`](Self::rearm), or until `until` (false). True when this
    /// waiter is to attempt for the change. Among alike waiters (see
    /// [`Hub::interest_alike`]) only one is, at a time: it holds the turn
    /// until its [`attempted`](Self::attempted); the others wait for that,
    /// and pass over a change that its answer answered.
    pub fn wait_turn(&mut self, until: Instant) -> bool {
        let Some(alike) = &self.alike else {
            return self.wait_until(until, || false);
        };
        let hub = &self.hub;
        let mut st = hub.state.lock();
        loop {
            let seen = self.seen;
            if let Some(k) = st.keys.get_mut(&self.key).filter(|k| k.version != seen) {
                let version = k.version;
                match k.alike.get_mut(alike) {
                    // An alike waiter's attempt, sent after this change,
                    // answered it: wait for the next.
                    Some(turns) if version <= turns.answered => self.seen = version,
                    Some(turns) if !turns.taken || self.turn => {
                        turns.taken = true;
                        self.turn = true;
                        self.seen = version;
                        return true;
                    }
                    // Another's attempt is on its way: wait for its answer.
                    Some(_) => {}
                    None => {
                        self.seen = version;
                        return true;
                    }
                }
            }
            if hub.changed.wait_until(&mut st, until).timed_out() {
                return false;
            }
        }
    }

    /// After an attempt sent since the last [`rearm`](Self::rearm): ends
    /// this waiter's turn, if it holds it. With `answered` (a refusal, or
    /// a grant that leaves nothing for the others: what any alike waiter
    /// would have had; not an error), the changes seen up to that rearm
    /// are answered for its alike waiters; without, the next of them
    /// attempts for them.
    pub fn attempted(&mut self, answered: bool) {
        let Some(alike) = &self.alike else {
            return;
        };
        let mut st = self.hub.state.lock();
        if let Some(turns) = st
            .keys
            .get_mut(&self.key)
            .and_then(|k| k.alike.get_mut(alike))
        {
            if answered {
                turns.answered = turns.answered.max(self.seen);
            }
            if self.turn {
                turns.taken = false;
            }
        }
        if std::mem::take(&mut self.turn) {
            // Its alike waiters wait for the turn: one may take it now.
            self.hub.changed.notify_all();
        }
    }

    /// Whether the stream is delivering events now.
    pub fn stream_live(&self) -> bool {
        self.hub.stream_state() == StreamState::Live
    }

    /// Forgets changes seen so far: the next wait is for a newer one.
    pub fn rearm(&mut self) {
        let st = self.hub.state.lock();
        self.seen = st.keys.get(&self.key).map_or(self.seen, |k| k.version);
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut st = self.hub.state.lock();
        st.waiters -= 1;
        if let Some(entry) = st.keys.get_mut(&self.key) {
            if let Some(alike) = &self.alike {
                if let Some(turns) = entry.alike.get_mut(alike) {
                    turns.waiters -= 1;
                    turns.taken &= !self.turn;
                    if turns.waiters == 0 {
                        entry.alike.remove(alike);
                    }
                }
            }
            entry.waiters -= 1;
            if entry.waiters == 0 {
                st.keys.remove(&self.key);
            }
        }
        if self.turn {
            self.hub.changed.notify_all();
        }
    }
}

/// Whether an event can make a waiter's next attempt succeed: the lock was
/// created, replaced, deleted, released or taken by someone new; a share of
/// a many-holder document was released or an intent withdrawn (both set
/// `ts_released`), or granted (`fence`). A renewal (only `ts_expire`
/// changes, at the top or inside `holders`) cannot.
fn relevant(event: &ChangeStreamEvent<Document>) -> bool {
    match event.operation_type {
        OperationType::Update => event.update_description.as_ref().is_none_or(|d| {
            [LOCKED, UUID, FENCE, TS_RELEASED].iter().any(|f| {
                d.updated_fields.contains_key(*f) || d.removed_fields.iter().any(|r| r == f)
            })
        }),
        _ => true,
    }
}

/// The stream's `$match`: what [`relevant`] keeps, decided by the server,
/// so that a master's renewals (every ttl/3) do not make the getMore
/// return early and cost a command each.
fn stream_filter() -> Document {
    let fields = [LOCKED, UUID, FENCE, TS_RELEASED];
    let mut changed: Vec<Bson> = fields
        .iter()
        .map(|f| {
            Bson::Document(
                doc! { format!("updateDescription.updatedFields.{f}"): { "$exists": true } },
            )
        })
        .collect();
    changed.push(Bson::Document(
        doc! { "updateDescription.removedFields": { "$in": fields.to_vec() } },
    ));
    // Keys are strings: a document with another `_id` (the fence floor
    // of the Python-compatible mode) wakes nobody.
    doc! { "$match": {
        "documentKey._id": { "$type": "string" },
        "$or": [
            { "operationType": { "$in": ["insert", "replace", "delete"] } },
            { "operationType": "update", "$or": changed },
        ],
    }}
}

fn key_of(event: &ChangeStreamEvent<Document>) -> Option<String> {
    match event.document_key.as_ref()?.get("_id")? {
        Bson::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Errors that reopening will not cure: no change streams on this server
/// (40573: standalone; 40324: unknown stage; 115: command not supported;
/// 20: illegal operation) or not allowed to open one (13: unauthorized).
fn unsupported(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if [40573, 40324, 115, 20, 13].contains(&c.code))
}

/// The stream's thread: open, deliver, reopen after errors (a pause
/// first); end once no waiter is left at the end of a `getMore`, or when
/// the server cannot stream.
fn run(hub: &Hub) {
    let coll = &hub.coll;
    loop {
        // Asked before and after the wait: a thread with no waiter left
        // ends at once, and one whose waiters left while it waited opens
        // nothing.
        if hub.end_if_unwanted() {
            return;
        }
        hub.wait_turn();
        if hub.end_if_unwanted() {
            return;
        }
        hub.deployment.record_stream_open(coll.name());
        let pipeline = [stream_filter()];
        let mut stream = match coll.watch().pipeline(pipeline).max_await_time(AWAIT).run() {
            Ok(stream) => stream,
            Err(e) if unsupported(&e) => {
                log::info!(
                    "`{}`: no change streams here; waiters poll: {e}",
                    coll.name()
                );
                let mut st = hub.state.lock();
                st.stream = StreamState::Unsupported;
                st.running = false;
                hub.changed.notify_all();
                return;
            }
            Err(e) => {
                log::debug!(
                    "`{}`: change stream failed to open; polling: {e}",
                    coll.name()
                );
                hub.set(StreamState::Down);
                continue;
            }
        };
        {
            // Changes made while the stream was down or opening were not
            // seen: wake every waiter for one more look.
            let mut st = hub.state.lock();
            st.stream = StreamState::Live;
            for k in st.keys.values_mut() {
                k.version += 1;
            }
            hub.changed.notify_all();
        }
        let mut failed = false;
        while hub.wanted() {
            match stream.next_if_any() {
                Ok(Some(event)) if event.operation_type == OperationType::Invalidate => {
                    log::debug!("`{}`: change stream invalidated; reopening", coll.name());
                    failed = true;
                    break;
                }
                // A cursor the server closed (its collection dropped, say)
                // answers at once with nothing: reopen instead of spinning.
                Ok(None) if !stream.is_alive() => {
                    log::debug!("`{}`: change stream closed; reopening", coll.name());
                    failed = true;
                    break;
                }
                Ok(Some(event)) => {
                    if let Some(key) = key_of(&event).filter(|_| relevant(&event)) {
                        hub.changed_key(&key);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::debug!(
                        "`{}`: change stream lost; polling until reopened: {e}",
                        coll.name()
                    );
                    failed = true;
                    break;
                }
            }
        }
        // Closed (killCursors) before the thread can end and another open
        // one: one cursor at a time.
        drop(stream);
        if failed {
            hub.set(StreamState::Down);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: &str, updated: Option<Document>) -> ChangeStreamEvent<Document> {
        let mut d = doc! {
            "_id": { "_data": "00" },
            "operationType": op,
            "documentKey": { "_id": "k" },
        };
        if let Some(u) = updated {
            d.insert(
                "updateDescription",
                doc! { "updatedFields": u, "removedFields": [] },
            );
        }
        mongodb::bson::from_document(d).unwrap()
    }

    /// A hub of a client that never connects, its stream thread marked as
    /// running so that none starts: changes come from `changed_key`.
    fn quiet_hub() -> Arc<Hub> {
        let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:1/")
            .unwrap()
            .database("turns");
        let hub = Hub::for_collection(&Deployment::of(&db), "locks");
        hub.state.lock().running = true;
        hub
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[test]
    fn a_change_calls_for_one_attempt_among_alike_waiters() {
        let hub = quiet_hub();
        let mut a = hub.interest_alike("k", Some("lock"));
        let mut b = hub.interest_alike("k", Some("lock"));
        let mut writer = hub.interest_alike("k", None);
        let mut elsewhere = hub.interest_alike("other", Some("lock"));
        hub.changed_key("k");
        assert!(a.wait_turn(soon()), "the first to look attempts");
        assert!(!b.wait_turn(soon()), "the other waits for its answer");
        assert!(
            writer.wait_turn(soon()),
            "an unalike waiter attempts anyway"
        );
        assert!(!elsewhere.wait_turn(soon()), "another key did not change");
        // A refusal answers the change for both.
        a.rearm();
        a.attempted(true);
        assert!(!b.wait_turn(soon()));
        assert!(!a.wait_turn(soon()));
        // An error answers nothing: the next change is still the other's to try.
        hub.changed_key("k");
        assert!(b.wait_turn(soon()));
        b.rearm();
        b.attempted(false);
        assert!(a.wait_turn(soon()), "not answered: its turn");
        // A waiter that leaves with the turn hands it on.
        drop(a);
        hub.changed_key("k");
        assert!(b.wait_turn(soon()));
        let mut c = hub.interest_alike("k", Some("lock"));
        hub.changed_key("k");
        assert!(!c.wait_turn(soon()), "b's turn");
        drop(b);
        assert!(c.wait_turn(soon()), "handed on");
        c.rearm();
        c.attempted(true);
        // Other kinds of waiters of one key take turns of their own.
        let mut reader = hub.interest_alike("k", Some("read"));
        hub.changed_key("k");
        assert!(c.wait_turn(soon()));
        assert!(reader.wait_turn(soon()));
    }

    #[test]
    fn a_waiter_for_the_turn_takes_it_once_the_attempt_fails() {
        let hub = quiet_hub();
        let mut a = hub.interest_alike("k", Some("lock"));
        let mut b = hub.interest_alike("k", Some("lock"));
        hub.changed_key("k");
        assert!(a.wait_turn(soon()));
        let started = Instant::now();
        let waiting = std::thread::spawn(move || {
            let took = b.wait_turn(Instant::now() + Duration::from_secs(10));
            (took, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100));
        a.rearm();
        let failed = Instant::now();
        a.attempted(false);
        let (took, at) = waiting.join().unwrap();
        assert!(took, "its turn");
        assert!(at >= failed && at - started < Duration::from_secs(5));
    }

    #[test]
    fn reopens_back_off_with_jitter() {
        assert_eq!(reopen_delay(0.5), Duration::from_secs(1));
        assert_eq!(reopen_delay(0.0), Duration::from_millis(750));
        assert!(reopen_delay(0.999) < Duration::from_millis(1250));
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn releases_and_new_holders_are_relevant_renewals_are_not() {
        assert!(relevant(&event("insert", None)));
        assert!(relevant(&event("delete", None)));
        assert!(relevant(&event("update", Some(doc! { "locked": false }))));
        assert!(relevant(&event(
            "update",
            Some(doc! { "uuid": "b", "fence": 2_i64 })
        )));
        assert!(!relevant(&event(
            "update",
            Some(doc! { "ts_expire": 1_i64 })
        )));
        assert!(relevant(&event(
            "update",
            Some(doc! { "holders": [], "ts_released": 1_i64 })
        )));
        assert!(!relevant(&event(
            "update",
            Some(doc! { "holders.0.ts_expire": 1_i64 })
        )));
        assert!(!relevant(&event(
            "update",
            Some(doc! { "intent": { "uuid": "w" } })
        )));
        assert_eq!(key_of(&event("update", None)).as_deref(), Some("k"));
    }
}
