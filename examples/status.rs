//! Prints the cluster view of an election for operators: its live members,
//! its master (from the lock document), the fence and the lock's expiry.
//!
//! ```sh
//! MONGODB_URI=mongodb://127.0.0.1:27017/app cargo run --example status -- [KEY] [DATABASE]
//! MONGODB_URI=mongodb://127.0.0.1:27017/app cargo run --example status -- --watch [KEY] [DATABASE]
//! ```
//!
//! With `--watch` it then prints each change of master as it happens
//! (`observe()`), until interrupted.
//!
//! The database is DATABASE when given, else the URI's (`app` above), else
//! `mongoelector_demo` (the demo's). The output names the database and the
//! collections it read.

use chrono::Utc;
use mongodb::options::ClientOptions;
use mongoelector::{MongoElector, DEFAULT_COLLECTION, DEFAULT_STATUS_COLLECTION};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI").map_err(|_| "MONGODB_URI is not set")?;
    let mut args = std::env::args().skip(1).peekable();
    let watch = args.next_if(|a| a == "--watch").is_some();
    let key = args.next().unwrap_or_else(|| "demo".to_owned());
    let options = ClientOptions::parse(&uri).run()?;
    let database = args
        .next()
        .or_else(|| options.default_database.clone())
        .unwrap_or_else(|| "mongoelector_demo".to_owned());
    let client = mongodb::sync::Client::with_options(options)?;
    // The default collections, named. An elector never started only reads.
    let (locks, reports) = (DEFAULT_COLLECTION, DEFAULT_STATUS_COLLECTION);
    let elector = MongoElector::builder(&key, &client.database(&database))
        .collection(locks)
        .status_collection(reports)
        .build()?;
    let cluster = elector.cluster_detail()?;

    println!("election `{key}` at {}", Utc::now().format("%H:%M:%S%.3f"));
    println!(
        "  read    database `{database}`, collections `{locks}` (lock) and `{reports}` (status)"
    );
    match &cluster.master {
        Some(m) => println!(
            "  master  {} on {} (pid {}), fence {}, lease until {}",
            m.uuid,
            m.host,
            m.pid,
            m.fence,
            m.expires.format("%H:%M:%S%.3f")
        ),
        None => println!("  master  none"),
    }
    println!(
        "  members ({}), newest report first:",
        cluster.members.len()
    );
    for m in &cluster.members {
        println!(
            "    {} {} pid {:<7} {:<8} running={} last poll {} version {}",
            m.uuid,
            m.host,
            m.pid,
            if m.is_master { "master" } else { "follower" },
            m.running,
            m.last_poll
                .map_or("-".into(), |t| t.format("%H:%M:%S%.3f").to_string()),
            m.app_version.as_deref().unwrap_or("-"),
        );
    }
    if watch {
        println!("watching `{key}` for changes of master (Ctrl-C to end)");
        // The first message is the master now; then one per change.
        for master in elector.observe().iter().skip(1) {
            let at = Utc::now().format("%H:%M:%S%.3f");
            match master {
                Some(m) => println!(
                    "{at}  master {} on {} (pid {}), fence {}",
                    m.uuid, m.host, m.pid, m.fence
                ),
                None => println!("{at}  no master"),
            }
        }
    }
    Ok(())
}
