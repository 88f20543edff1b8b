//! One process-wide thread that acts at local lease deadlines: it steps
//! masters down, and ends lock acquisitions (their `lost()` message), even
//! while the thread that would renew them is stuck in a database call (a
//! partitioned or paused server can hold a request for far longer than a
//! ttl). Each elector has one thread of its own; this one is shared by all
//! electors and locks.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::foundation::moment::Moment;

/// Something whose lease may end at a deadline.
pub(crate) trait Expire: Send + Sync {
    /// Steps down if the current lease's deadline has passed; a no-op when
    /// the lease was renewed meanwhile.
    fn expire_now(&self);
}

/// The deadlines waiting, shared by the callers of [`watch`] and the thread.
struct Pending {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// What the thread is doing, so that [`watch`] wakes it only when it
    /// would otherwise look too late.
    thread: Thread,
}

#[derive(Clone, Copy)]
enum Thread {
    /// Running (or not waiting yet): it looks at the heap before it waits.
    Busy,
    /// Waiting until this instant, then it looks at the heap again.
    Until(Moment),
    /// Waiting for a first deadline.
    Idle,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    heap: BinaryHeap::new(),
    seq: 0,
    thread: Thread::Busy,
});

/// Wakes the thread for a deadline earlier than the one it waits for.
static WAKE: Condvar = Condvar::new();

/// Whether the thread runs (spawned on the first [`watch`]).
static STARTED: OnceLock<bool> = OnceLock::new();

/// Calls `target.expire_now()` at `at`, if the target still exists then.
///
/// The thread is woken only when `at` comes before the instant it already
/// waits for: a renewal or a new acquisition usually sets a deadline later
/// than one pending, and costs then no wake-up (the thread sees it when it
/// wakes for the earlier one).
pub(crate) fn watch(at: Moment, target: Weak<dyn Expire>) {
    let started = *STARTED.get_or_init(|| {
        match std::thread::Builder::new()
            .name("mongoelector-deadlines".to_owned())
            .spawn(run)
        {
            Ok(_) => true,
            Err(e) => {
                // Masters still step down when polled or asked (`is_master`).
                log::error!("could not spawn the lease deadline thread: {e}");
                false
            }
        }
    });
    if !started {
        return;
    }
    let mut pending = PENDING.lock();
    pending.seq += 1;
    let seq = pending.seq;
    pending.heap.push(Reverse(Entry { at, seq, target }));
    let wake = match pending.thread {
        Thread::Busy => false,
        Thread::Until(looks_at) => at < looks_at,
        Thread::Idle => true,
    };
    if wake {
        // Marked busy at once: later callers before it runs need not wake it.
        pending.thread = Thread::Busy;
        WAKE.notify_one();
    }
}

/// The longest the thread sleeps on `Instant` while a deadline is pending.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

struct Entry {
    at: Moment,
    seq: u64,
    target: Weak<dyn Expire>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

fn run() {
    let mut due: Vec<Weak<dyn Expire>> = Vec::new();
    let mut pending = PENDING.lock();
    loop {
        let now = Moment::now();
        while pending.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = pending.heap.pop() {
                due.push(entry.target);
            }
        }
        if !due.is_empty() {
            // Outside the lock: ending a lease may set another deadline.
            parking_lot::MutexGuard::unlocked(&mut pending, || {
                for target in due.drain(..) {
                    if let Some(target) = target.upgrade() {
                        target.expire_now();
                    }
                }
            });
            continue;
        }
        match pending.heap.peek().map(|Reverse(e)| e.at) {
            // Waits run on `Instant`, which may stop while the machine is
            // suspended: wake at least every second to look at the lease
            // clock, so a deadline that passed during a suspend fires soon
            // after the resume.
            Some(at) => {
                let wait = at.saturating_duration_since(now).min(RECHECK_EVERY);
                pending.thread = Thread::Until(now + wait);
                WAKE.wait_for(&mut pending, wait);
            }
            None => {
                pending.thread = Thread::Idle;
                WAKE.wait(&mut pending);
            }
        }
        pending.thread = Thread::Busy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    struct Probe(Mutex<Vec<Moment>>);

    impl Expire for Probe {
        fn expire_now(&self) {
            self.0.lock().unwrap().push(Moment::now());
        }
    }

    #[test]
    fn fires_each_deadline_in_order_and_skips_dropped_targets() {
        let probe = Arc::new(Probe(Mutex::new(Vec::new())));
        let gone = Arc::new(Probe(Mutex::new(Vec::new())));
        let t0 = Moment::now();
        let weak: Weak<dyn Expire> = Arc::downgrade(&probe) as Weak<dyn Expire>;
        watch(t0 + Duration::from_millis(120), weak.clone());
        watch(t0 + Duration::from_millis(40), weak);
        watch(
            t0 + Duration::from_millis(10),
            Arc::downgrade(&gone) as Weak<dyn Expire>,
        );
        drop(gone);
        std::thread::sleep(Duration::from_millis(400));
        let fired = probe.0.lock().unwrap().clone();
        assert_eq!(fired.len(), 2);
        assert!(fired[0] >= t0 + Duration::from_millis(40));
        assert!(fired[1] >= t0 + Duration::from_millis(120));
    }

    #[test]
    fn an_earlier_deadline_wakes_the_waiting_thread() {
        let probe = Arc::new(Probe(Mutex::new(Vec::new())));
        let weak = || Arc::downgrade(&probe) as Weak<dyn Expire>;
        let t0 = Moment::now();
        watch(t0 + Duration::from_millis(900), weak());
        // The thread now waits for that one; an earlier one must wake it.
        std::thread::sleep(Duration::from_millis(50));
        watch(t0 + Duration::from_millis(100), weak());
        // A later one must not delay either.
        watch(t0 + Duration::from_millis(5000), weak());
        std::thread::sleep(Duration::from_millis(500));
        let fired = probe.0.lock().unwrap().clone();
        assert_eq!(fired.len(), 1, "only the 100 ms deadline by now");
        assert!(fired[0] >= t0 + Duration::from_millis(100));
        assert!(fired[0] < t0 + Duration::from_millis(450), "on time");
    }
}
