//! What the engine tells without I/O, and who is told: the receivers of
//! `observe()`, the counters of `stats()`, and `healthy()`.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::Engine;
use crate::document::LockInfo;
use crate::elector::observer::Watched;
use crate::elector::stats::ElectorStats;
use crate::moment::Moment;

impl Engine {
    /// A receiver of the current master and of every change of master.
    pub fn observe(&self) -> Receiver<Option<LockInfo>> {
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
                .is_some_and(|at| at.elapsed() <= st.interval + tolerance)
    }

    /// Records the pause the loop chose, for `healthy()`.
    pub fn set_interval(&self, interval: Duration) {
        self.state.lock().interval = interval;
    }
}
