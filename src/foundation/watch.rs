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
    /// Change counters of the keys somebody waits on, with their waiters.
    keys: HashMap<String, (u64, usize)>,
    /// Waiters registered now, over all keys.
    waiters: usize,
    /// Whether the stream's thread runs (it alone sets this false, as it
    /// ends; a waiter that finds it false starts one).
    running: bool,
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
        let mut st = self.state.lock();
        let entry = st.keys.entry(key.to_owned()).or_insert((0, 0));
        entry.1 += 1;
        let seen = entry.0;
        st.waiters += 1;
        if !st.running && st.stream != StreamState::Unsupported {
            self.start(&mut st);
        }
        Interest {
            hub: self.clone(),
            key: key.to_owned(),
            seen,
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
            let version = st.keys.get(&self.key).map_or(self.seen, |k| k.0);
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

    /// Whether the stream is delivering events now.
    pub fn stream_live(&self) -> bool {
        self.hub.stream_state() == StreamState::Live
    }

    /// Forgets changes seen so far: the next wait is for a newer one.
    pub fn rearm(&mut self) {
        let st = self.hub.state.lock();
        self.seen = st.keys.get(&self.key).map_or(self.seen, |k| k.0);
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut st = self.hub.state.lock();
        st.waiters -= 1;
        if let Some(entry) = st.keys.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                st.keys.remove(&self.key);
            }
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
            for (version, _) in st.keys.values_mut() {
                *version += 1;
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
                    let Some(key) = key_of(&event).filter(|_| relevant(&event)) else {
                        continue;
                    };
                    let mut st = hub.state.lock();
                    if let Some(entry) = st.keys.get_mut(&key) {
                        entry.0 += 1;
                        hub.changed.notify_all();
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
