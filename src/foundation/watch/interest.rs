//! A waiter's registration on one key of a [`Hub`]: woken by the key's
//! changes, and taking turns with its alike waiters at the attempt a
//! change calls for.

use std::sync::Arc;
use std::time::Instant;

use super::{Hub, StreamState};

/// A waiter's registration on one key. Take it before looking at the lock,
/// so that a change between the look and the wait is not missed.
pub(crate) struct Interest {
    pub(super) hub: Arc<Hub>,
    pub(super) key: String,
    pub(super) seen: u64,
    /// What makes this waiter alike to others of its key (see
    /// [`Hub::interest_alike`]).
    pub(super) alike: Option<String>,
    /// Whether it holds its alike waiters' turn: the attempt for a change
    /// is its to make.
    pub(super) turn: bool,
    /// A fair waiter's acquire call (see [`Hub::interest_for_call`]).
    pub(super) call: Option<String>,
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
            let version = st
                .keys
                .get(&self.key)
                .map_or(self.seen, |k| k.version_for(self.call.as_deref()));
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

    /// Starts the hub's stream if it is not running (see
    /// [`Hub::ensure_stream`]).
    pub fn ensure_stream(&self) {
        self.hub.ensure_stream();
    }

    /// Whether the stream is delivering events now.
    pub fn stream_live(&self) -> bool {
        self.hub.stream_state() == StreamState::Live
    }

    /// Forgets changes seen so far: the next wait is for a newer one.
    pub fn rearm(&mut self) {
        let st = self.hub.state.lock();
        self.seen = st
            .keys
            .get(&self.key)
            .map_or(self.seen, |k| k.version_for(self.call.as_deref()));
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut st = self.hub.state.lock();
        st.waiters -= 1;
        if self.call.is_some() {
            st.linger_until = Some(Instant::now() + super::FAIR_LINGER);
        }
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
            if let Some(call) = &self.call {
                entry.calls.remove(call);
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
