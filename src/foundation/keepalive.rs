//! The process-wide keep-alive thread: it renews every lock acquisition
//! made by a locker with `keep_alive(true)`, each a third of the ttl after
//! its last successful renewal was sent, and retries a failed one until the
//! local deadline. One thread keeps the schedule for every locker of the
//! process and sends nothing itself: the round trips run on a pool
//! ([`crate::foundation::workers`]) of normally one thread, which grows only while a
//! renewal is stuck (a frozen or partitioned server), so renewals to other
//! servers keep their times: a due renewal is sent at most
//! [`RENEWAL_STALL`] (200 ms) plus the start of a thread after its due
//! time, however many renewals are stuck elsewhere (each stuck one holds a
//! thread until its round trip ends). The schedule (when a renewal is due, what its
//! answer means) is pure and lives here too. Deadlines are not kept here:
//! the deadline thread ([`crate::foundation::deadlines`]) ends acquisitions on time
//! whatever their renewals do.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::foundation::lease::Lease;
use crate::foundation::moment::Moment;
use crate::foundation::tenure::Tenure;
use crate::foundation::workers::Workers;

/// The thread's name, as `/proc/self/task/*/comm` and debuggers show it.
pub(crate) const THREAD_NAME: &str = "mongoelector-keepalive";

/// The threads that send the renewals. When renewals wait while none has
/// been sent or answered for `RENEWAL_STALL`, each waiting one gets a
/// thread.
static RENEWERS: Workers = Workers::new("mongoelector-renew", RENEWAL_STALL, RENEWERS_QUIET);

/// A renewal in flight this long, with others waiting, counts as stuck.
const RENEWAL_STALL: Duration = Duration::from_millis(200);

/// The extra sending threads end once no renewal has found all of them
/// busy for this long.
const RENEWERS_QUIET: Duration = Duration::from_secs(10);

/// Renewals per ttl: one failed renewal does not cost the lease.
pub(crate) const RENEWALS_PER_TTL: u32 = 3;

/// Something holding acquisitions that the keep-alive thread renews.
pub(crate) trait Renew: Send + Sync {
    /// Renews acquisition `fence` if it is due (at most one round trip):
    /// when to be called again, or `None` once the acquisition is over.
    fn renew(&self, fence: i64) -> Option<Moment>;
}

/// When a lease whose last successful renewal (or acquire) was sent at
/// `sent` is due for renewal.
pub(crate) fn renewal_due(sent: Moment, ttl: Duration) -> Moment {
    sent + ttl / RENEWALS_PER_TTL
}

/// The pause before retrying a failed renewal: a tenth of the ttl, between
/// 10 ms and 1 s.
pub(crate) fn retry_pause(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// What a renewal's round trip said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server extended the lease.
    Renewed,
    /// The lock no longer names this acquisition (or it had ended locally).
    Gone,
    /// The round trip failed: the outcome is unknown.
    Failed,
}

/// When to renew next, after `answer`, given the lease as it stands at
/// `now`: `None` when the acquisition is over (gone, or a failure with its
/// local deadline passed).
pub(crate) fn next_renewal(
    answer: Answer,
    lease: Lease,
    now: Moment,
    ttl: Duration,
) -> Option<Moment> {
    match answer {
        Answer::Renewed => Some(renewal_due(lease.sent, ttl)),
        Answer::Gone => None,
        Answer::Failed => lease.valid_at(now).then(|| now + retry_pause(ttl)),
    }
}

/// One keep-alive step for a live acquisition, shared by every [`Renew`]
/// implementation: when it was renewed by hand (a `touch`) since it was
/// due, only the next due time; otherwise one renewal round trip
/// (`touch`: the new expiry, or `None` when it is no longer held) and what
/// its answer means. `what` names the acquisition in the log.
pub(crate) fn renew_step<E: std::fmt::Display, T>(
    tenure: &Tenure,
    ttl: Duration,
    what: std::fmt::Arguments<'_>,
    touch: impl FnOnce() -> Result<Option<T>, E>,
) -> Option<Moment> {
    if !tenure.valid_at(Moment::now()) {
        return None;
    }
    let due = renewal_due(tenure.lease().sent, ttl);
    if Moment::now() < due {
        // Renewed by hand (touch) meanwhile.
        return Some(due);
    }
    let answer = match touch() {
        Ok(Some(_)) => Answer::Renewed,
        Ok(None) => Answer::Gone,
        Err(e) => {
            log::warn!("keep-alive of {what} failed, retrying: {e}");
            Answer::Failed
        }
    };
    next_renewal(answer, tenure.lease(), Moment::now(), ttl)
}

