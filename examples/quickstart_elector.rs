//! The README's elector Quickstart, verbatim (`tests/readme.rs` checks it):
//! an elector that prints what it sees, master or follower, and hands over
//! at once on Ctrl-C. Run two or three against one server, then press
//! Ctrl-C in the master's terminal:
//!
//! ```sh
//! SECANTUS_PORT=27017 scripts/server.sh start   # prints PORT PID
//! cargo run --example quickstart_elector        # in each terminal
//! scripts/server.sh stop PID
//! ```

use std::time::Duration;

use crossbeam_channel::{select, tick};
use mongoelector::{Event, MongoElector};

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
    let elector = MongoElector::new("scheduler", &client.database("app"))?; // ttl 15 s
    let events = elector.events();
    let masters = elector.observe(); // who is master, at each change
    let (stop_tx, stop) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })?;
    elector.start(false)?; // campaigns on its own thread
    let work = tick(Duration::from_secs(2));
    loop {
        select! {
            recv(stop) -> _ => break,
            recv(events) -> event => match event? {
                Event::BecameMaster { fence, .. } => println!("I am master (fence {fence})"),
                Event::LostMaster { reason, .. } => println!("no longer master: {reason:?}"),
                Event::PollFailed { error } => eprintln!("poll failed, retrying: {error}"),
                _ => {} // Event::Polled: one per poll
            },
            recv(masters) -> master => match master? {
                Some(m) => println!("master: {} pid {} (fence {})", m.host, m.pid, m.fence),
                None => println!("no master right now"),
            },
            recv(work) -> _ => {
                if elector.is_master() {
                    println!("doing the master's work"); // lease-aware, no I/O
                }
            }
        }
    }
    elector.stop()?; // steps down and releases: another node takes over at once
    println!("stopped");
    Ok(())
}
