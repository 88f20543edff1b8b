//! What the engine tells without I/O, and who is told: the receivers of
//! `observe()`, the counters of `stats()`, and `healthy()`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Engine;
use crate::elector::observer::{MasterReceiver, Watched};
use crate::elector::stats::ElectorStats;
use crate::foundation::moment::Moment;

impl Engine {
    /// A receiver of the current master and of every change of master.
    pub fn observe(&self) -> MasterReceiver {
        self.observers.subscribe(|| Watched {
            key: self.key.clone(),
            locks: Arc::downgrade(&self.locks),
            retry: self.retry,
            interest: self.watch_key(),
        })
    }

    /// The counters and health inputs, without I/O.
    pub fn stats(&self) -> ElectorStats {
        let st = self.state.lock();
        ElectorStats {
            polls: st.stats.polls,
            poll_failures: st.stats.poll_failures,
            terms: st.stats.terms,
            last_success: st.stats.last_success,
            is_master: st.role.live_lease(Moment::now()).is_some(),
        }
    }

    /// Running, and the last poll that got an answer is no older than the
    /// loop's current poll interval plus `tolerance`. No I/O.
    pub fn healthy(&self, tolerance: Duration) -> bool {
        let st = self.state.lock();
        st.running
            && st
                .stats
                .last_success
                .is_some_and(|at| at.elapsed() <= st.interval.saturating_add(tolerance))
    }

    /// Records when the loop polls next, for `healthy()`: as the pause
    /// since the last poll's send, the instant its `last_success` records.
    pub fn set_next_poll(&self, next: Instant) {
        let mut st = self.state.lock();
        let from = st.last_sent.unwrap_or_else(Instant::now);
        st.interval = next.saturating_duration_since(from);
    }
}
