//! `lock KEY -- CMD`: take the lock, run CMD while it is held (renewed in
//! the background), release it when CMD ends, exit with CMD's status.

use std::sync::Arc;

use mongodb::sync::Database;
use mongoelector::MongoLocker;

use crate::args::LockArgs;
use crate::exit::{Failure, NOT_ACQUIRED};
use crate::hold::{self, Taken};

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
    let guard = match hold::take(&locker, args.no_wait, args.timeout, &signals, &doing)? {
        Taken::Lease(guard) => guard,
        Taken::NotAcquired => return not_acquired(&locker),
        Taken::Ended(code) => return Ok(code),
    };
    let what = format!("the lock {:?}", args.key);
    hold::run_command(
        guard,
        &args.key,
        &what,
        &args.command,
        &signals,
        args.kill_after,
    )
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
