//! `status KEY [--watch] [--json]`: the holder (or master) of a key and,
//! for an election, its members; with `--watch`, each change of holder.

use std::time::Duration;

use chrono::Utc;
use crossbeam_channel::select;
use mongodb::sync::Database;
use mongoelector::{LockInfo, MongoElector};
use serde_json::json;

use crate::args::StatusArgs;
use crate::exit::Failure;
use crate::output;
use crate::render;

/// How often `--watch` looks where the server has no change streams.
const WATCH_POLL: Duration = Duration::from_secs(1);

pub fn run(db: &Database, collection: &str, args: StatusArgs) -> Result<u8, Failure> {
    // An elector that is never started only reads: the lock document for
    // the holder, the status collection for the members.
    let observer = MongoElector::builder(&args.key, db)
        .collection(collection)
        .status_collection(&args.status_collection)
        .retry_interval(WATCH_POLL)
        .status_reports(false)
        .build()
        .map_err(|e| Failure::from_error("setting up", &e))?;
    let doing = format!("reading the status of {:?}", args.key);
    let cluster = observer
        .cluster_detail()
        .map_err(|e| Failure::from_error(&doing, &e))?;
    if args.watch {
        return watch(&observer, &args);
    }
    if args.json {
        let value = json!({
            "key": args.key,
            "collection": collection,
            "holder": cluster.master.as_ref().map(render::holder_json),
            "members": cluster.members.iter().map(render::member_json).collect::<Vec<_>>(),
        });
        output::line(value)?;
        return Ok(0);
    }
    output::line(state_line(&args.key, cluster.master.as_ref()))?;
    if !cluster.members.is_empty() {
        output::line(format!("members ({}):", cluster.members.len()))?;
        for member in &cluster.members {
            output::line(format!("  {}", render::member(member)))?;
        }
    }
    Ok(0)
}

fn state_line(key: &str, holder: Option<&LockInfo>) -> String {
    match holder {
        Some(info) => format!("{key:?}: held by {}", render::holder(info)),
        None => format!("{key:?}: free"),
    }
}

/// Prints the holder, then each change, until SIGINT or SIGTERM (exit 0).
fn watch(observer: &MongoElector, args: &StatusArgs) -> Result<u8, Failure> {
    let signals = crate::signals::listen()?;
    let changes = observer.observe();
    loop {
        select! {
            recv(changes) -> change => {
                let Ok(holder) = change else {
                    return Err(Failure::new(crate::exit::SOFTWARE, "watching", "the observer ended"));
                };
                let now = render::time(Utc::now());
                if args.json {
                    output::line(json!({
                        "time": now,
                        "key": args.key,
                        "holder": holder.as_ref().map(render::holder_json),
                    }))?;
                } else {
                    output::line(format!("{now} {}", state_line(&args.key, holder.as_ref())))?;
                }
            },
            recv(signals) -> signal => {
                if signal.is_ok_and(crate::signals::ends_the_tool) {
                    return Ok(0);
                }
            },
        }
    }
}
