//! Stepping down on purpose (`release`, `step_down`, and `stop` of an
//! elector that is not running): the node steps down at once, its
//! `LostMaster` sent before any I/O; the release is sent afterwards, behind
//! any poll in flight, by one background thread per elector, and the caller
//! waits for it only so long. However often it is asked while the database
//! hangs, an elector has at most one such thread.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::Engine;
use crate::elector::role::{LossReason, Role};
use crate::error::{Error, Result};
use crate::foundation::single::pipeline::Whose;

/// One release to send: what a surrender left to free.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Release {
    reason: LossReason,
    /// The acquisition this node stepped down from, if it was master.
    fence: Option<i64>,
    /// The run token at the surrender (a stop frees what that run acquired).
    run: String,
}

/// The releases waiting for the surrender thread, each with the callers
/// waiting for its answer, and whether that thread runs.
#[derive(Default)]
pub(crate) struct Errands {
    queue: Vec<(Release, Vec<Sender<Result<()>>>)>,
    busy: bool,
}

impl Engine {
    /// Steps down at once (the event first), then frees the lock in the
    /// database, waiting for that at most `bound`; past it, the release
    /// goes on in the background and the lock expires on its own if it
    /// cannot be freed. `Stopped` frees whatever this run acquired;
    /// `Released` frees the acquisition stepped down from.
    pub fn surrender_within(self: &Arc<Self>, reason: LossReason, bound: Duration) -> Result<()> {
        let run = self.run_token();
        let fence = match self.step_down(reason) {
            Role::Master(lease) => Some(lease.fence),
            Role::Follower => None,
        };
        // A follower's release frees only what a poll in flight wins: with
        // no poll in flight and nothing won unannounced, nothing to send.
        if fence.is_none() && reason != LossReason::Stopped {
            if let Some(_idle) = self.poll_lock.try_lock() {
                if self.state.lock().unannounced.is_empty() {
                    return Ok(());
                }
            }
        }
        let answer = self.send_later(Release { reason, fence, run })?;
        match answer.recv_timeout(bound) {
            Ok(result) => result,
            Err(_) => {
                log::warn!(
                    "`{}`: the database did not answer the release within {bound:?}; \
                     the lock expires on its own",
                    self.key
                );
                Ok(())
            }
        }
    }

    /// Frees what the run with token `run` acquired, after any poll in
    /// flight: the end of a stopped run.
    pub fn free_run(&self, run: &str) -> Result<()> {
        self.free(&Release {
            reason: LossReason::Stopped,
            fence: None,
            run: run.to_owned(),
        })
    }

    /// Sends `release` after any poll in flight (under the poll lock).
    fn free(&self, release: &Release) -> Result<()> {
        let _serial = self.poll_lock.lock();
        let unannounced = std::mem::take(&mut self.state.lock().unannounced);
        let uuid = self.owner.uuid.as_str();
        if release.reason == LossReason::Stopped {
            // A stop also ends a term a poll won since (a manual poll
            // racing the stop), and frees everything the run acquired,
            // announced or not.
            self.step_down(LossReason::Stopped);
            return self
                .locks
                .release(&self.key, Whose::Run(uuid, &release.run))
                .map(drop);
        }
        for fence in release.fence.into_iter().chain(unannounced) {
            self.locks
                .release(&self.key, Whose::Acquisition(uuid, fence))?;
        }
        Ok(())
    }

    /// Queues `release` for the surrender thread (started when none runs);
    /// a release already queued is not queued twice. The receiver gets its
    /// answer.
    fn send_later(self: &Arc<Self>, release: Release) -> Result<Receiver<Result<()>>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut errands = self.errands.lock();
        match errands.queue.iter_mut().find(|(r, _)| *r == release) {
            Some((_, waiting)) => waiting.push(tx),
            None => errands.queue.push((release, vec![tx])),
        }
        if !errands.busy {
            let engine = self.clone();
            std::thread::Builder::new()
                .name("mongoelector-surrender".to_owned())
                .spawn(move || engine.run_errands())
                .map_err(|e| {
                    errands.queue.clear();
                    Error::Spawn(Arc::new(e))
                })?;
            errands.busy = true;
        }
        Ok(rx)
    }

    /// The surrender thread: sends the queued releases, one at a time,
    /// until none is left.
    fn run_errands(&self) {
        let _idle = Idle(self);
        loop {
            let (release, waiting) = {
                let mut errands = self.errands.lock();
                if errands.queue.is_empty() {
                    errands.busy = false;
                    return;
                }
                errands.queue.remove(0)
            };
            let result = self.free(&release);
            let told = waiting
                .into_iter()
                .filter(|tx| tx.send(result.clone()).is_ok())
                .count();
            // Nobody waits any more (the answer came too late): say it here.
            if let (Err(e), 0) = (&result, told) {
                log::warn!(
                    "`{}`: releasing the lock failed; it expires on its own: {e}",
                    self.key
                );
            }
        }
    }
}

/// Marks the surrender thread ended should it panic, so the next
/// surrender starts another.
struct Idle<'a>(&'a Engine);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.errands.lock().busy = false;
        }
    }
}
