//! A pool of threads for jobs that may block on the database: normally one
//! thread runs them in turn; more are started only when jobs wait while
//! no job has been taken or finished for a while (`stall`: a round trip
//! stuck on a frozen or partitioned server, which the driver does not time
//! out). Then every waiting job gets a thread of its own at once, so a job
//! waits at most about `stall` (plus the start of a thread) behind stuck
//! ones, however many are stuck: at most one thread per job ever waiting
//! at once. Once no job has found every thread busy for a while, the
//! threads beyond one end.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::foundation::moment::Moment;

/// A job for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The pool; a `static`, since its threads borrow it for ever.
pub(crate) struct Workers {
    name: &'static str,
    stall: Duration,
    quiet: Duration,
    state: Mutex<State>,
    work: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    workers: usize,
    idle: usize,
    /// The last time a thread took or finished a job (or one was started).
    progress: Option<Moment>,
    /// The last time a job came while no thread was idle.
    saturated: Option<Moment>,
}

impl Workers {
    /// A pool whose threads are named `name`, starting one thread per
    /// waiting job when jobs have waited `stall` without any job being
    /// taken or finished,
    /// and ending the threads beyond one once no job has found every
    /// thread busy for `quiet` (each when it next wakes, at most `quiet`
    /// later, with another thread idle).
    pub const fn new(name: &'static str, stall: Duration, quiet: Duration) -> Workers {
        Workers {
            name,
            stall,
            quiet,
            state: parking_lot::const_mutex(State {
                jobs: VecDeque::new(),
                workers: 0,
                idle: 0,
                progress: None,
                saturated: None,
            }),
            work: Condvar::new(),
        }
    }

    /// Queues `job`; it runs on an idle thread, or after the jobs before it.
    pub fn submit(&'static self, job: Job) {
        let mut st = self.state.lock();
        st.jobs.push_back(job);
        if st.idle > 0 {
            self.work.notify_one();
            return;
        }
        st.saturated = Some(Moment::now());
        if st.workers == 0 {
            self.spawn(&mut st);
        }
    }

    /// Starts a thread for each waiting job if none has been taken or
    /// finished for `stall` (one more each would only be taken by the next
    /// stuck job in turn, `stall` later). Returns when to call again
    /// (`None`: no job waits).
    pub fn unstick(&'static self) -> Option<Duration> {
        let mut st = self.state.lock();
        if st.jobs.is_empty() {
            return None;
        }
        if st.idle > 0 {
            // Woken already; it takes the job as soon as it runs.
            return Some(self.stall);
        }
        let now = Moment::now();
        let since = st
            .progress
            .map_or(self.stall, |p| now.saturating_duration_since(p));
        if since >= self.stall {
            for _ in 0..st.jobs.len() {
                self.spawn(&mut st);
            }
            return Some(self.stall);
        }
        Some(self.stall.saturating_sub(since))
    }

    fn spawn(&'static self, st: &mut State) {
        match std::thread::Builder::new()
            .name(self.name.to_owned())
            .spawn(move || self.work_loop())
        {
            Ok(_) => {
                st.workers += 1;
                st.progress = Some(Moment::now());
            }
            // The jobs wait for a running thread; leases end at their
            // deadlines meanwhile, which `lost()` reports.
            Err(e) => log::error!("could not spawn a `{}` thread: {e}", self.name),
        }
    }

