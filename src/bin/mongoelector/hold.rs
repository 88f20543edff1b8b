//! What `lock` and `semaphore` share: take a lease on a thread of its own
//! while signals may end the wait, then run the command while the lease is
//! held, stop it if the lease is lost, and release the lease when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use mongoelector::{LockGuard, LossReason, MongoLocker, MongoSemaphore, Permit, Result};

use crate::child::{self, Outcome};
use crate::exit::{self, Failure, LOST, SOFTWARE};

/// How long a tool told to end while it waits gives an attempt in flight
/// to come back, so that a lease it has just won is released rather than
/// left to expire.
const ABANDON_WAIT: Duration = Duration::from_millis(300);

/// A lease the tool holds while its command runs.
pub trait Held: Send + 'static {
    fn fence(&self) -> i64;
    fn lost(&self) -> Receiver<LossReason>;
    fn release(self) -> Result<()>;
}

/// Where leases come from: a lock, a semaphore.
pub trait Source: Send + Sync + 'static {
    type Lease: Held;
    fn try_now(&self) -> Result<Option<Self::Lease>>;
    fn try_for(&self, timeout: Duration) -> Result<Option<Self::Lease>>;
    fn wait(&self) -> Result<Self::Lease>;
}

impl Held for LockGuard {
    fn fence(&self) -> i64 {
        LockGuard::fence(self)
    }
    fn lost(&self) -> Receiver<LossReason> {
        LockGuard::lost(self)
    }
    fn release(self) -> Result<()> {
        LockGuard::release(self)
    }
}

impl Source for MongoLocker {
    type Lease = LockGuard;
    fn try_now(&self) -> Result<Option<LockGuard>> {
        self.try_lock()
    }
    fn try_for(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.try_lock_for(timeout)
    }
    fn wait(&self) -> Result<LockGuard> {
        self.lock()
    }
}

impl Held for Permit {
    fn fence(&self) -> i64 {
        Permit::fence(self)
    }
    fn lost(&self) -> Receiver<LossReason> {
        Permit::lost(self)
    }
    fn release(self) -> Result<()> {
        Permit::release(self)
    }
}

impl Source for MongoSemaphore {
    type Lease = Permit;
    fn try_now(&self) -> Result<Option<Permit>> {
        self.try_acquire()
    }
    fn try_for(&self, timeout: Duration) -> Result<Option<Permit>> {
        self.try_acquire_for(timeout)
    }
    fn wait(&self) -> Result<Permit> {
        self.acquire()
    }
}

/// How the wait for a lease ended.
pub enum Taken<L> {
    Lease(L),
    /// `--no-wait` or `--timeout`: held by others.
    NotAcquired,
    /// A signal ended the wait: the tool exits with this code.
    Ended(u8),
}

/// Takes a lease from `source` (at once with `no_wait`, within `timeout`,
/// or waiting for ever), on a thread of its own so that a signal that ends
/// the tool ends the wait. `doing` names the wait in failures.
pub fn take<S: Source>(
    source: &Arc<S>,
    no_wait: bool,
    timeout: Option<Duration>,
    signals: &Receiver<i32>,
    doing: &str,
) -> Result<Taken<S::Lease>, Failure> {
    let abandoned = Arc::new(AtomicBool::new(false));
    let attempt = {
        let (source, abandoned) = (source.clone(), abandoned.clone());
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("mongoelector-acquire".into())
            .spawn(move || {
                let started = Instant::now();
                // The first attempt answers at once, so that an unreachable
                // or refusing server is reported (exit 69) instead of
                // waited out: a blocking acquire retries transient errors
                // until its timeout, to ride through a failover once the
                // tool is waiting.
                let got = match (source.try_now(), no_wait, timeout) {
                    (Ok(None), false, Some(t)) => match t.checked_sub(started.elapsed()) {
                        Some(left) if !left.is_zero() => source.try_for(left),
                        _ => Ok(None),
                    },
                    (Ok(None), false, None) => source.wait().map(Some),
                    (first, _, _) => first,
                };
                // The tool gave up waiting: free what was won just now.
                if abandoned.load(Ordering::SeqCst) {
                    if let Ok(Some(lease)) = got {
                        let _ = lease.release();
                    }
                    return;
                }
                let _ = tx.send(got);
            })
            .map_err(|e| Failure::new(SOFTWARE, doing, e))?;
        rx
    };
    loop {
        select! {
            recv(attempt) -> got => return match got {
                Ok(Ok(Some(lease))) => Ok(Taken::Lease(lease)),
                Ok(Ok(None)) => Ok(Taken::NotAcquired),
                Ok(Err(e)) => Err(Failure::from_error(doing, &e)),
                Err(_) => Err(Failure::new(SOFTWARE, doing, "the acquiring thread ended")),
            },
            recv(signals) -> signal => {
                let Ok(signal) = signal else { continue };
                if crate::signals::ends_the_tool(signal) {
                    abandoned.store(true, Ordering::SeqCst);
                    // An answer already on its way is released here.
                    if let Ok(Ok(Some(lease))) = attempt.recv_timeout(ABANDON_WAIT) {
                        let _ = lease.release();
                    }
                    return Ok(Taken::Ended(128u8.saturating_add(u8::try_from(signal).unwrap_or(0))));
                }
            },
        }
    }
}

/// Runs `command` with `MONGOELECTOR_KEY` and `MONGOELECTOR_FENCE` while
/// `lease` is held; stops it (exit 79) when the lease is lost, releases the
/// lease when it ends, and exits with its status. `what` names the lease in
/// messages ("the lock \"k\"").
pub fn run_command<L: Held>(
    lease: L,
    key: &str,
    what: &str,
    command: &[std::ffi::OsString],
    signals: &Receiver<i32>,
    kill_after: Duration,
) -> Result<u8, Failure> {
    let env = [
        ("MONGOELECTOR_KEY", key.to_owned()),
        ("MONGOELECTOR_FENCE", lease.fence().to_string()),
    ];
    let lost = lease.lost();
    let mut command = match child::spawn(command, &env, kill_after) {
        Ok(command) => command,
        Err(failure) => {
            let _ = lease.release();
            return Err(failure);
        }
    };
    let Outcome { status, lost, .. } = command.supervise(signals, &lost, |_| true, kill_after);
    if let Some(reason) = lost {
        return Err(Failure::new(
            LOST,
            &format!("holding {what}"),
            format!("lost ({reason:?}); the command was stopped ({status})"),
        ));
    }
    if let Err(e) = lease.release() {
        // The lease expires on its own; the command's status still counts.
        eprintln!(
            "mongoelector: {}",
            Failure::from_error(&format!("releasing {what}"), &e).message
        );
    }
    Ok(exit::of_status(status))
}
