//! Wake on change: one change stream per process and lock collection,
//! shared by every waiter on it, so that a blocking acquire or a follower
//! elector retries as soon as a lock it waits for is released or changes
//! hands, instead of at its next timer tick.
//!
//! Waiting is always bounded by the caller's own schedule (its step or
//! retry interval, or the holder's expiry): a change event only cuts the
//! wait short. So a deployment without change streams (a standalone
//! server), a stream that is down, or a missed event costs latency, never
//! correctness: the caller simply polls.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::sync::{Collection, Database};
use parking_lot::{Condvar, Mutex};

use crate::document::{FENCE, LOCKED, UUID};

/// How long one `getMore` of the stream waits for events (the server
/// answers at once when one comes). It sets an idle process's traffic: two
/// getMores a minute. It also bounds how long the stream's thread, and its
/// cursor, outlive the last waiter; no caller ever waits for that.
const AWAIT: Duration = Duration::from_secs(30);
/// Pause before reopening a stream that failed, was invalidated or was
/// closed, on every such path: about a second, so that a collection
/// dropped in a loop cannot make the stream (and every waiter it wakes on
/// reopening) spin.
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

struct Shared {
    state: Mutex<HubState>,
    changed: Condvar,
}

struct HubState {
    stream: StreamState,
    /// Change counters of the keys somebody waits on, with their waiters.
    keys: HashMap<String, (u64, usize)>,
    stop: bool,
}

/// One stream's handle, held by the waiters' [`Interest`]s: the stream is
/// open while something waits, and closes (within [`AWAIT`]) when the last
/// waiter is gone, so an idle process keeps none open.
pub(crate) struct Hub {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("stream", &self.stream_state())
            .finish()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.changed.notify_all();
    }
}

type Registry = Mutex<HashMap<(String, String), Weak<Hub>>>;

fn registry() -> &'static Registry {
    static HUBS: OnceLock<Registry> = OnceLock::new();
    HUBS.get_or_init(Default::default)
}

fn registry_key(db: &Database, collection: &str) -> (String, String) {
    (db.name().to_owned(), collection.to_owned())
}

impl Hub {
    /// The process's hub for `collection` of `db`, opening its stream on
    /// first use. Keyed by database and collection name: lockers on
    /// same-named databases of two deployments share the first one's
    /// stream, and the other's waiters then poll.
    pub fn for_collection(db: &Database, collection: &str) -> Arc<Hub> {
        let key = registry_key(db, collection);
        let mut hubs = registry().lock();
        if let Some(hub) = hubs.get(&key).and_then(Weak::upgrade) {
            return hub;
        }
        hubs.retain(|_, hub| hub.strong_count() > 0);
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                stream: StreamState::Down,
                keys: HashMap::new(),
                stop: false,
            }),
            changed: Condvar::new(),
        });
        let coll = db.collection::<Document>(collection);
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mongoelector-watch-{collection}"))
            .spawn(move || run(&for_thread, &coll));
        if let Err(e) = spawned {
            log::warn!("could not start the change stream thread; polling instead: {e}");
            shared.state.lock().stream = StreamState::Unsupported;
        }
        let hub = Arc::new(Hub { shared });
        hubs.insert(key, Arc::downgrade(&hub));
        hub
    }

    /// Registers interest in `key`: changes from now on wake `wait`.
    pub fn interest(self: &Arc<Hub>, key: &str) -> Interest {
        let mut st = self.shared.state.lock();
        let entry = st.keys.entry(key.to_owned()).or_insert((0, 0));
        entry.1 += 1;
        Interest {
            hub: self.clone(),
            key: key.to_owned(),
            seen: entry.0,
        }
    }

    pub fn stream_state(&self) -> StreamState {
        self.shared.state.lock().stream
    }

    /// The hub for `collection` of `db` if something waits on it now.
    pub fn existing(db: &Database, collection: &str) -> Option<Arc<Hub>> {
        registry()
            .lock()
            .get(&registry_key(db, collection))
            .and_then(Weak::upgrade)
    }

    /// Wakes every waiter, so that they look at their `cancelled` condition.
    /// Under the hub's lock, so a waiter between its check and its wait
    /// cannot miss it.
    pub fn poke(&self) {
        let _st = self.shared.state.lock();
        self.shared.changed.notify_all();
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
        let shared = &self.hub.shared;
        let mut st = shared.state.lock();
        loop {
            let version = st.keys.get(&self.key).map_or(self.seen, |k| k.0);
            if version != self.seen {
                self.seen = version;
                return true;
            }
            if cancelled()
                || (while_live && st.stream != StreamState::Live)
                || shared.changed.wait_until(&mut st, until).timed_out()
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
        let st = self.hub.shared.state.lock();
        self.seen = st.keys.get(&self.key).map_or(self.seen, |k| k.0);
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut st = self.hub.shared.state.lock();
        if let Some(entry) = st.keys.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                st.keys.remove(&self.key);
            }
        }
    }
}

