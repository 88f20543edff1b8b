//! A daemon that runs an elector and prints its events with a timestamp;
//! Ctrl-C (or SIGTERM) stops it cleanly, handing mastership over at once.
//!
//! ```sh
//! MONGODB_URI=mongodb://127.0.0.1:27017/ cargo run --example elector -- [KEY] [TTL_SECS] [RETRY_MS]
//! ```
//!
//! `scripts/demo.sh` starts three of these, kills the master with SIGKILL and
//! shows another taking over.

use std::time::Duration;

use chrono::Utc;
use mongoelector::{Event, MongoElector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI")
        .map_err(|_| "MONGODB_URI is not set: run `scripts/demo.sh`, which starts a test server")?;
    let mut args = std::env::args().skip(1);
    let key = args.next().unwrap_or_else(|| "demo".to_owned());
    let ttl = Duration::from_secs_f64(args.next().map_or(Ok(15.0), |s| s.parse())?);
    let retry = args
        .next()
        .map(|s| s.parse().map(Duration::from_millis))
        .transpose()?;

    let client = mongodb::sync::Client::with_uri_str(&uri)?;
    let mut builder = MongoElector::builder(&key, &client.database("mongoelector_demo"))
        .ttl(ttl)
        .app_version(env!("CARGO_PKG_VERSION"));
    if let Some(retry) = retry {
        builder = builder.retry_interval(retry);
    }
    let elector = builder.build()?;
    let me = format!("{} pid {}", &elector.uuid()[..8], std::process::id());

    let events = elector.events();
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })?;
    elector.start(false)?;
    println!(
        "{} [{me}] started on key `{key}` (ttl {ttl:?}, retry {:?})",
        now(),
        elector.retry_interval()
    );

    loop {
        crossbeam_channel::select! {
            recv(events) -> event => match event? {
                Event::BecameMaster { fence, expires } => {
                    println!("{} [{me}] BECAME MASTER, fence {fence}, lease until {}", now(), expires.format("%H:%M:%S%.3f"));
                }
                Event::LostMaster { fence, reason } => {
                    println!("{} [{me}] lost master (fence {fence}): {reason:?}", now());
                }
                Event::PollFailed { error } => println!("{} [{me}] poll failed: {error}", now()),
                Event::Polled { .. } => {}
                other => println!("{} [{me}] {other:?}", now()),
            },
            recv(stop_rx) -> _ => break,
        }
    }
    elector.stop()?;
    for event in events.try_iter() {
        if let Event::LostMaster { fence, reason } = event {
            println!("{} [{me}] lost master (fence {fence}): {reason:?}", now());
        }
    }
    println!("{} [{me}] stopped cleanly", now());
    Ok(())
}

fn now() -> String {
    Utc::now().format("%H:%M:%S%.3f").to_string()
}
