//! A long job under a lock that renews itself, stopping as soon as the lock
//! is lost.
//!
//! The lease is 2 s; the job takes 6 s, so it only finishes because the
//! keep-alive thread renews the lease every 2/3 s. Run a second copy while
//! the first works: it waits, then takes over when the first is done. Stop
//! the server (or SIGSTOP it) mid-job to see `RenewalFailed` arrive at the
//! local deadline.
//!
//! `MONGODB_URI=mongodb://... cargo run --example long_job`

use std::time::{Duration, Instant};

use crossbeam_channel::select;
use mongodb::bson::doc;
use mongoelector::MongoLocker;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI")
        .map_err(|_| "MONGODB_URI is not set: run `scripts/demo.sh`, which starts a test server")?;
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    let db = client.database("mongoelector_demo");
    let me = format!("long-job pid {}", std::process::id());
    let locker = MongoLocker::builder("long-job", &db)
        .ttl(Duration::from_secs(2))
        .keep_alive(true)
        .metadata(doc! { "job": "long-job", "worker": &me })
        .build()?;

    if let Some(holder) = locker.get_current()? {
        println!("waiting: held by {:?}", holder.metadata);
    }
    let start = Instant::now();
    let guard = locker.lock()?;
    println!("{me}: got the lock, fence {}", guard.fence());
    let lost = guard.lost();
    let step = crossbeam_channel::tick(Duration::from_millis(500));
    let mut done = 0;
    while done < 12 {
        select! {
            recv(lost) -> reason => {
                println!("{me}: lost the lock ({:?}) after {done} of 12 steps; stopping", reason.ok());
                return Ok(());
            }
            recv(step) -> _ => {
                done += 1;
                println!(
                    "{:>5.2}s {me}: step {done:>2}/12 (valid: {}, lease until {})",
                    start.elapsed().as_secs_f64(),
                    guard.is_valid(),
                    guard.expires_at().format("%H:%M:%S%.3f"),
                );
            }
        }
    }
    guard.release()?;
    println!("{me}: done and released");
    Ok(())
}
