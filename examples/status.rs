//! Prints the cluster view of an election for operators: its live members,
//! its master (from the lock document), the fence and the lock's expiry.
//!
//! ```sh
//! MONGODB_URI=mongodb://127.0.0.1:27017/ cargo run --example status -- [KEY] [DATABASE]
//! ```

use chrono::Utc;
use mongoelector::MongoElector;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI").map_err(|_| "MONGODB_URI is not set")?;
    let mut args = std::env::args().skip(1);
    let key = args.next().unwrap_or_else(|| "demo".to_owned());
    let database = args
        .next()
        .unwrap_or_else(|| "mongoelector_demo".to_owned());
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    // An elector that is never started only reads.
    let cluster = MongoElector::new(&key, &client.database(&database))?.cluster_detail()?;

    println!("election `{key}` at {}", Utc::now().format("%H:%M:%S%.3f"));
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
    Ok(())
}
