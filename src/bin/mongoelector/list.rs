//! `list [--json]`: every key of the collection with a live holder.

use mongodb::sync::Database;

use crate::args::ListArgs;
use crate::exit::Failure;
use crate::{output, render};

pub fn run(db: &Database, collection: &str, args: ListArgs) -> Result<u8, Failure> {
    let locks = mongoelector::live_locks(db, collection)
        .map_err(|e| Failure::from_error(&format!("listing the locks in {collection:?}"), &e))?;
    if args.json {
        let all: Vec<_> = locks.iter().map(render::holder_json).collect();
        output::line(serde_json::Value::Array(all))?;
    } else {
        for info in &locks {
            output::line(format!("{:?}: held by {}", info.key, render::holder(info)))?;
        }
    }
    Ok(0)
}
