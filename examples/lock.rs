//! Two contenders taking turns on one lock.
//!
//! Run it with `scripts/demo.sh` (starts a test server when `MONGODB_URI` is
//! unset), or `MONGODB_URI=mongodb://... cargo run --example lock`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mongoelector::MongoLocker;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI")
        .map_err(|_| "MONGODB_URI is not set: run `scripts/demo.sh`, which starts a test server")?;
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    let db = client.database("mongoelector_demo");
    let key = format!("demo-{}", std::process::id());
    let start = Instant::now();

    let contenders: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|name| {
            let locker = MongoLocker::builder(&key, &db)
                .ttl(Duration::from_secs(5))
                .step(Duration::from_millis(50))
                .build()?;
            Ok((name, Arc::new(locker)))
        })
        .collect::<mongoelector::Result<_>>()?;

    let threads: Vec<_> = contenders
        .into_iter()
        .map(|(name, locker)| {
            std::thread::spawn(move || -> mongoelector::Result<()> {
                for turn in 1..=3 {
                    let guard = locker.lock()?;
                    println!(
                        "{:>6.3}s {name:>5} holds the lock (turn {turn}, fence {}, expires {})",
                        start.elapsed().as_secs_f64(),
                        guard.fence(),
                        guard.expires_at().format("%H:%M:%S%.3f"),
                    );
                    std::thread::sleep(Duration::from_millis(300)); // the critical section
                    assert!(guard.is_valid());
                    // Said before releasing: once released, the other may print first.
                    println!(
                        "{:>6.3}s {name:>5} releases it",
                        start.elapsed().as_secs_f64()
                    );
                    guard.release()?;
                    std::thread::sleep(Duration::from_millis(100)); // let the other one in
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("contender panicked")?;
    }
    println!("done: six turns, never two holders at once");
    Ok(())
}