type Request = (Moment, Weak<dyn Renew>, i64);

static THREAD: OnceLock<Option<Sender<Request>>> = OnceLock::new();

/// Calls `target.renew(fence)` (on a renewal thread) at `at` and then
/// whenever it asks, for as long as the target exists and the acquisition
/// lasts.
pub(crate) fn schedule(at: Moment, target: Weak<dyn Renew>, fence: i64) {
    let thread = THREAD.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded();
        match std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || run(rx))
        {
            Ok(_) => Some(tx),
            Err(e) => {
                // Leases then end at their deadline, which lost() reports.
                log::error!("could not spawn the lock keep-alive thread: {e}");
                None
            }
        }
    });
    if let Some(tx) = thread {
        let _ = tx.send((at, target, fence));
    }
}

/// The longest the thread sleeps on `Instant` while a renewal is pending,
/// so that one due during a suspend is sent soon after the resume.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

fn run(rx: Receiver<Request>) {
    let mut due: BinaryHeap<Reverse<(Moment, u64)>> = BinaryHeap::new();
    let mut targets: HashMap<u64, (Weak<dyn Renew>, i64)> = HashMap::new();
    let mut seq = 0u64;
    loop {
        while let Some(&Reverse((at, id))) = due.peek() {
            if at > Moment::now() {
                break;
            }
            due.pop();
            let Some((target, fence)) = targets.remove(&id) else {
                continue;
            };
            RENEWERS.submit(Box::new(move || {
                if let Some(next) = target.upgrade().and_then(|t| t.renew(fence)) {
                    schedule(next, target, fence);
                }
            }));
        }
        let wait = [
            due.peek()
                .map(|Reverse((at, _))| at.saturating_duration_since(Moment::now())),
            RENEWERS.unstick(),
        ]
        .into_iter()
        .flatten()
        .min();
        let next = match wait {
            Some(wait) => rx.recv_timeout(wait.min(RECHECK_EVERY)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, target, fence)) => {
                seq += 1;
                due.push(Reverse((at, seq)));
                targets.insert(seq, (target, fence));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::sync::{Arc, Mutex};

    const TTL: Duration = Duration::from_secs(3);

    #[test]
    fn renewals_are_due_a_third_of_the_ttl_after_the_last_send() {
        let sent = Moment::now();
        assert_eq!(renewal_due(sent, TTL), sent + Duration::from_secs(1));
        let lease = Lease::granted(1, Utc::now(), sent, TTL);
        let now = sent + Duration::from_millis(30);
        assert_eq!(
            next_renewal(Answer::Renewed, lease, now, TTL),
            Some(sent + Duration::from_secs(1))
        );
        assert_eq!(next_renewal(Answer::Gone, lease, now, TTL), None);
    }

    #[test]
    fn failures_are_retried_until_the_deadline() {
        let sent = Moment::now();
        let lease = Lease::granted(1, Utc::now(), sent, TTL);
        let now = sent + Duration::from_secs(2);
        assert_eq!(
            next_renewal(Answer::Failed, lease, now, TTL),
            Some(now + Duration::from_millis(300))
        );
        // The deadline is sent + ttl - margin (2.7 s).
        let late = sent + Duration::from_millis(2700);
        assert_eq!(next_renewal(Answer::Failed, lease, late, TTL), None);
        assert_eq!(
            retry_pause(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            retry_pause(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
    }

    struct Counter(Mutex<Vec<i64>>, u32);

    impl Renew for Counter {
        fn renew(&self, fence: i64) -> Option<Moment> {
            let mut calls = self.0.lock().unwrap();
            calls.push(fence);
            (calls.len() < self.1 as usize).then(|| Moment::now() + Duration::from_millis(20))
        }
    }

    #[test]
    fn the_thread_calls_again_when_asked_and_forgets_dropped_targets() {
        let kept = Arc::new(Counter(Mutex::new(Vec::new()), 3));
        let gone = Arc::new(Counter(Mutex::new(Vec::new()), 3));
        let now = Moment::now();
        schedule(now, Arc::downgrade(&kept) as Weak<dyn Renew>, 5);
        schedule(
            now + Duration::from_millis(50),
            Arc::downgrade(&gone) as Weak<dyn Renew>,
            6,
        );
        drop(gone);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(*kept.0.lock().unwrap(), [5, 5, 5]);
    }
}