/// Whether an event can make a waiter's next attempt succeed: the lock was
/// created, replaced, deleted, released or taken by someone new. A renewal
/// (only `ts_expire` changes) cannot.
fn relevant(event: &ChangeStreamEvent<Document>) -> bool {
    match event.operation_type {
        OperationType::Update => event.update_description.as_ref().is_none_or(|d| {
            [LOCKED, UUID, FENCE].iter().any(|f| {
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
    let fields = [LOCKED, UUID, FENCE];
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
    doc! { "$match": { "$or": [
        { "operationType": { "$in": ["insert", "replace", "delete"] } },
        { "operationType": "update", "$or": changed },
    ]}}
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

/// The stream's thread: open, deliver, reopen after errors; stop when the
/// last hub handle is gone or the server cannot stream.
fn run(shared: &Shared, coll: &Collection<Document>) {
    let set = |s: StreamState| {
        let mut st = shared.state.lock();
        st.stream = s;
        // A waiter that relies on the stream (a follower waiting for the
        // holder's expiry, in `wait_while_live`) must learn that it no
        // longer can; other waiters go on waiting.
        shared.changed.notify_all();
    };
    let stopping = || shared.state.lock().stop;
    // Waits before a reopen (cut short when the hub stops).
    let back_off = || {
        let mut st = shared.state.lock();
        if !st.stop {
            shared.changed.wait_for(&mut st, reopen_delay(jitter()));
        }
    };
    while !stopping() {
        let pipeline = [stream_filter()];
        let mut stream = match coll.watch().pipeline(pipeline).max_await_time(AWAIT).run() {
            Ok(stream) => stream,
            Err(e) if unsupported(&e) => {
                log::info!(
                    "`{}`: no change streams here; waiters poll: {e}",
                    coll.name()
                );
                set(StreamState::Unsupported);
                return;
            }
            Err(e) => {
                log::debug!(
                    "`{}`: change stream failed to open; polling: {e}",
                    coll.name()
                );
                set(StreamState::Down);
                back_off();
                continue;
            }
        };
        {
            // Changes made while the stream was down or opening were not
            // seen: wake every waiter for one more look.
            let mut st = shared.state.lock();
            st.stream = StreamState::Live;
            for (version, _) in st.keys.values_mut() {
                *version += 1;
            }
            shared.changed.notify_all();
        }
        while !stopping() {
            match stream.next_if_any() {
                Ok(Some(event)) if event.operation_type == OperationType::Invalidate => {
                    log::debug!("`{}`: change stream invalidated; reopening", coll.name());
                    set(StreamState::Down);
                    break;
                }
                // A cursor the server closed (its collection dropped, say)
                // answers at once with nothing: reopen instead of spinning.
                Ok(None) if !stream.is_alive() => {
                    log::debug!("`{}`: change stream closed; reopening", coll.name());
                    set(StreamState::Down);
                    break;
                }
                Ok(Some(event)) => {
                    let Some(key) = key_of(&event).filter(|_| relevant(&event)) else {
                        continue;
                    };
                    let mut st = shared.state.lock();
                    if let Some(entry) = st.keys.get_mut(&key) {
                        entry.0 += 1;
                        shared.changed.notify_all();
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::debug!(
                        "`{}`: change stream lost; polling until reopened: {e}",
                        coll.name()
                    );
                    set(StreamState::Down);
                    break;
                }
            }
        }
        back_off();
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
        assert_eq!(key_of(&event("update", None)).as_deref(), Some("k"));
    }
}
