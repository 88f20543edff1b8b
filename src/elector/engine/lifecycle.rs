//! The engine's start/stop bookkeeping: one run at a time, and a stop that
//! steps down at once and waits for the loop only so long.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{new_run_token, Engine, Stopping};
use crate::elector::role::{LossReason, Role};
use crate::error::{Error, Result};

impl Engine {
    /// Whether `stop()` asked the running loop to end.
    pub fn stop_requested(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks a new run started: `Err` when one is running already.
    pub fn begin_run(&self) -> Result<()> {
        let mut st = self.state.lock();
        if st.running {
            return Err(Error::AlreadyRunning {
                key: self.key.clone(),
            });
        }
        st.running = true;
        st.run_id += 1;
        self.expire(&mut st);
        // A master won by manual polls keeps its token: this run renews
        // that acquisition, and its stop must free it.
        if !matches!(st.role, Role::Master(_)) {
            *self.run.lock() = new_run_token();
        }
        Ok(())
    }

    /// Marks the run ended (its loop returned, or its thread never started)
    /// and wakes `stop()`.
    pub fn end_run(&self) {
        let mut st = self.state.lock();
        st.running = false;
        self.stopping.store(false, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Steps down at once, asks a running loop to stop, and waits for it
    /// to end, at most `bound`: a poll stuck on an unreachable server
    /// finishes in the background (it cannot make this node master again).
    pub fn stop_run(&self, bound: Duration) -> Stopping {
        let give_up = Instant::now() + bound;
        let mut st = self.state.lock();
        if !st.running {
            return Stopping::NotRunning;
        }
        self.stopping.store(true, Ordering::SeqCst);
        drop(st);
        self.step_down(LossReason::Stopped);
        st = self.state.lock();
        self.wake.notify_all();
        // A follower may be waiting on the change stream: wake it.
        if let Some(hub) = self.locks.existing_hub() {
            hub.poke();
        }
        let run = st.run_id;
        while st.running && st.run_id == run {
            if self.wake.wait_until(&mut st, give_up).timed_out() {
                return if st.running && st.run_id == run {
                    Stopping::StillFinishing
                } else {
                    Stopping::Ended
                };
            }
        }
        Stopping::Ended
    }

    /// Sleeps until `next`, or until a stop is requested.
    pub fn sleep_until(&self, next: Instant) {
        let mut st = self.state.lock();
        while !self.stop_requested() && Instant::now() < next {
            self.wake.wait_until(&mut st, next);
        }
    }

    /// Holds off campaigning until `until`.
    pub fn hold_off(&self, until: Instant) {
        self.state.lock().hold_off_until = Some(until);
    }

    /// When a hold-off set by `step_down` ends, while it has not.
    pub fn held_off_until(&self) -> Option<Instant> {
        self.state
            .lock()
            .hold_off_until
            .filter(|at| *at > Instant::now())
    }
}
