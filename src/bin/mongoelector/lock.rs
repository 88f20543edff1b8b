//! `lock KEY -- CMD`: take the lock, run CMD while it is held (renewed in
//! the background), release it when CMD ends, exit with CMD's status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use mongodb::sync::Database;
use mongoelector::{LockGuard, MongoLocker};

use crate::args::LockArgs;
use crate::child::{self, Outcome};
use crate::exit::{self, Failure, LOST, NOT_ACQUIRED, SOFTWARE};

/// How long a tool told to end while it waits for the lock gives an
/// attempt in flight to come back, so that a lock it has just won is
/// released rather than left to expire.
const ABANDON_WAIT: Duration = Duration::from_millis(300);

pub fn run(db: &Database, collection: &str, args: LockArgs) -> Result<u8, Failure> {
    let signals = crate::signals::listen()?;
    let locker = MongoLocker::builder(&args.key, db)
        .collection(collection)
        .ttl(args.ttl)
        .hold_at_least(args.hold_at_least)
        .keep_alive(true)
        // Safety rests on server time and the local monotonic clock; a
        // skewed wall clock need not stop a job.
        .timeparanoid(false)
        .build()
        .map_err(|e| Failure::from_error("setting up the lock", &e))?;
    let locker = Arc::new(locker);
    let doing = format!("taking the lock {:?}", args.key);

    let abandoned = Arc::new(AtomicBool::new(false));
    let attempt = {
        let (locker, abandoned) = (locker.clone(), abandoned.clone());
        let (no_wait, timeout) = (args.no_wait, args.timeout);
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
                let got = match (locker.try_lock(), no_wait, timeout) {
                    (Ok(None), false, Some(t)) => match t.checked_sub(started.elapsed()) {
                        Some(left) if !left.is_zero() => locker.try_lock_for(left),
                        _ => Ok(None),
                    },
                    (Ok(None), false, None) => locker.lock().map(Some),
                    (first, _, _) => first,
                };
                // The tool gave up waiting: free what was won just now.
                if abandoned.load(Ordering::SeqCst) {
                    if let Ok(Some(guard)) = got {
                        let _ = guard.release();
                    }
                    return;
                }
                let _ = tx.send(got);
            })
            .map_err(|e| Failure::new(SOFTWARE, &doing, e))?;
        rx
    };
    let guard: LockGuard = loop {
        select! {
            recv(attempt) -> got => match got {
                Ok(Ok(Some(guard))) => break guard,
                Ok(Ok(None)) => return not_acquired(&locker),
                Ok(Err(e)) => return Err(Failure::from_error(&doing, &e)),
                Err(_) => return Err(Failure::new(SOFTWARE, &doing, "the acquiring thread ended")),
            },
            recv(signals) -> signal => {
                let Ok(signal) = signal else { continue };
                if crate::signals::ends_the_tool(signal) {
                    abandoned.store(true, Ordering::SeqCst);
                    // An answer already on its way is released here.
                    if let Ok(Ok(Some(guard))) = attempt.recv_timeout(ABANDON_WAIT) {
                        let _ = guard.release();
                    }
                    return Ok(128u8.saturating_add(u8::try_from(signal).unwrap_or(0)));
                }
            },
        }
    };

    let env = [
        ("MONGOELECTOR_KEY", args.key.clone()),
        ("MONGOELECTOR_FENCE", guard.fence().to_string()),
    ];
    let lost = guard.lost();
    let mut command = match child::spawn(&args.command, &env) {
        Ok(command) => command,
        Err(failure) => {
            let _ = guard.release();
            return Err(failure);
        }
    };
    let Outcome { status, lost, .. } =
        command.supervise(&signals, &lost, |_| true, args.kill_after);
    if let Some(reason) = lost {
        return Err(Failure::new(
            LOST,
            &format!("holding the lock {:?}", args.key),
            format!("lost ({reason:?}); the command was stopped ({status})"),
        ));
    }
    if let Err(e) = guard.release() {
        // The lock expires on its own; the command's status still counts.
        eprintln!(
            "mongoelector: {}",
            Failure::from_error(&format!("releasing the lock {:?}", args.key), &e).message
        );
    }
    Ok(exit::of_status(status))
}

/// Exit 75 with one line naming the holder.
fn not_acquired(locker: &MongoLocker) -> Result<u8, Failure> {
    let doing = format!("taking the lock {:?}", locker.key());
    let holder = locker
        .get_current()
        .map_err(|e| Failure::from_error(&doing, &e))?;
    let why = match holder {
        Some(info) => format!("not acquired: held by {}", crate::render::holder(&info)),
        None => "not acquired: it was held, and is free now".to_owned(),
    };
    Err(Failure::new(NOT_ACQUIRED, &doing, why))
}
