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
//! collections it read. A member report is marked stale when the lock
//! contradicts it (it says master and the lock names another, or it says
//! follower and holds the lock) or when it is more than two ttls old (a
//! live node reports at least that often).

use chrono::{DateTime, Utc};
use mongodb::options::ClientOptions;
use mongoelector::limits::{DEFAULT_LOCK_COLLECTION, DEFAULT_STATUS_COLLECTION};
use mongoelector::{MongoElector, NodeStatus};

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
    let (locks, reports) = (DEFAULT_LOCK_COLLECTION, DEFAULT_STATUS_COLLECTION);
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
        Some(m) => {
            println!(
                "  master  {} on {} (pid {}), fence {}, lease until {}",
                m.uuid,
                m.host,
                m.pid,
                m.fence,
                m.expires.format("%H:%M:%S%.3f")
            );
            println!(
                "          (the fence: the server's clock in ms x 1000 when the lock was taken, \
                 or the previous fence + 1 if larger; it only grows)"
            );
        }
        None => println!("  master  none"),
    }
    println!(
        "  members ({}), newest report first; \"stale\" marks a report the lock \
         contradicts or that is overdue:",
        cluster.members.len()
    );
    let holder = cluster.master.as_ref().map(|m| m.uuid.as_str());
    for m in &cluster.members {
        let stale = stale(m, holder, Utc::now());
        println!(
            "    {} {} pid {:<7} {:<8} running={} last poll {} version {}{}",
            m.uuid,
            m.host,
            m.pid,
            if m.is_master { "master" } else { "follower" },
            m.running,
            m.last_poll
                .map_or("-".into(), |t| t.format("%H:%M:%S%.3f").to_string()),
            m.app_version.as_deref().unwrap_or("-"),
            stale.map_or(String::new(), |why| format!("  STALE: {why}")),
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

/// Why a member's report can no longer be believed, if it cannot: the lock
/// contradicts it (it says master but the lock names another holder or
/// none, or it says follower but holds the lock: written before its
/// election), or it is older than the node's report interval allows (a
/// report is due every ttl, written at the next poll: two ttls apart at
/// most), so the node is likely gone.
fn stale(m: &NodeStatus, holder: Option<&str>, now: DateTime<Utc>) -> Option<String> {
    let holds = holder == Some(m.uuid.as_str());
    if m.is_master && !holds {
        return Some("says master, but the lock is not its".to_owned());
    }
    if !m.is_master && holds {
        return Some("says follower, but it holds the lock (written before)".to_owned());
    }
    let age = (now - m.timestamp).to_std().unwrap_or_default();
    (age > 2 * m.ttl).then(|| {
        format!(
            "last report {:.1} s ago, more than twice its ttl ({:.1} s)",
            age.as_secs_f64(),
            m.ttl.as_secs_f64()
        )
    })
}
