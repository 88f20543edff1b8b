//! `release KEY --force`: free a lock whoever holds it, printing what was
//! freed. The holder learns it at its next renewal (a `lock` stops its
//! command, an `elect` steps down).

use mongodb::sync::Database;
use mongoelector::MongoLocker;

use crate::args::ReleaseArgs;
use crate::exit::Failure;
use crate::{output, render};

pub fn run(db: &Database, collection: &str, args: ReleaseArgs) -> Result<u8, Failure> {
    let locker = MongoLocker::builder(&args.key, db)
        .collection(collection)
        .timeparanoid(false)
        .build()
        .map_err(|e| Failure::from_error("setting up", &e))?;
    let doing = format!("releasing {:?}", args.key);
    let fail = |e: mongoelector::Error| Failure::from_error(&doing, &e);
    // Who holds it, read just before: the release itself says only
    // whether it freed a live lock.
    let holder = locker.get_current().map_err(fail)?;
    let freed = locker.release(args.force).map_err(fail)?;
    match (freed, holder) {
        (true, Some(info)) => output::line(format!(
            "released {:?}: was held by {}",
            args.key,
            render::holder(&info)
        ))?,
        (true, None) => output::line(format!("released {:?}", args.key))?,
        (false, _) => output::line(format!("{:?} was not held: nothing to release", args.key))?,
    }
    Ok(0)
}
