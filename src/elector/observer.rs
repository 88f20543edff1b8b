//! `observe()`: who is master, pushed to receivers as it changes. One
//! thread per elector (started by the first `observe()`, ended when every
//! receiver is gone or the elector is dropped) looks at the lock when the
//! change stream says it changed, when the master's lease would run out in
//! server time (expiry makes no change event), and at the retry interval
//! when there is no live stream. It wakes at least once a retry interval
//! to see whether any [`MasterReceiver`] is left.

use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::foundation::document::LockInfo;
use crate::foundation::single::document::LockRecord;
use crate::foundation::single::store::LockStore;
use crate::foundation::watch::Interest;

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
    /// Each receiver's sender, and its liveness: alive while any clone of
    /// its `MasterReceiver` is.
    senders: Vec<(Sender<Seen>, Weak<()>)>,
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
    pub fn subscribe(self: &Arc<Self>, start: impl FnOnce() -> Watched) -> MasterReceiver {
        let (tx, rx) = crossbeam_channel::unbounded();
        let alive = Arc::new(());
        let mut st = self.state.lock();
        if let Some(current) = &st.current {
            let _ = tx.send(current.clone());
        }
        st.senders.push((tx, Arc::downgrade(&alive)));
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
        MasterReceiver { rx, _alive: alive }
    }

    /// Sends `seen` to every receiver if it is a change of master; false
    /// when no receiver is left (the thread then ends).
    fn publish(&self, seen: Seen) -> bool {
        let mut st = self.state.lock();
        let changed = match &st.current {
            None => true,
            Some(before) => identity(before) != identity(&seen),
        };
        if changed {
            st.current = Some(seen.clone());
            st.senders.retain(|(tx, _)| tx.send(seen.clone()).is_ok());
        }
        Self::still_watched(&mut st)
    }

    /// Whether any receiver is left; when none is, the thread is marked
    /// ended (under the lock, so a new `observe()` starts another).
    fn watched(&self) -> bool {
        Self::still_watched(&mut self.state.lock())
    }

    fn still_watched(st: &mut ObserversState) -> bool {
        st.senders.retain(|(_, alive)| alive.strong_count() > 0);
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
                // Wake just after the master's lease runs out (an expiry
                // too far ahead for an `Instant`: a damaged document).
                left.and_then(|left| looked.checked_add(left + Duration::from_millis(5)))
                    .unwrap_or(looked + watched.retry)
            }
            Err(e) => {
                log::debug!("observing `{}`: {e}", watched.key);
                looked + watched.retry
            }
        };
        drop(locks);
        // Without a live stream, changes are found by polling.
        let streaming = watched.interest.as_ref().is_some_and(Interest::stream_live);
        let next = if streaming {
            next
        } else {
            next.min(looked + watched.retry)
        };
        if !wait(observers, &mut watched, next) {
            return;
        }
    }
}

/// Waits until `next` or a change of the lock, waking at least once a
/// retry interval to see whether any receiver is left: false when none
/// is (the thread ends, without another read).
fn wait(observers: &Weak<Observers>, watched: &mut Watched, next: Instant) -> bool {
    loop {
        let until = next.min(Instant::now() + watched.retry);
        let streaming = watched.interest.as_ref().is_some_and(Interest::stream_live);
        let news = match &mut watched.interest {
            // Relying on the stream: stop waiting when it goes down.
            Some(i) if streaming => i.wait_while_live(until, || false),
            Some(i) => i.wait_until(until, || false),
            None => {
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
                false
            }
        };
        if !observers.upgrade().is_some_and(|o| o.watched()) {
            return false;
        }
        let stream_down =
            streaming && !watched.interest.as_ref().is_some_and(Interest::stream_live);
        if news || stream_down || Instant::now() >= next {
            return true;
        }
    }
}

/// A receiver of who is master, from
/// [`MongoElector::observe`](crate::MongoElector::observe): it derefs to a
/// crossbeam [`Receiver`], so `recv`, `recv_timeout`, `try_recv` and
/// `iter` work on it as on any receiver (and `select!` on `&*rx`).
///
/// The elector's observing thread runs while any `MasterReceiver` (or a
/// clone of one) is alive: once the last is dropped, the thread ends, and
/// its reads stop, within a retry interval. A `Receiver` cloned out of it
/// (`(*rx).clone()`) does not keep the thread alive: it is disconnected
/// when the thread ends; clone the `MasterReceiver` instead.
///
/// # Examples
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let watcher = mongoelector::MongoElector::new("scheduler", &db)?;
/// let masters = watcher.observe();
/// let first = masters.recv()?; // the current master, or None
/// println!("master: {:?}", first.map(|m| m.host));
/// match masters.recv_timeout(std::time::Duration::from_secs(1)) {
///     Ok(next) => println!("changed: {:?}", next.map(|m| m.fence)),
///     Err(_) => println!("no change"),
/// }
/// drop(masters); // the observing thread ends within a retry interval
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MasterReceiver {
    rx: Receiver<Seen>,
    /// Counted by the thread: alive while any clone of this is.
    _alive: Arc<()>,
}

impl Deref for MasterReceiver {
    type Target = Receiver<Option<LockInfo>>;

    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

impl<'a> IntoIterator for &'a MasterReceiver {
    type Item = Option<LockInfo>;
    type IntoIter = crossbeam_channel::Iter<'a, Option<LockInfo>>;

    fn into_iter(self) -> Self::IntoIter {
        self.rx.iter()
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
        let alive = Arc::new(());
        o.state.lock().senders.push((tx, Arc::downgrade(&alive)));
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
        assert!(o.watched());
        drop(alive);
        assert!(!o.watched(), "no receiver left");
        drop(rx);
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
