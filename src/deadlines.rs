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

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::moment::Moment;

/// Something whose lease may end at a deadline.
pub(crate) trait Expire: Send + Sync {
    /// Steps down if the current lease's deadline has passed; a no-op when
    /// the lease was renewed meanwhile.
    fn expire_now(&self);
}

type Request = (Moment, Weak<dyn Expire>);

static TIMER: OnceLock<Option<Sender<Request>>> = OnceLock::new();

/// Calls `target.expire_now()` at `at`, if the target still exists then.
pub(crate) fn watch(at: Moment, target: Weak<dyn Expire>) {
    let timer = TIMER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        match std::thread::Builder::new()
            .name("mongoelector-deadlines".to_owned())
            .spawn(move || run(rx))
        {
            Ok(_) => Some(tx),
            Err(e) => {
                // Masters still step down when polled or asked (`is_master`).
                log::error!("could not spawn the lease deadline thread: {e}");
                None
            }
        }
    });
    if let Some(tx) = timer {
        let _ = tx.send((at, target));
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

fn run(rx: Receiver<Request>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Moment::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = heap.pop() {
                if let Some(target) = entry.target.upgrade() {
                    target.expire_now();
                }
            }
        }
        let next = match heap.peek() {
            // Waits run on `Instant`, which may stop while the machine is
            // suspended: wake at least every second to look at the lease
            // clock, so a deadline that passed during a suspend fires soon
            // after the resume.
            Some(Reverse(e)) => rx.recv_timeout(
                e.at.saturating_duration_since(Moment::now())
                    .min(RECHECK_EVERY),
            ),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, target)) => {
                seq += 1;
                heap.push(Reverse(Entry { at, seq, target }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
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
}