    fn work_loop(&'static self) {
        let mut st = self.state.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                st.progress = Some(Moment::now());
                drop(st);
                // A panicking job must not take its thread's count with it.
                if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                    log::error!("a `{}` job panicked", self.name);
                }
                st = self.state.lock();
                st.progress = Some(Moment::now());
                continue;
            }
            // No job: end if the pool has been quiet and another thread is
            // idle to take the next one (jobs wake idle threads in turn, so
            // a wait rarely times out while jobs keep coming).
            let quiet = st
                .saturated
                .is_none_or(|at| Moment::now().saturating_duration_since(at) >= self.quiet);
            if st.idle > 0 && quiet {
                st.workers -= 1;
                return;
            }
            st.idle += 1;
            self.work.wait_for(&mut st, self.quiet);
            st.idle -= 1;
        }
    }

    /// How many threads the pool has (for tests).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.state.lock().workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn jobs_run_on_one_thread_while_none_is_stuck() {
        static POOL: Workers = Workers::new(
            "test-workers-a",
            Duration::from_secs(2),
            Duration::from_secs(10),
        );
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let done = done.clone();
            POOL.submit(Box::new(move || {
                std::thread::sleep(Duration::from_millis(1));
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // As the keep-alive thread does: check for a stall now and then.
        while done.load(Ordering::SeqCst) < 100 {
            POOL.unstick();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(POOL.threads(), 1);
    }

    #[test]
    fn a_stuck_job_holds_up_only_its_own_thread() {
        static POOL: Workers = Workers::new(
            "test-workers-b",
            Duration::from_millis(100),
            Duration::from_secs(10),
        );
        let t = std::time::Instant::now();
        let (release, stuck) = crossbeam_channel::bounded::<()>(0);
        POOL.submit(Box::new(move || {
            let _ = stuck.recv();
        }));
        let (tx, rx) = crossbeam_channel::unbounded();
        POOL.submit(Box::new(move || tx.send(()).unwrap()));
        // Nothing runs it until the stall is noticed.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        while rx.try_recv().is_err() {
            let again = POOL.unstick().unwrap_or(Duration::from_millis(10));
            std::thread::sleep(again.max(Duration::from_millis(1)));
            assert!(t.elapsed() < Duration::from_secs(5), "never ran");
        }
        assert!(t.elapsed() >= Duration::from_millis(100));
        // Two, or more where a new thread was slow to start.
        assert!(POOL.threads() >= 2);
        release.send(()).unwrap();
    }

    #[test]
    fn many_stuck_jobs_hold_up_a_live_one_by_one_stall_not_one_each() {
        static POOL: Workers = Workers::new(
            "test-workers-d",
            Duration::from_millis(100),
            Duration::from_secs(10),
        );
        let (release, stuck) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..8 {
            let stuck = stuck.clone();
            POOL.submit(Box::new(move || {
                let _ = stuck.recv();
            }));
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = std::time::Instant::now();
        POOL.submit(Box::new(move || tx.send(()).unwrap()));
        while rx.try_recv().is_err() {
            let again = POOL.unstick().unwrap_or(Duration::from_millis(10));
            std::thread::sleep(again.max(Duration::from_millis(1)));
            assert!(t.elapsed() < Duration::from_secs(5), "never ran");
        }
        // One stall (100 ms) and the start of a few threads; one stall per
        // stuck job ahead would be 800 ms.
        let took = t.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        for _ in 0..8 {
            release.send(()).unwrap();
        }
    }

    #[test]
    fn the_extra_threads_end_once_not_needed_though_jobs_keep_coming() {
        static POOL: Workers = Workers::new(
            "test-workers-c",
            Duration::from_millis(50),
            Duration::from_millis(500),
        );
        let (release, stuck) = crossbeam_channel::bounded::<()>(0);
        POOL.submit(Box::new(move || {
            let _ = stuck.recv();
        }));
        let tick = || {
            POOL.submit(Box::new(|| {}));
            POOL.unstick();
            std::thread::sleep(Duration::from_millis(20));
        };
        let t = std::time::Instant::now();
        while POOL.threads() < 2 {
            tick();
            assert!(t.elapsed() < Duration::from_secs(5), "no second thread");
        }
        release.send(()).unwrap();
        // Jobs every 20 ms wake the idle threads in turn; still, once none
        // finds every thread busy for 500 ms, the pool is back to one.
        let t = std::time::Instant::now();
        while POOL.threads() > 1 {
            tick();
            assert!(t.elapsed() < Duration::from_secs(5), "never shrank");
        }
    }
}
