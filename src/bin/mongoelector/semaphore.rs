//! `semaphore KEY --permits N -- CMD`: take one of N permits, run CMD
//! while it is held (renewed in the background), release it when CMD ends,
//! exit with CMD's status. As `lock`, with up to N commands at once.

use std::sync::Arc;

use mongodb::sync::Database;
use mongoelector::MongoSemaphore;

use crate::args::SemaphoreArgs;
use crate::exit::{Failure, NOT_ACQUIRED};
use crate::hold::{self, Taken};

pub fn run(db: &Database, collection: &str, args: SemaphoreArgs) -> Result<u8, Failure> {
    let signals = crate::signals::listen()?;
    let semaphore = MongoSemaphore::builder(&args.key, db, args.permits)
        .collection(collection)
        .ttl(args.ttl)
        .keep_alive(true)
        // As `lock`: safety rests on server time and the monotonic clock.
        .timeparanoid(false)
        .build()
        .map_err(|e| Failure::from_error("setting up the semaphore", &e))?;
    let semaphore = Arc::new(semaphore);
    let doing = format!("taking a permit of {:?}", args.key);
    let permit = match hold::take(&semaphore, args.no_wait, args.timeout, &signals, &doing)? {
        Taken::Lease(permit) => permit,
        Taken::NotAcquired => return not_acquired(&semaphore, &doing),
        Taken::Ended(code) => return Ok(code),
    };
    let what = format!("a permit of {:?}", args.key);
    hold::run_command(
        permit,
        &args.key,
        &what,
        &args.command,
        &signals,
        args.kill_after,
    )
}

/// Exit 75 with one line naming the holders.
fn not_acquired(semaphore: &MongoSemaphore, doing: &str) -> Result<u8, Failure> {
    let holders = semaphore
        .holders()
        .map_err(|e| Failure::from_error(doing, &e))?;
    let why = if holders.is_empty() {
        "not acquired: every permit was held, and one is free now".to_owned()
    } else {
        let each: Vec<String> = holders.iter().map(crate::render::holder).collect();
        format!(
            "not acquired: {} permit(s) held, by {}",
            holders.len(),
            each.join("; by ")
        )
    };
    Err(Failure::new(NOT_ACQUIRED, doing, why))
}
