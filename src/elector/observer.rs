//! `observe()`: who is master, pushed to receivers as it changes. One
//! thread per elector (started by the first `observe()`, ended when every
//! receiver is gone or the elector is dropped) looks at the lock when the
//! change stream says it changed, when the master's lease would run out in
//! server time (expiry makes no change event), and at the retry interval
//! when there is no live stream.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::document::{LockInfo, LockRecord};
use crate::store::LockStore;
use crate::watch::Interest;

/// Who holds the election, as the observers last saw it: `None` inside
/// when nobody did.
type Seen = Option<LockInfo>;

/// The receivers of one elector's `observe()` and what they were last told.
#[derive(Default)]
pub(crate) struct Observers {
    state: Mutex<ObserversState>,
}

#[derive(Default)]
struct ObserversState {
    senders: Vec<Sender<Seen>>,
    /// The last master sent, once the thread has looked.
    current: Option<Seen>,
    /// Whether the thread runs.
    running: bool,
}

/// What the observing thread needs of its elector.
pub(crate) struct Watched {
    pub key: String,
    pub locks: Weak<LockStore>,
    pub retry: Duration,
    /// A registration with the process's change stream, when it is on.
    pub interest: Option<Interest>,
}

impl Observers {
    /// A new receiver: the current master at once when known (or as soon as
    /// the thread has looked), then every change. `start` spawns the
    /// thread when none runs.
    pub fn subscribe(self: &Arc<Self>, start: impl FnOnce() -> Watched) -> Receiver<Seen> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut st = self.state.lock();
        if let Some(current) = &st.current {
            let _ = tx.send(current.clone());
        }
        st.senders.push(tx);
        if !st.running {
            st.running = true;
            st.current = None;
            let watched = start();
            let me = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name(format!("mongoelector-observe-{}", watched.key))
                .spawn(move || run(&me, watched));
            if let Err(e) = spawned {
                log::warn!("could not start the observer thread: {e}");
                st.running = false;
                st.senders.clear(); // the receiver disconnects: nothing will come
            }
        }
        rx
    }

    /// Sends `seen` to every receiver if it is a change of master; false
    /// when no receiver is left (the thread then ends).
    fn publish(&self, seen: Seen) -> bool {
        let mut st = self.state.lock();
        let changed = match &st.current {
            None => true,
            Some(before) => identity(before) != identity(&seen),
        };
        // A receiver that is gone is noticed here, at the next change
        // (a channel cannot tell otherwise); until then the thread looks
        // at its usual pace.
        if changed {
            st.current = Some(seen.clone());
            st.senders.retain(|tx| tx.send(seen.clone()).is_ok());
        }
        if st.senders.is_empty() {
            st.running = false;
            st.current = None;
            return false;
        }
        true
    }

    fn give_up(&self) {
        let mut st = self.state.lock();
        st.running = false;
        st.current = None;
        st.senders.clear();
    }
}

/// A master is the same while the same acquisition holds the lock:
/// renewals (a new expiry) are not changes.
fn identity(seen: &Seen) -> Option<(&str, i64)> {
    seen.as_ref().map(|m| (m.uuid.as_str(), m.fence))
}

/// The observing thread.
fn run(observers: &Weak<Observers>, mut watched: Watched) {
    loop {
        if let Some(i) = &mut watched.interest {
            i.rearm();
        }
        let Some(locks) = watched.locks.upgrade() else {
            if let Some(o) = observers.upgrade() {
                o.give_up();
            }
            return;
        };
        let looked = Instant::now();
        let next = match locks.read(&watched.key) {
            Ok(read) => {
                let (seen, left) = master_of(read);
                let Some(o) = observers.upgrade() else {
                    return;
                };
                if !o.publish(seen) {
                    return;
                }
                match left {
                    // Wake just after the master's lease runs out.
                    Some(left) => looked + left + Duration::from_millis(5),
                    None => looked + watched.retry,
                }
            }
            Err(e) => {
                log::debug!("observing `{}`: {e}", watched.key);
                looked + watched.retry
            }
        };
        drop(locks);
        let streaming = watched.interest.as_ref().is_some_and(Interest::stream_live);
        // Without a live stream, changes are found by polling.
        let next = if streaming {
            next
        } else {
            next.min(looked + watched.retry)
        };
        match &mut watched.interest {
            // Relying on the stream: stop waiting when it goes down.
            Some(i) if streaming => {
                i.wait_while_live(next, || false);
            }
            Some(i) => {
                i.wait_until(next, || false);
            }
            None => std::thread::sleep(next.saturating_duration_since(Instant::now())),
        }
    }
}

/// The live master in a read, and how long its lease has left in server
/// time.
fn master_of(
    read: Option<(LockRecord, chrono::DateTime<chrono::Utc>)>,
) -> (Seen, Option<Duration>) {
    match read {
        Some((LockRecord::Taken(info), now)) if info.expires > now => {
            let left = (info.expires - now).to_std().ok();
            (Some(info), left)
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};

    fn info(uuid: &str, fence: i64, expires_in_ms: i64) -> LockInfo {
        let now = Utc::now();
        LockInfo {
            key: "k".into(),
            uuid: uuid.into(),
            host: "h".into(),
            pid: 1,
            created: now,
            expires: now + TimeDelta::milliseconds(expires_in_ms),
            fence,
            metadata: None,
        }
    }

    #[test]
    fn only_changes_of_master_are_sent() {
        let o = Arc::new(Observers::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        o.state.lock().senders.push(tx);
        assert!(o.publish(Some(info("a", 1, 1000))));
        // A renewal: same acquisition, later expiry.
        assert!(o.publish(Some(info("a", 1, 5000))));
        assert!(o.publish(None));
        assert!(o.publish(None));
        assert!(o.publish(Some(info("b", 2, 1000))));
        let got: Vec<Option<(String, i64)>> = rx
            .try_iter()
            .map(|m| m.map(|i| (i.uuid, i.fence)))
            .collect();
        assert_eq!(got, [Some(("a".into(), 1)), None, Some(("b".into(), 2))]);
        drop(rx);
        assert!(!o.publish(Some(info("c", 3, 1000))), "no receiver left");
    }

    #[test]
    fn the_master_is_the_live_holder() {
        let now = Utc::now();
        let live = info("a", 1, 2000);
        let (seen, left) = master_of(Some((LockRecord::Taken(live.clone()), now)));
        assert_eq!(seen, Some(live));
        assert!(left.unwrap() <= Duration::from_millis(2100));
        let expired = info("a", 1, -10);
        assert_eq!(
            master_of(Some((LockRecord::Taken(expired), now))),
            (None, None)
        );
        assert_eq!(
            master_of(Some((LockRecord::Free { fence: 3 }, now))),
            (None, None)
        );
        assert_eq!(master_of(None), (None, None));
    }
}
