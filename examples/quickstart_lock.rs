//! The README's lock Quickstart, verbatim (`tests/readme.rs` checks it):
//! a lock with an RAII guard.
//!
//! ```sh
//! scripts/with-server.sh cargo run --example quickstart_lock
//! ```

use std::time::Duration;

use mongoelector::MongoLocker;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=5000".into());
    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    let locker = MongoLocker::builder("nightly-report", &client.database("app"))
        .ttl(Duration::from_secs(60)) // the default is 600 s, as in Python
        .build()?;

    let guard = locker.lock()?; // blocks until acquired
    println!("holding the lock, fence {}", guard.fence());
    // ... critical section: guard.is_valid() says (without I/O) whether the
    // lease still holds; pass guard.fence() to what you write ...
    drop(guard); // released

    match locker.try_lock_for(Duration::from_secs(5))? {
        Some(guard) => println!("got it again within 5 s, fence {}", guard.fence()),
        None => println!("someone else held it for 5 s"),
    }
    Ok(())
}
