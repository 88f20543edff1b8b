//! The elector thread's loop: poll, report status when due, and wait for
//! the next poll (a follower on the change stream), until stopped; then
//! step down, release what this run acquired and write the last report.

use std::time::Instant;

use super::engine::{Ask, Engine};
use crate::foundation::watch::Interest;

/// Runs the loop on the calling thread until `stop()`.
pub(crate) fn run(engine: &Engine) {
    let _done = RunGuard(engine);
    let run = engine.run_token();
    let mut interest: Option<Interest> = None;
    // Whether the last wait ended on the stream's news (or this is the
    // first poll): then a follower tries at once; after a quiet wait it
    // only looks (a read) unless the lock can be taken.
    let mut news = true;
    while !engine.stop_requested() {
        // A follower watches the key, re-armed before each poll so a
        // release during the poll still wakes it; registered after its
        // first poll that did not win, so a node that is elected at once
        // opens no stream.
        if let Some(i) = &mut interest {
            i.rearm();
        }
        let streaming = interest.as_ref().is_some_and(Interest::stream_live);
        let ask = if streaming && !news {
            Ask::Look
        } else {
            Ask::Attempt
        };
        // Errors are logged and announced by the poll; keep going. The
        // status index is made on this thread (`start` does no I/O), once
        // the database answers.
        if engine.poll_with(ask, engine.report_due()).is_ok() {
            engine.ensure_status_index();
        }
        let now = Instant::now();
        let renewed_at = engine.lease_deadline().and(engine.renewed_at());
        if renewed_at.is_some() {
            interest = None;
        } else if interest.is_none() {
            interest = engine.watch_key();
        }
        let streaming = interest.as_ref().is_some_and(Interest::stream_live);
        let mut next = engine.next_poll(renewed_at, now, streaming);
        // A node held off by `step_down` campaigns again as soon as it ends.
        if let Some(until) = engine.held_off_until() {
            next = next.min(until);
        }
        engine.set_next_poll(next);
        // A follower with a stream waits on it: until the next poll is
        // due, or at once on a change (or a stop).
        news = match &mut interest {
            Some(i) if streaming => i.wait_while_live(next, || engine.stop_requested()),
            Some(i) => i.wait_until(next, || engine.stop_requested()),
            None => {
                engine.sleep_until(next);
                false
            }
        };
    }
    if let Err(e) = engine.free_run(&run) {
        log::warn!(
            "`{}`: releasing the lock on stop failed; it expires on its own: {e}",
            engine.key()
        );
    }
    engine.final_report();
}

/// Marks the elector stopped when its loop ends, even by a panic, so that
/// `stop()` never waits forever.
struct RunGuard<'a>(&'a Engine);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.end_run();
    }
}
